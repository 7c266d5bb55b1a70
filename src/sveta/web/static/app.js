// The web page's entry: hash routes (#/, #/product/ID, #/search?q=, #/photos, #/audit, #/stats, #/insights, #/map)
// to views.
import { insightsView } from "./insights.js";
import { lookView } from "./look.js";
import { mapView } from "./map.js";
import { auditView, photoSearchView, searchView, statsView } from "./pages.js";
import { productView } from "./product.js";
import { errorBox } from "./ui.js";

const view = document.getElementById("view");
const searchForm = document.getElementById("search-form");
let cleanup = null; // what the current view must undo when left (a resize listener, ...)

const routes = [
  [/^\/?$/, "look", () => lookView()],
  [/^\/product\/([^/?]+)$/, "product", (m) => productView(decodeURIComponent(m[1]))],
  [/^\/search$/, "search", (m, query) => searchView(query)],
  [/^\/photos$/, "photos", () => photoSearchView()],
  [/^\/audit$/, "audit", () => auditView()],
  [/^\/stats$/, "stats", () => statsView()],
  [/^\/insights$/, "insights", (m, query) => insightsView(query)],
  [/^\/map$/, "map", (m, query) => mapView(query)],
];

async function render() {
  const [path, search = ""] = location.hash.replace(/^#/, "").split("?");
  const query = new URLSearchParams(search);
  if (cleanup) cleanup();
  cleanup = null;
  for (const [pattern, name, make] of routes) {
    const match = path.match(pattern);
    if (!match) continue;
    document.body.dataset.route = name;
    for (const link of document.querySelectorAll("nav a[data-route]")) {
      link.classList.toggle("active", link.dataset.route === name);
    }
    searchForm.q.value = name === "search" ? query.get("q") || "" : searchForm.q.value;
    try {
      const made = await make(match, query);
      view.replaceChildren(made.node);
      cleanup = made.cleanup || null;
      if (made.ready) made.ready();
    } catch (error) {
      view.replaceChildren(errorBox(error));
    }
    if (name !== "look") window.scrollTo(0, 0);
    return;
  }
  view.replaceChildren(errorBox({ message: `no page ${path}`, hint: "go back to the photo page" }));
}

searchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const q = searchForm.q.value.trim();
  if (q) location.hash = `#/search?${new URLSearchParams({ q })}`;
});

window.addEventListener("hashchange", render);
render();
