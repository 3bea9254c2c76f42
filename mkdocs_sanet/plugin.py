"""The MkDocs plugin `sanet`: finds the tags, builds (or reuses) the model, injects the demo
and the explainer's figures, renders math, resolves citations."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority
from mkdocs.structure.pages import Page
from mkdocs.utils import get_relative_url

from . import article, bundled, demo_html, formulas, markdown_ext, page_assets, pipeline, results, tags
from .cache import Cache, CacheError, model_key
from .compression import CompressionError, channels, parse
from .citations import Bibliography, BibliographyError, PageCitations
from .config import SANetConfig
from .export import SIGNATURES
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
        self.serving = False  # under `mkdocs serve`: pages do not wait for a cold model build
        self.builds = 0
        self.shut_down = False

    # -- configuration -------------------------------------------------------------------

    # Early: the Markdown extension added here must be in markdown_extensions before another
    # plugin's on_config builds a Markdown from that list, or copies it.
    @event_priority(50)
    def on_config(self, config):
        if not self.config.enabled:
            return config
        self.config_dir = Path(config.config_file_path or ".").resolve().parent
        self.docs_dir = Path(config.docs_dir).resolve()
        self.cache = Cache(self.config_dir / self.config.cache_dir)
        if self.cache.root.exists() and not self.cache.root.is_dir():
            raise self._cache_dir_error("it is a file")
        self.runtime_dir = bundled.runtime_dir(self.config_dir / self.config.runtime_dir)
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
        # Every tag of the site by its placeholder's number, with its page: a page's HTML may carry
        # another page's placeholders (a blog excerpt), rendered for the page it lands on.
        self.site_tags: dict[int, tuple[tags.Tag, Page]] = {}
        self.pages: dict[str, Page] = {}
        self.page_math: set[str] = set()
        self.result_files: dict[str, Path] = {}
        # A model build still running (mkdocs serve rebuilt the site meanwhile) goes on, and a failed
        # one stays failed (its error stops each rebuild) until the model's key changes; otherwise
        # each build looks the model up again (cheap when it is cached).
        future = self.model_future
        if future is not None and (self.future_key != self.key or (future.done() and not _failed(future))):
            self.model_future = None
        self.building_shown = False  # a page of this build said "the model is being built"
        self.cancelled = False
        self.builds += 1
        # Placeholders and math become HTML inside Markdown's conversion, so that every conversion
        # gets them: the page's own, and the blog plugin's excerpts of a post on its views.
        config.markdown_extensions.append(markdown_ext.SANetExtension(self._render_html))
        return config

    def on_startup(self, *, command, dirty):
        self.serving = command == "serve"
        if self.serving:
            # A file that `mkdocs serve` watches: touched when a model build ends, for a rebuild.
            self.signal = Path(tempfile.mkdtemp(prefix="sanet-serve-")) / "model-ready"
            self.signal.write_text("")

    def on_serve(self, server, config, builder):
        server.watch(str(self.signal))
        return server

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
            raise PluginError(f"{self._where(page)}:{error.line}: {error.message}") from None
        if found:
            self.page_tags[page.file.src_uri] = found
            self.site_tags.update((tag.index, (tag, page)) for tag in found)
            if any(tag.name in MODEL_TAGS for tag in found):
                self._start_model_build()
        return text

    def _prepare(self, found: list[tags.Tag], page, files) -> None:
        """Checks that need the site: paths inside docs_dir, citation keys."""
        for tag in found:
            a = tag.attributes
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
        model_size = {"sanet_demo": tag.attributes.get("max_size", self.config.max_size),
                      "sanet_results": self.config.results_size}.get(tag.name)
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

    # -- pages: HTML ---------------------------------------------------------------------

    def _render_html(self, html: str, file) -> str:
        """The placeholders and math of one Markdown conversion as HTML, with URLs relative to
        `file.url`, the page the HTML lands on: the page itself, or a blog view that shows an
        excerpt of the page (then `file` is the post's, with the view's URL)."""
        page = self.pages.get(file.src_uri)
        if page is None:  # not a page of this build: nothing of this plugin's is in it
            return html
        own = page.file.url == file.url  # False: an excerpt of the page, on another page
        numbers = {int(next(group for group in match.groups() if group is not None))
                   for match in tags.PLACEHOLDERS.finditer(html)}
        found = [self.site_tags[n][0] for n in sorted(numbers) if n in self.site_tags]
        assets_url = get_relative_url(page_assets.SITE_FOLDER, file.url)
        relative = lambda url: get_relative_url(url, file.url)  # noqa: E731
        # On another page a citation links to the references at the end of its own page.
        cited_page = "" if own else relative(page.url)
        citations = PageCitations()
        renderers = {
            "sanet_demo": lambda tag: self._render_demo(tag, file.url, assets_url),
            "figure": lambda tag: article.figure(
                relative(tag.attributes["src"].url), tag.attributes["caption"], tag.attributes.get("width", "full"),
                tag.attributes.get("alt", tag.attributes["caption"])),
            "row": lambda tag: article.row_start(),
            "endrow": lambda tag: article.row_end(),
            "sanet_architecture": lambda tag: article.architecture_svg(self.source.encoder, self.source.name),
            "sanet_model_card": lambda tag: self._render_model_card(),
            "sanet_results": lambda tag: self._render_results(tag, page, file.url, assets_url),
            "cite": lambda tag: citations.cite(tag.attributes["key"]).replace(
                'href="#', f'href="{cited_page}#', 1),
        }
        try:
            if own:
                tags.settle_ids(html, found)
            html = tags.substitute(html, found, lambda tag: renderers[tag.name](tag))
        except tags.TagError as error:
            raise PluginError(f"{self._where(page)}:{error.line}: {error.message}") from None
        if self.bibliography is not None and own:
            html += citations.references(self.bibliography)
        # Stylesheets first, so that an excerpt (the HTML before `<!-- more -->`) has them too.
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
            except OSError as error:  # the formulas' cache could not be written
                raise self._cache_dir_error(error.strerror or error) from None
            self.page_math.add(page.file.src_uri)
            assets += f'<link rel="stylesheet" href="{assets_url}/katex/katex.min.css">'
        if any(tag.name in ARTICLE_TAGS for tag in found):
            assets += (f'<link rel="stylesheet" href="{assets_url}/sanet-article.css">'
                       f'<script src="{assets_url}/sanet-article.js"></script>')
        return assets + html

    def _render_demo(self, tag: tags.Tag, url: str, assets_url: str) -> str:
        """The demo with its stylesheet before it and its script after it, so that it works
        wherever its HTML lands (on_post_page keeps one of each per page)."""
        a = tag.attributes
        stylesheet, script = demo_html.asset_tags(assets_url)
        if self.serving and not self.model_future.done():
            self.building_shown = True
            return stylesheet + demo_html.render_building(a["id"])
        relative = lambda preset: demo_html.Preset(preset.label, get_relative_url(preset.url, url))  # noqa: E731
        contents, styles = self._presets("content"), self._presets("style")
        offered = {key: [relative(p) for p in [a[k] for k in keys if k in a and a[k].url not in [p.url for p in presets]]
                         + presets]
                   for key, keys, presets in (("content", ["content"], contents), ("style", ["style", "style2"], styles))}
        return stylesheet + demo_html.render_demo(
            demo_id=a["id"], model_url=f"{assets_url}/models/{self.key}/", runtime_url=f"{assets_url}/tfjs/",
            backends=self.config.backends, max_size=a.get("max_size", self.config.max_size),
            strength=a.get("strength", 1.0), trained=self.source.trained, model_name=self.source.name,
            contents=offered["content"], styles=offered["style"],
            content=get_relative_url(a["content"].url, url) if "content" in a else None,
            style=get_relative_url(a["style"].url, url) if "style" in a else None,
            passes=a.get("passes", 1), style2=get_relative_url(a["style2"].url, url) if "style2" in a else None,
            mix=a.get("mix", 0.5), keep_colors=a.get("keep_colors", False), webcam=a.get("webcam", True),
            service_worker=get_relative_url("sanet-sw.js", url) if self.config.threads else None) + script

    def _render_model_card(self) -> str:
        if self.serving and not self.model_future.done():
            self.building_shown = True
            return demo_html.render_building("sanet-model-card", "model card")
        return article.model_card(self.source.encoder, self._manifest(), self.source.name)

    def _render_results(self, tag: tags.Tag, page, url: str, assets_url: str) -> str:
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
        except OSError as error:  # the results' cache could not be written
            raise self._cache_dir_error(error.strerror or error) from None
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
        return article.results_grid([(c.label, get_relative_url(c.url, url)) for c in a["contents"]],
                                    [(s.label, get_relative_url(s.url, url)) for s in a["styles"]], cells, caption)

    def _presets(self, role: str) -> list[demo_html.Preset]:
        """The pictures offered, by their URLs in the site."""
        configured = getattr(self.config.presets, role)
        if configured:
            return [demo_html.Preset(demo_html.preset_label(path), PurePosixPath(path).as_posix())
                    for path in configured]
        return [demo_html.Preset(demo_html.preset_label(path.name), f"{page_assets.SITE_FOLDER}/presets/{path.name}")
                for path in sorted(page_assets.BUILTIN_PRESETS.glob(f"{role}-*.jpg"))]

    def on_post_page(self, output, page, config):
        """A placeholder that reached the page's final HTML is a tag the plugin never rendered:
        stop the build (a silent broken page is worse), whatever --strict says."""
        if not self.config.enabled:
            return output
        left = tags.leftover(output)
        if left is not None:
            raise PluginError(f"{self._where(page)}: a sanet tag was not rendered: its placeholder '{left}' "
                              f"is in the built page (a theme or plugin rendered the Markdown without this plugin)")
        # Each demo and each excerpt brings its stylesheets and scripts: load each once.
        return demo_html.once_per_page(output)

    # -- the model -----------------------------------------------------------------------

    def _start_model_build(self) -> None:
        """Build the model beside the page rendering (once per build). A cached model is looked
        up here and now, so that no page waits for it nor says that it is being built."""
        if self.model_future is None:
            self.future_key = self.key
            if self._cached_entry() is not None or bundled.prebuilt_model(self.key) is not None:
                self.model_future = Future()
                self.model_future.set_result(self._model_entry())
            else:
                self.model_future = self.executor.submit(self._model_entry)
                self.build_started = time.time()

    def _manifest(self) -> dict:
        """The built model's manifest (waits for the build)."""
        self.model_future.result()
        return self.cache.manifest(self.key)

    def _cache_dir_error(self, why) -> PluginError:
        return PluginError(f"mkdocs.yml: sanet: cache_dir: {self.cache.root}: expected a writable folder ({why})")

    def _cached_entry(self) -> Path | None:
        """The intact cache entry, or None; a damaged one is reported and removed (then rebuilt)."""
        try:
            return self.cache.get(self.key, SIGNATURES, warn=lambda message: log.warning(f"sanet: {message}"))
        except CacheError as error:
            raise PluginError(f"mkdocs.yml: sanet: cache_dir: {error}") from None

    def _model_entry(self) -> Path:
        try:
            entry = self._cached_entry()
            if entry is not None:
                manifest = self.cache.manifest(self.key)
                log.info(f"sanet: using the cached model {self.key[:12]} ({manifest['bytes'] / 1e6:.1f} MB)")
            elif (prebuilt := bundled.prebuilt_model(self.key)) is not None:
                entry = self.cache.put(self.key, lambda tmp: page_assets.copy_tree(prebuilt, tmp), SIGNATURES)
                log.info(f"sanet: using the model that came with the package ({self.key[:12]})")
            else:
                try:
                    bundled.require_build_extra(
                        f"building the model '{self.source.name}' ({self.config.quantization})")
                except bundled.BuildExtraMissing as error:
                    raise PluginError(str(error)) from None
                log.info(f"sanet: building the TF.js model '{self.source.name}' ({self.config.quantization}, "
                         f"compression: {self.config.compression}), "
                         f"about 20-30 s; this happens once, later builds reuse {self.cache.root}/{self.key[:12]}…")
                if self.serving:
                    log.info("sanet: mkdocs serve serves the site meanwhile: the demos say that the model is "
                             "being built, and the site is rebuilt (and the browser reloads) when it is ready")
                started = time.time()
                entry = self.cache.put(self.key, self._export, SIGNATURES)
                manifest = self.cache.manifest(self.key)
                log.info(f"sanet: model built in {time.time() - started:.1f} s: "
                         f"{manifest['parameters']:,} parameters, {manifest['bytes'] / 1e6:.1f} MB")
        except CacheError as error:
            raise PluginError(f"mkdocs.yml: sanet: cache_dir: {error}") from None
        if not self.source.trained:
            log.info("sanet: the model is UNTRAINED (random attention and decoder weights): "
                     "the demo runs end to end but does not stylize yet")
        return entry

    def _export(self, out_dir: Path) -> None:
        if self.cancelled:
            raise PluginError("sanet: the build failed before the model was built")
        command = [sys.executable, "-m", "mkdocs_sanet.export", "--model", self.config.model,
                   "--base-dir", str(self.config_dir), "--quantization", self.config.quantization,
                   "--compression", self.config.compression, "--output", str(out_dir),
                   "--compressed-cache", str(self.cache.root / "compressed")]
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
        """Stop a model build that no page will use; its temporary folder is removed. Under
        `mkdocs serve` the next rebuild will use it: let it run."""
        if self.serving:
            return
        self.cancelled = True
        process = getattr(self, "export_process", None)
        if process is not None and process.poll() is None:
            process.kill()

    # -- the site's files ----------------------------------------------------------------

    def on_post_build(self, config):
        if not self.config.enabled:
            return
        if self.serving and self.model_future is not None and not self.model_future.done():
            # Pages say that the model is being built: when it is, serve rebuilds the site.
            self.model_future.add_done_callback(self._rebuild_when_built)
        elif self.building_shown:  # the model was ready before this build ended
            self._rebuild_when_built(self.model_future)
        site = Path(config.site_dir) / page_assets.SITE_FOLDER
        used = {tag.name for found in self.page_tags.values() for tag in found}
        if "sanet_demo" in used:
            try:
                files = page_assets.demo_files(
                    self.runtime_dir, presets=not (self.config.presets.content and self.config.presets.style))
            except page_assets.RuntimeMissing as error:
                raise PluginError(f"mkdocs.yml: sanet: runtime_dir: {error}") from None
            page_assets.copy_files(files, site)
            if self.config.threads:  # at the root: a service worker controls the pages below its folder
                page_assets.copy_files(page_assets.ROOT_FILES, Path(config.site_dir))
            if not self.model_future.done() and not self.serving:
                log.info(f"sanet: the pages are built; waiting for the model build "
                         f"(started {time.time() - self.build_started:.0f} s ago)…")
            # `mkdocs build` waits for the model and ships it; `mkdocs serve` serves without it meanwhile.
            if self.model_future.done() or not self.serving:
                page_assets.copy_tree(self.model_future.result(), site / "models" / self.key)
        if used & ARTICLE_TAGS:
            page_assets.copy_files({name: page_assets.STATIC / name for name in page_assets.ARTICLE_FILES}, site)
        for name, path in self.result_files.items():
            page_assets.copy_file(path, site / "results" / name)
        if self.page_math:
            katex = self.runtime_dir / "katex" / "dist"
            page_assets.copy_file(katex / "katex.min.css", site / "katex" / "katex.min.css")
            for font in (katex / "fonts").glob("*.woff2"):
                page_assets.copy_file(font, site / "katex" / "fonts" / font.name)

    def _rebuild_when_built(self, future: Future) -> None:
        """Under `mkdocs serve`: touch the watched signal file until serve starts a rebuild, so that
        the pages that said "being built" get the demo. Touched more than once: a touch made
        before serve watches the file (the first build) would go unseen."""
        log.info("sanet: the model build failed: rebuilding the site to show why" if _failed(future)
                 else "sanet: the model is ready: rebuilding the site")
        build = self.builds

        def touch():
            deadline = time.time() + 120
            while self.builds == build and not self.shut_down and time.time() < deadline:
                os.utime(self.signal)
                time.sleep(1)

        threading.Thread(target=touch, name="sanet-serve", daemon=True).start()

    def on_shutdown(self):
        self.shut_down = True
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.serving:
            shutil.rmtree(self.signal.parent, ignore_errors=True)


def _failed(future: Future) -> bool:
    return future.done() and not future.cancelled() and future.exception() is not None
