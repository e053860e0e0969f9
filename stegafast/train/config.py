"""``TrainConfig``: every setting the engine reads, checked when it is made."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config, check_non_negative_int, check_positive_int, check_seed
from .amp import AMP_MODES
from .compiling import COMPILE_MODES
from .schedules import Schedule

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig(Config):
    """Settings of one training run.

    Batches: each process loads ``batch_size`` samples per micro-batch and
    accumulates ``grad_accum`` micro-batches per optimiser step, so a step sees
    ``batch_size * grad_accum * world_size`` samples.

    out:            the run folder (checkpoints, metrics, run.json)
    steps:          optimiser steps of the whole run (a resumed run continues to it)
    lr:             learning rate handed to the task's optimisers (None: the task's default)
    schedule:       learning-rate schedule of optimisers that name none
    clip_norm:      clip gradients to this total norm per optimiser (0: off)
    amp:            "bf16", "fp16" (CUDA only, with loss scaling) or "off"
    device:         "auto", "cpu", "cuda" or "cuda:N"
    seed:           seeds initialisation, shuffling, augmentation and every other stream
    workers, pin_memory (None: on for CUDA), persistent_workers, prefetch_factor: DataLoader settings
    val_every:      validate every this many steps, and at the end (0: only at the end)
    val_batch_size: validation batch per process (None: batch_size)
    save_every:     checkpoint every this many steps, after each validation, and at the end (0: only those)
    keep_best:      checkpoints kept for their validation metric, besides the latest
    best_metric, best_mode: override the task's ``monitor`` and ``monitor_mode``
    log_every:      average and write training metrics every this many steps
    resume:         continue from the latest checkpoint in ``out`` (an error if there is none)
    progress:       progress display: None shows it when stderr is a terminal
    tensorboard:    also write TensorBoard events when tensorboard is installed
    deterministic:  torch.use_deterministic_algorithms (slower; GPUs need it for bit-exact reruns)
    compile:        torch.compile each model's training forward (``stegafast.train.compiling``;
                    checkpoints are those of the plain modules)
    compile_mode:   "default", "reduce-overhead" or "max-autotune" (with ``compile``)
    channels_last:  models and floating 4-d batch tensors in the channels-last memory format
                    (``stegafast.train.memory_format``)
    """

    out: str | Path
    steps: int
    batch_size: int
    grad_accum: int = 1
    lr: float | None = None
    schedule: Schedule = field(default_factory=Schedule)
    clip_norm: float = 0.0
    amp: str = "off"
    device: str = "auto"
    seed: int = 0
    workers: int = 0
    pin_memory: bool | None = None
    persistent_workers: bool = True
    prefetch_factor: int = 2
    val_every: int = 0
    val_batch_size: int | None = None
    save_every: int = 0
    keep_best: int = 1
    best_metric: str | None = None
    best_mode: str | None = None
    log_every: int = 10
    resume: bool = False
    progress: bool | None = None
    tensorboard: bool = True
    deterministic: bool = False
    compile: bool = False
    compile_mode: str = "default"
    channels_last: bool = False

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        for name in ("steps", "batch_size", "grad_accum", "prefetch_factor", "log_every"):
            check_positive_int(name, getattr(self, name))
        for name in ("workers", "val_every", "save_every", "keep_best"):
            check_non_negative_int(name, getattr(self, name))
        check_seed("seed", self.seed)
        if self.val_batch_size is not None:
            check_positive_int("val_batch_size", self.val_batch_size)
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not (math.isfinite(self.clip_norm) and self.clip_norm >= 0):
            raise ValueError(f"clip_norm must be >= 0 (0 turns clipping off), got {self.clip_norm!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, got {self.compile_mode!r}")
        if self.best_mode not in (None, "min", "max"):
            raise ValueError(f"best_mode must be 'min' or 'max', got {self.best_mode!r}")
        if not isinstance(self.schedule, Schedule):
            raise TypeError(f"schedule must be a Schedule, got {type(self.schedule).__name__}")

    def to_dict(self) -> dict:
        """The settings as JSON-able values."""
        values = super().to_dict()
        values["out"] = str(self.out)
        return values
