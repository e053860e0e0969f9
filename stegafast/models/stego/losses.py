"""The training losses of the stego family and the stego perturbations.

Every term compares float32 images of shape (B, 3, H, W) and returns a 0-dim
mean over the batch. ``stego_loss`` takes images in [0, 1] and computes the
terms in the network's value range (``StegoModelConfig.image_range``): in the
seed's [-1, 1] an MSE term is 4x and an L1 term 2x its [0, 1] value, while
SSIM (with the range as its data range) is the same, so the range moves the
balance between the pixel terms and recovery SSIM.

* ``hiding_loss``: MSE(stego, cover);
* ``recovery_mse``: MSE(recovered, secret); ``recovery_ssim``: 1 - SSIM;
* ``gradient_loss``: L1 between the gradient magnitudes (edge strengths) of
  two images: the stego keeps the cover's edges;
* ``total_variation``: mean absolute finite difference of one image; applied to
  the embedding residual stego - cover it penalises high-frequency noise, the
  most visible kind of change;
* ``wavelet_loss``: per-subband MSE of the linear 5/3 wavelets of two images,
  weighted LL, HL, LH, HH at level 1 and LL at level 2 (``StegoLossConfig.w_*``);
  applied to stego vs cover;

``stego_loss`` combines them with ``StegoLossConfig``'s weights; ``perturb``
applies the late-training quantisation and noise.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from ...metrics import ssim
from ...nn import ILWT2d
from .config import StegoLossConfig

__all__ = [
    "hiding_loss",
    "recovery_mse",
    "recovery_ssim",
    "gradient_loss",
    "total_variation",
    "wavelet_loss",
    "quantize_straight_through",
    "perturb",
    "LossTerms",
    "stego_loss",
]

_ONE_LEVEL = ILWT2d(levels=1, rounding=False)


def hiding_loss(stego: torch.Tensor, cover: torch.Tensor) -> torch.Tensor:
    """MSE(stego, cover): 0-dim mean over float (B, 3, H, W) images."""
    return F.mse_loss(stego, cover)


def recovery_mse(recovered: torch.Tensor, secret: torch.Tensor) -> torch.Tensor:
    """MSE(recovered, secret): 0-dim mean over float (B, 3, H, W) images."""
    return F.mse_loss(recovered, secret)


def recovery_ssim(recovered: torch.Tensor, secret: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """1 - SSIM (11-tap Gaussian window) for images spanning ``data_range``: 0 for identical images."""
    return 1 - ssim(recovered, secret, data_range=data_range)


def _differences(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def _edge_strength(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-pixel gradient magnitude from forward differences, on the (H-1, W-1) grid
    (eps keeps its derivative finite on flat areas)."""
    dx, dy = _differences(x)
    return torch.sqrt(dx[..., :-1, :] ** 2 + dy[..., :, :-1] ** 2 + eps)


def gradient_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance between the edge strengths (gradient magnitudes) of a and b.

    Magnitudes, not the differences themselves: an L1 of the differences would
    equal the total variation of a - b, which ``total_variation`` already covers."""
    return F.l1_loss(_edge_strength(a), _edge_strength(b))


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: the mean absolute finite difference (both directions)."""
    dx, dy = _differences(x)
    return 0.5 * (dx.abs().mean() + dy.abs().mean())


def _bands(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """LL, HL, LH, HH of one level of the linear 5/3 wavelet."""
    level = _ONE_LEVEL(x)
    hl, lh, hh = level.highs[0].chunk(3, dim=1)
    return level.low, hl, lh, hh


def wavelet_loss(a: torch.Tensor, b: torch.Tensor, config: StegoLossConfig) -> torch.Tensor:
    """Weighted per-subband MSE of a and b: level 1 LL/HL/LH/HH and level 2 LL."""
    a_bands, b_bands = _bands(a), _bands(b)
    weights = (config.w_ll, config.w_hl, config.w_lh, config.w_hh)
    loss = sum(w * F.mse_loss(x, y) for w, x, y in zip(weights, a_bands, b_bands))
    a_ll2, b_ll2 = _ONE_LEVEL(a_bands[0]).low, _ONE_LEVEL(b_bands[0]).low
    return loss + config.w_ll2 * F.mse_loss(a_ll2, b_ll2)


def quantize_straight_through(x: torch.Tensor) -> torch.Tensor:
    """round(x * 255) / 255 in the forward pass, the identity in the backward pass."""
    return x + ((x * 255).round() / 255 - x).detach()


def _sample_mask(x: torch.Tensor, prob: float) -> torch.Tensor:
    """One Bernoulli(prob) draw per sample, shaped to broadcast over (B, C, H, W)."""
    return (torch.rand(x.shape[0], 1, 1, 1, device=x.device) < prob).to(x.dtype)


def perturb(stego: torch.Tensor, config: StegoLossConfig) -> torch.Tensor:
    """Each sample independently: 8-bit quantisation (straight-through) with
    probability ``quant_prob``, then Gaussian noise of a sigma uniform in
    [noise_sigma_min, noise_sigma_max] with probability ``noise_prob``. Draws
    come from torch's global generator, which the training engine seeds."""
    quantize = _sample_mask(stego, config.quant_prob)
    x = stego + quantize * (quantize_straight_through(stego) - stego)
    noisy = _sample_mask(x, config.noise_prob)
    sigma = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).uniform_(
        config.noise_sigma_min, config.noise_sigma_max
    )
    return x + noisy * sigma * torch.randn_like(x)


class LossTerms(NamedTuple):
    """The total loss and its unweighted terms (for logging)."""

    total: torch.Tensor
    hiding: torch.Tensor
    rec_mse: torch.Tensor
    rec_ssim: torch.Tensor
    gradient: torch.Tensor
    tv: torch.Tensor
    wavelet: torch.Tensor


def stego_loss(
    cover: torch.Tensor,
    secret: torch.Tensor,
    stego: torch.Tensor,
    recovered: torch.Tensor,
    config: StegoLossConfig,
    alpha_hid: float,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> LossTerms:
    """The seed's total loss with hiding weight ``alpha_hid`` (ramped by the task), of images in [0, 1]
    mapped to ``value_range`` (low, high) first: the seed's is (-1, 1)."""
    low, high = value_range
    span = high - low
    cover, secret, stego, recovered = (t.float() * span + low for t in (cover, secret, stego, recovered))
    terms = dict(
        hiding=hiding_loss(stego, cover),
        rec_mse=recovery_mse(recovered, secret),
        rec_ssim=recovery_ssim(recovered, secret, data_range=span),
        gradient=gradient_loss(stego, cover),
        tv=total_variation(stego - cover),
        wavelet=wavelet_loss(stego, cover, config),
    )
    total = (
        alpha_hid * terms["hiding"]
        + config.alpha_rec_mse * terms["rec_mse"]
        + config.alpha_rec_ssim * terms["rec_ssim"]
        + config.lambda_grad * terms["gradient"]
        + config.lambda_tv * terms["tv"]
        + terms["wavelet"]
    )
    return LossTerms(total=total, **terms)
