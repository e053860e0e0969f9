"""``--compile`` / ``--compile-mode`` on the inference commands (embed, extract, encode, decode,
compress, decompress): the named parts of the loaded network through ``torch.compile``
(``stegafast.train.compile_parts``).

Compiling takes seconds to a minute per part on a CPU, and again for a second image size,
while one image takes milliseconds: it pays only over many images of one size (the
measurements are in the README (section "Training speed")). Outputs stay valid for the eager commands (a
file compressed compiled decompresses eagerly and the other way round), because the parts that
both sides of a codec must compute identically are never compiled.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from torch import nn

from ..errors import UserError
from ..train import COMPILE_MODES, compile_parts

__all__ = ["add_compile_args", "check_compile_args", "compile_from_args"]


def add_compile_args(p: argparse.ArgumentParser) -> None:
    """``--compile`` and ``--compile-mode`` of an inference command."""
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the network (the first image compiles for seconds: pays only over many images)",
    )
    p.add_argument(
        "--compile-mode", choices=COMPILE_MODES, help="torch.compile mode, with --compile (default: default)"
    )


def check_compile_args(args: argparse.Namespace) -> None:
    """A UserError for ``--compile-mode`` without ``--compile``."""
    if args.compile_mode is not None and not args.compile:
        raise UserError(f"--compile-mode {args.compile_mode} needs --compile")


def compile_from_args(args: argparse.Namespace, model: nn.Module, parts: Sequence[str]) -> nn.Module:
    """``model`` with ``parts`` (``compile_parts``: none, the whole model) compiled in place when
    ``--compile`` was given; returns ``model``."""
    check_compile_args(args)
    if args.compile:
        compile_parts(model, parts, args.compile_mode or "default")
    return model
