"""The one model builder: a model's TF.js folder in the cache, for the plugin, the CLI and the
release step alike.

From the cache when the entry is there and intact; else the converted model that the package
carries (a light install); else built by a child process (`python -m mkdocs_sanet.export`, the
only one that imports TensorFlow), which is handed the resolved source and the key to build:
nothing is resolved twice, and weights that change meanwhile fail the build instead of being
stored under the old key.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from . import bundled, page_assets
from .cache import Cache, model_key, prebuilt_key
from .compression import parse, require_widths
from .export import SIGNATURES
from .weights import ModelSource


class BuildError(RuntimeError):
    """The export failed; the message ends with the child's last lines."""


def _die_with_parent() -> None:
    """In the child, before it runs (Linux): SIGKILL when the process that started it ends."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class ModelBuild:
    """One model (its source, quantization and compression setting) and its cache entry.
    `entry()` raises CompressionError (from the constructor), CacheError, BuildExtraMissing and
    BuildError with messages for a person; callers say which option or flag they came from."""

    def __init__(self, source: ModelSource, quantization: str, compression: str, cache: Cache,
                 log: Callable[[str], None] = _stderr, warn: Callable[[str], None] = _stderr):
        require_widths(source, parse(compression))  # a setting that cannot apply fails here
        self.source, self.quantization, self.compression, self.cache = source, quantization, compression, cache
        self.key = model_key(source, quantization, compression)
        self.prebuilt_key = prebuilt_key(source, quantization, compression)
        self.log, self.warn = log, warn
        self.process: subprocess.Popen | None = None
        self.cancelled = False

    def cached(self) -> Path | None:
        """The intact cache entry, or None (a damaged one is reported and removed)."""
        return self.cache.get(self.key, SIGNATURES, warn=self.warn)

    def available(self) -> bool:
        """Whether entry() will return without building (the cache or the package has it)."""
        return self.cached() is not None or bundled.prebuilt_model(self.prebuilt_key) is not None

    def manifest(self) -> dict:
        return self.cache.manifest(self.key)

    def entry(self) -> Path:
        entry = self.cached()
        if entry is not None:
            self.log(f"using the cached model {self.key[:12]} ({self.manifest()['bytes'] / 1e6:.1f} MB)")
            return entry
        prebuilt = bundled.prebuilt_model(self.prebuilt_key)
        if prebuilt is not None:
            entry = self.cache.put(self.key, lambda folder: page_assets.copy_tree(prebuilt, folder), SIGNATURES)
            self.log(f"using the model that came with the package ({self.key[:12]})")
            return entry
        bundled.require_build_extra(f"building the model {self._what()}")
        started = time.time()
        entry = self.cache.put(self.key, self._export, SIGNATURES)
        manifest = self.manifest()
        self.log(f"model built in {time.time() - started:.1f} s: "
                 f"{manifest['parameters']:,} parameters, {manifest['bytes'] / 1e6:.1f} MB")
        return entry

    def _what(self) -> str:
        return f"'{self.source.name}' ({self.quantization}, compression: {self.compression})"

    def _export(self, folder: Path) -> None:
        """Into the cache's temporary folder (the cache can be written: said only now)."""
        if self.cancelled:
            raise BuildError("the build failed before the model was built")
        self.log(f"building the TF.js model {self._what()}, about a minute; this happens once, "
                 f"later builds reuse {self.cache.root}/{self.key[:12]}…")
        command = [sys.executable, "-m", "mkdocs_sanet.export", "--source", self.source.to_json(),
                   "--key", self.key, "--quantization", self.quantization, "--compression", self.compression,
                   "--output", str(folder), "--compressed-cache", str(self.cache.root / "compressed")]
        # Killed with its build (a `kill -9` of mkdocs build, which can clean nothing up): it
        # would go on writing a temporary folder that nobody renames (the cache removes it, unlocked).
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
        lines = []
        for line in self.process.stderr:
            lines.append(line.rstrip())
            if line.startswith(("converted ", "compression: ", "  ")):
                self.log(line.rstrip())
        if self.process.wait() != 0:
            if self.cancelled:
                raise BuildError("the build failed before the model was built")
            if any("No space left on device" in line for line in lines):
                raise BuildError(f"building the model failed: no space left on the device that holds "
                                 f"{self.cache.root} (free some space, or set cache_dir to another disk)")
            tail = "\n".join(lines[-15:])
            raise BuildError(f"building the model failed:\n{tail}")

    def cancel(self) -> None:
        """Stop a build that nobody will use (its temporary folder is removed by the cache)."""
        self.cancelled = True
        if self.process is not None and self.process.poll() is None:
            self.process.kill()


class Background:
    """The plugin's model: a ModelBuild's entry() beside the pages' rendering, one at a time.
    `guard(step)` runs a step and turns its errors into the caller's (the plugin's PluginError)."""

    def __init__(self, guard: Callable[[Callable[[], object]], object]):
        self.guard = guard
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sanet-model")
        self.build: ModelBuild | None = None
        self.future: Future | None = None
        self.started = 0.0

    def use(self, build: ModelBuild) -> None:
        """The model of a new MkDocs build. One still being built (`mkdocs serve` rebuilt the site
        meanwhile) goes on, and a failed one stays failed (its error stops each rebuild) until the
        key changes; otherwise the model is looked up again when a page needs it (cheap when cached)."""
        future = self.future
        if future is not None and (self.build.key != build.key or (future.done() and not self.failed())):
            self.future = None
        if self.future is None:
            self.build = build

    def start(self, serving: bool = False) -> None:
        """Once per build. A model that the cache or the package has is taken here and now, so
        that no page waits for it nor says that it is being built; else it is built beside."""
        if self.future is not None:
            return
        if self.guard(self.build.available):
            self.future = Future()
            self.future.set_result(self.guard(self.build.entry))
            return
        self.started = time.time()
        self.future = self.executor.submit(self.guard, self.build.entry)
        if serving:
            self.build.log("mkdocs serve serves the site meanwhile: the demos say that the model is being "
                           "built, and the site is rebuilt (and the browser reloads) when it is ready")

    def done(self) -> bool:
        return self.future is not None and self.future.done()

    def failed(self) -> bool:
        future = self.future
        return future is not None and future.done() and not future.cancelled() and future.exception() is not None

    def entry(self) -> Path:
        """The model's folder in the cache (waits for the build)."""
        self.start()
        return self.future.result()

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
