"""Generalised divisive normalisation (Balle et al. 2016), the codec's nonlinearity.

``GDN``:  y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)
``IGDN``: y_i = x_i * sqrt(beta_i + sum_j gamma_ij x_j^2)   (its approximate inverse)

beta and gamma must stay non-negative (beta above a small minimum), so they are
stored reparameterised: the stored value p gives ``lower_bound(p, sqrt(min +
eps))^2 - eps`` (eps = 2^-36, a pedestal that keeps the gradient alive near
zero), as in Balle's reference code and CompressAI.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...entropy import lower_bound

__all__ = ["NonNegative", "GDN"]


class NonNegative(nn.Module):
    """The reparameterisation x -> lower_bound(x, sqrt(minimum + pedestal))^2 - pedestal."""

    def __init__(self, minimum: float = 0.0, offset: float = 2.0**-18):
        super().__init__()
        self.pedestal = offset**2
        self.bound = (float(minimum) + self.pedestal) ** 0.5

    def init(self, value: torch.Tensor) -> torch.Tensor:
        """The stored parameter that represents ``value``."""
        return torch.sqrt(torch.clamp(value + self.pedestal, min=self.pedestal))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The non-negative value (>= ``minimum``) that stored parameter ``x`` represents; same shape and dtype."""
        return lower_bound(x, self.bound) ** 2 - self.pedestal


class GDN(nn.Module):
    """GDN over the channels of (B, C, H, W); ``inverse=True`` gives IGDN."""

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = bool(inverse)
        self.beta_reparam = NonNegative(minimum=beta_min)
        self.gamma_reparam = NonNegative()
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(channels)))
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """GDN (or IGDN) of ``x``: float (B, C, H, W) with C = ``channels``, same shape and dtype out."""
        c = x.shape[1]
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(c, c, 1, 1)
        norm = F.conv2d(x * x, gamma.to(x.dtype), beta.to(x.dtype))
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))

    def extra_repr(self) -> str:
        """``inverse=True`` for IGDN, for ``repr()``."""
        return "inverse=True" if self.inverse else ""
