"""What a model family gives the engine: a ``Task``.

The engine owns the loop; a task says what to build and what one step computes.
See the package docstring for the whole picture and an example.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import nn
from torch.utils.data import Dataset

from .schedules import Schedule

if TYPE_CHECKING:
    from .config import TrainConfig
    from .context import StepContext

__all__ = ["Task", "OptimizerSpec", "Phase", "built_models"]


@dataclass
class OptimizerSpec:
    """An optimiser and how the engine drives it.

    schedule:        its learning-rate schedule (None: the run's ``--lr-schedule``)
    clip_norm:       clip its gradients to this total norm (None: the run's
                     ``--clip-norm``; 0: never)
    outside_forward: its loss is computed from parameters directly rather than
                     from a model's forward (a codec's auxiliary quantile loss);
                     under DDP the engine then averages its gradients itself
    """

    optimizer: torch.optim.Optimizer
    schedule: Schedule | None = None
    clip_norm: float | None = None
    outside_forward: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.optimizer, torch.optim.Optimizer):
            raise TypeError(f"OptimizerSpec needs a torch.optim.Optimizer, got {type(self.optimizer).__name__}")
        if self.clip_norm is not None and not self.clip_norm >= 0:
            raise ValueError(f"clip_norm must be >= 0 (0 turns clipping off), got {self.clip_norm!r}")


class Phase(NamedTuple):
    """One kind of update within a training step, run ``repeats`` times, each on
    fresh batches: ``[Phase("critic", 5), Phase("generator")]`` steps a WGAN
    critic five times per generator step."""

    name: str
    repeats: int = 1


class Task(abc.ABC):
    """A model family's training recipe. Subclasses set ``name`` and implement the
    abstract methods; the rest have defaults.

    name:           identifies the model in checkpoints and run folders; resuming a
                    checkpoint of another name is an error (``identity()`` may add
                    architecture settings that must match too)
    monitor:        the validation metric that ranks checkpoints (``--keep-best``)
    monitor_mode:   "min" or "max": which end of ``monitor`` is best (also how
                    ``load_trained`` picks a run folder's best checkpoint). The
                    defaults rank by lowest "loss"; a task that names another
                    monitor must say its mode too (a TypeError otherwise)
    find_unused_parameters: passed to DDP, for models with parameters that some
                    forward passes do not use
    collate_fn:     the DataLoader's collate function (None: PyTorch's default)
    """

    name: str = ""
    monitor: str = "loss"
    monitor_mode: str = "min"
    find_unused_parameters: bool = False
    collate_fn = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # "min" is right for the default "loss" only: a metric such as PSNR silently ranked
        # by its lowest value would keep the worst checkpoints
        if cls.monitor != Task.monitor and not any(
            "monitor_mode" in vars(base) for base in cls.__mro__ if base is not Task
        ):
            raise TypeError(
                f"{cls.__name__} sets monitor = {cls.monitor!r} but not monitor_mode: "
                "say whether 'min' or 'max' is best"
            )
        if cls.monitor_mode not in ("min", "max"):
            raise TypeError(f"{cls.__name__}.monitor_mode must be 'min' or 'max', got {cls.monitor_mode!r}")

    def identity(self) -> dict[str, Any]:
        """JSON-able facts that must match for a checkpoint to fit this task;
        extend with architecture settings: ``{**super().identity(), "blocks": 8}``."""
        return {"task": self.name}

    @classmethod
    def from_identity(cls, identity: dict[str, Any]) -> Task:
        """The task a checkpoint's ``identity()`` describes, able to ``build_models()``
        the architecture that was trained (``load_trained`` then loads the weights).
        It needs no data: dataset arguments keep their defaults. Override it in every
        task whose checkpoints are used after training; raise ValueError, KeyError or
        TypeError for an identity that does not describe a usable model."""
        raise NotImplementedError(
            f"task {cls.name!r} cannot rebuild itself from a checkpoint (it does not implement from_identity)"
        )

    @abc.abstractmethod
    def build_models(self) -> nn.Module | dict[str, nn.Module]:
        """The trainable models, freshly initialised (the engine seeds first and
        moves them to the device). A single module is named "model"."""

    @abc.abstractmethod
    def build_optimizers(
        self, models: dict[str, nn.Module], config: TrainConfig
    ) -> torch.optim.Optimizer | dict[str, torch.optim.Optimizer | OptimizerSpec]:
        """Optimisers over the parameters of ``models`` (on the device already);
        ``config.lr``, when not None, is the user's learning rate. A single
        optimiser is named "main". No parameter may be in two optimisers."""

    @abc.abstractmethod
    def train_dataset(self) -> Dataset:
        """The map-style training set (``__len__`` and ``__getitem__``). Random
        augmentation inside ``__getitem__`` is reproducible and resumes exactly."""

    def val_dataset(self) -> Dataset | None:
        """The validation set, or None for none."""
        return None

    def phases(self, step: int, total_steps: int) -> Sequence[Phase]:
        """The updates of training step ``step`` (a deterministic function of it)."""
        return (Phase("train"),)

    @abc.abstractmethod
    def training_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        """One micro-batch of phase ``ctx.phase``: compute losses under the engine's
        autocast, call ``ctx.backward(loss, optimizer_name)``, and return scalar
        metrics to log (e.g. ``{"loss": loss}``). Do not step optimisers."""

    def validation_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        """Metrics of one validation batch, as means over its samples (the engine
        weighs batches by size and pools processes). Runs under no_grad, eval mode."""
        raise NotImplementedError(f"task {self.name!r} has a validation set but no validation_step")

    def state_dict(self) -> dict[str, Any]:
        """Task state to checkpoint (tensors, numbers, strings, lists, dicts)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()`` output on resume."""
        if state:
            raise NotImplementedError(f"task {self.name!r} saved state {sorted(state)} but does not load it")


def built_models(task: Task) -> dict[str, nn.Module]:
    """``task.build_models()`` as a dict name -> module (a single module is named "model");
    a TypeError for anything else."""
    built = task.build_models()
    modules = {"model": built} if isinstance(built, nn.Module) else dict(built)
    if not modules or not all(isinstance(n, str) and isinstance(m, nn.Module) for n, m in modules.items()):
        raise TypeError(
            f"{type(task).__name__}.build_models() must return a module or a non-empty dict of name -> module"
        )
    return modules
