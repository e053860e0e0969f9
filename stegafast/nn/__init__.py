"""Layers built on the stegafast kernels."""

from .actnorm import ActNorm
from .conv1x1 import CONV1X1_INITS, InvertibleConv1x1
from .coupling import AffineCouplingBlock
from .invertible import InvertibleModule, InvertibleSequential
from .jpeg import DiffJPEG
from .starinn import STARINN_INITS, StarINNBlock
from .subnets import SUBNETS, DeepSubnet, DenseSubnet, GlowSubnet, register_subnet
from .swin import SwinBlock, shifted_window_mask
from .wavelet import ILWT2d, WaveletPyramid
from .window_attention import WindowAttention, window_partition, window_reverse

__all__ = [
    "DiffJPEG",
    "ILWT2d",
    "WaveletPyramid",
    "InvertibleModule",
    "InvertibleSequential",
    "ActNorm",
    "InvertibleConv1x1",
    "AffineCouplingBlock",
    "StarINNBlock",
    "STARINN_INITS",
    "CONV1X1_INITS",
    "GlowSubnet",
    "DeepSubnet",
    "DenseSubnet",
    "SUBNETS",
    "register_subnet",
    "WindowAttention",
    "SwinBlock",
    "shifted_window_mask",
    "window_partition",
    "window_reverse",
]
