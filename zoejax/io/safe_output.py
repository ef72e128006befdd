"""Writing outputs without losing anything a user owns.

- ``atomic_files`` / ``atomic_path``: files written under temporary names beside their targets and renamed into
  place only when all of them are complete, so a failure (disk full, a crash) leaves the old set or the new set,
  never a mix and never a half-written file.
- ``atomic_dir``: a folder assembled under a temporary name and swapped in at the end. Every such folder gets a
  manifest (``OWNER_MANIFEST``) listing the files zoejax wrote; ``overwrite`` replaces only a folder whose every
  file is in its manifest, and never one that holds an input.
- ``same_path`` / ``is_within`` / ``holds_directly``: path comparisons that see through symlinks, ``..``,
  relative spellings and, where the filesystem is case-insensitive, case (they compare device and inode).

Temporary files and folders are created with the modes the umask gives (0666 / 0777 less the umask), like any
other file the user creates, not the 0600 / 0700 of ``tempfile.mkstemp`` / ``mkdtemp``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

OWNER_MANIFEST = ".zoejax-output.json"
_WRITER = "zoejax"


class UnsafeOutputError(Exception):
    """An output that would replace or delete something zoejax did not write (an input, a user's files)."""


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name one file or folder: by device and inode when both exist (symlinks, hard
    links, case on a case-insensitive filesystem), otherwise by their resolved absolute paths."""
    ia, ib = _identity(Path(a)), _identity(Path(b))
    if ia is not None and ib is not None:
        return ia == ib
    return Path(a).resolve() == Path(b).resolve()


def is_within(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether ``path`` is ``folder`` or lies anywhere below it, however either is spelled."""
    folder_id, folder_resolved = _identity(Path(folder)), Path(folder).resolve()
    resolved = Path(path).resolve()
    for p in (resolved, *resolved.parents):
        if p == folder_resolved or (folder_id is not None and _identity(p) == folder_id):
            return True
    return False


def holds_directly(folder: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether the file ``path`` (itself, or the target of a symlink at ``path``) lies directly in ``folder``:
    where a file named like it written into ``folder`` would replace it or the link."""
    link_parent = Path(path).absolute().parent
    return same_path(link_parent, folder) or same_path(Path(path).resolve().parent, folder)


def _create_unique(target: Path, tag: str, make_dir: bool) -> Path:
    """A new empty file or folder named ``.<target name>.<tag>-<random><suffix>`` beside ``target``."""
    while True:
        tmp = target.with_name(f".{target.name}.{tag}-{secrets.token_hex(4)}{'' if make_dir else target.suffix}")
        try:
            if make_dir:
                os.mkdir(tmp, 0o777)  # the umask applies, as for any folder the user creates
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_files(paths: Sequence[str | os.PathLike]) -> Iterator[list[Path]]:
    """Yield one temporary path per target (same folder, same suffix). When the block succeeds every temporary
    is renamed onto its target; when it raises, all of them are removed and the targets are left as they were."""
    targets = [Path(p) for p in paths]
    if len({t.absolute() for t in targets}) != len(targets):
        raise ValueError(f"one output named twice among {[str(t) for t in targets]}")
    temps: list[Path] = []
    try:
        for t in targets:
            t.parent.mkdir(parents=True, exist_ok=True)
            temps.append(_create_unique(t, "tmp", make_dir=False))
        yield list(temps)
        # Every file is complete before the first rename: renames need no space, so a full disk cannot stop
        # the set half-way.
        for tmp, t in zip(temps, targets, strict=True):
            os.replace(tmp, t)
    except BaseException:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed to ``path``, on error removed."""
    with atomic_files([path]) as (tmp,):
        yield tmp


def check_file_output(path: str | os.PathLike, *, overwrite: bool, inputs: Iterable[str | os.PathLike] = ()
                      ) -> Path:
    """Refuse a single-file output that is a folder, exists without ``overwrite``, or is an existing file of
    ``inputs`` (one of them, or a file inside one); returns ``path``. A new file inside an input folder is fine."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; this output is one file")
    for item in inputs:
        if os.path.lexists(path) and os.path.lexists(item) and is_within(path, item):
            raise UnsafeOutputError(f"{path} is the input {item} (or a file of it); write to another path")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (pass --overwrite / overwrite=True to replace it)")
    return path


def _foreign_entries(folder: Path) -> list[str]:
    """Files (and links) in ``folder`` that its manifest does not list; raises if there is no usable manifest."""
    try:
        manifest = json.loads((folder / OWNER_MANIFEST).read_text(encoding="utf-8"))
        owned = set(manifest["files"]) if manifest.get("written_by") == _WRITER else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        owned = None
    if owned is None:
        raise UnsafeOutputError(f"{folder} was not written by zoejax (no readable {OWNER_MANIFEST} inside), so "
                                "--overwrite will not replace it: delete it yourself or choose another folder")
    return [f for f in _relative_files(folder) if f not in owned and f != OWNER_MANIFEST]


def _relative_files(folder: Path) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder):
        links = [d for d in dirs if os.path.islink(os.path.join(root, d))]  # listed as entries, not followed
        for name in files + links:
            found.append(Path(os.path.relpath(os.path.join(root, name), folder)).as_posix())
    return sorted(found)


def check_dir_output(path: str | os.PathLike, *, overwrite: bool, inputs: Iterable[str | os.PathLike] = ()
                     ) -> Path:
    """Refuse a folder output that is a file, holds one of ``inputs``, or is non-empty without ``overwrite``;
    with ``overwrite``, one that holds anything zoejax did not write. Returns the absolute path (a symlink to a
    folder is followed: the folder it names is the output)."""
    path = Path(path).absolute()
    if path.is_symlink():
        path = path.resolve()
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file, not a folder; choose a folder")
    for item in inputs:
        if os.path.lexists(item) and is_within(item, path):
            raise UnsafeOutputError(f"{path} holds the input {item}; choose an output folder outside the inputs")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{path} exists and is not empty (pass --overwrite / overwrite=True to replace "
                                  "a folder zoejax wrote)")
        foreign = _foreign_entries(path)
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise UnsafeOutputError(f"{path} holds files zoejax did not write ({shown}), so --overwrite will not "
                                    "replace it: move them or choose another folder")
    return path


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False, inputs: Iterable[str | os.PathLike] = ()
               ) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it gets the owner manifest and replaces ``path``, on
    error it is removed and ``path`` is left as it was. ``check_dir_output`` decides (before and again just
    before the swap) whether ``path`` may be replaced."""
    inputs = [Path(i) for i in inputs]
    path = check_dir_output(path, overwrite=overwrite, inputs=inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_unique(path, "partial", make_dir=True)
    try:
        yield tmp
        files = _relative_files(tmp)
        with atomic_path(tmp / OWNER_MANIFEST) as manifest:
            manifest.write_text(json.dumps({"written_by": _WRITER, "files": files}, indent=1), encoding="utf-8")
        check_dir_output(path, overwrite=overwrite, inputs=inputs)  # the folder may have changed meanwhile
        if path.exists():
            old = _create_unique(path, "old", make_dir=True)
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
