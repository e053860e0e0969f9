"""The base of every settings dataclass (``Config``) and the field checks they share.

A family's configs (and the engine's) are frozen dataclasses that inherit
``Config`` for ``to_dict`` / ``from_dict`` and validate their fields in
``__post_init__`` with the checks below. Every check raises a ValueError whose
message starts with the field's name (``"blocks must be a positive integer,
got 0"``), so a command can report it as its option (``--blocks must be ...``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, fields
from typing import Any, ClassVar, TypeVar

__all__ = [
    "Config",
    "is_int",
    "check_positive_int",
    "check_non_negative_int",
    "check_non_negative",
    "check_positive",
    "check_probability",
    "check_seed",
    "check_at_most",
    "SEED_LIMIT",
]

SEED_LIMIT = 2**64  # torch.manual_seed takes seeds below it

C = TypeVar("C", bound="Config")


class Config:
    """``to_dict`` / ``from_dict`` for a dataclass of settings (JSON-able field values).

    settings_name: what the settings describe, for error messages ("stego model");
                   the class name when empty
    """

    settings_name: ClassVar[str] = ""
    # field -> the value a stored dict without that field means: what the code did before the field existed
    # (its current default may differ); empty: missing fields take their defaults
    legacy_defaults: ClassVar[dict[str, Any]] = {}

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (what checkpoints store)."""
        return asdict(self)

    @classmethod
    def from_dict(cls: type[C], values: dict[str, Any]) -> C:
        """The config a ``to_dict`` result (a checkpoint's) describes; unknown keys are an
        error (a newer format), missing keys take ``legacy_defaults``' value, else their defaults."""
        label = cls.settings_name or cls.__name__
        if not isinstance(values, dict):
            raise ValueError(f"{label} settings must be a dict, got {type(values).__name__}")
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown {label} settings {unknown}")
        return cls(**{**cls.legacy_defaults, **values})


def is_int(value) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_positive_int(name: str, value) -> None:
    """Raise ValueError (starting with ``name``) unless ``value`` is an int >= 1 (bool is not an int here)."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_non_negative_int(name: str, value) -> None:
    """Raise ValueError (starting with ``name``) unless ``value`` is an int >= 0 (bool is not an int here)."""
    if not is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def check_non_negative(name: str, value) -> None:
    """A finite int or float >= 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def check_positive(name: str, value) -> None:
    """A finite int or float > 0 (not a bool)."""
    check_non_negative(name, value)
    if value == 0:
        raise ValueError(f"{name} must be positive, got {value!r}")


def check_probability(name: str, value) -> None:
    """Raise ValueError (starting with ``name``) unless ``value`` is a finite number in [0, 1]."""
    check_non_negative(name, value)
    if value > 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


def check_seed(name: str, value) -> None:
    """An int in 0 .. SEED_LIMIT - 1 (2**64 - 1), the seeds torch's generators take."""
    if not is_int(value) or not 0 <= value < SEED_LIMIT:
        raise ValueError(f"{name} must be an integer from 0 to 2**64 - 1, got {value!r}")


def check_at_most(name: str, value, maximum) -> None:
    """``value`` <= ``maximum``: the stated limit of a size that would otherwise exhaust memory."""
    if value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value!r}")
