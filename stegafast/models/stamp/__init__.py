"""StegaStamp watermarking (the ``stamp`` family; Tancik et al., CVPR 2020).

A U-Net encoder adds a residual carrying 100 bits to an image; a decoder with
a spatial transformer reads the bits back after the image went through
differentiable distortions (warp, blur, noise, colour changes, JPEG); the
100 bits are a 7-byte message protected by BCH.

* ``StampModelConfig`` / ``StampLossConfig`` / ``StampNoiseConfig``: the settings
  (the original's as defaults, see ``config``);
* ``StampEncoder`` / ``StampDecoder`` / ``StampCritic``: the networks;
* ``NoisePipeline``: the training distortions, ramped in;
* ``StampTask``: the training task for ``stegafast.train``;
* ``encode_message`` / ``decode_bits``: the BCH-protected message (``bch``);
* ``inference``: ``load_stamp``, ``encode_images``, ``decode_logits`` at any image size;
* ``evaluate``: robustness to real distortions (``evaluate_robustness``);
* ``onnx_export``: the encoder and decoder as plain ONNX;
* ``cli``: ``stegafast stamp train|encode|decode|evaluate|export-onnx``.
"""

from .bch import DecodeResult, decode_bits, encode_message
from .config import StampLossConfig, StampModelConfig, StampNoiseConfig
from .inference import decode_logits, encode_images, load_stamp
from .model import StampCritic, StampDecoder, StampEncoder
from .noise import NoisePipeline
from .task import StampTask

__all__ = [
    "StampModelConfig",
    "StampLossConfig",
    "StampNoiseConfig",
    "StampEncoder",
    "StampDecoder",
    "StampCritic",
    "NoisePipeline",
    "StampTask",
    "DecodeResult",
    "encode_message",
    "decode_bits",
    "load_stamp",
    "encode_images",
    "decode_logits",
]
