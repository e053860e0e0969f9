"""Running the diffusers UNet's attention on the package's ``window_attention`` op.

``UNet2DModel`` has no ``set_attn_processor``, so ``set_attention`` walks ``unet.modules()``
and sets the processor of every ``diffusers`` ``Attention`` module.

``WindowAttentionProcessor`` computes the same self-attention as diffusers' default
``AttnProcessor2_0`` (group norm, q/k/v projections, heads, output projection, residual,
rescale), with the attention itself through ``stegafast.ops.window_attention``: all H * W
tokens of a feature map are one window. The op takes at most 256 tokens per window
(``MAX_TOKENS``); a map with more (16 x 16 is the largest square that fits) is not split
(windows would change what the model computes): that call uses
``F.scaled_dot_product_attention``, as diffusers does. At the default 128 x 128 input the
UNet attends at 64 x 64 and 32 x 32 (its attention levels: SDPA) and at 16 x 16 (the mid
block: the op).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from torch import nn

from ...ops import window_attention
from ...ops.attention import MAX_HEAD_DIM, MAX_TOKENS

__all__ = ["WindowAttentionProcessor", "set_attention", "attention_modules"]


class WindowAttentionProcessor:
    """A diffusers attention processor for self-attention over a (B, C, H, W) or (B, N, C)
    input, without mask or cross-attention (what ``UNet2DModel`` uses)."""

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        if encoder_hidden_states is not None or attention_mask is not None:
            raise ValueError("WindowAttentionProcessor runs self-attention only (no mask, no encoder states)")
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        spatial = hidden_states.dim() == 4
        if spatial:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        batch, tokens, inner = q.shape
        head_dim = inner // attn.heads
        q, k, v = (t.view(batch, tokens, attn.heads, head_dim).transpose(1, 2) for t in (q, k, v))
        if attn.norm_q is not None:
            q = attn.norm_q(q)
        if attn.norm_k is not None:
            k = attn.norm_k(k)
        if tokens <= MAX_TOKENS and head_dim <= MAX_HEAD_DIM:
            out = window_attention(q.contiguous(), k.contiguous(), v.contiguous(), scale=attn.scale)
        else:  # more tokens than one window of the op holds: diffusers' own computation
            out = F.scaled_dot_product_attention(q, k, v, scale=attn.scale)
        out = out.transpose(1, 2).reshape(batch, tokens, inner).to(q.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if spatial:
            out = out.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def attention_modules(model: nn.Module) -> list[Attention]:
    """Every diffusers ``Attention`` module of ``model``, in ``model.modules()`` order (empty when it has none)."""
    return [m for m in model.modules() if isinstance(m, Attention)]


def set_attention(model: nn.Module, backend: str) -> int:
    """Set every ``Attention`` module of ``model`` to ``backend`` ("stegafast" or "sdpa");
    returns how many were set."""
    if backend not in ("stegafast", "sdpa"):
        raise ValueError(f"attention backend must be 'stegafast' or 'sdpa', got {backend!r}")
    modules = attention_modules(model)
    for module in modules:
        module.set_processor(WindowAttentionProcessor() if backend == "stegafast" else AttnProcessor2_0())
    return len(modules)
