"""``StepContext``: what a task's training or validation step gets from the engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import torch
from torch import nn

from .amp import AmpPolicy
from .compiling import compile_options

__all__ = ["StepContext"]


class StepContext:
    """The engine's side of one step, passed as ``ctx``.

    step:          0-based index of the training step being computed (in validation:
                   the number of steps done)
    total_steps:   the run's ``--steps``
    progress:      step / total_steps, in [0, 1)
    phase:         the name of the current ``Phase`` (training only)
    micro_batch:   0-based index within gradient accumulation; grad_accum: their count
    models:        name -> module to call for forward passes (DDP-wrapped under
                   torchrun while training)
    modules:       name -> the plain modules (their other methods and parameters)
    device:        where batches and models live
    training:      False inside validation
    compile_mode:  the ``torch.compile`` mode of a ``--compile`` run (None: eager); ``compiled(fn)``
                   compiles a task's loss function with it
    """

    def __init__(
        self,
        *,
        models: dict[str, nn.Module],
        modules: dict[str, nn.Module],
        optimizer_names: Sequence[str],
        device: torch.device,
        amp: AmpPolicy,
        scaler: torch.amp.GradScaler,
        grad_accum: int,
        total_steps: int,
        training: bool,
        compile_mode: str | None = None,
    ):
        self.models = models
        self.modules = modules
        self.device = device
        self.grad_accum = grad_accum
        self.total_steps = total_steps
        self.training = training
        self.step = 0
        self.phase = ""
        self.micro_batch = 0
        self._optimizer_names = tuple(optimizer_names)
        self._amp = amp
        self._scaler = scaler
        self._compile_mode = compile_mode
        self._compiled: dict = {}  # fn -> its torch.compile wrapper, made once per run
        self.touched: set[str] = set()  # optimisers that received gradients in this update
        self._first_nonfinite: torch.Tensor | None = None  # on the device: no sync per step

    @property
    def progress(self) -> float:
        return self.step / self.total_steps

    @property
    def model(self) -> nn.Module:
        """The model to call, when the task has exactly one."""
        if len(self.models) != 1:
            raise AttributeError(
                f"ctx.model needs exactly one model; this task has {', '.join(self.models)}: use ctx.models[name]"
            )
        return next(iter(self.models.values()))

    def autocast(self, enabled: bool = True) -> AbstractContextManager:
        """The run's autocast region. Steps already run inside it; ``enabled=False``
        opens a full-precision region for numerically delicate parts."""
        return self._amp.autocast(enabled)

    def compiled(self, fn: Callable) -> Callable:
        """``fn`` (a task's loss function: tensors in, tensors out) through ``torch.compile`` in a
        ``--compile`` run, else ``fn`` itself. The models' forwards are compiled by the engine; the
        loss, computed by the task between forward and backward, is compiled by asking for it here:
        ``terms = ctx.compiled(my_loss)(prediction, target, weight)``. Python floats that change
        from step to step (ramped weights) become graph inputs after one recompilation."""
        if self._compile_mode is None:
            return fn
        wrapper = self._compiled.get(fn)
        if wrapper is None:
            wrapper = self._compiled[fn] = torch.compile(fn, **compile_options(self._compile_mode))
        return wrapper

    def _names(self, optimizer: str | Sequence[str] | None) -> tuple[str, ...]:
        if optimizer is None:
            if len(self._optimizer_names) != 1:
                raise ValueError(
                    f"this task has several optimisers ({', '.join(self._optimizer_names)}): "
                    "name the one the loss is for, ctx.backward(loss, name)"
                )
            return self._optimizer_names
        names = (optimizer,) if isinstance(optimizer, str) else tuple(optimizer)
        unknown = [n for n in names if n not in self._optimizer_names]
        if unknown:
            raise ValueError(f"unknown optimiser {unknown[0]!r}; this task has {', '.join(self._optimizer_names)}")
        return names

    def backward(
        self, loss: torch.Tensor, optimizer: str | Sequence[str] | None = None, *, retain_graph: bool = False
    ) -> None:
        """Back-propagate ``loss`` (a scalar mean over the micro-batch) for the named
        optimiser(s): the engine divides it by ``grad_accum``, applies fp16 loss
        scaling, and after the last micro-batch unscales, clips and steps every
        optimiser named during the update. Under DDP every process must make the
        same calls."""
        if not self.training:
            raise RuntimeError("ctx.backward is not available in validation_step")
        names = self._names(optimizer)
        self._watch(loss)
        with self._amp.autocast(enabled=False):
            self._scaler.scale(loss / self.grad_accum).backward(retain_graph=retain_graph)
        self.touched.update(names)

    def _watch(self, loss: torch.Tensor) -> None:
        """Remember (on the loss's device, without waiting for it) the first step whose loss is non-finite."""
        bad = ~torch.isfinite(loss.detach()).all()
        if self._first_nonfinite is None:
            self._first_nonfinite = torch.full((), -1, dtype=torch.int64, device=loss.device)
        fresh = bad & (self._first_nonfinite < 0)
        self._first_nonfinite = torch.where(fresh, self.step + 1, self._first_nonfinite)

    def first_nonfinite_step(self) -> torch.Tensor:
        """The 1-based step whose loss was first NaN or infinite, or -1: an int64
        scalar tensor (reading it waits for the device)."""
        if self._first_nonfinite is None:
            return torch.tensor(-1, dtype=torch.int64)
        return self._first_nonfinite

    def grad(
        self, outputs: torch.Tensor, inputs: torch.Tensor | Sequence[torch.Tensor], *, create_graph: bool = True
    ) -> tuple[torch.Tensor, ...]:
        """Gradients of ``outputs.sum()`` with respect to ``inputs``, kept in the graph
        (``create_graph``) for penalties such as WGAN-GP's; with fp16 the outputs are
        scaled for the backward and the gradients unscaled, as float16 needs."""
        inputs = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
        with self._amp.autocast(enabled=False):
            total = outputs.float().sum()
            if not self._scaler.is_enabled():
                return torch.autograd.grad(total, inputs, create_graph=create_graph)
            scaled = torch.autograd.grad(self._scaler.scale(total), inputs, create_graph=create_graph)
            inverse = 1.0 / self._scaler.get_scale()
            return tuple(g * inverse for g in scaled)
