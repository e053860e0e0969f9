"""Settings of the StegaStamp family, with the original's values as defaults.

``StampModelConfig`` is the architecture; every checkpoint stores it (in the
training task's identity), so ``encode``, ``decode`` and ``export-onnx``
rebuild the network that was trained. ``StampLossConfig`` and
``StampNoiseConfig`` only shape training.

Where the defaults come from: the seed (the PyTorch port of StegaStamp, whose
defaults are the original ``train.py``'s): image size 400, 100 secret bits,
Adam at 1e-4 for the encoder and decoder, batch 4, 140 000 steps; loss scales
L2 1.5, secret 1.0, critic (G) 1.0; the loss ramps of ``train.py`` (L2 and G
over 20 000 steps, secret over 1 step, the L2 edge gain of 10 ramped over
20 000 steps after a delay of 60 000); the first 500 steps train the secret
loss alone; the WGAN critic is trained with RMSprop at 1e-5 and its weights
clipped to +-0.01, one critic update per generator update. The issue fixes the
YUV weights (1, 100, 100) and JPEG qualities 50..100 (the seed's ``train.py``
goes down to 25). The noise maxima (warp 10 % of the size, noise std 0.02,
brightness 0.3, hue 0.1, contrast 0.5..1.5, full desaturation) and their
ramps (warp over 10 000 steps, every other term over 1 000) are the original's.

The original's regime (issue 14): the training JPEG rounds with
``round_only_at_0`` (the identity except a cube below |0.5|, no hard
rounding: ``utils.round_only_at_0``), the critic's gradients are clipped
elementwise to +-0.25 before its RMSprop step and its weights to +-0.01 after
it, the encoder's convolutions start from he_normal (a normal truncated at two
standard deviations, std sqrt(2 / fan_in) / 0.8796, zero biases, as Keras's),
and the residual is the 1x1 convolution of ``conv9`` (the original builds
``conv10`` and never uses it). ``PRESETS["paper"]`` holds ``scripts/base.sh``'s
weights: L2 2, secret 1.5, GAN 0.5, LPIPS 1.5, ramps 15 000, edge gain
ramped over 10 000 steps after 80 000, 1500 secret-only steps.

Distortions and the training size. The original trains at 400 px, and its
blur (sigma 1..3 px in a 7x7 kernel, motion lines 3 px long) and noise (std
0.02 per pixel) are in pixels of that image. With ``reference_size`` R (400
by default) a model trained at S px sees the same distortions relative to the
image: every blur length (sigmas, line width, kernel half-side) is multiplied
by S / R, and the noise std by S / R too (one pixel at S stands for (R / S)^2
pixels at R, whose independent noise averages to a std R / S times smaller).
The warp is a fraction of the side already and does not change; colour terms
have no size. ``reference_size=0`` keeps the strengths in the training
image's own pixels (the behaviour before issue 14). JPEG works on 8x8 pixel
blocks: ``jpeg_scale="reference"`` resamples each image to R px (bilinear),
compresses it there and resamples it back (area), so a small model is trained
against JPEG of the R px image it stands for; ``"native"`` (the default)
compresses the S px image itself, which is what ``stegafast stamp evaluate``
measures on S px crops.

Deliberate differences from the original (documented where they act): the
Gaussian/motion blur is ramped in like every other term (the original applies
it from the first step). LPIPS (``lpips=True``) needs the ``lpips`` package and
its AlexNet weights on disk (nothing is downloaded), so it is off by default.

Checkpoints written before issue 14 lack ``residual_layer``: they read as
``"conv10"``, the layer they were trained with (``StampModelConfig.from_dict``).

Ramps are in steps, as the original's; ``scaled(factor)`` multiplies every
ramp and delay at once, which is how a short run keeps the original's
proportions (``stegafast stamp train --ramp-scale``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

from ...config import (
    Config,
    check_at_most,
    check_non_negative,
    check_non_negative_int,
    check_positive,
    check_positive_int,
    check_probability,
    is_int,
)

__all__ = [
    "StampModelConfig",
    "StampLossConfig",
    "StampNoiseConfig",
    "MIN_IMAGE_SIZE",
    "MAX_IMAGE_SIZE",
    "MAX_SECRET_BITS",
    "SIZE_MULTIPLE",
    "ROUNDINGS",
    "RESIDUAL_LAYERS",
    "JPEG_SCALES",
    "PRESETS",
    "REFERENCE_SIZE",
]

# The U-Net halves the image four times and the secret map is S/8 on a side: sides are multiples of 16.
SIZE_MULTIPLE = 16
MIN_IMAGE_SIZE = 32
MAX_IMAGE_SIZE = 4096  # the secret's dense layer grows with the square of the size
# the secret's dense layer has secret_bits x 3 (S/8)^2 weights: 4096 bits at S = 400 is 31M
MAX_SECRET_BITS = 4096
ROUNDINGS = ("round_only_at_0", "ste", "cubic", "ste_cubic")
# conv9: the original's residual input; conv10: what checkpoints before issue 14 used
RESIDUAL_LAYERS = ("conv9", "conv10")
JPEG_SCALES = ("native", "reference")
REFERENCE_SIZE = 400  # the original's training size: the distortions' strengths are given there


def check_image_size(size) -> None:
    """A ValueError unless ``size`` is a multiple of 16 from 32 to MAX_IMAGE_SIZE."""
    check_positive_int("image_size", size)
    check_at_most("image_size", size, MAX_IMAGE_SIZE)
    if size < MIN_IMAGE_SIZE or size % SIZE_MULTIPLE:
        raise ValueError(
            f"image_size must be a multiple of {SIZE_MULTIPLE} of at least {MIN_IMAGE_SIZE} "
            f"(the U-Net halves it four times), got {size}"
        )


@dataclass(frozen=True)
class StampModelConfig(Config):
    """The networks: square ``image_size`` inputs (a multiple of 16, at least 32;
    400 in the original) and ``secret_bits`` bits. The secret goes through a
    dense layer to 3 x (S/8) x (S/8) values, upsampled x8 to the image size
    (the original's 7500 -> 3x50x50 at S = 400). ``residual_layer``: the
    encoder's residual is the 1x1 convolution of ``conv9`` (the original's) or
    of ``conv10`` (what this package trained before issue 14; a stored config
    without the field reads as that)."""

    image_size: int = 400
    secret_bits: int = 100
    residual_layer: str = "conv9"

    # what a stored config without the field was trained with (checkpoints before issue 14)
    legacy_defaults: ClassVar[dict[str, Any]] = {"residual_layer": "conv10"}

    def __post_init__(self) -> None:
        check_image_size(self.image_size)
        check_positive_int("secret_bits", self.secret_bits)
        check_at_most("secret_bits", self.secret_bits, MAX_SECRET_BITS)
        if self.residual_layer not in RESIDUAL_LAYERS:
            raise ValueError(f"residual_layer must be one of {', '.join(RESIDUAL_LAYERS)}, got {self.residual_layer!r}")

    @property
    def secret_map_size(self) -> int:
        return self.image_size // 8


@dataclass(frozen=True)
class StampLossConfig(Config):
    """Loss weights, their ramps (in steps) and the optimisers.

    generator loss = l2(t) * YUV-weighted L2 (with the edge falloff of gain edge(t))
                   + secret(t) * BCE(secret logits, bits) + critic(t) * critic(encoded)
                   [+ lpips(t) * LPIPS(original, encoded) when ``lpips``]
    where each weight rises linearly from 0 to its scale over its ramp
    (``edge`` only after ``l2_edge_delay`` steps) and the first
    ``no_image_loss_steps`` steps train the secret loss alone. The critic's
    gradients are clipped elementwise to +-``critic_grad_clip`` (0: not at all)
    before its step, its weights to +-``critic_clip`` after it.
    """

    l2_scale: float = 1.5
    l2_ramp: int = 20000
    yuv_scales: tuple[float, float, float] = (1.0, 100.0, 100.0)
    l2_edge_gain: float = 10.0
    l2_edge_ramp: int = 20000
    l2_edge_delay: int = 60000
    secret_scale: float = 1.0
    secret_ramp: int = 1
    critic_scale: float = 1.0
    critic_ramp: int = 20000
    no_image_loss_steps: int = 500
    gan: bool = True
    critic_updates: int = 1
    critic_clip: float = 0.01
    critic_grad_clip: float = 0.25
    lr: float = 1e-4
    critic_lr: float = 1e-5
    lpips: bool = False
    lpips_scale: float = 1.0
    lpips_ramp: int = 20000

    def __post_init__(self) -> None:
        object.__setattr__(self, "yuv_scales", tuple(self.yuv_scales))
        if len(self.yuv_scales) != 3:
            raise ValueError(f"yuv_scales must be three weights (Y, U, V), got {self.yuv_scales!r}")
        for i, value in enumerate(self.yuv_scales):
            check_non_negative(f"yuv_scales[{i}]", value)
        for name in (
            "l2_scale",
            "l2_edge_gain",
            "secret_scale",
            "critic_scale",
            "critic_clip",
            "critic_grad_clip",
            "lpips_scale",
        ):
            check_non_negative(name, getattr(self, name))
        for name in self.STEP_FIELDS:
            check_non_negative_int(name, getattr(self, name))
        check_positive_int("critic_updates", self.critic_updates)
        for name in ("gan", "lpips"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("lr", "critic_lr"):
            check_positive(name, getattr(self, name))

    def scaled(self, factor: float) -> StampLossConfig:
        """The same losses with every ramp and delay multiplied by ``factor`` (rounded)."""
        return replace(self, **_scaled_steps(self, factor, self.STEP_FIELDS))

    STEP_FIELDS: ClassVar[tuple[str, ...]] = (
        "l2_ramp",
        "l2_edge_ramp",
        "l2_edge_delay",
        "secret_ramp",
        "critic_ramp",
        "lpips_ramp",
        "no_image_loss_steps",
    )


# scripts/base.sh of the original, the command its paper's model was trained with (the rest are train.py's defaults)
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "paper": {
        "l2_scale": 2.0,
        "l2_ramp": 15000,
        "secret_scale": 1.5,
        "critic_scale": 0.5,
        "critic_ramp": 15000,
        "lpips_scale": 1.5,
        "lpips_ramp": 15000,
        "l2_edge_ramp": 10000,
        "l2_edge_delay": 80000,
        "no_image_loss_steps": 1500,
    },
}


@dataclass(frozen=True)
class StampNoiseConfig(Config):
    """The distortions between encoder and decoder, each at its maximum; every
    term's strength rises linearly from 0 (the identity) to 1 over its ramp.

    Lengths and the noise std are the original's at ``reference_size`` px and
    scale with the training size (module docstring); ``reference_size=0``
    takes them in the training image's pixels.

    warp:        perspective warp, each corner moved up to this fraction of the
                 side (uniform per coordinate); outside the image is black
    blur_prob:   probability of a 7x7 blur per image (at the reference size),
                 half Gaussian (sigma 1..3) and half motion (a line of width
                 3..3.1 and sigma 0.25..1); the applied kernel is
                 (1 - r) * identity + r * blur at strength r
    noise:       Gaussian noise, std uniform in [0, r * noise]
    brightness:  an offset uniform in +-r * brightness per image
    hue:         an offset uniform in +-r * hue per image and channel
    contrast:    a factor uniform in [1 - r (1 - low), 1 + r (high - 1)]
    saturation:  blend towards luminance (0.3, 0.6, 0.1) by uniform [0, r * saturation]
    jpeg:        ``stegafast.nn.DiffJPEG`` (4:2:0, ``jpeg_rounding``) at a quality
                 uniform in [100 - r (100 - jpeg_quality_min), 100], per image;
                 on the image itself (``jpeg_scale="native"``) or resampled to
                 ``reference_size`` (``"reference"``)

    ``noise_delay``: every ramp starts that many steps late, so the first steps
    train on clean images (0, the original's schedule: the ramps start at step 0).
    A curriculum for short runs, where the secret's code has to be found before
    the distortions make it hard to find.
    """

    warp: float = 0.1
    warp_ramp: int = 10000
    blur_prob: float = 0.5
    blur_ramp: int = 1000
    noise: float = 0.02
    noise_ramp: int = 1000
    brightness: float = 0.3
    brightness_ramp: int = 1000
    hue: float = 0.1
    hue_ramp: int = 1000
    contrast_low: float = 0.5
    contrast_high: float = 1.5
    contrast_ramp: int = 1000
    saturation: float = 1.0
    saturation_ramp: int = 1000
    jpeg: bool = True
    jpeg_quality_min: int = 50
    jpeg_ramp: int = 1000
    jpeg_rounding: str = "round_only_at_0"
    reference_size: int = REFERENCE_SIZE
    jpeg_scale: str = "native"
    noise_delay: int = 0

    def __post_init__(self) -> None:
        for name in ("warp", "noise", "brightness", "hue", "contrast_high", "contrast_low"):
            check_non_negative(name, getattr(self, name))
        check_probability("blur_prob", self.blur_prob)
        check_non_negative("saturation", self.saturation)
        if self.saturation > 1:
            raise ValueError(f"saturation must be within [0, 1] (a blend fraction), got {self.saturation!r}")
        if self.warp >= 0.5:
            raise ValueError(f"warp must be below 0.5 (a fraction of the side per corner), got {self.warp!r}")
        if not self.contrast_low <= 1 <= self.contrast_high:
            raise ValueError(
                f"contrast_low <= 1 <= contrast_high is needed, got {self.contrast_low!r} and {self.contrast_high!r}"
            )
        for name in self.step_names():
            check_non_negative_int(name, getattr(self, name))
        if not is_int(self.jpeg_quality_min) or not 1 <= self.jpeg_quality_min <= 100:
            raise ValueError(f"jpeg_quality_min must be a whole number in 1..100, got {self.jpeg_quality_min!r}")
        if not isinstance(self.jpeg, bool):
            raise ValueError(f"jpeg must be True or False, got {self.jpeg!r}")
        if self.jpeg_rounding not in ROUNDINGS:
            raise ValueError(f"jpeg_rounding must be one of {', '.join(ROUNDINGS)}, got {self.jpeg_rounding!r}")
        check_non_negative_int("reference_size", self.reference_size)
        check_at_most("reference_size", self.reference_size, MAX_IMAGE_SIZE)
        if self.jpeg_scale not in JPEG_SCALES:
            raise ValueError(f"jpeg_scale must be one of {', '.join(JPEG_SCALES)}, got {self.jpeg_scale!r}")
        if self.jpeg_scale == "reference" and not self.reference_size:
            raise ValueError("jpeg_scale 'reference' needs a reference_size (0 turns the size scaling off)")

    def length_scale(self, size: int) -> float:
        """What the blur's lengths and the noise std are multiplied by at a training size of ``size`` px."""
        return size / self.reference_size if self.reference_size else 1.0

    @classmethod
    def ramp_names(cls) -> tuple[str, ...]:
        """The names of the fields ending in ``_ramp`` (the steps over which each distortion ramps up), in field
        order."""
        return tuple(f.name for f in fields(cls) if f.name.endswith("_ramp"))

    @classmethod
    def step_names(cls) -> tuple[str, ...]:
        """The fields counted in steps: every ramp and ``noise_delay``."""
        return (*cls.ramp_names(), "noise_delay")

    def scaled(self, factor: float) -> StampNoiseConfig:
        """The same distortions with every ramp and the delay multiplied by ``factor`` (rounded)."""
        return replace(self, **_scaled_steps(self, factor, self.step_names()))


def _scaled_steps(config, factor: float, names) -> dict[str, int]:
    check_non_negative("ramp scale", factor)
    return {name: int(round(getattr(config, name) * factor)) for name in names}
