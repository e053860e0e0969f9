"""Multi-level 5/3 lifting wavelet as a module, with its exact inverse."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..ops.lifting import ilwt53_forward, ilwt53_inverse

__all__ = ["ILWT2d", "WaveletPyramid"]


class WaveletPyramid(NamedTuple):
    """A multi-level decomposition.

    low:   the LL subband of the coarsest level, (B, C, h_L, w_L)
    highs: per level, finest first, (B, 3C, h_l, w_l) holding [HL | LH | HH]
    sizes: per level, finest first, the (H, W) that level decomposed; the inverse
           needs them because ceil(H/2) does not tell an odd H from an even one
    """

    low: torch.Tensor
    highs: list[torch.Tensor]
    sizes: list[tuple[int, int]]


class ILWT2d(nn.Module):
    """L-level LeGall 5/3 lifting wavelet, recursing on LL.

    With ``rounding=True`` (default) integer-valued images are transformed exactly
    and ``inverse(forward(x))`` returns x bit for bit, at any batch size and any
    image size whose every level keeps H, W >= 2.
    """

    def __init__(self, levels: int = 1, rounding: bool = True):
        super().__init__()
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"ILWT2d: levels must be a positive int, got {levels!r}")
        self.levels = levels
        self.rounding = rounding

    def extra_repr(self) -> str:
        """The number of levels and whether the lifting rounds (integer-exact), for ``repr()``."""
        return f"levels={self.levels}, rounding={self.rounding}"

    def forward(self, x: torch.Tensor) -> WaveletPyramid:
        """The ``levels``-level pyramid of ``x``: (B, C, H, W), int32 (with ``rounding``) or a float type.

        Returns ``WaveletPyramid(low, highs, sizes)`` in ``x``'s dtype (see its docstring for the shapes). Raises
        ValueError when a level would get a side under 2.
        """
        low, highs, sizes = x, [], []
        for level in range(self.levels):
            h, w = low.shape[-2:]
            if h < 2 or w < 2:
                raise ValueError(
                    f"ILWT2d: {self.levels} levels need an image that stays at least 2x2, "
                    f"but level {level + 1} would get {h}x{w} (input {tuple(x.shape[-2:])})"
                )
            bands = ilwt53_forward(low, self.rounding)
            c = low.shape[1]
            sizes.append((int(h), int(w)))
            highs.append(bands[:, c:])
            low = bands[:, :c]
        return WaveletPyramid(low, highs, sizes)

    def inverse(self, pyramid: WaveletPyramid) -> torch.Tensor:
        """The image that ``pyramid`` decomposes: (B, C, H, W) in the pyramid's dtype.

        Bit-exact for int32 with ``rounding``. Raises ValueError when the pyramid's highs and sizes differ in length.
        """
        low, highs, sizes = pyramid
        if len(highs) != len(sizes):
            raise ValueError("ILWT2d.inverse: the pyramid has as many sizes as levels")
        for high, size in zip(reversed(highs), reversed(sizes)):
            low = ilwt53_inverse(torch.cat([low, high], 1), size, self.rounding)
        return low
