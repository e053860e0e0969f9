"""The StegaStamp losses and their ramps (the original's ``build_model`` and ``train.py``).

* ``yuv_l2_loss``: the squared difference of encoded and original images in
  BT.601 YUV (``stegafast.color.rgb_to_yuv_bt601``, TensorFlow's matrix as the original), amplified towards
  the borders by ``1 + gain * edge_falloff``, averaged per channel and weighted
  (1, 100, 100 by default: colour changes cost far more than luma changes);
* ``secret_loss``: binary cross-entropy of the decoder's logits;
* ``critic_loss`` / ``generator_critic_loss``: the WGAN terms, the critic's
  score being higher for encoded images;
* ``loss_weights(step, config)``: each weight ramped linearly from 0.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ...color import rgb_to_yuv_bt601
from ...train import ramp
from .config import StampLossConfig

__all__ = [
    "LossWeights",
    "loss_weights",
    "edge_falloff",
    "yuv_l2_loss",
    "secret_loss",
    "critic_loss",
    "generator_critic_loss",
    "bit_accuracy",
]


class LossWeights(NamedTuple):
    """The weights of one step: L2 image loss, its edge gain, secret BCE, critic term, LPIPS."""

    l2: float
    edge_gain: float
    secret: float
    critic: float
    lpips: float = 0.0

    @property
    def image_losses(self) -> bool:
        """Whether this step trains anything but the secret loss."""
        return self.l2 > 0 or self.critic > 0 or self.lpips > 0


def loss_weights(step: int, config: StampLossConfig) -> LossWeights:
    """Each weight at ``step``: ``scale * min(step / ramp, 1)`` as the original; the
    edge gain ramps after ``l2_edge_delay`` steps; the first ``no_image_loss_steps``
    steps weigh only the secret loss, and without the critic (or LPIPS) its weight is 0."""
    c = config
    secret = ramp(step, 0, c.secret_ramp, 0.0, c.secret_scale)
    if step < c.no_image_loss_steps:
        return LossWeights(0.0, 0.0, secret, 0.0)
    return LossWeights(
        l2=ramp(step, 0, c.l2_ramp, 0.0, c.l2_scale),
        edge_gain=ramp(step, c.l2_edge_delay, c.l2_edge_delay + c.l2_edge_ramp, 0.0, c.l2_edge_gain),
        secret=secret,
        critic=ramp(step, 0, c.critic_ramp, 0.0, c.critic_scale) if c.gan else 0.0,
        lpips=ramp(step, 0, c.lpips_ramp, 0.0, c.lpips_scale) if c.lpips else 0.0,
    )


def _falloff_1d(size: int) -> torch.Tensor:
    """1 in the middle half, falling as a half cosine to 0 at both ends (distance
    d from the nearer end, over the outer quarters: (cos(4 pi d / size + pi) + 1) / 2)."""
    d = torch.minimum(torch.arange(size, dtype=torch.float64), torch.arange(size - 1, -1, -1, dtype=torch.float64))
    curve = (torch.cos(4 * math.pi * d / size + math.pi) + 1) / 2
    return torch.where(d < size / 4, curve, torch.ones_like(curve))


@functools.lru_cache(maxsize=16)
def _edge_falloff_cpu(height: int, width: int) -> torch.Tensor:
    return 1 - _falloff_1d(height)[:, None] * _falloff_1d(width)[None, :]


def edge_falloff(height: int, width: int, device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(H, W) map: 0 in the centre, rising to 1 at the borders (the original's
    ``falloff_im``, computed symmetrically)."""
    return _edge_falloff_cpu(height, width).to(device=device, dtype=dtype)


def yuv_l2_loss(encoded: torch.Tensor, original: torch.Tensor, yuv_scales, edge_gain: float) -> torch.Tensor:
    """sum_c scale_c * mean((YUV difference * (1 + edge_gain * falloff))_c ** 2)."""
    diff = rgb_to_yuv_bt601(encoded.float() - original.float())  # linear: the difference of the transforms
    if edge_gain:
        diff = diff * (1 + edge_gain * edge_falloff(*diff.shape[-2:], device=diff.device))
    per_channel = diff.square().mean(dim=(0, 2, 3))
    return (per_channel * per_channel.new_tensor(tuple(yuv_scales))).sum()


def secret_loss(logits: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of the decoder's logits against the 0/1 bits."""
    return F.binary_cross_entropy_with_logits(logits.float(), bits.float())


def critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """What the critic minimises: its score on originals minus that on encoded images."""
    return real_scores.float().mean() - fake_scores.float().mean()


def generator_critic_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """What the encoder minimises: the critic's score on encoded images."""
    return fake_scores.float().mean()


def bit_accuracy(logits: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Fraction of bits whose logit has the right sign (0-dim tensor)."""
    return ((logits.detach() > 0) == (bits > 0.5)).float().mean()
