"""`stegafast autoencoder train|reconstruct|encode|visualize|evaluate`: the grayscale autoencoder.

* ``train``: the shared engine's options plus ``--preset`` (tiny, small, medium, large) and
  overrides of its architecture, ``--input-size H W`` (the training crops), ``--loss``,
  ``--checkpointing`` (``--compile`` is the engine's, as for every family); default data are the bundled
  grayscale photographs.
* ``reconstruct IMG -o OUT.png``: the reconstruction at the image's own size.
* ``encode IMG -o OUT.npy``: the flat float32 latent.
* ``visualize IMG -o OUT.png``: input | reconstruction | attention matrix | saliency overlay.
* ``evaluate [--data DIR] [--json FILE.json]``: PSNR / SSIM / MSE as JSON on stdout.

Images of any mode are read as grayscale (L). ``--checkpoint`` takes a checkpoint file or a
run folder (its best checkpoint by validation PSNR, else its latest). Mistakes are one error
line and exit status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ...cli.common import (
    MAX_CROP_SIZE,
    add_checkpoint_and_device,
    add_family,
    check_at_least,
    check_output_file,
)
from ...cli.train_args import add_train_parser, add_val_data_arg, check_image_folders, run_training
from ...data import find_images, load_image, save_image
from ...device import DEVICE_CHOICES, resolve_device
from ...errors import UserError
from ...io import strict_json_dumps, write_json
from .config import BLOCK_TYPES, LATENT_STRATEGIES, MAX_SIDE, PRESETS, AutoencoderConfig, preset_config
from .evaluate import evaluate, evaluation_images
from .inference import encode, load_autoencoder, reconstruct, write_latent
from .losses import LOSSES
from .model import AutoencoderCNN
from .task import AutoencoderTask
from .visualize import check_patches, write_visualization


def add_parser(sub) -> None:
    """Add ``stegafast autoencoder`` and its verbs (train, reconstruct, encode, visualize, evaluate) to ``sub``."""
    add_family(
        sub,
        "autoencoder",
        "grayscale autoencoder: train, reconstruct, encode, visualize, evaluate",
        (_add_train, _add_reconstruct, _add_encode, _add_visualize, _add_evaluate),
    )


# ---- train ---------------------------------------------------------------------------------------


def _add_architecture_args(g) -> None:
    g.add_argument("--preset", choices=tuple(PRESETS), default="small", help="model size (default: %(default)s)")
    g.add_argument("--latent-size", type=int, metavar="L", help="latent size (default: the preset's)")
    g.add_argument("--blocks", nargs="+", choices=BLOCK_TYPES, metavar="BLOCK", help="block type of each stage")
    g.add_argument("--channels", nargs="+", type=int, metavar="C", help="channels of each stage")
    g.add_argument("--strides", nargs="+", type=int, metavar="S", help="stride of each stage")
    g.add_argument("--latent-strategy", choices=LATENT_STRATEGIES, default="conv", help="(default: %(default)s)")
    g.add_argument("--no-attention", action="store_true", help="no self-attention over the final patches")
    g.add_argument(
        "--input-size",
        nargs=2,
        type=int,
        metavar=("H", "W"),
        help="nominal input size and training crop (default: 201 201; --image-size S means S S)",
    )


def _add_train(verbs) -> None:
    p = add_train_parser(verbs, "train the autoencoder")
    g = p.add_argument_group("autoencoder")
    _add_architecture_args(g)
    g.add_argument("--loss", choices=LOSSES, default="l1", help="reconstruction loss (default: %(default)s)")
    g.add_argument("--l1-weight", type=float, default=1.0, help="L1 weight with --loss both (default: %(default)s)")
    g.add_argument("--mse-weight", type=float, default=1.0, help="MSE weight with --loss both (default: %(default)s)")
    g.add_argument("--checkpointing", action="store_true", help="gradient checkpointing of the encoder/decoder stages")
    add_val_data_arg(g)
    p.set_defaults(out="runs/autoencoder", steps=2000, batch_size=8, image_size=None, run=run_train)


def _input_size(args: argparse.Namespace) -> tuple[int, int]:
    if args.input_size is not None and args.image_size is not None:
        raise UserError("give --input-size H W or --image-size S, not both")
    size = tuple(args.input_size) if args.input_size is not None else None
    if size is None:
        size = (args.image_size, args.image_size) if args.image_size is not None else (201, 201)
    limit = min(MAX_SIDE, MAX_CROP_SIZE)
    if not all(1 <= v <= limit for v in size):
        raise UserError(f"--input-size sides must be in 1..{limit}, got {size[0]} {size[1]}")
    return size


def model_config_from_args(args: argparse.Namespace) -> AutoencoderConfig:
    """The architecture of ``train``'s options: ``--preset`` with its ``--latent-size``, ``--blocks``, ``--channels``
    and ``--strides`` overrides, ``--latent-strategy``, ``--no-attention`` and the input size (``--input-size H W``
    or ``--image-size S``, default 201 201).

    A ``UserError`` names both size options given, a side out of range, or a setting the config refuses.
    """
    overrides = {
        "latent_size": args.latent_size,
        "block_config": args.blocks,
        "channel_config": args.channels,
        "stride_config": args.strides,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    try:
        return preset_config(
            args.preset,
            _input_size(args),
            latent_strategy=args.latent_strategy,
            use_attention=not args.no_attention,
            **overrides,
        )
    except ValueError as exc:
        raise UserError(f"--preset {args.preset}: {exc}") from None


def _task_from_args(args: argparse.Namespace) -> AutoencoderTask:
    config = model_config_from_args(args)
    try:
        task = AutoencoderTask(
            config,
            data=args.data,
            val_data=args.val_data,
            loss=args.loss,
            l1_weight=args.l1_weight,
            mse_weight=args.mse_weight,
            checkpointing=args.checkpointing,
        )
    except ValueError as exc:  # the loss settings: "l1_weight must be ..." -> "--l1-weight must be ..."
        first, _, rest = str(exc).partition(" ")
        raise UserError(f"--{first.replace('_', '-')} {rest}") from None
    check_image_folders(args.data, args.val_data)
    return task


def run_train(args: argparse.Namespace) -> int:
    """``stegafast autoencoder train``: print the model's size, then train an ``AutoencoderTask`` built from the
    options through the engine; returns 0. Bad options or image folders are a ``UserError``."""
    task = _task_from_args(args)
    config = task.model_config
    params = AutoencoderCNN.from_config(config).parameter_count()
    print(f"autoencoder {args.preset}: {params} parameters, latent {config.flat_latent_size}, crops {task.crop_size}")
    return run_training(task, args)


# ---- reconstruct / encode / visualize ------------------------------------------------------------


def _add_image_verb(verbs, name: str, help: str, suffix: str, run) -> None:
    p = verbs.add_parser(name, help=help)
    p.add_argument("image", metavar="IMG", help="the image (PNG or JPEG, read as grayscale)")
    p.add_argument("-o", "--out", required=True, metavar=f"FILE{suffix}", help=f"the {suffix} file to write")
    add_checkpoint_and_device(p, "autoencoder")
    p.set_defaults(run=run, suffix=suffix)


def _add_reconstruct(verbs) -> None:
    _add_image_verb(verbs, "reconstruct", "reconstruct an image (PNG)", ".png", run_reconstruct)


def _add_encode(verbs) -> None:
    _add_image_verb(verbs, "encode", "write an image's flat latent as .npy", ".npy", run_encode)


def _add_visualize(verbs) -> None:
    _add_image_verb(
        verbs, "visualize", "input, reconstruction, attention matrix and saliency in one PNG", ".png", run_visualize
    )


def _read_input(args: argparse.Namespace):
    """The checked output path and the grayscale image (1, H, W) of an image verb."""
    out = check_output_file("-o", args.out, args.suffix, inputs=(args.image, args.checkpoint))
    if not Path(args.image).is_file():
        raise UserError(f"image {args.image} does not exist or is not a file")
    image = load_image(args.image, "L")
    h, w = image.shape[-2:]
    if h > MAX_SIDE or w > MAX_SIDE:
        raise UserError(f"{args.image}: {h}x{w}; sides must be at most {MAX_SIDE}")
    return out, image


def run_reconstruct(args: argparse.Namespace) -> int:
    """``stegafast autoencoder reconstruct``: write the reconstruction of one image, at its own size, as a PNG;
    returns 0. A missing image, a bad output path, a side over MAX_SIDE or an unusable checkpoint is a ``UserError``."""
    out, image = _read_input(args)
    model = load_autoencoder(args.checkpoint, resolve_device(args.device))
    save_image(reconstruct(model, image), out)
    print(f"{args.image}: {image.shape[-2]}x{image.shape[-1]} -> {out}")
    return 0


def run_encode(args: argparse.Namespace) -> int:
    """``stegafast autoencoder encode``: write one image's flat float32 latent as a .npy file; returns 0. A missing
    image, a bad output path, a side over MAX_SIDE or an unusable checkpoint is a ``UserError``."""
    out, image = _read_input(args)
    model = load_autoencoder(args.checkpoint, resolve_device(args.device))
    latent = encode(model, image)
    write_latent(out, latent)
    print(f"{args.image}: latent of {latent.shape[0]} values -> {out}")
    return 0


def run_visualize(args: argparse.Namespace) -> int:
    """``stegafast autoencoder visualize``: write one PNG of input | reconstruction | attention matrix | saliency
    overlay; returns 0. A missing image, a bad output path, a side over MAX_SIDE, an unusable checkpoint or more patches
    than the attention matrix is drawn for (MAX_PATCHES) is a ``UserError``."""
    out, image = _read_input(args)
    model = load_autoencoder(args.checkpoint, resolve_device(args.device))
    try:
        check_patches(model, image)
    except ValueError as exc:
        raise UserError(f"{args.image}: {exc}") from None
    write_visualization(model, image, out)
    print(f"wrote {out}")
    return 0


# ---- evaluate ------------------------------------------------------------------------------------


def _add_evaluate(verbs) -> None:
    p = verbs.add_parser("evaluate", help="PSNR, SSIM and MSE of the reconstructions, as JSON")
    p.add_argument("--checkpoint", required=True, metavar="C", help="an autoencoder checkpoint file or run folder")
    p.add_argument("--device", default="auto", help=f"{DEVICE_CHOICES} (default: %(default)s)")
    p.add_argument(
        "--data",
        metavar="DIR",
        help="folder of test images, centre crops at the model's input size "
        "(default: the held-out bundled grayscale photographs)",
    )
    p.add_argument("--limit", type=int, metavar="N", help="evaluate at most N images")
    p.add_argument("--json", metavar="FILE.json", help="also write the JSON to this file")
    p.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """``stegafast autoencoder evaluate``: print the PSNR / SSIM / MSE table of the reconstructions as JSON (also
    written to ``--json`` when given); returns 0. ``--limit`` under 1, a bad ``--json`` path or an unusable
    checkpoint is a ``UserError``."""
    check_at_least("--limit", args.limit, 1)
    inputs = [args.checkpoint, *(find_images(args.data) if args.data is not None else [])]
    out = check_output_file("--json", args.json, ".json", inputs=inputs) if args.json is not None else None
    model = load_autoencoder(args.checkpoint, resolve_device(args.device))
    table = evaluate(model, evaluation_images(args.data, model.config.input_size, args.limit))
    table["data"] = args.data or "bundled grayscale validation photographs"
    if out is not None:
        write_json(out, table, sort_keys=False)
    print(strict_json_dumps(table, indent=2))
    return 0
