// The product page: every photo, the facts, attributes by origin with mismatches, complete the look, similar.
import { api, card, cards, errorBox, h, percent, price, recordClicks, spinner } from "./ui.js";

const ORIGINS = [["seller", "Seller"], ["text", "Title / text"], ["image", "Photo model"]];

export async function productView(ref) {
  const product = await api(`/api/products/${encodeURIComponent(ref)}`);
  const id = product.product_id;
  const node = h("article", { class: "product" },
    h("div", { class: "product-top" }, gallery(product.images, product.title), facts(product)),
    attributes(product),
    product.variants.length ? variants(product) : null,
    row("Complete the look", "complete", () => completeRow(id)),
    row("Similar items", "similar", () => api(`/api/products/${id}/similar`, { params: { k: 12 } })
      .then((r) => recordClicks(cards(r.matches), r.search_id))));
  return { node };
}

function gallery(images, title) {
  const shown = images.filter((i) => i.href);
  const main = h("img", { class: "main-photo", alt: title, src: shown.length ? shown[0].href : "" });
  const missing = images.length - shown.length;
  return h("div", { class: "gallery" },
    shown.length ? main : h("div", { class: "no-photo big" }, "no photo in the image cache"),
    shown.length > 1 || missing ? h("div", { class: "thumbs" },
      shown.map((image, i) => h("button", {
        type: "button", class: i === 0 ? "thumb-button active" : "thumb-button", "aria-label": `photo ${i + 1}`,
        onclick: (event) => {
          main.src = image.href;
          for (const b of event.currentTarget.parentNode.children) b.classList.remove("active");
          event.currentTarget.classList.add("active");
        },
      }, h("img", { src: image.href, alt: image.alt || `photo ${i + 1}`, loading: "lazy" }))),
      missing ? h("span", { class: "muted" }, `${missing} photo(s) not downloaded`) : null) : null,
    h("div", { class: "muted small" }, `${images.length} photo${images.length === 1 ? "" : "s"}`));
}

function facts(p) {
  const money = price(p.price, p.currency);
  const top = p.price_max && p.price_max !== p.price ? price(p.price_max, p.currency) : null;
  const link = p.url && /^https?:/.test(p.url) ? h("a", { href: p.url, target: "_blank", rel: "noopener" }, "at the shop") : null;
  const rows = [
    ["Brand", p.brand], ["Category", p.category], ["Colour", p.colour], ["Gender", p.gender],
    ["Source", `${p.source} · ${p.source_id}`], ["Type (seller)", p.product_type],
    ["Tags", (p.tags || []).join(", ")],
  ].filter(([, v]) => v);
  return h("div", { class: "facts-box" },
    h("h1", null, p.title),
    h("div", { class: "price-line" },
      money ? h("span", { class: "price" }, top ? `${money} – ${top}` : money) : null,
      h("span", { class: p.available ? "badge ok" : "badge off" }, p.available ? "in stock" : "out of stock"),
      p.gone_at ? h("span", { class: "badge off" }, "gone from the source") : null, link),
    h("dl", null, rows.map(([k, v]) => [h("dt", null, k), h("dd", null, v)])),
    p.description ? h("p", { class: "description" }, plainText(p.description)) : null);
}

function plainText(html) {
  return new DOMParser().parseFromString(html, "text/html").body.textContent.trim();
}

/** A table: one row per attribute, one column per origin; the rows whose origins disagree are marked. */
function attributes(p) {
  const byName = new Map();
  for (const a of p.attributes) {
    if (!byName.has(a.name)) byName.set(a.name, {});
    (byName.get(a.name)[a.origin] ||= []).push(a);
  }
  const mismatched = new Map(p.mismatches.map((m) => [m.name, m]));
  const origins = ORIGINS.filter(([key]) => p.attributes.some((a) => a.origin === key));
  const summary = p.mismatches.length
    ? h("p", { class: "mismatch-note" }, `${p.mismatches.length} attribute${p.mismatches.length > 1 ? "s" : ""} `
      + `disagree: ${p.mismatches.map((m) => `${m.name.replace(/_/g, " ")} (${Object.entries(m.values)
        .map(([o, v]) => `${o} ${v.join("/")}`).join(" vs ")})`).join("; ")}`)
    : h("p", { class: "muted" }, "The seller, the text and the photo agree.");
  const rows = [...byName].map(([name, values]) => h("tr", {
    class: mismatched.has(name) ? "mismatch" : null, "data-attribute": name,
  },
  h("th", { scope: "row" }, name.replace(/_/g, " "), mismatched.has(name) ? h("span", { class: "flag" }, "mismatch") : null),
  origins.map(([origin]) => h("td", null, (values[origin] || []).map(value)))));
  const head = h("tr", null, h("th", null, "Attribute"), origins.map(([, label]) => h("th", null, label)));
  return h("section", { class: "attributes" }, h("h2", null, "Attributes"), summary,
    h("div", { class: "table-wrap" }, h("table", null, h("thead", null, head), h("tbody", null, rows))));
}

function value(a) {
  const sure = a.origin === "seller" ? null : h("span", { class: "confidence" }, percent(a.confidence));
  const tip = a.evidence ? `from ${a.evidence}${a.model_version ? ` (${a.model_version})` : ""}` : null;
  return h("div", { class: "value", title: tip }, a.value, " ", sure);
}

function variants(p) {
  const columns = ["title", "size", "colour", "sku", "price", "available"];
  const cell = (v, c) => {
    if (c === "price") return price(v.price, p.currency);
    if (c === "available") return v.available ? "yes" : "no";
    return v[c] ?? "";
  };
  const rows = p.variants.map((v) => h("tr", null, columns.map((c) => h("td", null, cell(v, c)))));
  const head = h("tr", null, columns.map((c) => h("th", null, c)));
  return h("section", { class: "variants" }, h("h2", null, `Variants (${p.variants.length})`),
    h("div", { class: "table-wrap" }, h("table", null, h("thead", null, head), h("tbody", null, rows))));
}

/** A section that fills itself when its data comes (or says why it cannot). */
function row(title, name, load) {
  const body = h("div", { class: "row-body" }, spinner());
  load().then((content) => body.replaceChildren(content)).catch((error) => body.replaceChildren(errorBox(error)));
  return h("section", { class: `row ${name}`, "data-row": name }, h("h2", null, title), body);
}

async function completeRow(id) {
  const result = await api(`/api/complete/${id}`, { params: { k: 3 } });
  if (!result.items.length) return h("p", { class: "empty" }, "Nothing in the catalog completes this piece.");
  const byId = new Map(result.items.map((i) => [i.product_id, i]));
  const piece = result.piece;
  const filled = result.slots.filter((slot) => result.items.some((i) => i.slot === slot));
  const intro = h("p", { class: "muted" }, `This ${(piece.category || "piece").toLowerCase()} is the ${piece.slot}; `
    + `each look adds one ${filled.join(", ")} from the catalog.`);
  return recordClicks(h("div", null, intro, result.looks.map((look, n) => h("div", { class: "look-row" },
    h("div", { class: "look-name" }, `Look ${n + 1}`),
    h("div", { class: "cards row-cards" }, look.map((pid) => byId.get(pid)).filter(Boolean)
      .map((item) => card(item, { reason: true, slot: true })))))), result.search_id);
}
