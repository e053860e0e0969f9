"""Checkpoint files: written atomically, read without executing code.

A checkpoint holds only tensors, numbers, strings, booleans, None, lists,
tuples and dicts, so it loads with ``torch.load(weights_only=True)``: a file
that carries any other pickled object is refused instead of run. The contents
are checked when saving, so a task that puts (say) a NumPy array in its state
learns it at the first save, not when someone tries to resume.

Checkpoints and JSON files are written through ``stegafast.io.atomic_write``
(a temporary file beside the destination, fsync'ed and renamed over it): a
crash at any moment leaves either the old file or the new one, and a failed
write (a full disk) keeps the old file and raises ``OutputError``.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..io import TEMP_SUFFIX, atomic_write, write_json

__all__ = [
    "CHECKPOINT_FORMAT",
    "TEMP_SUFFIX",
    "CheckpointError",
    "check_weights_only",
    "atomic_write",
    "atomic_save",
    "atomic_write_json",
    "load_checkpoint",
    "check_layout",
    "identity_mismatch",
]

CHECKPOINT_FORMAT = "stegafast.train/1"

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
                raise CheckpointError(
                    f"{where} has a key {key!r} of type {type(key).__name__}; keys must be str or int"
                )
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


def atomic_save(obj: dict, path: str | os.PathLike) -> Path:
    """``torch.save`` through ``stegafast.io.atomic_write`` (missing folders created),
    after ``check_weights_only``."""
    check_weights_only(obj)
    return atomic_write(path, lambda f: torch.save(obj, f), parents=True)


def atomic_write_json(obj: Any, path: str | os.PathLike) -> Path:
    """``obj`` as strict JSON (``stegafast.io.write_json``; missing folders created)."""
    return write_json(path, obj, parents=True)


_GLOBAL = re.compile(r"GLOBAL\s+([\w.]+)")
_REASON_LIMIT = 200


def _unpickler_reason(exc: Exception) -> str:
    """What torch's weights_only refusal names: ``unsupported GLOBAL MODULE.NAME`` when it
    names one, else its first line that is not advice. torch's advice to re-run with
    ``weights_only=False`` (which would run the file's code) is never passed on."""
    text = str(exc)
    match = _GLOBAL.search(text)
    if match:
        return f"unsupported GLOBAL {match.group(1)}"
    lines = [line.strip() for line in text.splitlines()]
    facts = [line for line in lines if line and "weights_only" not in line and "Weights only load failed" not in line]
    return (facts or ["an object torch does not load safely"])[0].split(". Please use")[0][:_REASON_LIMIT]


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
    check_layout(state, path)
    if expect_task is not None and state["identity"]["task"] != expect_task:
        raise CheckpointError(f"{path} was saved by task {state['identity']['task']!r}, not {expect_task!r}")
    return state


def _type_name(value: Any) -> str:
    return type(value).__name__


def check_layout(state: dict, path: str | os.PathLike) -> None:
    """A CheckpointError naming the first part of a checkpoint that is missing or of the
    wrong type: ``identity`` a dict whose ``task`` is a string, ``models`` (when there)
    a dict of name -> state dict (name -> tensor). What the engine and ``load_trained`` read
    without further checks; a crafted file fails here, in one line, before anything is built."""
    identity = state.get("identity")
    if not isinstance(identity, dict):
        found = "none" if identity is None else f"a {_type_name(identity)}"
        raise CheckpointError(f"{path} is a damaged checkpoint: its identity must be a dict, found {found}")
    if not isinstance(identity.get("task"), str):
        raise CheckpointError(f"{path} is a damaged checkpoint: its identity names no task (a string)")
    if "models" not in state:  # the engine always writes them; a reader that needs them says so
        return
    models = state["models"]
    if not isinstance(models, dict) or not all(isinstance(m, dict) for m in models.values()):
        raise CheckpointError(f"{path} is a damaged checkpoint: its models must be a dict of name -> state dict")
    for name, weights in models.items():
        bad = next((k for k, v in weights.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
        if bad is not None:
            raise CheckpointError(
                f"{path} is a damaged checkpoint: model {name!r} entry {bad!r} is a "
                f"{_type_name(weights[bad])}, not a tensor"
            )


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
