"""One picture of what the model does with an image, drawn with Pillow: four panels side
by side, each labelled: the input, the reconstruction, the attention matrix (N x N,
heads averaged, as a heat map) and the gradient saliency overlaid on the input in red.

A model without attention shows "no attention" in the third panel.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image, ImageDraw

from ...data import write_pil_image
from .model import AutoencoderCNN

__all__ = ["Views", "check_patches", "compute_views", "draw_views", "write_visualization", "heat_colors"]

LABEL_HEIGHT = 16
GAP = 4
MAX_MATRIX_SIDE = 1024  # the heat map is shown at most this many pixels a side
MAX_PATCHES = 4096  # the (N, N) float32 matrix of more patches would take over 64 MB


class Views:
    """What the picture shows, as (H, W) float arrays in [0, 1] (``matrix`` (N, N) or None)."""

    def __init__(self, image: np.ndarray, reconstruction: np.ndarray, matrix: np.ndarray | None, saliency):
        self.image, self.reconstruction, self.matrix, self.saliency = image, reconstruction, matrix, saliency


def check_patches(model: AutoencoderCNN, image: torch.Tensor) -> None:
    """A ValueError when the attention matrix of ``image`` would relate over MAX_PATCHES patches."""
    h, w = model.attention_grid(image)
    if model.config.use_attention and h * w > MAX_PATCHES:
        raise ValueError(
            f"an image of {image.shape[-2]}x{image.shape[-1]} has {h}x{w} = {h * w} patches; the attention "
            f"matrix is drawn for at most {MAX_PATCHES}: use a smaller image"
        )


def compute_views(model: AutoencoderCNN, image: torch.Tensor) -> Views:
    """The four views of a (1, H, W) image."""
    check_patches(model, image)
    x = image[None].to(next(model.parameters()).device)
    with torch.no_grad():
        recon = model(x)[0, 0].float().cpu().numpy()
    matrix = model.get_attention_matrix(x)
    saliency = model.get_attention_map(x)[0, 0].cpu().numpy()
    if matrix is not None:
        matrix = matrix[0].cpu().numpy()
        matrix = matrix / max(float(matrix.max()), 1e-12)
    return Views(image[0].float().cpu().numpy(), recon, matrix, saliency)


def heat_colors(values: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8, black - red - yellow - white."""
    v = np.clip(values, 0, 1)[..., None]
    ramp = np.concatenate([np.clip(3 * v, 0, 1), np.clip(3 * v - 1, 0, 1), np.clip(3 * v - 2, 0, 1)], -1)
    return (ramp * 255).round().astype(np.uint8)


def _gray(values: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(values, 0, 1) * 255).round().astype(np.uint8), "L").convert("RGB")


def _overlay(image: np.ndarray, saliency: np.ndarray) -> Image.Image:
    """The image in gray with the saliency as red, alpha proportional to it."""
    base = np.repeat(np.clip(image, 0, 1)[..., None], 3, -1)
    red = np.zeros_like(base)
    red[..., 0] = 1
    alpha = np.clip(saliency, 0, 1)[..., None] * 0.7
    return Image.fromarray(((base * (1 - alpha) + red * alpha) * 255).round().astype(np.uint8), "RGB")


def _matrix_panel(matrix: np.ndarray | None, side: int) -> Image.Image:
    if matrix is None:
        panel = Image.new("RGB", (side, side), "white")
        ImageDraw.Draw(panel).text((4, side // 2), "no attention", fill="black")
        return panel
    heat = Image.fromarray(heat_colors(matrix), "RGB")
    return heat.resize((side, side), Image.Resampling.NEAREST)


def _matrix_label(matrix: np.ndarray | None) -> str:
    return "attention matrix" if matrix is None else f"attention {len(matrix)}x{len(matrix)}"


def draw_views(views: Views) -> Image.Image:
    """The labelled four-panel picture of ``views``."""
    h, w = views.image.shape
    side = min(max(h, w, 64), MAX_MATRIX_SIDE)
    panels = [
        ("input", _gray(views.image)),
        ("reconstruction", _gray(views.reconstruction)),
        (_matrix_label(views.matrix), _matrix_panel(views.matrix, side)),
        ("saliency", _overlay(views.image, views.saliency)),
    ]
    width = sum(p.width for _, p in panels) + GAP * (len(panels) - 1)
    height = max(p.height for _, p in panels) + LABEL_HEIGHT
    canvas = Image.new("RGB", (width, height), "white")
    draw, left = ImageDraw.Draw(canvas), 0
    for label, panel in panels:
        draw.text((left + 2, 2), label, fill="black")
        canvas.paste(panel, (left, LABEL_HEIGHT))
        left += panel.width + GAP
    return canvas


def write_visualization(model: AutoencoderCNN, image: torch.Tensor, path: str | os.PathLike) -> None:
    """The picture of a (1, H, W) image, written as PNG to ``path`` (atomically)."""
    write_pil_image(draw_views(compute_views(model, image)), path, "PNG")
