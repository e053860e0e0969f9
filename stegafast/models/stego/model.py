"""The INN steganography network: hide a secret image in a cover image and
recover it from the stego image alone.

Images enter and leave as RGB in [0, 1]; the network works in the value range
``config.image_range`` names: the seed's [-1, 1] ("signed", the default: x =
2 * image - 1) or [0, 1] ("unit", every checkpoint made before the setting
existed). kY and kC are in that range's units, so the seed's kY = 0.02 in
[-1, 1] is a change of 0.01 in [0, 1].

Embedding (``embed``)::

    x = [cover | secret]                 (B, 6, H, W), RGB in the network's range
    z = ILWT(x)                          (B, 24, ceil(H/2), ceil(W/2)), linear 5/3 lifting
    z' = blocks(z)                       StarINN blocks: ActNorm -> 1x1 conv -> affine coupling
                                         (each the identity at initialisation: stego == cover at step 0)
    [o1 | o2] = ILWT^-1(z')              (B, 6, H, W); o2 is discarded
    d = YCbCr_delta(o1 - cover)          the network's proposed change of the cover, in YCbCr
    r = k * tanh(d / k),  k = (kY, kC, kC) per channel
    stego = clamp(RGB(YCbCr(cover) + r))  to the range

The residual composition makes the change to the cover bounded: at most kY
(0.02) in luma and kC (0.06) in each chroma channel (in the network's range)
before the final clamp,
whatever the network outputs, with unit slope for small changes (so stego = o1
while the change stays well inside the bounds). The eye is less sensitive to
chroma, hence the larger chroma budget.

Extraction (``extract``) mirrors it from the stego image alone::

    [c~ | s~] = ILWT^-1(blocks^-1(ILWT([stego | 0])))
    recovered = clamp(s~)  to the range

The auxiliary half is zeros in the network's range (o2 is not transmitted; in
[-1, 1] that is mid-grey, as in the seed). Without the cover the
composition cannot be undone exactly, so extraction takes the stego image as
its estimate of o1: that is exact while the residual stays in the tanh's
linear range and the stego is not quantised, and the network is trained
through this very path (the recovery losses see ``extract(embed(...))``), so it
learns to put the secret where the bounded, 8-bit stego keeps it. Hence the
recovery is not exact by construction. What is exact, to floating-point
precision: the blocks in the wavelet domain at every size, and the whole INN
core (``inverse_transform(transform(x)) == x``) for even H and W. For an odd
side the wavelet of an H x W image has ceil(H/2) rows per band, one more
coefficient row than the image has room for, so ILWT^-1 of the blocks' output
(which need not lie in the wavelet's range) drops that redundancy; training
at odd sizes learns through it like it learns through the discarded o2.

Any batch size and any image of at least 16x16 (odd sizes through the
wavelet's shared padding; cover and secret of one size).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from ...color import rgb_to_ycbcr_01, rgb_to_ycbcr_delta, ycbcr_01_to_rgb
from ...nn import InvertibleSequential, StarINNBlock
from ...ops.lifting import ilwt53_forward, ilwt53_inverse
from .config import MIN_IMAGE_SIZE, StegoModelConfig

__all__ = ["StegoINN", "StegoOutput", "check_images"]

IMAGE_CHANNELS = 3
WAVELET_CHANNELS = 4 * 2 * IMAGE_CHANNELS  # four subbands of cover and secret


class StegoOutput(NamedTuple):
    """stego: the image to transmit; recovered: the secret extracted from
    ``perturb(stego)`` (the stego itself when there is no perturbation)."""

    stego: torch.Tensor
    recovered: torch.Tensor


def check_images(name: str, image: torch.Tensor, like: torch.Tensor | None = None) -> None:
    """A (B, 3, H, W) floating batch of images at least MIN_IMAGE_SIZE on each side
    (and of ``like``'s shape), or a ValueError naming ``name``."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if image.dim() != 4 or image.shape[1] != IMAGE_CHANNELS:
        raise ValueError(f"{name} must be a (B, 3, H, W) batch of RGB images, got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor in [0, 1], got {image.dtype}")
    if image.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch")
    h, w = image.shape[-2:]
    if h < MIN_IMAGE_SIZE or w < MIN_IMAGE_SIZE:
        raise ValueError(
            f"{name} is {h}x{w}; the stego model needs images of at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}"
        )
    if like is not None and image.shape != like.shape:
        raise ValueError(
            f"{name} has shape {tuple(image.shape)} but the cover has {tuple(like.shape)}; "
            "resize the secret to the cover's size"
        )


class StegoINN(nn.Module):
    """The seed's StarINN-with-ILWT model (see the module docstring).

    ``forward(cover, secret, perturb=None)`` runs embedding then extraction (the
    training path) and returns ``StegoOutput(stego, recovered)``; ``perturb``
    maps the stego batch to what the extractor sees (quantisation, noise).
    """

    def __init__(self, config: StegoModelConfig | None = None):
        super().__init__()
        self.config = config or StegoModelConfig()
        c = self.config
        self.blocks = InvertibleSequential(
            *(
                StarINNBlock(WAVELET_CHANNELS, hidden=c.hidden, subnet=c.subnet, clamp=c.clamp, init=c.init)
                for _ in range(c.blocks)
            )
        )
        low, high = c.value_range
        self.low, self.span = low, high - low
        # the bounds as changes in [0, 1], where compose works; float32 whatever the model's dtype: see compose
        k = torch.tensor([c.k_y, c.k_c, c.k_c]) / self.span
        self.register_buffer("k", k.view(1, 3, 1, 1), persistent=False)

    # ---- the network's value range ----------------------------------------------------------

    def to_range(self, image: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> the network's value range (the identity for "unit")."""
        return image * self.span + self.low

    def from_range(self, x: torch.Tensor) -> torch.Tensor:
        """The network's value range -> [0, 1] (unclamped)."""
        return (x - self.low) / self.span

    # ---- the invertible core ----------------------------------------------------------------

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The INN core: (B, 6, H, W) -> ILWT -> blocks -> ILWT^-1 -> (B, 6, H, W)."""
        size = tuple(x.shape[-2:])
        z, _ = self.blocks(ilwt53_forward(x, False))
        return ilwt53_inverse(z, size, False)

    def inverse_transform(self, y: torch.Tensor) -> torch.Tensor:
        """The exact inverse of ``transform``."""
        size = tuple(y.shape[-2:])
        z, _ = self.blocks.inverse(ilwt53_forward(y, False))
        return ilwt53_inverse(z, size, False)

    # ---- embedding and extraction -----------------------------------------------------------

    def compose(self, cover: torch.Tensor, proposal: torch.Tensor) -> torch.Tensor:
        """The stego image: the cover plus the proposal's change, bounded per YCbCr channel (both in [0, 1])."""
        # in float32 even under autocast: the colour matrices would round a 1/255 change in bfloat16
        with torch.autocast(cover.device.type, enabled=False):
            change = rgb_to_ycbcr_delta(proposal.float() - cover.float())
            residual = self.k * torch.tanh(change / self.k)
            return ycbcr_01_to_rgb(rgb_to_ycbcr_01(cover.float()) + residual).clamp(0, 1)

    def embed(self, cover: torch.Tensor, secret: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) cover and secret in [0, 1] -> the stego image, (B, 3, H, W) in [0, 1]."""
        check_images("cover", cover)
        check_images("secret", secret, like=cover)
        proposal = self.transform(self.to_range(torch.cat([cover, secret], 1)))[:, :IMAGE_CHANNELS]
        return self.compose(cover, self.from_range(proposal))

    def extract(self, stego: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) stego image in [0, 1] -> the recovered secret in [0, 1]."""
        check_images("stego", stego)
        seen = self.to_range(stego)
        revealed = self.inverse_transform(torch.cat([seen, torch.zeros_like(seen)], 1))
        return self.from_range(revealed[:, IMAGE_CHANNELS:].float()).clamp(0, 1)

    def forward(
        self, cover: torch.Tensor, secret: torch.Tensor, perturb: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> StegoOutput:
        """Embed ``secret`` in ``cover`` then extract it from ``perturb(stego)``: the training path.

        ``cover``, ``secret``: float (B, 3, H, W) in [0, 1], the same shape. Returns ``StegoOutput(stego, recovered)``,
        each (B, 3, H, W) in [0, 1]. Raises ValueError for other shapes.
        """
        stego = self.embed(cover, secret)
        seen = perturb(stego) if perturb is not None else stego
        return StegoOutput(stego, self.extract(seen))
