/* mkdocs-sanet: the demo as a custom element, <sanet-demo>.
 *
 *   <script src="sanet/sanet-demo.js" defer></script>
 *   <sanet-demo></sanet-demo>
 *
 * is all a page needs: the model, the TF.js runtime, the presets and the stylesheet are found
 * beside this script (model/, tfjs/, presets/presets.json, sanet-demo.css), as
 * `mkdocs-sanet export` lays them out. Attributes (URLs relative to the page) override that:
 *   model, runtime        the model's and the runtime's folders
 *   contents, styles      the preset pictures, comma-separated URLs
 *   content-src, style-src  the picture selected at first (added to the presets if not one)
 *   href                  what the pictures' URLs (contents, styles, content-src, style-src,
 *                         style2-src) are relative to, itself relative to the page (default: the
 *                         page): mkdocs_sanet.zensical writes the site's root there, as a link that
 *                         Zensical rewrites for each page the element lands on (a blog excerpt)
 *   max-size, strength, backends ("webgl,wasm": Auto's order)
 *   passes (1-3), style2-src (the second painting), mix (its share, 0-1), keep-colors, webcam
 *     ("true"/"false"): the reader options' defaults (data-sanet-passes, … on MkDocs pages)
 *   service-worker        static/sanet-sw.js's URL: WASM on several threads (isolate below);
 *                         the same attribute on MkDocs pages (the plugin's threads option)
 *
 * The MkDocs plugin renders the element with its UI in it (page_assets.render_demo) and its
 * settings in data-sanet-* attributes; the element wires up that markup, and renders the same
 * markup itself when there is none (render below). Its state is in data-sanet-state (idle,
 * loading, warming-up, running, done, error), data-sanet-backend and data-sanet-seconds; after
 * a WASM run data-sanet-threads, and with a service-worker attribute data-sanet-threads-note
 * (why the page has one thread; "" when it is cross-origin isolated).
 *
 * mkdocs-material's instant navigation runs this script again on each page change: the element
 * is defined once, and the browser upgrades the elements of each new page.
 * Nothing leaves the browser: pictures are read locally and the model runs here.
 */
(function () {
  "use strict";
  if (window.customElements.get("sanet-demo")) return;
  const here = document.currentScript ? document.currentScript.src : location.href;
  const base = here.replace(/[^/]*$/, "");
  const LABELS = {webgpu: "WebGPU", webgl: "WebGL", wasm: "WASM", cpu: "CPU"};
  const BACKENDS = ["webgpu", "webgl", "wasm", "cpu"];
  const SIZES = [128, 256, 384, 512, 768, 1024];
  // The webcam's frames: longest side, px. The mask is drawn on a photo this large.
  const WEBCAM_SIZE = 160;
  const BRUSH_SIZE = 320;
  let demos = 0;

  function addOnce(selector, make) {
    if (!document.querySelector(selector)) document.head.appendChild(make());
  }

  // The stylesheet, unless the page links it already (an MkDocs page does).
  addOnce('link[href$="sanet-demo.css"]', () => Object.assign(
    document.createElement("link"), {rel: "stylesheet", href: base + "sanet-demo.css"}));

  // The model API (static/sanet.js), loaded once.
  const api = window.sanet ? Promise.resolve() : new Promise((resolve, reject) => {
    const script = Object.assign(document.createElement("script"), {src: base + "sanet.js"});
    script.onload = resolve;
    script.onerror = () => reject(new Error(`could not load ${script.src}`));
    document.head.appendChild(script);
  });

  function formatMB(bytes) {
    return (bytes / 1e6).toFixed(1) + " MB";
  }

  const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

  /* A picture's URL as the element's attributes give it: relative to its href (the page's URL
   * when it has none). */
  function pictureUrl(element, value) {
    return new URL(value, new URL(element.getAttribute("href") || "", document.baseURI)).href;
  }

  function folderUrl(value) {
    const url = new URL(value, document.baseURI).href;
    return url.endsWith("/") ? url : url + "/";
  }

  /* A picture's title from its file name: "content-my_cat.jpg" -> "My cat". */
  function nameLabel(name) {
    const stem = name.replace(/\.[^.]*$/, "").replace(/^(content|style)-/, "").replace(/[_-]/g, " ").trim();
    return stem.charAt(0).toUpperCase() + stem.slice(1).toLowerCase();
  }

  /* The title of a picture at a URL: its last segment, decoded where it is percent-encoded (a
   * hand-written attribute may hold a raw '%', which decodeURIComponent refuses: kept as written). */
  function presetLabel(url) {
    let name = url.split(/[?#]/)[0].split("/").pop();
    try {
      name = decodeURIComponent(name);
    } catch (error) {
      // "50%.jpg": not an escape, the name itself
    }
    return nameLabel(name);
  }

  /* presets.json lists file names (page_assets.presets_index), not URLs: each segment encoded, so
   * that a '%', '#', '?' or space in a name is part of the name. */
  function fileUrl(name, base) {
    return new URL(String(name).split("/").map(encodeURIComponent).join("/"), base).href;
  }

  /* The sizes offered up to maxSize (page_assets.size_choices). */
  function sizeChoices(maxSize) {
    return [...new Set([...SIZES.filter((size) => size < maxSize), maxSize])].sort((a, b) => a - b);
  }

  /* The pictures a hand-written element offers, as {url, title, by}: its attribute (titles from
   * the file names), else presets/presets.json (its titles, a painting's artist and year). */
  async function presetUrls(element, role) {
    const listed = element.getAttribute(role + "s");
    if (listed != null) {
      return listed.split(",").map((url) => url.trim()).filter(Boolean)
        .map((url) => pictureUrl(element, url)).map((url) => ({url, title: presetLabel(url), by: ""}));
    }
    const index = new URL("presets/presets.json", base);
    const response = await fetch(index);
    if (!response.ok) throw new Error(`could not load ${index} (HTTP ${response.status})`);
    const presets = await response.json();
    return presets[role].map((name) => {
      const about = (presets.titles || {})[name] || {};
      const by = [about.artist, about.year].filter(Boolean).join(", ");
      return {url: fileUrl(name, index), title: about.title || nameLabel(String(name).split("/").pop()), by};
    });
  }

  /* A picker's markup (demo_html._picker): each picture with its title (and a painting's artist
   * and year) under it. */
  function picker(role, legend, fileLabel, presets, selected) {
    const buttons = presets.map(({url, title, by}) => {
      const credit = escape(by ? `${title}, ${by}` : title);
      return `<span class="sanet-demo__option">` +
        `<button type="button" class="sanet-demo__preset" data-sanet-src="${escape(url)}" ` +
        `aria-pressed="${url === selected}" title="${credit}" data-sanet-title="${escape(title)}" ` +
        `data-sanet-by="${escape(by)}">` +
        `<img src="${escape(url)}" alt="${credit}" loading="lazy" decoding="async"></button>` +
        `<span class="sanet-demo__caption" aria-hidden="true">${escape(title)}` +
        (by ? `<span class="sanet-demo__by">${escape(by)}</span>` : "") + `</span></span>`;
    }).join("");
    return `<fieldset class="sanet-demo__picker" data-sanet-role="${role}"><legend>${legend}</legend>` +
      `<div class="sanet-demo__presets">${buttons}</div>` +
      `<label class="sanet-demo__file">${fileLabel} ` +
      `<input type="file" accept="image/*" data-sanet-file="${role}"></label></fieldset>`;
  }

  const PICTURE_KINDS = "pick a JPEG, PNG, WebP or GIF picture";

  /* Why the reader's file cannot be a photo or a painting (one line naming it), or "" when this
   * browser decodes it as a picture. An SVG is a drawing the model cannot take as it is. */
  async function pictureProblem(file) {
    const name = `“${file.name}”`;
    if (file.type === "image/svg+xml" || /\.svgz?$/i.test(file.name)) {
      return `${name} is an SVG drawing, not a picture the demo can use: ${PICTURE_KINDS}.`;
    }
    if (!file.size) return `${name} is empty: ${PICTURE_KINDS}.`;
    try {
      const bitmap = await createImageBitmap(file);
      const ok = bitmap.width > 0 && bitmap.height > 0;
      bitmap.close();
      if (ok) return "";
    } catch (error) {
      // not decodable: said below
    }
    return file.type && !file.type.startsWith("image/")
      ? `${name} is not a picture (${file.type}): ${PICTURE_KINDS}.`
      : `${name} is not a picture this browser can read: ${PICTURE_KINDS}.`;
  }

  function loadImage(url) {
    return new Promise((resolve, reject) => {
      const image = new Image();
      image.onload = () => resolve(image);
      image.onerror = () => reject(new Error(`could not load the image ${url}`));
      image.src = url;
    });
  }

  /* The image drawn on a canvas at the size the model gets (longest side at most maxSize):
   * upright by its EXIF orientation, on sanet.BACKGROUND where it is transparent, as the
   * Python pipeline does (pipeline.upright_rgb). */
  async function imageCanvas(source, maxSize) {
    const image = source instanceof Blob
      ? await createImageBitmap(source, {imageOrientation: "from-image"}) : await loadImage(source);
    const naturalWidth = image.naturalWidth || image.width;
    const naturalHeight = image.naturalHeight || image.height;
    const [width, height] = sanet.fitSize(naturalWidth, naturalHeight, maxSize);
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext("2d", {willReadFrequently: true});
    context.fillStyle = sanet.BACKGROUND;
    context.fillRect(0, 0, width, height);
    context.imageSmoothingQuality = "high";
    context.drawImage(image, 0, 0, width, height);
    if (image.close) image.close();
    return canvas;
  }

  /* "WASM (WebGL is software-rendered here), 2 threads": the backend, why it was chosen, its threads. */
  function describe(backend, note) {
    const threads = sanet.threads(backend);
    const count = threads ? `, ${threads} thread${threads === 1 ? "" : "s"}` : "";
    return `${LABELS[backend] || backend}${note ? ` (${note})` : ""}${count}`;
  }

  // Whether the reader has clicked, typed or scrolled on this page since the script started.
  let interacted = false;
  for (const type of ["pointerdown", "keydown", "wheel", "touchstart"]) {
    window.addEventListener(type, () => { interacted = true; }, {capture: true, passive: true});
  }
  const RELOADED = "sanet-sw-reloaded:";
  const CONTROL_TIMEOUT_MS = 5000;
  let isolation = null;

  /* Cross-origin isolation, for the WASM backend's threads, through the service worker
   * static/sanet-sw.js at `workerUrl` (it adds COOP and COEP to the pages with a demo in its
   * folder). Once per page: resolves to "" when the page is isolated, else why not (the demo then
   * runs on one thread, as without it). A page is isolated when it was loaded through the worker;
   * TF.js 4.22 then runs on half the logical cores (navigator.hardwareConcurrency / 2, at most 8:
   * many CPUs have two logical cores per physical one).
   * Reload policy: right after the worker's first registration the page reloads once, before its
   * demos are ready, if it was loaded as itself (not by mkdocs-material's instant navigation), the
   * reader has not clicked, typed or scrolled yet, and this tab has not reloaded this page for it
   * before (sessionStorage: never a loop); otherwise threads come with the next visit. */
  function isolate(workerUrl) {
    if (!isolation) isolation = isolateOnce(workerUrl).catch((error) => `the service worker failed (${error.message})`);
    return isolation;
  }

  async function isolateOnce(workerUrl) {
    const cores = navigator.hardwareConcurrency || 1;
    if (window.crossOriginIsolated) {
      keepIsolationHere();
      return cores >= 4 ? "" : `TF.js runs on half of the logical cores, and this device reports ${cores}`;
    }
    if (!window.isSecureContext) return "threads need HTTPS: this page is not a secure context";
    if (!("serviceWorker" in navigator)) return "this browser has no service workers";
    const url = new URL(workerUrl, document.baseURI).href;
    const scope = new URL("./", url).href;
    const existing = await navigator.serviceWorker.getRegistration(scope);
    const ours = existing && [existing.active, existing.waiting, existing.installing].some((w) => w && w.scriptURL === url);
    if (existing && !ours) return "another service worker serves this page";
    const controlled = Boolean(navigator.serviceWorker.controller);
    try {
      await navigator.serviceWorker.register(url, {scope});
    } catch (error) {
      return `the service worker could not be registered (${error.message})`;
    }
    if (!document.querySelector('meta[name="sanet-isolation"]')) {
      return "this page is not isolated: it shows another page's demo (an excerpt), or embeds a frame from another origin";
    }
    const navigation = performance.getEntriesByType("navigation")[0];
    const ownLoad = !navigation || navigation.name.split("#")[0] === location.href.split("#")[0];
    if (!ownLoad) return "the page was opened by instant navigation: threads from the next full load";
    if (controlled) return "the browser did not isolate the page (it may not support Cross-Origin-Embedder-Policy: credentialless)";
    const next = "threads from the next visit (the service worker was just installed)";
    const key = RELOADED + location.pathname;
    try {
      if (interacted || sessionStorage.getItem(key)) return next;
      if (!(await controller())) return next;
      if (interacted) return next;
      sessionStorage.setItem(key, "1");
    } catch (error) {
      return next;  // no sessionStorage: no guard against a loop, so no reload
    }
    location.reload();
    return new Promise(() => {});  // the page goes away
  }

  /* Isolation belongs to the document: mkdocs-material's instant navigation swaps the next page
   * into it, which would stay isolated, and its frames from other origins would be refused. So an
   * isolated page loads every link to another page of the site in full (the worker isolates only
   * pages marked for it), and reloads when the history takes it to another page in place. */
  let guarded = false;
  function keepIsolationHere() {
    if (guarded) return;
    guarded = true;
    const page = location.pathname + location.search;
    window.addEventListener("click", (event) => {
      const link = event.target instanceof Element ? event.target.closest("a[href]") : null;
      if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey ||
          event.shiftKey || event.altKey || link.hasAttribute("download") ||
          (link.target && link.target !== "_self")) return;
      const url = new URL(link.href, location.href);
      if (url.origin !== location.origin || url.pathname + url.search === page) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      location.assign(url.href);
    }, true);
    window.addEventListener("popstate", () => {
      if (location.pathname + location.search !== page) location.reload();
    }, true);
  }

  /* Whether a service worker controls the page, waiting a few seconds for the one just registered. */
  function controller() {
    if (navigator.serviceWorker.controller) return Promise.resolve(true);
    return new Promise((resolve) => {
      navigator.serviceWorker.addEventListener("controllerchange", () => resolve(true), {once: true});
      setTimeout(() => resolve(Boolean(navigator.serviceWorker.controller)), CONTROL_TIMEOUT_MS);
    });
  }

  class SanetDemo extends HTMLElement {
    connectedCallback() {
      if (this.sanetStarted) return;
      if (document.readyState === "loading") {
        // A script before the element: wait for the server-rendered markup inside it.
        document.addEventListener("DOMContentLoaded", () => this.connectedCallback(), {once: true});
        return;
      }
      this.sanetStarted = true;
      this.start().catch((error) => {
        console.error(error);
        this.dataset.sanetState = "error";
        const message = this.querySelector(".sanet-demo__message");
        if (message) message.textContent = `The demo could not start: ${error.message}`;
        else this.textContent = `The demo could not start: ${error.message}`;
      });
    }

    async start() {
      await api;
      const worker = this.getAttribute("service-worker");
      // Before the demo is ready: a reload (isolate) never interrupts a reader's run.
      if (worker) this.dataset.sanetThreadsNote = await isolate(worker);
      if (!this.querySelector(".sanet-demo__run")) await this.render();
      this.setUp();
      this.dataset.sanetReady = "true";
    }

    /* The UI and the data-sanet-* settings of an element written by hand, from its attributes
     * (page_assets.render_demo renders the same for MkDocs pages). */
    async render() {
      const attribute = (name, fallback) => this.getAttribute(name) || fallback;
      const backends = attribute("backends", BACKENDS.join(",")).split(/[\s,]+/).filter(Boolean);
      const unknown = backends.filter((name) => !BACKENDS.includes(name));
      if (unknown.length) throw new Error(`unknown backend ${unknown.join(", ")}: expected ${BACKENDS.join(", ")}`);
      const maxSize = Number(attribute("max-size", 512));
      const strength = Number(attribute("strength", 1));
      Object.assign(this.dataset, {
        sanetModel: folderUrl(attribute("model", base + "model/")),
        sanetRuntime: folderUrl(attribute("runtime", base + "tfjs/")),
        sanetBackends: backends.join(","),
        sanetMaxSize: String(maxSize),
        sanetPasses: attribute("passes", "1"),
        sanetStyle2: this.getAttribute("style2-src") ? pictureUrl(this, this.getAttribute("style2-src")) : "",
        sanetMix: attribute("mix", "0.5"),
        sanetKeepColors: attribute("keep-colors", "false"),
        sanetWebcam: attribute("webcam", "true"),
        sanetState: "idle",
      });
      this.classList.add("sanet-demo");
      this.setAttribute("data-search-exclude", "");
      const pickers = [];
      for (const [role, legend, fileLabel] of [["content", "Photo", "Your own photo"],
                                               ["style", "Painting", "Your own painting"]]) {
        const presets = await presetUrls(this, role);
        const has = (url) => presets.some((preset) => preset.url === url);
        const chosen = this.getAttribute(role + "-src");
        const selected = chosen ? pictureUrl(this, chosen) : (presets[0] || {}).url;
        if (selected && !has(selected)) presets.unshift({url: selected, title: presetLabel(selected), by: ""});
        const second = this.dataset.sanetStyle2;
        if (role === "style" && second && !has(second)) presets.push({url: second, title: presetLabel(second), by: ""});
        pickers.push(picker(role, legend, fileLabel, presets, selected));
      }
      const sizes = sizeChoices(maxSize).map((size) =>
        `<option value="${size}"${size === maxSize ? " selected" : ""}>${size} px</option>`).join("");
      const engines = backends.map((name) => `<option value="${name}">${LABELS[name]}</option>`).join("");
      this.innerHTML =
        `<div class="sanet-demo__pickers">${pickers.join("")}</div>` +
        `<div class="sanet-demo__controls">` +
        `<label>Size <select data-sanet-control="max-size">${sizes}</select></label>` +
        `<label>Strength <input type="range" min="0" max="1" step="0.05" value="${strength}" ` +
        `data-sanet-control="strength"><output>${strength.toFixed(2)}</output></label>` +
        `<label>Backend <select data-sanet-control="backend" title="Where the model runs: Auto picks the ` +
        `fastest that works here"><option value="auto" selected>Auto</option>${engines}</select></label>` +
        `<button type="button" class="md-button md-button--primary sanet-demo__run" disabled>Stylize</button>` +
        `</div>` +
        `<div class="sanet-demo__status">` +
        `<progress aria-label="Model download" hidden></progress>` +
        `<span class="sanet-demo__amount" hidden></span> ` +
        `<span class="sanet-demo__message" role="status" aria-live="polite" aria-atomic="true">Loading the demo…</span></div>` +
        `<figure class="sanet-demo__result" hidden>` +
        `<canvas role="img" aria-label="The stylized picture"></canvas>` +
        `<figcaption><span class="sanet-demo__credit"></span> <span class="sanet-demo__timing"></span> ` +
        `<a class="md-button sanet-demo__download" download="stylized.png" href="#">Download PNG</a>` +
        `</figcaption></figure>`;
    }

    /* Wires up the UI: the pickers, the controls, the model's size, the Stylize button. */
    setUp() {
      const find = (selector) => this.querySelector(selector);
      this.ui = {
        button: find(".sanet-demo__run"),
        message: find(".sanet-demo__message"),
        progress: find(".sanet-demo__status progress"),
        amount: find(".sanet-demo__amount"),
        result: find(".sanet-demo__result"),
        canvas: find(".sanet-demo__result canvas"),
        timing: find(".sanet-demo__timing"),
        credit: find(".sanet-demo__credit"),
        download: find(".sanet-demo__download"),
        controls: find(".sanet-demo__controls"),  // where more controls go, before the button
        size: find('[data-sanet-control="max-size"]'),
        strength: find('[data-sanet-control="strength"]'),
        backend: find('[data-sanet-control="backend"]'),
      };
      // The largest size the page allows (what the browser can do): no picture is drawn larger.
      this.sizeCap = Number(this.dataset.sanetMaxSize) || Number(this.ui.size.value);
      this.backends = this.dataset.sanetBackends.split(",");
      // role -> the selected picture: a URL, or the reader's File; its name (the canvas's label) and
      // a painting's artist and year (the result's caption).
      this.selected = {};
      this.names = {};
      this.bylines = {};
      this.addOptions();
      for (const element of this.querySelectorAll(".sanet-demo__picker")) this.setUpPicker(element);
      this.setUpOptions();
      const strengthOutput = this.ui.strength.parentElement.querySelector("output");
      this.ui.strength.addEventListener("input", () => {
        strengthOutput.textContent = Number(this.ui.strength.value).toFixed(2);
      });
      this.ui.button.addEventListener("click", () => this.run());
      this.showModelSize();
      this.ui.button.disabled = false;
    }

    /* A picker: a preset button or the reader's own file. */
    setUpPicker(element) {
      const role = element.dataset.sanetRole;
      const presets = element.querySelector(".sanet-demo__presets");
      const select = (presetButton) => {
        for (const other of presets.querySelectorAll(".sanet-demo__preset")) {
          other.setAttribute("aria-pressed", other === presetButton ? "true" : "false");
        }
        this.selected[role] = presetButton.sanetFile || presetButton.dataset.sanetSrc;
        this.names[role] = presetButton.dataset.sanetTitle || presetButton.title;
        this.bylines[role] = presetButton.dataset.sanetBy || "";
      };
      presets.addEventListener("click", (event) => {
        // A click on a caption picks its picture too.
        const option = event.target.closest(".sanet-demo__option");
        const presetButton = event.target.closest(".sanet-demo__preset") ||
          (option && option.querySelector(".sanet-demo__preset"));
        if (presetButton) select(presetButton);
      });
      const initial = presets.querySelector('[aria-pressed="true"]') || presets.querySelector(".sanet-demo__preset");
      if (initial) select(initial);
      element.querySelector('input[type="file"]').addEventListener("change", async (event) => {
        const input = event.target;
        const file = input.files[0];
        if (!file) return;
        // A file the demo cannot use is named as such now, not at Stylize; the next good one clears it.
        const problem = await pictureProblem(file);
        const shown = this.ui.message.textContent;
        if (problem) {
          input.value = "";  // the same file picked again is checked again
          const before = this.pickProblem ? this.pickProblem.before : shown;
          this.say(problem);
          this.pickProblem = {text: problem, before};
          return;
        }
        if (this.pickProblem && shown === this.pickProblem.text) this.say(this.pickProblem.before);
        this.pickProblem = null;
        const own = document.createElement("button");
        own.type = "button";
        own.className = "sanet-demo__preset sanet-demo__preset--own";
        own.title = file.name;
        own.sanetFile = file;
        const thumbnail = document.createElement("img");
        thumbnail.alt = file.name;
        thumbnail.src = URL.createObjectURL(file);
        own.appendChild(thumbnail);
        presets.appendChild(own);
        select(own);
      });
    }

    /* The message, in the live region: screen readers say each new one, so a message is a stage
     * (downloading, encoding, done, an error), never a count that changes many times a second. */
    say(text, state) {
      this.pickProblem = null;  // a newer message replaces a refused file's
      if (this.ui.message.textContent !== text) this.ui.message.textContent = text;
      if (state) this.dataset.sanetState = state;
    }

    /* A download's progress bar and amount ("1.2 MB of 4.0 MB"), beside the live region;
     * `what` names the bar (the runtime's download, then the model's). */
    showProgress(value, max, what) {
      const {progress, amount} = this.ui;
      progress.hidden = amount.hidden = value == null;
      if (value != null) {
        if (what && progress.getAttribute("aria-label") !== what) progress.setAttribute("aria-label", what);
        progress.max = max || 1;
        progress.value = value;
        amount.textContent = `${formatMB(value)} of ${formatMB(max)}`;
      }
    }

    /* Stylize (and the webcam button) while a run or the camera holds them: aria-disabled, not
     * disabled, so that a keyboard's focus stays on the button instead of falling to the page. */
    setBusy(button, busy) {
      if (!button) return;
      if (busy) button.setAttribute("aria-disabled", "true");
      else button.removeAttribute("aria-disabled");
    }

    isBusy(button) {
      return button.getAttribute("aria-disabled") === "true";
    }

    /* The model's size (and whether it is trained), before anything large is fetched. */
    showModelSize() {
      sanet.manifest(this.dataset.sanetModel)
        .then((manifest) => {
          this.sanetManifest = manifest;
          if (!manifest.trained && !this.querySelector(".sanet-demo__notice")) {
            const notice = document.createElement("p");
            notice.className = "sanet-demo__notice";
            notice.innerHTML = `<strong>Untrained model.</strong> This demo runs “${escape(manifest.name)}”, ` +
              "whose attention and decoder weights are random: the pipeline works end to end, but the " +
              "pictures it makes are not stylizations yet.";
            this.prepend(notice);
          }
          if (this.dataset.sanetState === "idle") {
            this.say(`Pick a photo and a painting, then Stylize. The model (${formatMB(manifest.bytes)}) ` +
                     "downloads once, on the first run; your pictures never leave your browser.");
          }
        })
        .catch((error) => this.say(`The model could not be found: ${error.message}`, "error"));
    }

    /* The reader options' markup: passes, the second painting (a copy of the painting picker,
     * with None), mix, the brush for the mask, keep colours, the webcam, the before/after slider.
     * Defaults from data-sanet-*; the same for the plugin's markup and a hand-written element. */
    addOptions() {
      const d = this.dataset;
      const number = ++demos;
      const passes = Number(d.sanetPasses || 1);
      const mix = Number(d.sanetMix || 0.5);
      const stylePicker = this.querySelector('.sanet-demo__picker[data-sanet-role="style"]');
      const second = stylePicker.cloneNode(true);
      second.dataset.sanetRole = "style2";
      second.querySelector("legend").textContent = "Second painting";
      second.querySelector('input[type="file"]').dataset.sanetFile = "style2";
      const none = Object.assign(document.createElement("button"), {
        type: "button", className: "sanet-demo__preset sanet-demo__preset--none", textContent: "None"});
      none.dataset.sanetSrc = "";
      const presets = second.querySelector(".sanet-demo__presets");
      presets.prepend(none);
      const wanted = d.sanetStyle2 || "";
      for (const button of presets.querySelectorAll(".sanet-demo__preset")) {
        button.setAttribute("aria-pressed", String(button.dataset.sanetSrc === wanted));
      }
      const brush = document.createElement("div");
      brush.className = "sanet-demo__brush";
      brush.hidden = true;
      brush.innerHTML =
        `<p>Paint where the second painting goes; without paint, Mix shares it out everywhere.</p>` +
        `<div class="sanet-demo__stack"><canvas class="sanet-demo__photo" aria-hidden="true"></canvas>` +
        `<canvas class="sanet-demo__mask" role="img" aria-label="The photo, with where the second painting goes ` +
        `painted in white"></canvas></div>` +
        `<div class="sanet-demo__tools">` +
        `<label><input type="radio" name="sanet-tool-${number}" value="brush" checked data-sanet-control="brush"> Brush</label>` +
        `<label><input type="radio" name="sanet-tool-${number}" value="eraser" data-sanet-control="eraser"> Eraser</label>` +
        `<label>Width <input type="range" min="2" max="60" value="16" data-sanet-control="brush-size"></label>` +
        `<button type="button" class="md-button" data-sanet-control="clear-mask">Clear</button></div>`;
      const options = document.createElement("div");
      options.className = "sanet-demo__controls sanet-demo__options";
      options.innerHTML =
        `<label title="Each pass stylizes the previous result again">Style influence <input type="range" ` +
        `min="1" max="3" step="1" value="${passes}" data-sanet-control="passes"><output>${passes}</output></label>` +
        `<label title="The second painting's share">Mix <input type="range" min="0" max="1" step="0.05" ` +
        `value="${mix}" data-sanet-control="mix"><output>${mix.toFixed(2)}</output></label>` +
        `<label><input type="checkbox" data-sanet-control="keep-colors"` +
        `${d.sanetKeepColors === "true" ? " checked" : ""}> Keep the photo's colours</label>`;
      // What a first reader does not need is folded away, below the result, so that Stylize
      // comes right after the two pickers; open at first when the page sets one of these options.
      const more = document.createElement("details");
      more.className = "sanet-demo__more";
      more.open = passes !== 1 || Boolean(d.sanetStyle2) || d.sanetKeepColors === "true";
      more.innerHTML = `<summary>More options: a second painting, style influence, the photo's colours</summary>`;
      more.append(second, brush, options);
      this.ui.result.after(more);
      if (d.sanetWebcam !== "false") {
        const webcam = Object.assign(document.createElement("button"), {
          type: "button", className: "md-button sanet-demo__webcam", textContent: "Start the webcam"});
        webcam.setAttribute("aria-pressed", "false");
        this.ui.button.after(webcam);  // after Stylize, in the same row
      }
      // Before/after: the photo over the result, uncovered from the left by the slider.
      const canvas = this.ui.canvas;
      const compare = Object.assign(document.createElement("div"), {className: "sanet-demo__compare"});
      canvas.before(compare);
      const before = Object.assign(document.createElement("canvas"), {className: "sanet-demo__before"});
      before.setAttribute("aria-hidden", "true");  // the photo again, over the named result
      compare.append(canvas, before);
      const slider = document.createElement("label");
      slider.className = "sanet-demo__slider";
      slider.innerHTML = `Before/after <input type="range" min="0" max="100" value="0" data-sanet-control="compare">`;
      compare.after(slider);
    }

    /* Wires up the reader options (addOptions). */
    setUpOptions() {
      const find = (selector) => this.querySelector(selector);
      Object.assign(this.ui, {
        passes: find('[data-sanet-control="passes"]'),
        mix: find('[data-sanet-control="mix"]'),
        keepColors: find('[data-sanet-control="keep-colors"]'),
        webcam: find(".sanet-demo__webcam"),
        brush: find(".sanet-demo__brush"),
        photo: find(".sanet-demo__photo"),
        mask: find(".sanet-demo__mask"),
        before: find(".sanet-demo__before"),
        compare: find('[data-sanet-control="compare"]'),
      });
      for (const range of [this.ui.passes, this.ui.mix]) {
        const output = range.parentElement.querySelector("output");
        range.addEventListener("input", () => {
          output.textContent = range === this.ui.mix ? Number(range.value).toFixed(2) : range.value;
        });
      }
      this.ui.compare.addEventListener("input", () => {
        this.ui.before.style.clipPath = `inset(0 ${100 - Number(this.ui.compare.value)}% 0 0)`;
      });
      this.ui.compare.dispatchEvent(new Event("input"));
      if (this.ui.webcam) this.ui.webcam.addEventListener("click", () => this.toggleWebcam());
      this.setUpBrush();
      // A picker changed: the brush shows with a second painting, on the photo.
      const refresh = () => this.refreshBrush().catch((error) => this.say(`Something went wrong: ${error.message}`));
      this.addEventListener("click", refresh);
      this.addEventListener("change", refresh);
      refresh();
    }

    async refreshBrush() {
      const {brush, photo, mask} = this.ui;
      brush.hidden = !this.selected.style2;
      if (brush.hidden || this.brushPhoto === this.selected.content) return;
      this.brushPhoto = this.selected.content;
      const picture = await imageCanvas(this.selected.content, BRUSH_SIZE);
      for (const canvas of [photo, mask]) {
        canvas.width = picture.width;
        canvas.height = picture.height;
      }
      photo.getContext("2d").drawImage(picture, 0, 0);
    }

    /* Painting the mask with the pointer (mouse, pen, touch): white is the second painting. */
    setUpBrush() {
      const mask = this.ui.mask;
      const context = mask.getContext("2d", {willReadFrequently: true});
      const eraser = this.querySelector('[data-sanet-control="eraser"]');
      const width = this.querySelector('[data-sanet-control="brush-size"]');
      let last = null;
      const point = (event) => {
        const box = mask.getBoundingClientRect();
        return [(event.clientX - box.left) * mask.width / box.width, (event.clientY - box.top) * mask.height / box.height];
      };
      const stroke = (to) => {
        context.globalCompositeOperation = eraser.checked ? "destination-out" : "source-over";
        context.strokeStyle = "#ffffff";
        context.lineCap = context.lineJoin = "round";
        context.lineWidth = Number(width.value) * mask.width / mask.getBoundingClientRect().width;
        context.beginPath();
        context.moveTo(...last);
        context.lineTo(...to);
        context.stroke();
        last = to;
      };
      mask.addEventListener("pointerdown", (event) => {
        event.preventDefault();
        try {
          mask.setPointerCapture(event.pointerId);
        } catch (error) {
          // a pointer the browser does not track (synthetic events): strokes still work
        }
        last = point(event);
        stroke(last);
      });
      mask.addEventListener("pointermove", (event) => {
        if (last) stroke(point(event));
      });
      for (const type of ["pointerup", "pointercancel"]) mask.addEventListener(type, () => { last = null; });
      this.querySelector('[data-sanet-control="clear-mask"]').addEventListener("click", () => {
        context.clearRect(0, 0, mask.width, mask.height);
      });
    }

    /* The painted mask at the photo's size (white: the second painting), or null when nothing is painted. */
    maskFor(content) {
      const mask = this.ui.mask;
      if (!mask.width || this.ui.brush.hidden) return null;
      const alpha = mask.getContext("2d", {willReadFrequently: true}).getImageData(0, 0, mask.width, mask.height).data;
      if (!alpha.some((value, i) => i % 4 === 3 && value > 0)) return null;
      const canvas = Object.assign(document.createElement("canvas"), {width: content.width, height: content.height});
      const context = canvas.getContext("2d", {willReadFrequently: true});
      context.fillStyle = "#000000";
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.imageSmoothingQuality = "high";
      context.drawImage(mask, 0, 0, canvas.width, canvas.height);
      return canvas;
    }

    /* What model.stylize gets besides the photo and the painting. */
    async stylizeOptions(content, maxSize) {
      const style2 = this.selected.style2 ? await imageCanvas(this.selected.style2, maxSize) : null;
      // The mask used last, for whoever wants to check it (the tests).
      this.lastMask = style2 ? this.maskFor(content) : null;
      return {
        strength: Number(this.ui.strength.value),
        passes: Number(this.ui.passes.value),
        keepColors: this.ui.keepColors.checked,
        mix: Number(this.ui.mix.value),
        style2,
        mask: this.lastMask,
        onStage: (stage) => this.say(`Stylizing: ${stage}…`),
      };
    }

    /* The runtime and the model on a backend, with the progress of each download shown. Resolves
     * as sanet.prepare, with `download` (seconds: the runtime's and the model's downloads, 0 when
     * this page had them already) and `warmUp` (seconds: the backend's first small run). */
    async prepareModel(choice) {
      const started = performance.now();
      let warming = null;
      const runtime = {loaded: 0, expected: 0};
      const prepared = await sanet.prepare(this.dataset.sanetRuntime, this.dataset.sanetModel, this.backends, {
        choice,
        onRuntimeBytes: (bytes, expected) => {
          runtime.loaded += bytes;
          runtime.expected += expected;
          this.showProgress(runtime.loaded, Math.max(runtime.expected, runtime.loaded), "The TF.js runtime's download");
        },
        onProgress: (loaded, total) => {
          this.showProgress(loaded, total, "The model's download");
          this.say(`Downloading the model (${formatMB(total)})…`);
        },
        onStatus: (status, name, why) => {
          if (status === "loading") this.say("Loading the TF.js runtime…", "loading");
          if (status === "warming-up") {
            warming = performance.now();
            this.showProgress(null);
            this.say(`Warming up (${describe(name, why)})…`, "warming-up");
          }
        },
      });
      const done = performance.now();
      const warmed = warming == null ? done : warming;
      return {...prepared, download: (warmed - started) / 1000, warmUp: (done - warmed) / 1000};
    }

    /* Live mode: the camera's frames stylized at WEBCAM_SIZE on the result canvas, frames per
     * second in the caption; a second click stops it and releases the camera. */
    async toggleWebcam() {
      const {webcam, button, timing, result} = this.ui;
      if (this.isBusy(webcam)) return;
      if (this.live) {
        this.setBusy(webcam, true);
        await this.live.stop();
        this.setBusy(webcam, false);
        return;
      }
      if (!this.selected.style) {
        this.say("Pick a painting first.");
        return;
      }
      this.setBusy(webcam, true);
      this.setBusy(button, true);
      try {
        const maxSize = Math.min(Number(this.ui.size.value) || this.sizeCap, this.sizeCap);
        const choice = this.ui.backend ? this.ui.backend.value : "auto";
        const {model, backend, note} = await this.prepareModel(choice);
        this.dataset.sanetBackend = backend;
        const style = await imageCanvas(this.selected.style, maxSize);
        const {onStage, mask, ...options} = await this.stylizeOptions(style, maxSize);
        this.say("Starting the camera…");
        const live = await sanet.startWebcam(model, this.ui.canvas, style, {
          ...options, size: WEBCAM_SIZE,
          onFrame: () => {
            timing.textContent = `${live.fps.toFixed(1)} frames/s, ${this.ui.canvas.width}×` +
              `${this.ui.canvas.height}, on ${describe(backend, note)}`;
          },
        });
        this.live = live;
        this.ui.canvas.setAttribute("aria-label", `The webcam's picture, live, ${this.describePictures("the camera's frames")}`);
        result.hidden = false;
        this.ui.before.hidden = true;
        webcam.setAttribute("aria-pressed", "true");
        webcam.textContent = "Stop the webcam";
        this.say("Live: the frames stay in your browser.", "live");
        live.finished.then(() => {
          this.live = null;
          webcam.setAttribute("aria-pressed", "false");
          webcam.textContent = "Start the webcam";
          this.setBusy(button, false);
          if (live.error) this.say(`The webcam stopped: ${live.error.message}`, "error");
          else this.say("The camera is off.", "idle");
        });
      } catch (error) {
        console.error(error);
        this.showProgress(null);
        this.setBusy(button, false);
        this.say(`The webcam could not start: ${error.message}`, "error");
      } finally {
        this.setBusy(webcam, false);
      }
    }

    async run() {
      const {button, canvas} = this.ui;
      if (this.isBusy(button)) return;
      if (!this.selected.content || !this.selected.style) {
        this.say("Pick a photo and a painting first.");
        return;
      }
      if (this.live) await this.live.stop();
      this.setBusy(button, true);
      try {
        const choice = this.ui.backend ? this.ui.backend.value : "auto";
        const maxSize = Math.min(Number(this.ui.size.value) || this.sizeCap, this.sizeCap);
        const backends = this.backends;
        let out, backend, note, started, download = 0, warmUp = 0;
        for (let attempt = 0; ; attempt++) {
          let model, loading;
          ({model, backend, note, ...loading} = await this.prepareModel(choice));
          download += loading.download;
          warmUp += loading.warmUp;
          this.dataset.sanetBackend = backend;
          this.dataset.sanetBackendNote = note;
          if (sanet.threads(backend)) this.dataset.sanetThreads = String(sanet.threads(backend));
          else delete this.dataset.sanetThreads;
          const [content, style] = await Promise.all([
            imageCanvas(this.selected.content, maxSize), imageCanvas(this.selected.style, maxSize)]);
          const options = await this.stylizeOptions(content, maxSize);
          this.dataset.sanetState = "running";  // the stages say the rest (onStage)
          started = performance.now();
          try {
            out = await model.stylize(content, style, options);
            this.showBefore(content);
            break;
          } catch (error) {
            // A lost WebGL context: with Auto, go on with the next backend.
            if (choice !== "auto" || !sanet.failed(backend) || attempt >= backends.length) throw error;
          }
        }
        try {
          await tf.browser.toPixels(out, canvas);
        } finally {
          out.dispose();
        }
        const seconds = (performance.now() - started) / 1000;
        await this.showResult(seconds, describe(backend, note), {download, warmUp, maxSize});
        this.say("Done. Change the pictures, the size or the strength and run again.", "done");
      } catch (error) {
        console.error(error);
        this.showProgress(null);
        this.say(`Something went wrong: ${error.message}`, "error");
      } finally {
        this.setBusy(button, false);
      }
    }

    /* The photo under the before/after slider, at the result's size. */
    showBefore(content) {
      const before = this.ui.before;
      before.width = content.width;
      before.height = content.height;
      before.getContext("2d").drawImage(content, 0, 0);
      before.hidden = false;
    }

    /* "the photo Cat in the style of Starry": the pictures of the run, for the canvas's name. */
    describePictures(photo) {
      const name = (role, fallback) => this.names[role] ? `“${this.names[role]}”` : fallback;
      const second = this.selected.style2 ? ` and ${name("style2", "a second painting")}` : "";
      return `${photo || `the photo ${name("content", "you chose")}`} in the style of ` +
        `${name("style", "the painting you chose")}${second}`;
    }

    /* "Cat in the style of Café Terrace at Night (Vincent van Gogh, 1888)": the result's caption. */
    creditLine() {
      const painting = (role) => this.names[role] +
        (this.bylines[role] ? ` (${this.bylines[role]})` : "");
      const second = this.selected.style2 ? ` and ${painting("style2")}` : "";
      return `${this.names.content} in the style of ${painting("style")}${second}`;
    }

    /* The PNG's file name: the photo and the painting(s), "cat-in-the-style-of-the-night-cafe.png". */
    fileName() {
      const slug = (text) => String(text || "").replace(/\.[a-z0-9]{2,5}$/i, "").normalize("NFKD")
        .replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/[^a-z0-9]+/g, "-")
        .replace(/^-+|-+$/g, "").slice(0, 40).replace(/-+$/, "");
      const parts = [slug(this.names.content) || "photo", "in-the-style-of", slug(this.names.style) || "painting"];
      if (this.selected.style2) parts.push("and", slug(this.names.style2) || "painting");
      return parts.join("-") + ".png";
    }

    /* The canvas holds the picture: its caption, what the run took and the PNG download (at its
     * full size). `download`: seconds spent loading the runtime and the model in this run (0 once
     * they are here), `warmUp`: the backend's first small run, `maxSize`: the size chosen. */
    showResult(seconds, backend, {download = 0, warmUp = 0, maxSize = 0} = {}) {
      const {canvas, download: link, result, timing, credit} = this.ui;
      result.hidden = false;
      this.dataset.sanetSeconds = seconds.toFixed(3);
      this.dataset.sanetDownloadSeconds = download.toFixed(3);
      this.dataset.sanetWarmupSeconds = warmUp.toFixed(3);
      const size = `${canvas.width}×${canvas.height}`;
      // The size given: a photo smaller than the size chosen is not enlarged, and the caption says so.
      const smaller = maxSize && Math.max(canvas.width, canvas.height) < maxSize
        ? ` (the photo is smaller than ${maxSize} px and is not enlarged)` : "";
      const loading = download >= 0.05 || warmUp >= 0.05
        ? `downloaded in ${download.toFixed(1)} s, warmed up in ${warmUp.toFixed(1)} s, ` : "";
      timing.textContent = `${size}${smaller}: ${loading}stylized in ${seconds.toFixed(1)} s on ${backend}`;
      credit.textContent = this.creditLine();
      link.download = this.fileName();
      canvas.setAttribute("aria-label", `The result, ${this.describePictures()}, ${canvas.width}×${canvas.height} pixels`);
      timing.title = this.dataset.sanetThreads === "1" ? this.dataset.sanetThreadsNote || "" : "";
      // Resolves once the PNG is ready behind the button (run says Done after it).
      return new Promise((resolve) => canvas.toBlob((blob) => {
        if (this.downloadUrl) URL.revokeObjectURL(this.downloadUrl);
        this.downloadUrl = URL.createObjectURL(blob);
        link.href = this.downloadUrl;
        resolve();
      }, "image/png"));
    }
  }

  window.customElements.define("sanet-demo", SanetDemo);
})();
