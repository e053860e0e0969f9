"""The conditional denoiser: ``diffusers.UNet2DModel`` on [x_t, y] and the EMA of its weights.

``ConditionalUNet(x_t, t, cond)``: x_t and cond are (B, 1, H, W) in the normalised range
(``data.normalise``), H and W multiples of 8 (three downsamplings), t a (B,) integer
tensor of training timesteps 0..999; returns the predicted noise epsilon, (B, 1, H, W).
The UNet is built offline from its config (no hub access), with attention in its two
middle levels and mid block run by ``attention.set_attention``.
"""

from __future__ import annotations

import copy

import torch
from diffusers import UNet2DModel
from torch import nn

from .attention import set_attention
from .config import UNetConfig

__all__ = ["build_unet", "ConditionalUNet", "WeightEMA", "SIZE_MULTIPLE"]

SIZE_MULTIPLE = 8  # the UNet halves the image three times

_DOWN_BLOCKS = ("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "DownBlock2D")
_UP_BLOCKS = ("UpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D")


def build_unet(config: UNetConfig, sample_size: int = 128) -> UNet2DModel:
    """The seed's ``UNet2DModel`` (2 input channels: x_t and the conditioner; 1 output)."""
    unet = UNet2DModel(
        sample_size=sample_size,
        in_channels=2,
        out_channels=1,
        layers_per_block=config.layers_per_block,
        block_out_channels=config.block_out_channels,
        down_block_types=_DOWN_BLOCKS,
        up_block_types=_UP_BLOCKS,
        attention_head_dim=config.attention_head_dim,
        norm_num_groups=config.norm_num_groups,
    )
    set_attention(unet, config.attention)
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()  # recomputes block activations in the backward
    return unet


class ConditionalUNet(nn.Module):
    """Predicts epsilon from (x_t, t) given the widefield conditioner (module docstring)."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        self.unet = build_unet(config)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x_t`` and ``cond`` float (B, 1, H, W) in the normalised range (H, W multiples of SIZE_MULTIPLE, 8), ``t``
        an integer (B,) tensor of timesteps in 0..NUM_TRAIN_TIMESTEPS - 1 -> the predicted noise epsilon, a float
        (B, 1, H, W) tensor in the UNet's dtype (unbounded, about unit variance). A ValueError when the shapes differ,
        a side is not a multiple of 8 or there is more than one channel; ``t`` is not checked."""
        h, w = x_t.shape[-2:]
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE or x_t.shape != cond.shape or x_t.shape[1] != 1:
            raise ValueError(
                f"x_t and cond must both be (B, 1, H, W) with H, W multiples of {SIZE_MULTIPLE}; "
                f"got {tuple(x_t.shape)} and {tuple(cond.shape)}"
            )
        return self.unet(torch.cat([x_t, cond], dim=1), t).sample


class WeightEMA(nn.Module):
    """An exponential moving average of a ``ConditionalUNet``'s weights (what samplers use).

    ``update(model)`` after each optimiser step: decay min(decay, (1 + n) / (10 + n)) after n
    updates (the warm-up keeps early averages from being dominated by the initial weights).
    Buffers (none in this UNet; norms are GroupNorm) are copied. ``updates`` is a buffer, so
    checkpoints resume the average exactly.
    """

    def __init__(self, model: ConditionalUNet, decay: float):
        super().__init__()
        self.decay = decay
        self.model = copy.deepcopy(model)
        self.model.requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))

    def current_decay(self) -> float:
        """The decay the next ``update`` uses: min(decay, (1 + n) / (10 + n)) after n updates so far, in [0, 1)."""
        n = int(self.updates)
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move each averaged parameter towards ``model``'s by 1 - ``current_decay()`` (in place, no grad), copy its
        buffers and count the update. ``model`` must be the ``ConditionalUNet`` this average was copied from (same
        parameters in the same order)."""
        decay = self.current_decay()
        averaged = list(self.model.parameters())
        torch._foreach_lerp_(averaged, [p.detach() for p in model.parameters()], 1 - decay)
        for mine, theirs in zip(self.model.buffers(), model.buffers()):
            mine.copy_(theirs)
        self.updates += 1

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``ConditionalUNet.forward`` with the averaged weights: float (B, 1, H, W) ``x_t`` and ``cond`` (normalised
        range, H, W multiples of 8) and integer (B,) ``t`` in 0..999 -> the predicted epsilon, (B, 1, H, W); the same
        ValueError for bad shapes."""
        return self.model(x_t, t, cond)
