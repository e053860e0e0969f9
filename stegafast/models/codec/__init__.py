"""Learned image compression (the ``codec`` family): a mean-scale hyperprior and DCAE.

* ``CodecConfig``: the hyperprior's architecture (N, M, training quantisation);
  ``DcaeConfig`` (presets ``DCAE_PRESETS``: ``paper``, ``small``, ``tiny``) DCAE's;
* ``HyperpriorCodec``: the network and its two entropy models
  (``stegafast.entropy``): forward for training, ``compress``/``decompress`` of
  real range-coded streams;
* ``DcaeCodec`` (``dcae.py``, ``dictionary.py``): DCAE, Lu et al. CVPR 2025, with
  its dictionary-based entropy model, coded slice by slice; both share
  ``LearnedCodec`` (``base.py``); ``architectures.py`` maps ``--model`` names to them;
* ``CodecTask``: training with ``lmbda * 255^2 * MSE + bpp`` and the auxiliary
  quantile loss on the shared engine;
* ``load_codec`` / ``ImageCodec`` (``inference``): a trained model; images of
  any size <-> .sfc files (``fileformat``);
* ``evaluate``: RD points against JPEG and WebP, ``rd.json`` and ``rd.png`` (``plot``);
* ``cli``: ``stegafast codec train|compress|decompress|evaluate``.
"""

from .base import LearnedCodec
from .config import DCAE_PRESETS, CodecConfig, DcaeConfig
from .dcae import DcaeCodec
from .fileformat import CodecFileError, ModelMismatchError, StreamDesyncError
from .inference import ImageCodec, load_codec, model_identifier
from .model import CodecOutput, CodecStreams, HyperpriorCodec
from .task import CodecTask

__all__ = [
    "CodecConfig",
    "DcaeConfig",
    "DCAE_PRESETS",
    "LearnedCodec",
    "DcaeCodec",
    "StreamDesyncError",
    "HyperpriorCodec",
    "CodecOutput",
    "CodecStreams",
    "CodecTask",
    "ImageCodec",
    "load_codec",
    "model_identifier",
    "CodecFileError",
    "ModelMismatchError",
]
