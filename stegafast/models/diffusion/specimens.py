"""Seeded synthetic specimens: filaments, beads and cell-like blobs, in [0, 1].

Each specimen is a pure function of (seed, index): the same pair always gives the same
image, on every machine, so datasets need no files and resume exactly. The kinds:

* filaments: smooth random curves (a random walk of the heading) about one pixel wide,
  as actin or microtubules look;
* beads: sub-resolution points (Gaussian spots of 0.7-1.2 px), as fluorescent beads;
* blobs: soft-edged ellipses with a brighter rim, as cells or nuclei;
* mixed: all three, with random amounts, over a dim uniform autofluorescence.

Images are float32 (H, W) numpy arrays scaled to a maximum of 1.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .config import SPECIMEN_KINDS

__all__ = ["specimen", "filaments", "beads", "blobs"]


def _splat(canvas: np.ndarray, ys: np.ndarray, xs: np.ndarray, weights: np.ndarray) -> None:
    """Add point masses at sub-pixel positions, split bilinearly over their 4 pixels."""
    h, w = canvas.shape
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = ys - y0, xs - x0
    for dy, dx, share in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yy, xx = y0 + dy, x0 + dx
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        np.add.at(canvas, (yy[inside], xx[inside]), (weights * share)[inside])


def filaments(rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    """``count`` smooth random curves (0.5-1.5 ``size`` long, brightness 0.4-1.0) drawn from ``rng``, blurred by
    0.6 px: a (size, size) float64 array, non-negative, not normalised (``specimen`` scales it to max 1)."""
    canvas = np.zeros((size, size), np.float64)
    for _ in range(count):
        length = int(rng.uniform(0.5, 1.5) * size) * 2  # points every half pixel
        heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.04, length))
        start = rng.uniform(0, size, 2)
        ys = start[0] + 0.5 * np.cumsum(np.sin(heading))
        xs = start[1] + 0.5 * np.cumsum(np.cos(heading))
        _splat(canvas, ys, xs, np.full(length, rng.uniform(0.4, 1.0)))
    return ndimage.gaussian_filter(canvas, 0.6)


def beads(rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    """``count`` point sources (brightness 0.5-1.0) at sub-pixel positions drawn from ``rng``, blurred by one
    Gaussian of 0.7-1.2 px: a (size, size) float64 array, non-negative, not normalised."""
    canvas = np.zeros((size, size), np.float64)
    ys, xs = rng.uniform(0, size - 1, count), rng.uniform(0, size - 1, count)
    _splat(canvas, ys, xs, rng.uniform(0.5, 1.0, count))
    return ndimage.gaussian_filter(canvas, rng.uniform(0.7, 1.2))


def blobs(rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    """``count`` soft-edged ellipses (radii 0.05-0.18 ``size``, any angle) with a brighter rim, brightness
    0.3-0.7, drawn from ``rng`` and blurred by 0.8 px: a (size, size) float64 array, non-negative, not normalised."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    canvas = np.zeros((size, size), np.float64)
    for _ in range(count):
        cy, cx = rng.uniform(0, size, 2)
        ry, rx = rng.uniform(0.05, 0.18, 2) * size
        angle = rng.uniform(0, np.pi)
        u = ((yy - cy) * np.cos(angle) + (xx - cx) * np.sin(angle)) / ry
        v = (-(yy - cy) * np.sin(angle) + (xx - cx) * np.cos(angle)) / rx
        r = np.sqrt(u**2 + v**2)
        body = 1 / (1 + np.exp((r - 1) * 8))  # soft edge
        rim = np.exp(-(((r - 0.9) / 0.12) ** 2))  # membrane-like brighter rim
        canvas += rng.uniform(0.3, 0.7) * (0.5 * body + 0.5 * rim)
    return ndimage.gaussian_filter(canvas, 0.8)


def _normalised(image: np.ndarray) -> np.ndarray:
    peak = image.max()
    return (image / peak if peak > 0 else image).astype(np.float32)


def specimen(seed: int, index: int, size: int = 128, kind: str = "mixed") -> np.ndarray:
    """Specimen ``index`` of the stream ``seed``: a (size, size) float32 image, max 1."""
    if kind not in SPECIMEN_KINDS:
        raise ValueError(f"specimen kind must be one of {', '.join(SPECIMEN_KINDS)}, got {kind!r}")
    rng = np.random.default_rng([seed, index])
    area = (size / 128) ** 2  # counts scale with the field of view
    if kind == "filaments":
        return _normalised(filaments(rng, size, max(1, round(rng.integers(6, 14) * area**0.5))))
    if kind == "beads":
        return _normalised(beads(rng, size, max(1, round(rng.integers(20, 60) * area))))
    if kind == "blobs":
        return _normalised(blobs(rng, size, max(1, round(rng.integers(2, 6) * area))))
    parts = (
        _normalised(filaments(rng, size, max(1, round(rng.integers(3, 10) * area**0.5)))) * rng.uniform(0.5, 1.0),
        _normalised(beads(rng, size, max(1, round(rng.integers(5, 30) * area)))) * rng.uniform(0.5, 1.0),
        _normalised(blobs(rng, size, max(1, round(rng.integers(1, 4) * area)))) * rng.uniform(0.2, 0.6),
    )
    return _normalised(sum(parts) + rng.uniform(0.0, 0.05))
