"""The MkDocs plugin `sanet`: finds the tags, builds (or reuses) the model, injects the demo."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin
from mkdocs.utils import get_relative_url

from . import page_assets, tags
from .cache import Cache, model_key
from .config import SANetConfig
from .weights import WeightsError, resolve

log = logging.getLogger("mkdocs.plugins.sanet")

ID = re.compile(r"^[A-Za-z][\w-]*$")


def _int_between(low: int, high: int):
    def convert(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"expected a whole number from {low} to {high}") from None
        if not low <= number <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return number
    return convert


def _fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("expected a number from 0 to 1") from None
    if not 0.0 <= number <= 1.0:
        raise ValueError("expected a number from 0 to 1")
    return number


def _identifier(value: str) -> str:
    if not ID.match(value):
        raise ValueError("expected a letter followed by letters, digits, '-' or '_'")
    return value


def _path(value: str) -> str:
    if not value.strip():
        raise ValueError("expected a path to an image inside docs_dir")
    return value.strip()


TAG_SPECS = {
    "sanet_demo": tags.TagSpec({
        "content": _path, "style": _path, "max_size": _int_between(32, 4096),
        "strength": _fraction, "id": _identifier,
    }),
}


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
        if self.config.max_size < 32:
            raise PluginError(f"mkdocs.yml: sanet: max_size is {self.config.max_size}, expected at least 32")
        try:
            self.source = resolve(self.config.model, self.config_dir)
        except WeightsError as error:
            raise PluginError(f"mkdocs.yml: sanet: model: {error}") from None
        self.key = model_key(self.source, self.config.quantization)
        self.page_tags = {}
        self.model_future = None
        self.cancelled = False
        return config

    # -- pages ---------------------------------------------------------------------------

    def _where(self, page) -> str:
        path = Path(page.file.abs_src_path)
        try:
            return os.path.relpath(path, self.config_dir)
        except ValueError:
            return str(path)

    def on_page_markdown(self, markdown, page, config, files):
        if not self.config.enabled:
            return markdown
        offset = self._line_offset(markdown, page)
        try:
            try:
                text, found = tags.extract(markdown, TAG_SPECS)
            except tags.TagError as error:
                raise tags.TagError(error.line + offset, error.message) from None
            for tag in found:
                tag.line += offset
            ids = set()
            for number, tag in enumerate(found, start=1):
                tag.attributes.setdefault("id", f"sanet-demo-{number}")
                if tag.attributes["id"] in ids:
                    raise tags.TagError(tag.line, f"id \"{tag.attributes['id']}\" is used twice on this page")
                ids.add(tag.attributes["id"])
                for key in ("content", "style"):
                    if key in tag.attributes:
                        path = tag.attributes[key]
                        tag.attributes[key] = page_assets.Preset(
                            page_assets.preset_label(path), self._docs_url(path, page, files, tag.line, key))
        except tags.TagError as error:
            raise PluginError(f"{self._where(page)}:{error.line}: {error.message}") from None
        if found:
            self.page_tags[page.file.src_uri] = found
            self._start_model_build()
        return text

    @staticmethod
    def _line_offset(markdown: str, page) -> int:
        """Lines of the file before the Markdown that MkDocs hands over (front matter, blank lines)."""
        source = page.file.content_string
        start = source.find(markdown[:2000]) if markdown.strip() else -1
        return source.count("\n", 0, start) if start > 0 else 0

    def _docs_url(self, value: str, page, files, line: int, key: str) -> str:
        """A path inside docs_dir (relative to the page, or to docs_dir when it starts with /),
        as a site URL relative to the page."""
        if value.startswith("/"):
            target = PurePosixPath(value.lstrip("/"))
        else:
            target = PurePosixPath(page.file.src_uri).parent / value
        resolved = (self.docs_dir / target).resolve()
        if not resolved.is_relative_to(self.docs_dir):
            raise tags.TagError(line, f"{key}=\"{value}\" leaves docs_dir: expected an image inside {self.docs_dir}")
        src_uri = resolved.relative_to(self.docs_dir).as_posix()
        file = files.get_file_from_path(src_uri)
        if file is None or not resolved.is_file():
            raise tags.TagError(line, f"{key}=\"{value}\": no such file in docs_dir (looked for {src_uri})")
        return get_relative_url(file.url, page.url)

    def on_page_content(self, html, page, config, files):
        found = self.page_tags.get(page.file.src_uri)
        if not found:
            return html
        assets_url = get_relative_url(page_assets.SITE_FOLDER, page.url)
        model_url = f"{assets_url}/models/{self.key}/"
        contents = self._presets("content", page)
        styles = self._presets("style", page)

        def render(tag: tags.Tag) -> str:
            attributes = tag.attributes
            chosen = {key: attributes.get(key) for key in ("content", "style")}
            offered = {
                key: ([chosen[key]] if chosen[key] and chosen[key].url not in [p.url for p in presets] else [])
                + presets
                for key, presets in (("content", contents), ("style", styles))}
            return page_assets.render_demo(
                demo_id=attributes["id"], model_url=model_url, runtime_url=f"{assets_url}/tfjs/",
                backends=self.config.backends, max_size=attributes.get("max_size", self.config.max_size),
                strength=attributes.get("strength", 1.0), trained=self.source.trained,
                model_name=self.source.name, contents=offered["content"], styles=offered["style"],
                content=chosen["content"].url if chosen["content"] else None,
                style=chosen["style"].url if chosen["style"] else None)

        return tags.substitute(html, found, render) + page_assets.asset_tags(assets_url)

    def _presets(self, role: str, page) -> list[page_assets.Preset]:
        configured = getattr(self.config.presets, role)
        if configured:
            return [page_assets.Preset(page_assets.preset_label(path),
                                       get_relative_url(PurePosixPath(path).as_posix(), page.url))
                    for path in configured]
        return [page_assets.Preset(page_assets.preset_label(path.name),
                                   get_relative_url(f"{page_assets.SITE_FOLDER}/presets/{path.name}", page.url))
                for path in sorted(page_assets.BUILTIN_PRESETS.glob(f"{role}-*.jpg"))]

    def on_files(self, files, config):
        for role in ("content", "style"):
            for path in getattr(self.config.presets, role):
                if files.get_file_from_path(PurePosixPath(path).as_posix()) is None:
                    raise PluginError(f"mkdocs.yml: sanet: presets: {role}: {path}: no such file in docs_dir")
        return files

    # -- the model -----------------------------------------------------------------------

    def _start_model_build(self) -> None:
        """Build the model beside the page rendering (once per build); a warm cache returns at once."""
        if self.model_future is None:
            self.model_future = self.executor.submit(self._model_entry)

    def _model_entry(self) -> Path:
        entry = self.cache.get(self.key)
        if entry is not None:
            manifest = self.cache.manifest(self.key)
            log.info(f"sanet: using the cached model {self.key[:12]} ({manifest['bytes'] / 1e6:.1f} MB)")
        else:
            log.info(f"sanet: building the TF.js model '{self.source.name}' ({self.config.quantization}); "
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
                   "--output", str(out_dir)]
        self.export_process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        lines = []
        for line in self.export_process.stderr:
            lines.append(line.rstrip())
            if line.startswith("converted "):
                log.info(f"sanet: {line.strip()}")
        if self.export_process.wait() != 0:
            tail = "\n".join(lines[-15:])
            raise PluginError(f"sanet: building the model failed:\n{tail}")

    def on_build_error(self, error):
        """Stop a model build that no page will use; its temporary folder is removed."""
        self.cancelled = True
        process = getattr(self, "export_process", None)
        if process is not None and process.poll() is None:
            process.kill()

    def on_post_build(self, config):
        if not self.page_tags:
            return
        site = Path(config.site_dir) / page_assets.SITE_FOLDER
        try:
            runtime = page_assets.runtime_sources(self.config_dir / self.config.runtime_dir)
        except page_assets.RuntimeMissing as error:
            raise PluginError(f"mkdocs.yml: sanet: runtime_dir: {error}") from None
        for path in runtime:
            page_assets.link_or_copy(path, site / "tfjs" / path.name)
        for name in ("sanet.js", "sanet-demo.js", "sanet-demo.css"):
            page_assets.link_or_copy(page_assets.STATIC / name, site / name)
        if not (self.config.presets.content and self.config.presets.style):
            page_assets.copy_tree(page_assets.BUILTIN_PRESETS, site / "presets")
        entry = self.model_future.result()
        page_assets.copy_tree(entry, site / "models" / self.key)

    def on_shutdown(self):
        self.executor.shutdown(wait=False, cancel_futures=True)
