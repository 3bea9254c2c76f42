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


# Races and crashes (issue 30): one writer at a time; a run killed midway is recovered by the next


def an_export_with_the_authors_files(capsys, target, runtime) -> dict:
    """An earlier export with the author's page, a folder of theirs at mode 700 and a file of
    theirs at 600; what the author's part of it holds (files, links, modes)."""
    assert export(capsys, target, runtime)[0] == 0
    (target / "mine.html").write_text("<p>my page</p>\n")
    (target / "private").mkdir(mode=0o700)
    (target / "private" / "key.txt").write_text("secret")
    os.chmod(target / "private" / "key.txt", 0o600)
    os.chmod(target, 0o750)
    capsys.readouterr()
    return authors_part(target)


def authors_part(target: Path) -> dict:
    found = snapshot(target)
    return {name: value for name, value in found.items()
            if name.split(" ")[0] in ("mine.html", "private", "private/key.txt")} | {
        "mode": stat.S_IMODE(target.stat().st_mode)}


def killed_at(point: str, monkeypatch, *argv) -> None:
    """Runs the command in a child process that is killed (SIGKILL: no handler runs) at that point
    of the write, as `kill -9` would."""
    import signal

    def die(where):
        if where == point:
            os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(outputs, "_pause", die)
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            cli.main([str(arg) for arg in argv])
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    monkeypatch.setattr(outputs, "_pause", lambda where: None)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


def hidden(folder: Path) -> list[str]:
    """The hidden names beside the folder, their random parts cut."""
    return sorted(name.split("-")[0] if name.startswith(f".{folder.name}.") and "-" in name else name
                  for name in siblings(folder) if name.startswith("."))


@pytest.mark.parametrize("command", ["build-model", "export"])
def test_a_second_writer_of_the_folder_is_refused_with_a_true_message(capsys, tmp_path, entry, runtime,
                                                                         monkeypatch, command):
    """The second of two runs at once used to say "nothing was changed" while the user's page sat
    only in a hidden .out.old-* folder. Now one writes at a time: the second, started while the
    first is between its two renames, is refused and changes nothing; the first ends with all."""
    target = tmp_path / "out"
    run_it = (lambda: build_model(capsys, target)) if command == "build-model" else (
        lambda: export(capsys, target, runtime))
    assert run_it()[0] == 0
    if command == "export":
        (target / "mine.html").write_text("<p>my page</p>\n")
    (entry / "manifest.json").write_text('{"model": 2}\n')
    second = []

    def race(where):
        if where == "between renames":
            second.append(run_it())

    monkeypatch.setattr(outputs, "_pause", race)
    code, _, err = run_it()
    assert code == 0, err
    (code2, _, err2), = second
    one_line_error(code2, err2, f"{target}: mkdocs-sanet {command} (process {os.getpid()}) is writing it now",
                   "nothing was changed: run the command again when that one has finished")
    assert (target / "manifest.json" if command == "build-model" else target / "model" / "manifest.json"
            ).read_text() == '{"model": 2}\n'
    if command == "export":
        assert (target / "mine.html").read_text() == "<p>my page</p>\n"
    assert hidden(target) == []  # no lock, no old or new folder left


def test_a_kill_between_the_two_renames_is_put_back_by_the_next_run(capsys, tmp_path, entry, runtime, monkeypatch):
    target = tmp_path / "sanet"
    mine = an_export_with_the_authors_files(capsys, target, runtime)
    killed_at("between renames", monkeypatch, "export", target, "--runtime-dir", runtime)
    assert not target.exists()  # the kill left the folder moved aside
    assert hidden(target) == [".sanet.mkdocs", ".sanet.new", ".sanet.old"]
    capsys.readouterr()
    code, out, err = export(capsys, target, runtime)
    assert code == 0, err
    assert err.count("\n") == 1 and err.startswith(f"mkdocs-sanet: warning: {target}: put back: an earlier "
                                                   f"mkdocs-sanet export was stopped while it swapped the folder"), err
    assert "kept 2 files of yours" in out
    assert authors_part(target) == mine
    assert hidden(target) == []


def test_a_kill_before_the_swap_leaves_the_folder_and_its_leftover_is_removed(capsys, tmp_path, entry, runtime,
                                                                                monkeypatch):
    target = tmp_path / "sanet"
    mine = an_export_with_the_authors_files(capsys, target, runtime)
    killed_at("staged", monkeypatch, "export", target, "--runtime-dir", runtime)
    assert authors_part(target) == mine
    assert hidden(target) == [".sanet.mkdocs", ".sanet.new"]
    capsys.readouterr()
    code, _, err = export(capsys, target, runtime)
    assert code == 0 and err == "", err
    assert authors_part(target) == mine
    assert hidden(target) == []


def test_a_kill_while_the_users_files_are_moved_across_stops_the_next_run(capsys, tmp_path, entry, runtime,
                                                                           monkeypatch):
    """After the swap, the user's originals are in the old folder (their copies in the new one):
    the next run says where, and starts again only once the user has dealt with it."""
    target = tmp_path / "sanet"
    mine = an_export_with_the_authors_files(capsys, target, runtime)
    killed_at("swapped", monkeypatch, "export", target, "--runtime-dir", runtime)
    old, = (p for p in tmp_path.iterdir() if p.name.startswith(".sanet.old-"))
    assert authors_part(old) | {"mode": 0o750} == mine and authors_part(target) == mine
    capsys.readouterr()
    code, _, err = export(capsys, target, runtime)
    one_line_error(code, err, f"{target}: an earlier mkdocs-sanet export did not finish and left the previous "
                   f"folder's remains in {old}, which may hold files of yours",
                   "move what you need out of it, delete it, then run the command again")
    assert authors_part(old) | {"mode": 0o750} == mine and authors_part(target) == mine
    outputs.remove_tree(old)
    code, _, err = export(capsys, target, runtime)
    assert code == 0, err
    assert authors_part(target) == mine
    assert hidden(target) == []


@pytest.mark.parametrize("case", ["a link", "a file of the user's", "a folder"])
def test_a_lock_path_that_is_not_our_lock_is_refused_and_left(capsys, tmp_path, entry, runtime, case):
    target = tmp_path / "sanet"
    assert export(capsys, target, runtime)[0] == 0
    lock = tmp_path / ".sanet.mkdocs-sanet-lock"
    if case == "a link":
        lock.symlink_to(tmp_path / "elsewhere")
    elif case == "a folder":
        lock.mkdir()
    else:
        lock.write_text("my notes\n")
    before = snapshot(tmp_path)
    code, _, err = export(capsys, target, runtime)
    expected = {"a link": "a symbolic link: expected the lock", "a folder": "not a regular file: expected the lock",
                "a file of the user's": "not a lock that mkdocs-sanet wrote"}[case]
    one_line_error(code, err, f"{lock}: {expected}")
    assert snapshot(tmp_path) == before


def test_modes_are_kept_and_never_widened(capsys, tmp_path, entry, runtime):
    """A re-export turned the author's mode-700 folders into 755; their chmod of a file of the
    export's (still of its hash) was undone."""
    target = tmp_path / "sanet"
    assert export(capsys, target, runtime)[0] == 0
    os.chmod(target, 0o700)
    os.chmod(target / "presets", 0o700)
    os.chmod(target / "index.html", 0o600)
    (target / "private").mkdir(mode=0o700)
    (target / "private" / "notes.txt").write_text("mine")
    os.chmod(target / "private" / "notes.txt", 0o600)
    modes = {name: value for name, value in snapshot(target).items() if name.endswith(" mode")}
    (entry / "manifest.json").write_text('{"model": 2}\n')
    assert export(capsys, target, runtime)[0] == 0
    after = {name: value for name, value in snapshot(target).items() if name.endswith(" mode")}
    assert after == modes
    assert stat.S_IMODE(target.stat().st_mode) == 0o700


# Odd targets (issue 30): a mount point, a long name, a newline in a name


def test_a_mount_point_is_refused_before_anything_is_written(capsys, tmp_path, entry, runtime, monkeypatch):
    """An empty mount point can be written into but never renamed ("Device or resource busy"
    forever): refused with what to do. (Mounting needs privileges the tests may lack: the check
    and the rename's EBUSY are made to happen.)"""
    target = tmp_path / "mnt"
    target.mkdir()
    ismount = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda path: str(path) == str(target) or ismount(path))
    code, _, err = export(capsys, target, runtime)
    one_line_error(code, err, f"{target}: a mount point (or a folder the system keeps busy), which cannot be renamed",
                   f"expected a folder inside it, such as {target}/export")
    assert list(target.iterdir()) == [] and hidden(target) == []


def test_a_busy_folder_is_refused_with_the_same_message(capsys, tmp_path, entry, monkeypatch):
    target = tmp_path / "model"
    target.mkdir()
    rename = os.rename

    def busy(source, destination):
        if str(source) == str(target):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(source))
        return rename(source, destination)

    monkeypatch.setattr(os, "rename", busy)
    code, _, err = build_model(capsys, target)
    one_line_error(code, err, f"{target}: a mount point (or a folder the system keeps busy)",
                   f"such as {target}/model")
    assert list(target.iterdir()) == [] and hidden(target) == []


def test_a_folder_name_of_the_longest_length_is_written_and_rewritten(capsys, tmp_path, entry, runtime):
    """".NAME.new-XXXXXXXX" passed the 255-byte limit on a name: the hidden names are shortened."""
    target = tmp_path / ("é" * 100 + "x" * 55)  # 255 bytes
    assert export(capsys, target, runtime)[0] == 0
    (target / "mine.html").write_text("mine")
    (entry / "manifest.json").write_text('{"model": 2}\n')
    code, out, err = export(capsys, target, runtime)
    assert code == 0, err
    assert (target / "mine.html").read_text() == "mine"
    assert siblings(target) == sorted(["entry", "node_modules", target.name])
    too_long = tmp_path / ("x" * 256)
    code, _, err = export(capsys, too_long, runtime)
    one_line_error(code, err, f"{too_long}: a name of 256 bytes: expected a folder name of at most 255 bytes")


def test_a_newline_in_a_name_cannot_forge_a_line(capsys, tmp_path, entry, runtime):
    forged = "mkdocs-sanet: error: forged"
    target = tmp_path / f"site\n{forged}"
    users_folder(target)
    code, _, err = export(capsys, target, runtime)
    one_line_error(code, err, f"{tmp_path}/site\\n{forged}: the folder is not empty")
    assert not err.startswith(forged)
    outputs.remove_tree(target)
    assert export(capsys, target, runtime)[0] == 0
    (target / f"a\n{forged}.html").write_text("mine")
    code, out, err = export(capsys, target, runtime)
    assert code == 0 and f"kept 1 file of yours (added, or changed since the last export; the export's own version " \
                          f"is not written over a changed one): a\\n{forged}.html\n" in out, out
    assert not any(line.startswith(forged) for line in out.splitlines())


# stylize's inputs (issue 30): a FIFO or a device is never opened; weights that overflow are refused


@pytest.mark.parametrize("option", ["--content", "--style", "--mask"])
def test_stylize_refuses_a_fifo_at_once(capsys, tmp_path, option):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    picture = next(Path(__file__).parent.parent.glob("model_assets/presets/content-*.jpg"))
    argv = ["stylize", "--output", tmp_path / "out.png", "--content", fifo if option == "--content" else picture,
            "--style", fifo if option == "--style" else picture]
    if option == "--mask":
        argv += ["--style", picture, "--mask", fifo]
    code, _, err = run(capsys, *argv)  # would block for ever on open()
    one_line_error(code, err, f"{option} {fifo}: not a regular file (a FIFO, a socket or a device): "
                   "expected a picture file")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("weights", ["1,inf", "inf,inf", "nan,1", "1e308,1e308", "0,0"])
def test_stylize_refuses_style_weights_that_are_not_finite(capsys, tmp_path, weights):
    picture = next(Path(__file__).parent.parent.glob("model_assets/presets/content-*.jpg"))
    code, _, err = run(capsys, "stylize", "--output", tmp_path / "out.png", "--content", picture, "--style", picture,
                       "--style", picture, "--style-weights", weights)
    one_line_error(code, err, f"--style-weights is {weights!r}: expected two finite numbers of at least 0 "
                   "with a positive (finite) sum")
    assert not (tmp_path / "out.png").exists()
