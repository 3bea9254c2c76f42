/* mkdocs-sanet: a service worker that makes the pages with a demo cross-origin isolated, so
 * that TF.js's WASM backend can run on several threads (it needs SharedArrayBuffer, which a
 * browser offers only to an isolated page; a static host cannot send the headers that isolate).
 *
 * It adds two headers to one kind of response: a same-origin GET navigation (a page, or a frame)
 * whose HTML has a <sanet-demo> element:
 *   Cross-Origin-Opener-Policy: same-origin
 *   Cross-Origin-Embedder-Policy: credentialless
 * Everything else goes past it untouched: other pages, their frames, scripts, pictures, the
 * model, and responses that are redirects, opaque, errors or not HTML. It caches nothing and
 * has no offline mode; a request that fails fails as it would without it.
 *
 * credentialless rather than require-corp: both isolate the page in Chromium and Firefox, but
 * require-corp also blocks every cross-origin picture, script or font of the demo's page that
 * its host does not mark with Cross-Origin-Resource-Policy; credentialless loads them (without
 * cookies). Safari does not know credentialless: there the page stays as it is, one thread.
 *
 * The demo's script (static/sanet-demo.js) registers it when its element has a service-worker
 * attribute; it controls the pages at or below its own folder (a MkDocs site serves it at its root).
 */
"use strict";

const DEMO = /<sanet-demo[\s>/]/i;

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const request = event.request;
  // Not answered here: the browser fetches it as if there were no service worker.
  if (request.mode !== "navigate" || request.method !== "GET" ||
      new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(isolateDemoPage(request));
});

/* The response as it came, or with the two headers when it is a page with a demo. A network
 * error rejects, and the browser shows it as it would have. */
async function isolateDemoPage(request) {
  const response = await fetch(request);
  const type = response.headers.get("Content-Type") || "";
  if (response.type !== "basic" || response.redirected || !response.ok || !/^text\/html/i.test(type)) {
    return response;
  }
  let text;
  try {
    text = await response.clone().text();
  } catch (error) {
    return response;  // the body broke off: the browser reports it as it would have
  }
  if (!DEMO.test(text)) return response;
  const headers = new Headers(response.headers);
  headers.set("Cross-Origin-Opener-Policy", "same-origin");
  headers.set("Cross-Origin-Embedder-Policy", "credentialless");
  return new Response(response.body, {status: response.status, statusText: response.statusText, headers});
}
