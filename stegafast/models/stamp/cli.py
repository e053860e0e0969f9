"""`stegafast stamp train|encode|decode|evaluate|export-onnx`: the StegaStamp commands.

* ``train``: the shared engine's options plus the family's (``--no-gan``,
  ``--ramp-scale`` to shrink every loss and noise ramp for short runs,
  ``--preset paper`` for scripts/base.sh's loss weights, ``--no-jpeg``,
  ``--jpeg-rounding``, ``--reference-size`` and ``--jpeg-scale`` for the
  distortions' scaling with the image size, ``--lpips``, ...); explicit weight
  options override the preset's. ``--image-size`` is the model's size (a
  multiple of 16, at least 32; 400 by default as the original); default data
  are the bundled photographs.
* ``encode --checkpoint C (--image F | --images-dir D) --secret TEXT --out DIR``:
  writes ``DIR/<name>_hidden.png`` (the encoded image, at the input's own size)
  and ``DIR/<name>_residual.png`` (the residual + 0.5, as the original shows
  it); with ``--images-dir`` the folders under D are mirrored under DIR
  (``D/a/x.png`` gives ``DIR/a/x_hidden.png``). Two inputs that would give one
  output (``x.png`` and ``x.jpg`` side by side) and an output that is an input
  (``--out`` equal to D holding ``x_hidden.png``) are refused before anything is
  written. A secret of more than 7 UTF-8 bytes, with control characters or
  bytes that are not UTF-8 is a user error. Images of any size: see
  ``stegafast.models.stamp.inference``.
* ``decode --checkpoint C (--image F | --images-dir D)``: prints
  ``<path>: '<message>' (corrected N bits)`` or ``<path>: could not be decoded``
  per image. Exit status 0 when every image decoded, 1 when some did not (as
  grep's "not found"), 2 for a user mistake.
* ``evaluate --checkpoint C [--data DIR] [--json F.json]``: bit accuracy and BCH
  decode rates under real JPEG 50/75, blur, noise, warp and resize, and
  PSNR/SSIM, on S x S centre crops of held-out images (default: the bundled
  validation photographs, several crops each); see ``evaluation``. Prints JSON.
* ``export-onnx --checkpoint C --out DIR [--test]``: ``encoder.onnx`` and
  ``decoder.onnx`` (see ``onnx_export``); ``--test`` compares onnxruntime with
  PyTorch and exits 1 when they disagree.

``--checkpoint`` takes a checkpoint file or a run folder (its best checkpoint
by ``bit_acc_noised``, else its latest). Mistakes are one error line and exit
status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ...cli.common import (
    add_checkpoint_and_device,
    add_family,
    check_at_least,
    check_not_inputs,
    check_output_file,
    check_output_folder,
    check_seed_option,
    default_to_bundled,
)
from ...cli.compile_args import add_compile_args, check_compile_args, compile_from_args
from ...cli.train_args import add_train_parser, add_val_data_arg, check_image_folders, run_training
from ...data import find_images, image_size, load_image, save_image
from ...device import resolve_device
from ...errors import OutputError, UserError
from ...io import strict_json_dumps, write_text
from ...train.footprint import ImageFootprint
from .bch import check_message, decode_bits, encode_message
from .config import JPEG_SCALES, PRESETS, ROUNDINGS, StampLossConfig, StampModelConfig, StampNoiseConfig
from .evaluate import evaluate_robustness, evaluation_images
from .inference import decode_logits, encode_images, load_stamp
from .task import StampTask

DECODE_FAILED = 1


def add_parser(sub) -> None:
    """Add ``stegafast stamp`` and its verbs (train, encode, decode, evaluate, export-onnx) to ``sub``."""
    add_family(
        sub,
        "stamp",
        "StegaStamp watermarking: train, encode, decode, evaluate, export-onnx",
        (_add_train, _add_encode, _add_decode, _add_evaluate, _add_export),
    )


# ---- train ---------------------------------------------------------------------------------------


def _add_train(verbs) -> None:
    p = add_train_parser(verbs, "train the StegaStamp encoder and decoder")
    losses, noise = StampLossConfig(), StampNoiseConfig()
    g = p.add_argument_group("stamp")
    add_val_data_arg(g)
    g.add_argument("--no-gan", action="store_true", help="train without the WGAN critic")
    g.add_argument(
        "--ramp-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="multiply every loss and noise ramp and delay (in steps) by F, e.g. 0.02 to fit the "
        "original's 140k-step schedule into 2.8k steps (default: %(default)s)",
    )
    g.add_argument(
        "--noise-delay",
        type=int,
        default=noise.noise_delay,
        metavar="N",
        help="train on undistorted images for the first N steps, then ramp the distortions in: a curriculum for "
        "short runs (scaled by --ramp-scale; default: %(default)s, the original's schedule)",
    )
    g.add_argument("--no-jpeg", action="store_true", help="no differentiable JPEG in the noise")
    g.add_argument(
        "--jpeg-quality-min",
        type=int,
        default=noise.jpeg_quality_min,
        metavar="Q",
        help="lowest JPEG quality of the noise (default: %(default)s)",
    )
    g.add_argument(
        "--jpeg-rounding",
        choices=ROUNDINGS,
        default=noise.jpeg_rounding,
        help="differentiable rounding of the JPEG noise (default: %(default)s)",
    )
    g.add_argument(
        "--reference-size",
        type=int,
        default=noise.reference_size,
        metavar="R",
        help="the blur and noise are the original's at R px, scaled to the training size; 0: in the training "
        "image's own pixels, as before issue 14 (default: %(default)s)",
    )
    g.add_argument(
        "--jpeg-scale",
        choices=JPEG_SCALES,
        default=noise.jpeg_scale,
        help="JPEG noise on the image itself (native) or on it resampled to --reference-size (default: %(default)s)",
    )
    g.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default="default",
        help="loss weights and ramps: train.py's defaults, or paper (scripts/base.sh: L2 2, secret 1.5, GAN 0.5, "
        "LPIPS 1.5, ramps 15k, 1500 secret-only steps); the options below override it (default: %(default)s)",
    )
    g.add_argument(
        "--lpips",
        action="store_true",
        help="add LPIPS to the image loss (needs the lpips package and its AlexNet weights on disk; nothing is "
        "downloaded)",
    )
    for flag, kind, metavar, what in (
        ("--critic-updates", int, "N", "critic updates per generator update"),
        ("--l2-scale", float, "W", "weight of the YUV L2 image loss"),
        ("--secret-scale", float, "W", "weight of the secret BCE loss"),
        ("--critic-scale", float, "W", "weight of the critic term in the encoder's loss"),
        ("--lpips-scale", float, "W", "weight of the LPIPS term (with --lpips)"),
        (
            "--no-image-loss-steps",
            int,
            "N",
            "train the secret loss alone for the first N steps, so the code is found before the image loss shrinks "
            "the residual (scaled by --ramp-scale)",
        ),
    ):
        field = flag[2:].replace("-", "_")
        g.add_argument(
            flag,
            type=kind,
            metavar=metavar,
            help=f"{what} (default: the preset's; {getattr(losses, field)} without one)",
        )
    p.set_defaults(out="runs/stamp", steps=140000, batch_size=4, image_size=400, run=run_train)


def _task_from_args(args: argparse.Namespace) -> StampTask:
    try:
        model = StampModelConfig(image_size=args.image_size)
    except ValueError as exc:
        raise UserError(f"--image-size: {exc}") from None
    if not args.ramp_scale >= 0:
        raise UserError(f"--ramp-scale must be >= 0, got {args.ramp_scale}")
    try:
        losses = StampLossConfig(**_loss_settings(args))
        noise = StampNoiseConfig(
            jpeg=not args.no_jpeg,
            jpeg_quality_min=args.jpeg_quality_min,
            jpeg_rounding=args.jpeg_rounding,
            reference_size=args.reference_size,
            jpeg_scale=args.jpeg_scale,
            noise_delay=args.noise_delay,
        )
    except ValueError as exc:
        raise UserError(f"--{str(exc).replace('_', '-')}") from None
    check_image_folders(args.data, args.val_data)
    return StampTask(
        model, losses.scaled(args.ramp_scale), noise.scaled(args.ramp_scale), data=args.data, val_data=args.val_data
    )


_LOSS_OPTIONS = ("critic_updates", "l2_scale", "secret_scale", "critic_scale", "lpips_scale", "no_image_loss_steps")


def _loss_settings(args: argparse.Namespace) -> dict:
    """The preset's loss settings, overridden by every weight option given."""
    given = {name: getattr(args, name) for name in _LOSS_OPTIONS if getattr(args, name) is not None}
    return {**PRESETS[args.preset], **given, "gan": not args.no_gan, "lpips": args.lpips}


def run_train(args: argparse.Namespace) -> int:
    """``stegafast stamp train``: train a ``StampTask`` built from the options through the engine; returns its exit
    status."""
    task = _task_from_args(args)
    return run_training(task, args)


# ---- shared pieces -------------------------------------------------------------------------------


def _add_inputs(p: argparse.ArgumentParser) -> None:
    inputs = p.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--image", metavar="F", help="one image file")
    inputs.add_argument("--images-dir", metavar="D", help="every PNG/JPEG image under a folder")


def _input_paths(args: argparse.Namespace) -> list[Path]:
    return [Path(args.image)] if args.image is not None else find_images(args.images_dir)


def _encode_plan(args: argparse.Namespace, paths: list[Path], out: Path) -> list[tuple[Path, Path, Path]]:
    """(input, hidden image, residual image) per input: the outputs mirror the folders
    under --images-dir. An OutputError when two inputs share an output or an output is an input."""
    root = Path(args.images_dir) if args.images_dir is not None else None
    plan, claimed = [], {}
    for path in paths:
        folder = out / path.relative_to(root).parent if root is not None else out
        outputs = folder / f"{path.stem}_hidden.png", folder / f"{path.stem}_residual.png"
        for output in outputs:
            if output in claimed:
                raise OutputError(f"{claimed[output]} and {path} would both be written to {output}; rename one of them")
            claimed[output] = path
        plan.append((path, *outputs))
    check_not_inputs("--out", claimed, [*paths, args.checkpoint])
    return plan


def _read(path: Path, device: torch.device) -> torch.Tensor:
    return load_image(path, "RGB").unsqueeze(0).to(device)


# ---- encode / decode -----------------------------------------------------------------------------


def _add_encode(verbs) -> None:
    p = verbs.add_parser("encode", help="hide a message of up to 7 bytes in images")
    add_checkpoint_and_device(p, "stamp", bundled="stamp")
    _add_inputs(p)
    p.add_argument("--secret", required=True, metavar="TEXT", help="the message: at most 7 UTF-8 bytes")
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="folder for <name>_hidden.png and <name>_residual.png (created if missing)",
    )
    add_compile_args(p)
    p.set_defaults(run=run_encode)


def run_encode(args: argparse.Namespace) -> int:
    """``stegafast stamp encode``: hide ``--secret`` in each input image.

    Writes ``<stem>_hidden.png`` and ``<stem>_residual.png`` (residual + 0.5) per input under ``--out`` and returns 0;
    raises ``UserError`` for a secret that does not fit, bad inputs or clashing outputs.
    """
    check_compile_args(args)
    try:
        check_message(args.secret)
    except ValueError as exc:
        raise UserError(f"--secret: {exc}") from None
    out = check_output_folder("--out", args.out)
    plan = _encode_plan(args, _input_paths(args), out)
    device = resolve_device(args.device)
    encoder, _ = load_stamp(args.checkpoint, device)
    bits = encode_message(args.secret).to(device).unsqueeze(0)
    footprint = ImageFootprint(lambda h, w: encode_images(encoder, torch.rand(1, 3, h, w, device=device), bits), 128)
    if args.compile:
        footprint.fit()  # its probes run eagerly, before the encoder is compiled
    compile_from_args(args, encoder, ())
    for path, hidden, residual_path in plan:
        footprint.check(*image_size(path), f"image {path}")  # before its pixels are read
        with torch.no_grad():
            encoded, residual = encode_images(encoder, _read(path, device), bits)
        hidden.parent.mkdir(parents=True, exist_ok=True)
        save_image(encoded[0].cpu(), hidden)
        save_image((residual[0] + 0.5).clamp(0, 1).cpu(), residual_path)
        print(f"{path}: wrote {hidden}")
    return 0


def _add_decode(verbs) -> None:
    p = verbs.add_parser("decode", help="read the message of encoded images")
    add_checkpoint_and_device(p, "stamp", bundled="stamp")
    _add_inputs(p)
    add_compile_args(p)
    p.set_defaults(run=run_decode)


def run_decode(args: argparse.Namespace) -> int:
    """``stegafast stamp decode``: print the message (or a failure) found in each image; 0 if all decoded, else 1."""
    check_compile_args(args)
    paths = _input_paths(args)
    device = resolve_device(args.device)
    _, decoder = load_stamp(args.checkpoint, device)
    footprint = ImageFootprint(lambda h, w: decode_logits(decoder, torch.rand(1, 3, h, w, device=device)), 128)
    if args.compile:
        footprint.fit()  # its probes run eagerly, before the decoder is compiled
    compile_from_args(args, decoder, ())  # BCH decoding of the bits stays outside the graph
    failed = 0
    for path in paths:
        footprint.check(*image_size(path), f"image {path}")  # before its pixels are read
        with torch.no_grad():
            logits = decode_logits(decoder, _read(path, device))[0]
        result = decode_bits(logits > 0)
        if result.ok:
            print(f"{path}: {result.message!r} (corrected {result.corrected_bits} bits)")
        else:
            failed += 1
            print(f"{path}: could not be decoded")
    return DECODE_FAILED if failed else 0


# ---- evaluate ------------------------------------------------------------------------------------


def _add_evaluate(verbs) -> None:
    p = verbs.add_parser("evaluate", help="robustness to real distortions on held-out images, as JSON")
    add_checkpoint_and_device(p, "stamp", bundled="stamp")
    p.add_argument("--data", metavar="DIR", help="folder of test images (default: the bundled validation photographs)")
    p.add_argument(
        "--crops",
        type=int,
        default=8,
        metavar="K",
        help="crops of the model's size per image: the centre one and K-1 at fixed places (default: %(default)s)",
    )
    p.add_argument("--limit", type=int, metavar="N", help="evaluate at most N crops")
    p.add_argument("--seed", type=int, default=0, help="seed of the messages and random distortions")
    p.add_argument("--json", metavar="F.json", help="also write the result to this JSON file")
    p.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """``stegafast stamp evaluate``: robustness of a checkpoint on held-out crops; returns 0.

    Bit accuracy and BCH decode rates per distortion and PSNR/SSIM of the 8-bit encoded images, printed as JSON (and
    written to ``--json`` when given).
    """
    check_at_least("--limit", args.limit, 1)
    if args.json is not None:
        check_output_file("--json", args.json, ".json", inputs=(args.checkpoint,))
    check_at_least("--crops", args.crops, 1)
    check_seed_option("--seed", args.seed)
    if args.data is not None:
        find_images(args.data)
    device = resolve_device(args.device)
    encoder, decoder = load_stamp(args.checkpoint, device)
    images = evaluation_images(args.data, encoder.config.image_size, args.crops)
    result = evaluate_robustness(encoder, decoder, images, device, limit=args.limit, seed=args.seed)
    result.update(
        checkpoint=str(args.checkpoint),
        image_size=encoder.config.image_size,
        data=args.data or "bundled validation photographs",
        crops_per_image=args.crops,
    )
    text = strict_json_dumps(result, indent=2, sort_keys=True)
    if args.json is not None:
        write_text(args.json, text + "\n")
    print(text)
    return 0


# ---- export-onnx ---------------------------------------------------------------------------------


def _add_export(verbs) -> None:
    p = verbs.add_parser("export-onnx", help="export the encoder and decoder as plain ONNX")
    p.add_argument(
        "--checkpoint",
        metavar="C",
        help="a stamp checkpoint file or run folder (default: the bundled one, stegafast/weights/stamp.pt)",
    )
    default_to_bundled(p, "stamp")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for encoder.onnx and decoder.onnx")
    p.add_argument("--test", action="store_true", help="compare onnxruntime's outputs with PyTorch's")
    p.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    """``stegafast stamp export-onnx``: write the encoder and decoder as ONNX files under ``--out``.

    With ``--test`` also run them in onnxruntime and compare with PyTorch: returns 1 when a difference exceeds
    ``ONNX_TOLERANCE``, else 0. Raises ``UserError`` when onnx (or onnxruntime for ``--test``) is not installed.
    """
    from .onnx_export import ONNX_FILES, ONNX_TOLERANCE, check_onnx, export_onnx

    out = check_output_folder("--out", args.out)
    check_not_inputs("--out", [out / name for name in ONNX_FILES], [args.checkpoint])
    missing = [name for name in (["onnx", "onnxruntime"] if args.test else ["onnx"]) if not _importable(name)]
    if missing:
        raise UserError(f"export-onnx needs {' and '.join(missing)}: pip install 'stegafast[onnx]'")
    encoder, decoder = load_stamp(args.checkpoint, torch.device("cpu"))
    paths = export_onnx(encoder, decoder, out)
    print(f"wrote {paths[0]} and {paths[1]}")
    if not args.test:
        return 0
    diffs = check_onnx(encoder, decoder, *paths)
    print(
        "onnxruntime vs PyTorch, largest absolute differences: "
        + ", ".join(f"{k} {v:.3g}" for k, v in diffs.items() if k != "bit_agreement")
        + f"; bit signs agree on {100 * diffs['bit_agreement']:.1f}%"
    )
    worst = max(diffs["encoded"], diffs["residual"], diffs["logits"])
    if worst > ONNX_TOLERANCE:
        print(f"FAILED: a difference above the tolerance {ONNX_TOLERANCE}")
        return 1
    return 0


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
