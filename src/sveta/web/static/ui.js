// Shared helpers of the web page: the API client, DOM building, product cards, the filter form.

/** An API error: the server's JSON envelope {"error": {code, message, hint}}. */
export class ApiError extends Error {
  constructor(status, message, hint) {
    super(message);
    this.status = status;
    this.hint = hint || "";
  }
}

/** GET (or POST with `body`) an /api path; JSON back, or an ApiError. */
export async function api(path, { body, params } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    for (const v of [].concat(value)) {
      if (v !== undefined && v !== null && v !== "" && v !== false) url.searchParams.append(key, v);
    }
  }
  let response;
  try {
    response = await fetch(url, body ? { method: "POST", body, headers: origin() } : { headers: origin() });
  } catch (error) {
    throw new ApiError(0, `the server did not answer (${error.message})`, "is `sveta serve` running?");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.message || `HTTP ${response.status}`, error.hint);
  }
  return data;
}

/** Where the page's calls come from, for the search insights: the web page, and its address without the hash. */
function origin() {
  return { "X-Sveta-Surface": "web", "X-Sveta-Page": location.origin + location.pathname };
}

/** Record the clicks on the result cards in `container` for the search insights: the answer's `searchId` and the
 * card's place (from 1). Fire and forget: a click that is not recorded never stops the shopper. */
export function recordClicks(container, searchId) {
  container.addEventListener("click", (event) => {
    const card = event.target.closest(".card[data-product]");
    if (!card || !container.contains(card)) return;
    const position = [...container.querySelectorAll(".card[data-product]")].indexOf(card) + 1;
    const body = JSON.stringify({ search_id: searchId ?? null, product_id: Number(card.dataset.product), position,
      surface: "web", page: location.origin + location.pathname });
    fetch("/api/events/click", { method: "POST", body, keepalive: true,
      headers: { "Content-Type": "application/json", ...origin() } }).catch(() => {});
  });
  return container;
}

/** h("div", {class: "x", onclick: f}, child, "text", [more]): an element; null/false children are skipped. */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "style" && typeof value === "object") {
      for (const [name, v] of Object.entries(value)) {
        if (v !== null && v !== undefined) node.style.setProperty(name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), v);
      }
    }
    else if (key === "dataset") {
      for (const [name, v] of Object.entries(value)) if (v !== null && v !== undefined) node.dataset[name] = v;
    }
    else node.setAttribute(key, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

/** An error box with the API's message and hint. */
export function errorBox(error) {
  return h("div", { class: "error", role: "alert" },
    h("strong", null, error.message || String(error)),
    error.hint ? h("div", { class: "hint" }, error.hint) : null);
}

export function spinner(text = "Loading…") {
  return h("div", { class: "loading", role: "status" }, h("span", { class: "spin" }), text);
}

export function percent(score) {
  return `${Math.round(score * 100)}%`;
}

export function price(value, currency) {
  if (value === null || value === undefined) return null;
  try {
    return new Intl.NumberFormat(undefined, currency ? { style: "currency", currency } : {}).format(value);
  } catch {
    return `${value} ${currency || ""}`.trim();
  }
}

/** The photo of a result: the very photo that matched when the result names it, else the product's first. */
export function photoOf(item) {
  return item.image_id ? `/api/images/${item.image_id}` : `/api/products/${item.product_id}/image`;
}

/** A product card: photo, title, score (or slot and reason), colour / gender / price, why it matched (`why`);
 * opens the product page. */
export function card(item, { reason = false, slot = false, score = true, why = false } = {}) {
  const facts = [item.category, item.colour, item.gender, price(item.price, item.currency)].filter(Boolean);
  const dataset = { product: item.product_id, category: item.category, colour: item.colour, gender: item.gender };
  return h("a", { class: "card", href: `#/product/${item.product_id}`, dataset },
    h("div", { class: "thumb" },
      h("img", { src: photoOf(item), alt: item.title, loading: "lazy", onerror: brokenImage })),
    slot && item.slot ? h("div", { class: "slot" }, item.slot) : null,
    h("div", { class: "title" }, item.title),
    h("div", { class: "facts" }, facts.join(" · ")),
    score && item.score !== undefined ? h("div", { class: "score", title: "similarity" }, percent(item.score)) : null,
    reason && item.reason ? h("div", { class: "reason" }, item.reason) : null,
    why && item.why && item.why.length
      ? h("ul", { class: "why", "aria-label": "why it matched" }, item.why.map((w) => h("li", null, w))) : null);
}

function brokenImage(event) {
  event.target.replaceWith(h("span", { class: "no-photo" }, "no photo"));
}

export function cards(items, options) {
  if (!items.length) return h("p", { class: "empty" }, "Nothing matches these filters.");
  return h("div", { class: "cards" }, items.map((item) => card(item, options)));
}

const KEY_NAMES = { price_min: "over", price_max: "under", excluded: "not" };

/** A chip's words for one part of what was understood: "colour: Red", "brand: Nike", "under 50", "not: Black". */
export function chipLabel(span) {
  const [key, sub] = span.key.split(".");
  if (key === "excluded") return `not: ${span.value}`;
  if (key === "price_min" || key === "price_max") return `${KEY_NAMES[key]} ${span.value}`;
  return `${(sub || key).replace(/_/g, " ")}: ${span.value}`;
}

/** `text` without the characters [start, end) (code points, as the API counts them), spaces tidied. */
export function cutSpan(text, start, end) {
  const chars = Array.from(text);
  return [...chars.slice(0, start), " ", ...chars.slice(end)].join("").replace(/\s+/g, " ").trim();
}

/** What the words were understood as: one removable chip per span of the words (spans over the very same words,
 * "between 20 and 40", share a chip); the chip's × calls `onRemove(start, end)`. Null when nothing was understood. */
export function understoodChips(understood, onRemove) {
  const groups = new Map();
  for (const span of (understood && understood.spans) || []) {
    const at = `${span.start}:${span.end}`;
    if (!groups.has(at)) groups.set(at, []);
    groups.get(at).push(span);
  }
  if (!groups.size) return null;
  return h("div", { class: "understood", "aria-label": "what the words were understood as" },
    h("span", { class: "muted" }, "Understood:"),
    [...groups.values()].map((spans) => {
      spans.sort((a, b) => (b.key === "price_min") - (a.key === "price_min")); // "over 20, under 40"
      const { start, end, words } = spans[0];
      const label = spans.map(chipLabel).join(", ");
      return h("span", { class: "chip", title: `from “${words}”`, dataset: { key: spans.map((s) => s.key).join(" "),
        start, end } },
        h("span", { class: "chip-label" }, label),
        h("button", { type: "button", class: "chip-x", "aria-label": `remove ${label}`, title: `search without “${words}”`,
          onclick: () => onRemove(start, end) }, "×"));
    }));
}

const MAX_SIDE = 1600; // a phone's 12-megapixel photo goes up as a 1600-pixel JPEG: faster, and under the limit

/** A photo the server takes: JPEG/PNG/WEBP of at most MAX_SIDE pixels, upright; else the file as it is. */
export async function uploadable(file) {
  const plain = ["image/jpeg", "image/png", "image/webp"].includes(file.type) && file.size < 2_500_000;
  if (plain || typeof createImageBitmap !== "function") return file;
  try {
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
    const canvas = h("canvas", { width: Math.round(bitmap.width * scale), height: Math.round(bitmap.height * scale) });
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
    return blob || file;
  } catch {
    return file; // the server says what is wrong with it
  }
}

let facetsPromise = null;

/** The catalog's categories, colours and genders (from /api/stats), fetched once per page load. */
export function facets() {
  facetsPromise ||= api("/api/stats", { params: { top_words: 0 } }).then((s) => ({
    categories: Object.keys(s.by_category).filter((c) => c !== "unknown").sort(),
    colours: Object.keys(s.by_colour).filter((c) => c !== "unknown").sort(),
    genders: Object.keys(s.by_gender).filter((c) => c !== "unknown").sort(),
  })).catch(() => ({ categories: [], colours: [], genders: ["Men", "Women", "Boys", "Girls", "Unisex"] }));
  return facetsPromise;
}

function select(name, label, first, values, current) {
  return h("label", null, h("span", null, label),
    h("select", { name },
      h("option", { value: "" }, first),
      values.map((v) => h("option", { value: v, selected: v === current }, v))));
}

/** The filter form (category, colour, gender, price, in stock); `onchange(params)` runs on every change. */
export function filterForm(facetLists, values, onchange, { categoryLabel = "Any category" } = {}) {
  const form = h("form", { class: "filters" },
    select("category", "Category", categoryLabel, facetLists.categories, values.category),
    select("colour", "Colour", "Any colour", facetLists.colours, values.colour),
    select("gender", "Gender", "Any gender", facetLists.genders, values.gender),
    h("label", null, h("span", null, "Price from"),
      h("input", { name: "min_price", type: "number", min: 0, step: "any", inputmode: "decimal",
        value: values.min_price ?? "" })),
    h("label", null, h("span", null, "to"),
      h("input", { name: "max_price", type: "number", min: 0, step: "any", inputmode: "decimal",
        value: values.max_price ?? "" })),
    h("label", { class: "check" },
      h("input", { name: "in_stock", type: "checkbox", checked: Boolean(values.in_stock) }),
      h("span", null, "In stock")));
  const read = () => {
    const data = new FormData(form);
    const params = {};
    for (const key of ["category", "colour", "gender", "min_price", "max_price"]) {
      const value = String(data.get(key) || "").trim();
      if (value) params[key] = value;
    }
    if (data.get("in_stock")) params.in_stock = "true";
    return params;
  };
  form.addEventListener("change", () => onchange(read()));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onchange(read());
  });
  return form;
}

/** Distinct, stable colours for categories: golden-angle hues, the commonest first. */
export function palette(names) {
  const colours = new Map();
  names.forEach((name, i) => {
    const hue = (i * 137.508) % 360;
    const light = [45, 60, 35][Math.floor(i / 12) % 3];
    colours.set(name, `hsl(${hue.toFixed(1)} 70% ${light}%)`);
  });
  return colours;
}

const COLOURS = {
  "navy blue": "#1f2f5c", "off white": "#f3f0e6", "grey melange": "#a7a7a7", "turquoise blue": "#30c5d2",
  "sea green": "#2e8b57", "lime green": "#7ccd32", "fluorescent green": "#4dff4d", "mushroom brown": "#9b8069",
  "coffee brown": "#6f4e37", "burgundy": "#800020", "mustard": "#d6a510", "charcoal": "#36454f",
  "rust": "#b7410e", "mauve": "#c397b3", "nude": "#e3bc9a", "skin": "#e8b894", "cream": "#fffdd0",
  "copper": "#b87333", "bronze": "#cd7f32", "multi": "linear-gradient(90deg,#e4572e,#f0a202,#17a05d,#2e86de)",
  "metallic": "#aaa9ad", "blue": "#3f6fb5", "red": "#d23b3b", "green": "#3f9b55", "yellow": "#f2cf3a",
  "pink": "#f19ab8", "purple": "#7d4fb0", "brown": "#8a5a36", "orange": "#f08a24", "white": "#fff", "taupe": "#8b8589", "rose": "#e8a0b0", "steel": "#7b8a99", "unknown": "#ccc",
};

/** A CSS colour for a catalog colour name ("Navy Blue"), null when there is none. */
export function cssColour(name) {
  const key = name.toLowerCase();
  if (COLOURS[key]) return COLOURS[key];
  const plain = key.replace(/\s+/g, "");
  return CSS.supports("color", plain) ? plain : null;
}
