"""The progress display: a tqdm bar with the latest loss and metrics when tqdm is
installed, otherwise one plain line per logging interval. It is shown only on
the main process and, unless forced, only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "format_metrics"]


def format_metrics(metrics: dict[str, float], limit: int = 6) -> str:
    """``loss=0.1234 psnr=31.02 ...``: loss first, then the rest in name order."""
    names = sorted(metrics, key=lambda n: (n != "loss", n))[:limit]
    return " ".join(f"{n}={metrics[n]:.4g}" for n in names)


class Progress:
    """Steps done out of ``total``, with live metrics.

    ``enabled``: True shows it, False hides it, None shows it when ``stream`` is a terminal.
    """

    def __init__(self, total: int, initial: int, enabled: bool | None, stream: TextIO | None = None):
        self._stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(getattr(self._stream, "isatty", lambda: False)())
        self._total = total
        self._bar = None
        self._plain = False
        self._started = (initial, time.perf_counter())
        if not enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            self._plain = True
            return
        self._bar = tqdm(total=total, initial=initial, file=self._stream, unit="step", dynamic_ncols=True)

    def advance(self, steps: int = 1) -> None:
        """Count ``steps`` more steps done (no-op when hidden)."""
        if self._bar is not None:
            self._bar.update(steps)

    def show(self, step: int, metrics: dict[str, float]) -> None:
        """Put the latest metrics on the bar, or print them as a line."""
        if self._bar is not None:
            self._bar.set_postfix_str(format_metrics(metrics), refresh=False)
        elif self._plain:
            first, since = self._started
            rate = (step - first) / max(time.perf_counter() - since, 1e-9)
            print(
                f"step {step}/{self._total} ({rate:.2f} steps/s) {format_metrics(metrics)}",
                file=self._stream,
                flush=True,
            )

    def message(self, text: str) -> None:
        """A line that does not break the bar."""
        if self._bar is not None:
            self._bar.write(text, file=self._stream)
        elif self._plain:
            print(text, file=self._stream, flush=True)

    def close(self) -> None:
        """Close the bar (no-op when hidden or already closed)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
