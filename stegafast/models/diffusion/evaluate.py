"""Evaluating the denoiser on held-out synthetic pairs (``stegafast diffusion evaluate``).

Methods: the widefield image itself (minus the background), Richardson-Lucy
(``baselines``), and the diffusion sampler for each (sampler, steps, guidance) asked for.
Metrics per image, averaged: PSNR and SSIM after dividing estimate and truth by the
truth's maximum and clipping the estimate to [0, 1] (data range 1; PSNR capped at
``PSNR_CAP_DB``), and the FRC resolution (``frc``, 1/7 threshold, estimate vs truth, in
pixels; lower is better). Also the seconds per image of each method on this machine.
Evaluation specimens come from their own seed stream (``EVAL_SEED``), neither training's
nor validation's.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import torch

from ...metrics import PSNR_CAP_DB, psnr, ssim
from .baselines import richardson_lucy
from .config import GuidanceConfig, PhysicsConfig
from .data import SyntheticPairs, measurement_scale
from .frc import frc_resolution
from .sampling import sample
from .schedulers import DPM_SIGMA_MAX

__all__ = ["EVAL_SEED", "Method", "default_methods", "evaluation_pairs", "evaluate", "format_table"]

EVAL_SEED = 2_000_029


class Method(NamedTuple):
    """A restoration to evaluate: "widefield", "richardson_lucy", or a sampler with its steps
    and guidance mode."""

    name: str
    sampler: str | None = None
    steps: int = 0
    guidance: str = "none"


def default_methods() -> list[Method]:
    """The table of the issue: unguided DDIM 100 / 50 and DPM-Solver++ 25, and each guidance
    mode with DDIM 50."""
    return [
        Method("ddim100", "ddim", 100),
        Method("ddim50", "ddim", 50),
        Method("dpmpp25", "dpmpp", 25),
        Method("ddim50+pkl", "ddim", 50, "pkl"),
        Method("ddim50+l2", "ddim", 50, "l2"),
        Method("ddim50+anscombe", "ddim", 50, "anscombe"),
    ]


def evaluation_pairs(physics: PhysicsConfig, count: int) -> SyntheticPairs:
    """``count`` held-out synthetic pairs of ``physics`` (its image size, specimen kind and microscope), from the
    EVAL_SEED stream that neither training nor validation draws from."""
    return SyntheticPairs(physics, count, EVAL_SEED)


def _scores(estimate: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    peak = truth.max().clamp_min(1e-12)
    a, b = (estimate / peak).clamp(0, 1)[None, None], (truth / peak)[None, None]
    return {
        "psnr": float(psnr(a, b, cap=PSNR_CAP_DB)),
        "ssim": float(ssim(a, b)),
        "frc_px": frc_resolution(a[0, 0], b[0, 0]),
    }


def _restore(method: Method, y, scale, forward, model, guidance: GuidanceConfig, seed: int, dpm_sigma_max):
    if method.name == "widefield":
        return (y - forward.background).clamp_min(0)
    if method.name == "richardson_lucy":
        return richardson_lucy(y, forward.psf, forward.background)
    config = GuidanceConfig(method.guidance, guidance.lambda_base, guidance.t_threshold, guidance.eps)
    out = sample(
        model,
        y[None, None],
        scale[None],
        forward,
        sampler=method.sampler,
        steps=method.steps,
        guidance=config,
        generator=torch.Generator().manual_seed(seed),
        dpm_sigma_max=dpm_sigma_max,
    )
    return out[0, 0].cpu()


def evaluate(
    model,
    pairs: SyntheticPairs,
    methods: list[Method],
    *,
    guidance: GuidanceConfig | None = None,
    seed: int = 0,
    dpm_sigma_max: float | None = DPM_SIGMA_MAX,
) -> dict:
    """The metrics of the module docstring for widefield, Richardson-Lucy and ``methods``
    over every pair, as a JSON-able dict {"images", "rows": {method: {psnr, ssim, frc_px,
    seconds_per_image}}, ...}. ``guidance`` gives lambda_base and t_threshold (its mode is
    each method's)."""
    guidance = guidance or GuidanceConfig()
    forward = pairs.forward
    everything = [Method("widefield"), Method("richardson_lucy"), *methods]
    totals = {m.name: {"psnr": 0.0, "ssim": 0.0, "frc_px": 0.0, "seconds_per_image": 0.0} for m in everything}
    for i in range(len(pairs)):
        truth, y = pairs.clean(i), pairs.measurement(i)
        scale = measurement_scale(y)
        for method in everything:
            start = time.perf_counter()
            estimate = _restore(method, y, scale, forward, model, guidance, seed + i, dpm_sigma_max)
            row = totals[method.name]
            row["seconds_per_image"] += time.perf_counter() - start
            for key, value in _scores(estimate, truth).items():
                row[key] += value
    rows = {name: {k: v / len(pairs) for k, v in row.items()} for name, row in totals.items()}
    return {
        "images": len(pairs),
        "rows": rows,
        "lambda_base": guidance.lambda_base,
        "t_threshold": guidance.t_threshold,
        "dpm_sigma_max": dpm_sigma_max,
        "psnr_cap_db": PSNR_CAP_DB,
    }


def format_table(result: dict) -> str:
    """The evaluation as a Markdown table."""
    lines = ["| method | PSNR (dB) | SSIM | FRC resolution (px) | s / image |", "| --- | --- | --- | --- | --- |"]
    for name, row in result["rows"].items():
        lines.append(
            f"| {name} | {row['psnr']:.2f} | {row['ssim']:.3f} | {row['frc_px']:.2f} | {row['seconds_per_image']:.2f} |"
        )
    return "\n".join(lines)
