"""Which pages the service worker (static/sanet-sw.js) makes cross-origin isolated, for WASM on
several threads: decided at build time, written into the page's head as MARKER.

A page is marked when its own Markdown has a demo (not a blog index that only shows a post's
excerpt) and it embeds nothing from another origin that isolation would break: a frame, an
object or a script known to make one (comments, videos, maps). The worker reads only the head,
so text in a page (a comment that mentions <sanet-demo>, say) can never isolate it; sanet-demo.js
loads every link out of an isolated page in full, so that isolation stays on the page it was
made for (material's instant navigation would otherwise carry it to the next pages).
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

MARKER = '<meta name="sanet-isolation" content="cross-origin-isolated">'
_HEAD = re.compile(r"<head\b[^>]*>", re.I)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
# An element that loads a document or a plugin from an absolute URL (http:, https: or //).
_EMBED = re.compile(r"<(iframe|frame|embed|object|portal|fencedframe)\b[^>]*?\b(?:src|data)\s*=\s*[\"']?\s*"
                    r"((?:https?:)?//[^\s\"'>]+)", re.I)
# Scripts that insert a cross-origin frame themselves.
_FRAME_SCRIPTS = ("giscus.app", "utteranc.es", "disqus.com", "platform.twitter.com", "youtube.com",
                  "player.vimeo.com", "www.google.com/maps", "maps.googleapis.com", "codepen.io")
_SCRIPT = re.compile(r"<script\b[^>]*?\bsrc\s*=\s*[\"']?\s*((?:https?:)?//[^\s\"'>]+)", re.I)


def _origin(url: str) -> str:
    parsed = urlparse(url if not url.startswith("//") else "https:" + url)
    return f"{parsed.hostname or ''}:{parsed.port or ''}"


def cross_origin_embed(html: str, site_url: str | None) -> str | None:
    """The first cross-origin embed of the page (a URL), or None."""
    own = _origin(site_url) if site_url else None
    text = _COMMENT.sub("", html)
    for match in _EMBED.finditer(text):
        if _origin(match.group(2)) != own:
            return match.group(2)
    for match in _SCRIPT.finditer(text):
        url = match.group(1)
        if _origin(url) != own and any(name in url for name in _FRAME_SCRIPTS):
            return url
    return None


def mark(html: str, site_url: str | None) -> tuple[str, str | None]:
    """The page with MARKER at the start of its head, or unchanged with the reason."""
    embed = cross_origin_embed(html, site_url)
    if embed:
        return html, f"it embeds {embed[:80]} from another origin, which cross-origin isolation would block"
    head = _HEAD.search(html)
    if head is None:
        return html, "it has no <head>"
    return html[:head.end()] + MARKER + html[head.end():], None
