"""Command-line pieces every family's ``train`` command shares: the engine's
options, their conversion to a ``TrainConfig``, and the checks that run before
anything heavy.

::

    def _add_train(verbs):
        p = add_train_parser(verbs, "train the model")
        p.set_defaults(steps=20000, batch_size=8, image_size=224, run=run)   # the family's defaults

    def run(args):
        task = StegoTask(data=args.data, image_size=args.image_size)
        return run_training(task, args)

Bad values, ``--resume`` without a checkpoint in ``--out``, and an ``--out`` that
holds another task's run raise ``stegafast.errors.UserError`` (or a subclass:
``RunDirError``, ``CheckpointError``, ``DataError``), which the command reports
as one error line and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING

from ..data import DataError, find_images
from ..device import DEVICE_CHOICES, device_type_of
from ..errors import UserError
from ..train import AMP_MODES, COMPILE_MODES, RunDir, Schedule, TrainConfig, Trainer, resolve_amp
from .common import check_crop_size, check_output_folder
from .compile_args import check_compile_args

if TYPE_CHECKING:
    from ..train import Task, TrainResult

__all__ = [
    "add_train_parser",
    "add_common_train_args",
    "add_val_data_arg",
    "check_image_folders",
    "config_from_args",
    "run_training",
    "train_from_args",
]


def add_train_parser(verbs, help: str) -> argparse.ArgumentParser:
    """A family's ``train`` verb under ``verbs`` with the engine's options (``add_common_train_args``);
    the family adds its own options and ``set_defaults`` to the parser returned."""
    p = verbs.add_parser("train", help=help)
    add_common_train_args(p)
    return p


def add_common_train_args(parser: argparse.ArgumentParser) -> None:
    """Add the options of every ``train`` command. Families change defaults with
    ``parser.set_defaults(out="runs/<family>", steps=..., batch_size=..., image_size=..., lr=...)``."""
    g = parser.add_argument_group("training")
    g.add_argument("--data", metavar="DIR", help="folder of training images (default: the family's bundled set)")
    g.add_argument(
        "--out",
        metavar="RUN",
        default="runs/train",
        help="run folder: checkpoints, metrics, run.json (default: %(default)s)",
    )
    g.add_argument("--steps", type=int, default=1000, metavar="N", help="optimiser steps in all (default: %(default)s)")
    g.add_argument(
        "--batch-size",
        type=int,
        default=8,
        metavar="B",
        help="samples per micro-batch and process (default: %(default)s)",
    )
    g.add_argument("--image-size", type=int, default=256, metavar="S", help="training crop size (default: %(default)s)")
    g.add_argument(
        "--amp",
        choices=AMP_MODES,
        default="off",
        help="mixed precision: bf16 (CPU or GPU), fp16 (GPU, loss scaling) or off (default: %(default)s)",
    )
    g.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    g.add_argument("--lr", type=float, metavar="LR", help="learning rate (default: the family's)")
    g.add_argument(
        "--lr-schedule",
        default="constant",
        metavar="SPEC",
        help="constant|linear|cosine|step[,warmup=N][,final=F][,every=N][,gamma=G], "
        "e.g. cosine,warmup=500 (default: %(default)s)",
    )
    g.add_argument(
        "--grad-accum",
        type=int,
        default=1,
        metavar="K",
        help="micro-batches accumulated per optimiser step (default: %(default)s)",
    )
    g.add_argument(
        "--clip-norm",
        type=float,
        default=0.0,
        metavar="C",
        help="clip gradients to this total norm, 0 for no clipping (default: %(default)s)",
    )
    g.add_argument("--device", default="auto", help=f"{DEVICE_CHOICES} (default: %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="seed of every random stream (default: %(default)s)")
    g.add_argument("--workers", type=int, default=2, help="data-loading processes (default: %(default)s)")
    g.add_argument(
        "--val-every",
        type=int,
        default=500,
        metavar="N",
        help="validate every N steps and at the end, 0 for only at the end (default: %(default)s)",
    )
    g.add_argument(
        "--save-every",
        type=int,
        default=500,
        metavar="N",
        help="checkpoint every N steps, after validations and at the end (default: %(default)s)",
    )
    g.add_argument(
        "--keep-best",
        type=int,
        default=3,
        metavar="K",
        help="checkpoints kept for their validation metric, besides the latest (default: %(default)s)",
    )
    g.add_argument(
        "--log-every",
        type=int,
        default=10,
        metavar="N",
        help="write averaged training metrics every N steps (default: %(default)s)",
    )
    g.add_argument(
        "--deterministic",
        action="store_true",
        help="deterministic algorithms only (slower; for bit-exact reruns on GPU)",
    )
    g.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile each model's training forward (the first steps compile; checkpoints do not change)",
    )
    g.add_argument(
        "--compile-mode",
        choices=COMPILE_MODES,
        help="torch.compile mode, with --compile (default: default)",
    )
    g.add_argument(
        "--channels-last",
        action="store_true",
        help="models and image batches in the channels-last (NHWC) memory format: faster convolutions on "
        "most CPUs and GPUs (checkpoints do not change)",
    )
    g.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=None,
        help="no progress bar (it is shown only on a terminal anyway)",
    )


def config_from_args(args: argparse.Namespace, task: Task | None = None) -> TrainConfig:
    """The engine's config from parsed ``add_common_train_args`` options; with
    ``task``, also check that ``--out`` fits it (its own run, or a new folder)."""
    try:
        schedule = Schedule.parse(args.lr_schedule)
    except ValueError as exc:
        raise UserError(f"--lr-schedule: {exc}") from None
    check_compile_args(args)
    try:
        config = TrainConfig(
            out=args.out,
            steps=args.steps,
            batch_size=args.batch_size,
            grad_accum=args.grad_accum,
            lr=args.lr,
            schedule=schedule,
            clip_norm=args.clip_norm,
            amp=args.amp,
            device=args.device,
            seed=args.seed,
            workers=args.workers,
            val_every=args.val_every,
            save_every=args.save_every,
            keep_best=args.keep_best,
            log_every=args.log_every,
            resume=args.resume,
            progress=args.progress,
            deterministic=args.deterministic,
            compile=args.compile,
            compile_mode=args.compile_mode or "default",
            channels_last=args.channels_last,
        )
        resolve_amp(config.amp, device_type_of(config.device))
    except ValueError as exc:
        raise UserError(_as_option(str(exc))) from None
    if args.image_size is not None and args.image_size < 1:
        raise UserError(f"--image-size must be a positive integer, got {args.image_size}")
    check_crop_size("--image-size", args.image_size)
    check_output_folder("--out", config.out)
    RunDir(config.out).check_start(task.identity() if task is not None else None, config.resume)
    return config


def _as_option(message: str) -> str:
    """TrainConfig names fields (batch_size); the user typed options (--batch-size)."""
    first, _, rest = message.partition(" ")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    return f"--{first.replace('_', '-')} {rest}" if first in fields else message


def train_from_args(task: Task, args: argparse.Namespace) -> TrainResult:
    """``config_from_args`` then ``Trainer(task, config).fit()``; problems of the run
    folder or its checkpoints raise ``RunDirError`` / ``CheckpointError`` (UserErrors)."""
    return Trainer(task, config_from_args(args, task)).fit()


def add_val_data_arg(group) -> None:
    """``--val-data DIR``, for families that validate on the bundled photos by default."""
    group.add_argument(
        "--val-data",
        metavar="DIR",
        help="folder of validation images (default: the bundled "
        "validation photos without --data, no validation with it)",
    )


def check_image_folders(*folders) -> None:
    """Each folder given (None skipped) exists and holds images, or a DataError (a UserError),
    before anything heavy runs."""
    for folder in folders:
        if folder is not None:
            find_images(folder)


def run_training(task: Task, args: argparse.Namespace) -> int:
    """``train_from_args`` for a ``train`` command, printing the outcome. A data problem found
    in a DataLoader worker carries the worker's traceback in its message: only its last line,
    the problem itself, is kept."""
    try:
        result = train_from_args(task, args)
    except DataError as exc:
        raise DataError(str(exc).strip().splitlines()[-1]) from None
    print(f"trained to step {result.step}; latest checkpoint {result.latest_checkpoint}")
    return 0
