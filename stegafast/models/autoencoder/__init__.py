"""The grayscale autoencoder (the ``autoencoder`` family, seed 003).

* ``AutoencoderConfig`` / ``PRESETS`` (``config``): the architecture, tiny to large;
* ``AutoencoderCNN`` / ``create_autoencoder`` (``model``): encoder, latent ("conv" or
  "spatial"), decoder with no skips from the encoder, any input size; block types in
  ``blocks``, the patch self-attention in ``attention``;
* ``AutoencoderTask`` (``task``): L1 / MSE training on the shared engine;
* ``load_autoencoder``, ``reconstruct``, ``encode`` (``inference``); the four-panel
  picture (``visualize``); PSNR / SSIM / MSE (``evaluate``);
* ``cli``: ``stegafast autoencoder train|reconstruct|encode|visualize|evaluate``.
"""

from .config import BLOCK_TYPES, LATENT_STRATEGIES, PRESETS, AutoencoderConfig, preset_config
from .inference import encode, load_autoencoder, reconstruct
from .model import AutoencoderCNN, create_autoencoder
from .task import AutoencoderTask

__all__ = [
    "AutoencoderConfig",
    "AutoencoderCNN",
    "AutoencoderTask",
    "BLOCK_TYPES",
    "LATENT_STRATEGIES",
    "PRESETS",
    "create_autoencoder",
    "encode",
    "load_autoencoder",
    "preset_config",
    "reconstruct",
]
