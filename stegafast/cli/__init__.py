"""The `stegafast` command: `stegafast <command> ...`.

Each command module adds its sub-parser and a `run(args)` function. A user
mistake raises ``stegafast.errors.UserError`` or one of its subclasses (any
layer's DataError, CheckpointError, RunDirError, DeviceError, ...), which
becomes one error line and exit status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import UserError
from ..models.autoencoder import cli as autoencoder
from ..models.codec import cli as codec
from ..models.stamp import cli as stamp
from ..models.stego import cli as stego
from . import demo, info
from .common import apply_limit_options, check_finite_floats, resolve_bundled_checkpoint
from .extras import optional_command

# diffusers is an optional dependency (the [diffusion] extra): without it the command says so
diffusion = optional_command("stegafast.models.diffusion.cli", "diffusers", "diffusion", "diffusion")

COMMANDS = (info, demo, stego, codec, stamp, autoencoder, diffusion)


def build_parser() -> argparse.ArgumentParser:
    """The ``stegafast`` argument parser, with one sub-command per entry of ``COMMANDS``."""
    parser = argparse.ArgumentParser(prog="stegafast", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return its exit status.

    0 on success, 2 after printing a ``UserError`` as one line on stderr, 130 on Ctrl-C; argparse itself exits 2 on
    unknown options.
    """
    args = build_parser().parse_args(argv)
    try:
        check_finite_floats(args)
        apply_limit_options(args)
        resolve_bundled_checkpoint(args)
        return args.run(args) or 0
    except UserError as exc:
        print(f"stegafast: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stegafast: interrupted", file=sys.stderr)
        return 130
