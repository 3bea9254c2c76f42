/* mkdocs-sanet: the demo UI. Wires up every `.sanet-demo` on the page.
 *
 * This script runs again after each instant-navigation page change (mkdocs-material re-creates
 * the scripts of the new page), so it only sets up demos that are not set up yet.
 * Nothing leaves the browser: images are read locally and the model runs here.
 */
(function () {
  "use strict";
  const here = document.currentScript ? document.currentScript.src : "";
  const base = here.replace(/[^/]*$/, "");

  function formatMB(bytes) {
    return (bytes / 1e6).toFixed(1) + " MB";
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
    return `${sanet.LABELS[backend] || backend}${note ? ` (${note})` : ""}`;
  }

  function setUp(root) {
    root.dataset.sanetReady = "true";
    const find = (selector) => root.querySelector(selector);
    const button = find(".sanet-demo__run");
    const message = find(".sanet-demo__message");
    const progress = find(".sanet-demo__status progress");
    const result = find(".sanet-demo__result");
    const canvas = find(".sanet-demo__result canvas");
    const timing = find(".sanet-demo__timing");
    const download = find(".sanet-demo__download");
    const sizeControl = find('[data-sanet-control="max-size"]');
    const strengthControl = find('[data-sanet-control="strength"]');
    const backendControl = find('[data-sanet-control="backend"]');
    // The largest size the page allows (what the browser can do): no picture is drawn larger.
    const sizeCap = Number(root.dataset.sanetMaxSize) || Number(sizeControl.value);
    const strengthOutput = strengthControl.parentElement.querySelector("output");
    const backends = root.dataset.sanetBackends.split(",");
    const selected = {};
    let downloadUrl = null;

    const say = (text, state) => {
      message.textContent = text;
      if (state) root.dataset.sanetState = state;
    };
    const showProgress = (value, max) => {
      progress.hidden = value == null;
      if (value != null) {
        progress.max = max;
        progress.value = value;
      }
    };

    // Pickers: a preset button or the reader's own file.
    for (const picker of root.querySelectorAll(".sanet-demo__picker")) {
      const role = picker.dataset.sanetRole;
      const presets = picker.querySelector(".sanet-demo__presets");
      const select = (presetButton) => {
        for (const other of presets.querySelectorAll(".sanet-demo__preset")) {
          other.setAttribute("aria-pressed", other === presetButton ? "true" : "false");
        }
        selected[role] = presetButton.sanetFile || presetButton.dataset.sanetSrc;
      };
      presets.addEventListener("click", (event) => {
        const presetButton = event.target.closest(".sanet-demo__preset");
        if (presetButton) select(presetButton);
      });
      const initial = presets.querySelector('[aria-pressed="true"]') || presets.querySelector(".sanet-demo__preset");
      if (initial) select(initial);
      picker.querySelector('input[type="file"]').addEventListener("change", (event) => {
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

    strengthControl.addEventListener("input", () => {
      strengthOutput.textContent = Number(strengthControl.value).toFixed(2);
    });

    // The model's size, before anything large is fetched.
    fetch(new URL("manifest.json", new URL(root.dataset.sanetModel, location.href)))
      .then((response) => response.ok ? response.json() : Promise.reject(new Error(`HTTP ${response.status}`)))
      .then((manifest) => {
        root.sanetManifest = manifest;
        if (root.dataset.sanetState === "idle") {
          say(`Pick a photo and a painting, then Stylize. The model (${formatMB(manifest.bytes)}) downloads ` +
              "once, on the first run; your pictures never leave your browser.");
        }
      })
      .catch((error) => say(`The model could not be found: ${error.message}`, "error"));
    button.disabled = false;

    async function run() {
      if (!selected.content || !selected.style) {
        say("Pick a photo and a painting first.");
        return;
      }
      button.disabled = true;
      try {
        const choice = backendControl ? backendControl.value : "auto";
        const maxSize = Math.min(Number(sizeControl.value) || sizeCap, sizeCap);
        let out, backend, note, started;
        for (let attempt = 0; ; attempt++) {
          let model;
          ({model, backend, note} = await sanet.prepare(root.dataset.sanetRuntime, root.dataset.sanetModel, backends, {
            choice,
            onProgress: (loaded, total) => {
              showProgress(loaded, total);
              say(`Downloading the model: ${formatMB(loaded)} of ${formatMB(total)}`);
            },
            onStatus: (status, name, why) => {
              if (status === "loading") say("Loading the TF.js runtime…", "loading");
              if (status === "warming-up") {
                showProgress(null);
                say(`Warming up (${describe(name, why)})…`, "warming-up");
              }
            },
          }));
          root.dataset.sanetBackend = backend;
          root.dataset.sanetBackendNote = note;
          const [content, style] = await Promise.all([
            imageCanvas(selected.content, maxSize), imageCanvas(selected.style, maxSize)]);
          say("Stylizing…", "running");
          started = performance.now();
          try {
            out = await model.stylize(content, style, {
              strength: Number(strengthControl.value),
              onStage: (stage) => say(`Stylizing: ${stage}…`),
            });
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
        result.hidden = false;
        root.dataset.sanetSeconds = seconds.toFixed(3);
        timing.textContent = `${canvas.width}×${canvas.height} in ${seconds.toFixed(1)} s on ${describe(backend, note)}`;
        canvas.toBlob((blob) => {
          if (downloadUrl) URL.revokeObjectURL(downloadUrl);
          downloadUrl = URL.createObjectURL(blob);
          download.href = downloadUrl;
        }, "image/png");
        say("Done. Change the pictures, the size or the strength and run again.", "done");
      } catch (error) {
        console.error(error);
        showProgress(null);
        say(`Something went wrong: ${error.message}`, "error");
      } finally {
        button.disabled = false;
      }
    }
    button.addEventListener("click", run);
  }

  function setUpAll() {
    for (const root of document.querySelectorAll(".sanet-demo:not([data-sanet-ready])")) setUp(root);
  }

  if (window.sanet) {
    setUpAll();
  } else {
    const script = document.createElement("script");
    script.src = base + "sanet.js";
    script.onload = setUpAll;
    document.head.appendChild(script);
  }
})();
