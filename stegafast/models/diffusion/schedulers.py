"""The noise schedules: DDPM for training, DDIM and DPM-Solver++ for sampling.

Training uses the seed's ``DDPMScheduler(num_train_timesteps=1000,
beta_schedule="squaredcos_cap_v2", prediction_type="epsilon", clip_sample=False)``. Every
sampler is built from its config (``from_config``), so they share the trained schedule:

* ``ddim``: ``DDIMScheduler`` (eta 0), 50 or 100 steps (any count);
* ``dpmpp``: ``DPMSolverMultistepScheduler`` with ``algorithm_type="dpmsolver++"``,
  ``solver_order=2``, ``use_karras_sigmas=True``, 25 steps by default. The last step goes to
  sigma 0 with a first-order update (``final_sigmas_type="zero"``,
  ``lower_order_final=True``, diffusers' defaults, stated here because they matter: the
  final second-order step to sigma 0 is what is unstable at few steps).

  What goes wrong without more: ``squaredcos_cap_v2`` ends with betas capped at 0.999, so
  sigma_t = sqrt((1 - abar_t) / abar_t) climbs from about 71 at t = 990 to about 20300 at
  t = 999. Karras sigmas span [sigma_min, sigma_max] with rho = 7, and with that sigma_max
  11 of 25 steps fall on timesteps 997-998 (the UNet sees the same t again and again)
  and only about 13 are left for the denoising itself. Capping sigma_max at 80 (the EDM
  paper's value; ``DPM_SIGMA_MAX``, through the scheduler's ``sigma_max`` config entry
  that ``_convert_to_karras`` reads) gives 25 distinct timesteps from 990 down. Pass
  ``dpm_sigma_max=None`` for diffusers' uncapped default (the benchmark compares both).
  With repeated timesteps the solver also mislocates its first step unless told where it
  begins (``set_begin_index(0)``, done here).

``alpha_sigma(scheduler, t)`` gives the (alpha_t, sigma_t) of x_t = alpha_t x0 + sigma_t eps
*as the scheduler uses them* at timestep t: DDIM reads ``alphas_cumprod[t]``;
DPM-Solver++ with Karras sigmas steps on its own sigma grid (``scheduler.sigmas``), whose
values are not exactly those of the rounded integer timestep the UNet sees, so guidance must
take them from that grid to convert x0 <-> epsilon consistently with the solver.
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

from .config import NUM_TRAIN_TIMESTEPS

__all__ = ["SAMPLERS", "DEFAULT_STEPS", "DPM_SIGMA_MAX", "training_scheduler", "sampling_scheduler", "alpha_sigma"]

SAMPLERS = ("ddim", "dpmpp")
DEFAULT_STEPS = {"ddim": 50, "dpmpp": 25}
DPM_SIGMA_MAX = 80.0


def training_scheduler() -> DDPMScheduler:
    """A fresh DDPM scheduler of the training schedule (module docstring): NUM_TRAIN_TIMESTEPS (1000) steps,
    ``squaredcos_cap_v2`` betas, epsilon prediction, no clipping; also the config every sampler is built from."""
    return DDPMScheduler(
        num_train_timesteps=NUM_TRAIN_TIMESTEPS,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="epsilon",
        clip_sample=False,
    )


def sampling_scheduler(
    name: str, steps: int, device: torch.device | str = "cpu", dpm_sigma_max: float | None = DPM_SIGMA_MAX
):
    """A sampler of the training schedule, its timesteps set for ``steps`` steps
    (``dpm_sigma_max``: DPM-Solver++'s largest Karras sigma, None for the schedule's own)."""
    if name not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {name!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= NUM_TRAIN_TIMESTEPS:
        raise ValueError(f"steps must be an integer in 1..{NUM_TRAIN_TIMESTEPS}, got {steps!r}")
    base = training_scheduler().config
    if name == "ddim":
        scheduler = DDIMScheduler.from_config(base)
    else:
        scheduler = DPMSolverMultistepScheduler.from_config(
            base,
            algorithm_type="dpmsolver++",
            solver_order=2,
            use_karras_sigmas=True,
            final_sigmas_type="zero",
            lower_order_final=True,
        )
        if dpm_sigma_max is not None:
            scheduler.register_to_config(sigma_max=float(dpm_sigma_max))
    scheduler.set_timesteps(steps, device=device)
    if hasattr(scheduler, "set_begin_index"):
        # the solver otherwise finds its first step by looking its timestep up, and a repeated
        # timestep (uncapped Karras sigmas) is taken as its second occurrence: every sigma is then
        # read one step late and the last step runs off the grid (IndexError)
        scheduler.set_begin_index(0)
    return scheduler


def alpha_sigma(scheduler, t: torch.Tensor, step: int) -> tuple[float, float]:
    """(alpha_t, sigma_t) of the sampler's ``step``-th timestep ``t`` (module docstring)."""
    if isinstance(scheduler, DPMSolverMultistepScheduler):
        s = float(scheduler.sigmas[step])  # the VE sigma of the grid: x = (x0 + s eps) / sqrt(1 + s^2)
        alpha = (1 + s * s) ** -0.5
        return alpha, s * alpha
    abar = float(scheduler.alphas_cumprod[int(t)])
    return abar**0.5, (1 - abar) ** 0.5
