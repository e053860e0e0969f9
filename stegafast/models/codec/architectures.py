"""The codec family's architectures by name: ``--model hyperprior|dcae``.

Each entry gives the config class, the network class and the CLI presets. The
name enters the training task's identity (so a checkpoint rebuilds the right
network) and every DCAE file's model identifier; the hyperprior's identity is the
one it had before DCAE existed, so its checkpoints and files stay valid.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...config import Config
from .base import LearnedCodec
from .config import DCAE_PRESETS, CodecConfig, DcaeConfig
from .dcae import DcaeCodec
from .model import HyperpriorCodec

__all__ = ["Architecture", "ARCHITECTURES", "DEFAULT_ARCHITECTURE", "architecture_of", "build_codec"]


@dataclass(frozen=True)
class Architecture:
    """A codec architecture: its registry name, config and model classes, and its named config presets."""

    name: str
    config_type: type[Config]
    model_type: type[LearnedCodec]
    presets: dict[str, Config]


ARCHITECTURES = {
    "hyperprior": Architecture("hyperprior", CodecConfig, HyperpriorCodec, {"default": CodecConfig()}),
    "dcae": Architecture("dcae", DcaeConfig, DcaeCodec, dict(DCAE_PRESETS)),
}
DEFAULT_ARCHITECTURE = "hyperprior"


def architecture_of(config: Config) -> Architecture:
    """The architecture whose config type ``config`` is."""
    for arch in ARCHITECTURES.values():
        if type(config) is arch.config_type:
            return arch
    raise TypeError(f"not a codec config: {type(config).__name__}")


def build_codec(config: Config) -> LearnedCodec:
    """A fresh codec of the architecture ``config`` belongs to."""
    return architecture_of(config).model_type(config)
