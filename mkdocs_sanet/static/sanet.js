/* mkdocs-sanet: a small API around the three SANet graph models.
 *
 *   const backend = await sanet.loadRuntime(runtimeUrl, ["webgpu", "webgl", "wasm", "cpu"]);
 *   const model = await sanet.load(modelUrl, {onProgress: (loaded, total) => ...});
 *   const out = await model.stylize(contentCanvas, styleCanvas, {strength: 1});  // tf.Tensor3D in [0, 1]
 *
 * Sizing is the Python pipeline's (mkdocs_sanet/pipeline.py): reflect-pad the bottom and right
 * to multiples of 16 (at least 32), run, crop back to the content's size.
 */
(function () {
  "use strict";
  if (window.sanet) return;

  const SIZE_MULTIPLE = 16;
  const MIN_SIZE = 32;
  const BACKEND_SCRIPTS = {
    webgpu: "tf-backend-webgpu.min.js",
    webgl: "tf-backend-webgl.min.js",
    wasm: "tf-backend-wasm.min.js",
    cpu: null,
  };

  const scripts = new Map();
  function loadScript(url) {
    if (!scripts.has(url)) {
      scripts.set(url, new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = url;
        script.onload = () => resolve();
        script.onerror = () => reject(new Error(`could not load ${url}`));
        document.head.appendChild(script);
      }));
    }
    return scripts.get(url);
  }

  let runtime = null;
  /* Loads TF.js from the site itself and starts the first backend that works. */
  function loadRuntime(runtimeUrl, backends) {
    if (!runtime) {
      runtime = (async () => {
        const base = new URL(runtimeUrl, location.href).href;
        await loadScript(base + "tf-core.min.js");
        await loadScript(base + "tf-converter.min.js");
        await loadScript(base + "tf-backend-cpu.min.js");
        for (const name of backends) {
          if (name === "webgpu" && !navigator.gpu) continue;
          try {
            if (BACKEND_SCRIPTS[name]) await loadScript(base + BACKEND_SCRIPTS[name]);
            if (name === "wasm") tf.wasm.setWasmPaths(base);
            if (await tf.setBackend(name)) {
              await tf.ready();
              return name;
            }
          } catch (error) {
            console.warn(`sanet: the ${name} backend did not start`, error);
          }
        }
        throw new Error(`none of the TF.js backends ${backends.join(", ")} could start`);
      })();
      runtime.catch(() => { runtime = null; });
    }
    return runtime;
  }

  /* fetch, counting the bytes of each response body as it arrives. */
  function countingFetch(onBytes) {
    return async (url, init) => {
      const response = await fetch(url, init);
      if (!response.ok || !response.body) return response;
      const reader = response.body.getReader();
      const stream = new ReadableStream({
        async pull(controller) {
          const {done, value} = await reader.read();
          if (done) {
            controller.close();
          } else {
            onBytes(value.byteLength);
            controller.enqueue(value);
          }
        },
      });
      return new Response(stream, {status: response.status, headers: response.headers});
    };
  }

  function padToMultiple(image) {
    const [height, width] = image.shape;
    const up = (side) => Math.max(MIN_SIZE, Math.ceil(side / SIZE_MULTIPLE) * SIZE_MULTIPLE);
    const padH = up(height) - height;
    const padW = up(width) - width;
    if (!padH && !padW) return tf.clone(image);
    return tf.mirrorPad(image, [[0, padH], [0, padW], [0, 0]], "reflect");
  }

  class SANetModel {
    constructor(manifest, graphs) {
      this.manifest = manifest;
      this.graphs = graphs;
      this.warmedUp = null;
    }

    /* inputs by the exported function's argument names; outputs by their names (the export
     * keeps them with use_structured_outputs_names, which predict() applies). The converter
     * keys some signature inputs "name:0" and others "name", so match on the node name. */
    run(graph, inputs) {
      const model = this.graphs[graph];
      const feeds = {};
      for (const [key, entry] of Object.entries(model.signature.inputs)) {
        const name = entry.name.replace(/:\d+$/, "");
        if (!(name in inputs)) throw new Error(`the ${graph} graph needs an input named ${name}`);
        feeds[key] = inputs[name];
      }
      return model.predict(feeds);
    }

    encode(image) {  // image: Tensor3D, float in [0, 1], sides multiples of 16
      return tf.tidy(() => this.run("encode", {image: tf.expandDims(image, 0)}));
    }

    transform(content, style) {
      return tf.tidy(() => this.run("transform", {
        content4_1: content.relu4_1, content5_1: content.relu5_1,
        style4_1: style.relu4_1, style5_1: style.relu5_1,
      }).features);
    }

    /* The whole pass. Stages yield to the browser so that progress can be shown.
     * content, style: anything tf.browser.fromPixels takes. Returns a Tensor3D (H, W, 3). */
    async stylize(content, style, {strength = 1, onStage = () => {}} = {}) {
      const owned = [];
      const keep = (tensor) => { owned.push(tensor); return tensor; };
      const stage = async (name) => { onStage(name); await tf.nextFrame(); };
      try {
        const contentImage = keep(tf.tidy(() => tf.div(tf.cast(tf.browser.fromPixels(content), "float32"), 255)));
        let styleImage = keep(tf.tidy(() => tf.div(tf.cast(tf.browser.fromPixels(style), "float32"), 255)));
        // A compressed model encodes the style smaller (pipeline.shrink_style: bilinear, half-pixel centres).
        const styleMax = this.manifest.style_max_size;
        if (styleMax) {
          const [h, w] = styleImage.shape;
          const [fw, fh] = fitSize(w, h, styleMax);
          if (fw !== w || fh !== h) {
            const image = styleImage;
            styleImage = keep(tf.tidy(() => tf.image.resizeBilinear(image, [fh, fw], false, true)));
          }
        }
        const [height, width] = contentImage.shape;
        for (const [name, image] of [["content", contentImage], ["style", styleImage]]) {
          const [h, w] = image.shape;
          if (Math.min(h, w) < MIN_SIZE) throw new Error(`the ${name} image is ${w}x${h}: each side must be at least ${MIN_SIZE} px`);
        }
        await stage("encoding the photo");
        const c = this.encode(keep(padToMultiple(contentImage)));
        owned.push(...Object.values(c));
        await stage("encoding the painting");
        const s = this.encode(keep(padToMultiple(styleImage)));
        owned.push(...Object.values(s));
        await stage("attention");
        let features = keep(this.transform(c, s));
        if (strength < 1) {
          const identity = keep(this.transform(c, c));
          features = keep(tf.tidy(() => tf.add(tf.mul(features, strength), tf.mul(identity, 1 - strength))));
        }
        await stage("decoding");
        return tf.tidy(() => {
          const image = this.run("decode", {features}).image;
          return tf.slice(tf.squeeze(image, [0]), [0, 0, 0], [height, width, 3]);
        });
      } finally {
        for (const tensor of owned) tensor.dispose();
      }
    }

    /* One small pass, so that the first real one does not pay for kernel compilation. */
    warmUp() {
      if (!this.warmedUp) {
        this.warmedUp = (async () => {
          const canvas = document.createElement("canvas");
          canvas.width = canvas.height = MIN_SIZE;
          const out = await this.stylize(canvas, canvas);
          await out.data();
          out.dispose();
        })();
      }
      return this.warmedUp;
    }
  }

  const models = new Map();
  /* One download per model URL, however many demos ask; each gets progress callbacks. */
  function load(modelUrl, {onProgress} = {}) {
    const url = new URL(modelUrl, location.href).href;
    let entry = models.get(url);
    if (!entry) {
      entry = {listeners: new Set(), loaded: 0, total: 0};
      entry.promise = (async () => {
        const response = await fetch(url + "manifest.json");
        if (!response.ok) throw new Error(`could not load ${url}manifest.json (HTTP ${response.status})`);
        const manifest = await response.json();
        entry.total = manifest.bytes;
        const fetchFunc = countingFetch((bytes) => {
          entry.loaded += bytes;
          for (const listener of entry.listeners) listener(entry.loaded, entry.total);
        });
        const names = Object.keys(manifest.graphs);
        const graphs = await Promise.all(names.map(
          (name) => tf.loadGraphModel(`${url}${name}/model.json`, {fetchFunc})));
        return new SANetModel(manifest, Object.fromEntries(names.map((name, i) => [name, graphs[i]])));
      })();
      entry.promise.catch(() => models.delete(url));
      models.set(url, entry);
    }
    if (onProgress) {
      entry.listeners.add(onProgress);
      if (entry.loaded) onProgress(entry.loaded, entry.total);
      entry.promise.finally(() => entry.listeners.delete(onProgress));
    }
    return entry.promise;
  }

  /* The size an image is drawn at: longest side at most maxSize (pipeline.fit_size). */
  function fitSize(width, height, maxSize) {
    if (maxSize && Math.max(width, height) > maxSize) {
      const scale = maxSize / Math.max(width, height);
      return [Math.max(1, Math.floor(width * scale + 0.5)), Math.max(1, Math.floor(height * scale + 0.5))];
    }
    return [width, height];
  }

  window.sanet = {loadRuntime, load, fitSize, loadScript};
})();
