"""The pages' side of the plugin, for one build: the tags of each page's Markdown (read and
checked), their HTML (rendered inside Markdown's conversion, see markdown_ext.py), and the files
that the rendered pages need in the site (see `site_assets`)."""

from __future__ import annotations

import filecmp
import logging
import os
import posixpath
import time
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from mkdocs.exceptions import PluginError
from mkdocs.structure.pages import Page
from mkdocs.utils import get_relative_url

from . import article, demo_html, formulas, page_assets, pipeline, results, tags
from .architecture import model_skips
from .builder import ModelBuild
from .cache import MANIFEST
from .citations import Bibliography, BibliographyError, PageCitations
from .config import SANetConfig, over_the_cap

log = logging.getLogger("mkdocs.plugins.sanet")

# Tags whose HTML needs the model built (the demo) or its manifest (the model card).
MODEL_TAGS = {"sanet_demo", "sanet_model_card"}
ARTICLE_TAGS = {"figure", "row", "sanet_architecture", "sanet_model_card", "sanet_results"}


def cache_dir_error(root: Path, why) -> PluginError:
    return PluginError(f"mkdocs.yml: sanet: cache_dir: {root}: expected a writable folder ({why})")


class Renderer:
    """`model` is the build's model: `.build` (a ModelBuild), `.start()`, `.done()` and
    `.entry()` (which waits); `serving`: under `mkdocs serve` a page does not wait for a cold
    model build, it says that the model is being built."""

    def __init__(self, options: SANetConfig, config_dir: Path, docs_dir: Path, runtime_dir: Path,
                 bibliography: Bibliography | None, model, serving: bool):
        self.options, self.config_dir, self.docs_dir = options, config_dir, docs_dir
        self.runtime_dir, self.bibliography, self.model, self.serving = runtime_dir, bibliography, model, serving
        self.build: ModelBuild = model.build
        self.source, self.key, self.cache = self.build.source, self.build.key, self.build.cache
        self.page_tags: dict[str, list[tags.Tag]] = {}
        # Every tag of the site by its placeholder's number, with its page: a page's HTML may carry
        # another page's placeholders (a blog excerpt), rendered for the page it lands on.
        self.site_tags: dict[int, tuple[tags.Tag, Page]] = {}
        self.pages: dict[str, Page] = {}
        self.page_math: set[str] = set()
        self.result_files: dict[str, Path] = {}
        self.building_shown = False  # a page of this build said "the model is being built"
        self.preset_lists: dict[str, list[demo_html.Preset]] = {}
        self.shared_model: str | None = None  # the export's model folder that the demos load (export_model)

    def where(self, page) -> str:
        try:
            return os.path.relpath(page.file.abs_src_path, self.config_dir)
        except ValueError:
            return str(page.file.abs_src_path)

    def has_demo(self, page) -> bool:
        """Whether the page's own Markdown has a demo (an excerpt of another page's does not count)."""
        return any(tag.name == "sanet_demo" for tag in self.page_tags.get(page.file.src_uri, ()))

    def used(self) -> set[str]:
        """The names of the tags the site's pages use."""
        return {tag.name for found in self.page_tags.values() for tag in found}

    # -- Markdown: the tags ----------------------------------------------------------------

    @staticmethod
    def _line_offset(markdown: str, page) -> int:
        """Lines of the file before the Markdown that MkDocs hands over (front matter, blank lines)."""
        source = page.file.content_string
        start = source.find(markdown[:2000]) if markdown.strip() else -1
        return source.count("\n", 0, start) if start > 0 else 0

    def read_page(self, markdown: str, page, files) -> str:
        """The page's Markdown with its tags as placeholders; the tags checked and kept."""
        self.pages[page.file.src_uri] = page
        # Placeholders numbered across the build: a page's HTML that carries another page's Markdown
        # (an excerpt) never gets that page's tags swapped for its own.
        first_index = sum(len(found) for found in self.page_tags.values())
        try:
            text, found = tags.extract(markdown, tags.SPECS, first_index=first_index,
                                       first_line=self._line_offset(markdown, page) + 1)
            tags.check_page(found)
            self._prepare(found, page, files)
        except tags.TagError as error:
            raise PluginError(f"{self.where(page)}:{error.line}: {error.message}") from None
        if found:
            self.page_tags[page.file.src_uri] = found
            self.site_tags.update((tag.index, (tag, page)) for tag in found)
            if any(tag.name in MODEL_TAGS for tag in found):
                self.model.start(self.serving)
        return text

    def _prepare(self, found: list[tags.Tag], page, files) -> None:
        """Checks that need the site: max_size under its compression, paths inside docs_dir, citation keys."""
        for tag in found:
            a = tag.attributes
            if "max_size" in a and (problem := over_the_cap(a["max_size"], self.options.compression)):
                raise tags.TagError(tag.line, f"'{tag.name}' attribute max_size=\"{a['max_size']}\": {problem}")
            for key in ("content", "style", "style2", "src"):
                if key in a:
                    a[key] = self._docs_image(a[key], page, files, tag, key)
            for key in ("contents", "styles"):
                if key in a:
                    a[key] = [self._docs_image(p, page, files, tag, key) for p in a[key]]
            if tag.name == "cite":
                if self.bibliography is None:
                    raise tags.TagError(tag.line, "cite needs a bibliography: set the plugin's bibliography option")
                if a["key"] not in self.bibliography:
                    raise tags.TagError(tag.line, f"unknown citation key '{a['key']}' (not in {self.bibliography.path})")
                try:  # the entry formatted now, its errors with the page's line; the key as the .bib spells it
                    a["key"] = self.bibliography.check(a["key"])
                except BibliographyError as error:
                    raise tags.TagError(tag.line, str(error)) from None

    def _docs_image(self, value: str, page, files, tag: tags.Tag, key: str) -> demo_html.Preset:
        """A path inside docs_dir (relative to the page, or to docs_dir when it starts with /):
        its label, its URL relative to the page, and its file, checked to be a picture that
        the browser (and, for the model's inputs, the pipeline) can use."""
        line = tag.line
        if value.startswith("/"):
            target = PurePosixPath(value.lstrip("/"))
        else:
            target = PurePosixPath(page.file.src_uri).parent / value
        # normpath, not resolve(): "../" may not leave docs_dir, but an author's symlink may.
        resolved = Path(os.path.normpath(self.docs_dir / target))
        if not resolved.is_relative_to(self.docs_dir):
            raise tags.TagError(line, f"{key}=\"{value}\" leaves docs_dir: expected an image inside {self.docs_dir}")
        src_uri = resolved.relative_to(self.docs_dir).as_posix()
        file = files.get_file_from_path(src_uri)
        if file is None or not resolved.is_file():
            raise tags.TagError(line, f"{key}=\"{value}\": no such file in docs_dir (looked for {src_uri})")
        # The size the model gets it at: the demo's largest offered size, or the results grid's.
        model_size = {"sanet_demo": tag.attributes.get("max_size", self.options.max_size),
                      "sanet_results": self.options.results_size}.get(tag.name)
        try:
            if key == "src" and resolved.suffix.lower() == ".svg":
                if b"<svg" not in resolved.read_bytes()[:4096]:
                    raise pipeline.ImageCheckError("not an SVG picture (no <svg> element at its start)")
            else:
                pipeline.check_image(resolved, model_size)
        except (pipeline.ImageCheckError, OSError) as error:
            raise tags.TagError(line, f"{key}=\"{value}\": {error}") from None
        # The file's URL in the site: made relative to the page the HTML lands on when it is rendered.
        return demo_html.Preset(demo_html.preset_label(value), file.url, resolved)

    # -- HTML --------------------------------------------------------------------------------

    def render_html(self, html: str, file) -> str:
        """The placeholders and math of one Markdown conversion as HTML, with URLs relative to
        `file.url`, the page the HTML lands on: the page itself, or a blog view that shows an
        excerpt of the page (then `file` is the post's, with the view's URL)."""
        page = self.pages.get(file.src_uri)
        if page is None:  # not a page of this build: nothing of this plugin's is in it
            return html
        own = page.file.url == file.url  # False: an excerpt of the page, on another page
        found = [self.site_tags[n][0] for n in sorted(tags.placeholder_numbers(html)) if n in self.site_tags]
        assets_url = get_relative_url(page_assets.SITE_FOLDER, file.url)
        relative = lambda url: get_relative_url(url, file.url)  # noqa: E731
        # On another page a citation links to the references at the end of its own page.
        cited_page = "" if own else relative(page.url)
        citations = PageCitations()
        renderers = {
            "sanet_demo": lambda tag: self._demo(tag, file.url, assets_url),
            "figure": lambda tag: article.figure(
                relative(tag.attributes["src"].url), tag.attributes["caption"], tag.attributes.get("width", "full"),
                tag.attributes.get("alt", tag.attributes["caption"])),
            "row": lambda tag: article.row_start(),
            "endrow": lambda tag: article.row_end(),
            "sanet_architecture": lambda tag: article.architecture_svg(
                self.source.encoder, self.source.name, compression=self.options.compression,
                skips=model_skips(self.source.widths())),
            "sanet_model_card": lambda tag: self._model_card(),
            "sanet_results": lambda tag: self._results(tag, page, file.url, assets_url),
            "cite": lambda tag: citations.cite(tag.attributes["key"]).replace(
                'href="#', f'href="{cited_page}#', 1),
        }
        try:
            if own:
                tags.settle_ids(html, found)
            html = tags.substitute(html, found, lambda tag: renderers[tag.name](tag))
        except tags.TagError as error:
            raise PluginError(f"{self.where(page)}:{error.line}: {error.message}") from None
        if self.bibliography is not None and own:
            html += citations.references(self.bibliography)
        # Stylesheets first, so that an excerpt (the HTML before `<!-- more -->`) has them too.
        assets = ""
        if formulas.has_math(html):
            html = self._math(html, page)
            assets += f'<link rel="stylesheet" href="{assets_url}/katex/katex.min.css">'
        if any(tag.name in ARTICLE_TAGS for tag in found):
            assets += (f'<link rel="stylesheet" href="{assets_url}/sanet-article.css">'
                       f'<script src="{assets_url}/sanet-article.js"></script>')
        return assets + html

    def _math(self, html: str, page) -> str:
        try:
            html = formulas.render(html, self.runtime_dir, self.cache.root / "math")
        except formulas.FormulaError as error:
            source = page.file.content_string
            found_at = max(source.find(error.tex), source.find(error.tex.splitlines()[0]), 0)
            line = source.count("\n", 0, found_at) + 1
            raise PluginError(f"{self.where(page)}:{line}: math error in '{formulas.excerpt(error.tex)}': "
                              f"{error.message}") from None
        except FileNotFoundError as error:
            raise PluginError(f"mkdocs.yml: sanet: runtime_dir: {error}") from None
        except OSError as error:  # the formulas' cache could not be written
            raise cache_dir_error(self.cache.root, error.strerror or error) from None
        self.page_math.add(page.file.src_uri)
        return html

    def _waiting(self) -> bool:
        """Under `mkdocs serve`, while the model is being built: say so instead of waiting."""
        if self.serving and not self.model.done():
            self.building_shown = True
            return True
        return False

    def _demo(self, tag: tags.Tag, url: str, assets_url: str) -> str:
        """The demo with its stylesheet before it and its script after it, so that it works
        wherever its HTML lands (on_post_page keeps one of each per page)."""
        a = tag.attributes
        stylesheet, script = demo_html.asset_tags(assets_url)
        if self._waiting():
            return stylesheet + demo_html.render_building(a["id"])
        relative = lambda preset: demo_html.Preset(  # noqa: E731
            preset.label, get_relative_url(preset.url, url), by=preset.by)
        # The demo's own presets (contents="…", styles="…"), else the site's, else the built-in ones.
        contents = a.get("contents") or self._presets("content")
        styles = a.get("styles") or self._presets("style")
        offered = {key: [relative(p) for p in [a[k] for k in keys if k in a and a[k].url not in [p.url for p in presets]]
                         + presets]
                   for key, keys, presets in (("content", ["content"], contents), ("style", ["style", "style2"], styles))}
        options = self.options
        return stylesheet + demo_html.render_demo(
            demo_id=a["id"], model_url=f"{assets_url}/models/{self.key}/", runtime_url=f"{assets_url}/tfjs/",
            backends=options.backends, max_size=a.get("max_size", options.max_size),
            strength=a.get("strength", 1.0), trained=self.source.trained, model_name=self.source.name,
            contents=offered["content"], styles=offered["style"],
            content=get_relative_url(a["content"].url, url) if "content" in a else None,
            style=get_relative_url(a["style"].url, url) if "style" in a else None,
            passes=a.get("passes", 1), style2=get_relative_url(a["style2"].url, url) if "style2" in a else None,
            mix=a.get("mix", 0.5), keep_colors=a.get("keep_colors", False), webcam=a.get("webcam", True),
            service_worker=get_relative_url("sanet-sw.js", url) if options.threads else None) + script

    def _model_card(self) -> str:
        if self._waiting():
            return demo_html.render_building("sanet-model-card", "model card")
        self.model.entry()
        return article.model_card(self.source.encoder, self.build.manifest(), self.source.name)

    def _results(self, tag: tags.Tag, page, url: str, assets_url: str) -> str:
        a = tag.attributes
        strength = a.get("strength", 1.0)
        size = self.options.results_size
        jobs = [[results.Job(c.path, s.path, size, strength) for s in a["styles"]] for c in a["contents"]]
        started = time.time()
        try:
            paths, computed = results.ensure([j for row in jobs for j in row], self.source, self.key,
                                             self.cache.root / "results", self.options.compression)
        except RuntimeError as error:
            raise PluginError(f"{self.where(page)}:{tag.line}: {error}") from None
        except OSError as error:  # the results' cache could not be written
            raise cache_dir_error(self.cache.root, error.strerror or error) from None
        if computed:
            log.info(f"sanet: results grid: computed {computed} pictures in {time.time() - started:.1f} s")
        else:
            log.info(f"sanet: results grid: {len(paths)} pictures from the cache")
        cells = []
        for row in jobs:
            cells.append([])
            for job in row:
                self.result_files[paths[job].name] = paths[job]
                cells[-1].append(f"{assets_url}/results/{paths[job].name}")
        caption = a.get("caption", f"Computed at build time by the model this site serves "
                                   f"({size} px, strength {strength:g}).")
        return article.results_grid([(c.label, get_relative_url(c.url, url)) for c in a["contents"]],
                                    [(s.label, get_relative_url(s.url, url)) for s in a["styles"]], cells, caption)

    def _presets(self, role: str) -> list[demo_html.Preset]:
        """The pictures offered, by their URLs in the site: found once a build, not once a demo."""
        if role not in self.preset_lists:
            self.preset_lists[role] = self._find_presets(role)
        return self.preset_lists[role]

    def _find_presets(self, role: str) -> list[demo_html.Preset]:
        configured = getattr(self.options.presets, role)
        # URLs, percent-encoded as MkDocs writes a file's URL: a '%', '#', '?' or space in a name
        # is part of the name, not of the URL's syntax.
        if configured:
            return [demo_html.Preset(demo_html.preset_label(path),
                                     quote(posixpath.normpath(PurePosixPath(path).as_posix())))
                    for path in configured]
        return [demo_html.Preset(entry["title"], f"{page_assets.SITE_FOLDER}/presets/{quote(entry['file'])}",
                                 by=demo_html.byline(entry))
                for entry in page_assets.builtin_presets()[role]]

    # -- the site's files --------------------------------------------------------------------

    def export_model(self, files, entry: Path) -> str | None:
        """The URL (relative to the site's root, such as "sanet/model/") of a folder of the site's
        own files that holds this build's model file for file, as `mkdocs-sanet export` writes it
        (docs/sanet/ for Zensical), or None. The demos then load that copy, and the model is in
        the site once, not twice."""
        wanted = sorted(path.relative_to(entry).as_posix() for path in entry.rglob("*") if path.is_file())
        for file in files:
            if posixpath.basename(file.src_uri) != MANIFEST or not file.src_uri.endswith("model/" + MANIFEST):
                continue
            inclusion = getattr(file, "inclusion", None)
            if inclusion is not None and inclusion.is_excluded():
                continue
            folder = file.src_uri[:-len(MANIFEST)]
            found = [files.get_file_from_path(folder + name) for name in wanted]
            if all(other is not None and not (getattr(other, "inclusion", None) and other.inclusion.is_excluded())
                   and other.abs_src_path and filecmp.cmp(entry / name, other.abs_src_path, shallow=False)
                   for name, other in zip(wanted, found)):
                return posixpath.dirname(file.url) + "/"
        return None

    def model_url(self, page_url: str) -> str | None:
        """The shared model's URL as seen from a page, when `site_assets` found one."""
        return get_relative_url(self.shared_model.rstrip("/"), page_url) + "/" if self.shared_model else None

    def site_assets(self, with_model: bool, files=None) -> dict[str, Path]:
        """What the rendered pages load, by path in the site: under SITE_FOLDER the demo's files
        (and the model's, when `with_model`, unless the site's own files hold that very model, see
        `export_model`), the article's, the results grid's pictures, KaTeX's; at the root the
        service worker of WASM threads (it controls the pages below its folder)."""
        used = self.used()
        assets: dict[str, Path] = {}
        self.shared_model = None
        if "sanet_demo" in used:
            try:
                assets.update(page_assets.demo_files(
                    self.runtime_dir, presets=not (self.options.presets.content and self.options.presets.style)))
            except page_assets.RuntimeMissing as error:
                raise PluginError(f"mkdocs.yml: sanet: runtime_dir: {error}") from None
            if with_model:
                entry = self.model.entry()
                self.shared_model = self.export_model(files, entry) if files is not None else None
                if self.shared_model is None:
                    assets.update({f"models/{self.key}/{path.relative_to(entry).as_posix()}": path
                                   for path in sorted(entry.rglob("*")) if path.is_file()})
                else:
                    log.info(f"sanet: the demos load the model of the export in {self.shared_model} "
                             f"(the same files): the site ships it once")
        if used & ARTICLE_TAGS:
            assets.update({name: page_assets.STATIC / name for name in page_assets.ARTICLE_FILES})
        assets.update({f"results/{name}": path for name, path in self.result_files.items()})
        if self.page_math:
            katex = self.runtime_dir / "katex" / "dist"
            assets["katex/katex.min.css"] = katex / "katex.min.css"
            assets.update({f"katex/fonts/{font.name}": font for font in sorted((katex / "fonts").glob("*.woff2"))})
        site = {f"{page_assets.SITE_FOLDER}/{name}": path for name, path in assets.items()}
        if "sanet_demo" in used and self.options.threads:
            site.update(page_assets.ROOT_FILES)
        return site
