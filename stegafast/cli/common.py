"""Pieces every command shares: a family's verbs, the ``--checkpoint``/``--device`` options,
and the argument checks that run before any work.

Checkpoints become models through ``stegafast.train.load_trained`` (which picks a run
folder's best checkpoint by the task's own ``monitor_mode``).

``UserError`` (``stegafast.errors``) and ``resolve_device`` (``stegafast.device``) are
re-exported here for the commands that imported them from this module.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Sequence

from ..device import DEVICE_CHOICES, resolve_device
from ..errors import UserError

__all__ = ["UserError", "resolve_device", "add_family", "add_checkpoint_and_device", "check_at_least",
           "check_output_file"]


def add_family(sub, name: str, help: str, verbs: Sequence[Callable[[object], None]]) -> None:
    """The ``stegafast <name> VERB`` command: its parser under ``sub`` (the top-level
    sub-parsers), each of ``verbs`` adding one verb to it (``verbs.add_parser(...)``
    and ``set_defaults(run=...)``)."""
    p = sub.add_parser(name, help=help)
    family_verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    for add_verb in verbs:
        add_verb(family_verbs)


def add_checkpoint_and_device(p: argparse.ArgumentParser, what: str) -> None:
    """``--checkpoint C`` (a checkpoint file or run folder of ``what``) and ``--device``."""
    p.add_argument("--checkpoint", required=True, metavar="C", help=f"a {what} checkpoint file or run folder")
    p.add_argument("--device", default="auto", help=f"{DEVICE_CHOICES} (default: %(default)s)")


def check_at_least(option: str, value: int | None, minimum: int) -> None:
    """A UserError ``--option must be at least M, got V`` unless ``value`` (None: not given) >= ``minimum``."""
    if value is not None and value < minimum:
        raise UserError(f"{option} must be at least {minimum}, got {value}")


def check_output_file(option: str, path: str, suffix: str | None = None, why: str = "") -> Path:
    """The output file ``path`` given with ``option``: its folder exists and, with ``suffix``
    (".png"), its name ends so (``why``, e.g. " (a lossy format would ...)", follows the message)."""
    out = Path(path)
    if suffix is not None and out.suffix.lower() != suffix:
        raise UserError(f"{option} {path}: the output must be a {suffix} file{why}")
    if not out.parent.is_dir():
        raise UserError(f"{option} {path}: folder {out.parent} does not exist")
    return out
