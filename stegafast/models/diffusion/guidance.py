"""Physics guidance of the predicted clean image x0, in photons.

Each objective D(x) measures how well x explains the widefield measurement y under the
forward model (m = A x + B); its gradient g = dD/dx:

* ``pkl`` (Poisson negative log-likelihood): D = sum(m - y log(m + eps)),
  g = A^T(1 - y / (m + eps));
* ``l2``: D = 1/2 ||m - y||^2, g = A^T(m - y) (the descent direction is -g: a step
  x - lambda g lowers the misfit);
* ``anscombe``: L2 after the variance-stabilising transform, D = 1/2 ||2 sqrt(m + 3/8) -
  2 sqrt(y + 3/8)||^2, g = A^T((2 sqrt(m + 3/8) - 2 sqrt(y + 3/8)) / sqrt(m + 3/8)).

The step: x0 <- clamp(x0 - lambda_t g, 0) with lambda_t = lambda_base / (||g|| + eps) *
min((T - t) / (T - t_threshold), 1), T = 1000 and ||g|| the L2 norm of each image's
gradient: a step of length lambda_base (photons, over the whole image) once t <= t_threshold,
ramped up from 0 before.
"""

from __future__ import annotations

import torch

from .config import NUM_TRAIN_TIMESTEPS, GuidanceConfig
from .physics import ForwardModel

__all__ = ["objective", "gradient", "step_size", "guide", "LOG_EPS"]

LOG_EPS = 1e-6  # keeps the Poisson terms finite where A x + B reaches 0
_ANSCOMBE = 3.0 / 8.0


def objective(mode: str, x: torch.Tensor, y: torch.Tensor, forward: ForwardModel) -> torch.Tensor:
    """D(x) per image, shape (...,) of (..., H, W) (module docstring)."""
    m = forward.mean(x)
    if mode == "pkl":
        d = m - y * torch.log(m + LOG_EPS)
    elif mode == "l2":
        d = 0.5 * (m - y) ** 2
    elif mode == "anscombe":
        d = 0.5 * (2 * torch.sqrt(m.clamp_min(0) + _ANSCOMBE) - 2 * torch.sqrt(y.clamp_min(0) + _ANSCOMBE)) ** 2
    else:
        raise ValueError(f"no objective for guidance mode {mode!r}")
    return d.flatten(-2).sum(-1)


def gradient(mode: str, x: torch.Tensor, y: torch.Tensor, forward: ForwardModel) -> torch.Tensor:
    """dD/dx in closed form, the shape of x."""
    m = forward.mean(x)
    if mode == "pkl":
        residual = 1 - y / (m + LOG_EPS)
    elif mode == "l2":
        residual = m - y
    elif mode == "anscombe":
        root = torch.sqrt(m.clamp_min(0) + _ANSCOMBE)
        residual = (2 * root - 2 * torch.sqrt(y.clamp_min(0) + _ANSCOMBE)) / root
    else:
        raise ValueError(f"no gradient for guidance mode {mode!r}")
    return forward.adjoint(residual)


def step_size(g: torch.Tensor, t: int, config: GuidanceConfig) -> torch.Tensor:
    """lambda_t per image, shaped to broadcast over (..., H, W)."""
    norm = g.flatten(-2).norm(dim=-1)[..., None, None]
    ramp = min((NUM_TRAIN_TIMESTEPS - t) / (NUM_TRAIN_TIMESTEPS - config.t_threshold), 1.0)
    return config.lambda_base / (norm + config.eps) * ramp


def guide(x0: torch.Tensor, y: torch.Tensor, t: int, forward: ForwardModel, config: GuidanceConfig) -> torch.Tensor:
    """The corrected estimate clamp(x0 - lambda_t g, 0), in photons (x0 unchanged for mode none)."""
    if config.mode == "none":
        return x0
    g = gradient(config.mode, x0, y, forward)
    return (x0 - step_size(g, t, config) * g).clamp_min(0)
