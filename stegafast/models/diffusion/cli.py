"""`stegafast diffusion train|denoise|evaluate|simulate`: conditional diffusion denoising for
widefield microscopy.

* ``train``: the shared engine's options plus the UNet (``--preset seed|cpu``,
  ``--attention``, ``--gradient-checkpointing``, ``--ema-decay``) and the microscope
  (``--psf-sigma``, ``--psf-size``, ``--psf-file``, ``--background``, ``--read-noise``,
  ``--peak-photons``, ``--specimen``). Without ``--data``: seeded synthetic specimens;
  ``--data DIR``: clean images (TIFF/PNG, 8/16-bit) or ``clean/`` + ``widefield/`` pairs.
* ``simulate --out DIR --count N``: writes ``clean/NNNN.tif`` and ``widefield/NNNN.tif``
  (32-bit float TIFF, photons) and ``psf.tif``.
* ``denoise --checkpoint C --input IMG|DIR --out OUT``: restored images (float TIFF, photons)
  with ``--sampler ddim|dpmpp``, ``--steps``, ``--guidance none|pkl|l2|anscombe``,
  ``--lambda-base``, ``--t-threshold``; the PSF and background default to the checkpoint's.
* ``evaluate --checkpoint C``: PSNR, SSIM and FRC resolution of widefield, Richardson-Lucy
  and the samplers on held-out synthetic pairs, as a table (``--json`` for JSON).

Mistakes are one error line and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from pathlib import Path

import torch

from ...cli.common import add_checkpoint_and_device, add_family, check_at_least, check_at_most, check_output_folder
from ...cli.train_args import add_train_parser, run_training
from ...device import resolve_device
from ...errors import UserError
from ...io import strict_json_dumps
from .config import (
    ATTENTION_BACKENDS,
    GUIDANCE_MODES,
    MIN_IMAGE_SIZE,
    NUM_TRAIN_TIMESTEPS,
    SPECIMEN_KINDS,
    DiffusionTrainConfig,
    GuidanceConfig,
    PhysicsConfig,
    UNetConfig,
)
from .data import SyntheticPairs
from .evaluate import Method, default_methods, evaluate, evaluation_pairs, format_table
from .imagefiles import MICROSCOPY_EXTENSIONS, find_microscopy_images, read_intensity, write_float_tiff
from .inference import denoise, load_diffusion
from .physics import ForwardModel, psf_from_config
from .schedulers import DEFAULT_STEPS, SAMPLERS
from .task import DiffusionTask

MAX_SIMULATE = 100_000


def add_parser(sub) -> None:
    """Add ``stegafast diffusion`` and its verbs (train, denoise, evaluate, simulate) to ``sub``."""
    add_family(
        sub,
        "diffusion",
        "conditional diffusion denoising of widefield microscopy: train, denoise, evaluate, simulate",
        (_add_train, _add_denoise, _add_evaluate, _add_simulate),
    )


def _config(make, **values):
    """A config, its ValueError turned into the option's UserError (``--field ...``)."""
    try:
        return make(**values)
    except ValueError as exc:
        field, _, rest = str(exc).partition(" ")  # config messages start with the field's name
        raise UserError(f"--{field.replace('_', '-')} {rest}") from None


# ---- the microscope options ------------------------------------------------------------------------


def _add_physics_args(p: argparse.ArgumentParser, with_specimen: bool = True) -> None:
    g, d = p.add_argument_group("microscope"), PhysicsConfig()
    g.add_argument("--psf-sigma", type=float, default=d.psf_sigma, help="Gaussian PSF sigma, px (default: %(default)s)")
    g.add_argument("--psf-size", type=int, default=d.psf_size, help="Gaussian PSF side, odd (default: %(default)s)")
    g.add_argument("--psf-file", metavar="FILE", help="PSF from a .npy or one-channel TIFF/PNG (replaces the Gaussian)")
    g.add_argument("--background", type=float, default=d.background, help="background, photons (default: %(default)s)")
    g.add_argument("--read-noise", type=float, default=d.read_noise, help="Gaussian read noise sigma (default: 0)")
    g.add_argument(
        "--peak-photons", type=float, default=d.peak_photons, help="specimen peak, photons (default: %(default)s)"
    )
    if with_specimen:
        g.add_argument("--specimen", choices=SPECIMEN_KINDS, default=d.specimen, help="synthetic specimens")


def _physics_from_args(args: argparse.Namespace, image_size: int) -> PhysicsConfig:
    physics = _config(
        PhysicsConfig,
        psf_sigma=args.psf_sigma,
        psf_size=args.psf_size,
        psf_file=args.psf_file,
        background=args.background,
        read_noise=args.read_noise,
        peak_photons=args.peak_photons,
        image_size=image_size,
        specimen=getattr(args, "specimen", "mixed"),
    )
    psf_from_config(physics)  # a bad PSF file is reported now, before anything heavy
    return physics


# ---- train -----------------------------------------------------------------------------------------


def _add_train(verbs) -> None:
    p = add_train_parser(verbs, "train the conditional denoiser")
    m = p.add_argument_group("diffusion model")
    m.add_argument("--preset", choices=("seed", "cpu"), default="seed", help="UNet widths (default: %(default)s)")
    m.add_argument("--attention", choices=ATTENTION_BACKENDS, default="stegafast", help="attention processor")
    m.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations in the backward")
    m.add_argument("--ema-decay", type=float, default=DiffusionTrainConfig().ema_decay, help="EMA decay (0.999)")
    m.add_argument("--val-data", metavar="DIR", help="validation folder (default: synthetic, none with --data)")
    _add_physics_args(p)
    p.set_defaults(out="runs/diffusion", steps=20000, batch_size=4, image_size=128, lr=None, run=run_train)


def _model_config(preset: str, attention: str, checkpointing: bool) -> UNetConfig:
    make = UNetConfig.cpu if preset == "cpu" else UNetConfig
    return _config(make, attention=attention, gradient_checkpointing=checkpointing)


def _check_image_size(option: str, size: int) -> None:
    check_at_least(option, size, MIN_IMAGE_SIZE)
    if size % 8:
        raise UserError(f"{option} must be a multiple of 8 (the UNet halves it three times), got {size}")


def _task_from_args(args: argparse.Namespace) -> DiffusionTask:
    _check_image_size("--image-size", args.image_size)
    model = _model_config(args.preset, args.attention, args.gradient_checkpointing)
    physics = _physics_from_args(args, args.image_size)
    training = _config(DiffusionTrainConfig, ema_decay=args.ema_decay)
    for folder in (args.data, args.val_data):
        if folder is not None:
            _check_data_folder(folder)
    return DiffusionTask(model, physics, training, data=args.data, val_data=args.val_data, seed=args.seed)


def _check_data_folder(folder: str) -> None:
    path = Path(folder)
    if (path / "clean").is_dir() and (path / "widefield").is_dir():
        find_microscopy_images(path / "clean")
        find_microscopy_images(path / "widefield")
    else:
        find_microscopy_images(path)


def run_train(args: argparse.Namespace) -> int:
    """``stegafast diffusion train``: train a ``DiffusionTask`` built from the options through the engine, printing
    the last step and latest checkpoint; returns 0. An ``--image-size`` under MIN_IMAGE_SIZE (16) or not a multiple of
    8, a UNet, microscope or ``--ema-decay`` value its config rejects, an unusable ``--psf-file`` or a ``--data`` /
    ``--val-data`` folder without TIFF/PNG images is a ``UserError`` (exit status 2)."""
    return run_training(_task_from_args(args), args)


# ---- simulate --------------------------------------------------------------------------------------


def _add_simulate(verbs) -> None:
    p = verbs.add_parser("simulate", help="write synthetic (clean, widefield) pairs")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for clean/, widefield/ and psf.tif")
    p.add_argument("--count", type=int, default=16, metavar="N", help="pairs to write (default: %(default)s)")
    p.add_argument("--image-size", type=int, default=128, metavar="S", help="side (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="specimen and noise seed (default: %(default)s)")
    _add_physics_args(p)
    p.set_defaults(run=run_simulate)


def run_simulate(args: argparse.Namespace) -> int:
    """``stegafast diffusion simulate``: write ``--count`` seeded synthetic pairs to ``--out`` as ``clean/NNNN.tif``
    and ``widefield/NNNN.tif`` (32-bit float TIFF, photons) plus ``psf.tif``, then print one line; returns 0. A
    ``--count`` outside 1..MAX_SIMULATE, an ``--image-size`` under MIN_IMAGE_SIZE (16), a negative ``--seed``, an
    ``--out`` that is a file or not writable, or a microscope option its config rejects (or an unusable ``--psf-file``)
    is a ``UserError`` (exit status 2)."""
    check_at_least("--count", args.count, 1)
    check_at_most("--count", args.count, MAX_SIMULATE)
    check_at_least("--image-size", args.image_size, MIN_IMAGE_SIZE)
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    out = check_output_folder("--out", args.out)
    physics = _physics_from_args(args, args.image_size)
    pairs = SyntheticPairs(physics, args.count, args.seed)
    for sub in ("clean", "widefield"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    write_float_tiff(pairs.forward.psf.numpy(), out / "psf.tif")
    for i in range(args.count):
        x, y = pairs.clean(i), pairs.measurement(i)
        write_float_tiff(x.numpy(), out / "clean" / f"{i:04d}.tif")
        write_float_tiff(y.numpy(), out / "widefield" / f"{i:04d}.tif")
    print(f"wrote {args.count} pairs to {out}")
    return 0


# ---- denoise ---------------------------------------------------------------------------------------


def _add_sampling_args(p: argparse.ArgumentParser) -> None:
    g, d = p.add_argument_group("sampling"), GuidanceConfig()
    g.add_argument("--lambda-base", type=float, default=d.lambda_base, help="guidance step (default: %(default)s)")
    g.add_argument(
        "--t-threshold", type=int, default=d.t_threshold, help="full guidance from t <= this (default: %(default)s)"
    )
    g.add_argument("--seed", type=int, default=0, help="sampling noise seed (default: %(default)s)")
    g.add_argument("--attention", choices=ATTENTION_BACKENDS, help="attention processor (default: as trained)")


def _add_denoise(verbs) -> None:
    p = verbs.add_parser("denoise", help="restore widefield images")
    add_checkpoint_and_device(p, "diffusion")
    p.add_argument("--input", required=True, metavar="IMG|DIR", help="a widefield image or a folder of them (photons)")
    p.add_argument("--out", required=True, metavar="OUT", help="output .tif (one input) or folder (a folder input)")
    p.add_argument("--sampler", choices=SAMPLERS, default="ddim", help="sampler (default: %(default)s)")
    p.add_argument("--steps", type=int, help="sampling steps (default: 50 for ddim, 25 for dpmpp)")
    p.add_argument("--guidance", choices=GUIDANCE_MODES, default="pkl", help="physics guidance (default: %(default)s)")
    g = p.add_argument_group("microscope (default: the checkpoint's)")
    g.add_argument("--psf-file", metavar="FILE", help="PSF from a .npy or one-channel TIFF/PNG")
    g.add_argument("--background", type=float, help="background, photons")
    _add_sampling_args(p)
    p.set_defaults(run=run_denoise)


def _guidance_from_args(args: argparse.Namespace, mode: str) -> GuidanceConfig:
    return _config(GuidanceConfig, mode=mode, lambda_base=args.lambda_base, t_threshold=args.t_threshold)


def _inputs_and_outputs(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    source = Path(args.input)
    if source.is_dir():
        out = check_output_folder("--out", args.out)
        if out.resolve() == source.resolve():
            raise UserError(f"--out {args.out} is the input folder; give another folder")
        return [(f, out / f"{f.stem}.tif") for f in find_microscopy_images(source)]
    if not source.is_file():
        raise UserError(f"--input {args.input} does not exist")
    if source.suffix.lower() not in MICROSCOPY_EXTENSIONS:
        raise UserError(f"--input {args.input}: expected a TIFF or PNG image")
    out = Path(args.out)
    if out.suffix.lower() not in (".tif", ".tiff"):
        raise UserError(f"--out {args.out}: the output must be a .tif file (float intensities)")
    if out.resolve() == source.resolve():
        raise UserError(f"--out {args.out} is the input image")
    if not out.parent.is_dir():
        raise UserError(f"--out {args.out}: folder {out.parent} does not exist")
    return [(source, out)]


def run_denoise(args: argparse.Namespace) -> int:
    """``stegafast diffusion denoise``: restore the widefield ``--input`` image (or each TIFF/PNG of an ``--input``
    folder), in photons, with the checkpoint's EMA model, ``--sampler``, ``--steps`` and ``--guidance``, writing each as
    a 32-bit float TIFF in photons at ``--out`` (a .tif file, or a folder for a folder input), then print the count;
    returns 0. ``--steps`` outside 1..NUM_TRAIN_TIMESTEPS, a guidance value its config rejects, a negative
    ``--background``, a missing, unreadable or non-TIFF/PNG input, an image under 16 x 16, an ``--out`` that is not a
    .tif (one input), is the input itself or lies in a missing folder, an unusable ``--psf-file`` or checkpoint is a
    ``UserError`` (exit status 2), raised before any image is sampled."""
    steps = DEFAULT_STEPS[args.sampler] if args.steps is None else args.steps
    check_at_least("--steps", steps, 1)
    check_at_most("--steps", steps, NUM_TRAIN_TIMESTEPS)
    guidance = _guidance_from_args(args, args.guidance)
    if args.background is not None and args.background < 0:
        raise UserError(f"--background must be >= 0, got {args.background}")
    jobs = _inputs_and_outputs(args)
    images = [(read_intensity(src), out) for src, out in jobs]
    for (src, _), (image, _) in zip(jobs, images):
        if min(image.shape) < MIN_IMAGE_SIZE:
            raise UserError(f"--input {src} is {image.shape[0]}x{image.shape[1]}; at least 16x16 is needed")
    overrides = {"psf_file": args.psf_file} if args.psf_file else {}
    model, physics = load_diffusion(args.checkpoint, resolve_device(args.device), args.attention)
    physics = _config(functools.partial(dataclasses.replace, physics), **overrides)
    forward = ForwardModel.from_config(physics)
    if args.background is not None:
        forward.background = args.background
    for image, out in images:
        out.parent.mkdir(parents=True, exist_ok=True)  # an output folder is created when written
        restored = denoise(
            model,
            torch.from_numpy(image),
            forward,
            sampler=args.sampler,
            steps=steps,
            guidance=guidance,
            seed=args.seed,
        )
        write_float_tiff(restored.numpy(), out)
    print(f"restored {len(images)} image(s)")
    return 0


# ---- evaluate --------------------------------------------------------------------------------------


def _add_evaluate(verbs) -> None:
    p = verbs.add_parser("evaluate", help="PSNR, SSIM, FRC vs widefield and Richardson-Lucy")
    add_checkpoint_and_device(p, "diffusion")
    p.add_argument("--images", type=int, default=8, metavar="N", help="held-out synthetic pairs (default: 8)")
    p.add_argument("--image-size", type=int, metavar="S", help="side (default: the checkpoint's)")
    p.add_argument(
        "--methods",
        metavar="LIST",
        help="comma-separated SAMPLER:STEPS[:GUIDANCE], e.g. ddim:100,dpmpp:25:pkl "
        "(default: ddim 100, ddim 50, dpmpp 25 unguided and ddim 50 with each guidance)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    _add_sampling_args(p)
    p.set_defaults(run=run_evaluate)


def _parse_methods(text: str | None) -> list[Method]:
    if text is None:
        return default_methods()
    methods = []
    for item in text.split(","):
        parts = item.strip().split(":")
        if len(parts) not in (2, 3) or parts[0] not in SAMPLERS or not parts[1].isdigit():
            raise UserError(
                f"--methods: {item!r} is not SAMPLER:STEPS[:GUIDANCE] with SAMPLER in {', '.join(SAMPLERS)}"
            )
        steps, mode = int(parts[1]), parts[2] if len(parts) == 3 else "none"
        if not 1 <= steps <= NUM_TRAIN_TIMESTEPS or mode not in GUIDANCE_MODES:
            raise UserError(f"--methods: {item!r}: steps 1..{NUM_TRAIN_TIMESTEPS}, guidance one of {GUIDANCE_MODES}")
        methods.append(Method(f"{parts[0]}{steps}" + ("" if mode == "none" else f"+{mode}"), parts[0], steps, mode))
    return methods


def run_evaluate(args: argparse.Namespace) -> int:
    """``stegafast diffusion evaluate``: print the PSNR / SSIM / FRC resolution / seconds-per-image table of widefield,
    Richardson-Lucy and each ``--methods`` sampler over ``--images`` held-out synthetic pairs (Markdown, or JSON with
    ``--json``); returns 0. ``--images`` outside 1..10000, a bad ``--image-size`` (under 16 or not a multiple of 8), a
    ``--methods`` item that is not SAMPLER:STEPS[:GUIDANCE] with valid values, a guidance value its config rejects or
    an unusable checkpoint is a ``UserError`` (exit status 2)."""
    check_at_least("--images", args.images, 1)
    check_at_most("--images", args.images, 10_000)
    if args.image_size is not None:
        _check_image_size("--image-size", args.image_size)
    methods = _parse_methods(args.methods)
    guidance = _guidance_from_args(args, "none")
    model, physics = load_diffusion(args.checkpoint, resolve_device(args.device), args.attention)
    if args.image_size is not None:
        physics = dataclasses.replace(physics, image_size=args.image_size)
    result = evaluate(model, evaluation_pairs(physics, args.images), methods, guidance=guidance, seed=args.seed)
    result.update(checkpoint=str(args.checkpoint), image_size=physics.image_size)
    print(strict_json_dumps(result, indent=2, sort_keys=True) if args.json else format_table(result))
    return 0
