"""Glow's activation normalisation: a per-channel affine map, initialised from data or at the identity."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from .invertible import InvertibleModule, precise_dtype

__all__ = ["ActNorm"]


class ActNorm(InvertibleModule):
    """``y = (x + bias) * exp(log_scale)`` per channel (Glow, Kingma & Dhariwal 2018).

    With ``data_init=True`` (default, Glow's) the first ``forward`` call
    initialises ``bias`` and ``log_scale`` so that that batch comes out with zero
    mean and unit variance per channel, then sets the ``initialized`` buffer.
    With ``data_init=False`` the layer starts, and stays until trained, the
    identity (bias 0, scale 1): the buffer is set at construction, so no batch
    re-scales it. The buffer is part of the state dict, so a loaded layer keeps
    its loaded parameters and is never re-initialised.
    ``inverse`` never initialises: before the first forward the layer is the identity.

    Reading the buffer is a host sync, and under ``torch.compile`` a graph break (a
    branch on data), so the layer reads it only until it has seen itself initialised:
    from then on a plain attribute says so, which compiled graphs guard on instead
    (the first compiled step breaks at the read; the recompiled ones after it do not).
    Loading a state dict makes the layer read the buffer again.

    The scale is stored as its logarithm, so it stays positive (the layer stays
    invertible) whatever the optimiser does; ``scale`` gives ``exp(log_scale)``.
    log|det| per sample is ``H * W * sum(log_scale)``.
    """

    def __init__(self, channels: int, eps: float = 1e-6, data_init: bool = True):
        super().__init__(channels)
        if not eps > 0:
            raise ValueError(f"ActNorm: eps must be positive, got {eps!r}")
        if not isinstance(data_init, bool):
            raise TypeError(f"ActNorm: data_init must be True or False, got {data_init!r}")
        self.eps = float(eps)
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        # without data init the zero bias and log-scale above are final: mark them as initialised
        self.register_buffer("initialized", torch.tensor(not data_init))
        self._seen_initialized = not data_init  # mirrors the buffer once it was read True (see the class docstring)
        self.register_load_state_dict_post_hook(_forget_initialized)

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Set bias and scale from a batch: zero mean, unit variance per channel.

        Under torch.distributed the statistics are those of the global batch
        (summed over every process), so that all processes start from the same
        parameters: DistributedDataParallel broadcasts parameters only once, when
        it wraps the model, before this first forward."""
        self._check_input("initialize", "x", x)
        stats = x.detach().to(torch.float64)
        moments = torch.stack(
            [
                stats.sum(dim=(0, 2, 3)),
                stats.square().sum(dim=(0, 2, 3)),
                torch.full(
                    (stats.shape[1],), float(stats.numel() // stats.shape[1]), dtype=torch.float64, device=stats.device
                ),
            ]
        )
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(moments)
        total, total_sq, count = moments
        mean = total / count
        var = (total_sq / count - mean.square()).clamp_min(0)
        # eps keeps a constant channel (or a 1x1 batch of one) finite
        std = var.sqrt()
        self.bias.copy_(-mean.view_as(self.bias))
        self.log_scale.copy_(-torch.log(std + self.eps).view_as(self.log_scale))
        self.initialized.fill_(True)
        self._seen_initialized = True

    def _logdet(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        dtype = precise_dtype(x)
        return (self.log_scale.to(dtype).sum() * (h * w)).repeat(x.shape[0])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y, logdet)``: ``y = (x + bias) * exp(log_scale)``; x float (B, C, H, W) with C = ``channels``, y the same
        shape and dtype.

        The first call initialises the parameters from ``x``. ``logdet`` (B,) is float64 for float64 inputs, else
        float32: ``H * W * sum(log_scale)`` per sample.
        """
        self._check_input("forward", "x", x)
        if not self._seen_initialized:
            if not bool(self.initialized):
                self.initialize(x)
            self._seen_initialized = True
        y = (x + self.bias.to(x.dtype)) * self.log_scale.exp().to(x.dtype)
        return y, self._logdet(x)

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, logdet)``: ``x = y * exp(-log_scale) - bias``; y float (B, C, H, W) with C = ``channels``, x the same
        shape and dtype.

        Never initialises. ``logdet`` (B,) is float64 for float64 inputs, else float32, the negative of ``forward``'s.
        """
        self._check_input("inverse", "y", y)
        x = y * torch.exp(-self.log_scale).to(y.dtype) - self.bias.to(y.dtype)
        return x, -self._logdet(y)


def _forget_initialized(module: ActNorm, incompatible_keys) -> None:
    """After ``load_state_dict``: the loaded ``initialized`` buffer decides again."""
    module._seen_initialized = False
