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
import json
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from ...cli.common import add_checkpoint_and_device, load_task_checkpoint
from ...cli.train_args import add_common_train_args, add_val_data_arg, check_image_folders, run_training
from ...data import BundledPhotos, DataError, ImageFolder, PairedImages, load_image, save_image
from ...device import resolve_device
from ...errors import UserError
from ...metrics import bit_errors, psnr, ssim
from ...nn import SUBNETS
from .config import MIN_IMAGE_SIZE, StegoLossConfig, StegoModelConfig
from .model import StegoINN
from .task import TASK_NAME, StegoTask, model_from_identity

# PSNR of identical images is infinite, which JSON cannot hold: per-image values are capped here.
PSNR_CAP_DB = 100.0


def add_parser(sub) -> None:
    p = sub.add_parser("stego", help="INN image-in-image steganography: train, embed, extract, evaluate")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    _add_train(verbs)
    _add_embed(verbs)
    _add_extract(verbs)
    _add_evaluate(verbs)


# ---- train ---------------------------------------------------------------------------------------


def _add_train(verbs) -> None:
    p = verbs.add_parser("train", help="train the stego model")
    add_common_train_args(p)
    m, defaults = p.add_argument_group("stego model"), StegoModelConfig()
    m.add_argument("--blocks", type=int, default=defaults.blocks, help="StarINN blocks (default: %(default)s)")
    m.add_argument("--hidden", type=int, default=defaults.hidden,
                   help="hidden channels of the coupling subnets (default: %(default)s)")
    m.add_argument("--subnet", choices=sorted(SUBNETS), default=defaults.subnet,
                   help="coupling subnet (default: %(default)s)")
    m.add_argument("--k-y", type=float, default=defaults.k_y, help="luma residual bound (default: %(default)s)")
    m.add_argument("--k-c", type=float, default=defaults.k_c, help="chroma residual bound (default: %(default)s)")
    lo, losses = p.add_argument_group("stego losses"), StegoLossConfig()
    add_val_data_arg(lo)
    lo.add_argument("--lambda-grad", type=float, default=losses.lambda_grad,
                    help="gradient (edge) loss weight (default: %(default)s)")
    lo.add_argument("--lambda-tv", type=float, default=losses.lambda_tv,
                    help="total-variation weight of the residual (default: %(default)s)")
    lo.add_argument("--perturb-from", type=float, default=losses.perturb_from,
                    help="fraction of the run after which stego images are perturbed (default: %(default)s)")
    lo.add_argument("--quant-prob", type=float, default=losses.quant_prob,
                    help="probability of 8-bit quantisation once perturbing (default: %(default)s)")
    lo.add_argument("--noise-prob", type=float, default=losses.noise_prob,
                    help="probability of Gaussian noise once perturbing (default: %(default)s)")
    p.set_defaults(out="runs/stego", steps=20000, batch_size=8, image_size=224, run=run_train)


def _task_from_args(args: argparse.Namespace) -> StegoTask:
    try:
        model = StegoModelConfig(blocks=args.blocks, hidden=args.hidden, subnet=args.subnet,
                                 k_y=args.k_y, k_c=args.k_c)
        losses = StegoLossConfig(lambda_grad=args.lambda_grad, lambda_tv=args.lambda_tv,
                                 perturb_from=args.perturb_from, quant_prob=args.quant_prob,
                                 noise_prob=args.noise_prob)
    except ValueError as exc:
        raise UserError(f"--{str(exc).replace('_', '-')}") from None
    if args.image_size < MIN_IMAGE_SIZE:
        raise UserError(f"--image-size must be at least {MIN_IMAGE_SIZE}, got {args.image_size}")
    check_image_folders(args.data, args.val_data)
    return StegoTask(model, losses, data=args.data, val_data=args.val_data, image_size=args.image_size)


def run_train(args: argparse.Namespace) -> int:
    task = _task_from_args(args)
    return run_training(task, args)


# ---- shared pieces of embed / extract / evaluate -------------------------------------------------


def load_model(path: str, device: torch.device) -> StegoINN:
    """The trained network of a checkpoint file or run folder, in eval mode on ``device``."""
    state = load_task_checkpoint(path, TASK_NAME)
    try:
        model = model_from_identity(state["identity"])
        model.load_state_dict(state["models"]["model"])
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise UserError(f"{path}: the checkpoint does not hold a usable stego model ({exc})") from None
    return model.to(device).eval()


def _read_image(path: str, what: str) -> torch.Tensor:
    """An image file as a (1, 3, H, W) batch, at least MIN_IMAGE_SIZE on each side."""
    try:
        image = load_image(path, "RGB")
    except DataError as exc:
        raise UserError(f"{what}: {exc}") from None
    h, w = image.shape[-2:]
    if h < MIN_IMAGE_SIZE or w < MIN_IMAGE_SIZE:
        raise UserError(f"{what} image {path} is {h}x{w}; the stego model needs at least "
                        f"{MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}")
    return image.unsqueeze(0)


def _check_output(path: str) -> Path:
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise UserError(f"--out {path}: the output must be a .png file (a lossy format would destroy the secret)")
    if not out.parent.is_dir():
        raise UserError(f"--out {path}: folder {out.parent} does not exist")
    return out


def _save(image: torch.Tensor, path: Path) -> None:
    try:
        save_image(image[0].cpu(), path)
    except DataError as exc:
        raise UserError(str(exc)) from None


def resize_to(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (1, 3, h, w) image resized to (H, W): bicubic, antialiased, clamped to [0, 1]."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


# ---- embed / extract -----------------------------------------------------------------------------


def _add_embed(verbs) -> None:
    p = verbs.add_parser("embed", help="hide a secret image in a cover image")
    add_checkpoint_and_device(p, "stego")
    p.add_argument("--cover", required=True, metavar="A.png", help="the cover image")
    p.add_argument("--secret", required=True, metavar="B.png",
                   help="the secret image (resized to the cover's size when it differs)")
    p.add_argument("--out", required=True, metavar="stego.png", help="the stego image to write (PNG)")
    p.set_defaults(run=run_embed)


def run_embed(args: argparse.Namespace) -> int:
    out = _check_output(args.out)
    cover, secret = _read_image(args.cover, "cover"), _read_image(args.secret, "secret")
    device = resolve_device(args.device)
    model = load_model(args.checkpoint, device)
    secret = resize_to(secret, tuple(cover.shape[-2:]))
    with torch.no_grad():
        stego = model.embed(cover.to(device), secret.to(device))
    _save(stego, out)
    return 0


def _add_extract(verbs) -> None:
    p = verbs.add_parser("extract", help="recover the secret image from a stego image")
    add_checkpoint_and_device(p, "stego")
    p.add_argument("--stego", required=True, metavar="stego.png", help="the stego image")
    p.add_argument("--out", required=True, metavar="secret.png", help="the recovered secret to write (PNG)")
    p.set_defaults(run=run_extract)


def run_extract(args: argparse.Namespace) -> int:
    out = _check_output(args.out)
    stego = _read_image(args.stego, "stego")
    device = resolve_device(args.device)
    model = load_model(args.checkpoint, device)
    with torch.no_grad():
        secret = model.extract(stego.to(device))
    _save(secret, out)
    return 0


# ---- evaluate ------------------------------------------------------------------------------------


def _add_evaluate(verbs) -> None:
    p = verbs.add_parser("evaluate", help="hiding and recovery quality on 8-bit PNGs, as JSON")
    add_checkpoint_and_device(p, "stego")
    p.add_argument("--data", metavar="DIR",
                   help="folder of test images (default: the bundled validation photographs)")
    p.add_argument("--image-size", type=int, default=256, metavar="S",
                   help="side of the centre crops evaluated (default: %(default)s)")
    p.add_argument("--limit", type=int, metavar="N", help="evaluate at most N cover/secret pairs")
    p.set_defaults(run=run_evaluate)


def _pairs(args: argparse.Namespace) -> PairedImages:
    if args.image_size < MIN_IMAGE_SIZE:
        raise UserError(f"--image-size must be at least {MIN_IMAGE_SIZE}, got {args.image_size}")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    try:
        if args.data is None:
            return PairedImages(BundledPhotos("val", args.image_size))
        return PairedImages(ImageFolder(args.data, args.image_size, train=False))
    except DataError as exc:
        raise UserError(str(exc)) from None


def _through_png(image: torch.Tensor, path: Path) -> torch.Tensor:
    """The image as saved to an 8-bit PNG and read back."""
    _save(image, path)
    return load_image(path, "RGB").unsqueeze(0).to(image.device)


def _capped(values: torch.Tensor) -> list[float]:
    return values.clamp(max=PSNR_CAP_DB).tolist()


def evaluate(model: StegoINN, pairs, device: torch.device, limit: int | None = None) -> dict:
    """Metrics of embedding and extraction through 8-bit PNG files (means over pairs;
    BER pooled over all bits of the recovered secrets)."""
    count = len(pairs) if limit is None else min(limit, len(pairs))
    per_image: dict[str, list[float]] = {k: [] for k in ("hid_psnr", "hid_ssim", "rec_psnr", "rec_ssim")}
    wrong_bits = total_bits = 0
    with tempfile.TemporaryDirectory(prefix="stegafast-eval-") as tmp, torch.no_grad():
        for i in range(count):
            try:
                cover, secret = (t.unsqueeze(0).to(device) for t in pairs[i])
            except DataError as exc:
                raise UserError(str(exc)) from None
            stego = _through_png(model.embed(cover, secret), Path(tmp, f"stego-{i}.png"))
            recovered = _through_png(model.extract(stego), Path(tmp, f"secret-{i}.png"))
            per_image["hid_psnr"] += _capped(psnr(stego, cover, reduction="none"))
            per_image["hid_ssim"] += ssim(stego, cover, reduction="none").tolist()
            per_image["rec_psnr"] += _capped(psnr(recovered, secret, reduction="none"))
            per_image["rec_ssim"] += ssim(recovered, secret, reduction="none").tolist()
            errors = bit_errors(recovered, secret)
            wrong_bits += round(errors.ber.item() * errors.bits)
            total_bits += errors.bits
    means = {k: sum(v) / len(v) for k, v in per_image.items()}
    return {
        "pairs": count,
        "hiding_psnr": means["hid_psnr"],
        "hiding_ssim": means["hid_ssim"],
        "recovery_psnr": means["rec_psnr"],
        "recovery_ssim": means["rec_ssim"],
        "ber": wrong_bits / total_bits,
        "bit_accuracy": 1 - wrong_bits / total_bits,
        "psnr_cap_db": PSNR_CAP_DB,
    }


def run_evaluate(args: argparse.Namespace) -> int:
    pairs = _pairs(args)
    device = resolve_device(args.device)
    model = load_model(args.checkpoint, device)
    result = evaluate(model, pairs, device, args.limit)
    result.update(checkpoint=str(args.checkpoint), image_size=args.image_size,
                  data=args.data or "bundled validation photographs")
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0
