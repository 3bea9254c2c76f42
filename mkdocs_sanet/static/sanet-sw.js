/* mkdocs-sanet: a service worker that makes the pages with a demo cross-origin isolated, so
 * that TF.js's WASM backend can run on several threads (it needs SharedArrayBuffer, which a
 * browser offers only to an isolated page; a static host cannot send the headers that isolate).
 *
 * It adds two headers to one kind of response: a same-origin GET navigation (a page, or a frame)
 * whose head holds the marker the plugin writes into pages it isolates (mkdocs_sanet/isolation.py:
 * a page whose own content has a demo and no frame from another origin):
 *   <meta name="sanet-isolation" content="cross-origin-isolated">
 *   Cross-Origin-Opener-Policy: same-origin
 *   Cross-Origin-Embedder-Policy: credentialless
 * The marker counts among the <meta> elements at the start of the head (the plugin writes it first
 * there): the worker reads up to the head's first other element (a title, a script, a stylesheet),
 * at most 64 KiB, and streams everything as it arrives from there on. So a page that streams its
 * head or its body shows and runs its scripts as soon as it would without the worker, and text
 * further on (a comment that mentions <sanet-demo>) decides nothing. Everything else goes past it untouched: other pages,
 * their frames, scripts, pictures, the model, and responses that are redirects, opaque, errors or
 * not HTML. It caches nothing and has no offline mode; a request that fails fails as it would
 * without it.
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

const MARKER = '<meta name="sanet-isolation" content="cross-origin-isolated">';
const HEAD_LIMIT = 64 * 1024;
// What may come before the marker: a byte-order mark, white space, the doctype, comments, <html>,
// <head> and the head's other <meta> elements.
const LEADING = /^(?:\ufeff|\s+|<!doctype\b[^>]*>|<!--[\s\S]*?-->|<html\b[^>]*>|<head\b[^>]*>|<meta\b(?![^>]*\bsanet-isolation\b)[^>]*>)*/i;

/* Whether the page so far is marked: true or false once that is known, null while what has
 * arrived could still be the start of the marker or of an element allowed before it. */
function marked(text, ended) {
  const rest = text.slice(text.match(LEADING)[0].length);
  if (rest.startsWith(MARKER)) return true;
  if (ended || text.length >= HEAD_LIMIT) return false;
  // Unfinished: a tag, a comment or the doctype cut off by the chunk's end, or the marker's start.
  if (MARKER.startsWith(rest) || /^<(?:!(?:-(?:-[\s\S]*)?)?|!doctype\b[^>]*|html\b[^>]*|head\b[^>]*|meta\b[^>]*|!d?o?c?t?y?p?e?|h(?:t(?:ml?)?|e(?:ad?)?)?|m(?:e(?:ta?)?)?)$/i.test(rest)) {
    return null;
  }
  return false;
}

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const request = event.request;
  // Not answered here: the browser fetches it as if there were no service worker.
  if (request.mode !== "navigate" || request.method !== "GET" ||
      new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(isolateDemoPage(request));
});

/* The response as it came, or with the two headers when its head has the marker. A network
 * error rejects, and the browser shows it as it would have. */
async function isolateDemoPage(request) {
  const response = await fetch(request);
  const type = response.headers.get("Content-Type") || "";
  if (response.type !== "basic" || response.redirected || !response.ok || !/^text\/html/i.test(type) ||
      !response.body) {
    return response;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const chunks = [];
  let text = "";
  let ended = false;
  let isolate = null;
  try {
    while ((isolate = marked(text, ended)) === null) {
      const part = await reader.read();
      if (part.done) {
        ended = true;
        continue;
      }
      chunks.push(part.value);
      text += decoder.decode(part.value, {stream: true});
    }
  } catch (error) {
    return Response.error();  // the body broke off: the browser reports it as a network error
  }
  const body = new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      if (ended) controller.close();
    },
    async pull(controller) {
      try {
        const part = await reader.read();
        if (part.done) controller.close();
        else controller.enqueue(part.value);
      } catch (error) {
        controller.error(error);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  const headers = new Headers(response.headers);
  if (isolate) {
    headers.set("Cross-Origin-Opener-Policy", "same-origin");
    headers.set("Cross-Origin-Embedder-Policy", "credentialless");
  }
  return new Response(body, {status: response.status, statusText: response.statusText, headers});
}
