"""``--channels-last``: models and image batches in the channels-last (NHWC) memory format.

Convolutions on CPU (oneDNN) and on recent GPUs (cuDNN, tensor cores) run faster on NHWC
than on NCHW, and an NHWC input to a convolution gives an NHWC output, so once the weights
and the batch are channels-last the format carries through the network without copies.
The shapes do not change (a channels-last tensor is an (N, C, H, W) tensor with other
strides), so tasks and losses need no change; ``Module.to(memory_format=...)`` converts only
4-d parameters and buffers, which is why it is safe on any model.

The native ops (ILWT, affine coupling, DiffJPEG, window attention) take channels-last input
but read it as NCHW: their C++ makes one contiguous copy of such an input and writes NCHW
outputs (the README (section "Training speed") measures what that costs).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .data import map_tensors

__all__ = ["batch_to_channels_last", "models_to_channels_last"]


def models_to_channels_last(models: dict[str, nn.Module]) -> dict[str, nn.Module]:
    """Every model's 4-d weights and buffers in channels-last, in place; returns ``models``."""
    for model in models.values():
        model.to(memory_format=torch.channels_last)
    return models


def _to_channels_last(tensor: torch.Tensor) -> torch.Tensor:
    # Only floating image batches: labels, bit vectors and index tensors keep their layout.
    if tensor.dim() == 4 and tensor.is_floating_point():
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor


def batch_to_channels_last(batch: Any) -> Any:
    """``batch`` with every floating 4-d tensor inside it channels-last (others as they are)."""
    return map_tensors(batch, _to_channels_last)
