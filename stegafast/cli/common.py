"""Pieces every command shares: a family's verbs, the ``--checkpoint``/``--device`` options
(with the size limits of ``stegafast.data.limits``), and the argument checks that run before any work.

Outputs are checked before anything heavy runs, the same way in every command:
``check_output_file`` (a file: its suffix, a writable folder, not a folder itself,
not one of the command's inputs) and ``check_output_folder`` (a folder that is
not a file and can be created or written into). ``check_finite_floats`` (run by
``stegafast.cli.main`` on every command's parsed options) refuses NaN and
infinite values of any float option.

Checkpoints become models through ``stegafast.train.load_trained`` (which picks a run
folder's best checkpoint by the task's own ``monitor_mode``).

``UserError`` (``stegafast.errors``) and ``resolve_device`` (``stegafast.device``) are
re-exported here for the commands that imported them from this module.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ..config import check_seed
from ..data.limits import PIXELS_ENV, set_max_pixels
from ..device import DEVICE_CHOICES, resolve_device
from ..errors import OutputError, UserError
from ..train.bundled import bundled_checkpoint

__all__ = [
    "UserError",
    "resolve_device",
    "add_family",
    "add_checkpoint_and_device",
    "default_to_bundled",
    "resolve_bundled_checkpoint",
    "check_at_least",
    "check_at_most",
    "check_output_file",
    "check_output_folder",
    "check_not_an_input",
    "check_not_inputs",
    "check_finite_floats",
    "apply_limit_options",
    "check_crop_size",
    "check_seed_option",
    "MAX_CROP_SIZE",
]

PathLike = str | os.PathLike

MAX_CROP_SIZE = 4096  # pixels a side: a batch of larger crops fits in no accelerator's memory


def add_family(sub, name: str, help: str, verbs: Sequence[Callable[[object], None]]) -> None:
    """The ``stegafast <name> VERB`` command: its parser under ``sub`` (the top-level
    sub-parsers), each of ``verbs`` adding one verb to it (``verbs.add_parser(...)``
    and ``set_defaults(run=...)``)."""
    p = sub.add_parser(name, help=help)
    family_verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    for add_verb in verbs:
        add_verb(family_verbs)


def add_checkpoint_and_device(p: argparse.ArgumentParser, what: str, bundled: str | None = None) -> None:
    """``--checkpoint C`` (a checkpoint file or run folder of ``what``), ``--device`` and
    ``--max-pixels`` (every command that loads a checkpoint reads images or .sfc files;
    ``apply_limit_options`` applies it). With ``bundled`` (a family), ``--checkpoint``
    may be left out: it is then that family's bundled checkpoint (``default_to_bundled``)."""
    if bundled is None:
        p.add_argument("--checkpoint", required=True, metavar="C", help=f"a {what} checkpoint file or run folder")
    else:
        shipped = f"(default: the bundled one, stegafast/weights/{bundled}.pt)"
        p.add_argument("--checkpoint", metavar="C", help=f"a {what} checkpoint file or run folder {shipped}")
        default_to_bundled(p, bundled)
    p.add_argument("--device", default="auto", help=f"{DEVICE_CHOICES} (default: %(default)s)")
    p.add_argument(
        "--max-pixels",
        type=int,
        metavar="N",
        help=f"largest image (height x width) to read or decode (default: {PIXELS_ENV} or Pillow's limit)",
    )


def default_to_bundled(p: argparse.ArgumentParser, family: str, many: bool = False) -> None:
    """A command whose ``--checkpoint`` (default None; ``many``: a list of them) falls back to ``family``'s
    bundled checkpoint; ``resolve_bundled_checkpoint`` (run by ``stegafast.cli.main``) puts it in."""
    p.set_defaults(bundled_family=family, bundled_many=many)


def resolve_bundled_checkpoint(args: argparse.Namespace) -> None:
    """``args.checkpoint`` left out by a command of ``default_to_bundled``: its family's bundled file
    (a one-line CheckpointError when this installation ships none)."""
    family = getattr(args, "bundled_family", None)
    if family is None or getattr(args, "checkpoint", None) is not None:
        return
    path = bundled_checkpoint(family)
    args.checkpoint = [path] if getattr(args, "bundled_many", False) else path


def check_at_least(option: str, value: int | None, minimum: int) -> None:
    """A UserError ``--option must be at least M, got V`` unless ``value`` (None: not given) >= ``minimum``."""
    if value is not None and value < minimum:
        raise UserError(f"{option} must be at least {minimum}, got {value}")


def check_at_most(option: str, value: int | None, maximum: int, why: str = "") -> None:
    """A UserError ``--option must be at most M, got V`` (``why`` appended) when ``value`` > ``maximum``."""
    if value is not None and value > maximum:
        raise UserError(f"{option} must be at most {maximum}{why}, got {value}")


def check_crop_size(option: str, value: int | None) -> None:
    """The side of the square crops a command trains or evaluates on is at most MAX_CROP_SIZE."""
    check_at_most(option, value, MAX_CROP_SIZE, " (pixels a side of a crop)")


def check_seed_option(option: str, value: int) -> None:
    """A UserError unless ``value`` is a seed torch takes (0 .. 2**64 - 1)."""
    try:
        check_seed(option, value)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _identities(path: PathLike) -> list:
    """What makes two paths one file: the resolved path, and for an existing file its
    (device, inode), which also catches hard links."""
    path = Path(path)
    found: list = [str(path.resolve())]
    try:
        info = os.stat(path)
        found.append((info.st_dev, info.st_ino))
    except OSError:
        pass
    return found


def check_not_inputs(option: str, outputs: Iterable[PathLike], inputs: Iterable[PathLike | None]) -> None:
    """An OutputError naming the first of ``outputs`` that is one of ``inputs`` (the same
    path once resolved, through a symbolic link, or a hard link to it): writing it would
    destroy what the command reads. None among the inputs is skipped."""
    sources = {key: source for source in inputs if source is not None for key in _identities(source)}
    for out in outputs:
        source = next((sources[key] for key in _identities(out) if key in sources), None)
        if source is not None:
            raise OutputError(f"{option} {out} is also an input ({source}); refusing to write over it")


def check_not_an_input(option: str, out: PathLike, inputs: Iterable[PathLike | None]) -> None:
    """``check_not_inputs`` for one output."""
    check_not_inputs(option, [out], inputs)


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_writable_folder(option: str, shown: PathLike, folder: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {shown}: cannot write into {folder} (permission denied or read-only)")


def check_output_file(
    option: str, path: PathLike, suffix: str | None = None, why: str = "", *, inputs: Iterable[PathLike] = ()
) -> Path:
    """The output file ``path`` given with ``option``, checked before any work: with ``suffix``
    (".png") its name ends so (``why``, e.g. " (a lossy format would ...)", follows the message);
    it is not a folder; its folder exists and is writable; it is none of ``inputs`` (the files
    the command reads: images, the checkpoint). Raises a UserError (OutputError) naming the problem."""
    out = Path(path)
    if suffix is not None and out.suffix.lower() != suffix:
        raise UserError(f"{option} {path}: the output must be a {suffix} file{why}")
    if out.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file name")
    if not out.parent.is_dir():
        what = "is not a folder" if out.parent.exists() else "does not exist"
        raise OutputError(f"{option} {path}: folder {out.parent} {what}")
    _check_writable_folder(option, path, out.parent)
    if out.exists() and not os.access(out, os.W_OK):
        raise OutputError(f"{option} {path} is read-only; refusing to replace it")
    check_not_an_input(option, out, inputs)
    return out


def check_output_folder(option: str, path: PathLike) -> Path:
    """The output folder ``path`` given with ``option``: a folder or nothing yet (it is created
    when written), not an existing file nor under one, and writable (or creatable). Raises an
    OutputError (a UserError) naming the problem. The files a command writes into it are
    checked against its inputs with ``check_not_inputs``."""
    out = Path(path)
    existing = _nearest_existing(out)
    if not existing.is_dir():
        where = "" if existing == out.absolute() else f" ({existing} is a file)"
        raise OutputError(f"{option} {path} is a file, not a folder{where}")
    _check_writable_folder(option, path, existing)
    return out


def _float_values(value) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, float)]
    return []


def check_finite_floats(args: argparse.Namespace) -> None:
    """A UserError ``--option must be a finite number, got inf`` for the first NaN or
    infinite float among the parsed options (single values and lists). One check for
    every command: argparse's ``type=float`` accepts "inf" and "nan", which no option means."""
    for dest, value in sorted(vars(args).items()):
        bad = [v for v in _float_values(value) if not math.isfinite(v)]
        if bad:
            raise UserError(f"--{dest.replace('_', '-')} must be a finite number, got {bad[0]}")


def apply_limit_options(args: argparse.Namespace) -> None:
    """Make a command's ``--max-pixels`` the process's pixel limit (``stegafast.data.limits``),
    or, without it, the environment's or Pillow's again; run by ``stegafast.cli.main``
    before every command."""
    set_max_pixels(getattr(args, "max_pixels", None))
