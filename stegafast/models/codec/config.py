"""Settings of the codec family.

``CodecConfig`` is the architecture: it is stored in every checkpoint (the
training task's identity), so ``compress``/``decompress`` rebuild exactly the
network that was trained, and it enters the model identifier of every .sfc file.

The defaults are the published low-rate models': N = 128 channels in the
transforms and the hyper-latents, M = 192 latent channels (Minnen et al. 2018;
CompressAI's mean-scale hyperprior at qualities 1-4), 7.0M parameters. A
checkpoint records its N and M, so one trained with other sizes (the earlier
defaults were N = 64, M = 96, 1.8M parameters, still a good CPU size) loads as
it was trained.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...config import Config, check_at_most, check_positive_int
from ...entropy import QUANTIZATION_MODES

__all__ = ["CodecConfig", "DcaeConfig", "DCAE_PRESETS", "DEFAULT_LMBDA", "MULTIPLE", "MAX_CHANNELS", "DCAE_LMBDAS"]

# lambda of the loss lambda * 255^2 * MSE + bpp; CompressAI's range is 0.0018..0.0932
DEFAULT_LMBDA = 0.01
# the DCAE paper's six rate points
DCAE_LMBDAS = (0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.05)
# both codecs: the analysis transform halves the size 4 times and the hyper-analysis twice more
MULTIPLE = 64
MAX_CHANNELS = 1024  # N and M above it would ask for tens of GB of weights and activations


@dataclass(frozen=True)
class CodecConfig(Config):
    """The mean-scale hyperprior network.

    N:            channels of the analysis/synthesis transforms and of the hyper-latents z
    M:            channels of the latents y
    quantization: how training quantises ("noise": additive uniform noise,
                  "ste": straight-through rounding)
    """

    N: int = 128
    M: int = 192
    quantization: str = "noise"

    settings_name = "codec"

    def __post_init__(self) -> None:
        for name in ("N", "M"):
            check_positive_int(name, getattr(self, name))
            check_at_most(name, getattr(self, name), MAX_CHANNELS)
        if self.quantization not in QUANTIZATION_MODES:
            raise ValueError(f"quantization must be one of {', '.join(QUANTIZATION_MODES)}, got {self.quantization!r}")


def _check_ints(name: str, values, length: int | None = None) -> None:
    if not isinstance(values, (tuple, list)) or (length is not None and len(values) != length):
        raise ValueError(f"{name} must be a sequence of {length} positive integers, got {values!r}")
    for value in values:
        check_positive_int(name, value)


@dataclass(frozen=True)
class DcaeConfig(Config):
    """The DCAE network (Lu et al., CVPR 2025, "Learned Image Compression with
    Dictionary-based Entropy Model"); see ``dcae.py`` for the stride chain.

    N:               channels of the hyper transforms (the hyper-latents z have ``z_channels``)
    M:               channels of the latents y, coded in ``slices`` equal channel slices
    widths:          feature widths of the three Swin stages of g_a (g_s mirrors them)
    depths:          Swin blocks per stage (alternately W-MSA and SW-MSA)
    head_dims:       channels per attention head of g_a's three stages, then g_s's three
    window:          attention window of g_a / g_s
    hyper_window:    attention window of the hyper transforms (one Swin block each)
    hyper_head_dim:  channels per head there
    dict_entries:    rows of the learned dictionary
    dict_heads:      heads of the dictionary cross-attention; the dictionary's width is
                     dict_heads * dict_head_dim
    dict_head_dim:   channels per dictionary head
    cc_hidden:       the two hidden widths of the per-slice mean, scale and LRP networks
    quantization:    "noise" or "ste", how training quantises z's and y's likelihoods
    """

    N: int = 192
    M: int = 320
    z_channels: int = 192
    slices: int = 5
    widths: tuple[int, int, int] = (96, 144, 256)
    depths: tuple[int, int, int] = (1, 2, 12)
    head_dims: tuple[int, int, int, int, int, int] = (8, 16, 32, 32, 16, 8)
    window: int = 8
    hyper_window: int = 4
    hyper_head_dim: int = 32
    dict_entries: int = 128
    dict_heads: int = 20
    dict_head_dim: int = 32
    cc_hidden: tuple[int, int] = (224, 128)
    quantization: str = "noise"

    settings_name = "dcae"

    def __post_init__(self) -> None:
        for name in ("N", "M", "z_channels", "slices", "window", "hyper_window", "hyper_head_dim"):
            check_positive_int(name, getattr(self, name))
        for name in ("dict_entries", "dict_heads", "dict_head_dim"):
            check_positive_int(name, getattr(self, name))
        for name in ("N", "M", "z_channels"):
            check_at_most(name, getattr(self, name), MAX_CHANNELS)
        for name, length in (("widths", 3), ("depths", 3), ("head_dims", 6), ("cc_hidden", 2)):
            _check_ints(name, getattr(self, name), length)
            object.__setattr__(self, name, tuple(getattr(self, name)))  # JSON gives lists back
        if self.M % self.slices:
            raise ValueError(f"M must be a multiple of slices, got M={self.M}, slices={self.slices}")
        stage_widths = (*self.widths, *reversed(self.widths))
        for width, head_dim in zip(stage_widths, self.head_dims):
            if width % head_dim:
                raise ValueError(f"head_dims: a stage of width {width} cannot have heads of {head_dim} channels")
        if self.N % self.hyper_head_dim:
            raise ValueError(f"hyper_head_dim must divide N, got N={self.N}, hyper_head_dim={self.hyper_head_dim}")
        if self.window**2 > 256 or self.hyper_window**2 > 256:
            raise ValueError("window and hyper_window must be at most 16 (256 tokens per window)")
        if self.quantization not in QUANTIZATION_MODES:
            raise ValueError(f"quantization must be one of {', '.join(QUANTIZATION_MODES)}, got {self.quantization!r}")

    @property
    def slice_channels(self) -> int:
        return self.M // self.slices

    @property
    def dict_width(self) -> int:
        return self.dict_heads * self.dict_head_dim


# the paper's network (the default: GPU training), a CPU preset of the same structure, and a tiny one
# (every part, 208,541 weights) for tests and smoke benchmarks
DCAE_PRESETS = {
    "paper": DcaeConfig(),
    "small": DcaeConfig(
        N=64,
        M=80,
        z_channels=64,
        slices=5,
        widths=(32, 48, 64),
        depths=(1, 1, 2),
        head_dims=(8, 16, 16, 16, 16, 8),
        window=8,
        hyper_window=4,
        hyper_head_dim=16,
        dict_entries=64,
        dict_heads=4,
        dict_head_dim=32,
        cc_hidden=(64, 48),
    ),
    "tiny": DcaeConfig(
        N=16,
        M=20,
        z_channels=8,
        slices=2,
        widths=(8, 8, 16),
        depths=(1, 1, 2),
        head_dims=(8, 8, 8, 8, 8, 8),
        window=4,
        hyper_window=2,
        hyper_head_dim=8,
        dict_entries=8,
        dict_heads=2,
        dict_head_dim=8,
        cc_hidden=(16, 16),
    ),
}
