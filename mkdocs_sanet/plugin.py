"""The MkDocs plugin `sanet`: a thin shell over its workers. The pages' tags, their HTML and the
files they need: renderer.py (inside Markdown's conversion: markdown_ext.py); the model:
builder.py, built beside the pages; the site's files: page_assets.py, as MkDocs `File`s."""

from __future__ import annotations

import html
import logging
import os
import re
import posixpath
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path, PurePosixPath

from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority

from . import bundled, demo_html, isolation, markdown_ext, page_assets, pipeline, tags
from .builder import Background, BuildError, ModelBuild
from .cache import Cache, CacheError
from .citations import Bibliography, BibliographyError
from .compression import CompressionError
from .config import SANetConfig
from .renderer import Renderer
from .weights import WeightsError, resolve

log = logging.getLogger("mkdocs.plugins.sanet")


def _preset_path_problem(path: str, docs_dir: Path) -> str | None:
    """What is wrong with a presets path before it is looked up among the site's files: the option
    takes paths relative to docs_dir, so an absolute one or one that leaves docs_dir is named as
    such (never "no such file" for a file that exists)."""
    expected = "expected a path relative to docs_dir, such as img/photo.jpg"
    if PurePosixPath(path).is_absolute() or Path(path).is_absolute() or path.startswith("\\"):
        inside = docs_dir / path.lstrip("/\\")
        hint = f" (for {inside}, write {path.lstrip('/')})" if inside.is_file() else ""
        return f"an absolute path: {expected}{hint}"
    if posixpath.normpath(path.replace("\\", "/")).split("/")[0] == "..":
        return f"leaves docs_dir: {expected}"
    return None


def _interrupt(number, frame):
    raise KeyboardInterrupt


class SANetPlugin(BasePlugin[SANetConfig]):
    supports_multiple_instances = False

    def __init__(self):
        self.model = Background(self._guard)
        self.serving = False  # under `mkdocs serve`: pages do not wait for a cold model build
        self.builds = 0
        self.shut_down = False
        self.untrained_said = False  # `mkdocs serve` says it once, not at every rebuild

    # Early: the Markdown extension added here must be in markdown_extensions before another
    # plugin's on_config builds a Markdown from that list, or copies it.
    @event_priority(50)
    def on_config(self, config):
        if not self.config.enabled:
            return config
        config_dir = Path(config.config_file_path or ".").resolve().parent
        cache = Cache(config_dir / self.config.cache_dir)
        if cache.root.exists() and not cache.root.is_dir():
            raise PluginError(f"mkdocs.yml: sanet: cache_dir: {cache.root}: expected a writable folder (it is a file)")
        try:
            source = resolve(self.config.model, config_dir)
        except WeightsError as error:
            raise PluginError(f"mkdocs.yml: sanet: model: {error}") from None
        bibliography = None
        if self.config.bibliography:
            try:
                bibliography = Bibliography(config_dir / self.config.bibliography)
            except BibliographyError as error:
                raise PluginError(f"mkdocs.yml: sanet: bibliography: {error}") from None
        try:
            build = ModelBuild(source, self.config.quantization, self.config.compression, cache,
                               log=lambda message: log.info(f"sanet: {message}"),
                               warn=lambda message: log.warning(f"sanet: {message}"))
        except CompressionError as error:
            raise PluginError(f"mkdocs.yml: sanet: {error}") from None
        self.model.use(build)
        runtime_dir = bundled.runtime_dir(config_dir / self.config.runtime_dir if self.config.runtime_dir else None)
        self.renderer = Renderer(self.config, config_dir, Path(config.docs_dir).resolve(), runtime_dir,
                                 bibliography, self.model, self.serving)
        self.builds += 1
        # Placeholders and math become HTML inside Markdown's conversion, so that every conversion
        # gets them: the page's own, and the blog plugin's excerpts of a post on its views.
        config.markdown_extensions.append(markdown_ext.SANetExtension(self.renderer.render_html))
        return config

    def _guard(self, step):
        """A step of the model's build, its errors as the plugin's (see builder.ModelBuild)."""
        try:
            return step()
        except CacheError as error:
            raise PluginError(f"mkdocs.yml: sanet: cache_dir: {error}") from None
        except bundled.BuildExtraMissing as error:
            raise PluginError(str(error)) from None
        except BuildError as error:
            raise PluginError(f"sanet: {error}") from None

    def on_startup(self, *, command, dirty):
        self.serving = command == "serve"
        if self.serving:
            # A file that `mkdocs serve` watches: touched when a model build ends, for a rebuild.
            self.signal = Path(tempfile.mkdtemp(prefix="sanet-serve-")) / "model-ready"
            self.signal.write_text("")
            # SIGTERM (a service manager, `kill`) ends serve as Ctrl-C does, so that on_shutdown
            # removes the folder; Python's default would end the process on the spot.
            if threading.current_thread() is threading.main_thread() and \
                    signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _interrupt)

    def on_serve(self, server, config, builder):
        server.watch(str(self.signal))
        return server

    def on_files(self, files, config):
        for role in ("content", "style"):
            for path in getattr(self.config.presets, role):
                problem = _preset_path_problem(path, Path(config.docs_dir))
                if problem:
                    raise PluginError(f"mkdocs.yml: sanet: presets: {role}: {path}: {problem}")
                file = files.get_file_from_path(posixpath.normpath(PurePosixPath(path).as_posix()))
                if file is None:
                    raise PluginError(f"mkdocs.yml: sanet: presets: {role}: {path}: no such file in docs_dir "
                                      f"(looked for {Path(config.docs_dir) / path})")
                try:  # the checks of a tag's pictures: a picture the browser and the model can use
                    pipeline.check_image(Path(file.abs_src_path), self.config.max_size)
                except (pipeline.ImageCheckError, OSError) as error:
                    raise PluginError(f"mkdocs.yml: sanet: presets: {role}: {path}: {error}") from None
        return files

    def on_page_markdown(self, markdown, page, config, files):
        if not self.config.enabled:
            return markdown
        return self.renderer.read_page(markdown, page, files)

    def on_env(self, env, config, files):
        """All pages are rendered: the files they need join the site's files, which MkDocs copies
        next. `mkdocs build` waits for the model here; `mkdocs serve` serves without it meanwhile
        (its pages say that the model is being built) and rebuilds when it is ready."""
        if not self.config.enabled:
            return env
        with_model = "sanet_demo" in self.renderer.used() and (self.model.done() or not self.serving)
        if with_model and not self.model.done():
            log.info(f"sanet: the pages are built; waiting for the model build "
                     f"(started {time.time() - self.model.started:.0f} s ago)…")
        added = page_assets.site_files(self.renderer.site_assets(with_model, files), config)
        names = {file.src_uri for file in added}
        for existing in [file for file in files if file.src_uri in names]:  # an author's file in the way
            files.remove(existing)
        for file in added:
            files.append(file)
        if with_model and not self.model.build.source.trained and not self.untrained_said:
            self.untrained_said = True
            log.info("sanet: the model is UNTRAINED (random attention and decoder weights): "
                     "the demo runs end to end but does not stylize yet")
        return env

    def on_post_page(self, output, page, config):
        """A placeholder that reached the page's final HTML is a tag the plugin never rendered:
        stop the build (a silent broken page is worse), whatever --strict says."""
        if not self.config.enabled:
            return output
        left = tags.leftover(output)
        if left is not None:
            raise PluginError(f"{self.renderer.where(page)}: a sanet tag was not rendered: its placeholder "
                              f"'{left}' is in the built page (a theme or plugin rendered the Markdown "
                              f"without this plugin)")
        # Each demo and each excerpt brings its stylesheets and scripts: load each once.
        output = demo_html.once_per_page(output)
        shared = self.renderer.model_url(page.url)
        if shared is not None:  # the site holds the export's copy of the model: the demos load it
            output = re.sub(rf'(data-sanet-model=")[^"]*{re.escape(page_assets.SITE_FOLDER)}/models/{self.renderer.key}/"',
                            lambda match: f'{match.group(1)}{html.escape(shared)}"', output)
        if self.config.threads and self.renderer.has_demo(page):
            output, why = isolation.mark(output, config.site_url)
            if why:
                log.info(f"sanet: {self.renderer.where(page)}: the demo runs on one thread there: {why}")
        return output

    def on_post_build(self, config):
        if not self.config.enabled:
            return
        if self.serving and self.model.future is not None and not self.model.done():
            # Pages say that the model is being built: when it is, serve rebuilds the site.
            self.model.future.add_done_callback(lambda future: self._rebuild_when_built())
        elif self.renderer.building_shown:  # the model was ready before this build ended
            self._rebuild_when_built()

    def on_build_error(self, error):
        """Stop a model build that no page will use; its temporary folder is removed. Under
        `mkdocs serve` the next rebuild will use it: let it run."""
        if not self.serving and self.model.build is not None:
            self.model.build.cancel()

    def _rebuild_when_built(self) -> None:
        """Under `mkdocs serve`: touch the watched signal file until serve starts a rebuild, so that
        the pages that said "being built" get the demo. Touched more than once: a touch made
        before serve watches the file (the first build) would go unseen."""
        log.info("sanet: the model build failed: rebuilding the site to show why" if self.model.failed()
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
        self.model.shutdown()
        if self.serving:
            shutil.rmtree(self.signal.parent, ignore_errors=True)
