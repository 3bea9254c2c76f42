"""The folders the command line writes (`build-model --output`, `export DIR`, `stylize --output`):
nothing of the user's is ever deleted or changed, a failure midway leaves the old folder as it
was, and every odd target is one line on stderr and exit 2.

The commands run through cli.main with a small stand-in for the model's cache entry (and for the
TF.js runtime): what is checked here is what they do to the folder, not the model."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from mkdocs_sanet import cli, outputs, page_assets

MANIFEST = outputs.MANIFEST


@pytest.fixture
def entry(tmp_path, monkeypatch) -> Path:
    """A stand-in for the model's cache entry, returned by cli.model_entry."""
    folder = tmp_path / "entry"
    (folder / "encode").mkdir(parents=True)
    (folder / "manifest.json").write_text('{"model": 1}\n')
    (folder / "encode" / "model.json").write_text('{"graph": "encode"}\n')
    (folder / "encode" / "group1-shard1of1.bin").write_bytes(bytes(range(256)) * 64)
    monkeypatch.setattr(cli, "model_entry", lambda *args: (folder, "f" * 32))
    return folder


@pytest.fixture
def runtime(tmp_path) -> Path:
    """A stand-in for node_modules: the runtime files export copies, a few bytes each."""
    folder = tmp_path / "node_modules"
    for package, names in page_assets.RUNTIME_FILES.items():
        (folder / package / "dist").mkdir(parents=True)
        for name in names:
            (folder / package / "dist" / name).write_text(f"// {package} {name}\n")
    return folder


def users_folder(folder: Path) -> dict[str, bytes]:
    """A folder of the user's own files (and an empty subfolder); what it holds, file by file."""
    (folder / "notes").mkdir(parents=True)
    (folder / "notes" / "todo.md").write_text("- write the post\n")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8 not really a photo")
    (folder / "empty").mkdir()
    return snapshot(folder)


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry below the folder: a file's bytes, a link's target, "folder"; and the modes."""
    found = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[name] = f"link to {os.readlink(path)}"
        elif path.is_dir():
            found[name] = "folder"
        elif path.is_file():
            found[name] = path.read_bytes()
        else:
            found[name] = "not a regular file"  # never opened: a FIFO would block
        found[name + " mode"] = stat.S_IMODE(path.lstat().st_mode)
    return found


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, *parts: str) -> str:
    assert code == 2, err
    assert err.startswith("mkdocs-sanet: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for part in parts:
        assert part in err, err
    return err


def siblings(folder: Path) -> list[str]:
    """What is beside the folder (no temporary folder may be left there)."""
    return sorted(p.name for p in folder.parent.iterdir())


def build_model(capsys, output, *options) -> tuple[int, str, str]:
    return run(capsys, "build-model", "--output", output, *options)


def export(capsys, target, runtime, *options) -> tuple[int, str, str]:
    return run(capsys, "export", target, "--runtime-dir", runtime, *options)


# build-model --output


def test_build_model_refuses_a_folder_of_the_users_files(capsys, tmp_path, entry):
    target = tmp_path / "mine"
    before = users_folder(target)
    code, _, err = build_model(capsys, target)
    one_line_error(code, err, f"{target}: the folder is not empty and holds no {MANIFEST}",
                   "expected a new or empty folder, or one that build-model wrote")
    assert snapshot(target) == before
    assert siblings(target) == ["entry", "mine"]


def test_build_model_refuses_the_current_folder(capsys, tmp_path, entry, monkeypatch):
    before = users_folder(tmp_path / "here")
    monkeypatch.chdir(tmp_path / "here")
    for output in (".", "notes/..", str(tmp_path)):
        code, _, err = build_model(capsys, output)
        one_line_error(code, err, f"{output}: the current folder (or one above it)")
    assert snapshot(tmp_path / "here") == before


def test_build_model_writes_a_new_folder_then_replaces_its_own(capsys, tmp_path, entry):
    target = tmp_path / "web" / "model"  # its parent is made
    for _ in range(2):
        code, out, err = build_model(capsys, target)
        assert code == 0, err
        assert out == f"wrote {target} (cache entry {'f' * 12})\n"
        files = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
        assert files == {"manifest.json", "encode/model.json", "encode/group1-shard1of1.bin", MANIFEST}
        assert (target / "encode" / "group1-shard1of1.bin").read_bytes() == bytes(range(256)) * 64
        assert siblings(target) == ["model"]
    manifest = json.loads((target / MANIFEST).read_text())
    assert manifest["tool"] == "mkdocs-sanet" and manifest["command"] == "build-model"
    assert manifest["files"]["manifest.json"] == outputs.sha256(entry / "manifest.json")
    # A model of other files: the old ones (ours, unchanged) go.
    (entry / "encode" / "group1-shard1of1.bin").unlink()
    (entry / "encode" / "group1-shard1of2.bin").write_bytes(b"new")
    assert build_model(capsys, target)[0] == 0
    assert sorted(p.name for p in (target / "encode").iterdir()) == ["group1-shard1of2.bin", "model.json"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~outputs.umask()


@pytest.mark.parametrize("change", ["added", "edited", "link"])
def test_build_model_refuses_its_own_folder_with_the_users_files(capsys, tmp_path, entry, change):
    target = tmp_path / "model"
    assert build_model(capsys, target)[0] == 0
    if change == "added":
        (target / "encode" / "mine.txt").write_text("mine")
        name = "encode/mine.txt"
    elif change == "edited":
        (target / "manifest.json").write_text('{"edited": true}\n')
        name = "manifest.json"
    else:
        (target / "encode" / "model.json").unlink()
        (target / "encode" / "model.json").symlink_to(tmp_path / "elsewhere.json")
        name = "encode/model.json"
    before = snapshot(target)
    code, _, err = build_model(capsys, target)
    one_line_error(code, err, f"{target}: holds files that mkdocs-sanet build-model did not write", name,
                   "move them out of the folder, or choose another one")
    assert snapshot(target) == before


def test_a_forged_manifest_cannot_make_it_delete_anything_else(capsys, tmp_path, entry):
    """Paths in the manifest that lead out of the folder (or are not there) are never touched."""
    target = tmp_path / "model"
    assert build_model(capsys, target)[0] == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's")
    manifest = json.loads((target / MANIFEST).read_text())
    manifest["files"].update({"../victim.txt": outputs.sha256(victim), str(victim): outputs.sha256(victim)})
    (target / MANIFEST).write_text(json.dumps(manifest))
    assert build_model(capsys, target)[0] == 0
    assert victim.read_text() == "the user's"


def test_build_model_refuses_a_damaged_manifest_and_another_commands_folder(capsys, tmp_path, entry, runtime):
    target = tmp_path / "model"
    target.mkdir()
    (target / MANIFEST).write_text("{not json")
    (target / "x.bin").write_text("x")
    code, _, err = build_model(capsys, target)
    one_line_error(code, err, f"{target / MANIFEST}: not a manifest that mkdocs-sanet wrote")
    assert (target / "x.bin").read_text() == "x"
    assert export(capsys, tmp_path / "demo", runtime)[0] == 0
    before = snapshot(tmp_path / "demo")
    code, _, err = build_model(capsys, tmp_path / "demo")
    one_line_error(code, err, f"{tmp_path / 'demo'}: written by mkdocs-sanet export, not build-model")
    assert snapshot(tmp_path / "demo") == before


# export DIR


def test_export_refuses_a_folder_with_a_sanet_demo_js_of_the_users(capsys, tmp_path, entry, runtime):
    """Today's main took any folder holding sanet-demo.js for an earlier export and replaced it."""
    static = tmp_path / "static"
    users_folder(static)
    (static / "sanet-demo.js").write_text("// the author's own script\n")
    before = snapshot(static)
    code, _, err = export(capsys, static, runtime)
    one_line_error(code, err, f"{static}: an export by an older mkdocs-sanet, without {MANIFEST}",
                   "expected a new or empty folder")
    assert snapshot(static) == before
    assert siblings(static) == ["entry", "node_modules", "static"]


def test_export_into_a_folder_of_the_users_files(capsys, tmp_path, entry, runtime):
    target = tmp_path / "site"
    before = users_folder(target)
    code, _, err = export(capsys, target, runtime)
    assert err == (f"mkdocs-sanet: error: {target}: the folder is not empty and holds no earlier export: "
                   "expected a new or empty folder (export replaces only an earlier export)\n")
    assert code == 2
    assert snapshot(target) == before


def test_export_again_keeps_the_authors_pages_and_presets(capsys, tmp_path, entry, runtime):
    """The export's README invites editing index.html and offering one's own pictures
    (presets/presets.json lists them): exporting again keeps those, and says so."""
    target = tmp_path / "static" / "sanet"
    assert export(capsys, target, runtime)[0] == 0
    written = snapshot(target)
    assert json.loads((target / MANIFEST).read_text())["command"] == "export"
    (target / "index.html").write_text("<!doctype html><p>my page</p>\n")
    (target / "presets" / "style-mine.jpg").write_bytes(b"\xff\xd8 my painting")
    presets = json.loads((target / "presets" / "presets.json").read_text())
    presets["style"].append("style-mine.jpg")
    (target / "presets" / "presets.json").write_text(json.dumps(presets))
    (target / "drafts").mkdir()
    (target / "drafts" / "post.html").write_text("a draft")
    (target / "tfjs" / "tf-core.min.js").unlink()  # deleted by the author: written again
    mine = {name: value for name, value in snapshot(target).items()
            if name.split(" ")[0] in ("index.html", "presets/style-mine.jpg", "presets/presets.json",
                                      "drafts", "drafts/post.html")}
    # The new export has another model file and a changed runtime file.
    (entry / "encode" / "group1-shard1of1.bin").unlink()
    (entry / "encode" / "group1-shard1of2.bin").write_bytes(b"new")
    (runtime / "@tensorflow/tfjs-backend-cpu/dist/tf-backend-cpu.min.js").write_text("// new\n")

    code, out, err = export(capsys, target, runtime)
    assert code == 0, err
    assert "kept 4 files of yours" in out and "index.html, presets/presets.json, presets/style-mine.jpg" in out
    after = snapshot(target)
    assert {name: after.get(name) for name in mine} == mine
    assert after["tfjs/tf-backend-cpu.min.js"] == b"// new\n"
    assert after["tfjs/tf-core.min.js"] == written["tfjs/tf-core.min.js"]
    assert after["model/encode/group1-shard1of2.bin"] == b"new"
    assert "model/encode/group1-shard1of1.bin" not in after
    assert siblings(target) == ["sanet"]
    # The kept files are still the author's: the next export keeps them too.
    files = json.loads((target / MANIFEST).read_text())["files"]
    assert not {"index.html", "presets/presets.json", "presets/style-mine.jpg"} & set(files)
    assert export(capsys, target, runtime)[0] == 0
    assert {name: snapshot(target).get(name) for name in mine} == mine


@pytest.mark.parametrize("name", ["sanet-demo.js", "model/encode/model.json", "tfjs/tf-core.min.js"])
def test_export_refuses_an_edit_of_the_demos_code_or_model(capsys, tmp_path, entry, runtime, name):
    target = tmp_path / "sanet"
    assert export(capsys, target, runtime)[0] == 0
    (target / name).write_text("edited")
    before = snapshot(target)
    code, _, err = export(capsys, target, runtime)
    one_line_error(code, err, f"{target}: changed since mkdocs-sanet export wrote them, and the new export "
                   f"must replace them: {name}: move them out of the folder")
    assert snapshot(target) == before


def test_export_refuses_a_users_file_where_it_writes_a_folder(capsys, tmp_path, entry, runtime):
    target = tmp_path / "sanet"
    assert export(capsys, target, runtime)[0] == 0
    (entry / "decode").mkdir()
    (entry / "decode" / "model.json").write_text("{}")
    (target / "model" / "decode").write_text("the author's file")
    before = snapshot(target)
    code, _, err = export(capsys, target, runtime)
    one_line_error(code, err, f"{target}: model/decode: in the way of what export writes")
    assert snapshot(target) == before


# A failure midway


@pytest.mark.parametrize("command", ["build-model", "export"])
def test_a_full_disk_midway_leaves_the_old_folder_as_it_was(capsys, tmp_path, entry, runtime, monkeypatch, command):
    target = tmp_path / "out"
    first = build_model(capsys, target) if command == "build-model" else export(capsys, target, runtime)
    assert first[0] == 0, first[2]
    if command == "export":
        (target / "index.html").write_text("the author's page")
        (target / "presets" / "content-mine.jpg").write_bytes(b"\xff\xd8 mine")
    before = snapshot(target)
    (entry / "manifest.json").write_text('{"model": 2}\n')  # the new output differs
    copy, calls = outputs._copy, []

    def full_disk(source, path):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return copy(source, path)

    monkeypatch.setattr(outputs, "_copy", full_disk)
    code, _, err = build_model(capsys, target) if command == "build-model" else export(capsys, target, runtime)
    one_line_error(code, err, f"{target}: writing it failed (No space left on device",
                   "nothing was changed: free some space and run the command again")
    assert len(calls) == 3
    assert snapshot(target) == before
    assert siblings(target) == sorted(["entry", "node_modules", "out"])


def test_a_failed_swap_puts_the_old_folder_back(capsys, tmp_path, entry, monkeypatch):
    target = tmp_path / "model"
    assert build_model(capsys, target)[0] == 0
    before = snapshot(target)
    rename, calls = os.rename, []

    def second_fails(source, destination):
        calls.append((source, destination))
        if len(calls) == 2:
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(source))
        return rename(source, destination)

    monkeypatch.setattr(os, "rename", second_fails)
    code, _, err = build_model(capsys, target)
    one_line_error(code, err, f"{target}: writing it failed (Input/output error", "nothing was changed")
    assert snapshot(target) == before
    assert siblings(target) == ["entry", "model"]


def test_an_unreadable_file_of_the_users_stops_before_anything_is_written(capsys, tmp_path, entry, runtime):
    """A FIFO added to an export (a file that cannot be copied): refused, not hung on, not lost."""
    target = tmp_path / "sanet"
    assert export(capsys, target, runtime)[0] == 0
    os.mkfifo(target / "pipe")
    before = snapshot(target)
    code, _, err = export(capsys, target, runtime)
    one_line_error(code, err, f"{target / 'pipe'}: not a regular file or a link, so it cannot be kept")
    assert snapshot(target) == before
    assert siblings(target) == ["entry", "node_modules", "sanet"]


# Odd targets: one line, exit 2, nothing written


def odd_targets(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (target, what the message says)."""
    tmp_path.mkdir()
    (tmp_path / "a-file").write_text("mine")
    (tmp_path / "folder").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "folder")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    return {
        "a file": (tmp_path / "a-file", f"{tmp_path / 'a-file'}: not a folder"),
        "a file as a parent": (tmp_path / "a-file" / "out", f"{tmp_path / 'a-file'}: not a folder"),
        "a file as a grandparent": (tmp_path / "a-file" / "x" / "out", f"{tmp_path / 'a-file'}: not a folder"),
        "a link to a folder": (tmp_path / "link", f"{tmp_path / 'link'}: a symbolic link: expected a folder"),
        "a dangling link": (tmp_path / "dangling", f"{tmp_path / 'dangling'}: a symbolic link"),
        "the root": (Path("/"), "/: the root folder"),
    }


@pytest.mark.parametrize("command", ["build-model", "export"])
@pytest.mark.parametrize("case", ["a file", "a file as a parent", "a file as a grandparent", "a link to a folder",
                                  "a dangling link", "the root"])
def test_odd_output_folders(capsys, tmp_path, entry, runtime, command, case):
    target, message = odd_targets(tmp_path / "work")[case]
    before = snapshot(tmp_path / "work")
    code, _, err = build_model(capsys, target) if command == "build-model" else export(capsys, target, runtime)
    one_line_error(code, err, message)
    assert snapshot(tmp_path / "work") == before


@pytest.mark.parametrize("command", ["build-model", "export"])
def test_an_unwritable_parent(capsys, tmp_path, entry, runtime, monkeypatch, command):
    """The tests run as root, for whom permissions do not stop writes: the folder beside the
    target cannot be made, as in a read-only parent."""
    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "ro"))

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(outputs.tempfile, "mkdtemp", refused)
    target = tmp_path / "ro" / "out"
    code, _, err = build_model(capsys, target) if command == "build-model" else export(capsys, target, runtime)
    one_line_error(code, err, f"{tmp_path / 'ro'}: cannot write there (Permission denied): expected a writable "
                   f"folder for {target}")
    assert list((tmp_path / "ro").iterdir()) == []


# stylize --output: checked before anything is computed


@pytest.mark.parametrize("case, message", [
    ("folder", "--output {tmp}/folder: a folder: expected a picture file, such as {tmp}/folder/out.png"),
    ("out.foo", "--output {tmp}/out.foo: '.foo' is not a picture format that Pillow writes: expected a name "
                "ending in .png, .jpg, .webp"),
    ("out", "--output {tmp}/out: no extension: expected a name ending in .png"),
    ("a-file/out.png", "--output {tmp}/a-file/out.png: {tmp}/a-file is not a folder"),
    ("a-file/x/out.png", "--output {tmp}/a-file/x/out.png: {tmp}/a-file is not a folder"),
    ("link/out.png", "--output {tmp}/link/out.png: {tmp}/a-file is not a folder"),
    ("unwritable/out.png", "--output {tmp}/unwritable/out.png: {tmp}/unwritable cannot be written: "
                           "expected a writable folder"),
])
def test_odd_stylize_outputs(capsys, tmp_path, monkeypatch, case, message):
    (tmp_path / "folder").mkdir()
    (tmp_path / "unwritable").mkdir()
    (tmp_path / "a-file").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "a-file")
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: access(path, mode) and Path(path).name != "unwritable")
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "stylize", "--content", tmp_path / "no-photo.jpg", "--style", tmp_path / "no.jpg",
                       "--output", tmp_path / case)
    one_line_error(code, err, message.format(tmp=tmp_path))
    assert snapshot(tmp_path) == before


def test_a_failed_picture_write_names_the_file_and_leaves_nothing(capsys, tmp_path, monkeypatch):
    """write_picture, the last step of stylize: a full disk names the file; the old picture stays."""
    from PIL import Image

    output = tmp_path / "out.png"
    output.write_bytes(b"the old picture")

    def full_disk(self, file, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Image.Image, "save", full_disk)
    with pytest.raises(cli.InputError, match=rf"^--output {output}: writing the picture failed \(.*No space left"):
        cli.write_picture(Image.new("RGB", (8, 8)), output, "PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    assert output.read_bytes() == b"the old picture"
    monkeypatch.undo()
    link = tmp_path / "link.png"
    link.symlink_to(output)
    cli.write_picture(Image.new("RGB", (8, 8)), link, "PNG")  # through the link: the link stays
    assert link.is_symlink() and Image.open(output).size == (8, 8)
    assert stat.S_IMODE(output.stat().st_mode) == 0o666 & ~outputs.umask()


# Every failure: one line, exit 2


def test_any_failure_is_one_line_and_exit_2(capsys, monkeypatch):
    def broken(args):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), "/somewhere")

    monkeypatch.setattr(cli, "info", broken)
    code, _, err = run(capsys, "info")
    one_line_error(code, err, "Read-only file system: '/somewhere'")

    def bug(args):
        raise KeyError("x")

    monkeypatch.setattr(cli, "info", bug)
    code, _, err = run(capsys, "info")
    one_line_error(code, err, "unexpected KeyError: 'x' (please report it)")


@pytest.mark.parametrize("argv, parts", [
    ((), ["mkdocs-sanet: the following arguments are required: command", "(see: mkdocs-sanet --help)"]),
    (("stylize", "--content", "a.jpg"), ["mkdocs-sanet stylize: the following arguments are required: --style",
                                         "(see: mkdocs-sanet stylize --help)"]),
    (("build-model", "--output", "m", "--quantization", "int4"), ["argument --quantization: invalid choice: 'int4'"]),
    (("info", "--frobnicate"), ["unrecognized arguments: --frobnicate"]),
])
def test_usage_errors_are_one_line_and_exit_2(capsys, argv, parts):
    code, out, err = run(capsys, *argv)
    one_line_error(code, err, *parts)
    assert out == ""
