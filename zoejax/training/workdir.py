"""A training work directory's own files besides its checkpoints: the lock that keeps a second trainer out,
``model_config.json`` and ``inference.json`` (written atomically, never rewritten with another model), and the
repair of a ``metrics.jsonl`` whose last record a killed run left half-written.

Remote work directories (gs:// and other URLs) get no lock: object stores have no advisory locks.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

from zoejax.models.config import ZoeDepthConfig
from zoejax.storage.layout import CHECKPOINT_DIR, CONFIG_FILE, EXTRAS_FILE, INFERENCE_FILE, is_converted_dir

LOCK_FILE = "train.lock"
# Settings that change how the model computes, not what its weights mean: a run may resume with another one
# (bfloat16 after float32, rematerialisation on a smaller device) and the work directory keeps the first.
COMPUTE_SETTINGS = ("dtype", "remat")


class WorkdirLockedError(RuntimeError):
    """Another trainer holds the work directory's lock."""


class WorkdirMismatchError(ValueError):
    """The work directory's ``model_config.json`` describes another model than this run's."""


class WorkdirLock:
    """An exclusive ``fcntl.flock`` on ``<directory>/train.lock`` for the life of a run (released by the kernel
    when the process dies, even by SIGKILL). The file names the holder: pid, host and start time."""

    def __init__(self, directory: str):
        self.path = os.path.join(directory, LOCK_FILE)
        self._fd: int | None = None

    def __enter__(self) -> WorkdirLock:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise WorkdirLockedError(
                f"{os.path.dirname(self.path)} is in use by another zoejax-train ({_describe_holder(holder)}, "
                f"lock file {self.path}): wait for it to finish, stop it, or use another --workdir") from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None


@contextlib.contextmanager
def lock_for_run(workdir: str, log_dir: str) -> Iterator[None]:
    """Holds the work directory's lock for a run (a remote work directory's log directory stands in). Process 0
    takes it: on a shared filesystem every host sees the one file, and hosts of one run must not lock each other
    out. Every process raises WorkdirLockedError when process 0 could not take it."""
    lock = WorkdirLock(log_dir if "://" in workdir else workdir)
    error = None
    if jax.process_index() == 0:
        try:
            lock.__enter__()
        except WorkdirLockedError as e:
            error = e
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        held = int(multihost_utils.broadcast_one_to_all(np.int32(error is None)))
        if not held and error is None:
            error = WorkdirLockedError(f"{workdir} is in use by another zoejax-train (process 0 of this run could "
                                       "not lock it; its error names the holder)")
    if error is not None:
        raise error
    try:
        yield
    finally:
        lock.__exit__()


def _describe_holder(text: str) -> str:
    try:
        holder = json.loads(text)
        return f"pid {holder['pid']} on host {holder['host']}, since {holder['since']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"


def write_text_atomically(path: Any, text: str) -> None:
    """Writes ``text`` to a temporary file beside ``path`` (an ``epath.Path``) and renames it over ``path``:
    readers see the old file or the new one, never a part."""
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_model_config(workdir: str, model_config: ZoeDepthConfig, write: bool = True) -> None:
    """Writes ``model_config.json`` (when ``write``: process 0) unless the work directory already has one that
    belongs to weights: its checkpoints, or a converted folder trained into. Raises WorkdirMismatchError when that
    one describes another model; differences in ``COMPUTE_SETTINGS`` only are allowed, and the file is kept. (One
    without weights, from a run that failed before its first checkpoint, is replaced.)"""
    from etils import epath


    path = epath.Path(workdir) / CONFIG_FILE
    want = json.loads(json.dumps(model_config.to_dict()))
    checkpoints = path.parent / CHECKPOINT_DIR
    has_steps = checkpoints.is_dir() and any(p.name.isdigit() for p in checkpoints.iterdir())
    if path.exists() and (has_steps or is_converted_dir(os.fspath(path.parent))):
        try:
            have = json.loads(path.read_text())
        except ValueError as e:
            raise WorkdirMismatchError(f"{path} is not valid JSON ({e}): restore it or use another --workdir") \
                from None
        differing = _differing_keys(have, want)
        blocking = [k for k in differing if k.split("/")[0] not in COMPUTE_SETTINGS]
        if blocking:
            shown = ", ".join(f"{k} ({_at(have, k)!r} there, {_at(want, k)!r} in this run)" for k in blocking[:4])
            more = f" and {len(blocking) - 4} more" if len(blocking) > 4 else ""
            raise WorkdirMismatchError(
                f"{path} describes another model than this run's config: {shown}{more}. Use another --workdir "
                f"(with --config.init_from={workdir} to start from its weights), or run with its config")
        if differing:
            logging.info("%s keeps its %s; this run computes with %s", path, differing,
                         {k: _at(want, k) for k in differing})
        return
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(path, json.dumps(want, indent=2))


def _differing_keys(have: Any, want: Any, prefix: str = "") -> list[str]:
    if isinstance(have, dict) and isinstance(want, dict):
        out = []
        for key in sorted(set(have) | set(want), key=str):
            out += _differing_keys(have.get(key), want.get(key), f"{prefix}{key}/")
        return out
    return [] if have == want else [prefix.rstrip("/")]


def _at(tree: Any, key: str) -> Any:
    for part in key.split("/"):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def write_inference_info(workdir: str, image_shape: tuple[int, ...]) -> None:
    """``inference.json``: the network input size (H, W) the model trains at, which ``zoejax.load(workdir)``
    then predicts at; written atomically, and only when it changes."""
    from etils import epath

    path = epath.Path(workdir) / INFERENCE_FILE
    text = json.dumps({"input_size": list(image_shape[1:3])})
    if path.exists() and path.read_text() == text:
        return
    write_text_atomically(path, text)


def repair_jsonl(path: str) -> str | None:
    """Cuts a torn last line (a record a killed run wrote in part, no newline) off a JSON-lines file, so that
    the next record starts on its own line; returns the removed text, or None when the file was whole."""
    try:
        with open(path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return None
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return None
            # Step back to the last newline, reading backwards in blocks (a line is ~400 bytes).
            end, block = size, 4096
            while end > 0:
                start = max(0, end - block)
                f.seek(start)
                chunk = f.read(end - start)
                cut = chunk.rfind(b"\n")
                if cut >= 0:
                    keep = start + cut + 1
                    break
                end = start
            else:
                keep = 0
            f.seek(keep)
            torn = f.read().decode("utf-8", "replace")
            f.truncate(keep)
            return torn
    except FileNotFoundError:
        return None


def write_extras(workdir: str, extras: dict[str, Any]) -> None:
    """``extras.npz``: init_from's never-used tensors (ImageNet head, ...), so that exporting the trained model
    gives them back unchanged instead of re-initialised; written atomically."""
    import io

    from etils import epath

    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in extras.items()})
    path = epath.Path(workdir)
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / f".{EXTRAS_FILE}.tmp-{os.getpid()}"
    try:
        tmp.write_bytes(buffer.getvalue())
        tmp.replace(path / EXTRAS_FILE)
    finally:
        if tmp.exists():
            tmp.unlink()
