"""Pieces every command shares: the ``--checkpoint``/``--device`` options and checkpoint loading.

``UserError`` (``stegafast.errors``) and ``resolve_device`` (``stegafast.device``) are
re-exported here for the commands that imported them from this module.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

from ..device import DEVICE_CHOICES, resolve_device
from ..errors import UserError

__all__ = ["UserError", "resolve_device", "add_checkpoint_and_device", "checkpoint_file", "load_task_checkpoint"]


def add_checkpoint_and_device(p: argparse.ArgumentParser, what: str) -> None:
    """``--checkpoint C`` (a checkpoint file or run folder of ``what``) and ``--device``."""
    p.add_argument("--checkpoint", required=True, metavar="C", help=f"a {what} checkpoint file or run folder")
    p.add_argument("--device", default="auto", help=f"{DEVICE_CHOICES} (default: %(default)s)")


def checkpoint_file(path: str | Path, mode: str = "max") -> Path:
    """A checkpoint file as given, or for a run folder its best checkpoint by validation
    (``mode`` says whether the monitored metric is better high or low), else its latest."""
    from ..train import RunDir

    path = Path(path)
    if not path.is_dir():
        return path
    run = RunDir(path)
    found = run.best(mode) or run.latest()
    if found is None:
        raise UserError(f"{path} holds no checkpoint")
    return found


def load_task_checkpoint(path: str | Path, task_name: str, mode: str = "max") -> dict:
    """The state of a checkpoint file or run folder written by the task ``task_name``,
    loaded with ``weights_only=True``; every way this can fail is a UserError."""
    from ..train import load_checkpoint

    file = checkpoint_file(path, mode)
    # torch.save writes zip archives; anything else (a text file, an image) would otherwise be read
    # as a legacy pickle and refused with a message about unsafe objects
    if file.is_file() and not zipfile.is_zipfile(file):
        raise UserError(f"{file} is not a checkpoint file (not a torch.save archive)")
    return load_checkpoint(file, expect_task=task_name)
