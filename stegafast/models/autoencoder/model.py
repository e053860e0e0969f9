"""The grayscale autoencoder: ``AutoencoderCNN`` (encoder, latent, decoder) and ``create_autoencoder``.

Images are float (B, 1, H, W) in [0, 1], any H, W (1..8192); reconstructions are
float (B, 1, H, W) in (0, 1) (a sigmoid), exactly the input's size.

Encoder: a 3x3 stem, one block per stage (``block_config`` types, ``channel_config``
widths, ``stride_config`` strides; a stage of stride s maps a side n to ceil(n / s)),
optionally ``PatchAttention`` over the final map, then the latent:

* "conv": adaptive average pool to 4x4, flatten, linear to ``latent_size``;
* "spatial": adaptive average pool to 4x4, 1x1 convolution to C' channels, C' * 16
  the multiple of 16 nearest to ``latent_size`` (``config.flat_latent_size``).

Decoder: the mirror image. The latent goes back to (C_last, 4, 4); each mirrored stage
resizes (bilinear) to the size the matching encoder stage received, computed from the
target size alone, and runs a block of the same type; a 3x3 head gives one channel.
It receives the latent and the target size and nothing else: there are no skip
connections from the encoder (residual shortcuts stay inside each block), so the
reconstruction is a function of the latent and the size only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ...config import is_int
from .attention import PatchAttention
from .blocks import group_norm, make_block
from .config import LATENT_GRID, MAX_SIDE, AutoencoderConfig, preset_config

__all__ = ["AutoencoderCNN", "Encoder", "Decoder", "create_autoencoder", "stage_sizes", "check_size"]

Size = tuple[int, int]


def check_size(size) -> Size:
    """An (H, W) pair of ints in 1..MAX_SIDE, or a ValueError naming it."""
    if not isinstance(size, (tuple, list, torch.Size)) or len(size) != 2 or not all(is_int(v) for v in size):
        raise ValueError(f"size must be an (H, W) pair of ints, got {size!r}")
    if not all(1 <= v <= MAX_SIDE for v in size):
        raise ValueError(f"size {tuple(size)}: sides must be in 1..{MAX_SIDE}")
    return int(size[0]), int(size[1])


def stage_sizes(size: Size, strides: Sequence[int]) -> list[Size]:
    """The feature-map sizes of the encoder for an (H, W) input: the input's, then each stage's."""
    sizes = [size]
    for s in strides:
        h, w = sizes[-1]
        sizes.append((-(-h // s), -(-w // s)))
    return sizes


def _run(module: nn.Module, x: torch.Tensor, checkpointing: bool) -> torch.Tensor:
    """``module(x)``, recomputed in the backward instead of stored when ``checkpointing`` (training only)."""
    if checkpointing and torch.is_grad_enabled():
        return checkpoint(module, x, use_reentrant=False)
    return module(x)


class Encoder(nn.Module):
    """(B, 1, H, W) -> the final feature map (B, C_last, h, w), attention applied."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        widths = config.channel_config
        self.stem = nn.Sequential(nn.Conv2d(1, widths[0], 3, 1, 1, bias=False), group_norm(widths[0]), nn.ReLU())
        ins = (widths[0], *widths[:-1])
        self.stages = nn.ModuleList(
            make_block(kind, cin, cout, stride)
            for kind, cin, cout, stride in zip(config.block_config, ins, widths, config.stride_config, strict=True)
        )
        self.attention = PatchAttention(widths[-1]) if config.use_attention else None
        self.checkpointing = False

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's map before attention."""
        x = self.stem(x)
        for stage in self.stages:
            x = _run(stage, x, self.checkpointing)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) float -> (B, C_last, h, w) of x's dtype, (h, w) the last of ``stage_sizes`` (each stride
        dividing a side, rounded up), after ``PatchAttention`` when the config uses it. Sizes are not checked here."""
        x = self.features(x)
        return self.attention(x) if self.attention is not None else x


class LatentHead(nn.Module):
    """The encoder's map -> the latent in its native shape: (B, latent_size) for "conv",
    (B, C', 4, 4) for "spatial"."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        channels = config.channel_config[-1]
        self.pool = nn.AdaptiveAvgPool2d(LATENT_GRID)
        if config.latent_strategy == "conv":
            self.map = nn.Sequential(nn.Flatten(), nn.Linear(channels * LATENT_GRID**2, config.latent_size))
        else:
            self.map = nn.Conv2d(channels, config.latent_channels, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C_last, h, w) -> adaptive average pool to (B, C_last, 4, 4) -> (B, latent_size) ("conv", a linear map)
        or (B, C', 4, 4) ("spatial", a 1x1 convolution); the features' dtype."""
        return self.map(self.pool(features))


class Decoder(nn.Module):
    """A latent and a target (H, W) -> (B, 1, H, W) in (0, 1)."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        self.config = config
        widths = config.channel_config
        last = widths[-1]
        if config.latent_strategy == "conv":
            self.expand = nn.Sequential(
                nn.Linear(config.latent_size, last * LATENT_GRID**2), nn.Unflatten(1, (last, LATENT_GRID, LATENT_GRID))
            )
        else:
            self.expand = nn.Conv2d(config.latent_channels, last, 1)
        outs = (widths[0], *widths[:-1])  # stage i of the encoder took outs[i] channels in
        self.stages = nn.ModuleList(
            make_block(kind, cin, cout) for kind, cin, cout in zip(config.block_config, widths, outs, strict=True)
        )[::-1]
        self.head = nn.Conv2d(widths[0], 1, 3, 1, 1)
        self.checkpointing = False

    def forward(self, latent: torch.Tensor, size: Size) -> torch.Tensor:
        """A latent (B, latent_size) ("conv") or (B, C', 4, 4) ("spatial") and a target (H, W) -> (B, 1, H, W) in
        (0, 1), the latent's dtype. Neither is checked here: ``AutoencoderCNN.decode`` checks them."""
        sizes = stage_sizes(size, self.config.stride_config)
        x = F.interpolate(self.expand(latent), size=sizes[-1], mode="bilinear", align_corners=False)
        for stage, target in zip(self.stages, sizes[-2::-1], strict=True):
            x = _run(stage, F.interpolate(x, size=target, mode="bilinear", align_corners=False), self.checkpointing)
        return torch.sigmoid(self.head(x))


def _v1_names(kwargs: dict) -> dict:
    """The seed's V1 constructor names as thin aliases: ``embedding_dim`` is ``latent_size``;
    ``DropOut`` existed in V1 but this model has no dropout, so only ``DropOut=False`` is taken."""
    kwargs = dict(kwargs)
    if "embedding_dim" in kwargs:
        value = kwargs.pop("embedding_dim")
        if value is not None:
            kwargs["latent_size"] = value
    if kwargs.pop("DropOut", False):
        raise ValueError("DropOut=True: this autoencoder has no dropout (V1's DropOut is accepted only as False)")
    return kwargs


class AutoencoderCNN(nn.Module):
    """The grayscale autoencoder (seed 003's "AutoEncoder CNN V3"); arguments are the fields
    of ``AutoencoderConfig`` (see there). ``AutoencoderCNN(**model.get_config())`` rebuilds
    the architecture.

    V1 names, thin aliases kept for the seed's callers: the constructor's ``embedding_dim``
    (= ``latent_size``) and ``DropOut`` (only False), and the method ``Embedding(x)``
    (= ``latent(x)``); ``decode_from_latent`` is ``decode``.
    """

    def __init__(
        self,
        latent_size: int = 512,
        block_config: Sequence[str] = ("resnet", "se", "resnet"),
        channel_config: Sequence[int] = (64, 128, 256),
        stride_config: Sequence[int] = (2, 2, 2),
        latent_strategy: str = "conv",
        use_attention: bool = True,
        input_size: Sequence[int] = (201, 201),
        **v1_names,
    ):
        super().__init__()
        unknown = sorted(set(v1_names) - {"embedding_dim", "DropOut"})
        if unknown:
            raise TypeError(f"AutoencoderCNN got unknown arguments {unknown}")
        settings = {
            "latent_size": latent_size,
            "block_config": block_config,
            "channel_config": channel_config,
            "stride_config": stride_config,
            "latent_strategy": latent_strategy,
            "use_attention": use_attention,
            "input_size": input_size,
        }
        self.config = AutoencoderConfig(**_v1_names({**settings, **v1_names}))
        self.encoder = Encoder(self.config)
        self.to_latent = LatentHead(self.config)
        self.decoder = Decoder(self.config)

    @classmethod
    def from_config(cls, config: AutoencoderConfig) -> AutoencoderCNN:
        """A freshly initialised model of ``config``'s architecture (``cls(**config.to_dict())``)."""
        return cls(**config.to_dict())

    def get_config(self) -> dict:
        """The constructor's arguments (JSON-able), what a checkpoint stores."""
        return self.config.to_dict()

    @property
    def latent_size(self) -> int:
        """The length of ``encode``'s flat latent."""
        return self.config.flat_latent_size

    def parameter_count(self) -> int:
        """The number of weights: elements of every parameter of the encoder, latent head and decoder."""
        return sum(p.numel() for p in self.parameters())

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each encoder and decoder stage in the backward instead of storing its
        activations (``torch.utils.checkpoint``, non-reentrant): less memory, more compute."""
        self.encoder.checkpointing = self.decoder.checkpointing = bool(enabled)

    # --- checks -------------------------------------------------------------------------------

    @staticmethod
    def _check_images(x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 1 or not x.is_floating_point():
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected float grayscale images (B, 1, H, W), got {shape}")
        if x.shape[0] < 1:
            raise ValueError("expected at least one image, got an empty batch")
        check_size(x.shape[-2:])
        return x

    def _check_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """A flat (B, latent_size) latent, or a spatial one in its native (B, C', 4, 4) shape."""
        flat = self.config.flat_latent_size
        native = (self.config.latent_channels, LATENT_GRID, LATENT_GRID)
        if not isinstance(latent, torch.Tensor) or not latent.is_floating_point():
            raise ValueError(f"the latent must be a float tensor, got {type(latent).__name__}")
        if latent.ndim == 2 and latent.shape[1] == flat and latent.shape[0] >= 1:
            return latent.unflatten(1, native) if self.config.latent_strategy == "spatial" else latent
        if self.config.latent_strategy == "spatial" and latent.ndim == 4 and tuple(latent.shape[1:]) == native:
            return latent
        raise ValueError(f"the latent must be (B, {flat}), got {tuple(latent.shape)}")

    # --- the model ----------------------------------------------------------------------------

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """The latent in its native shape: (B, latent_size) ("conv") or (B, C', 4, 4) ("spatial")."""
        return self.to_latent(self.encoder(self._check_images(x)))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The flat latent (B, ``self.latent_size``) of images (B, 1, H, W), for sequence models."""
        return self.latent(x).flatten(1)

    def decode(self, latent: torch.Tensor, size: Sequence[int] | None = None) -> torch.Tensor:
        """The (B, 1, H, W) reconstruction of a flat latent (or a spatial one, (B, C', 4, 4)) at
        ``size`` (H, W), by default the config's ``input_size``: exactly that size."""
        target = check_size(tuple(size) if size is not None else self.config.input_size)
        return self.decoder(self._check_latent(latent), target)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of x (B, 1, H, W), of x's size."""
        return self.decoder(self.latent(x), tuple(x.shape[-2:]))

    # --- looking inside -----------------------------------------------------------------------

    def get_attention_matrix(self, x: torch.Tensor) -> torch.Tensor | None:
        """(B, N, N) float32 attention probabilities between the N = h * w patches of the
        encoder's final map (row i: how patch i attends to every patch; rows sum to 1), the
        heads averaged; None for a model without attention. Computed explicitly from the
        attention module's q and k, for any N."""
        if self.encoder.attention is None:
            return None
        with torch.no_grad():
            return self.encoder.attention.attention_matrix(self.encoder.features(self._check_images(x)))

    def attention_grid(self, x: torch.Tensor) -> Size:
        """(h, w) of the patches ``get_attention_matrix`` relates, for an input like x."""
        return stage_sizes(tuple(x.shape[-2:]), self.config.stride_config)[-1]

    def get_attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) gradient saliency in [0, 1]: |d error / d x| of the squared
        reconstruction error (the input detached as the target, so the gradient flows through
        the network only), scaled so each image's largest value is 1. Parameter gradients are
        left untouched."""
        x = self._check_images(x).detach().requires_grad_(True)
        with torch.enable_grad():
            error = (self(x) - x.detach()).float().pow(2).sum()
            (grad,) = torch.autograd.grad(error, x)
        saliency = grad.abs().float()
        peak = saliency.amax(dim=(1, 2, 3), keepdim=True)
        return saliency / peak.clamp_min(torch.finfo(saliency.dtype).tiny)

    # --- V1 aliases ---------------------------------------------------------------------------

    def Embedding(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802 - the seed's V1 name
        """V1 alias of ``latent(x)`` (a spatial latent keeps its (B, C', 4, 4) shape)."""
        return self.latent(x)

    def decode_from_latent(self, latent: torch.Tensor, size: Sequence[int] | None = None) -> torch.Tensor:
        """Alias of ``decode``."""
        return self.decode(latent, size)


def create_autoencoder(preset: str = "small", input_size: Sequence[int] = (201, 201), **overrides) -> AutoencoderCNN:
    """The autoencoder of a preset (tiny, small, medium, large) at ``input_size``, any
    field overridden (the V1 name ``embedding_dim`` too)."""
    return AutoencoderCNN.from_config(preset_config(preset, input_size, **_v1_names(overrides)))
