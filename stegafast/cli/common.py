"""Pieces every command shares: the user-error type, device choice and checkpoint loading."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import torch


class UserError(Exception):
    """A mistake in how a command was called (bad file, bad value): reported as
    one error line and exit status 2, without a traceback."""


def add_checkpoint_and_device(p: argparse.ArgumentParser, what: str) -> None:
    """``--checkpoint C`` (a checkpoint file or run folder of ``what``) and ``--device``."""
    p.add_argument("--checkpoint", required=True, metavar="C", help=f"a {what} checkpoint file or run folder")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when visible, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; anything else is a UserError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unsupported device {name!r}; use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is visible")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"unsupported device {name!r}; use auto, cpu or cuda")
    return device


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
    from ..train import CheckpointError, load_checkpoint

    file = checkpoint_file(path, mode)
    # torch.save writes zip archives; anything else (a text file, an image) would otherwise be read
    # as a legacy pickle and refused with a message about unsafe objects
    if file.is_file() and not zipfile.is_zipfile(file):
        raise UserError(f"{file} is not a checkpoint file (not a torch.save archive)")
    try:
        return load_checkpoint(file, expect_task=task_name)
    except CheckpointError as exc:
        raise UserError(str(exc)) from None
