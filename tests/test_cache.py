"""The model cache: what its key hashes, warm builds without TensorFlow, interrupted builds,
damaged entries, unusable cache folders, and a built site that holds copies."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import helpers
from helpers import DEMO_PAGE, free_port, mkdocs_build, write_site
from mkdocs_sanet import architecture, cache, cli, export, page_assets, weights


@pytest.fixture
def weights_folder(tmp_path):
    """A model folder in this project's layout: seeded transform and decoder weights."""
    folder = tmp_path / "my-model"
    folder.mkdir()
    weights.save(folder / "weights.npz", weights.untrained("vgg16", seed=5), "vgg16")
    return folder


def test_key_changes_with_weights_and_options_only(weights_folder, monkeypatch):
    source = weights.resolve(str(weights_folder))
    key = cache.model_key(source, "float16")
    assert cache.model_key(weights.resolve(str(weights_folder)), "float16") == key
    assert cache.model_key(source, "uint8") != key

    changed = weights.untrained("vgg16", seed=5)
    changed["decoder/conv1_1/bias"][0] += 1e-3
    weights.save(weights_folder / "weights.npz", changed, "vgg16")
    changed_key = cache.model_key(weights.resolve(str(weights_folder)), "float16")
    assert changed_key != key

    monkeypatch.setattr(cache, "_version", lambda package: "9.9.9" if package == "tensorflowjs" else "2.19.0")
    assert cache.model_key(weights.resolve(str(weights_folder)), "float16") != changed_key


def test_default_key_is_stable_and_names_untrained():
    source = weights.resolve("default")
    assert cache.model_key(source, "float16") == cache.model_key(weights.resolve("default"), "float16")
    assert source.trained == weights.DEFAULT_WEIGHTS.is_file()


WARM_BUILD = """
import logging, sys
logging.basicConfig(level=logging.INFO)
from mkdocs.commands.build import build
from mkdocs.config import load_config
build(load_config(sys.argv[1]))
print("IMPORTED:" + ",".join(m for m in ("tensorflow", "tensorflowjs", "keras") if m in sys.modules))
"""


def test_warm_build_does_not_import_tensorflow(tmp_path, model_cache):
    config = write_site(tmp_path / "project", model_cache, DEMO_PAGE)
    mkdocs_build(config)  # fills the cache if the session has not yet
    result = subprocess.run([sys.executable, "-c", WARM_BUILD, str(config)], capture_output=True, text=True,
                            cwd=config.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "IMPORTED:\n" in result.stdout
    assert "using the cached model" in result.stderr
    assert "building the TF.js model" not in result.stderr


def test_model_json_stores_each_weight_once(tmp_path, model_cache):
    config = write_site(tmp_path / "project", model_cache, DEMO_PAGE)
    mkdocs_build(config)
    key = cache.model_key(weights.resolve("default"), "float16")
    entry = cache.Cache(model_cache).get(key)
    assert entry is not None
    manifest = json.loads((entry / "manifest.json").read_text())
    expected = architecture.parameter_counts("vgg16", manifest["compression"]["channels"])
    for graph in export.SIGNATURES:
        shapes, _ = export.stored_weights(entry / graph)  # raises on a name stored twice
        stored = sum(int(np.prod(shape)) for shape in shapes.values())
        part = export.PART_OF[graph]
        assert expected[part] <= stored <= expected[part] + 4096, (graph, stored, expected[part])
        assert manifest["graphs"][graph]["parameters"] == stored
    assert manifest["trained"] is weights.resolve("default").trained and manifest["quantization"] == "float16"
    assert manifest["color_match"] == weights.resolve("default").color_match


@pytest.mark.parametrize("value", ["0.75", 1.5, -0.1, True, None])
def test_an_entry_whose_color_match_export_would_not_write_is_refused(tmp_path, model_cache, value):
    """sanet.js reads the manifest's color_match: a copied entry with another is not trusted."""
    config = write_site(tmp_path / "project", model_cache, DEMO_PAGE)
    mkdocs_build(config)
    key = cache.model_key(weights.resolve("default"), "float16")
    copy = tmp_path / "copy"
    shutil.copytree(cache.Cache(model_cache).get(key), copy / key)
    manifest = json.loads((copy / key / "manifest.json").read_text())
    manifest["color_match"] = value
    (copy / key / "manifest.json").write_text(json.dumps(manifest))
    assert cache.Cache(copy).problem(key, export.SIGNATURES) == (
        f"manifest.json: color_match is {value!r}, expected a number from 0 to 1")


def test_killed_build_leaves_no_complete_entry(tmp_path):
    cache_dir = tmp_path / "cache"
    config = write_site(tmp_path / "project", cache_dir, DEMO_PAGE)
    process = subprocess.Popen([sys.executable, "-m", "mkdocs", "build", "-f", str(config)],
                               cwd=config.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 120
    # Wait until the converter has started writing, then kill the build and its children.
    while time.time() < deadline and not list(cache_dir.glob(".tmp-*/encode/*")):
        assert process.poll() is None, "the build ended before it could be interrupted"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    key = cache.model_key(weights.resolve("default"), "float16")
    store = cache.Cache(cache_dir)
    assert store.get(key) is None
    assert not (cache_dir / key).exists()
    # The next build does the work again and completes the entry.
    mkdocs_build(config)
    assert store.get(key) is not None


def test_serve_rebuild_reuses_the_cache(tmp_path, model_cache):
    """An edit under `mkdocs serve` rebuilds with the cached model. The rebuilds are counted by
    livereload's "Reloading browsers" (logged after each build that completed) and serve's
    "Building documentation...", never by "Documentation built in N seconds": the mkdocs command
    line puts a DuplicateFilter on the build's logger (mkdocs/__main__.py), which drops a message
    already logged by the same process, so a rebuild that takes the first build's time to the
    hundredth of a second logs no such line (CI once waited 300 s for it after "Reloading
    browsers"). test_mkdocs_hides_a_build_time_said_before shows that filter at work."""
    config = write_site(tmp_path / "project", model_cache, DEMO_PAGE)
    mkdocs_build(config)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mkdocs", "serve", "-f", str(config), "-a", f"127.0.0.1:{free_port()}"],
        cwd=config.parent, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")), daemon=True).start()

    def wait_for(text, count, timeout=120):
        deadline = time.time() + timeout
        while sum(text in line for line in lines) < count:
            assert time.time() < deadline, "".join(lines)
            time.sleep(0.1)

    try:
        wait_for("Serving on", 1)
        # The watcher takes its first snapshot in its own thread, maybe after "Serving on" on a busy
        # machine: edit until it sees a change (each edit another size and mtime), then wait for the build.
        page = config.parent / "docs" / "index.md"
        deadline = time.time() + 300
        for edit in range(1, 1000):
            page.write_text(page.read_text() + f"\nEdit {edit}.\n")
            os.utime(page, (time.time() + edit, time.time() + edit))
            seen = time.time() + 10
            while time.time() < seen and not any("Detected file changes" in line for line in lines):
                time.sleep(0.1)
            if any("Detected file changes" in line for line in lines) or time.time() > deadline:
                break
        # Each rebuild ends with "Reloading browsers", or with livereload's error line.
        deadline = time.time() + 300
        while not any(done in line for line in lines for done in ("Reloading browsers", "error happened")):
            assert time.time() < deadline, "".join(lines)
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait()
    log = "".join(lines)
    assert "An error happened during the rebuild" not in log, log
    builds, rebuilt = log.count("Building documentation..."), log.count("Reloading browsers")
    # The first build, then every rebuild started has completed (the last may have been cut short
    # by terminate: then it logged neither), each with the cached model.
    assert builds >= 2 and rebuilt >= 1 and builds - 1 - rebuilt in (0, 1), log
    assert log.count("using the cached model") >= rebuilt + 1, log
    assert "building the TF.js model" not in log


def test_mkdocs_hides_a_build_time_said_before():
    """Why the serve test counts "Reloading browsers": in a process run by the mkdocs command line,
    "Documentation built in 0.84 seconds" logged a second time is dropped."""
    script = """
import logging, sys
from mkdocs import __main__  # noqa: F401
from mkdocs.commands import build
__main__._enable_warnings()
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
for _ in range(2):
    build.log.info("Documentation built in 0.84 seconds")
build.log.info("Documentation built in 0.85 seconds")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONWARNINGS": ""})
    assert result.stdout.splitlines() == ["Documentation built in 0.84 seconds", "Documentation built in 0.85 seconds"]


# -- damaged entries ------------------------------------------------------------------------

def shipped_key(config: Path) -> str:
    """The key of the model a built site serves."""
    [model] = (config.parent / "site" / "assets" / "sanet" / "models").iterdir()
    return model.name


@pytest.fixture
def own_cache(tmp_path, model_cache) -> tuple[Path, Path]:
    """A site whose own cache holds a copy of the session's default model: (mkdocs.yml, entry)."""
    warm = write_site(tmp_path / "warm", model_cache, DEMO_PAGE)
    mkdocs_build(warm)  # fills the session cache
    entry = tmp_path / "cache" / shipped_key(warm)
    shutil.copytree(model_cache / entry.name, entry)
    if (model_cache / "compressed").is_dir():  # the rebuilds need not compress the weights again
        shutil.copytree(model_cache / "compressed", entry.parent / "compressed")
    return write_site(tmp_path / "project", tmp_path / "cache", DEMO_PAGE), entry


def encode_shard(entry: Path) -> Path:
    """The first weights shard of the encode graph (the names depend on the model's size)."""
    return sorted((entry / "encode").glob("group1-shard*.bin"))[0]


def truncate(entry: Path) -> str:
    shard = encode_shard(entry)
    size = shard.stat().st_size
    shard.write_bytes(shard.read_bytes()[: size // 2])
    return f"encode/{shard.name} has {size // 2:,} bytes, expected {size:,}"


def flip_bytes(entry: Path) -> str:
    """Same size: a hundred bytes of the weights changed (a float16 weight's exponent, or uint8 values)."""
    shard = encode_shard(entry)
    data = bytearray(shard.read_bytes())
    for i in range(1001, 1201, 2):
        data[i] ^= 0x7C
    shard.write_bytes(data)
    return f"encode/{shard.name} has another sha256 than when it was written"


def drop_graph(entry: Path) -> None:
    manifest = json.loads((entry / "manifest.json").read_text())
    del manifest["graphs"]["decode"]
    (entry / "manifest.json").write_text(json.dumps(manifest))


def half_write_manifest(entry: Path) -> None:
    text = (entry / "manifest.json").read_text()
    (entry / "manifest.json").write_text(text[: len(text) // 2])


# name -> spoil(entry), which damages the entry and returns what the warning must say.
DAMAGES = {
    "truncated shard": truncate,
    "flipped bytes": flip_bytes,
    "manifest missing a graph": lambda entry: drop_graph(entry) or "manifest.json has no graph 'decode'",
    "half-written manifest": lambda entry: half_write_manifest(entry) or "manifest.json is unreadable",
    "deleted manifest": lambda entry: (entry / "manifest.json").unlink() or "no manifest.json",
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_entry_is_rebuilt_not_shipped(own_cache, damage):
    """The entry was written by another process: this build (a new process) checks sizes and hashes."""
    config, entry = own_cache
    problem = DAMAGES[damage](entry)
    result = mkdocs_build(config)
    assert f"WARNING -  sanet: the cached model {entry} is damaged ({problem}" in result.stderr, result.stderr
    assert "building the TF.js model" in result.stderr
    assert "Traceback" not in result.stderr
    assert cache.Cache(entry.parent).problem(entry.name, export.SIGNATURES) is None
    assert not [p for p in entry.parent.iterdir() if p.name.startswith((".tmp-", ".trash-"))]
    shipped = config.parent / "site" / "assets" / "sanet" / "models" / entry.name
    fresh = {p.relative_to(entry): p.read_bytes() for p in entry.rglob("*") if p.is_file()}
    assert {p.relative_to(shipped): p.read_bytes() for p in shipped.rglob("*") if p.is_file()} == fresh
    # The next build trusts the rebuilt entry.
    result = mkdocs_build(config)
    assert "using the cached model" in result.stderr and "WARNING" not in result.stderr, result.stderr


def fake_graphs(folder: Path) -> None:
    """What an export writes, in miniature."""
    for graph in export.SIGNATURES:
        (folder / graph).mkdir()
        (folder / graph / "model.json").write_text("{}")
        (folder / graph / "group1-shard1of1.bin").write_bytes(os.urandom(4096))
    (folder / "manifest.json").write_text(json.dumps({"graphs": {g: {} for g in export.SIGNATURES}}))


def test_entries_are_hashed_once_per_process_while_unchanged(tmp_path, monkeypatch):
    store = cache.Cache(tmp_path)
    entry = store.put("k", fake_graphs, export.SIGNATURES)
    files = store.manifest("k")["files"]
    assert sorted(files) == sorted(f"{g}/{n}" for g in export.SIGNATURES for n in ("group1-shard1of1.bin", "model.json"))
    hashed = []
    monkeypatch.setattr(cache, "_sha256", lambda path, real=cache._sha256: hashed.append(path) or real(path))
    assert store.get("k", export.SIGNATURES) == entry and hashed == []  # written by this process
    # Altered in place, size and mtime kept: the change time tells, and the hashes are checked again.
    shard = entry / "decode" / "group1-shard1of1.bin"
    stat = shard.stat()
    data = bytearray(shard.read_bytes())
    data[7] ^= 0xFF
    shard.write_bytes(data)
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    warnings = []
    assert store.get("k", export.SIGNATURES, warn=warnings.append) is None
    assert "decode/group1-shard1of1.bin has another sha256" in warnings[0]
    assert not entry.exists() and list(tmp_path.iterdir()) == []


def test_stale_temporary_folders_are_removed(tmp_path):
    key = "0123456789abcdef" * 2
    old, fresh, trash = (tmp_path / f".tmp-{key}-00000001", tmp_path / f".tmp-{key}-00000002",
                         tmp_path / f".trash-{key}-00000003")
    killed = tmp_path / f".tmp-{key}-00000004"  # fresh, but no build holds it: a killed build's
    for folder in (old, fresh, trash, killed):
        (folder / "encode").mkdir(parents=True)
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    held = os.open(fresh, os.O_RDONLY)  # a build writing it now
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        cache.Cache(tmp_path).put("k", fake_graphs, export.SIGNATURES)
    finally:
        os.close(held)
    assert sorted(p.name for p in tmp_path.iterdir()) == [fresh.name, "k"]


KILLED_BUILD = """
import os, subprocess, sys, time
from pathlib import Path
from mkdocs_sanet import builder, cache

def build(folder):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                             preexec_fn=builder._die_with_parent)
    (folder / "encode").mkdir()
    Path(sys.argv[2]).write_text(str(child.pid))
    child.wait()

cache.Cache(Path(sys.argv[1])).put("0123456789abcdef0123456789abcdef", build)
"""


def test_a_killed_builds_child_and_temporary_folder_do_not_outlive_it(tmp_path):
    """The export child went on after its `mkdocs build` was killed, and its .tmp-* stayed a day."""
    root, pid_file = tmp_path / "cache", tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", KILLED_BUILD, str(root), str(pid_file)])
    deadline = time.time() + 60
    while not (pid_file.is_file() and pid_file.read_text()):
        assert parent.poll() is None and time.time() < deadline, "the build ended before it could be killed"
        time.sleep(0.02)
    child = int(pid_file.read_text())
    parent.kill()
    parent.wait()

    def alive(pid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return False
        return "State:\tZ" not in status

    deadline = time.time() + 10
    while alive(child) and time.time() < deadline:
        time.sleep(0.02)
    assert not alive(child)
    assert [p.name[:5] for p in root.iterdir()] == [".tmp-"]
    cache.Cache(root).remove_stale()
    assert list(root.iterdir()) == []


def test_a_cache_dir_of_the_users_loses_nothing_of_theirs(tmp_path):
    """cache_dir: '' (the project folder) or docs: remove_stale deleted every .trash-* and every
    day-old .tmp-* there, whoever had made them. Only the names the cache gives are removed."""
    key = "0123456789abcdef" * 2
    project = tmp_path / "project"
    theirs = {".tmp-notes": "folder", ".trash-2023": "folder", ".tmp-build.log": "file",
              f".trash-{key}": "folder", f".tmp-{key}-0000000g": "folder",
              f".tmp-{key}-00000001": "file",  # our name, but not a folder: not ours
              f".tmp-{key}-00000002.bak": "folder"}
    for name, kind in theirs.items():
        path = project / name
        if kind == "folder":
            (path / "sub").mkdir(parents=True)
            (path / "sub" / "mine.txt").write_text("mine")
        else:
            project.mkdir(exist_ok=True)
            path.write_text("mine")
        os.utime(path, (time.time() - 3 * 86400,) * 2)
    ours = [project / f".tmp-{key}-0000000a", project / f".trash-{key}-0000000b"]
    for path in ours:
        (path / "encode").mkdir(parents=True)
        os.utime(path, (time.time() - 3 * 86400,) * 2)
    cache.Cache(project).remove_stale()
    assert sorted(p.name for p in project.iterdir()) == sorted(theirs)
    for name, kind in theirs.items():
        path = project / name
        assert (path / "sub" / "mine.txt" if kind == "folder" else path).read_text() == "mine"


def test_cache_dir_that_is_a_file(tmp_path, capsys):
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("")
    # A demo, and a page with only math (its formulas are cached there too).
    for page in (DEMO_PAGE, {"index.md": "# Math\n\n$a^2$\n"}):
        config = write_site(tmp_path / "project", not_a_folder, page)
        config.write_text(config.read_text() + "markdown_extensions:\n  - pymdownx.arithmatex:\n      generic: true\n")
        result = mkdocs_build(config, check=False)
        assert result.returncode != 0
        assert f"mkdocs.yml: sanet: cache_dir: {not_a_folder}: expected a writable folder" in result.stderr
        assert "Traceback" not in result.stderr
    assert cli.main(["build-model", "--cache-dir", str(not_a_folder), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mkdocs-sanet: error: --cache-dir: {not_a_folder}: expected a writable folder")
    assert err.count("\n") == 1


# mkdocs, with the cache folder refusing new files as a read-only one does (tests run as root,
# for whom permissions do not stop writes).
READ_ONLY_BUILD = """
import errno, pathlib, sys
cache_dir = pathlib.Path(sys.argv.pop(1))
mkdir = pathlib.Path.mkdir
def refuse(self, *args, **kwargs):
    if self.parent == cache_dir:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))
    return mkdir(self, *args, **kwargs)
pathlib.Path.mkdir = refuse
from mkdocs.__main__ import cli
cli()
"""


def test_read_only_cache_dir(tmp_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    config = write_site(tmp_path / "project", cache_dir, DEMO_PAGE)
    result = subprocess.run([sys.executable, "-c", READ_ONLY_BUILD, str(cache_dir), "build", "-f", str(config)],
                            capture_output=True, text=True, cwd=config.parent,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode != 0
    assert (f"mkdocs.yml: sanet: cache_dir: {cache_dir}: expected a writable folder (Permission denied)"
            in result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert list(cache_dir.iterdir()) == []


def test_site_holds_copies(tmp_path, model_cache):
    """Editing the built site in place cannot edit the cache, the package's static/ or node_modules."""
    config = write_site(tmp_path / "project", model_cache, {"index.md": "# Home\n\n<% sanet_demo %>\n\n$$x^2$$\n"})
    config.write_text(config.read_text() + "markdown_extensions:\n  - pymdownx.arithmatex:\n      generic: true\n")
    mkdocs_build(config)
    site = config.parent / "site" / "assets" / "sanet"
    shipped = [p for p in site.rglob("*") if p.is_file()]
    assert {"models", "tfjs", "katex", "presets", "sanet.js"} <= {p.relative_to(site).parts[0] for p in shipped}
    assert [p for p in shipped if p.stat().st_nlink != 1] == []
    node_modules = helpers.ROOT / "node_modules"
    key = shipped_key(config)
    sources = [*(model_cache / key).rglob("*"), *page_assets.STATIC.rglob("*"),
               *page_assets.BUILTIN_PRESETS.rglob("*"), *page_assets.runtime_sources(node_modules),
               *(node_modules / "katex" / "dist").rglob("*")]
    inodes = {(p.stat().st_dev, p.stat().st_ino) for p in sources if p.is_file()}
    assert [p for p in shipped if (p.stat().st_dev, p.stat().st_ino) in inodes] == []
    # Copying again into the kept site leaves the unchanged copies as they are.
    before = {p: p.stat().st_ino for p in shipped}
    page_assets.copy_tree(model_cache / key, site / "models" / key)
    assert all(p.stat().st_ino == before[p] for p in (site / "models").rglob("*") if p.is_file())


def test_export_child_refuses_weights_that_changed(tmp_path):
    """The builder hands the child the resolved source and its key: weights that no longer give
    that key (replaced during the build) are refused, nothing is written."""
    source = weights.resolve("default")
    result = subprocess.run([sys.executable, "-m", "mkdocs_sanet.export", "--source", source.to_json(),
                             "--key", "0" * 32, "--output", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert f"error: the weights of '{source.name}'" in result.stderr
    assert "changed while the model was being built: build again" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_a_full_disk_during_a_model_build_is_one_line(tmp_path, monkeypatch):
    """The export child's traceback ends in ENOSPC: the error names the cache's folder, without it."""
    from mkdocs_sanet import builder

    child = ("import sys\nprint('Traceback (most recent call last):', file=sys.stderr)\n"
             "print('  File \"saved_model.py\", line 1', file=sys.stderr)\n"
             "print('OSError: [Errno 28] No space left on device', file=sys.stderr)\nsys.exit(1)\n")
    real = subprocess.Popen
    monkeypatch.setattr(builder.subprocess, "Popen",
                        lambda command, **kw: real([sys.executable, "-c", child], **kw))
    monkeypatch.setattr(builder.bundled, "prebuilt_model", lambda key: None)
    monkeypatch.setattr(builder.bundled, "require_build_extra", lambda what: None)
    build = builder.ModelBuild(weights.untrained_source(), "float16", "none", cache.Cache(tmp_path / "c"),
                               log=lambda m: None)
    with pytest.raises(builder.BuildError) as error:
        build.entry()
    assert str(error.value) == (f"building the model failed: no space left on the device that holds {tmp_path / 'c'} "
                                "(free some space, or set cache_dir to another disk)")
    assert not list((tmp_path / "c").iterdir()), "nothing half-written is left"
