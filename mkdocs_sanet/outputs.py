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
disk, say) leaves the old folder as it was. The folders and files keep their modes.

One writer at a time: a write holds a lock beside the folder (`.NAME.mkdocs-sanet-lock`, an
flock), and records in it the hidden folders it makes beside the folder (the new one, and the
old one's name while they are swapped). A run killed midway leaves that record: the next run
reads it, and puts the user's folder back where a kill between the two renames left it moved
aside (or, when the folder is there too, stops and says where the old one is). Names are
printed with their control characters escaped, so that a name cannot add a line to a message.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import jsonfile

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


def printable(text) -> str:
    """A name as it is printed: its control characters (a newline, an escape) and undecodable
    bytes escaped, so that no name can add a line to a message or forge one."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def names(paths: Iterable[str]) -> str:
    paths = sorted(paths)
    shown = ", ".join(printable(p) for p in paths[:NAMED])
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
    modes: dict[str, int] = field(default_factory=dict)   # path -> permission bits ("." the folder)

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
        self.shown = printable(target)  # as the user wrote it (a newline in it escaped)
        self.command, self.expected, self.keep, self.foreign = command, expected, keep, foreign
        # The hidden names beside the folder: ".NAME", shortened (with a hash of the name) where
        # ".NAME.new-XXXXXXXX" would pass the file system's limit on a name.
        name = self.target.name
        if len(os.fsencode(name)) > 80:
            short = name
            while len(os.fsencode(short)) > 60:
                short = short[:-1]
            name = f"{short}~{hashlib.sha256(os.fsencode(name)).hexdigest()[:12]}"
        self.stem = f".{name}"
        self.lock_path = self.target.parent / f"{self.stem}.mkdocs-sanet-lock"

    # The checks, before anything is written (and again just before the swap).

    def check(self) -> Plan:
        target, shown = self.target, self.shown
        if target.parent == target:
            raise OutputError(f"{shown}: the root folder: expected a folder of its own for the output")
        cwd = Path.cwd()
        if cwd == target or target in cwd.parents:
            raise OutputError(f"{shown}: the current folder (or one above it): expected a folder below it, "
                              f"such as {shown}/{self.command.split('-')[-1]}")
        limit = _name_max(target.parent)
        if len(os.fsencode(target.name)) > limit:
            raise OutputError(f"{shown}: a name of {len(os.fsencode(target.name))} bytes: expected a folder name of "
                              f"at most {limit} bytes (the file system's limit)")
        if target.is_symlink():
            raise OutputError(f"{shown}: a symbolic link: expected a folder (give the folder it points to, "
                              f"{printable(os.path.realpath(target))})")
        if not os.path.lexists(target):
            for parent in target.parents:
                if os.path.lexists(parent) and not parent.is_dir():
                    raise OutputError(f"{printable(parent)}: not a folder: expected the folders above {shown} "
                                      "to be folders")
            return Plan(target)
        if not target.is_dir():
            raise OutputError(f"{shown}: not a folder: expected {self.expected}")
        if os.path.ismount(target):
            raise OutputError(self._mount_point())
        plan = Plan(target, exists=True)
        try:
            plan.modes["."] = stat.S_IMODE(os.lstat(target).st_mode)
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

    def _mount_point(self) -> str:
        return (f"{self.shown}: a mount point (or a folder the system keeps busy), which cannot be renamed, and "
                f"{self.command} writes the new folder beside it, then renames it into place: expected a folder "
                f"inside it, such as {self.shown}/{self.command.split('-')[-1]}")

    def _walk(self, plan: Plan) -> dict[str, str]:
        """Every entry below the target but the manifest, by POSIX path: "file" (a regular file),
        "link" or "other" (a FIFO, a socket, ...); the folders in plan.folders and plan.empty."""
        entries = {}
        for top, dirs, files in walk(self.target):
            rel = Path(top).relative_to(self.target)
            if not dirs and not files and top != self.target:
                plan.empty.append(rel.as_posix())
            for name in dirs:
                plan.folders.append((rel / name).as_posix())
                plan.modes[(rel / name).as_posix()] = stat.S_IMODE(os.lstat(top / name).st_mode)
            for name in files:
                mode = os.lstat(top / name).st_mode
                kind = "file" if stat.S_ISREG(mode) else "link" if stat.S_ISLNK(mode) else "other"
                entries[(rel / name).as_posix()] = kind
                plan.modes[(rel / name).as_posix()] = stat.S_IMODE(mode)
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
            data = jsonfile.loads(path.read_bytes())
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
        parent = self.target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(f"{printable(parent)}: cannot write there ({reason(error)}): expected a writable "
                              f"folder for {self.shown} (it is written beside it first)") from None
        with _Lock(self) as lock:
            self._recover(lock)
            return self._write(files, lock)

    def _write(self, files: dict[str, Path | bytes], lock: _Lock) -> list[str]:
        plan = self.check()
        self.refuse_theirs(plan, files)
        kept = plan.theirs
        parent = self.target.parent
        try:
            staging = Path(tempfile.mkdtemp(prefix=f"{self.stem}.new-", dir=parent))
            lock.record(staging=staging)
        except OSError as error:
            raise OutputError(f"{printable(parent)}: cannot write there ({reason(error)}): expected a writable "
                              f"folder for {self.shown} (it is written beside it first)") from None
        try:
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
            # The modes of the files of ours it replaces and of the folders it had (never widened):
            # folders last, the deepest first, so that a read-only one is filled before it is made so.
            for name in written:
                if name in plan.modes:
                    os.chmod(staging / name, plan.modes[name])
            for name in sorted((n for n in plan.folders if (staging / n).is_dir() and not (staging / n).is_symlink()),
                               key=lambda n: n.count("/"), reverse=True):
                os.chmod(staging / name, plan.modes[name])
            os.chmod(staging, plan.modes["."] if plan.exists else 0o777 & ~umask())
            if self.check() != plan:
                raise OutputError(f"{self.shown}: changed while it was being written: run the command again")
            _pause("staged")
            old = self._swap(staging, plan, lock)
        except BaseException as error:
            remove_tree(staging)  # ours: made by mkdtemp above, not swapped in
            lock.record()
            if isinstance(error, OSError):
                where = f" ({printable(error.filename)})" if getattr(error, "filename", None) else ""
                space = ": free some space and" if error.errno == errno.ENOSPC else ";"
                raise OutputError(f"{self.shown}: writing it failed ({reason(error)}{where}), nothing was changed"
                                  f"{space} run the command again") from None
            raise
        if old is not None:
            _pause("swapped")
            self._clear(old, plan)
        lock.record()
        return kept

    def _swap(self, staging: Path, plan: Plan, lock: _Lock) -> Path | None:
        """The new folder in place of the old, in two renames (the first undone if the second
        fails); the old folder's new name. The lock records both names first: a kill between
        the renames leaves the old folder where the next run finds it (`_recover`)."""
        if not plan.exists:
            os.rename(staging, self.target)
            return None
        old = Path(tempfile.mkdtemp(prefix=f"{self.stem}.old-", dir=self.target.parent))
        os.rmdir(old)  # a free name beside the target, for the old folder
        lock.record(staging=staging, old=old, old_id=_identity(self.target))
        try:
            os.rename(self.target, old)
        except OSError as error:
            if error.errno == errno.EBUSY:
                raise OutputError(self._mount_point()) from None
            raise
        try:
            _pause("between renames")
            os.rename(staging, self.target)
        except BaseException:
            os.rename(old, self.target)
            raise
        lock.record(old=old, old_id=_identity(old))
        return old

    def _recover(self, lock: _Lock) -> None:
        """What a run killed midway left beside the folder, as its lock records it: the old
        folder moved aside between the two renames is put back (the new one, a copy, removed);
        an old folder beside a new one in place (a kill while the user's files were moved
        across) stops the run, saying where it is; a new folder never swapped in is removed."""
        found = lock.previous
        if not found:
            return
        parent = self.target.parent
        staging = parent / found["staging"] if found.get("staging") else None
        old = parent / found["old"] if found.get("old") else None
        if old is not None and _identity(old) == found.get("old_id"):
            if os.path.lexists(self.target):
                lock.record(old=old, old_id=found.get("old_id"))
                raise OutputError(
                    f"{self.shown}: an earlier mkdocs-sanet {self.command} did not finish and left the previous "
                    f"folder's remains in {printable(old)}, which may hold files of yours (their copies are in "
                    f"{self.shown}): move what you need out of it, delete it, then run the command again")
            os.rename(old, self.target)
            _warn(f"{self.shown}: put back: an earlier mkdocs-sanet {self.command} was stopped while it swapped the "
                  f"folder and had left it as {printable(old)}")
        if staging is not None and _identity(staging) == found.get("staging_id"):
            remove_tree(staging)  # ours: the new folder, never swapped in (copies of the user's files)
        lock.record()

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
            raise OutputError(f"{self.shown}: written, but the old folder, moved to {printable(old)}, still holds "
                              f"{names(leftover) or 'files'}: look at them, then delete it") from None


def _pause(point: str) -> None:
    """A point of the write ("staged", "between renames", "swapped") where tests stop or kill it."""


def _warn(message: str) -> None:
    print(f"mkdocs-sanet: warning: {message}", file=sys.stderr)


def _name_max(folder: Path) -> int:
    for path in (folder, *folder.parents):
        try:
            return os.pathconf(path, "PC_NAME_MAX")
        except (OSError, ValueError):
            continue
    return 255


def _identity(path: Path) -> list[int] | None:
    """A folder's device and inode (as JSON keeps them), or None when there is no folder there."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return [info.st_dev, info.st_ino] if stat.S_ISDIR(info.st_mode) else None


class _Lock:
    """One writer of a folder at a time: an flock on `.NAME.mkdocs-sanet-lock` beside it, which
    also records the hidden folders that the write has made there (`record`), so that a run
    killed midway is recovered by the next (`Output._recover`). Removed when nothing is left to
    recover; a file there that is not such a lock is refused, never written."""

    TOOL = "mkdocs-sanet output lock"

    def __init__(self, output: Output):
        self.output, self.path, self.fd = output, output.lock_path, None
        self.previous: dict = {}
        self.pending = False

    def __enter__(self) -> _Lock:
        shown, path = self.output.shown, self.path
        for _ in range(20):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
            except OSError as error:
                if error.errno == errno.ELOOP:
                    raise OutputError(f"{printable(path)}: a symbolic link: expected the lock that mkdocs-sanet "
                                      f"keeps beside {shown} while it writes it (move the link away)") from None
                if error.errno == errno.EISDIR:
                    raise OutputError(f"{printable(path)}: not a regular file: expected the lock that mkdocs-sanet "
                                      f"keeps beside {shown} while it writes it (move it away)") from None
                raise OutputError(f"{printable(path.parent)}: cannot write there ({reason(error)}): expected a "
                                  f"writable folder for {shown} (it is written beside it first)") from None
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise OutputError(f"{printable(path)}: not a regular file: expected the lock that mkdocs-sanet "
                                      f"keeps beside {shown} while it writes it (move it away)")
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = self._read(fd)
                    who = (f"mkdocs-sanet {holder.get('command')} (process {holder.get('pid')})"
                           if holder else "another mkdocs-sanet")
                    raise OutputError(f"{shown}: {printable(who)} is writing it now (it holds {printable(path)}): "
                                      "nothing was changed: run the command again when that one has finished")
                same = os.fstat(fd)
                try:
                    now = os.lstat(path)
                except FileNotFoundError:
                    now = None
                if now is not None and (now.st_dev, now.st_ino) == (same.st_dev, same.st_ino):
                    self.fd = fd
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # removed by the writer before us meanwhile: lock the new one
        else:
            raise OutputError(f"{printable(path)}: cannot be locked: run the command again")
        try:
            self.previous = self._read(self.fd, refuse=True)
        except BaseException:
            self.pending = True  # not ours: left as it is
            self.__exit__(None, None, None)
            raise
        self.pending = bool(self.previous)
        return self

    def _read(self, fd: int, refuse: bool = False) -> dict:
        data = os.pread(fd, 65536, 0)
        if not data:
            return {}
        try:
            found = jsonfile.loads(data)
            if not (isinstance(found, dict) and found.get("tool") == self.TOOL):
                raise ValueError("not a lock")
            return {k: found.get(k) for k in ("command", "pid", "staging", "old", "staging_id", "old_id")
                    if isinstance(found.get(k), (str, int, list))}
        except ValueError:
            if refuse:
                raise OutputError(f"{printable(self.path)}: not a lock that mkdocs-sanet wrote: expected its lock "
                                  f"for {self.output.shown}, or nothing there (move the file away)") from None
            return {}

    def record(self, staging: Path | None = None, old: Path | None = None, old_id=None) -> None:
        """What the write has beside the folder now (nothing: nothing to recover)."""
        entry = {"tool": self.TOOL, "command": self.output.command, "pid": os.getpid()}
        if staging is not None:
            entry.update(staging=staging.name, staging_id=_identity(staging))
        if old is not None:
            entry.update(old=old.name, old_id=old_id)
        data = json.dumps(entry).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        os.fsync(self.fd)
        self.pending = staging is not None or old is not None

    def __exit__(self, *exc) -> None:
        if self.fd is None:
            return
        try:
            if not self.pending:
                os.unlink(self.path)  # still ours: locked, and checked to be this file
        except OSError:
            pass
        finally:
            os.close(self.fd)
            self.fd = None


def walk(top: Path, onerror: Callable[[OSError], None] | None = None):
    """os.walk without its recursion (a tree of any depth), never entering a link: (folder, its
    folders, its other entries), parents first. An error is raised, or given to onerror and
    that folder skipped."""
    stack = [Path(top)]
    while stack:
        folder = stack.pop()
        dirs, files = [], []
        try:
            with os.scandir(folder) as inside:
                for entry in inside:
                    (dirs if entry.is_dir(follow_symlinks=False) else files).append(entry.name)
        except OSError as error:
            if onerror is None:
                raise
            onerror(error)
            continue
        dirs.sort()
        files.sort()
        yield folder, dirs, files
        stack.extend(folder / name for name in reversed(dirs))


def remove_tree(path: Path) -> None:
    """A folder with all it holds (never what its links point at, at any depth), or a file or a
    link; what cannot be removed is left."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            os.unlink(path)
            return
    except OSError:
        return
    folders = []
    for folder, _, files in walk(path, onerror=lambda error: None):
        folders.append(folder)
        for name in files:
            try:
                os.unlink(folder / name)
            except OSError:
                pass
    for folder in reversed(folders):
        try:
            os.rmdir(folder)
        except OSError:
            pass


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
