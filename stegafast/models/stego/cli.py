"""`stegafast stego train|embed|extract|evaluate`: the INN steganography commands.

* ``train``: the shared engine's options plus the architecture and loss options;
  default data are the bundled photographs.
* ``embed --checkpoint C --cover A.png --secret B.png --out stego.png``: an
  8-bit PNG stego image of the cover's size. A secret of another size is
  resized to the cover's size (bicubic, antialiased), so ``extract`` returns it
  at the cover's size.
* ``extract --checkpoint C --stego stego.png --out secret.png``.
* ``evaluate --checkpoint C [--data DIR]``: hiding and recovery PSNR/SSIM and
  the bit error rate of the recovered secret, measured on the 8-bit PNGs the
  commands would write (saved to a temporary folder and read back), as JSON.

``--checkpoint`` takes a checkpoint file or a run folder (its best checkpoint
by validation, else its latest). The checkpoint carries the model config, so
the network is rebuilt as trained. Grayscale and RGBA images are converted to
RGB (alpha dropped). Mistakes (missing or unreadable images, images under
16x16, a checkpoint of another model or a file that is no checkpoint) are one
error line and exit status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ...cli.common import add_checkpoint_and_device, add_family, check_at_least, check_crop_size, check_output_file
from ...cli.compile_args import add_compile_args, check_compile_args, compile_from_args
from ...cli.train_args import add_train_parser, add_val_data_arg, check_image_folders, run_training
from ...data import DataError, load_image, save_image
from ...device import resolve_device
from ...errors import UserError
from ...io import strict_json_dumps
from ...nn import STARINN_INITS, SUBNETS
from ...train.footprint import ImageFootprint
from .config import IMAGE_RANGES, MIN_IMAGE_SIZE, STEGO_PRESETS, StegoLossConfig, StegoModelConfig
from .evaluate import evaluate, evaluation_pairs
from .inference import embed, extract, load_stego
from .task import StegoTask


def add_parser(sub) -> None:
    """Add ``stegafast stego`` and its verbs (train, embed, extract, evaluate) to ``sub``."""
    add_family(
        sub,
        "stego",
        "INN image-in-image steganography: train, embed, extract, evaluate",
        (_add_train, _add_embed, _add_extract, _add_evaluate),
    )


# ---- train ---------------------------------------------------------------------------------------


def _add_train(verbs) -> None:
    p = add_train_parser(verbs, "train the stego model")
    m, defaults = p.add_argument_group("stego model"), StegoModelConfig()
    m.add_argument(
        "--preset",
        choices=sorted(STEGO_PRESETS),
        default="paper",
        help="the coupling subnets: paper (the seed's capacity, 3.9M weights) or small (Glow's subnet, 0.47M, "
        "about 5x faster per step on a CPU); --subnet and --hidden override it (default: %(default)s)",
    )
    m.add_argument("--blocks", type=int, default=defaults.blocks, help="StarINN blocks (default: %(default)s)")
    m.add_argument("--hidden", type=int, help="hidden channels of the coupling subnets (default: the preset's)")
    m.add_argument("--subnet", choices=sorted(SUBNETS), help="coupling subnet (default: the preset's)")
    m.add_argument(
        "--image-range",
        choices=sorted(IMAGE_RANGES),
        default=defaults.image_range,
        help="the value range the network and losses see images in: signed ([-1, 1], the seed's) or unit "
        "([0, 1], the range of checkpoints made before this option) (default: %(default)s)",
    )
    m.add_argument("--k-y", type=float, default=defaults.k_y, help="luma residual bound (default: %(default)s)")
    m.add_argument("--k-c", type=float, default=defaults.k_c, help="chroma residual bound (default: %(default)s)")
    m.add_argument(
        "--init",
        choices=STARINN_INITS,
        default=defaults.init,
        help="how the INN blocks start: identity (stego == cover at step 0) or glow (data-initialised ActNorm, "
        "random 1x1 rotations) (default: %(default)s)",
    )
    lo, losses = p.add_argument_group("stego losses"), StegoLossConfig()
    add_val_data_arg(lo)
    for name, what in _WEIGHT_OPTIONS.items():
        lo.add_argument(
            f"--{name.replace('_', '-')}",
            type=float,
            metavar="W",
            default=getattr(losses, name),
            help=f"{what} (default: %(default)s)",
        )
    lo.add_argument(
        "--lambda-grad",
        type=float,
        default=losses.lambda_grad,
        help="gradient (edge) loss weight (default: %(default)s)",
    )
    lo.add_argument(
        "--lambda-tv",
        type=float,
        default=losses.lambda_tv,
        help="total-variation weight of the residual (default: %(default)s)",
    )
    lo.add_argument(
        "--perturb-from",
        type=float,
        default=losses.perturb_from,
        help="fraction of the run after which stego images are perturbed (default: %(default)s)",
    )
    lo.add_argument(
        "--quant-prob",
        type=float,
        default=losses.quant_prob,
        help="probability of 8-bit quantisation once perturbing (default: %(default)s)",
    )
    lo.add_argument(
        "--noise-prob",
        type=float,
        default=losses.noise_prob,
        help="probability of Gaussian noise once perturbing (default: %(default)s)",
    )
    p.set_defaults(out="runs/stego", steps=20000, batch_size=8, image_size=224, run=run_train)


# the loss weights the train command takes, with their help
_WEIGHT_OPTIONS = {
    "alpha_hid_start": "hiding-loss weight at step 0, ramped linearly to --alpha-hid-end",
    "alpha_hid_end": "hiding-loss weight at the last step",
    "alpha_rec_mse": "recovery MSE weight",
    "alpha_rec_ssim": "recovery SSIM weight",
}


def _model_config(args: argparse.Namespace) -> StegoModelConfig:
    """The architecture from --preset, with --subnet and --hidden (when given) over the preset's."""
    preset = STEGO_PRESETS[args.preset]
    return StegoModelConfig(
        blocks=args.blocks,
        hidden=preset.hidden if args.hidden is None else args.hidden,
        subnet=preset.subnet if args.subnet is None else args.subnet,
        k_y=args.k_y,
        k_c=args.k_c,
        init=args.init,
        image_range=args.image_range,
    )


def _task_from_args(args: argparse.Namespace) -> StegoTask:
    try:
        model = _model_config(args)
        losses = StegoLossConfig(
            **{name: getattr(args, name) for name in _WEIGHT_OPTIONS},
            lambda_grad=args.lambda_grad,
            lambda_tv=args.lambda_tv,
            perturb_from=args.perturb_from,
            quant_prob=args.quant_prob,
            noise_prob=args.noise_prob,
        )
    except ValueError as exc:
        raise UserError(f"--{str(exc).replace('_', '-')}") from None
    check_at_least("--image-size", args.image_size, MIN_IMAGE_SIZE)
    check_image_folders(args.data, args.val_data)
    return StegoTask(model, losses, data=args.data, val_data=args.val_data, image_size=args.image_size)


def run_train(args: argparse.Namespace) -> int:
    """``stegafast stego train``: train a ``StegoTask`` built from the options through the engine; returns its exit
    status."""
    task = _task_from_args(args)
    return run_training(task, args)


# ---- file and argument checks --------------------------------------------------------------------


def _read_image(path: str, what: str) -> torch.Tensor:
    """An image file as a (1, 3, H, W) batch, at least MIN_IMAGE_SIZE on each side."""
    try:
        image = load_image(path, "RGB")
    except DataError as exc:
        raise UserError(f"{what}: {exc}") from None  # which of the images it was
    h, w = image.shape[-2:]
    if h < MIN_IMAGE_SIZE or w < MIN_IMAGE_SIZE:
        raise UserError(
            f"{what} image {path} is {h}x{w}; the stego model needs at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}"
        )
    return image.unsqueeze(0)


def _png_output(path: str, inputs: tuple[str, ...]) -> Path:
    return check_output_file("--out", path, ".png", " (a lossy format would destroy the secret)", inputs=inputs)


# ---- embed / extract -----------------------------------------------------------------------------


def _noise(model, height: int, width: int) -> torch.Tensor:
    return torch.rand(1, 3, height, width, device=next(model.parameters()).device)


def _footprint(run_at) -> ImageFootprint:
    """The memory the model takes on an image (stegafast.train.footprint): refused above the budget."""
    return ImageFootprint(run_at, side=4 * MIN_IMAGE_SIZE)


def _add_embed(verbs) -> None:
    p = verbs.add_parser("embed", help="hide a secret image in a cover image")
    add_checkpoint_and_device(p, "stego", bundled="stego")
    p.add_argument("--cover", required=True, metavar="A.png", help="the cover image")
    p.add_argument(
        "--secret",
        required=True,
        metavar="B.png",
        help="the secret image (resized to the cover's size when it differs)",
    )
    p.add_argument("--out", required=True, metavar="stego.png", help="the stego image to write (PNG)")
    add_compile_args(p)
    p.set_defaults(run=run_embed)


def run_embed(args: argparse.Namespace) -> int:
    """``stegafast stego embed``: hide the secret image in the cover image and write the stego PNG; returns 0."""
    check_compile_args(args)
    out = _png_output(args.out, (args.cover, args.secret, args.checkpoint))
    cover, secret = _read_image(args.cover, "cover"), _read_image(args.secret, "secret")
    model = load_stego(args.checkpoint, resolve_device(args.device))
    _footprint(lambda h, w: embed(model, _noise(model, h, w), _noise(model, h, w))).check(
        *cover.shape[-2:], f"cover image {args.cover}"
    )
    compile_from_args(args, model, ("embed",))  # after the footprint's probes, which must run eagerly
    save_image(embed(model, cover, secret)[0].cpu(), out)
    return 0


def _add_extract(verbs) -> None:
    p = verbs.add_parser("extract", help="recover the secret image from a stego image")
    add_checkpoint_and_device(p, "stego", bundled="stego")
    p.add_argument("--stego", required=True, metavar="stego.png", help="the stego image")
    p.add_argument("--out", required=True, metavar="secret.png", help="the recovered secret to write (PNG)")
    add_compile_args(p)
    p.set_defaults(run=run_extract)


def run_extract(args: argparse.Namespace) -> int:
    """``stegafast stego extract``: recover the secret image from a stego image and write it as a PNG; returns 0."""
    check_compile_args(args)
    out = _png_output(args.out, (args.stego, args.checkpoint))
    stego = _read_image(args.stego, "stego")
    model = load_stego(args.checkpoint, resolve_device(args.device))
    _footprint(lambda h, w: extract(model, _noise(model, h, w))).check(*stego.shape[-2:], f"stego image {args.stego}")
    compile_from_args(args, model, ("extract",))
    save_image(extract(model, stego)[0].cpu(), out)
    return 0


# ---- evaluate ------------------------------------------------------------------------------------


def _add_evaluate(verbs) -> None:
    p = verbs.add_parser("evaluate", help="hiding and recovery quality on 8-bit PNGs, as JSON")
    add_checkpoint_and_device(p, "stego", bundled="stego")
    p.add_argument("--data", metavar="DIR", help="folder of test images (default: the bundled validation photographs)")
    p.add_argument(
        "--image-size",
        type=int,
        default=256,
        metavar="S",
        help="side of the centre crops evaluated (default: %(default)s)",
    )
    p.add_argument("--limit", type=int, metavar="N", help="evaluate at most N cover/secret pairs")
    p.set_defaults(run=run_evaluate)


def _summary(result: dict) -> str:
    """One line of the evaluation's headline numbers (what `stegafast info` shows of a bundled checkpoint)."""
    return (
        f"hiding {result['hiding_psnr']:.1f} dB, recovery {result['recovery_psnr']:.1f} dB PSNR "
        f"({result['pairs']} pairs of {result['image_size']} px crops, 8-bit PNGs)"
    )


def run_evaluate(args: argparse.Namespace) -> int:
    """``stegafast stego evaluate``: hiding and recovery PSNR/SSIM over cover-secret pairs, printed as JSON; returns
    0."""
    check_at_least("--image-size", args.image_size, MIN_IMAGE_SIZE)
    check_crop_size("--image-size", args.image_size)
    check_at_least("--limit", args.limit, 1)
    pairs = evaluation_pairs(args.data, args.image_size)
    device = resolve_device(args.device)
    result = evaluate(load_stego(args.checkpoint, device), pairs, device, args.limit)
    result.update(
        checkpoint=str(args.checkpoint), image_size=args.image_size, data=args.data or "bundled validation photographs"
    )
    result["summary"] = _summary(result)
    print(strict_json_dumps(result, indent=2, sort_keys=True))
    return 0
