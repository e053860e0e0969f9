"""Settings of the diffusion family, with the seed's (and the issue's) values as defaults.

* ``UNetConfig``: the conditional UNet (``diffusers.UNet2DModel``). The default is the
  seed's: in_channels 2 (x_t and the widefield conditioner), out_channels 1,
  layers_per_block 2, block_out_channels (128, 256, 512, 512), attention in the middle
  two levels (``AttnDownBlock2D`` / ``AttnUpBlock2D``), attention_head_dim 8,
  norm_num_groups 8. ``UNetConfig.cpu()`` is the small preset for tests and CPU runs
  (widths (32, 64, 64, 64), one layer per block; chosen here, not from the seed). It is
  the architecture, stored in every checkpoint.
* ``PhysicsConfig``: the widefield microscope: Gaussian PSF of sigma 2 px sampled on
  21 x 21 (the issue's), background 10 photons and a specimen peak of 100 photons
  (chosen here: a low-photon regime where Poisson noise matters), no Gaussian read
  noise by default, 128 x 128 synthetic specimens.
* ``DiffusionTrainConfig``: Adam at 1e-4 and an EMA of the weights with decay 0.999
  (with the usual warm-up ``min(decay, (1 + n) / (10 + n))`` after n updates, so short runs
  average over their own steps): chosen here; the 1000-step DDPM schedule of the seed
  (``squaredcos_cap_v2``, epsilon prediction, no sample clipping) is fixed in
  ``schedulers``.
* ``GuidanceConfig``: the issue's guidance: mode pkl / l2 / anscombe / none,
  lambda_base 0.1, T_thr 800, eps 1e-3 in the step normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...config import Config, check_at_most, check_non_negative, check_positive, check_positive_int

__all__ = [
    "UNetConfig",
    "PhysicsConfig",
    "DiffusionTrainConfig",
    "GuidanceConfig",
    "ATTENTION_BACKENDS",
    "GUIDANCE_MODES",
    "SPECIMEN_KINDS",
    "MIN_IMAGE_SIZE",
    "NUM_TRAIN_TIMESTEPS",
]

ATTENTION_BACKENDS = ("stegafast", "sdpa")
GUIDANCE_MODES = ("none", "pkl", "l2", "anscombe")
SPECIMEN_KINDS = ("mixed", "filaments", "beads", "blobs")
NUM_TRAIN_TIMESTEPS = 1000
# Four UNet levels halve the image three times; 16 leaves a 2 x 2 bottleneck.
MIN_IMAGE_SIZE = 16
MAX_WIDTH = 2048


@dataclass(frozen=True)
class UNetConfig(Config):
    """``diffusers.UNet2DModel`` arguments; ``attention`` picks the attention processor
    ("stegafast": the package's ``window_attention`` op, "sdpa": diffusers' default)."""

    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    attention_head_dim: int = 8
    norm_num_groups: int = 8
    attention: str = "stegafast"
    gradient_checkpointing: bool = False

    settings_name = "diffusion model"

    def __post_init__(self) -> None:
        object.__setattr__(self, "block_out_channels", tuple(self.block_out_channels))
        if len(self.block_out_channels) != 4:
            raise ValueError(f"block_out_channels must have 4 widths (one per level), got {self.block_out_channels}")
        for width in self.block_out_channels:
            check_positive_int("block_out_channels", width)
            check_at_most("block_out_channels", width, MAX_WIDTH)
            if width % self.norm_num_groups or width % self.attention_head_dim:
                raise ValueError(
                    f"block_out_channels {width} must be a multiple of norm_num_groups ({self.norm_num_groups}) "
                    f"and attention_head_dim ({self.attention_head_dim})"
                )
        for name in ("layers_per_block", "attention_head_dim", "norm_num_groups"):
            check_positive_int(name, getattr(self, name))
        check_at_most("attention_head_dim", self.attention_head_dim, 128)
        if self.attention not in ATTENTION_BACKENDS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTION_BACKENDS)}, got {self.attention!r}")
        if not isinstance(self.gradient_checkpointing, bool):
            raise ValueError(f"gradient_checkpointing must be a bool, got {self.gradient_checkpointing!r}")

    @classmethod
    def cpu(cls, **changes) -> UNetConfig:
        """The small preset for tests and CPU training."""
        return cls(**{"block_out_channels": (32, 64, 64, 64), "layers_per_block": 1, **changes})


@dataclass(frozen=True)
class PhysicsConfig(Config):
    """The forward model y = Poisson(PSF * x + background) + N(0, read_noise^2), x in photons
    (a specimen in [0, 1] times ``peak_photons``); ``psf_file`` replaces the Gaussian PSF."""

    psf_sigma: float = 2.0
    psf_size: int = 21
    psf_file: str | None = None
    background: float = 10.0
    read_noise: float = 0.0
    peak_photons: float = 100.0
    image_size: int = 128
    specimen: str = "mixed"

    settings_name = "physics"

    def __post_init__(self) -> None:
        check_positive("psf_sigma", self.psf_sigma)
        check_positive_int("psf_size", self.psf_size)
        if self.psf_size % 2 == 0:
            raise ValueError(f"psf_size must be odd (the PSF is centred on a pixel), got {self.psf_size}")
        for name in ("background", "read_noise"):
            check_non_negative(name, getattr(self, name))
        check_positive("peak_photons", self.peak_photons)
        check_positive_int("image_size", self.image_size)
        if self.image_size < MIN_IMAGE_SIZE:
            raise ValueError(f"image_size must be at least {MIN_IMAGE_SIZE}, got {self.image_size}")
        if self.specimen not in SPECIMEN_KINDS:
            raise ValueError(f"specimen must be one of {', '.join(SPECIMEN_KINDS)}, got {self.specimen!r}")


@dataclass(frozen=True)
class DiffusionTrainConfig(Config):
    """Optimiser and weight averaging of training."""

    lr: float = 1e-4
    ema_decay: float = 0.999

    settings_name = "diffusion training"

    def __post_init__(self) -> None:
        check_positive("lr", self.lr)
        check_non_negative("ema_decay", self.ema_decay)
        if not self.ema_decay < 1:
            raise ValueError(f"ema_decay must be below 1, got {self.ema_decay}")


@dataclass(frozen=True)
class GuidanceConfig(Config):
    """Physics guidance of the sampler: ``mode`` (none = unguided), the step
    lambda_t = lambda_base / (||g|| + eps) * min((T - t) / (T - t_threshold), 1)."""

    mode: str = "pkl"
    lambda_base: float = 0.1
    t_threshold: int = 800
    eps: float = 1e-3

    settings_name = "guidance"

    def __post_init__(self) -> None:
        if self.mode not in GUIDANCE_MODES:
            raise ValueError(f"mode must be one of {', '.join(GUIDANCE_MODES)}, got {self.mode!r}")
        check_non_negative("lambda_base", self.lambda_base)
        check_positive("eps", self.eps)
        if isinstance(self.t_threshold, bool) or not isinstance(self.t_threshold, int):
            raise ValueError(f"t_threshold must be an integer, got {self.t_threshold!r}")
        if not 0 <= self.t_threshold < NUM_TRAIN_TIMESTEPS:
            raise ValueError(f"t_threshold must be in 0..{NUM_TRAIN_TIMESTEPS - 1}, got {self.t_threshold}")
