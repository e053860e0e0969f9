"""Settings of the autoencoder family.

``AutoencoderConfig`` is the architecture: every checkpoint stores it (the task's
identity), so ``reconstruct``/``encode``/``visualize`` rebuild the trained network.
Its defaults are the seed's (seed 003, "AutoEncoder CNN V3"): latent 512, blocks
resnet/se/resnet, channels 64/128/256, strides 2/2/2, the "conv" latent, attention
on, a nominal input size of 201x201. ``PRESETS`` are the seed's four sizes (latent
128 / 512 / 2048 / 8192); the channel widths are ours, chosen so the parameter counts
land near the seed's table (about 0.5M, 2M, 8M and 32M; the real counts, 0.40M,
1.98M, 7.87M and 31.2M, are in the README's autoencoder section).

Sizes are (H, W), torch's order, everywhere in this family.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...config import Config, check_at_most, check_positive_int, is_int

__all__ = [
    "AutoencoderConfig",
    "BLOCK_TYPES",
    "LATENT_STRATEGIES",
    "LATENT_GRID",
    "PRESETS",
    "preset_config",
    "MAX_CHANNELS",
    "MAX_LATENT",
    "MAX_SIDE",
]

BLOCK_TYPES = ("resnet", "resnext", "se", "inception")
LATENT_STRATEGIES = ("conv", "spatial")
LATENT_GRID = 4  # both strategies pool the encoder's features to 4x4
MAX_CHANNELS = 2048  # wider stages would ask for gigabytes of weights
MAX_LATENT = 65536
MAX_STRIDE = 4
MAX_SIDE = 8192  # pixels a side of the nominal input size

PRESETS: dict[str, dict] = {
    "tiny": {
        "latent_size": 128,
        "block_config": ("resnet", "se", "resnet"),
        "channel_config": (16, 32, 64),
        "stride_config": (2, 2, 2),
    },
    "small": {
        "latent_size": 512,
        "block_config": ("resnet", "se", "resnet"),
        "channel_config": (32, 64, 96),
        "stride_config": (2, 2, 2),
    },
    "medium": {
        "latent_size": 2048,
        "block_config": ("resnet", "se", "resnet", "se"),
        "channel_config": (48, 96, 160, 96),
        "stride_config": (2, 2, 2, 2),
    },
    "large": {
        "latent_size": 8192,
        "block_config": ("resnet", "resnext", "se", "resnext"),
        "channel_config": (64, 128, 256, 112),
        "stride_config": (2, 2, 2, 2),
    },
}


def _as_tuple(name: str, value) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        raise ValueError(f"{name} must be a list, got {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class AutoencoderConfig(Config):
    """The autoencoder's architecture.

    latent_size:     the latent's size (the "spatial" strategy rounds it to a multiple of 16,
                     see ``latent_channels``)
    block_config:    one block type per encoder stage, from BLOCK_TYPES
    channel_config:  output channels of each stage
    stride_config:   the stride (1..4) each stage downsamples by
    latent_strategy: "conv" (pool 4x4, flatten, linear) or "spatial" (pool 4x4, 1x1 conv)
    use_attention:   self-attention over the encoder's final feature map
    input_size:      the nominal (H, W) input: ``decode`` returns it when given no size,
                     and training crops have it
    """

    latent_size: int = 512
    block_config: tuple[str, ...] = ("resnet", "se", "resnet")
    channel_config: tuple[int, ...] = (64, 128, 256)
    stride_config: tuple[int, ...] = (2, 2, 2)
    latent_strategy: str = "conv"
    use_attention: bool = True
    input_size: tuple[int, int] = (201, 201)

    settings_name = "autoencoder"

    def __post_init__(self) -> None:
        for name in ("block_config", "channel_config", "stride_config", "input_size"):
            object.__setattr__(self, name, _as_tuple(name, getattr(self, name)))  # JSON gives lists back
        check_positive_int("latent_size", self.latent_size)
        check_at_most("latent_size", self.latent_size, MAX_LATENT)
        self._check_stages()
        if self.latent_strategy not in LATENT_STRATEGIES:
            raise ValueError(
                f"latent_strategy must be one of {', '.join(LATENT_STRATEGIES)}, got {self.latent_strategy!r}"
            )
        if not isinstance(self.use_attention, bool):
            raise ValueError(f"use_attention must be true or false, got {self.use_attention!r}")
        if len(self.input_size) != 2 or not all(is_int(v) and 1 <= v <= MAX_SIDE for v in self.input_size):
            raise ValueError(f"input_size must be (H, W) with sides in 1..{MAX_SIDE}, got {self.input_size!r}")

    def _check_stages(self) -> None:
        if not self.block_config:
            raise ValueError("block_config must name at least one block")
        lengths = {len(self.block_config), len(self.channel_config), len(self.stride_config)}
        if len(lengths) != 1:
            raise ValueError(
                f"block_config, channel_config and stride_config must have one entry per stage, got "
                f"{len(self.block_config)}, {len(self.channel_config)} and {len(self.stride_config)} entries"
            )
        for block in self.block_config:
            if block not in BLOCK_TYPES:
                raise ValueError(f"block_config: unknown block {block!r}; choose from {', '.join(BLOCK_TYPES)}")
        for channels in self.channel_config:
            if not is_int(channels) or not 1 <= channels <= MAX_CHANNELS:
                raise ValueError(f"channel_config: channels must be ints in 1..{MAX_CHANNELS}, got {channels!r}")
        for stride in self.stride_config:
            if not is_int(stride) or not 1 <= stride <= MAX_STRIDE:
                raise ValueError(f"stride_config: strides must be ints in 1..{MAX_STRIDE}, got {stride!r}")

    @property
    def latent_channels(self) -> int:
        """The "spatial" latent's channels C': C' * 16 is the multiple of 16 nearest to
        ``latent_size`` (at least 16)."""
        return max(1, round(self.latent_size / LATENT_GRID**2))

    @property
    def flat_latent_size(self) -> int:
        """The length of ``encode``'s flat vector: ``latent_size`` for "conv", ``C' * 16`` for "spatial"."""
        if self.latent_strategy == "spatial":
            return self.latent_channels * LATENT_GRID**2
        return self.latent_size


def preset_config(preset: str, input_size=(201, 201), **overrides) -> AutoencoderConfig:
    """The config of a preset (tiny, small, medium, large) at ``input_size``, with
    ``overrides`` of any field; a ValueError names an unknown preset or field."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    fields = AutoencoderConfig.__dataclass_fields__
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ValueError(f"unknown autoencoder settings {unknown}")
    return AutoencoderConfig(**{**PRESETS[preset], "input_size": tuple(input_size), **overrides})
