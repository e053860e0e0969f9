"""Metric averaging and the metric files of a run.

``metrics.jsonl`` is the record: one JSON object per line,
``{"step": 100, "split": "train", "loss": 0.12, ...}``. ``metrics.csv`` holds the
same rows with a column per metric name (rebuilt from the JSONL whenever a new
name appears), and TensorBoard gets ``<split>/<name>`` scalars when the
``tensorboard`` package is installed. A resumed run first drops the records
written after its checkpoint, so the files never hold two histories.

The records are strict JSON: a non-finite value (a NaN or infinite loss) is
written as ``null`` (``stegafast.io.to_strict_json``), and as an empty cell in
the CSV. The two logs are appended to, not rewritten atomically at every step
(that would cost more as the run grows); a line a crash cuts short is skipped
when the log is read.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Callable

import torch

from ..errors import OutputError
from ..io import strict_json_dumps, to_strict_json, write_bytes
from .rundir import RunDir

__all__ = ["MetricAccumulator", "MetricLog"]

log = logging.getLogger("stegafast.train")


class MetricAccumulator:
    """Weighted running means of scalar metrics. Tensor values stay on their
    device until ``reduce``, so accumulating never waits for the GPU."""

    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor | float] = {}
        self._weights: dict[str, float] = {}

    def __bool__(self) -> bool:
        return bool(self._sums)

    def add(self, name: str, value: torch.Tensor | float, weight: float = 1.0) -> None:
        """Add ``value * weight`` to the running mean of ``name``.

        ``value`` is a number or a one-element tensor (kept on its device); TypeError for anything else, ValueError for
        a tensor with more elements.
        """
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise ValueError(f"metric {name!r} must be a scalar, got a tensor of shape {tuple(value.shape)}")
            value = value.detach().reshape(()).double()
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
        else:
            raise TypeError(f"metric {name!r} must be a number or a one-element tensor, got {type(value).__name__}")
        self._sums[name] = self._sums.get(name, 0.0) + value * weight
        self._weights[name] = self._weights.get(name, 0.0) + weight

    def reduce(self, sum_across_processes: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, float]:
        """The means so far, pooled over processes (every process must hold the
        same names), then start afresh."""
        names = sorted(self._sums)
        if not names:
            return {}
        sums = torch.stack([torch.as_tensor(self._sums[n], dtype=torch.float64).cpu() for n in names])
        weights = torch.tensor([self._weights[n] for n in names], dtype=torch.float64)
        pooled = sum_across_processes(torch.cat([sums, weights]))
        means = pooled[: len(names)] / pooled[len(names) :]
        self._sums.clear()
        self._weights.clear()
        return dict(zip(names, means.tolist()))


class MetricLog:
    """The metric files of a run (a no-op where ``enabled`` is False, i.e. ranks > 0)."""

    def __init__(self, run_dir: RunDir, *, enabled: bool, tensorboard: bool, resume_step: int | None):
        self._run_dir = run_dir
        self._enabled = enabled
        self._columns: list[str] = []
        self._writer = None
        if not enabled:
            return
        kept = self._records(up_to=resume_step) if resume_step is not None else []
        self._rewrite_jsonl(kept)
        self._rewrite_csv(kept)
        if tensorboard:
            self._writer = _tensorboard_writer(run_dir, purge_step=None if resume_step is None else resume_step + 1)

    def write(self, step: int, split: str, metrics: dict[str, float]) -> None:
        """Append one record (``step``, ``split``, ``metrics``) to ``metrics.jsonl`` and ``metrics.csv`` (and
        TensorBoard).

        A new metric name rewrites the CSV with the wider header; an ``OutputError`` when a file cannot be written. A
        no-op when not enabled.
        """
        if not self._enabled:
            return
        record = to_strict_json({"step": step, "split": split, **metrics})
        _append(self._run_dir.metrics_jsonl, strict_json_dumps(record) + "\n")
        if set(metrics) - set(self._columns):
            self._rewrite_csv(self._records())
        else:
            row = io.StringIO(newline="")
            csv.DictWriter(row, ["step", "split", *self._columns]).writerow(record)
            _append(self._run_dir.metrics_csv, row.getvalue())
        if self._writer is not None:
            for name, value in metrics.items():
                self._writer.add_scalar(f"{split}/{name}", value, step)

    def close(self) -> None:
        """Close the TensorBoard writer, if any; the JSONL and CSV files are closed after every write."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _records(self, up_to: int | None = None) -> list[dict]:
        path = self._run_dir.metrics_jsonl
        if not path.is_file():
            return []
        records = []
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if up_to is None or record.get("step", math.inf) <= up_to:
                records.append(record)
        return records

    def _rewrite_jsonl(self, records: list[dict]) -> None:
        data = "".join(strict_json_dumps(r) + "\n" for r in records).encode()
        write_bytes(self._run_dir.metrics_jsonl, data)

    def _rewrite_csv(self, records: list[dict]) -> None:
        self._columns = sorted({k for r in records for k in r} - {"step", "split"})
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, ["step", "split", *self._columns])
        writer.writeheader()
        writer.writerows(records)
        write_bytes(self._run_dir.metrics_csv, text.getvalue().encode())


def _append(path, text: str) -> None:
    try:
        with open(path, "a", newline="") as f:
            f.write(text)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _tensorboard_writer(run_dir: RunDir, purge_step: int | None):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.debug("tensorboard is not installed; metrics go to metrics.jsonl and metrics.csv only")
        return None
    return SummaryWriter(str(run_dir.tensorboard_dir), purge_step=purge_step)
