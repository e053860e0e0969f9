"""Conditional diffusion denoising of widefield microscopy (the ``diffusion`` family).

A ``diffusers.UNet2DModel`` predicts the noise of x_t given the widefield image; DDIM or
DPM-Solver++ sample the restored specimen, optionally guided by the physics of the
microscope (Poisson likelihood, L2 or Anscombe misfit through the PSF).

* ``config``: the UNet (seed and CPU presets), the microscope, training and guidance settings;
* ``physics``: PSFs and the forward model (FFT convolution, its adjoint, Poisson noise);
* ``specimens``: seeded synthetic filaments, beads and blobs; ``data``: pairs and normalisation;
* ``imagefiles``: one-channel TIFF/PNG intensities;
* ``attention``: the UNet's attention through ``stegafast.ops.window_attention``;
* ``model``: ``ConditionalUNet`` and ``WeightEMA``; ``schedulers``: DDPM / DDIM / DPM-Solver++;
* ``losses``, ``task`` (``DiffusionTask``): training on the shared engine;
* ``guidance``, ``sampling``: guided sampling; ``inference``: ``load_diffusion``, ``denoise``;
* ``frc``, ``baselines`` (Richardson-Lucy), ``evaluate``: the evaluation table;
* ``cli``: ``stegafast diffusion train|denoise|evaluate|simulate``.

Importing this package needs ``diffusers`` (the ``stegafast[diffusion]`` extra); the rest of
stegafast does not.
"""

from .config import DiffusionTrainConfig, GuidanceConfig, PhysicsConfig, UNetConfig
from .inference import denoise, load_diffusion
from .model import ConditionalUNet, WeightEMA
from .physics import ForwardModel, gaussian_psf
from .sampling import sample
from .task import DiffusionTask

__all__ = [
    "UNetConfig",
    "PhysicsConfig",
    "DiffusionTrainConfig",
    "GuidanceConfig",
    "ConditionalUNet",
    "WeightEMA",
    "ForwardModel",
    "gaussian_psf",
    "DiffusionTask",
    "sample",
    "load_diffusion",
    "denoise",
]
