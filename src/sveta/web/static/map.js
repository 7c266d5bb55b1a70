// The catalog map: every product's photo vector in 2-D (PCA or t-SNE), coloured by category; hover shows it.
import { api, errorBox, h, palette, spinner } from "./ui.js";

const PAD = 14;
const HIT = 12; // pixels within which the pointer is on a point

export function mapView(query) {
  const method = query.get("method") === "tsne" ? "tsne" : "pca";
  const state = { points: [], colours: new Map(), selected: query.get("category"), hover: null };
  const canvas = h("canvas", { class: "map-canvas", "aria-label": "map of the catalog's photos" });
  const overlay = h("canvas", { class: "map-overlay", "aria-hidden": "true" });
  const tip = h("a", { class: "map-tip", hidden: true });
  const area = h("div", { class: "map-area" }, canvas, overlay, tip);
  const legend = h("div", { class: "legend" });
  const caption = h("p", { class: "muted" }, spinner("Projecting the catalog…"));
  const switcher = h("div", { class: "switch", role: "group", "aria-label": "projection" },
    [["pca", "PCA"], ["tsne", "t-SNE"]].map(([m, label]) => h("a", {
      class: m === method ? "button active" : "button", href: `#/map?method=${m}`,
      "aria-pressed": String(m === method) }, label)));
  const node = h("section", { class: "map" }, h("div", { class: "map-head" }, h("h1", null, "Catalog map"), switcher),
    caption, area, legend);

  const draw = () => {
    const box = area.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    for (const c of [canvas, overlay]) {
      c.width = Math.round(box.width * ratio);
      c.height = Math.round(box.height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, box.width, box.height);
    // each axis fills the box: the map is a picture of neighbourhoods, its axes' units mean nothing
    const xs = Math.max(1e-9, ...state.points.map((p) => Math.abs(p.x)));
    const ys = Math.max(1e-9, ...state.points.map((p) => Math.abs(p.y)));
    for (const p of state.points) {
      p.sx = box.width / 2 + (p.x / xs) * (box.width / 2 - PAD);
      p.sy = box.height / 2 - (p.y / ys) * (box.height / 2 - PAD);
    }
    const order = state.selected ? [false, true] : [null];
    for (const pass of order) {
      for (const p of state.points) {
        const mine = p.category === state.selected;
        if (pass !== null && mine !== pass) continue;
        ctx.globalAlpha = state.selected && !mine ? 0.12 : 0.85;
        ctx.fillStyle = state.colours.get(p.category);
        ctx.beginPath();
        ctx.arc(p.sx, p.sy, mine ? 4 : 3, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    ctx.globalAlpha = 1;
    drawHover();
  };

  const drawHover = () => {
    const ctx = overlay.getContext("2d");
    const ratio = window.devicePixelRatio || 1;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    const p = state.hover;
    if (!p) return;
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#111";
    ctx.beginPath();
    ctx.arc(p.sx, p.sy, 7, 0, 2 * Math.PI);
    ctx.stroke();
  };

  const nearest = (event) => {
    const box = area.getBoundingClientRect();
    const x = event.clientX - box.left;
    const y = event.clientY - box.top;
    let best = null;
    let bestDistance = HIT * HIT;
    for (const p of state.points) {
      if (state.selected && p.category !== state.selected) continue;
      const d = (p.sx - x) ** 2 + (p.sy - y) ** 2;
      if (d < bestDistance) [best, bestDistance] = [p, d];
    }
    return best;
  };

  const show = (p) => {
    state.hover = p;
    drawHover();
    if (!p) {
      tip.hidden = true;
      return;
    }
    tip.href = `#/product/${p.product_id}`;
    tip.replaceChildren(h("img", { src: p.href, alt: "" }), h("span", { class: "tip-title" }, p.title),
      h("span", { class: "tip-category", style: { color: state.colours.get(p.category) } }, p.category));
    tip.hidden = false;
    const box = area.getBoundingClientRect();
    const left = p.sx + 170 > box.width ? p.sx - 170 : p.sx + 12;
    const top = Math.min(Math.max(0, p.sy - 40), box.height - 230);
    Object.assign(tip.style, { left: `${Math.max(0, left)}px`, top: `${Math.max(0, top)}px` });
  };

  area.addEventListener("pointermove", (event) => {
    if (event.target === tip || tip.contains(event.target)) return;
    if (event.pointerType === "mouse") show(nearest(event));
  });
  area.addEventListener("pointerleave", (event) => {
    if (event.pointerType === "mouse") show(null);
  });
  area.addEventListener("click", (event) => {
    if (tip.contains(event.target)) return; // the tip is a link to the product
    const p = nearest(event);
    if (p && event.pointerType !== "touch" && state.hover === p && matchMedia("(hover: hover)").matches) {
      location.hash = `#/product/${p.product_id}`;
    } else {
      show(p); // on a phone a tap shows the photo; a tap on it opens the product
    }
  });

  const renderLegend = (counts) => {
    legend.replaceChildren(...[...counts].map(([name, n]) => h("button", {
      type: "button", class: name === state.selected ? "legend-item active" : "legend-item",
      onclick: () => {
        state.selected = state.selected === name ? null : name;
        renderLegend(counts);
        show(null);
        draw();
      },
    }, h("span", { class: "swatch", style: { background: state.colours.get(name) } }), `${name} `,
    h("span", { class: "muted" }, n))));
  };

  let timer = null; // while the t-SNE map is being made: the next try
  let left = false; // the page was left: no more tries
  const showMap = (data) => {
    const counts = new Map();
    for (const p of data.points) counts.set(p.category, (counts.get(p.category) || 0) + 1);
    const sorted = new Map([...counts].sort((a, b) => b[1] - a[1]));
    state.points = data.points;
    state.colours = palette([...sorted.keys()]);
    renderLegend(sorted);
    show(null); // the points were replaced (the t-SNE map after the PCA one)
    draw();
    node.dataset.loaded = "true";
  };
  const describe = (data) => {
    const axes = data.explained.length
      ? ` The axes keep ${data.explained.map((v) => `${Math.round(v * 100)}%`).join(" and ")} of the variance.` : "";
    const text = `${data.count.toLocaleString()} of ${data.total.toLocaleString()} products, `
      + `${data.method === "tsne" ? "t-SNE" : "PCA"} of the index's photo vectors, coloured by category.${axes} `
      + "Hover (or tap) a point for its photo; click a category to pick it out.";
    if (data.status !== "computing") return [text];
    return [spinner("Computing the t-SNE map in the background: it appears here in a moment. "
      + "Meanwhile, the PCA map."), text];
  };
  const load = () => {
    timer = null;
    api("/api/map", { params: { method } }).then((data) => {
      if (left) return;
      showMap(data);
      caption.replaceChildren(...describe(data));
      if (data.status === "computing") timer = setTimeout(load, 2000);
    }).catch((error) => {
      if (!left) caption.replaceChildren(errorBox(error));
    });
  };
  window.addEventListener("resize", draw);
  const cleanup = () => {
    left = true;
    if (timer) clearTimeout(timer);
    window.removeEventListener("resize", draw);
  };
  return { node, ready: load, cleanup };
}
