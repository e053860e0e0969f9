"""Rate-distortion plots drawn with Pillow's ImageDraw (no plotting library).

``draw_rd_plot(panels, path)`` writes one PNG with a panel per metric (e.g.
PSNR and MS-SSIM against bits per pixel); each panel has axes, ticks at "nice"
values, grid lines, one polyline with markers per codec and a legend.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from ...data import write_pil_image

__all__ = ["Panel", "draw_rd_plot", "nice_ticks"]

PANEL_SIZE = (640, 480)
MARGIN = (70, 30, 25, 55)  # left, top, right, bottom
COLOURS = ((214, 39, 40), (31, 119, 180), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75))


@dataclass
class Panel:
    """One chart: ``series`` maps a label to its (x, y) points."""

    title: str
    x_label: str
    y_label: str
    series: dict[str, Sequence[tuple[float, float]]]


def nice_ticks(low: float, high: float, target: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if not high > low:
        low, high = low - 0.5, high + 0.5
    raw = (high - low) / max(target - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _label(value: float) -> str:
    return f"{value:g}"


class _Axes:
    """Maps data coordinates to pixels inside one panel's plotting box."""

    def __init__(self, origin: tuple[int, int], xs: list[float], ys: list[float]):
        left, top, right, bottom = MARGIN
        self.box = (
            origin[0] + left,
            origin[1] + top,
            origin[0] + PANEL_SIZE[0] - right,
            origin[1] + PANEL_SIZE[1] - bottom,
        )
        self.x_ticks, self.y_ticks = nice_ticks(min(xs), max(xs)), nice_ticks(min(ys), max(ys))

    def point(self, x: float, y: float) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        fx = (x - self.x_ticks[0]) / (self.x_ticks[-1] - self.x_ticks[0])
        fy = (y - self.y_ticks[0]) / (self.y_ticks[-1] - self.y_ticks[0])
        return x0 + fx * (x1 - x0), y1 - fy * (y1 - y0)


def _draw_axes(image: Image.Image, draw: ImageDraw.ImageDraw, axes: _Axes, panel: Panel, font) -> None:
    x0, y0, x1, y1 = axes.box
    for x in axes.x_ticks:
        px, _ = axes.point(x, axes.y_ticks[0])
        draw.line([(px, y0), (px, y1)], fill=(230, 230, 230))
        draw.line([(px, y1), (px, y1 + 5)], fill="black")
        draw.text((px, y1 + 8), _label(x), fill="black", font=font, anchor="mt")
    for y in axes.y_ticks:
        _, py = axes.point(axes.x_ticks[0], y)
        draw.line([(x0, py), (x1, py)], fill=(230, 230, 230))
        draw.line([(x0 - 5, py), (x0, py)], fill="black")
        draw.text((x0 - 8, py), _label(y), fill="black", font=font, anchor="rm")
    draw.rectangle([x0, y0, x1, y1], outline="black")
    draw.text(((x0 + x1) / 2, y1 + 30), panel.x_label, fill="black", font=font, anchor="mt")
    draw.text(((x0 + x1) / 2, y0 - 8), panel.title, fill="black", font=font, anchor="mb")
    label = Image.new("RGBA", (int(y1 - y0), 20), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((label.width / 2, 10), panel.y_label, fill="black", font=font, anchor="mm")
    rotated = label.rotate(90, expand=True)
    image.paste(rotated, (int(x0 - 65), int(y0)), rotated)


def _draw_series(draw: ImageDraw.ImageDraw, axes: _Axes, panel: Panel, font) -> None:
    x0, y0, _, _ = axes.box
    for i, (name, points) in enumerate(panel.series.items()):
        colour = COLOURS[i % len(COLOURS)]
        pixels = [axes.point(x, y) for x, y in sorted(points)]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=2)
        for px, py in pixels:
            draw.ellipse([px - 3.5, py - 3.5, px + 3.5, py + 3.5], fill=colour)
        ly = y0 + 12 + 18 * i  # legend, top left inside the box
        draw.line([(x0 + 10, ly), (x0 + 34, ly)], fill=colour, width=2)
        draw.ellipse([x0 + 18.5, ly - 3.5, x0 + 25.5, ly + 3.5], fill=colour)
        draw.text((x0 + 40, ly), name, fill="black", font=font, anchor="lm")


def draw_rd_plot(panels: Sequence[Panel], path: str | os.PathLike) -> None:
    """Write the panels side by side as one PNG (atomically: ``write_pil_image``). Panels
    without points are skipped."""
    panels = [p for p in panels if any(len(v) for v in p.series.values())]
    if not panels:
        raise ValueError("draw_rd_plot: no points to draw")
    image = Image.new("RGB", (PANEL_SIZE[0] * len(panels), PANEL_SIZE[1]), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    for i, panel in enumerate(panels):
        xs = [x for points in panel.series.values() for x, _ in points]
        ys = [y for points in panel.series.values() for _, y in points]
        axes = _Axes((i * PANEL_SIZE[0], 0), xs, ys)
        _draw_axes(image, draw, axes, panel, font)
        _draw_series(draw, axes, panel, font)
    write_pil_image(image, path, "PNG")
