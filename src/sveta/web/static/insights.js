// The Insights page: what shoppers searched, found, missed and clicked (GET /api/insights), the hours they searched
// in, and the catalog's cross-tab: gender and colour per category (GET /api/stats/crosstab).
import { api, cssColour, errorBox, h, percent, spinner } from "./ui.js";

const WINDOWS = [["24h", "1d"], ["7 days", "7d"], ["30 days", "30d"], ["90 days", "90d"]];
const TOP_CATEGORIES = 25;
const TOP_COLOURS = 16;

export function insightsView(query) {
  const since = query.get("since") || "7d";
  const searches = h("div", { class: "insights-searches" }, spinner("Reading the search insights…"));
  const catalog = h("div", { class: "insights-catalog" }, spinner());
  api("/api/insights", { params: { since, top: 20 } })
    .then((r) => searches.replaceChildren(...report(r)))
    .catch((error) => searches.replaceChildren(errorBox(error)));
  api("/api/stats/crosstab")
    .then((x) => catalog.replaceChildren(
      heatmap("Gender per category", x.gender_by_category, { limit: 8 }),
      heatmap("Colour per category", x.colour_by_category, { limit: TOP_COLOURS, colour: true })))
    .catch((error) => catalog.replaceChildren(errorBox(error)));
  const windows = h("div", { class: "windows", role: "group", "aria-label": "window" }, WINDOWS.map(([label, value]) =>
    h("a", { class: value === since ? "button active" : "button", href: `#/insights?since=${value}` }, label)));
  return { node: h("section", { class: "insights" },
    h("h1", null, "Insights"), windows, searches,
    h("h2", { class: "insights-head" }, "Catalog"), catalog) };
}

function report(r) {
  const tiles = [
    ["searches", r.searches], ["clicks", r.clicks], ["searches clicked", r.searches ? percent(r.clicked_searches / r.searches) : "–"],
    ["found nothing", r.zero_result_searches],
    ["mean latency", r.avg_latency_ms === null ? "–" : `${Math.round(r.avg_latency_ms)} ms`],
  ];
  const kinds = Object.entries(r.by_kind).map(([k, n]) => `${k} ${n}`).join(", ") || "none";
  const link = (q) => h("a", { href: `#/search?${new URLSearchParams({ q })}` }, q);
  return [
    h("p", { class: "muted" }, `${r.window.since.slice(0, 16).replace("T", " ")} to `
      + `${r.window.until.slice(0, 16).replace("T", " ")} UTC · by kind: ${kinds}`),
    h("div", { class: "tiles" }, tiles.map(([k, v]) => h("div", { class: "tile" },
      h("div", { class: "tile-value" }, typeof v === "number" ? v.toLocaleString() : v), h("div", null, k)))),
    hours(r.busiest_hours),
    h("div", { class: "insight-tables" },
      table("Top queries", ["query", "searches", "avg results", "clicks"], r.top_queries,
        (q) => [link(q.query), q.searches, fixed(q.avg_results), q.clicks], "top-queries"),
      table("Found nothing", ["query", "searches", "last"], r.zero_result_queries,
        (q) => [link(q.query), q.searches, (q.last || "").slice(0, 16).replace("T", " ")], "zero-queries"),
      table("Results but no clicks", ["query", "searches", "avg results"], r.no_click_queries,
        (q) => [link(q.query), q.searches, fixed(q.avg_results)], "no-click-queries"),
      table("Click-through by surface", ["surface", "searches", "clicks", "searches clicked"], r.by_surface,
        (s) => [s.surface, s.searches, s.clicks, percent(s.ctr)], "surfaces")),
  ];
}

function fixed(value) {
  return value === null || value === undefined ? "" : Number(value).toFixed(1);
}

function table(title, columns, rows, cells, name) {
  return h("figure", { class: "chart", "data-table": name }, h("figcaption", null, title),
    rows.length ? h("div", { class: "table-wrap" }, h("table", null,
      h("thead", null, h("tr", null, columns.map((c, i) => h("th", { class: i ? "num" : null }, c)))),
      h("tbody", null, rows.map((row) => h("tr", null, cells(row).map((v, i) => h("td",
        { class: i ? "num" : null }, typeof v === "number" ? v.toLocaleString() : v)))))))
      : h("p", { class: "empty" }, "None in this window."));
}

/** Searches per hour of the day (UTC): 24 vertical CSS bars. */
function hours(rows) {
  const top = Math.max(1, ...rows.map((r) => r.searches));
  return h("figure", { class: "chart hours-chart" }, h("figcaption", null, "Searches by hour of the day (UTC)"),
    h("div", { class: "hours", role: "list" }, rows.map((r) => h("div", { class: "hour", role: "listitem",
      title: `${String(r.hour).padStart(2, "0")}:00 – ${r.searches} searches`, dataset: { hour: r.hour } },
      h("span", { class: "hour-bar", style: { height: `calc(${(r.searches / top).toFixed(4)} * (100% - 1rem))` } }),
      h("span", { class: "hour-label" }, r.hour % 3 === 0 ? String(r.hour).padStart(2, "0") : "")))));
}

/** A cross-tab as a heatmap table: the commonest categories by the commonest values, each cell shaded by its share
 * of the category's products. */
function heatmap(title, crosstab, { limit = 12, colour = false } = {}) {
  const categories = Object.keys(crosstab || {}).slice(0, TOP_CATEGORIES);
  const totals = new Map();
  for (const row of Object.values(crosstab || {})) {
    for (const [value, n] of Object.entries(row)) totals.set(value, (totals.get(value) || 0) + n);
  }
  const values = [...totals].sort((a, b) => b[1] - a[1]).slice(0, limit).map(([v]) => v);
  if (!categories.length) return h("p", { class: "empty" }, "The catalog is empty.");
  const head = h("tr", null, h("th", null, "category"), values.map((v) => h("th", { class: "num" },
    colour ? h("span", { class: "swatch", style: { background: cssColour(v) } }) : null, v)), h("th", { class: "num" }, "all"));
  const body = categories.map((category) => {
    const row = crosstab[category];
    const all = Object.values(row).reduce((sum, n) => sum + n, 0) || 1;
    return h("tr", null, h("th", { scope: "row" }, category), values.map((v) => {
      const n = row[v] || 0;
      return h("td", { class: "num heat", title: `${category}, ${v}: ${n} (${percent(n / all)})`,
        style: { background: n ? `rgba(180, 35, 90, ${(0.08 + 0.8 * (n / all)).toFixed(2)})` : null,
          color: n / all > 0.55 ? "#fff" : null } }, n ? n.toLocaleString() : "");
    }), h("td", { class: "num muted" }, all.toLocaleString()));
  });
  return h("figure", { class: "chart crosstab" }, h("figcaption", null, title),
    h("div", { class: "table-wrap" }, h("table", null, h("thead", null, head), h("tbody", null, body))));
}
