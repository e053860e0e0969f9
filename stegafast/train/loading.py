"""Trained models back from a checkpoint file or a run folder, for inference and evaluation.

``load_trained(TaskType, path, device)`` is the one way a family turns what
training left into models: it picks the checkpoint (a file as given; for a run
folder its best kept checkpoint by validation, else its latest), checks that
the right task wrote it, rebuilds the task with ``TaskType.from_identity`` and
loads the weights. "Best" follows the run's own ranking: the ``best_mode`` the
run was started with when it set one, else the task's ``monitor_mode``.

A crafted checkpoint fails in one line before anything is built: its layout is
checked on reading (``checkpoint.check_layout``), its identity by the task's
configs (types and ranges), and the size of the models it describes by building
them first on the meta device (shapes, no memory) and weighing their parameters
and buffers against ``stegafast.data.limits.memory_budget()``.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..data.limits import over_budget
from ..errors import CheckpointError, RunDirError
from .checkpoint import load_checkpoint
from .rundir import RunDir
from .task import Task, built_models

__all__ = ["Trained", "checkpoint_file", "load_trained", "model_bytes", "check_model_size"]

_MODES = ("min", "max")


@dataclass(frozen=True)
class Trained:
    """What ``load_trained`` gives back.

    task:       the task rebuilt from the checkpoint's identity (its configs say
                how the models were built and trained)
    models:     name -> module, weights loaded, in eval mode on the device asked for
    checkpoint: the checkpoint file that was read
    """

    task: Task
    models: dict[str, nn.Module]
    checkpoint: Path

    @property
    def model(self) -> nn.Module:
        """The only model of a single-model task (named "model")."""
        return self.models["model"]


def checkpoint_file(path: str | os.PathLike, mode: str) -> Path:
    """``path`` itself when it is not a folder; for a run folder its best kept checkpoint
    by validation (``mode`` "min" or "max": which end of the metric is best), else its
    latest. A RunDirError for a folder that holds no checkpoint."""
    if mode not in _MODES:
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    path = Path(path)
    if not path.is_dir():
        return path
    run = RunDir(path)
    found = run.best(_run_mode(run, mode)) or run.latest()
    if found is None:
        raise RunDirError(f"{path} holds no checkpoint")
    return found


def _run_mode(run: RunDir, task_mode: str) -> str:
    """The direction the run ranked its checkpoints by: its config's best_mode, else the task's."""
    info = run.read_info() or {}
    config = info.get("config") if isinstance(info, dict) else None
    chosen = config.get("best_mode") if isinstance(config, dict) else None
    return chosen if chosen in _MODES else task_mode


def model_bytes(task: Task) -> int:
    """The bytes of the parameters and buffers ``task.build_models()`` makes, found by
    building them on the meta device (shapes only: nothing is allocated)."""
    with torch.device("meta"):
        models = built_models(task)
    tensors = [t for m in models.values() for t in (*m.parameters(), *m.buffers())]
    return sum(t.numel() * t.element_size() for t in tensors)


def check_model_size(task: Task, file: str | os.PathLike) -> None:
    """A CheckpointError when the models ``file``'s identity describes would not fit the memory budget."""
    problem = over_budget(model_bytes(task))
    if problem:
        raise CheckpointError(f"{file}: the model its identity describes would take {problem}; not building it")


def load_trained(
    task_type: type[Task],
    path: str | os.PathLike,
    device: torch.device | str = "cpu",
    names: Sequence[str] | None = None,
) -> Trained:
    """The trained models of a checkpoint file or run folder written by ``task_type``.

    names:  the models to load (default: every model the task builds); a family's
            inference may not need all of them (a GAN's critic)
    Every way this can fail is a UserError subclass: RunDirError for a folder
    without checkpoints, CheckpointError for a file that is no checkpoint, one of
    another task, or one that does not fit the architecture it records.
    """
    file = checkpoint_file(path, task_type.monitor_mode)
    # torch.save writes zip archives; anything else (a text file, an image) would otherwise be read
    # as a legacy pickle and refused with a message about unsafe objects
    if file.is_file() and not zipfile.is_zipfile(file):
        raise CheckpointError(f"{file} is not a checkpoint file (not a torch.save archive)")
    state = load_checkpoint(file, expect_task=task_type.name)
    try:
        task = task_type.from_identity(state["identity"])
        check_model_size(task, file)
        models = built_models(task)
        wanted = list(models) if names is None else list(names)
        for name in wanted:
            models[name].load_state_dict(state["models"][name])
    except (KeyError, ValueError, TypeError, AttributeError, RuntimeError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path}: the checkpoint does not hold a usable {task_type.name} model ({exc})") from None
    loaded = {name: models[name].to(device).eval() for name in wanted}
    return Trained(task, loaded, file)
