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
 *   max-size, strength, backends ("webgl,wasm": Auto's order)
 *
 * The MkDocs plugin renders the element with its UI in it (page_assets.render_demo) and its
 * settings in data-sanet-* attributes; the element wires up that markup, and renders the same
 * markup itself when there is none (render below). Its state is in data-sanet-state (idle,
 * loading, warming-up, running, done, error), data-sanet-backend and data-sanet-seconds.
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

  function folderUrl(value) {
    const url = new URL(value, document.baseURI).href;
    return url.endsWith("/") ? url : url + "/";
  }

  function presetLabel(url) {
    const stem = decodeURIComponent(url.split(/[?#]/)[0].split("/").pop()).replace(/\.[^.]*$/, "")
      .replace(/^(content|style)-/, "").replace(/[_-]/g, " ").trim();
    return stem.charAt(0).toUpperCase() + stem.slice(1).toLowerCase();
  }

  /* The sizes offered up to maxSize (page_assets.size_choices). */
  function sizeChoices(maxSize) {
    return [...new Set([...SIZES.filter((size) => size < maxSize), maxSize])].sort((a, b) => a - b);
  }

  /* The picture URLs a hand-written element offers: its attribute, else presets/presets.json. */
  async function presetUrls(element, role) {
    const listed = element.getAttribute(role + "s");
    if (listed != null) {
      return listed.split(",").map((url) => url.trim()).filter(Boolean)
        .map((url) => new URL(url, document.baseURI).href);
    }
    const index = new URL("presets/presets.json", base);
    const response = await fetch(index);
    if (!response.ok) throw new Error(`could not load ${index} (HTTP ${response.status})`);
    return (await response.json())[role].map((name) => new URL(name, index).href);
  }

  /* A picker's markup (page_assets._picker). */
  function picker(role, legend, fileLabel, urls, selected) {
    const buttons = urls.map((url) => {
      const label = escape(presetLabel(url));
      return `<button type="button" class="sanet-demo__preset" data-sanet-src="${escape(url)}" ` +
        `aria-pressed="${url === selected}" title="${label}">` +
        `<img src="${escape(url)}" alt="${label}" loading="lazy" decoding="async"></button>`;
    }).join("");
    return `<fieldset class="sanet-demo__picker" data-sanet-role="${role}"><legend>${legend}</legend>` +
      `<div class="sanet-demo__presets">${buttons}</div>` +
      `<label class="sanet-demo__file">${fileLabel} ` +
      `<input type="file" accept="image/*" data-sanet-file="${role}"></label></fieldset>`;
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

  /* "WASM (WebGL is software-rendered here)": the backend and why it was chosen. */
  function describe(backend, note) {
    return `${LABELS[backend] || backend}${note ? ` (${note})` : ""}`;
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
        sanetState: "idle",
      });
      this.classList.add("sanet-demo");
      this.setAttribute("data-search-exclude", "");
      const pickers = [];
      for (const [role, legend, fileLabel] of [["content", "Photo", "Your own photo"],
                                               ["style", "Painting", "Your own painting"]]) {
        const urls = await presetUrls(this, role);
        const chosen = this.getAttribute(role + "-src");
        const selected = chosen ? new URL(chosen, document.baseURI).href : urls[0];
        if (selected && !urls.includes(selected)) urls.unshift(selected);
        pickers.push(picker(role, legend, fileLabel, urls, selected));
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
        `<div class="sanet-demo__status" role="status" aria-live="polite">` +
        `<progress hidden></progress> <span class="sanet-demo__message">Loading…</span></div>` +
        `<figure class="sanet-demo__result" hidden><canvas></canvas>` +
        `<figcaption><span class="sanet-demo__timing"></span> ` +
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
        result: find(".sanet-demo__result"),
        canvas: find(".sanet-demo__result canvas"),
        timing: find(".sanet-demo__timing"),
        download: find(".sanet-demo__download"),
        controls: find(".sanet-demo__controls"),  // where more controls go, before the button
        size: find('[data-sanet-control="max-size"]'),
        strength: find('[data-sanet-control="strength"]'),
        backend: find('[data-sanet-control="backend"]'),
      };
      // The largest size the page allows (what the browser can do): no picture is drawn larger.
      this.sizeCap = Number(this.dataset.sanetMaxSize) || Number(this.ui.size.value);
      this.backends = this.dataset.sanetBackends.split(",");
      // role -> the selected picture: a URL, or the reader's File.
      this.selected = {};
      for (const element of this.querySelectorAll(".sanet-demo__picker")) this.setUpPicker(element);
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
      };
      presets.addEventListener("click", (event) => {
        const presetButton = event.target.closest(".sanet-demo__preset");
        if (presetButton) select(presetButton);
      });
      const initial = presets.querySelector('[aria-pressed="true"]') || presets.querySelector(".sanet-demo__preset");
      if (initial) select(initial);
      element.querySelector('input[type="file"]').addEventListener("change", (event) => {
        const file = event.target.files[0];
        if (!file) return;
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

    say(text, state) {
      this.ui.message.textContent = text;
      if (state) this.dataset.sanetState = state;
    }

    showProgress(value, max) {
      const progress = this.ui.progress;
      progress.hidden = value == null;
      if (value != null) {
        progress.max = max;
        progress.value = value;
      }
    }

    /* The model's size (and whether it is trained), before anything large is fetched. */
    showModelSize() {
      fetch(new URL("manifest.json", new URL(this.dataset.sanetModel, location.href)))
        .then((response) => response.ok ? response.json() : Promise.reject(new Error(`HTTP ${response.status}`)))
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

    /* What model.stylize gets besides the two pictures. */
    stylizeOptions() {
      return {
        strength: Number(this.ui.strength.value),
        onStage: (stage) => this.say(`Stylizing: ${stage}…`),
      };
    }

    async run() {
      const {button, canvas} = this.ui;
      if (!this.selected.content || !this.selected.style) {
        this.say("Pick a photo and a painting first.");
        return;
      }
      button.disabled = true;
      try {
        const choice = this.ui.backend ? this.ui.backend.value : "auto";
        const maxSize = Math.min(Number(this.ui.size.value) || this.sizeCap, this.sizeCap);
        const backends = this.backends;
        let out, backend, note, started;
        for (let attempt = 0; ; attempt++) {
          let model;
          ({model, backend, note} = await sanet.prepare(this.dataset.sanetRuntime, this.dataset.sanetModel, backends, {
            choice,
            onProgress: (loaded, total) => {
              this.showProgress(loaded, total);
              this.say(`Downloading the model: ${formatMB(loaded)} of ${formatMB(total)}`);
            },
            onStatus: (status, name, why) => {
              if (status === "loading") this.say("Loading the TF.js runtime…", "loading");
              if (status === "warming-up") {
                this.showProgress(null);
                this.say(`Warming up (${describe(name, why)})…`, "warming-up");
              }
            },
          }));
          this.dataset.sanetBackend = backend;
          this.dataset.sanetBackendNote = note;
          const [content, style] = await Promise.all([
            imageCanvas(this.selected.content, maxSize), imageCanvas(this.selected.style, maxSize)]);
          this.say("Stylizing…", "running");
          started = performance.now();
          try {
            out = await model.stylize(content, style, this.stylizeOptions());
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
        this.showResult(seconds, describe(backend, note));
        this.say("Done. Change the pictures, the size or the strength and run again.", "done");
      } catch (error) {
        console.error(error);
        this.showProgress(null);
        this.say(`Something went wrong: ${error.message}`, "error");
      } finally {
        button.disabled = false;
      }
    }

    /* The canvas holds the picture: its caption and the PNG download. */
    showResult(seconds, backend) {
      const {canvas, download, result, timing} = this.ui;
      result.hidden = false;
      this.dataset.sanetSeconds = seconds.toFixed(3);
      timing.textContent = `${canvas.width}×${canvas.height} in ${seconds.toFixed(1)} s on ${backend}`;
      canvas.toBlob((blob) => {
        if (this.downloadUrl) URL.revokeObjectURL(this.downloadUrl);
        this.downloadUrl = URL.createObjectURL(blob);
        download.href = this.downloadUrl;
      }, "image/png");
    }
  }

  window.customElements.define("sanet-demo", SanetDemo);
})();
