"""INN image-in-image steganography (the ``stego`` family).

A cover and a secret image go through a 5/3 lifting wavelet, StarINN blocks
and the inverse wavelet; the network's first output half becomes the stego
image through a bounded YCbCr residual on the cover; the inverse network
recovers the secret from the stego image alone (see ``model``).

* ``StegoModelConfig`` / ``StegoLossConfig``: the seed's settings as defaults (its [-1, 1]
  range and 3.8M-weight capacity; the recovery-SSIM weight rebalanced), ``STEGO_PRESETS``
  (``paper``, the default, and ``small`` for CPUs) and ``IMAGE_RANGES``;
* ``StegoINN``: the network (``embed``, ``extract``, and the exact INN core);
* ``losses``: the training losses and stego perturbations;
* ``StegoTask``: the training task for ``stegafast.train``;
* ``inference``: ``load_stego``, ``embed``, ``extract``;
* ``evaluate``: hiding and recovery quality through 8-bit PNGs;
* ``cli``: ``stegafast stego train|embed|extract|evaluate``.
"""

from .config import IMAGE_RANGES, STEGO_PRESETS, StegoLossConfig, StegoModelConfig
from .inference import embed, extract, load_stego
from .model import StegoINN, StegoOutput
from .task import StegoTask

__all__ = [
    "StegoModelConfig",
    "StegoLossConfig",
    "STEGO_PRESETS",
    "IMAGE_RANGES",
    "StegoINN",
    "StegoOutput",
    "StegoTask",
    "load_stego",
    "embed",
    "extract",
]
