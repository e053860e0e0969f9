"""Checkpoints shipped inside the package: ``stegafast/weights/<family>.pt``.

A bundled file is an ordinary training checkpoint slimmed down for shipping:
the ``identity`` the engine wrote (task name and configs, so ``load_trained``
rebuilds exactly the trained network), the ``models`` (name -> state dict) and
the ``step``, without the optimiser, schedule, scaler, RNG or data state a run
needs to resume; plus a ``provenance`` dict saying where it came from (source
run and checkpoint, step, the command, the held-out numbers it was chosen on,
when and at what precision it was exported). It loads like any checkpoint
(``load_trained``, ``weights_only=True``).

Half precision: with ``half=True`` (the default) every floating tensor is stored
as float16 when that loses nothing that matters: its largest rounding error is
at most ``HALF_TOLERANCE`` of the tensor's largest magnitude and no finite value
overflows. A tensor that fails the test (values beyond float16's range, or
spread over so many decades that the small ones vanish) stays in its own
precision and is named in the provenance. Integer tensors (the codec's CDF
tables) are never touched, so a bundled codec writes and reads the same
integers as the run it came from. ``load_state_dict`` casts float16 back to the
model's dtype when the file is loaded.

``bundled_checkpoint(family)`` is the default of every inference command's
``--checkpoint``; when the family's file is not shipped it is a
``CheckpointError`` naming the family and how to get a checkpoint.
``bundled_checkpoints()`` lists what is shipped, for ``stegafast info``.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from .checkpoint import CHECKPOINT_FORMAT, atomic_save, load_checkpoint
from .loading import check_model_size, checkpoint_file
from .task import Task, built_models

__all__ = [
    "BUNDLED_FAMILIES",
    "HALF_TOLERANCE",
    "WEIGHTS_DIR",
    "bundled_path",
    "bundled_checkpoint",
    "bundled_checkpoints",
    "export_bundled",
    "slim_models",
]

# the families whose inference commands default to a bundled checkpoint
BUNDLED_FAMILIES = ("stego", "stamp", "codec")
# the package's weights folder (package data: the wheel carries stegafast/weights/*.pt)
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
# float16 keeps a tensor when its worst rounding error is this fraction of its largest value or less
# (float16's own step is 2**-11 = 4.9e-4 of a value; 1e-3 admits every tensor whose values are all
# within its normal range, and small values that round in the subnormals by less than that)
HALF_TOLERANCE = 1e-3


def bundled_path(family: str, folder: str | os.PathLike | None = None) -> Path:
    """Where ``family``'s bundled checkpoint lives (whether or not it is there): ``folder/<family>.pt``,
    ``folder`` defaulting to the package's ``WEIGHTS_DIR``."""
    if family not in BUNDLED_FAMILIES:
        raise ValueError(f"no bundled checkpoints for family {family!r}; families: {', '.join(BUNDLED_FAMILIES)}")
    return Path(WEIGHTS_DIR if folder is None else folder) / f"{family}.pt"


def bundled_checkpoint(family: str, folder: str | os.PathLike | None = None) -> Path:
    """The bundled checkpoint file of ``family``; a CheckpointError (a UserError) saying so, and how to get
    a checkpoint, when this installation does not ship one."""
    path = bundled_path(family, folder)
    if not path.is_file():
        raise CheckpointError(
            f"no bundled {family} checkpoint ships with this installation ({path} is missing); give --checkpoint "
            f"a {family} checkpoint file or run folder (train one with `stegafast {family} train` or "
            f"scripts/bundled/{family}.sh)"
        )
    return path


def bundled_checkpoints(folder: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """family -> facts of each shipped checkpoint: ``path``, ``bytes``, ``parameters``, ``step``,
    ``summary`` (its held-out numbers in a line) and ``provenance``; a file that cannot be read
    gives ``error`` instead of the facts it would have told."""
    found = {}
    for family in BUNDLED_FAMILIES:
        path = bundled_path(family, folder)
        if path.is_file():
            found[family] = _facts(path)
    return found


def _facts(path: Path) -> dict[str, Any]:
    facts: dict[str, Any] = {"path": str(path), "bytes": path.stat().st_size}
    try:
        state = load_checkpoint(path)
    except CheckpointError as exc:
        return {**facts, "error": str(exc)}
    provenance = state.get("provenance") if isinstance(state.get("provenance"), dict) else {}
    parameters = provenance.get("parameters")
    if not isinstance(parameters, int):
        parameters = _float_values(state.get("models", {}))
    return {
        **facts,
        "task": state["identity"]["task"],
        "parameters": parameters,
        "step": state.get("step"),
        "summary": provenance.get("summary") or _metric_summary(provenance.get("metrics")),
        "provenance": provenance,
    }


def _float_values(models: dict) -> int:
    return sum(t.numel() for weights in models.values() for t in weights.values() if t.is_floating_point())


_SUMMARY_ITEMS = 8


def _metric_summary(metrics: Any) -> str | None:
    """Up to eight ``name value`` pairs of the numbers in ``metrics`` (nested dicts give dotted names)."""
    if not isinstance(metrics, dict):
        return None
    pairs = [f"{name} {value:.4g}" for name, value in _numbers(metrics)][:_SUMMARY_ITEMS]
    return ", ".join(pairs) or None


def _numbers(metrics: dict, prefix: str = ""):
    for key, value in metrics.items():
        if isinstance(value, dict):
            yield from _numbers(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{prefix}{key}", value


# ---- export --------------------------------------------------------------------------------------


def _as_half(tensor: torch.Tensor) -> torch.Tensor | None:
    """``tensor`` in float16 when that keeps it within HALF_TOLERANCE (see the module docstring), else None."""
    half = tensor.to(torch.float16)
    finite = torch.isfinite(tensor)
    if not bool(torch.equal(torch.isfinite(half), finite)):
        return None  # a finite value overflowed
    if not bool(finite.any()):
        return half
    wide = tensor[finite].double()
    scale = float(wide.abs().max())
    error = float((half[finite].double() - wide).abs().max())
    return half if error <= HALF_TOLERANCE * scale else None


def slim_models(models: dict[str, dict], half: bool = True) -> tuple[dict[str, dict], list[str]]:
    """(the models' state dicts with float tensors in float16 where ``_as_half`` allows, the names
    ``model.key`` of the float tensors kept in full precision). Without ``half``, the tensors as they are."""
    slim, kept = {}, []
    for name, weights in models.items():
        slim[name] = {}
        for key, tensor in weights.items():
            value = tensor.detach().cpu().contiguous()
            if half and value.is_floating_point() and value.dtype != torch.float16:
                converted = _as_half(value)
                if converted is None:
                    kept.append(f"{name}.{key}")
                else:
                    value = converted
            slim[name][key] = value
    return slim, kept


def _parameter_count(task: Task, models: dict[str, dict], file: Path) -> int:
    """The parameters of the task's models, after checking that ``models`` load into them."""
    check_model_size(task, file)
    built = built_models(task)
    try:
        for name, weights in models.items():
            built[name].load_state_dict(weights)
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"{file}: its weights do not fit the {task.name} model its identity describes ({exc})"
        ) from None
    return sum(p.numel() for name in models for p in built[name].parameters())


def export_bundled(
    source: str | os.PathLike,
    task_type: type[Task],
    out: str | os.PathLike,
    half: bool = True,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the bundled checkpoint ``out`` from ``source`` (a checkpoint file, or a run folder: its best
    checkpoint by validation, else its latest, as ``load_trained`` picks) of ``task_type``'s task.

    half:        float tensors as float16 where that keeps them (``slim_models``)
    provenance:  what to record beside what is found here (the command, ``metrics``, a one-line ``summary``)
    Returns the file's facts: ``path``, ``bytes``, ``parameters``, ``step``, ``provenance``. The file is
    written atomically (``stegafast.io``); a source that is no checkpoint of ``task_type`` is a CheckpointError.
    """
    file = checkpoint_file(source, task_type.monitor_mode)
    state = load_checkpoint(file, expect_task=task_type.name)
    if "models" not in state:
        raise CheckpointError(f"{file} holds no model weights")
    task = task_type.from_identity(state["identity"])
    parameters = _parameter_count(task, state["models"], file)
    models, kept = slim_models(state["models"], half)
    record = {
        "source": str(source),
        "checkpoint": str(file),
        "step": state.get("step"),
        "total_steps": state.get("total_steps"),
        "validation": state.get("metrics") or {},
        "train_config": state.get("config") or {},
        "versions": state.get("versions") or {},
        "precision": "float16" if half else "as trained",
        "kept_full_precision": kept,
        "parameters": parameters,
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **(provenance or {}),
    }
    slim = {
        "format": CHECKPOINT_FORMAT,
        "identity": state["identity"],
        "step": state.get("step"),
        "models": models,
        "provenance": record,
    }
    path = atomic_save(slim, out)
    return {
        "path": str(path),
        "bytes": path.stat().st_size,
        "parameters": parameters,
        "step": slim["step"],
        "provenance": record,
    }
