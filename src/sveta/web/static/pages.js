// The text search results, the audit list and the catalog stats with their bar charts.
import { api, cards, cssColour, errorBox, facets, filterForm, h, percent, spinner } from "./ui.js";

const FILTERS = ["category", "colour", "gender", "min_price", "max_price", "in_stock"];

export async function searchView(query) {
  const q = query.get("q") || "";
  const values = Object.fromEntries(FILTERS.filter((k) => query.get(k)).map((k) => [k, query.get(k)]));
  const results = h("div", { class: "search-results" }, spinner("Searching…"));
  const lists = await facets();
  const form = filterForm(lists, values, (params) => {
    location.hash = `#/search?${new URLSearchParams({ q, ...params })}`;
  });
  api("/api/search/text", { params: { q, k: 24, ...values } })
    .then((r) => results.replaceChildren(cards(r.matches, { score: false })))
    .catch((error) => results.replaceChildren(errorBox(error)));
  return { node: h("section", { class: "search" }, h("h1", null, `“${q}”`), form, results) };
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
