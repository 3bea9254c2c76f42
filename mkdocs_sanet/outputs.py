"""The folders the command line writes (`build-model --output DIR`, `export DIR`), written so that
nothing of the user's is ever deleted.

A folder that this tool wrote holds MANIFEST: the command that wrote it and the sha256 of each
file it wrote. An output folder must be new, empty, or such a folder; any other is refused
before anything is written. In a folder of ours, a file that is not in the manifest (added) or
whose hash differs (edited) is the user's: `export` keeps those of the pages and presets (and
refuses an edit of the demo's code or model, which the new export must replace), `build-model`
refuses all of them, naming them.

The new folder is written in full beside the old one (a temporary sibling), then swapped in with
two renames; the user's files kept are moved across after the swap, and only files whose hash
the old manifest records are deleted with the old folder. A failure before the swap (a full
disk, say) leaves the old folder as it was.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = ".mkdocs-sanet-manifest.json"
FORMAT = 1
# How many of the user's files a one-line message names.
NAMED = 5


class OutputError(Exception):
    """An output folder that cannot be written, in one line for a person."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def names(paths: Iterable[str]) -> str:
    paths = sorted(paths)
    shown = ", ".join(paths[:NAMED])
    return shown + (f" and {len(paths) - NAMED} more" if len(paths) > NAMED else "")


def reason(error: OSError) -> str:
    """An OSError's cause without its path ("No space left on device")."""
    return error.strerror or str(error)


@dataclass
class Plan:
    """What is in an output folder now: which files are ours, which the user's."""

    target: Path
    exists: bool = False
    ours: dict[str, str] = field(default_factory=dict)    # path -> sha256, unchanged since we wrote it
    added: list[str] = field(default_factory=list)        # not in the manifest
    edited: list[str] = field(default_factory=list)       # in the manifest, another hash (or not a file)
    folders: list[str] = field(default_factory=list)      # every folder inside, parents first
    empty: list[str] = field(default_factory=list)        # the empty ones (the user's: kept)

    @property
    def theirs(self) -> list[str]:
        return sorted(self.added + self.edited)


class Output:
    """One output folder of one command ("build-model", "export").

    keep(path) says whether a file of the user's at that path may stay (export: the pages and
    presets); None refuses every file of the user's (build-model). expected: what the refusal
    of a foreign folder says is expected; foreign: its whole message, if given."""

    def __init__(self, target: Path, command: str, expected: str,
                 keep: Callable[[str], bool] | None = None, foreign: str | None = None):
        self.target = Path(os.path.abspath(target))
        self.shown = target  # as the user wrote it
        self.command, self.expected, self.keep, self.foreign = command, expected, keep, foreign

    # The checks, before anything is written (and again just before the swap).

    def check(self) -> Plan:
        target, shown = self.target, self.shown
        if target.parent == target:
            raise OutputError(f"{shown}: the root folder: expected a folder of its own for the output")
        cwd = Path.cwd()
        if cwd == target or target in cwd.parents:
            raise OutputError(f"{shown}: the current folder (or one above it): expected a folder below it, "
                              f"such as {shown}/{self.command.split('-')[-1]}")
        if target.is_symlink():
            raise OutputError(f"{shown}: a symbolic link: expected a folder (give the folder it points to, "
                              f"{os.path.realpath(target)})")
        if not os.path.lexists(target):
            for parent in target.parents:
                if os.path.lexists(parent) and not parent.is_dir():
                    raise OutputError(f"{parent}: not a folder: expected the folders above {shown} to be folders")
            return Plan(target)
        if not target.is_dir():
            raise OutputError(f"{shown}: not a folder: expected {self.expected}")
        plan = Plan(target, exists=True)
        try:
            with os.scandir(target) as inside:
                if next(inside, None) is None:
                    return plan
            manifest = self._manifest()
            entries = self._walk(plan)
            for name, kind in entries.items():
                if name not in manifest:
                    plan.added.append(name)
                elif kind != "file" or sha256(target / name) != manifest[name]:
                    plan.edited.append(name)
                else:
                    plan.ours[name] = manifest[name]
            for names_ in (plan.added, plan.edited, plan.folders, plan.empty):
                names_.sort()
        except OSError as error:
            raise OutputError(f"{shown}: cannot be read ({reason(error)}): expected {self.expected}") from None
        return plan

    def _walk(self, plan: Plan) -> dict[str, str]:
        """Every entry below the target but the manifest, by POSIX path: "file" (a regular file),
        "link" or "other" (a FIFO, a socket, ...); the folders in plan.folders and plan.empty."""
        entries = {}
        for top, dirs, files in os.walk(self.target, onerror=_raise):
            rel = Path(top).relative_to(self.target)
            if not dirs and not files and top != str(self.target):
                plan.empty.append(rel.as_posix())
            for name in list(dirs):
                if (Path(top) / name).is_symlink():  # a link to a folder: listed as a link, not followed
                    dirs.remove(name)
                    entries[(rel / name).as_posix()] = "link"
                else:
                    plan.folders.append((rel / name).as_posix())
            for name in files:
                mode = os.lstat(Path(top) / name).st_mode
                kind = "file" if stat.S_ISREG(mode) else "link" if stat.S_ISLNK(mode) else "other"
                entries[(rel / name).as_posix()] = kind
        entries.pop(MANIFEST, None)
        return entries

    def _manifest(self) -> dict[str, str]:
        """The files the manifest says we wrote (path -> sha256); refuses a foreign folder."""
        path = self.target / MANIFEST
        if not os.path.lexists(path):
            raise OutputError(self.foreign or f"{self.shown}: the folder is not empty and holds no {MANIFEST} "
                              f"(the list of the files that mkdocs-sanet {self.command} wrote): "
                              f"expected {self.expected}")
        try:
            if path.is_symlink() or not path.is_file():
                raise ValueError("not a regular file")
            data = json.loads(path.read_text(encoding="utf-8"))
            files = data["files"]
            if data.get("tool") != "mkdocs-sanet" or not isinstance(files, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
                raise ValueError("not written by mkdocs-sanet")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise OutputError(f"{path}: not a manifest that mkdocs-sanet wrote ({error}): expected "
                              f"{self.expected}") from None
        if data.get("command") != self.command:
            raise OutputError(f"{self.shown}: written by mkdocs-sanet {data.get('command')}, not {self.command}: "
                              f"expected {self.expected}")
        return files

    def refuse_theirs(self, plan: Plan, writing: Iterable[str]) -> None:
        """Refuse the user's files that may not stay: all of them without keep(); else those at a
        path the new output writes that keep() refuses, and any in the way of what it writes (a
        file where it needs a folder, or the other way round)."""
        if self.keep is None:
            if plan.theirs:
                what = "added or changed since" if plan.edited else "added since"
                raise OutputError(
                    f"{self.shown}: holds files that mkdocs-sanet {self.command} did not write ({what} it wrote the "
                    f"folder): {names(plan.theirs)}: move them out of the folder, or choose another one")
            return
        writing = set(writing)
        stuck = [name for name in plan.theirs if name in writing and not self.keep(name)]
        if stuck:
            raise OutputError(f"{self.shown}: changed since mkdocs-sanet {self.command} wrote them, and the new "
                              f"{self.command} must replace them: {names(stuck)}: move them out of the folder "
                              f"(or put the written ones back)")
        kept = set(plan.theirs) | set(plan.empty)
        above = lambda paths: {p.as_posix() for name in paths for p in Path(name).parents} - {"."}
        blocked = (kept & above(writing)) | (writing & above(kept)) | (set(plan.empty) & writing)
        if blocked:
            raise OutputError(f"{self.shown}: {names(blocked)}: in the way of what {self.command} writes "
                              "(a file where it writes a folder, or a folder where it writes a file): move them")

    # The write.

    def write(self, files: dict[str, Path | bytes]) -> list[str]:
        """Write the files (by POSIX path inside the folder: a source file or the bytes) as the new
        folder; returns the user's files that were kept (the new output's file is not written there)."""
        plan = self.check()
        self.refuse_theirs(plan, files)
        kept = plan.theirs
        parent = self.target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.new-", dir=parent))
        except OSError as error:
            raise OutputError(f"{parent}: cannot write there ({reason(error)}): expected a writable folder for "
                              f"{self.shown} (it is written beside it first)") from None
        try:
            os.chmod(staging, stat.S_IMODE(os.stat(self.target).st_mode) if plan.exists else 0o777 & ~umask())
            written = {}
            for name, source in sorted(files.items()):
                if name not in kept:
                    written[name] = _copy(source, staging / name)
            for name in plan.empty:
                (staging / name).mkdir(parents=True, exist_ok=True)
            for name in kept:
                _copy_entry(self.target / name, staging / name)
            manifest = {"tool": "mkdocs-sanet", "format": FORMAT, "command": self.command,
                        "note": "the files that mkdocs-sanet wrote here: it replaces these, and keeps any other",
                        "files": written}
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            if self.check() != plan:
                raise OutputError(f"{self.shown}: changed while it was being written: run the command again")
            old = self._swap(staging, plan)
        except BaseException as error:
            shutil.rmtree(staging, ignore_errors=True)  # ours: made by mkdtemp above, not swapped in
            if isinstance(error, OSError):
                where = f" ({error.filename})" if getattr(error, "filename", None) else ""
                space = ": free some space and" if error.errno == errno.ENOSPC else ";"
                raise OutputError(f"{self.shown}: writing it failed ({reason(error)}{where}), nothing was changed"
                                  f"{space} run the command again") from None
            raise
        if old is not None:
            self._clear(old, plan)
        return kept

    def _swap(self, staging: Path, plan: Plan) -> Path | None:
        """The new folder in place of the old, in two renames (the first undone if the second
        fails); the old folder's new name."""
        if not plan.exists:
            os.rename(staging, self.target)
            return None
        old = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.old-", dir=self.target.parent))
        os.rmdir(old)  # a free name beside the target, for the old folder
        os.rename(self.target, old)
        try:
            os.rename(staging, self.target)
        except BaseException:
            os.rename(old, self.target)
            raise
        return old

    def _clear(self, old: Path, plan: Plan) -> None:
        """After the swap: the user's files kept moved in from the old folder (over their copies),
        then the old folder's files of ours deleted (those still of the hash we wrote), and the
        old folder if that leaves it empty."""
        leftover = []
        for name in plan.theirs:
            try:
                os.replace(old / name, self.target / name)  # the original (its inode, its links) over its copy
            except OSError:
                leftover.append(name)  # its copy is in place; the original stays in the old folder
        for name, digest in plan.ours.items():
            try:
                if not (old / name).is_symlink() and sha256(old / name) == digest:
                    os.unlink(old / name)
                else:
                    leftover.append(name)
            except OSError:
                leftover.append(name)
        for name in [MANIFEST]:
            try:
                os.unlink(old / name)
            except OSError:
                pass
        for name in sorted(plan.folders, key=lambda n: n.count("/"), reverse=True):
            try:
                os.rmdir(old / name)
            except OSError:
                pass
        try:
            os.rmdir(old)
        except OSError:
            raise OutputError(f"{self.shown}: written, but the old folder, moved to {old}, still holds "
                              f"{names(leftover) or 'files'}: look at them, then delete it") from None


def _raise(error: OSError) -> None:
    raise error


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _copy(source: Path | bytes, target: Path) -> str:
    """Write one file (a copy of a regular file, or the bytes), never through a link; its sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(target, "xb") as out:
        if isinstance(source, bytes):
            out.write(source)
            digest.update(source)
        else:
            with open(source, "rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):
                    out.write(block)
                    digest.update(block)
    return digest.hexdigest()


def _copy_entry(source: Path, target: Path) -> None:
    """A copy of one of the user's entries (a file, a link as a link); refuses what cannot be copied."""
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = os.lstat(source).st_mode
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(source), target)
    elif stat.S_ISREG(mode):
        shutil.copy2(source, target)
    else:
        raise OutputError(f"{source}: not a regular file or a link, so it cannot be kept: move it out of the folder")
