"""How the stego loss terms pull on the network: per-term gradient norms and residual saturation.

For one batch of bundled-photo crops (the training data's pairs), each weighted
term of ``stego_loss`` (hiding ``alpha_hid * MSE``, recovery MSE, recovery SSIM,
gradient, TV, wavelet) is back-propagated on its own and the global L2 norm of
its gradient over all parameters is printed, with the ratio of each to the
hiding term's. Also printed: how saturated the bounded residual ``k * tanh(d / k)``
is (the fraction of luma pixels with |d| > 2 kY, the median |d| / kY and the
mean tanh slope), which is what issue 14 found drowning the hiding gradient
under Glow's start.

    python benchmarks/stego_grad_balance.py [--preset small] [--image-range unit]  # fresh models, both starts
    python benchmarks/stego_grad_balance.py --checkpoint runs/stego  # a trained model, alpha_hid at its end

Batch 8, 64x64 by default (the README's short budget); run with OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import torch

from stegafast.color import rgb_to_ycbcr_delta
from stegafast.data import PairedImages, training_images
from stegafast.models.stego import StegoINN, StegoLossConfig
from stegafast.models.stego.config import IMAGE_RANGES, STEGO_PRESETS
from stegafast.models.stego.inference import load_stego
from stegafast.models.stego.losses import stego_loss

WEIGHTED_TERMS = ("hiding", "rec_mse", "rec_ssim", "gradient", "tv", "wavelet")


def _batch(size: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` (cover, secret) pairs of ``size`` crops, as the training loader draws them."""
    pairs = PairedImages(training_images(None, size, batch))
    covers, secrets = zip(*(pairs[i] for i in range(batch)))
    return torch.stack(covers), torch.stack(secrets)


def _weights(config: StegoLossConfig, alpha_hid: float) -> dict[str, float]:
    return {
        "hiding": alpha_hid,
        "rec_mse": config.alpha_rec_mse,
        "rec_ssim": config.alpha_rec_ssim,
        "gradient": config.lambda_grad,
        "tv": config.lambda_tv,
        "wavelet": 1.0,
    }


def gradient_norms(model: StegoINN, cover: torch.Tensor, secret: torch.Tensor, alpha_hid: float) -> dict[str, float]:
    """The global gradient L2 norm of each weighted loss term alone."""
    config, params = StegoLossConfig(), [p for p in model.parameters() if p.requires_grad]
    stego, recovered = model(cover, secret)
    terms = stego_loss(cover, secret, stego, recovered, config, alpha_hid, model.config.value_range)._asdict()
    norms = {}
    for name, weight in _weights(config, alpha_hid).items():
        grads = torch.autograd.grad(weight * terms[name], params, retain_graph=True, allow_unused=True)
        norms[name] = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads if g is not None)))
    return norms


@torch.no_grad()
def saturation(model: StegoINN, cover: torch.Tensor, secret: torch.Tensor) -> dict[str, float]:
    """How far the network's proposed luma change sits in the tanh bound's flat part."""
    proposal = model.from_range(model.transform(model.to_range(torch.cat([cover, secret], 1))))[:, :3]
    # both in [0, 1]: model.k holds the bounds as changes in [0, 1]
    ratio = (rgb_to_ycbcr_delta(proposal - cover)[:, 0] / model.k[0, 0]).abs()
    slope = 1 - torch.tanh(ratio).square()
    return {
        "luma_saturated_fraction": float((ratio > 2).float().mean()),
        "median_abs_delta_over_ky": float(ratio.median()),
        "mean_tanh_slope": float(slope.mean()),
    }


def report(label: str, model: StegoINN, cover: torch.Tensor, secret: torch.Tensor, alpha_hid: float) -> dict:
    """Gradient norms, their ratios to the hiding term's and the saturation of one model, as a dict."""
    norms = gradient_norms(model, cover, secret, alpha_hid)
    hid = norms["hiding"]
    ratios = {k: (v / hid if hid > 0 else float("inf") if v > 0 else 0.0) for k, v in norms.items()}
    return {"model": label, "alpha_hid": alpha_hid, "grad_norm": norms, "ratio_to_hiding": ratios,
            **saturation(model, cover, secret)}  # fmt: skip


def main() -> None:
    """Print one JSON line per model measured."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a trained run folder or checkpoint (default: fresh models)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", choices=sorted(STEGO_PRESETS), default="paper", help="fresh models' subnets")
    parser.add_argument("--image-range", choices=sorted(IMAGE_RANGES), default="signed", help="fresh models' range")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    cover, secret = _batch(args.image_size, args.batch_size)
    if args.checkpoint:
        model = load_stego(args.checkpoint).train()
        print(json.dumps(report(args.checkpoint, model, cover, secret, StegoLossConfig().alpha_hid_end)))
        return
    for init in ("glow", "identity"):
        torch.manual_seed(args.seed)
        config = dataclasses.replace(STEGO_PRESETS[args.preset], init=init, image_range=args.image_range)
        model = StegoINN(config)
        with torch.no_grad():
            model(cover, secret)  # the first forward, on this batch, data-initialises Glow's ActNorm as training does
        print(json.dumps(report(f"fresh, init={init}", model, cover, secret, StegoLossConfig().alpha_hid_start)))


if __name__ == "__main__":
    main()
