"""Learning-rate schedules and per-step hyper-parameter ramps.

A schedule is a pure function of the step: the learning rate of step ``s``
(0-based) is ``base_lr * schedule.factor(s, total_steps)``. Nothing but the step
has to be saved to resume one exactly, and the same schedule object can serve
any number of optimisers.

Kinds (each with an optional linear warm-up over the first ``warmup`` steps,
rising from ``1/warmup`` to 1):

- ``constant``: 1 (with ``warmup``: plain linear warm-up)
- ``linear``:   falls linearly from 1 to ``final`` at the last step
- ``cosine``:   half a cosine from 1 to ``final`` at the last step
- ``step``:     multiplied by ``gamma`` every ``every`` steps

``Schedule.parse("cosine,warmup=500,final=0.01")`` reads the command-line form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..config import Config, is_int

__all__ = ["Schedule", "SCHEDULE_KINDS", "ramp"]

SCHEDULE_KINDS = ("constant", "linear", "cosine", "step")


@dataclass(frozen=True)
class Schedule(Config):
    """A learning-rate multiplier per step; see the module docstring for the kinds."""

    kind: str = "constant"
    warmup: int = 0
    final: float = 0.0
    every: int = 0
    gamma: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(f"unknown schedule {self.kind!r}; choose one of {', '.join(SCHEDULE_KINDS)}")
        if not is_int(self.warmup) or self.warmup < 0:
            raise ValueError(f"schedule warmup must be a non-negative int, got {self.warmup!r}")
        if not 0.0 <= self.final <= 1.0:
            raise ValueError(f"schedule final must be within [0, 1] (a fraction of the base rate), got {self.final!r}")
        if self.kind == "step":
            if not is_int(self.every) or self.every < 1:
                raise ValueError(f"a step schedule needs every >= 1 (steps between decays), got {self.every!r}")
            if not 0.0 < self.gamma <= 1.0:
                raise ValueError(f"schedule gamma must be within (0, 1], got {self.gamma!r}")

    def factor(self, step: int, total_steps: int) -> float:
        """The multiplier of the base learning rate at 0-based ``step`` of a run of ``total_steps``."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        after = step - self.warmup
        if self.kind == "constant":
            return 1.0
        if self.kind == "step":
            return self.gamma ** (after // self.every)
        span = max(total_steps - 1 - self.warmup, 1)
        progress = min(after / span, 1.0)
        if self.kind == "linear":
            return 1.0 - (1.0 - self.final) * progress
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * progress))

    @classmethod
    def parse(cls, spec: str) -> Schedule:
        """``KIND[,key=value...]``, e.g. ``cosine,warmup=500,final=0.01`` or ``step,every=1000,gamma=0.5``."""
        kind, *options = [part.strip() for part in spec.split(",")]
        types = {f.name: f.type for f in fields(cls)}
        values: dict = {"kind": kind}
        for option in options:
            key, sep, value = option.partition("=")
            if not sep or key not in types or key == "kind":
                known = ", ".join(name for name in types if name != "kind")
                raise ValueError(
                    f"bad schedule option {option!r} in {spec!r}; options are key=value with key in {known}"
                )
            try:
                values[key] = int(value) if types[key] == "int" else float(value)
            except ValueError:
                raise ValueError(f"schedule option {key} needs a number, got {value!r}") from None
        return cls(**values)


def ramp(step: int, start: int, end: int, begin: float, finish: float) -> float:
    """A value moving linearly from ``begin`` (at ``step <= start``) to ``finish``
    (at ``step >= end``): per-step hyper-parameters such as a loss weight rising
    from 2 to 24 over training, ``ramp(ctx.step, 0, ctx.total_steps, 2.0, 24.0)``."""
    if end <= start:
        return finish if step >= start else begin
    t = min(max((step - start) / (end - start), 0.0), 1.0)
    return begin + (finish - begin) * t
