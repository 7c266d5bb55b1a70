// The sveta storefront widget: <sveta-similar>, <sveta-complete-look> and <sveta-photo-search> for a shop's theme.
// Plain ES module, no build step. Settings: attributes api, key, link on an element or on one <sveta-config>;
// the API defaults to where this file was loaded from.
const HERE = new URL(".", import.meta.url).href;
const LINK = "/products/{handle}";

function settings(el) {
  const page = document.querySelector("sveta-config");
  const pick = (name, fallback) => el.getAttribute(name) ?? page?.getAttribute(name) ?? fallback;
  const api = pick("api", HERE);
  return { api: api.endsWith("/") ? api : `${api}/`, key: pick("key", ""), link: pick("link", LINK) };
}

// The page a search or click came from, for the insights: never the query string (it may hold a shopper's data).
const pageUrl = () => location.origin + location.pathname;

class SvetaError extends Error {
  constructor(status, message, hint) {
    super(message);
    this.status = status;
    this.hint = hint;
  }
}

function request(el, surface, path, init = {}) {
  const { api, key } = settings(el);
  const headers = { "X-Sveta-Surface": surface, "X-Sveta-Page": pageUrl(), ...init.headers };
  if (key) headers["X-API-Key"] = key;
  return fetch(new URL(path, api), { ...init, headers, mode: "cors", credentials: "omit" });
}

// The API's answer as JSON, or a SvetaError with its message and hint (a refused origin's 403 included).
async function call(el, surface, path, init) {
  let response;
  try {
    response = await request(el, surface, path, init);
  } catch (error) {
    const { api } = settings(el);
    throw new SvetaError(
      0,
      `could not reach the sveta server at ${api} (${error.message})`,
      `is it running, and is this page's origin ${location.origin} in SVETA_CORS_ORIGINS?`,
    );
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = body?.error || {};
    throw new SvetaError(response.status, error.message || `HTTP ${response.status}`, error.hint);
  }
  return body;
}

function report(el, error) {
  const product = el.getAttribute("product");
  const who = `<${el.localName}${product === null ? "" : ` product="${product}"`}>`;
  const line = `sveta: ${who}: ${error.message}${error.hint ? ` (${error.hint})` : ""}`;
  if (error.status === 404) console.warn(line);
  else console.error(line);
}

// A click on a card: recorded for the insights; keepalive lets it outlive the page the link leaves.
function beacon(el, surface, answer, item, position) {
  const body = {
    search_id: answer.search_id ?? null,
    product_id: item.product_id,
    position,
    surface,
    page: pageUrl(),
  };
  const init = { method: "POST", keepalive: true, body: JSON.stringify(body) };
  init.headers = { "Content-Type": "application/json" };
  request(el, surface, "api/events/click", init).catch(() => {}); // the shopper's click goes on regardless
}

function href(item, template) {
  const fields = { handle: item.handle || item.source_id, source_id: item.source_id, id: item.product_id };
  const link = item.url || template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(fields[name] ?? ""));
  try {
    const url = new URL(link, document.baseURI);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : "#";
  } catch {
    return "#";
  }
}

function price(item) {
  if (item.price == null) return "";
  try {
    const style = item.currency ? { style: "currency", currency: item.currency } : {};
    return new Intl.NumberFormat(document.documentElement.lang || undefined, style).format(item.price);
  } catch {
    return `${item.price} ${item.currency || ""}`.trim();
  }
}

// A photo: a plain <img src> when reads are open; fetched with the key (an <img> cannot send it) when not.
async function photo(el, surface, img, path) {
  const { api, key } = settings(el);
  if (!key) {
    img.src = new URL(path, api).href;
    return;
  }
  const response = await request(el, surface, path).catch(() => null);
  if (!response?.ok) return;
  img.src = URL.createObjectURL(await response.blob());
  img.addEventListener("load", () => URL.revokeObjectURL(img.src), { once: true });
}

function make(tag, part, text) {
  const node = document.createElement(tag);
  if (part) node.setAttribute("part", part);
  if (text) node.textContent = text;
  return node;
}

const MARKS = { pin: "pinned", boost: "promoted" };

function card(el, surface, answer, item, position) {
  const li = make("li", "card");
  const link = make("a", "link");
  link.href = href(item, settings(el).link);
  const img = make("img", "photo");
  img.alt = item.title;
  img.loading = "lazy";
  img.decoding = "async";
  const path = item.image_id != null ? `api/images/${item.image_id}` : `api/products/${item.product_id}/image`;
  photo(el, surface, img, path);
  const title = make("span", "title", item.title);
  title.setAttribute("aria-hidden", "true"); // the photo's alt says it once for a screen reader
  link.append(img, title);
  if (item.slot) link.append(make("span", "slot", item.slot));
  link.append(make("span", "price", price(item)));
  const mark = item.rule && MARKS[item.rule.action];
  if (mark) {
    const badge = make("span", "badge", mark);
    badge.title = item.rule.says;
    link.append(badge);
  }
  link.addEventListener("click", () => beacon(el, surface, answer, item, position));
  li.append(link);
  return li;
}

function fill(el, list, surface, answer, items) {
  list.replaceChildren(...items.map((item, i) => card(el, surface, answer, item, i + 1)));
}

const CSS = `
:host{display:block;min-height:1px;font-family:var(--sveta-font,inherit);color:var(--sveta-text,inherit)}
:host([hidden]){display:none}
.sr{position:absolute;width:1px;height:1px;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
h2{font-size:var(--sveta-heading-size,1.15rem);margin:0 0 .6rem}
ul{list-style:none;margin:0;padding:4px;display:flex;gap:var(--sveta-gap,12px);overflow-x:auto;scroll-snap-type:x mandatory}
li{flex:0 0 var(--sveta-card-width,160px);scroll-snap-align:start}
a{display:flex;flex-direction:column;gap:4px;color:inherit;text-decoration:none;border-radius:var(--sveta-radius,8px)}
a:hover [part=title]{text-decoration:underline}
a:focus-visible,button:focus-visible,label:focus-within{outline:2px solid var(--sveta-accent,#111);outline-offset:2px}
img{display:block;width:100%;aspect-ratio:var(--sveta-image-ratio,3/4);object-fit:cover;border-radius:var(--sveta-radius,8px);background:var(--sveta-image-bg,#f2f2f2)}
[part=title]{font-size:.9rem;line-height:1.25;display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden}
[part=price]{font-weight:600}
[part=slot]{font-size:.75rem;color:var(--sveta-muted,#666);text-transform:capitalize}
[part=badge]{align-self:flex-start;font-size:.7rem;text-transform:uppercase;letter-spacing:.04em;padding:1px 6px;border-radius:999px;background:var(--sveta-accent,#111);color:var(--sveta-accent-text,#fff)}
button,label.pick{font:inherit;cursor:pointer;display:inline-flex;align-items:center;gap:.4em;padding:.5em .9em;border:0;border-radius:var(--sveta-radius,8px);background:var(--sveta-accent,#111);color:var(--sveta-accent-text,#fff)}
`;

// A row of cards for one product, fetched when it scrolls into view; an unknown product shows nothing.
class Row extends HTMLElement {
  static observedAttributes = ["product"];

  connectedCallback() {
    if (!this.shadowRoot) {
      const root = this.attachShadow({ mode: "open" });
      root.innerHTML = `<style>${CSS}</style><section part="row" hidden><h2 part="heading"></h2>
<ul part="list" role="list"></ul></section><p class="sr" role="status" aria-live="polite"></p>`;
      this.section = root.querySelector("section");
      this.list = root.querySelector("ul");
      this.status = root.querySelector("[role=status]");
    }
    this.watch();
  }

  disconnectedCallback() {
    this.observer?.disconnect();
  }

  attributeChangedCallback(name, before, after) {
    if (before !== null && before !== after && this.shadowRoot) {
      this.loaded = false;
      if (this.isConnected) this.watch();
    }
  }

  watch() {
    if (this.loaded) return;
    this.observer?.disconnect();
    this.observer = new IntersectionObserver(
      (entries) => {
        if (!entries.some((entry) => entry.isIntersecting)) return;
        this.observer.disconnect();
        this.loaded = true;
        this.show();
      },
      { rootMargin: "200px" },
    );
    this.observer.observe(this);
  }

  async show() {
    const product = (this.getAttribute("product") || "").trim();
    this.section.hidden = true;
    if (!product) {
      report(this, { status: 404, message: "no product attribute", hint: 'write product="HANDLE"' });
      return;
    }
    try {
      const { answer, items } = await this.fetchItems(encodeURIComponent(product));
      if (!items.length) {
        this.status.textContent = this.empty;
        return;
      }
      const heading = this.shadowRoot.querySelector("h2");
      heading.textContent = this.getAttribute("heading") ?? this.heading;
      heading.hidden = !heading.textContent; // heading="": no empty heading for a screen reader to land on
      this.list.setAttribute("aria-label", heading.textContent || this.heading);
      fill(this, this.list, this.surface, answer, items);
      this.section.hidden = false;
      this.status.textContent = this.counted(items.length);
    } catch (error) {
      this.list.replaceChildren();
      report(this, error);
    }
  }

  limit(fallback, most) {
    const n = Number.parseInt(this.getAttribute("limit") ?? "", 10);
    return Number.isFinite(n) && n > 0 ? Math.min(n, most) : fallback;
  }
}

class Similar extends Row {
  surface = "widget-similar";
  heading = "Similar items";
  empty = "no similar items";

  counted(n) {
    return `${n} similar item${n === 1 ? "" : "s"}`;
  }

  async fetchItems(ref) {
    const answer = await call(this, this.surface, `api/products/${ref}/similar?k=${this.limit(8, 48)}`);
    return { answer, items: answer.matches };
  }
}

class CompleteLook extends Row {
  surface = "widget-complete";
  heading = "Complete the look";
  empty = "nothing to complete the look with";

  counted(n) {
    return `${n} item${n === 1 ? "" : "s"} to complete the look`;
  }

  async fetchItems(ref) {
    const perSlot = this.limit(1, 10);
    const answer = await call(this, this.surface, `api/complete/${ref}?k=${perSlot}`);
    return { answer, items: answer.items }; // each carries its url, handle and currency: no fetch per item
  }
}

const PANEL_CSS = `
:host{display:inline-block}
dialog{width:min(92vw,var(--sveta-panel-width,880px));max-height:88vh;border:0;padding:1rem 1.2rem;border-radius:var(--sveta-radius,8px);background:var(--sveta-bg,#fff);color:var(--sveta-text,#111);font-family:var(--sveta-font,inherit)}
dialog::backdrop{background:rgb(0 0 0 / .45)}
.top{display:flex;justify-content:space-between;align-items:center;gap:1rem}
.top button{background:transparent;color:inherit;font-size:1.4rem;padding:.1em .45em}
.ask{display:flex;flex-wrap:wrap;gap:.6rem;align-items:center;margin:.4rem 0 .8rem}
label.pick{position:relative}
label.pick input{position:absolute;inset:0;opacity:0;width:100%;cursor:pointer}
form{display:flex;gap:.4rem;flex:1 1 16rem}
input[type=search]{flex:1;font:inherit;padding:.45em .6em;border:1px solid var(--sveta-muted,#999);border-radius:var(--sveta-radius,8px)}
dialog ul{flex-wrap:wrap;overflow:visible}
[part=status]{color:var(--sveta-muted,#666);margin:.2rem 0 .6rem}
svg{width:1.2em;height:1.2em}
`;
const CAMERA = `<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2">
<path d="M4 8h3l2-3h6l2 3h3v11H4z"/><circle cx="12" cy="13" r="3.5"/></svg>`;

// A button that opens a dialog: search the shop's catalog by a photo (upload or camera) or by words.
class PhotoSearch extends HTMLElement {
  surface = "widget-photo";

  connectedCallback() {
    if (this.shadowRoot) return;
    const root = this.attachShadow({ mode: "open" });
    const label = this.getAttribute("label") || "Search by photo";
    root.innerHTML = `<style>${CSS}${PANEL_CSS}</style>
<button type="button" part="button" aria-haspopup="dialog">${CAMERA}<span></span></button>
<dialog part="panel" aria-labelledby="title"><div class="top"><h2 id="title" part="heading"></h2>
<button type="button" class="close" part="close" aria-label="Close">&times;</button></div>
<div class="ask"><label class="pick" part="upload">Upload a photo<input type="file" name="photo" accept="image/*"></label>
<label class="pick" part="camera">Take a photo<input type="file" name="camera" accept="image/*" capture="environment">
</label><form part="form" role="search"><label class="sr" for="q">Search by words</label>
<input id="q" type="search" name="q" part="input" placeholder="or describe it: red dress" autocomplete="off">
<button part="submit">Search</button></form></div>
<p part="status" role="status" aria-live="polite"></p><ul part="list" role="list" aria-label="Results"></ul></dialog>`;
    this.button = root.querySelector("[part=button]");
    this.dialog = root.querySelector("dialog");
    this.list = root.querySelector("ul");
    this.status = root.querySelector("[role=status]");
    this.button.querySelector("span").textContent = label;
    root.querySelector("h2").textContent = label;
    this.button.addEventListener("click", () => this.open());
    root.querySelector(".close").addEventListener("click", () => this.dialog.close());
    this.dialog.addEventListener("close", () => this.button.focus()); // Escape or Close: back where the shopper was
    for (const input of root.querySelectorAll("input[type=file]")) {
      input.addEventListener("change", () => this.byPhoto(input));
    }
    root.querySelector("form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.byWords(event.target.q.value.trim());
    });
  }

  open() {
    this.dialog.showModal();
    this.shadowRoot.querySelector("input[name=photo]").focus();
  }

  byPhoto(input) {
    const file = input.files[0];
    input.value = ""; // the same photo chosen again searches again
    if (!file) {
      this.status.textContent = "no photo chosen";
      return;
    }
    const form = new FormData();
    form.append("file", file, file.name || "photo.jpg");
    const init = { method: "POST", body: form };
    this.search(`api/search/photo?k=${this.limit()}`, init, `photos like ${file.name || "your photo"}`);
  }

  byWords(words) {
    if (!words) {
      this.status.textContent = "type what you are looking for";
      return;
    }
    this.search(`api/search/text?k=${this.limit()}&q=${encodeURIComponent(words)}`, {}, `“${words}”`);
  }

  async search(path, init, what) {
    this.status.textContent = "searching…";
    this.list.replaceChildren();
    try {
      const answer = await call(this, this.surface, path, init);
      fill(this, this.list, this.surface, answer, answer.matches);
      const n = answer.matches.length;
      this.status.textContent = n ? `${n} result${n === 1 ? "" : "s"} for ${what}` : `nothing found for ${what}`;
    } catch (error) {
      this.status.textContent = "the search failed";
      report(this, error);
    }
  }

  limit() {
    const n = Number.parseInt(this.getAttribute("limit") ?? "", 10);
    return Number.isFinite(n) && n > 0 ? Math.min(n, 48) : 12;
  }
}

for (const [name, element] of [
  ["sveta-similar", Similar],
  ["sveta-complete-look", CompleteLook],
  ["sveta-photo-search", PhotoSearch],
]) {
  if (!customElements.get(name)) customElements.define(name, element);
}
