"""Citations: `<% cite key %>` against a BibTeX file, numbered by first use on the page, and a
references section at the end of the page, formatted by pybtex's plain style."""

from __future__ import annotations

import html
from pathlib import Path


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
                self._formatted[entry.key] = entry.text.render_as("html")
        return {k: self._formatted[k] for k in keys}


class PageCitations:
    """The numbering of one page's citations."""

    def __init__(self):
        self.order: list[str] = []

    def cite(self, key: str) -> str:
        if key not in self.order:
            self.order.append(key)
        number = self.order.index(key) + 1
        return (f'<a class="sanet-cite" href="#ref-{html.escape(key)}" '
                f'id="cite-{html.escape(key)}-{number}">[{number}]</a>')

    def references(self, bibliography: Bibliography) -> str:
        if not self.order:
            return ""
        formatted = bibliography.formatted(self.order)
        items = "".join(f'<li id="ref-{html.escape(key)}">{formatted[key]}</li>' for key in self.order)
        return f'<h2 id="references">References</h2><ol class="sanet-references">{items}</ol>'
