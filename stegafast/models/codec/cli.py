"""`stegafast codec train|compress|decompress|evaluate`: the learned image codec.

* ``train``: the shared engine's options plus ``--model hyperprior|dcae``,
  ``--preset`` (DCAE: ``paper``, the default, for GPUs; ``small`` for CPUs),
  ``--lmbda``, ``--N``, ``--M`` and ``--quantization``; default data are the
  bundled photographs. Defaults (``defaults.py``): gradient clipping 1.0, one
  10x learning-rate drop at 80% of ``--steps``, 256 px crops when the data allow
  them. The DCAE paper's recipe: ``--lmbda`` one of 0.0018, 0.0035, 0.0067,
  0.013, 0.025, 0.05, ``--amp bf16`` or ``fp16`` on a GPU.
* ``compress IMG -o FILE.sfc --checkpoint C``: any image size (padded to a
  multiple of 64, cropped back on decoding); grayscale and RGBA become RGB.
* ``decompress FILE.sfc -o IMG.png --checkpoint C``: needs the checkpoint that
  wrote the file (any other is refused).
* ``evaluate --checkpoint C [C ...] [--data DIR] [--out DIR]``: bpp from the real
  file sizes, PSNR and MS-SSIM against JPEG and WebP (Pillow) on the same
  images (default: the held-out bundled photographs, at full size); writes
  ``rd.json`` and ``rd.png`` into ``--out`` and prints the table's summary.

``--checkpoint`` takes a checkpoint file or a run folder (its best checkpoint
by validation loss, else its latest); the checkpoint carries the architecture
and the CDF tables. Mistakes (missing or unreadable files, a corrupt,
truncated or foreign .sfc file, a checkpoint of another model) are one error
line and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ...cli.common import (
    add_checkpoint_and_device,
    add_family,
    check_at_least,
    check_not_an_input,
    check_output_file,
    check_output_folder,
    default_to_bundled,
)
from ...cli.compile_args import add_compile_args, check_compile_args, compile_from_args
from ...cli.train_args import add_train_parser, add_val_data_arg, check_image_folders, run_training
from ...data import find_images, load_image, save_image
from ...device import DEVICE_CHOICES, resolve_device
from ...entropy import QUANTIZATION_MODES
from ...errors import UserError
from ...io import write_bytes
from .architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE
from .config import DCAE_PRESETS, DEFAULT_LMBDA, MULTIPLE, CodecConfig, DcaeConfig
from .defaults import LR_DROP_AT, LR_DROP_GAMMA, PREFERRED_CROP, default_crop_size, default_lr_schedule
from .evaluate import JPEG_QUALITIES, REPORT_FILES, WEBP_QUALITIES, evaluate, evaluation_images, write_report
from .fileformat import read_sfc
from .inference import ImageCodec, load_codec
from .task import CodecTask


def add_parser(sub) -> None:
    """Add ``stegafast codec`` and its verbs (train, compress, decompress, evaluate) to ``sub``."""
    add_family(
        sub,
        "codec",
        "learned image compression: train, compress, decompress, evaluate",
        (_add_train, _add_compress, _add_decompress, _add_evaluate),
    )


# ---- train ---------------------------------------------------------------------------------------


def _add_train(verbs) -> None:
    p = add_train_parser(verbs, "train a learned codec (hyperprior or DCAE)")
    g, defaults = p.add_argument_group("codec"), CodecConfig()
    g.add_argument(
        "--model",
        choices=tuple(ARCHITECTURES),
        default=DEFAULT_ARCHITECTURE,
        help="the architecture: the mean-scale hyperprior or DCAE (default: %(default)s)",
    )
    g.add_argument(
        "--preset",
        choices=tuple(DCAE_PRESETS),
        help="DCAE size: paper (N=192, M=320, 122.8M parameters; the default) or small (6.7M, for CPUs)",
    )
    g.add_argument(
        "--lmbda",
        type=float,
        default=DEFAULT_LMBDA,
        help="rate-distortion trade-off of lmbda * 255^2 * MSE + bpp (default: %(default)s)",
    )
    g.add_argument(
        "--N",
        type=int,
        help=f"transform and hyper-latent channels (hyperprior; default: {defaults.N}) or hyper-transform "
        "channels (DCAE; default: the preset's)",
    )
    g.add_argument("--M", type=int, help=f"latent channels (default: {defaults.M}, DCAE: the preset's)")
    g.add_argument(
        "--quantization",
        choices=QUANTIZATION_MODES,
        default=defaults.quantization,
        help="training quantisation: additive uniform noise or straight-through rounding (default: %(default)s)",
    )
    add_val_data_arg(g)
    p.set_defaults(out="runs/codec", steps=3000, batch_size=8, image_size=None, lr_schedule=None, clip_norm=1.0)
    p.set_defaults(run=run_train)
    _reword_help(p, "--image-size", f"training crop size (default: {PREFERRED_CROP} when the data allow it)")
    _reword_help(
        p,
        "--lr-schedule",
        "constant|linear|cosine|step[,warmup=N][,final=F][,every=N][,gamma=G] "
        f"(default: a {round(1 / LR_DROP_GAMMA)}x drop at {round(100 * LR_DROP_AT)}%% of the steps)",
    )


def _reword_help(p: argparse.ArgumentParser, option: str, text: str) -> None:
    """The help of the shared ``option``, which the codec's own default makes wrong."""
    next(a for a in p._actions if option in a.option_strings).help = text


def _apply_run_defaults(args: argparse.Namespace) -> None:
    """The defaults that depend on the run: the LR drop at 80% of ``--steps``, the crop size the data allow."""
    if args.lr_schedule is None:
        args.lr_schedule = default_lr_schedule(args.steps)
    if args.image_size is None:
        args.image_size, note = default_crop_size(args.data)
        if note:
            print(f"codec train: {note}", file=sys.stderr)


def _model_config(args: argparse.Namespace) -> CodecConfig | DcaeConfig:
    """The architecture's config from --model, --preset, --N, --M and --quantization."""
    sizes = {name: value for name, value in (("N", args.N), ("M", args.M)) if value is not None}
    if args.model == "dcae":
        base = DCAE_PRESETS[args.preset or "paper"]
        return dataclasses.replace(base, **sizes, quantization=args.quantization)
    if args.preset is not None:
        raise UserError(f"--preset is for --model dcae, not --model {args.model}")
    return CodecConfig(**sizes, quantization=args.quantization)


def _task_from_args(args: argparse.Namespace) -> CodecTask:
    check_image_folders(args.data, args.val_data)
    _apply_run_defaults(args)
    try:
        config = _model_config(args)
    except ValueError as exc:
        raise UserError(f"--{exc}") from None
    if args.image_size < MULTIPLE or args.image_size % MULTIPLE:
        raise UserError(f"--image-size must be a positive multiple of {MULTIPLE}, got {args.image_size}")
    if not args.lmbda > 0:
        raise UserError(f"--lmbda must be positive, got {args.lmbda}")
    return CodecTask(config, lmbda=args.lmbda, data=args.data, val_data=args.val_data, image_size=args.image_size)


def run_train(args: argparse.Namespace) -> int:
    """``stegafast codec train``: train a ``CodecTask`` built from the options through the engine; returns its exit
    status."""
    task = _task_from_args(args)
    return run_training(task, args)


# ---- shared pieces -------------------------------------------------------------------------------


def _input_file(path: str, what: str) -> Path:
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{what} {path} does not exist or is not a file")
    return file


# ---- compress / decompress -----------------------------------------------------------------------


# What --compile compiles: the transforms only one side runs. The hyper-synthesis and the
# context networks stay eager: encoder and decoder must compute them bit for bit alike (their
# outputs pick the CDFs the range coder uses), and inductor's fused kernels round differently
# from eager ops; the range coder itself is no tensor code at all.
ENCODER_PARTS = ("g_a", "h_a")
DECODER_PARTS = ("g_s",)


def _compiled(codec: ImageCodec, args: argparse.Namespace, parts: tuple[str, ...]) -> ImageCodec:
    """``codec`` with its model's ``parts`` compiled when ``--compile`` was given (after its memory
    footprint's probes, which must run eagerly)."""
    if args.compile:
        codec.footprint.fit()
    compile_from_args(args, codec.model, parts)
    return codec


def _add_compress(verbs) -> None:
    p = verbs.add_parser("compress", help="compress an image into an .sfc file")
    p.add_argument("image", metavar="IMG", help="the image to compress (PNG or JPEG)")
    p.add_argument("-o", "--out", required=True, metavar="FILE.sfc", help="the compressed file to write")
    add_checkpoint_and_device(p, "codec", bundled="codec")
    add_compile_args(p)
    p.set_defaults(run=run_compress)


def run_compress(args: argparse.Namespace) -> int:
    """``stegafast codec compress``: encode one image file into an ``.sfc`` file and print its size and bpp.

    Returns 0; raises ``UserError`` for a missing input, a bad output path or an image the codec cannot encode.
    """
    check_compile_args(args)
    out = check_output_file("-o", args.out, ".sfc", inputs=(args.image, args.checkpoint))
    image = load_image(_input_file(args.image, "image"), "RGB")
    codec = _compiled(load_codec(args.checkpoint, resolve_device(args.device)), args, ENCODER_PARTS)
    try:
        data = codec.compress(image)
    except ValueError as exc:
        raise UserError(f"{args.image}: {exc}") from None
    write_bytes(out, data)
    h, w = image.shape[-2:]
    print(f"{args.image}: {h}x{w} -> {out} ({len(data)} bytes, {8 * len(data) / (h * w):.4f} bpp)")
    return 0


def _add_decompress(verbs) -> None:
    p = verbs.add_parser("decompress", help="decode an .sfc file into a PNG image")
    p.add_argument("file", metavar="FILE.sfc", help="the compressed file")
    p.add_argument("-o", "--out", required=True, metavar="IMG.png", help="the image to write (PNG)")
    add_checkpoint_and_device(p, "codec", bundled="codec")
    add_compile_args(p)
    p.set_defaults(run=run_decompress)


def run_decompress(args: argparse.Namespace) -> int:
    """``stegafast codec decompress``: decode an ``.sfc`` file to a PNG; returns 0.

    The file's container is checked before the model loads, so a damaged file is a ``UserError`` naming it.
    """
    check_compile_args(args)
    out = check_output_file("-o", args.out, ".png", inputs=(args.file, args.checkpoint))
    data = _input_file(args.file, "file").read_bytes()
    read_sfc(data, name=args.file)  # a damaged file is reported before the model loads
    codec = _compiled(load_codec(args.checkpoint, resolve_device(args.device)), args, DECODER_PARTS)
    image = codec.decompress(data, name=args.file)
    save_image(image.cpu(), out)
    return 0


# ---- evaluate ------------------------------------------------------------------------------------


def _add_evaluate(verbs) -> None:
    p = verbs.add_parser("evaluate", help="rate-distortion against JPEG and WebP: rd.json and rd.png")
    p.add_argument(
        "--checkpoint",
        nargs="+",
        metavar="C",
        help="codec checkpoint files or run folders (several: one RD point each; default: the bundled one, "
        "stegafast/weights/codec.pt)",
    )
    default_to_bundled(p, "codec", many=True)
    p.add_argument("--device", default="auto", help=f"{DEVICE_CHOICES} (default: %(default)s)")
    p.add_argument(
        "--data",
        metavar="DIR",
        help="folder of test images, evaluated at full size (default: the held-out bundled photographs)",
    )
    p.add_argument("--out", default="rd", metavar="DIR", help="folder for rd.json and rd.png (default: %(default)s)")
    p.add_argument("--limit", type=int, metavar="N", help="evaluate at most N images")
    p.add_argument(
        "--jpeg-qualities",
        type=int,
        nargs="+",
        default=list(JPEG_QUALITIES),
        metavar="Q",
        help="JPEG qualities (default: %(default)s)",
    )
    p.add_argument(
        "--webp-qualities",
        type=int,
        nargs="+",
        default=list(WEBP_QUALITIES),
        metavar="Q",
        help="WebP qualities (default: %(default)s)",
    )
    p.set_defaults(run=run_evaluate)


def _check_evaluate_args(args: argparse.Namespace) -> None:
    check_at_least("--limit", args.limit, 1)
    for name, qualities in (("--jpeg-qualities", args.jpeg_qualities), ("--webp-qualities", args.webp_qualities)):
        bad = [q for q in qualities if not 0 <= q <= 100]
        if bad:
            raise UserError(f"{name}: qualities must be in 0..100, got {bad[0]}")
    _check_report_outputs(args)


def _check_report_outputs(args: argparse.Namespace) -> None:
    """--out is a folder that can take rd.json and rd.png, neither of which is an input."""
    out = check_output_folder("--out", args.out)
    inputs = [*args.checkpoint, *(find_images(args.data) if args.data is not None else [])]
    for name in REPORT_FILES:
        if out.is_dir():
            check_output_file("--out", out / name, inputs=inputs)
        else:
            check_not_an_input("--out", out / name, inputs)


def run_evaluate(args: argparse.Namespace) -> int:
    """``stegafast codec evaluate``: rate-distortion points of the checkpoints (and JPEG/WebP at the given qualities).

    Prints one line per point (bpp, PSNR in dB, MS-SSIM) and writes ``rd.json`` and ``rd.png`` into ``--out``; returns
    0.
    """
    _check_evaluate_args(args)
    images = evaluation_images(args.data, args.limit)
    device = resolve_device(args.device)
    codecs = [(str(c), load_codec(c, device)) for c in args.checkpoint]
    table = evaluate(
        codecs,
        images,
        jpeg_qualities=args.jpeg_qualities,
        webp_qualities=args.webp_qualities,
        log=lambda msg: print(msg, file=sys.stderr),
    )
    table["data"] = args.data or "bundled validation photographs"
    json_path, png_path = write_report(table, args.out)
    for p in table["points"]:
        ms = f"{p['ms_ssim']:.4f}" if p["ms_ssim"] is not None else "-"
        print(f"{p['codec']:9s} {p['setting']:>12s}  {p['bpp']:7.4f} bpp  {p['psnr']:6.2f} dB  MS-SSIM {ms}")
    if table["summary"]:
        print(f"stegafast: {table['summary']}")
    print(f"wrote {json_path} and {png_path}")
    return 0
