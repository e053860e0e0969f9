"""Pieces every command shares: a family's verbs, the ``--checkpoint``/``--device`` options.

Checkpoints become models through ``stegafast.train.load_trained`` (which picks a run
folder's best checkpoint by the task's own ``monitor_mode``).

``UserError`` (``stegafast.errors``) and ``resolve_device`` (``stegafast.device``) are
re-exported here for the commands that imported them from this module.
"""

from __future__ import annotations

import argparse
from typing import Callable, Sequence

from ..device import DEVICE_CHOICES, resolve_device
from ..errors import UserError

__all__ = ["UserError", "resolve_device", "add_family", "add_checkpoint_and_device"]


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
