"""Learned image compression (the ``codec`` family, part 1): a mean-scale hyperprior.

* ``CodecConfig``: the architecture (N, M, training quantisation);
* ``HyperpriorCodec``: the network and its two entropy models
  (``stegafast.entropy``): forward for training, ``compress``/``decompress`` of
  real range-coded streams;
* ``CodecTask``: training with ``lmbda * 255^2 * MSE + bpp`` and the auxiliary
  quantile loss on the shared engine;
* ``load_codec`` / ``ImageCodec`` (``inference``): a trained model; images of
  any size <-> .sfc files (``fileformat``);
* ``evaluate``: RD points against JPEG and WebP, ``rd.json`` and ``rd.png`` (``plot``);
* ``cli``: ``stegafast codec train|compress|decompress|evaluate``.
"""

from .config import CodecConfig
from .fileformat import CodecFileError, ModelMismatchError
from .inference import ImageCodec, load_codec, model_identifier
from .model import CodecOutput, CodecStreams, HyperpriorCodec
from .task import CodecTask

__all__ = [
    "CodecConfig",
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
