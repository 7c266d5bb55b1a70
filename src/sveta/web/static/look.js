// The photo page: drop, choose or take a photo; its garments drawn as boxes, each with filtered matches.
import { api, cards, cssColour, errorBox, facets, filterForm, h, percent, spinner, uploadable } from "./ui.js";

const K = 8;
const BOX_COLOURS = ["#e4572e", "#2e86de", "#17a05d", "#a05cd6", "#f0a202", "#d6336c"];
const WEARERS = ["Women", "Men", "Girls", "Boys"];
const ANYONE = "anyone";
// {blob, url, name, result, filters: {i: params}, wearer: params}: kept while the page is left and re-entered;
// `wearer` is whom the whole look is for: {} (as the server guesses), {gender} or {assume: "false"}
let current = null;

export function lookView() {
  const node = h("section", { class: "look" });
  const result = h("div", { class: "look-result" });
  const status = h("div", { class: "look-status", "aria-live": "polite" });
  node.append(dropZone((file) => upload(file, status, result)), status, result);
  if (current && current.result) renderResult(result);
  return { node };
}

function dropZone(onFile) {
  const pick = (capture) => {
    const input = h("input", { type: "file", accept: "image/*", capture: capture ? "environment" : null,
      class: "visually-hidden", "data-testid": capture ? "camera" : "file" });
    input.addEventListener("change", () => input.files[0] && onFile(input.files[0]));
    return input;
  };
  const zone = h("div", { class: "drop", tabindex: 0 },
    h("p", { class: "drop-title" }, "Drop a photo of an outfit here"),
    h("p", { class: "drop-sub" }, "sveta finds each garment and the catalog's items that look like it."),
    h("div", { class: "drop-buttons" },
      h("label", { class: "button primary" }, pick(true), "Take a photo"),
      h("label", { class: "button" }, pick(false), "Choose a photo")));
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
    const file = [...(event.dataTransfer.files || [])].find((f) => f.type.startsWith("image/"));
    if (file) onFile(file);
  });
  return zone;
}

async function upload(file, status, result) {
  status.replaceChildren(spinner("Finding the garments…"));
  result.replaceChildren();
  try {
    const blob = await uploadable(file);
    if (current && current.url) URL.revokeObjectURL(current.url);
    current = { blob, name: file.name || "photo.jpg", url: URL.createObjectURL(blob), filters: {}, wearer: {} };
    current.result = await look({});
    status.replaceChildren();
    renderResult(result);
  } catch (error) {
    status.replaceChildren(errorBox(error));
  }
}

function look(params) {
  const body = new FormData();
  body.append("file", current.blob, current.name);
  return api("/api/look", { body, params: { k: K, ...current.wearer, ...params } }); // a garment's gender wins
}

/** "Shown for: Women ▾": whom the matches are for, as the server guessed it; another choice re-runs the look. */
function wearerPicker(target) {
  const { result, wearer } = current;
  const chosen = wearer.gender || (wearer.assume === "false" ? ANYONE : result.assumed?.gender || ANYONE);
  const picker = h("select", { name: "wearer", "aria-label": "Shown for" },
    [...WEARERS, ANYONE].map((v) => h("option", { value: v, selected: v === chosen }, v)));
  const status = h("span", { class: "muted" },
    result.assumed && !wearer.gender ? ` guessed, ${percent(result.assumed.confidence)} sure` : "");
  picker.addEventListener("change", async () => {
    current.wearer = picker.value === ANYONE ? { assume: "false" } : { gender: picker.value };
    picker.disabled = true;
    status.replaceChildren(spinner("Searching again…"));
    try {
      current.result = await look({});
      current.filters = {};
      renderResult(target);
    } catch (error) {
      status.replaceChildren(errorBox(error));
      picker.disabled = false;
    }
  });
  return h("div", { class: "wearer", style: { "margin-top": "0.4rem" } },
    h("label", null, "Shown for: ", picker), status);
}

function renderResult(target) {
  const { result } = current;
  const [width, height] = result.size;
  const boxes = result.garments.map((g, i) => {
    const [x0, y0, x1, y1] = g.box;
    return h("button", {
      class: "box", type: "button", "data-index": i, "aria-label": `${g.category || g.region}: show its matches`,
      style: { left: `${(100 * x0) / width}%`, top: `${(100 * y0) / height}%`, width: `${(100 * (x1 - x0)) / width}%`,
        height: `${(100 * (y1 - y0)) / height}%`, "--box": BOX_COLOURS[i % BOX_COLOURS.length] },
      onclick: () => focusGarment(target, i),
    }, h("span", { class: "box-label" }, `${i + 1}. ${g.category || g.region}`));
  });
  const frame = h("figure", { class: "photo-frame" },
    h("div", { class: "photo-box" }, h("img", { src: current.url, alt: "your photo" }), boxes),
    h("figcaption", null, result.message),
    result.kind === "person" ? wearerPicker(target) : null);
  const garments = h("div", { class: "garments" });
  target.replaceChildren(frame, garments);
  if (!result.garments.length) {
    garments.append(wholePhoto());
    return;
  }
  facets().then((lists) => {
    garments.replaceChildren(...result.garments.map((g, i) => garmentSection(g, i, lists)));
  });
}

function garmentSection(garment, index, lists) {
  const colour = BOX_COLOURS[index % BOX_COLOURS.length];
  const results = h("div", { class: "garment-results" }, cards(garment.matches));
  const note = h("div", { class: "garment-note" });
  let asked = 0;
  const rerun = async (params) => {
    current.filters[index] = params;
    const ask = ++asked;
    results.classList.add("busy");
    note.replaceChildren(spinner("Searching with the filters…"));
    try {
      const answer = await look(params);
      if (ask !== asked) return;
      const again = answer.garments.find((g) => g.region === garment.region && g.person === garment.person)
        || answer.garments[index];
      garment.matches = again ? again.matches : [];
      results.replaceChildren(cards(garment.matches));
      note.replaceChildren(Object.keys(params).length ? `Filtered: ${describe(params)}` : "");
    } catch (error) {
      if (ask === asked) note.replaceChildren(errorBox(error));
    } finally {
      if (ask === asked) results.classList.remove("busy");
    }
  };
  const found = garment.searched_categories.length ? garment.searched_categories.join(", ") : "any";
  const filters = current.filters[index] || {};
  return h("section", { class: "garment", "data-index": index, style: { "--box": colour } },
    h("header", null,
      h("span", { class: "garment-number" }, index + 1),
      h("span", { class: "swatch", title: garment.colour, style: { background: cssColour(garment.colour) || `rgb(${garment.colour_rgb})` } }),
      h("h2", null, `${garment.colour} ${garment.category || garment.region}`),
      h("span", { class: "muted" }, `${garment.region} · ${percent(garment.confidence)} sure`)),
    h("details", { class: "filter-box", open: true },
      h("summary", null, "Filters"),
      filterForm(lists, filters, rerun, { categoryLabel: `As found (${found})` })),
    note, results);
}

function describe(params) {
  const names = { min_price: "from", max_price: "up to", in_stock: "in stock" };
  return Object.entries(params).map(([k, v]) => (k === "in_stock" ? names[k] : `${names[k] || ""} ${v}`.trim()))
    .join(", ");
}

function focusGarment(target, index) {
  for (const el of target.querySelectorAll(".garment, .box")) {
    el.classList.toggle("focused", Number(el.dataset.index) === index);
  }
  const section = target.querySelector(`.garment[data-index="${index}"]`);
  if (section) section.scrollIntoView({ behavior: "smooth", block: "start" });
}

/** No garment found: the catalog's items most like the whole photo. */
function wholePhoto() {
  const box = h("section", { class: "garment" }, h("h2", null, "Similar to the whole photo"), spinner());
  const body = new FormData();
  body.append("file", current.blob, current.name);
  api("/api/search/photo", { body, params: { k: K } })
    .then((r) => box.replaceChildren(h("h2", null, "Similar to the whole photo"), cards(r.matches)))
    .catch((error) => box.replaceChildren(errorBox(error)));
  return box;
}
