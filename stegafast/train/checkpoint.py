"""Checkpoint files: written atomically, read without executing code.

A checkpoint holds only tensors, numbers, strings, booleans, None, lists,
tuples and dicts, so it loads with ``torch.load(weights_only=True)``: a file
that carries any other pickled object is refused instead of run. The contents
are checked when saving, so a task that puts (say) a NumPy array in its state
learns it at the first save, not when someone tries to resume.

A write goes to a temporary file in the destination folder, is flushed and
fsync'ed, renamed over the destination (``os.replace``, atomic on POSIX and
Windows), and the folder is fsync'ed so the rename itself survives a power
cut: a crash at any moment leaves either the old file or the new one.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import secrets
from pathlib import Path
from typing import Any, Callable, IO

import torch

from ..errors import CheckpointError

__all__ = [
    "CHECKPOINT_FORMAT",
    "TEMP_SUFFIX",
    "CheckpointError",
    "check_weights_only",
    "atomic_write",
    "atomic_save",
    "atomic_write_json",
    "load_checkpoint",
    "identity_mismatch",
]

CHECKPOINT_FORMAT = "stegafast.train/1"
TEMP_SUFFIX = ".partial"

# Exact types: NumPy scalars subclass float and int but do not load with weights_only.
_PLAIN = (bool, int, float, str, type(None))
_SEQUENCES = (list, tuple, torch.Size)
_MAPPINGS = (dict, collections.OrderedDict)


def check_weights_only(obj: Any, where: str = "checkpoint") -> None:
    """Raise CheckpointError naming the first value ``torch.load(weights_only=True)``
    would refuse (anything but tensors, numbers, strings, None, lists, tuples, dicts)."""
    if isinstance(obj, torch.Tensor) or type(obj) in _PLAIN:
        return
    if type(obj) in _MAPPINGS:
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise CheckpointError(f"{where} has a key {key!r} of type {type(key).__name__}; keys must be str or int")
            check_weights_only(value, f"{where}[{key!r}]")
        return
    if type(obj) in _SEQUENCES:
        for i, value in enumerate(obj):
            check_weights_only(value, f"{where}[{i}]")
        return
    raise CheckpointError(
        f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}; checkpoints hold only tensors, numbers, "
        "strings, None, lists, tuples and dicts (convert it, e.g. a NumPy array with torch.from_numpy)"
    )


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":  # folders cannot be opened for fsync on Windows
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_temp(path: Path) -> tuple[int, Path]:
    # Not tempfile.mkstemp: its files are private (0600); these get the umask's permissions like any file.
    while True:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), temp
        except FileExistsError:
            continue


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, make it durable,
    then rename it to ``path``. On any error the temporary file is removed and
    ``path`` keeps its previous content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def atomic_save(obj: dict, path: str | os.PathLike) -> Path:
    """``torch.save`` through ``atomic_write``, after ``check_weights_only``."""
    check_weights_only(obj)
    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_json(obj: Any, path: str | os.PathLike) -> Path:
    """A JSON file written through ``atomic_write``."""
    data = (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
    return atomic_write(path, lambda f: f.write(data))


def _unpickler_reason(exc: Exception) -> str:
    """The line of torch's long weights_only message that names the offending object."""
    lines = [line.strip() for line in str(exc).splitlines()]
    named = [line for line in lines if "WeightsUnpickler error" in line]
    return (named or lines or ["unknown reason"])[0].split(". Please use")[0]


def load_checkpoint(path: str | os.PathLike, expect_task: str | None = None) -> dict:
    """Read a training checkpoint with ``weights_only=True`` (onto the CPU).

    With ``expect_task``, a checkpoint saved by another task is a CheckpointError
    naming both. Missing, damaged, foreign or code-carrying files raise
    CheckpointError too.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"refusing to load {path}: it holds objects other than tensors and plain values, which loading "
            f"could execute ({_unpickler_reason(exc)})"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: it is damaged or not a torch file ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a stegafast training checkpoint (format {CHECKPOINT_FORMAT})")
    if expect_task is not None and state["identity"].get("task") != expect_task:
        raise CheckpointError(
            f"{path} was saved by task {state['identity'].get('task')!r}, not {expect_task!r}"
        )
    return state


def _plain(identity: dict) -> dict:
    # JSON round trip: tuples and lists compare equal, as they do once read back from run.json.
    return json.loads(json.dumps(identity, sort_keys=True))


def identity_mismatch(saved: dict, current: dict) -> str | None:
    """None when two task identities agree, else a sentence saying how they differ."""
    saved, current = _plain(saved), _plain(current)
    if saved == current:
        return None
    if saved.get("task") != current.get("task"):
        return f"it belongs to task {saved.get('task')!r}, not {current.get('task')!r}"
    keys = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    diffs = ", ".join(f"{k}: {saved.get(k)!r} there, {current.get(k)!r} here" for k in keys)
    return f"its {current.get('task')!r} model differs ({diffs})"
