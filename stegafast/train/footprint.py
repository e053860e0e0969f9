"""How much memory running a model on an image of a given size takes, estimated before
the image is read, so that a command refuses an image too large for the memory budget
(``stegafast.data.limits``) in one line instead of dying in the allocator.

The estimate measures and extrapolates. :func:`peak_bytes` runs a function under a
``TorchDispatchMode`` that adds up the storage of every tensor an op creates while
it is alive (freed when its last tensor is collected) and returns the peak.
:class:`ImageFootprint` measures that peak once for two probe images, ``side`` and
``2 * side`` square, fits ``fixed + per_pixel * pixels`` through them (the families'
networks are convolutional, or resize to a fixed size, or attend in fixed windows:
their memory is affine in the pixel count) and adds ``DECODE_BYTES_PER_PIXEL`` for
reading the file (Pillow's pixels and their array, which torch does not see). An
image no larger than the larger probe is not estimated: measuring would cost what
running it does.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from ..data.limits import ImageTooLargeError, over_budget

__all__ = ["DECODE_BYTES_PER_PIXEL", "peak_bytes", "ImageFootprint"]

DECODE_BYTES_PER_PIXEL = 6  # an 8-bit RGB Pillow image and its NumPy copy


class _LiveBytes(TorchDispatchMode):
    """Counts the bytes of the storages ops create, while any tensor on them lives."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self._holders: dict[int, list] = {}  # storage address -> [bytes, tensors alive on it]

    def _release(self, key: int) -> None:
        entry = self._holders.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.live -= entry[0]
            del self._holders[key]

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = storage.data_ptr()
        entry = self._holders.get(key)
        if entry is None:
            entry = self._holders[key] = [storage.nbytes(), 0]
            self.live += entry[0]
            self.peak = max(self.peak, self.live)
        entry[1] += 1
        weakref.finalize(t, self._release, key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                self._track(t)
        return out


def peak_bytes(run: Callable[[], object]) -> int:
    """The most bytes of tensors alive at once while ``run()`` runs (under no_grad), counting
    the tensors it creates (what it is given, and what it returns once done, not)."""
    mode = _LiveBytes()
    with torch.no_grad(), mode:
        run()
    return mode.peak


class ImageFootprint:
    """The memory ``run_at(height, width)`` takes (it builds its own input of that size and runs
    the model on it), fitted once from probes of ``side`` and ``2 * side`` when first needed.

    ``estimate(height, width)`` is the estimated peak in bytes (None for an image no larger
    than the larger probe); ``check(height, width, what)`` raises an ImageTooLargeError
    when it is over the memory budget.
    """

    def __init__(self, run_at: Callable[[int, int], object], side: int):
        self.run_at, self.side = run_at, side
        self._fit: tuple[float, float] | None = None

    def _fitted(self) -> tuple[float, float]:
        if self._fit is None:
            s = self.side
            small, large = s * s, 4 * s * s
            p_small = peak_bytes(lambda: self.run_at(s, s))
            p_large = peak_bytes(lambda: self.run_at(2 * s, 2 * s))
            per_pixel = max(p_large - p_small, 0) / (large - small)
            self._fit = max(p_small - per_pixel * small, 0), per_pixel
        return self._fit

    def fit(self) -> None:
        """Run the probes now (once). A command that compiles its model calls this first: the count
        needs eager ops, and inductor's generated code allocates its buffers outside the dispatcher."""
        self._fitted()

    def estimate(self, height: int, width: int) -> int | None:
        """Estimated peak bytes of processing a height x width image; None for images no larger than the probes."""
        pixels = height * width
        if pixels <= 4 * self.side * self.side:
            return None
        fixed, per_pixel = self._fitted()
        return int(fixed + (per_pixel + DECODE_BYTES_PER_PIXEL) * pixels)

    def check(self, height: int, width: int, what: str) -> None:
        """Raise ImageTooLargeError, naming ``what``, when the estimate exceeds the memory budget."""
        estimate = self.estimate(height, width)
        problem = None if estimate is None else over_budget(estimate)
        if problem:
            raise ImageTooLargeError(
                f"{what} is {height}x{width}; processing it would take {problem}: use a smaller image "
                "or a larger budget"
            )
