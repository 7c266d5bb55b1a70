// Text search and photo search, with what the words were understood as (removable chips) and why each result
// matched; the audit list; the catalog stats with their bar charts.
import {
  api, cards, cssColour, cutSpan, errorBox, facets, filterForm, h, percent, recordClicks, spinner, understoodChips,
  uploadable,
} from "./ui.js";

const FILTERS = ["category", "colour", "gender", "min_price", "max_price", "in_stock"];
const PHOTO_K = 24;
const MAX_PHOTOS = 8; // as the API takes at once

export async function searchView(query) {
  const q = query.get("q") || "";
  const values = Object.fromEntries(FILTERS.filter((k) => query.get(k)).map((k) => [k, query.get(k)]));
  const go = (text, params) => {
    location.hash = `#/search?${new URLSearchParams({ q: text, ...params })}`;
  };
  const lists = await facets();
  const form = filterForm(lists, values, (params) => go(q, params));
  if (!q.trim()) {
    return { node: h("section", { class: "search" }, h("h1", null, "Search"),
      h("p", { class: "empty" }, "Type what you look for above, e.g. “red dress not black” or “nike shoes under 50”.")) };
  }
  const understood = h("div", { class: "understood-box" });
  const results = h("div", { class: "search-results" }, spinner("Searching…"));
  api("/api/search/text", { params: { q, k: 24, ...values } })
    .then((r) => {
      understood.replaceChildren(understoodChips(r.understood, (start, end) => go(cutSpan(q, start, end), values)) || "");
      results.replaceChildren(recordClicks(cards(r.matches, { score: false, why: true }), r.search_id));
    })
    .catch((error) => results.replaceChildren(errorBox(error)));
  return { node: h("section", { class: "search" }, h("h1", null, `“${q}”`), understood, form, results) };
}

let shot = { photos: [], text: "", result: null }; // the photo search: kept while the page is left and re-entered

/** Search by one or more photos (results look like any of them), refined by words: "in red", "with long sleeves". */
export function photoSearchView() {
  const status = h("div", { class: "look-status", "aria-live": "polite" });
  const strip = h("div", { class: "photo-strip" });
  const chips = h("div", { class: "understood-box" });
  const results = h("div", { class: "photo-results" });
  const input = h("input", { type: "search", name: "text", value: shot.text, placeholder: "in red, with long sleeves, under 50",
    "aria-label": "Refine the photo search", autocomplete: "off", enterkeyhint: "search", maxlength: 500,
    "data-testid": "refine" });
  const refine = h("form", { class: "refine", role: "search", hidden: !shot.photos.length },
    h("span", { class: "refine-label" }, "Refine:"), input, h("button", { type: "submit" }, "Refine"));
  let asked = 0;
  const show = (r) => {
    const spans = (r.understood && r.understood.spans) || [];
    const refined = spans.length > 0;
    chips.replaceChildren(understoodChips(r.understood, (start, end) => {
      const others = spans.some((s) => s.end <= start || s.start >= end);
      shot.text = others ? cutSpan(shot.text, start, end) : ""; // the last part goes: "in" alone refines nothing
      input.value = shot.text;
      run();
    }) || "");
    const where = r.category ? ` in ${r.category}${r.category_predicted ? " (as the photos look)" : ""}` : "";
    const names = (r.photos && r.photos.length ? r.photos : [r.photo]).map((p) => p.name).join(", ");
    status.replaceChildren(h("p", { class: "muted" }, `${r.matches.length} products like ${names}${where}.`));
    results.replaceChildren(recordClicks(cards(r.matches, { score: !refined, why: true }), r.search_id));
  };
  const run = async () => {
    refine.hidden = !shot.photos.length;
    drawStrip();
    if (!shot.photos.length) {
      shot.result = null;
      status.replaceChildren();
      chips.replaceChildren();
      results.replaceChildren();
      return;
    }
    const ask = ++asked;
    const body = new FormData();
    for (const photo of shot.photos) body.append("file", photo.blob, photo.name);
    if (shot.text) body.append("text", shot.text);
    status.replaceChildren(spinner(shot.text ? `Searching, refined by “${shot.text}”…` : "Searching…"));
    results.classList.add("busy");
    try {
      const r = await api("/api/search/photo", { body, params: { k: PHOTO_K } });
      if (ask !== asked) return;
      shot.result = r;
      show(r);
    } catch (error) {
      if (ask === asked) {
        status.replaceChildren(errorBox(error));
        chips.replaceChildren();
      }
    } finally {
      if (ask === asked) results.classList.remove("busy");
    }
  };
  const drawStrip = () => strip.replaceChildren(...shot.photos.map((photo, i) => h("figure", { class: "strip-photo" },
    h("img", { src: photo.url, alt: photo.name }),
    h("button", { type: "button", class: "chip-x", "aria-label": `remove ${photo.name}`, onclick: () => {
      URL.revokeObjectURL(photo.url);
      shot.photos.splice(i, 1);
      run();
    } }, "×"))));
  const add = async (files) => {
    const room = MAX_PHOTOS - shot.photos.length;
    const chosen = [...files].filter((f) => f.type.startsWith("image/") || !f.type).slice(0, Math.max(0, room));
    for (const file of chosen) {
      const blob = await uploadable(file);
      shot.photos.push({ blob, name: file.name || "photo.jpg", url: URL.createObjectURL(blob) });
    }
    if (files.length > chosen.length) status.replaceChildren(`At most ${MAX_PHOTOS} photos at once.`);
    if (chosen.length) run();
  };
  refine.addEventListener("submit", (event) => {
    event.preventDefault();
    shot.text = input.value.trim();
    run();
  });
  const picker = h("input", { type: "file", accept: "image/*", multiple: true, class: "visually-hidden",
    "data-testid": "photos" });
  picker.addEventListener("change", () => {
    add(picker.files);
    picker.value = "";
  });
  const zone = h("div", { class: "drop" },
    h("p", { class: "drop-title" }, "Search by photos"),
    h("p", { class: "drop-sub" }, "Products that look like your photo, or like any of several; then refine in words."),
    h("div", { class: "drop-buttons" }, h("label", { class: "button primary" }, picker, "Choose photos")));
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    add(event.dataTransfer.files || []);
  });
  drawStrip();
  if (shot.result) show(shot.result);
  return { node: h("section", { class: "photo-search" }, zone, strip, refine, chips, status, results) };
}

export function auditView() {
  const list = h("ol", { class: "audit-list" });
  const more = h("div", { class: "more" });
  const head = h("p", { class: "muted" }, spinner("Auditing the catalog (the first time takes a few seconds)…"));
  const page = async (offset) => {
    more.replaceChildren(spinner());
    try {
      const r = await api("/api/audit", { params: { limit: 50, offset } });
      head.replaceChildren(`${r.total} listing${r.total === 1 ? "" : "s"} whose photo contradicts what they state, `
        + `out of ${r.n_products} (model ${r.model}, checked: ${Object.entries(r.checked).map(([k, v]) => `${k} ${v}`)
          .join(", ")}).`);
      list.append(...r.findings.map(finding));
      more.replaceChildren(offset + r.findings.length < r.total
        ? h("button", { type: "button", class: "button", onclick: () => page(offset + r.findings.length) }, "More")
        : "");
    } catch (error) {
      more.replaceChildren(errorBox(error));
      head.replaceChildren();
    }
  };
  page(0);
  return { node: h("section", { class: "audit" }, h("h1", null, "Audit"), head, list, more) };
}

function finding(f) {
  const title = f.title_agrees_with === "photo" ? "the title says so too"
    : f.title_agrees_with === "stated" ? "the title agrees with the listing" : "the title says neither";
  return h("li", { class: "finding" },
    h("a", { href: `#/product/${f.product_id}`, class: "finding-photo" },
      h("img", { src: `/api/products/${f.product_id}/image`, alt: f.title, loading: "lazy" })),
    h("div", null,
      h("a", { href: `#/product/${f.product_id}`, class: "finding-title" }, f.title),
      h("div", { class: "finding-claim" },
        h("span", { class: "attr" }, f.attribute), " ",
        h("span", { class: "stated" }, f.stated), h("span", { class: "muted" }, ` (${f.origin}: ${f.evidence})`),
        " → the photo says ", h("span", { class: "photo-value" }, f.photo_value),
        h("span", { class: "muted" }, ` (${percent(f.confidence)} sure; ${title})`))));
}

export async function statsView() {
  const s = await api("/api/stats");
  const index = s.index;
  const tiles = [
    ["products", s.products], ["in stock", s.available], ["gone", s.gone], ["variants", s.variants],
    ["photos cached", s.images.cached || 0], ["indexed photos", index ? index.vectors : "no index"],
  ];
  const sources = Object.entries(s.sources);
  const node = h("section", { class: "stats" },
    h("h1", null, "Catalog"),
    h("div", { class: "tiles" }, tiles.map(([k, v]) => h("div", { class: "tile" },
      h("div", { class: "tile-value" }, typeof v === "number" ? v.toLocaleString() : v), h("div", null, k)))),
    index ? h("p", { class: "muted" }, `Index ${index.version || ""}: ${index.embedder}, ${index.kind}.`) : null,
    h("div", { class: "charts" },
      chart("By category", s.by_category, { limit: 30, link: (c) => `#/map?category=${encodeURIComponent(c)}` }),
      chart("By gender", s.by_gender),
      chart("By colour", s.by_colour, { limit: 30, colour: cssColour }),
      chart("Photos", s.images),
      s.top_title_words && Object.keys(s.top_title_words).length
        ? chart("Frequent title words", s.top_title_words, { limit: 25 }) : null),
    sources.length ? h("section", { class: "sources" }, h("h2", null, "Sources"),
      h("div", { class: "table-wrap" }, h("table", null,
        h("thead", null, h("tr", null, ["source", "kind", "products", "last crawl"].map((c) => h("th", null, c)))),
        h("tbody", null, sources.map(([name, src]) => h("tr", null,
          h("td", null, name), h("td", null, src.kind), h("td", null, src.products.toLocaleString()),
          h("td", null, src.last_run ? `${src.last_run.status} ${src.last_run.finished_at || ""}` : "never"))))))) : null);
  return { node };
}

/** A horizontal bar chart (CSS bars): the largest `limit` counts, the rest summed as "others". */
function chart(title, counts, { limit = 12, colour = null, link = null } = {}) {
  let entries = Object.entries(counts || {}).sort((a, b) => b[1] - a[1]);
  if (entries.length > limit) {
    const rest = entries.slice(limit - 1).reduce((sum, [, n]) => sum + n, 0);
    entries = [...entries.slice(0, limit - 1), [`${entries.length - limit + 1} others`, rest]];
  }
  const top = Math.max(1, ...entries.map(([, n]) => n));
  const total = entries.reduce((sum, [, n]) => sum + n, 0) || 1;
  return h("figure", { class: "chart" }, h("figcaption", null, title),
    h("div", { class: "bars", role: "list" }, entries.map(([name, n]) => {
      const label = link && !name.endsWith(" others") ? h("a", { href: link(name) }, name) : name;
      return h("div", { class: "bar-row", role: "listitem", title: `${name}: ${n} (${percent(n / total)})` },
        h("span", { class: "bar-label" }, label),
        h("span", { class: "bar-track" }, h("span", { class: "bar", style: {
          width: `${(100 * n) / top}%`, background: colour ? colour(name) : null } })),
        h("span", { class: "bar-count" }, n.toLocaleString()));
    })));
}
