"""Layers built on the stegafast kernels."""

from .wavelet import ILWT2d, WaveletPyramid

__all__ = ["ILWT2d", "WaveletPyramid"]
