"""Settings of the codec family.

``CodecConfig`` is the architecture: it is stored in every checkpoint (the
training task's identity), so ``compress``/``decompress`` rebuild exactly the
network that was trained, and it enters the model identifier of every .sfc file.

The defaults are small enough to train on a CPU: N = 64 channels in the
transforms and the hyper-latents, M = 96 latent channels (Minnen et al. 2018
use N = 128, M = 192; CompressAI's quality 1-4 models N = 128, M = 192 as well).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...config import Config, check_at_most, check_positive_int
from ...entropy import QUANTIZATION_MODES

__all__ = ["CodecConfig", "DEFAULT_LMBDA", "MULTIPLE", "MAX_CHANNELS"]

# lambda of the loss lambda * 255^2 * MSE + bpp; CompressAI's range is 0.0018..0.0932
DEFAULT_LMBDA = 0.01
# the analysis transform halves the size 4 times and the hyper-analysis twice more
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

    N: int = 64
    M: int = 96
    quantization: str = "noise"

    settings_name = "codec"

    def __post_init__(self) -> None:
        for name in ("N", "M"):
            check_positive_int(name, getattr(self, name))
            check_at_most(name, getattr(self, name), MAX_CHANNELS)
        if self.quantization not in QUANTIZATION_MODES:
            raise ValueError(f"quantization must be one of {', '.join(QUANTIZATION_MODES)}, got {self.quantization!r}")
