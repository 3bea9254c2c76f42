"""Citations: `<% cite key %>` against a BibTeX file, numbered by first use on the page, and a
references section at the end of the page, formatted by pybtex's plain style.

BibTeX is pasted from anywhere, so nothing in it reaches the page unescaped: text is escaped,
links (url, doi, eprint, and any other pybtex makes) are http(s) only, percent-encoded and
escaped as attribute values; any other link is shown as text."""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import quote, urlsplit

# Characters a URL may keep as they are; everything else (quotes, <, >, spaces...) is percent-encoded.
URL_SAFE = "/:?#[]@!$&'()*+,;=%~-._"
# Links pybtex's plain style builds as prefix + the field as written: the field is encoded as one path.
BUILT_LINKS = ("https://doi.org/", "https://arxiv.org/abs/")
TAGS = {"em", "strong", "b", "i", "sup", "sub", "code"}


class BibliographyError(ValueError):
    pass


class Bibliography:
    def __init__(self, path: Path):
        from pybtex.database import parse_file
        from pybtex.scanner import PybtexSyntaxError

        try:
            self.database = parse_file(str(path), bib_format="bibtex")
        except (OSError, PybtexSyntaxError) as error:
            raise BibliographyError(f"{path}: not a readable BibTeX file ({error})") from None
        self.path = path
        self._formatted: dict[str, str] = {}

    def __contains__(self, key: str) -> bool:
        return key in self.database.entries

    def formatted(self, keys: list[str]) -> dict[str, str]:
        """HTML of each entry, pybtex's plain style."""
        from pybtex.plugin import find_plugin

        missing = [k for k in keys if k not in self._formatted]
        if missing:
            style = find_plugin("pybtex.style.formatting", "plain")()
            entries = [self.database.entries[k] for k in missing]
            # The style sorts the entries: match them back by key, not by position.
            for entry in style.format_entries(entries):
                self._formatted[entry.key] = entry.text.render(_safe_backend())
        return {k: self._formatted[k] for k in keys}


def safe_url(url: str) -> str | None:
    """An http(s) URL made safe for an href (percent-encoded, then attribute-escaped), or None."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    for prefix in BUILT_LINKS:
        if url.startswith(prefix):
            return html.escape(prefix + quote(url[len(prefix):], safe="/:;()"), quote=True)
    return html.escape(quote(url, safe=URL_SAFE), quote=True)


def _safe_backend():
    """pybtex's HTML backend, with links checked and escaped and only harmless tags."""
    from pybtex.backends.html import Backend

    class SafeBackend(Backend):
        def format_str(self, text):
            return html.escape(text, quote=True)

        def format_protected(self, text):
            return f'<span class="bibtex-protected">{text}</span>'

        def format_tag(self, tag, text):
            if tag not in TAGS:
                return text
            return f"<{tag}>{text}</{tag}>" if text else ""

        def format_href(self, url, text, external=False):
            href = safe_url(url)
            if href is None:
                return text
            return f'<a href="{href}" rel="noopener">{text}</a>' if text else ""

    return SafeBackend()


class PageCitations:
    """The numbering of one page's citations."""

    def __init__(self):
        self.order: list[str] = []
        self.uses: dict[str, int] = {}

    def cite(self, key: str) -> str:
        """The link of one citation; each has its own id: cite-<key>-<its rank among the key's citations>."""
        if key not in self.order:
            self.order.append(key)
        number = self.order.index(key) + 1
        self.uses[key] = self.uses.get(key, 0) + 1
        return (f'<a class="sanet-cite" href="#ref-{html.escape(key)}" '
                f'id="cite-{html.escape(key)}-{self.uses[key]}">[{number}]</a>')

    def references(self, bibliography: Bibliography) -> str:
        if not self.order:
            return ""
        formatted = bibliography.formatted(self.order)
        items = "".join(f'<li id="ref-{html.escape(key)}">{formatted[key]}</li>' for key in self.order)
        return f'<h2 id="references">References</h2><ol class="sanet-references">{items}</ol>'
