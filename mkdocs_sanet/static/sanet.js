/* mkdocs-sanet: a small API around the three SANet graph models.
 *
 *   const {model, backend, note} = await sanet.prepare(runtimeUrl, modelUrl, ["webgpu", "webgl", "wasm", "cpu"],
 *                                                      {choice: "auto", onProgress, onRuntimeBytes, onStatus});
 *   const out = await model.stylize(contentCanvas, styleCanvas, {strength: 1, passes: 1, style2, mix: 0.5,
 *                                                                 mask, keepColors: false});  // tf.Tensor3D in [0, 1]
 *   const live = await sanet.startWebcam(model, canvas, styleCanvas, {size: 160, ...});  // live.stop()
 *   sanet.threads("wasm")  // the WASM backend's threads: 1, or more on a cross-origin isolated page
 *
 * prepare loads the TF.js runtime (onRuntimeBytes(bytes, expected): its scripts' download, see
 * prefetch), the model (onProgress(loaded, total)) and makes a first small run. With choice "auto" it
 * passes over a backend that is software-rendered, lacks 32-bit float textures, does not start,
 * loses its context, or whose first run fails or gives non-finite numbers; `note` says why.
 *
 * Sizing is the Python pipeline's (mkdocs_sanet/pipeline.py): reflect-pad the bottom and right
 * to multiples of 16 (at least 32), run, crop back to the content's size.
 */
(function () {
  "use strict";
  if (window.sanet) return;

  // Transparent pixels are laid on this colour (pipeline.BACKGROUND).
  const BACKGROUND = "#ffffff";
  const BACKEND_SCRIPTS = {
    webgpu: "tf-backend-webgpu.min.js",
    webgl: "tf-backend-webgl.min.js",
    wasm: "tf-backend-wasm.min.js",
    cpu: null,
  };
  const LABELS = {webgpu: "WebGPU", webgl: "WebGL", wasm: "WASM", cpu: "CPU"};
  const SOFTWARE = /swiftshader|llvmpipe|softpipe|software|basic render/i;

  const scripts = new Map();
  /* A script, once per page. With onBytes, read first through the HTTP cache, counting its bytes
   * (prefetch), so that a slow connection shows the runtime's progress too. */
  function loadScript(url, onBytes) {
    if (!scripts.has(url)) {
      scripts.set(url, prefetch(url, onBytes).then(() => new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = url;
        script.onload = () => resolve();
        script.onerror = () => reject(new Error(`could not load ${url}`));
        document.head.appendChild(script);
      })));
    }
    return scripts.get(url);
  }

  const prefetched = new Map();
  /* Reads a file once, calling onBytes(bytes, expected) as it arrives: first (0, its Content-Length,
   * 0 when unknown), then (bytes, 0) for each chunk. The <script> or fetch that follows is served
   * from the browser's cache. A failure is left to that <script> to report. */
  function prefetch(url, onBytes) {
    if (!onBytes) return Promise.resolve();
    if (!prefetched.has(url)) {
      prefetched.set(url, (async () => {
        try {
          const response = await fetch(url);
          if (!response.ok || !response.body) return;
          onBytes(0, Number(response.headers.get("content-length")) || 0);
          const reader = response.body.getReader();
          for (;;) {
            const {done, value} = await reader.read();
            if (done) return;
            onBytes(value.byteLength, 0);
          }
        } catch (error) {
          // the <script> says what went wrong
        }
      })());
    }
    return prefetched.get(url);
  }

  // Backends that failed on this page (did not start, lost their context, a bad first run): why.
  const unusable = new Map();
  // Why a backend is a poor automatic choice here, found before starting it ("" when none).
  const caveats = new Map();

  async function probeWebGL() {
    const canvas = document.createElement("canvas");
    const fast = canvas.getContext("webgl2", {failIfMajorPerformanceCaveat: true});
    const gl = fast || document.createElement("canvas").getContext("webgl2");
    if (!gl) return "WebGL 2 is not available here";
    const info = gl.getExtension("WEBGL_debug_renderer_info");
    const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    const lose = gl.getExtension("WEBGL_lose_context");
    if (lose) lose.loseContext();  // only a probe: give the context back
    if (!fast || SOFTWARE.test(renderer)) {
      const name = (renderer.match(SOFTWARE) || [""])[0];
      return `WebGL is software-rendered here${name && !/software/i.test(name) ? ` (${name})` : ""}`;
    }
    return "";
  }

  async function probeWebGPU() {
    if (!navigator.gpu) return "this browser has no WebGPU";
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return "WebGPU has no adapter here";
    if (adapter.isFallbackAdapter || (adapter.info && adapter.info.isFallbackAdapter)) {
      return "WebGPU is software-rendered here";
    }
    return "";
  }

  function caveat(name) {
    if (!caveats.has(name)) {
      const probe = {webgl: probeWebGL, webgpu: probeWebGPU}[name];
      caveats.set(name, probe ? probe().catch((error) => `${LABELS[name]} failed its check (${error.message})`)
                              : Promise.resolve(""));
    }
    return caveats.get(name);
  }

  let wasmPathsSet = false;
  /* Makes `name` TF.js's backend: "" when it runs, else why not. */
  async function startBackend(name, base, onBytes) {
    if (unusable.has(name)) return unusable.get(name);
    try {
      if (name === "webgpu" && !navigator.gpu) throw new Error("this browser has no WebGPU");
      if (BACKEND_SCRIPTS[name]) await loadScript(base + BACKEND_SCRIPTS[name], onBytes);
      if (name === "wasm" && !wasmPathsSet) {
        tf.wasm.setWasmPaths(base);
        wasmPathsSet = true;
      }
      if (!(await tf.setBackend(name))) throw new Error("TF.js could not start it");
      await tf.ready();
      const gl = name === "webgl" && tf.backend().gpgpu && tf.backend().gpgpu.gl;
      if (gl && !gl.sanetWatched) {
        gl.sanetWatched = true;
        gl.canvas.addEventListener("webglcontextlost", () => unusable.set("webgl", "the WebGL context was lost"));
      }
      return "";
    } catch (error) {
      const why = `${LABELS[name]} did not start (${error.message})`;
      unusable.set(name, why);
      return why;
    }
  }

  /* Why the running backend may give wrong pictures ("" when nothing is known). */
  function precisionCaveat(name) {
    if (name === "webgl" && !tf.env().getBool("WEBGL_RENDER_FLOAT32_ENABLED")) {
      return "WebGL has only 16-bit float textures here, too narrow for this model's features";
    }
    return "";
  }

  /* Loads TF.js from the site itself and starts a backend: `choice` ("auto": the first of
   * `backends` without a caveat that starts, else the named one). Resolves to
   * {backend, passed}: passed lists why earlier backends were not used. */
  async function startRuntime(runtimeUrl, backends, choice = "auto", onBytes) {
    const base = new URL(runtimeUrl, location.href).href;
    const core = ["tf-core.min.js", "tf-converter.min.js", "tf-backend-cpu.min.js"].map((name) => base + name);
    await Promise.all(core.map((url) => prefetch(url, onBytes)));  // their sizes known at once
    for (const url of core) await loadScript(url, onBytes);
    if (choice !== "auto") {
      const why = await startBackend(choice, base, onBytes);
      if (why) throw new Error(`${why}: choose Auto or another backend`);
      return {backend: choice, passed: []};
    }
    const passed = [];
    for (const name of backends) {
      const why = unusable.get(name) || (await caveat(name)) || (await startBackend(name, base, onBytes)) ||
          precisionCaveat(name);
      if (!why) return {backend: name, passed};
      passed.push(why);
    }
    throw new Error(`none of the TF.js backends could be used here: ${passed.join("; ")}`);
  }

  /* Runtime, model and a first small run on one backend (see the top of this file). Resolves
   * to {model, backend, note}; note: why this backend, for the reader. */
  async function prepare(runtimeUrl, modelUrl, backends,
                         {choice = "auto", onProgress, onRuntimeBytes, onStatus = () => {}} = {}) {
    for (;;) {
      onStatus("loading");
      const {backend, passed} = await startRuntime(runtimeUrl, backends, choice, onRuntimeBytes);
      const model = await load(modelUrl, {onProgress});
      const note = choice === "auto" ? passed.join("; ")
          : ["your choice", precisionCaveat(backend) && `${precisionCaveat(backend)}: the picture may be wrong`]
              .filter(Boolean).join("; ");
      onStatus("warming-up", backend, note);
      const why = await model.warmUp(backend);
      if (!why) return {model, backend, note};
      unusable.set(backend, why);
      if (choice !== "auto") throw new Error(`${why}: choose Auto or another backend`);
    }
  }

  /* The backend's name, as startRuntime. */
  async function loadRuntime(runtimeUrl, backends, choice = "auto") {
    return (await startRuntime(runtimeUrl, backends, choice)).backend;
  }

  /* How many threads the WASM backend runs on (more than 1 only on a cross-origin isolated page:
   * TF.js then loads tfjs-backend-wasm-threaded-simd.wasm itself); null for another backend. */
  function threads(backend) {
    if (backend !== "wasm" || !window.tf || !tf.wasm) return null;
    try {
      return tf.wasm.getThreadsCount();
    } catch (error) {
      return null;  // not started yet
    }
  }

  /* Whether a backend failed on this page after it was chosen (a lost context). */
  function failed(backend) {
    return unusable.has(backend);
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

  async function assertFinite(tensor) {
    if (!(await tensor.data()).every(Number.isFinite)) {
      throw Object.assign(new Error("non-finite numbers"), {nonFinite: true});
    }
  }

  /* Sizes from the model's manifest (architecture.SIZE_MULTIPLE and MIN_SIZE): one source. */
  function padToMultiple(image, {size_multiple: multiple, min_size: minSize}) {
    const [height, width] = image.shape;
    const up = (side) => Math.max(minSize, Math.ceil(side / multiple) * multiple);
    const padH = up(height) - height;
    const padW = up(width) - width;
    if (!padH && !padW) return tf.clone(image);
    return tf.mirrorPad(image, [[0, padH], [0, padW], [0, 0]], "reflect");
  }

  /* An image as a Tensor3D, float in [0, 1]; each side at least the manifest's min_size. */
  function pixels(source, name, {min_size: minSize}) {
    const image = tf.tidy(() => tf.div(tf.cast(tf.browser.fromPixels(source), "float32"), 255));
    const [h, w] = image.shape;
    if (Math.min(h, w) < minSize) {
      image.dispose();
      throw new Error(`the ${name} image is ${w}x${h}: each side must be at least ${minSize} px`);
    }
    return image;
  }

  /* The mask (H, W, 1) padded as the content, averaged over blocks down to a transform output's
   * (1, h, w, C) size: (1, h, w, 1) (pipeline.pool_mask). */
  function poolMask(mask, featureShape, manifest) {
    return tf.tidy(() => {
      const padded = padToMultiple(mask, manifest);
      const factor = padded.shape[0] / featureShape[1];
      return tf.avgPool(tf.expandDims(padded, 0), factor, factor, "valid");
    });
  }

  // BT.601 luma, as pipeline.LUMA.
  const LUMA = [0.299, 0.587, 0.114];

  /* The result's luminance with the photo's chroma (YCbCr): photo + (Y(result) - Y(photo)). */
  function keepPhotoColors(result, photo) {
    return tf.tidy(() => {
      const luma = tf.tensor1d(LUMA);
      const y = (image) => tf.sum(tf.mul(image, luma), -1, true);
      return tf.clipByValue(tf.add(photo, tf.sub(y(result), y(photo))), 0, 1);
    });
  }

  // The floor under a colour channel's variance (pipeline.COLOR_VARIANCE_FLOOR).
  const COLOR_VARIANCE_FLOOR = 1e-4;

  /* The mean and standard deviation of each RGB channel of an (H, W, 3) image (pipeline.color_stats). */
  function colorStats(image) {
    return tf.tidy(() => {
      const {mean, variance} = tf.moments(image, [0, 1]);
      return {mean, std: tf.sqrt(variance)};
    });
  }

  /* The result's colours moved `share` of the way to target's {mean, std} per RGB channel, (3)
   * or (H, W, 3) (pipeline.match_colors). */
  function matchColors(result, target, share) {
    return tf.tidy(() => {
      const {mean, variance} = tf.moments(result, [0, 1]);
      const std = tf.sqrt(tf.maximum(variance, COLOR_VARIANCE_FLOOR));
      const matched = tf.add(tf.mul(tf.div(tf.sub(result, mean), std), target.std), target.mean);
      return tf.clipByValue(tf.add(tf.mul(result, 1 - share), tf.mul(matched, share)), 0, 1);
    });
  }

  class EncodedStyle {
    constructor(features, colors) {
      this.features = features;  // encode's outputs by name: relu4_1, relu5_1 (a model's skips: relu3_1, relu2_1)
      this.colors = colors;  // {mean, std} of the painting as encoded (colorStats)
    }

    dispose() {
      for (const tensor of Object.values(this.features)) tensor.dispose();
      this.colors.mean.dispose();
      this.colors.std.dispose();
    }
  }

  class SANetModel {
    constructor(manifest, graphs) {
      this.manifest = manifest;
      this.graphs = graphs;
      this.warmedUp = new Map();
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

    /* image: Tensor3D, float in [0, 1], sides multiples of 16. Every output of the encode graph
     * by name: relu4_1, relu5_1, and the taps of a model's shallow skips (relu3_1, relu2_1). */
    encode(image) {
      return tf.tidy(() => this.run("encode", {image: tf.expandDims(image, 0)}));
    }

    /* T(content, style), content and style being encode's outputs: the transform graph's inputs
     * are fed as its signature names them (content4_1 from content.relu4_1, style3_1 from
     * style.relu3_1, ...). Every output by name: features, and a model's skips (skip3_1, skip2_1),
     * which the decode graph takes by the same names. */
    transform(content, style) {
      const inputs = {};
      for (const entry of Object.values(this.graphs.transform.signature.inputs)) {
        const name = entry.name.replace(/:\d+$/, "");
        const [, side, tap] = name.match(/^(content|style)(\d+_\d+)$/) || [];
        const from = side === "content" ? content : style;
        if (from && from[`relu${tap}`]) inputs[name] = from[`relu${tap}`];
      }
      return tf.tidy(() => this.run("transform", inputs));
    }

    /* A compressed model encodes the paintings smaller (the manifest's style_max_size, as
     * pipeline.shrink_style: bilinear, half-pixel centres). Takes over `image`. */
    shrinkStyle(image) {
      const styleMax = this.manifest.style_max_size;
      const [h, w] = image.shape;
      const [fw, fh] = styleMax ? fitSize(w, h, styleMax) : [w, h];
      if (fw === w && fh === h) return image;
      const smaller = tf.tidy(() => tf.image.resizeBilinear(image, [fh, fw], false, true));
      image.dispose();
      return smaller;
    }

    /* A painting encoded once, for many runs (the webcam's frames): pass it as stylize's style
     * or style2; dispose() it when done. */
    encodeStyle(style, name = "style") {
      if (style instanceof EncodedStyle) return style;
      const image = this.shrinkStyle(pixels(style, name, this.manifest));
      try {
        const padded = padToMultiple(image, this.manifest);
        const features = this.encode(padded);
        padded.dispose();
        return new EncodedStyle(features, colorStats(image));
      } finally {
        image.dispose();
      }
    }

    /* The full pass (pipeline.Stylizer, the same steps). Stages yield to the browser so that
     * progress can be shown. content, style, style2, mask: anything tf.browser.fromPixels takes
     * (style and style2 also an encodeStyle() result). Each of `passes` (1 to 3) stylizes the
     * previous result. With style2 the transformed features are blended, (1 - w) * T(c, style) +
     * w * T(c, style2), w being `mix` or the mask (the content's size, white: style2) padded as
     * the content and averaged down to each output's resolution; then the strength trade-off
     * with T(c, c). Both steps run over every output of the transform alike (its features, and a
     * model's shallow skips: the decode graph takes them all). The decoded picture's colours move
     * the manifest's color_match (times strength) of the way to the painting's (the paintings'
     * blended by mix, or pixel by pixel by the mask: matchColors). At the end keepColors puts the
     * photo's chroma back (keepPhotoColors).
     * Returns a Tensor3D (H, W, 3) in [0, 1]. */
    async stylize(content, style, {strength = 1, passes = 1, style2 = null, mix = 0.5, mask = null,
                                   keepColors = false, onStage = () => {}, checkFinite = false} = {}) {
      const owned = [];
      const keep = (tensor) => { owned.push(tensor); return tensor; };
      const stage = async (name) => { onStage(name); await tf.nextFrame(); };
      try {
        if (!(Number.isInteger(passes) && passes >= 1 && passes <= 3)) throw new Error(`passes is ${passes}: expected 1, 2 or 3`);
        const photo = keep(pixels(content, "content", this.manifest));
        const [height, width] = photo.shape;
        await stage("encoding the painting");
        // Encoded here unless the caller encoded them (then the caller disposes them).
        const encoded = (source, name) => source instanceof EncodedStyle ? source : keep(this.encodeStyle(source, name));
        const styles = [encoded(style, "style")];
        if (style2) styles.push(encoded(style2, "style2"));
        if (mask && !style2) throw new Error("a mask needs a second painting (white: the second)");
        let weight = mix;
        if (mask) {
          weight = keep(tf.tidy(() => tf.mean(tf.div(tf.cast(tf.browser.fromPixels(mask), "float32"), 255), 2, true)));
          if (weight.shape[0] !== height || weight.shape[1] !== width) {
            throw new Error(`the mask is ${weight.shape[1]}x${weight.shape[0]}: expected the photo's size, ${width}x${height}`);
          }
        }
        // The colours each pass moves the picture towards: the painting's, or the two blended as
        // their features (by mix, or pixel by pixel by the mask, (H, W, 1)).
        const colorMatch = (this.manifest.color_match || 0) * strength;
        let colors = styles[0].colors;
        if (styles.length === 2) {
          const [a, b] = [styles[0].colors, styles[1].colors];
          const blend = (x, y) => keep(tf.tidy(() => tf.add(tf.mul(x, tf.sub(1, weight)), tf.mul(y, weight))));
          colors = {mean: blend(a.mean, b.mean), std: blend(a.std, b.std)};
        }
        // The blend's weight for a transform output: mix, or the mask pooled to its resolution (once).
        const pooled = {};
        const weightOf = (name, x) => {
          if (weight.rank !== 3) return weight;
          if (!pooled[name]) pooled[name] = keep(poolMask(weight, x.shape, this.manifest));
          return pooled[name];
        };
        // Every output of the transform combined alike, each by combine(name, x) (owned here).
        const each = (outputs, combine) => Object.fromEntries(
            Object.entries(outputs).map(([name, x]) => [name, keep(combine(name, x))]));
        const keepAll = (outputs) => { owned.push(...Object.values(outputs)); return outputs; };
        let current = photo;
        for (let pass = 1; pass <= passes; pass++) {
          const of = passes > 1 ? ` (pass ${pass} of ${passes})` : "";
          await stage(`encoding the photo${of}`);
          const c = keepAll(this.encode(keep(padToMultiple(current, this.manifest))));
          await stage(`attention${of}`);
          let outputs = keepAll(this.transform(c, styles[0].features));
          if (styles.length === 2) {
            const second = keepAll(this.transform(c, styles[1].features));
            outputs = each(outputs, (name, x) => {
              const w = weightOf(name, x);
              return tf.tidy(() => tf.add(tf.mul(x, tf.sub(1, w)), tf.mul(second[name], w)));
            });
          }
          if (strength < 1) {
            const identity = keepAll(this.transform(c, c));
            outputs = each(outputs, (name, x) => tf.tidy(() => tf.add(tf.mul(x, strength), tf.mul(identity[name], 1 - strength))));
          }
          // The decoder clips to [0, 1], which would hide an overflow: look at the features too.
          if (checkFinite) for (const x of Object.values(outputs)) await assertFinite(x);
          await stage(`decoding${of}`);
          current = keep(tf.tidy(() => {
            const image = this.run("decode", outputs).image;
            return tf.slice(tf.squeeze(image, [0]), [0, 0, 0], [height, width, 3]);
          }));
          if (colorMatch > 0) current = keep(matchColors(current, colors, colorMatch));
        }
        if (keepColors) current = keep(keepPhotoColors(current, photo));
        if (checkFinite) await assertFinite(current);
        return tf.clone(current);
      } finally {
        for (const tensor of owned) tensor.dispose();
      }
    }

    /* One small pass per backend, so that the first real one does not pay for kernel compilation
     * and a backend that fails or gives non-finite numbers is found: resolves to "" or why. */
    warmUp(backend = tf.getBackend()) {
      if (!this.warmedUp.has(backend)) {
        this.warmedUp.set(backend, (async () => {
          const canvas = document.createElement("canvas");
          canvas.width = canvas.height = this.manifest.min_size;
          const context = canvas.getContext("2d");
          const gradient = context.createLinearGradient(0, 0, this.manifest.min_size, this.manifest.min_size);
          gradient.addColorStop(0, "#ffffff");
          gradient.addColorStop(1, "#1040c0");
          context.fillStyle = gradient;
          context.fillRect(0, 0, this.manifest.min_size, this.manifest.min_size);
          context.fillStyle = "#e0a020";
          context.fillRect(4, 8, 12, 20);
          try {
            const out = await this.stylize(canvas, canvas, {checkFinite: true});
            out.dispose();
            return "";
          } catch (error) {
            const what = error.nonFinite ? "gave non-finite numbers" : `failed (${error.message})`;
            return `${LABELS[backend] || backend}'s first run ${what}`;
          }
        })());
      }
      return this.warmedUp.get(backend);
    }
  }

  const manifests = new Map();
  /* The model's manifest.json (its size, whether it is trained, its graphs), fetched once per
   * model URL for the page: the demos and load() share it. */
  function manifest(modelUrl) {
    const url = new URL(modelUrl, location.href).href;
    if (!manifests.has(url)) {
      const promise = fetch(url + "manifest.json").then((response) => {
        if (!response.ok) throw new Error(`could not load ${url}manifest.json (HTTP ${response.status})`);
        return response.json();
      });
      promise.catch(() => manifests.delete(url));
      manifests.set(url, promise);
    }
    return manifests.get(url);
  }

  const models = new Map();
  /* One download per model URL, however many demos ask; each gets progress callbacks. */
  function load(modelUrl, {onProgress} = {}) {
    const url = new URL(modelUrl, location.href).href;
    let entry = models.get(url);
    if (!entry) {
      entry = {listeners: new Set(), loaded: 0, total: 0};
      entry.promise = (async () => {
        const manifest = await sanet.manifest(url);
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

  /* Live stylization of the camera's frames, drawn on `canvas` at most `size` px on the longest
   * side. The paintings are encoded once; options as stylize's (no mask). Frames stay in this page:
   * nothing is sent anywhere. Resolves to {stream, fps, frames, error, finished, stop()}: stop() ends the
   * loop after the frame in hand, stops the camera's tracks and frees the tensors. */
  async function startWebcam(model, canvas, style, {size = 160, onFrame = () => {}, ...options} = {}) {
    const stream = await navigator.mediaDevices.getUserMedia({video: true, audio: false});
    const styles = [];
    const video = document.createElement("video");
    const frame = document.createElement("canvas");
    const live = {stream, fps: 0, frames: 0, error: null, running: true};
    const times = [];
    const cleanUp = () => {
      for (const track of stream.getTracks()) track.stop();
      video.srcObject = null;
      for (const encoded of styles) encoded.dispose();
    };
    try {
      styles.push(model.encodeStyle(style));
      if (options.style2) styles.push(model.encodeStyle(options.style2, "style2"));
      video.muted = true;
      video.playsInline = true;
      video.srcObject = stream;
      await video.play();
    } catch (error) {
      cleanUp();
      throw error;
    }
    const context = frame.getContext("2d", {willReadFrequently: true});
    const loop = (async () => {
      try {
        while (live.running) {
          if (video.readyState < 2 || !video.videoWidth) {
            await tf.nextFrame();
            continue;
          }
          [frame.width, frame.height] = fitSize(video.videoWidth, video.videoHeight, size);
          context.drawImage(video, 0, 0, frame.width, frame.height);
          const out = await model.stylize(frame, styles[0], {...options, style2: styles[1], mask: null});
          try {
            await tf.browser.toPixels(out, canvas);
          } finally {
            out.dispose();
          }
          live.frames += 1;
          times.push(performance.now());
          if (times.length > 10) times.shift();
          live.fps = times.length > 1 ? (times.length - 1) * 1000 / (times[times.length - 1] - times[0]) : 0;
          onFrame(live);
        }
      } catch (error) {
        live.error = error;
      } finally {
        live.running = false;
        cleanUp();
      }
    })();
    live.finished = loop;
    live.stop = async () => {
      live.running = false;
      await loop;
    };
    return live;
  }

  window.sanet = {prepare, loadRuntime, load, manifest, failed, threads, fitSize, loadScript, startWebcam, BACKGROUND, LABELS};
})();
