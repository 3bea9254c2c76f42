"""The MkDocs plugin `sanet`: finds the tags, builds (or reuses) the model, injects the demo
and the explainer's figures, renders math, resolves citations."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin
from mkdocs.utils import get_relative_url

from . import article, formulas, page_assets, results, tags
from .cache import Cache, model_key
from .compression import CompressionError, channels, parse
from .citations import Bibliography, BibliographyError, PageCitations
from .config import SANetConfig
from .weights import WeightsError, resolve

log = logging.getLogger("mkdocs.plugins.sanet")

# Tags whose HTML needs the model built (the demo) or its manifest (the model card).
MODEL_TAGS = {"sanet_demo", "sanet_model_card"}
ARTICLE_TAGS = {"figure", "row", "sanet_architecture", "sanet_model_card", "sanet_results"}


class SANetPlugin(BasePlugin[SANetConfig]):
    supports_multiple_instances = False

    def __init__(self):
        self.page_tags: dict[str, list[tags.Tag]] = {}
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sanet-model")
        self.model_future: Future | None = None

    # -- configuration -------------------------------------------------------------------

    def on_config(self, config):
        if not self.config.enabled:
            return config
        self.config_dir = Path(config.config_file_path or ".").resolve().parent
        self.docs_dir = Path(config.docs_dir).resolve()
        self.cache = Cache(self.config_dir / self.config.cache_dir)
        self.runtime_dir = self.config_dir / self.config.runtime_dir
        if self.config.max_size < 32:
            raise PluginError(f"mkdocs.yml: sanet: max_size is {self.config.max_size}, expected at least 32")
        try:
            self.source = resolve(self.config.model, self.config_dir)
        except WeightsError as error:
            raise PluginError(f"mkdocs.yml: sanet: model: {error}") from None
        self.bibliography = None
        if self.config.bibliography:
            path = self.config_dir / self.config.bibliography
            try:
                self.bibliography = Bibliography(path)
            except BibliographyError as error:
                raise PluginError(f"mkdocs.yml: sanet: bibliography: {error}") from None
        try:
            channels(parse(self.config.compression), self.source.encoder)
        except CompressionError as error:
            raise PluginError(f"mkdocs.yml: sanet: {error}") from None
        self.key = model_key(self.source, self.config.quantization, self.config.compression)
        self.page_tags = {}
        self.page_math: set[str] = set()
        self.result_files: dict[str, Path] = {}
        self.model_future = None
        self.cancelled = False
        return config

    def on_files(self, files, config):
        for role in ("content", "style"):
            for path in getattr(self.config.presets, role):
                if files.get_file_from_path(PurePosixPath(path).as_posix()) is None:
                    raise PluginError(f"mkdocs.yml: sanet: presets: {role}: {path}: no such file in docs_dir")
        return files

    # -- pages: tags in the Markdown -----------------------------------------------------

    def _where(self, page) -> str:
        try:
            return os.path.relpath(page.file.abs_src_path, self.config_dir)
        except ValueError:
            return str(page.file.abs_src_path)

    @staticmethod
    def _line_offset(markdown: str, page) -> int:
        """Lines of the file before the Markdown that MkDocs hands over (front matter, blank lines)."""
        source = page.file.content_string
        start = source.find(markdown[:2000]) if markdown.strip() else -1
        return source.count("\n", 0, start) if start > 0 else 0

    def on_page_markdown(self, markdown, page, config, files):
        if not self.config.enabled:
            return markdown
        offset = self._line_offset(markdown, page)
        try:
            try:
                text, found = tags.extract(markdown, tags.SPECS)
            except tags.TagError as error:
                raise tags.TagError(error.line + offset, error.message) from None
            for tag in found:
                tag.line += offset
            self._prepare(found, page, files)
        except tags.TagError as error:
            raise PluginError(f"{self._where(page)}:{error.line}: {error.message}") from None
        if found:
            self.page_tags[page.file.src_uri] = found
            if any(tag.name in MODEL_TAGS for tag in found):
                self._start_model_build()
        return text

    def _prepare(self, found: list[tags.Tag], page, files) -> None:
        """Checks that need the page: ids, paths inside docs_dir, citation keys, rows."""
        ids = set()
        open_row = None
        demos = 0
        for tag in found:
            a = tag.attributes
            if tag.name == "sanet_demo":
                demos += 1
                a.setdefault("id", f"sanet-demo-{demos}")
                if a["id"] in ids:
                    raise tags.TagError(tag.line, f"id \"{a['id']}\" is used twice on this page")
                ids.add(a["id"])
            for key in ("content", "style", "src"):
                if key in a:
                    a[key] = self._docs_image(a[key], page, files, tag.line, key)
            for key in ("contents", "styles"):
                if key in a:
                    a[key] = [self._docs_image(p, page, files, tag.line, key) for p in a[key]]
            if tag.name == "cite":
                if self.bibliography is None:
                    raise tags.TagError(tag.line, "cite needs a bibliography: set the plugin's bibliography option")
                if a["key"] not in self.bibliography:
                    raise tags.TagError(tag.line, f"unknown citation key '{a['key']}' (not in {self.bibliography.path})")
            if tag.name == "row":
                if open_row is not None:
                    raise tags.TagError(tag.line, f"row inside the row opened on line {open_row.line}")
                open_row = tag
            if tag.name == "endrow":
                if open_row is None:
                    raise tags.TagError(tag.line, "endrow without a row before it")
                open_row = None
        if open_row is not None:
            raise tags.TagError(open_row.line, "row without an endrow after it")

    def _docs_image(self, value: str, page, files, line: int, key: str) -> page_assets.Preset:
        """A path inside docs_dir (relative to the page, or to docs_dir when it starts with /):
        its label, its URL relative to the page, and its file."""
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
        return page_assets.Preset(page_assets.preset_label(value), get_relative_url(file.url, page.url), resolved)

    # -- pages: HTML ---------------------------------------------------------------------

    def on_page_content(self, html, page, config, files):
        if not self.config.enabled:
            return html
        found = self.page_tags.get(page.file.src_uri, [])
        assets_url = get_relative_url(page_assets.SITE_FOLDER, page.url)
        citations = PageCitations()
        renderers = {
            "sanet_demo": lambda tag: self._render_demo(tag, page, assets_url),
            "figure": lambda tag: article.figure(
                tag.attributes["src"].url, tag.attributes["caption"], tag.attributes.get("width", "full"),
                tag.attributes.get("alt", tag.attributes["caption"])),
            "row": lambda tag: article.row_start(),
            "endrow": lambda tag: article.row_end(),
            "sanet_architecture": lambda tag: article.architecture_svg(self.source.encoder, self.source.name),
            "sanet_model_card": lambda tag: article.model_card(
                self.source.encoder, self._manifest(), self.source.name),
            "sanet_results": lambda tag: self._render_results(tag, page, assets_url),
            "cite": lambda tag: citations.cite(tag.attributes["key"]),
        }
        html = tags.substitute(html, found, lambda tag: renderers[tag.name](tag))
        if self.bibliography is not None:
            html += citations.references(self.bibliography)
        assets = ""
        if formulas.has_math(html):
            try:
                html = formulas.render(html, self.runtime_dir, self.cache.root / "math")
            except formulas.FormulaError as error:
                source = page.file.content_string
                found_at = max(source.find(error.tex), source.find(error.tex.splitlines()[0]), 0)
                line = source.count("\n", 0, found_at) + 1
                raise PluginError(f"{self._where(page)}:{line}: math error in '{error.tex}': {error.message}") from None
            except FileNotFoundError as error:
                raise PluginError(f"mkdocs.yml: sanet: runtime_dir: {error}") from None
            self.page_math.add(page.file.src_uri)
            assets += f'<link rel="stylesheet" href="{assets_url}/katex/katex.min.css">'
        if any(tag.name in ARTICLE_TAGS for tag in found):
            assets += (f'<link rel="stylesheet" href="{assets_url}/sanet-article.css">'
                     f'<script src="{assets_url}/sanet-article.js"></script>')
        if any(tag.name == "sanet_demo" for tag in found):
            assets += page_assets.asset_tags(assets_url)
        return html + assets

    def _render_demo(self, tag: tags.Tag, page, assets_url: str) -> str:
        a = tag.attributes
        contents, styles = self._presets("content", page), self._presets("style", page)
        offered = {key: ([a[key]] if key in a and a[key].url not in [p.url for p in presets] else []) + presets
                   for key, presets in (("content", contents), ("style", styles))}
        return page_assets.render_demo(
            demo_id=a["id"], model_url=f"{assets_url}/models/{self.key}/", runtime_url=f"{assets_url}/tfjs/",
            backends=self.config.backends, max_size=a.get("max_size", self.config.max_size),
            strength=a.get("strength", 1.0), trained=self.source.trained, model_name=self.source.name,
            contents=offered["content"], styles=offered["style"],
            content=a["content"].url if "content" in a else None, style=a["style"].url if "style" in a else None)

    def _render_results(self, tag: tags.Tag, page, assets_url: str) -> str:
        a = tag.attributes
        strength = a.get("strength", 1.0)
        jobs = [[results.Job(c.path, s.path, self.config.results_size, strength) for s in a["styles"]]
                for c in a["contents"]]
        started = time.time()
        try:
            paths, computed = results.ensure([j for row in jobs for j in row], self.config.model, self.config_dir,
                                             self.key, self.cache.root / "results", self.config.compression)
        except RuntimeError as error:
            raise PluginError(f"{self._where(page)}:{tag.line}: {error}") from None
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
                                   f"({self.config.results_size} px, strength {strength:g}).")
        return article.results_grid([(c.label, c.url) for c in a["contents"]],
                                    [(s.label, s.url) for s in a["styles"]], cells, caption)

    def _presets(self, role: str, page) -> list[page_assets.Preset]:
        configured = getattr(self.config.presets, role)
        if configured:
            return [page_assets.Preset(page_assets.preset_label(path), get_relative_url(path, page.url))
                    for path in configured]
        return [page_assets.Preset(page_assets.preset_label(path.name),
                                   get_relative_url(f"{page_assets.SITE_FOLDER}/presets/{path.name}", page.url))
                for path in sorted(page_assets.BUILTIN_PRESETS.glob(f"{role}-*.jpg"))]

    # -- the model -----------------------------------------------------------------------

    def _start_model_build(self) -> None:
        """Build the model beside the page rendering (once per build); a warm cache returns at once."""
        if self.model_future is None:
            self.model_future = self.executor.submit(self._model_entry)

    def _manifest(self) -> dict:
        """The built model's manifest (waits for the build)."""
        self.model_future.result()
        return self.cache.manifest(self.key)

    def _model_entry(self) -> Path:
        entry = self.cache.get(self.key)
        if entry is not None:
            manifest = self.cache.manifest(self.key)
            log.info(f"sanet: using the cached model {self.key[:12]} ({manifest['bytes'] / 1e6:.1f} MB)")
        else:
            log.info(f"sanet: building the TF.js model '{self.source.name}' ({self.config.quantization}, "
                     f"compression: {self.config.compression}); "
                     f"this happens once, later builds reuse {self.cache.root}/{self.key[:12]}…")
            started = time.time()
            entry = self.cache.put(self.key, self._export)
            manifest = self.cache.manifest(self.key)
            log.info(f"sanet: model built in {time.time() - started:.1f} s: "
                     f"{manifest['parameters']:,} parameters, {manifest['bytes'] / 1e6:.1f} MB")
        if not self.source.trained:
            log.info("sanet: the model is UNTRAINED (random attention and decoder weights): "
                     "the demo runs end to end but does not stylize yet")
        return entry

    def _export(self, out_dir: Path) -> None:
        if self.cancelled:
            raise PluginError("sanet: the build failed before the model was built")
        command = [sys.executable, "-m", "mkdocs_sanet.export", "--model", self.config.model,
                   "--base-dir", str(self.config_dir), "--quantization", self.config.quantization,
                   "--compression", self.config.compression, "--output", str(out_dir)]
        self.export_process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        lines = []
        for line in self.export_process.stderr:
            lines.append(line.rstrip())
            if line.startswith(("converted ", "compression: ", "  ")):
                log.info(f"sanet: {line.rstrip()}")
        if self.export_process.wait() != 0:
            tail = "\n".join(lines[-15:])
            raise PluginError(f"sanet: building the model failed:\n{tail}")

    def on_build_error(self, error):
        """Stop a model build that no page will use; its temporary folder is removed."""
        self.cancelled = True
        process = getattr(self, "export_process", None)
        if process is not None and process.poll() is None:
            process.kill()

    # -- the site's files ----------------------------------------------------------------

    def on_post_build(self, config):
        if not self.config.enabled:
            return
        site = Path(config.site_dir) / page_assets.SITE_FOLDER
        used = {tag.name for found in self.page_tags.values() for tag in found}
        if "sanet_demo" in used:
            try:
                runtime = page_assets.runtime_sources(self.runtime_dir)
            except page_assets.RuntimeMissing as error:
                raise PluginError(f"mkdocs.yml: sanet: runtime_dir: {error}") from None
            for path in runtime:
                page_assets.link_or_copy(path, site / "tfjs" / path.name)
            for name in ("sanet.js", "sanet-demo.js", "sanet-demo.css"):
                page_assets.link_or_copy(page_assets.STATIC / name, site / name)
            if not (self.config.presets.content and self.config.presets.style):
                page_assets.copy_tree(page_assets.BUILTIN_PRESETS, site / "presets")
            page_assets.copy_tree(self.model_future.result(), site / "models" / self.key)
        if used & ARTICLE_TAGS:
            for name in ("sanet-article.css", "sanet-article.js"):
                page_assets.link_or_copy(page_assets.STATIC / name, site / name)
        for name, path in self.result_files.items():
            page_assets.link_or_copy(path, site / "results" / name)
        if self.page_math:
            katex = self.runtime_dir / "katex" / "dist"
            page_assets.link_or_copy(katex / "katex.min.css", site / "katex" / "katex.min.css")
            for font in (katex / "fonts").glob("*.woff2"):
                page_assets.link_or_copy(font, site / "katex" / "fonts" / font.name)

    def on_shutdown(self):
        self.executor.shutdown(wait=False, cancel_futures=True)
