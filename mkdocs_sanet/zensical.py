"""The demo and citations in a site that Zensical builds (`zensical build` reads mkdocs.yml, runs
its Python-Markdown extensions, and skips MkDocs plugins such as `sanet`).

Listed in mkdocs.yml beside the site's other extensions, after `mkdocs-sanet export docs/sanet`
has written the demo's files into docs_dir (Zensical copies them into the site as they are):

    markdown_extensions:
      - mkdocs_sanet.zensical:
          assets: sanet/                    # the export's folder, relative to docs_dir
          bibliography: docs/references.bib # for <% cite %>, relative to mkdocs.yml

`<% sanet_demo ... %>` becomes the export's custom element, `<sanet-demo>` with the tag's
attributes, and the export's one script (`sanet-demo.js`, which finds the model, the runtime and
the presets beside itself); `<% cite key %>` a numbered link, with the page's references at its
end. The tags are read by tags.extract (the plugin's own scanner: code stays literal, admonitions,
tabs and lists work) and the citations by citations.py. A tag that needs the MkDocs plugin's build
(`sanet_results` stylizes at build time; figures, rows, the architecture diagram and the model card
need the plugin's files) stops the build with the page, the line and what to do: never a literal tag
on a page.

Zensical gives each conversion its page (its path in docs_dir and its URL) through its context
preprocessor; without Zensical (plain Python-Markdown, MkDocs) the page is read from MkDocs'
`relpath` treeprocessor when there is one, and URLs are made for a page at the site's root otherwise.
"""

from __future__ import annotations

import html
import os
import posixpath
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from markdown import Extension, Markdown
from markdown.postprocessors import Postprocessor
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor

from . import demo_html, tags
from .citations import Bibliography, BibliographyError, PageCitations
from .config import BACKENDS

# The tags this extension renders; the others need the MkDocs plugin, and why.
RENDERED = {"sanet_demo", "cite"}
NEEDS_MKDOCS = {
    "sanet_results": "its pictures are stylized at build time, which only the MkDocs plugin does",
    "sanet_model_card": "it reads the model's build record, which only the MkDocs plugin has",
    "sanet_architecture": "its diagram is drawn from the model the MkDocs plugin builds",
    "figure": "it needs the plugin's article stylesheet, which the export does not carry",
    "row": "it needs the plugin's article stylesheet, which the export does not carry",
    "endrow": "it needs the plugin's article stylesheet, which the export does not carry",
}
# Markdown's order: the tags are read before any other preprocessor (they handle code themselves);
# the HTML is made after raw HTML is restored (30) and before pymdownx's path converter (2).
READ_PRIORITY, RENDER_PRIORITY, TREE_DONE_PRIORITY = 1000, 15, -1000


class SANetZensicalError(Exception):
    """A tag that cannot be rendered, with the page, the line and what to do. Zensical stops the
    build on it (exit status 1) and shows the message at the end of its traceback."""


_PRINTED: set[str] = set()


def _error(text: str) -> SANetZensicalError:
    """The error, its message printed first on a line of its own (Zensical's traceback follows),
    once a build (Zensical renders pages in parallel: several may stop on one option)."""
    if text not in _PRINTED:
        _PRINTED.add(text)
        print(f"ERROR   -  sanet: {text}", file=sys.stderr, flush=True)
    return SANetZensicalError(text)


def _option_error(text: str) -> SANetZensicalError:
    return _error(f"mkdocs.yml: mkdocs_sanet.zensical: {text}")


# Bibliographies read once a build (Zensical makes one Markdown, and one extension, per page).
_BIBLIOGRAPHIES: dict[tuple, Bibliography] = {}


def _bibliography(path: Path) -> Bibliography:
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = (str(path), None, None)
    if key not in _BIBLIOGRAPHIES:
        _BIBLIOGRAPHIES[key] = Bibliography(path)
    return _BIBLIOGRAPHIES[key]


@dataclass
class _Page:
    where: str  # the page's file as messages name it (docs/p.md), or a description
    url: str  # its URL in the site, relative to the site's root ("" for the home page)
    source: Path | None  # its Markdown file, for line numbers after front matter
    # What src and href are written relative to: Zensical rewrites them in the page's HTML (raw HTML
    # too) as links relative to the page's file, as an author writes them in Markdown; MkDocs leaves
    # them as they are, relative to the page's URL. Other attributes (content-src) are never rewritten.
    link_base: str = ""


@dataclass
class _Conversion:
    """One Markdown conversion's state, shared by the extension's processors."""

    page: _Page | None = None
    found: list[tags.Tag] = field(default_factory=list)
    document: bool = False  # the postprocessors now run on the whole document (not a heading's HTML)


def _zensical_config() -> dict | None:
    try:
        from zensical.config import get_config
    except ImportError:
        return None
    try:
        return get_config()
    except Exception:  # noqa: BLE001  (not under a Zensical build)
        return None


def _page_of(md: Markdown, docs_dir: Path, root: Path) -> _Page:
    """The page being converted: Zensical's context, else MkDocs' relpath treeprocessor."""
    try:
        from zensical.extensions.context import ContextPreprocessor
    except ImportError:
        ContextPreprocessor = None
    context = ContextPreprocessor.from_markdown(md) if ContextPreprocessor else None
    if context is not None and getattr(context, "page", None) is not None:
        path, url = context.page.path, context.page.url or ""
        link_base = posixpath.dirname(path) + "/" if "/" in path else ""
    elif "relpath" in md.treeprocessors and getattr(md.treeprocessors["relpath"], "file", None) is not None:
        file = md.treeprocessors["relpath"].file
        path, url = file.src_uri, file.url
        link_base = url
    else:
        return _Page("a page (Zensical gave no page path)", "", None)
    source = docs_dir / path
    try:
        where = os.path.relpath(source, root)
    except ValueError:
        where = str(source)
    return _Page(where, url, source, link_base)


def _relative(target: str, page_url: str) -> str:
    """A URL of the site (relative to its root) as seen from the page at page_url."""
    folder = page_url if page_url.endswith("/") or not page_url else posixpath.dirname(page_url)
    return posixpath.relpath("/" + target.strip("/"), "/" + folder) if folder else target.strip("/") or "."


def _line_offset(markdown: str, source: Path | None) -> int:
    """Lines of the page's file before the Markdown that Zensical hands over (front matter)."""
    if source is None or not markdown.strip():
        return 0
    try:
        text = source.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return 0
    start = text.find(markdown[:2000])
    return text.count("\n", 0, start) if start > 0 else 0


class _Read(Preprocessor):
    """The page's tags read and checked, each replaced by its placeholder (tags.extract)."""

    def __init__(self, md: Markdown, extension: SANetZensicalExtension, state: _Conversion):
        super().__init__(md)
        self.extension, self.state = extension, state

    def run(self, lines: list[str]) -> list[str]:
        state = self.state
        state.document = False
        state.page = _page_of(self.md, self.extension.docs_dir, self.extension.root)
        markdown = "\n".join(lines)
        if "<%" not in markdown:
            state.found = []
            return lines
        try:
            text, found = tags.extract(markdown, tags.SPECS, first_line=_line_offset(markdown, state.page.source) + 1)
            tags.check_page(found)
            for tag in found:
                self.extension.check(tag, state.page)
        except tags.TagError as error:
            self.extension.fail(state.page, error.line, error.message)
        state.found = found
        return text.split("\n")


class _TreeDone(Treeprocessor):
    def __init__(self, md: Markdown, state: _Conversion):
        super().__init__(md)
        self.state = state

    def run(self, root) -> None:
        self.state.document = True


class _Render(Postprocessor):
    """The placeholders as HTML, once the whole page is rendered."""

    def __init__(self, md: Markdown, extension: SANetZensicalExtension, state: _Conversion):
        super().__init__(md)
        self.extension, self.state = extension, state

    def run(self, text: str) -> str:
        state = self.state
        if not state.document or not state.found:
            return text
        page, found = state.page, state.found
        state.found = []  # rendered once, whatever runs the postprocessors again
        try:
            return self.extension.render(text, found, page)
        except tags.TagError as error:
            self.extension.fail(page, error.line, error.message)


class SANetZensicalExtension(Extension):
    def __init__(self, **kwargs):
        self.config = {
            "assets": ["sanet/", "The folder of `mkdocs-sanet export`, relative to docs_dir (and so to the site's root)"],
            "bibliography": ["", "A BibTeX file for <% cite key %>, relative to mkdocs.yml"],
            "backends": ["", "Auto's order of backends, comma-separated (webgpu, webgl, wasm, cpu); empty: all"],
            "max_size": [512, "The largest picture size a demo offers (longest side, px), unless its tag says"],
        }
        super().__init__(**kwargs)
        config = _zensical_config() or {}
        self.root = Path(config.get("root_dir") or os.getcwd())
        self.docs_dir = Path(os.path.normpath(self.root / config.get("docs_dir", "docs")))
        written = str(self.getConfig("assets")).strip()
        self.assets = written.strip("/")
        folder = Path(os.path.normpath(self.docs_dir / self.assets))
        if written.startswith(("/", "\\")) or Path(written).is_absolute() or not folder.is_relative_to(self.docs_dir):
            # Zensical copies only docs_dir into the site: an export elsewhere would never be served.
            raise _option_error(f"assets: {written!r}: expected the export's folder inside docs_dir, relative "
                                f"to it (such as sanet/): Zensical copies only docs_dir ({self.docs_dir}) into the site")
        try:
            self.max_size = tags.SPECS["sanet_demo"].attributes["max_size"](str(self.getConfig("max_size")))
        except ValueError as error:
            raise _option_error(f"max_size: {self.getConfig('max_size')!r}: {error}") from None
        backends = [b for b in str(self.getConfig("backends")).replace(" ", ",").split(",") if b]
        unknown = [b for b in backends if b not in BACKENDS]
        if unknown:
            raise _option_error(f"backends: unknown backend {', '.join(unknown)}: expected some of "
                                f"{', '.join(BACKENDS)}, comma-separated")
        self.backends = backends
        self.bibliography_path = str(self.getConfig("bibliography")).strip()

    def extendMarkdown(self, md: Markdown) -> None:
        state = _Conversion()
        md.preprocessors.register(_Read(md, self, state), "sanet-zensical-read", READ_PRIORITY)
        md.treeprocessors.register(_TreeDone(md, state), "sanet-zensical-tree-done", TREE_DONE_PRIORITY)
        md.postprocessors.register(_Render(md, self, state), "sanet-zensical", RENDER_PRIORITY)

    # -- checks -----------------------------------------------------------------------------

    def fail(self, page: _Page, line: int, message: str):
        raise _error(f"{page.where}:{line}: {message}")

    def bibliography(self) -> Bibliography | None:
        if not self.bibliography_path:
            return None
        path = Path(os.path.normpath(self.root / self.bibliography_path))
        try:
            return _bibliography(path)
        except BibliographyError as error:
            raise _option_error(f"bibliography: {error}") from None

    def check(self, tag: tags.Tag, page: _Page) -> None:
        """What can be checked before the page is rendered: the tag is one this extension renders,
        the export is there, the pictures are, the citation's key is in the bibliography."""
        if tag.name not in RENDERED:
            raise tags.TagError(tag.line, (
                f"'{tag.name}' cannot be rendered by Zensical ({NEEDS_MKDOCS.get(tag.name, 'it needs the MkDocs plugin')}): "
                f"build this site with MkDocs (mkdocs build, with the sanet plugin), or remove the tag "
                f"(under Zensical, mkdocs_sanet.zensical renders sanet_demo and cite)"))
        a = tag.attributes
        if tag.name == "sanet_demo":
            script = self.docs_dir / self.assets / "sanet-demo.js"
            if not script.is_file() or not (self.docs_dir / self.assets / "model").is_dir():
                folder = os.path.relpath(self.docs_dir / self.assets, self.root)
                raise tags.TagError(tag.line, (
                    f"sanet_demo: no export in {folder}/ (looked for sanet-demo.js and model/): run "
                    f"`mkdocs-sanet export {folder}` first, or set the assets option of mkdocs_sanet.zensical "
                    f"to the folder of docs_dir that holds the export"))
            model_size = a.get("max_size", self.max_size)
            for key in ("content", "style", "style2"):
                if key in a:
                    a[key] = self._docs_image(a[key], page, tag, key, model_size)
            for key in ("contents", "styles"):  # the demo's own presets
                if key in a:
                    a[key] = [self._docs_image(value, page, tag, key, model_size) for value in a[key]]
        if tag.name == "cite":
            bibliography = self.bibliography()
            if bibliography is None:
                raise tags.TagError(tag.line, "cite needs a bibliography: set the bibliography option of "
                                              "mkdocs_sanet.zensical in mkdocs.yml (a .bib file, relative to mkdocs.yml)")
            if a["key"] not in bibliography:
                raise tags.TagError(tag.line, f"unknown citation key '{a['key']}' (not in {bibliography.path})")
            try:
                a["key"] = bibliography.check(a["key"])
            except BibliographyError as error:
                raise tags.TagError(tag.line, str(error)) from None

    def _docs_image(self, value: str, page: _Page, tag: tags.Tag, key: str, model_size: int) -> str:
        """A picture inside docs_dir (relative to the page's file, or to docs_dir when it starts
        with /), checked as the plugin checks it; returns its path relative to docs_dir."""
        from . import pipeline

        if value.startswith("/"):
            target = PurePosixPath(value.lstrip("/"))
        else:
            base = page.source.parent.relative_to(self.docs_dir).as_posix() if page.source else ""
            target = PurePosixPath(base) / value
        resolved = Path(os.path.normpath(self.docs_dir / target))
        if not resolved.is_relative_to(self.docs_dir):
            raise tags.TagError(tag.line, f"{key}=\"{value}\" leaves docs_dir: expected an image inside {self.docs_dir}")
        if not resolved.is_file():
            raise tags.TagError(tag.line, f"{key}=\"{value}\": no such file in docs_dir "
                                          f"(looked for {resolved.relative_to(self.docs_dir).as_posix()})")
        try:
            pipeline.check_image(resolved, model_size)
        except (pipeline.ImageCheckError, OSError) as error:
            raise tags.TagError(tag.line, f"{key}=\"{value}\": {error}") from None
        return resolved.relative_to(self.docs_dir).as_posix()

    # -- HTML ---------------------------------------------------------------------------------

    def render(self, text: str, found: list[tags.Tag], page: _Page) -> str:
        tags.settle_ids(text, found)
        citations = PageCitations()
        assets_url = _relative(self.assets, page.link_base)
        first_demo = next((tag for tag in found if tag.name == "sanet_demo"), None)

        def render(tag: tags.Tag) -> str:
            if tag.name == "cite":
                return citations.cite(tag.attributes["key"])
            element = self._demo(tag, page)
            if tag is first_demo:  # the stylesheet before it (no flash), the one script after it
                link, script = demo_html.asset_tags(assets_url)
                return link + element + script
            return element

        text = tags.substitute(text, found, render)
        bibliography = self.bibliography()
        if bibliography is not None and citations.order:
            text += citations.references(bibliography)
        return text

    def _demo(self, tag: tags.Tag, page: _Page) -> str:
        """The export's element, as a page written by hand has it (static/export-index.html)."""
        a = tag.attributes
        # The pictures' paths as URLs relative to the site's root, which the element's href names:
        # Zensical rewrites an href (written relative to the page's file) for each page the HTML
        # lands on, a blog index, archive or category page for an excerpt, but never content-src or
        # contents=. A '%', '#', '?', ',' or space in a name is part of the name (the demo's script
        # reads contents= and styles= as comma-separated URLs).
        url = lambda path: quote(path.strip("/"))  # noqa: E731
        pictures = any(key in a for key in ("content", "style", "style2", "contents", "styles"))
        attributes = {
            "id": a["id"],
            "href": _relative("", page.link_base) if pictures else "",
            "max-size": str(a.get("max_size", self.max_size)),
            "strength": f"{a.get('strength', 1.0):g}",
            "backends": ",".join(self.backends),
            "content-src": url(a["content"]) if "content" in a else "",
            "style-src": url(a["style"]) if "style" in a else "",
            "style2-src": url(a["style2"]) if "style2" in a else "",
            "contents": ",".join(url(v) for v in a["contents"]) if "contents" in a else "",
            "styles": ",".join(url(v) for v in a["styles"]) if "styles" in a else "",
            "passes": str(a["passes"]) if "passes" in a else "",
            "mix": f"{a['mix']:g}" if "mix" in a else "",
            "keep-colors": ("true" if a["keep_colors"] else "false") if "keep_colors" in a else "",
            "webcam": ("true" if a["webcam"] else "false") if "webcam" in a else "",
        }
        written = " ".join(f'{name}="{html.escape(value)}"' for name, value in attributes.items() if value)
        return (f'<sanet-demo {written}><noscript><p class="sanet-demo__noscript">'
                f'{html.escape(demo_html.NOSCRIPT_TEXT)}</p></noscript></sanet-demo>')


def makeExtension(**kwargs) -> SANetZensicalExtension:  # noqa: N802  (Python-Markdown's name)
    return SANetZensicalExtension(**kwargs)
