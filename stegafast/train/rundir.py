"""The run folder (``--out``): what a training run leaves behind, and which
checkpoints it keeps.

::

    RUN/run.json                  the task identity and the configuration it started with
    RUN/checkpoints/step-00001000.pt
    RUN/checkpoints/index.json    step and validation metric of every kept checkpoint
    RUN/metrics.jsonl             one JSON record per logged step (see metrics_log)
    RUN/metrics.csv               the same records as a table
    RUN/tensorboard/              event files, when tensorboard is installed
    RUN/.lock                     held (flock) by the run training into the folder; holds its pid

The checkpoint files themselves are the truth about what exists (the latest is
the highest step on disk); the index only adds their metrics, so losing it
never loses a run.

One run per folder: the engine holds an exclusive ``fcntl.flock`` on
``RUN/.lock`` (``RunDir.locked``) from before it writes anything until it
returns. The operating system drops the lock when the process ends however it
ends (a crash, ``kill -9``), so a stale lock never blocks the next run; a
second run into a held folder fails at once with a RunDirError naming the
holder's pid. The file itself stays (removing it would let a third run lock a
new file while a second still waits on the old one). Where ``fcntl`` does not
exist (Windows) runs are not locked.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from ..errors import RunDirError
from ..io import TEMP_SUFFIX
from .checkpoint import atomic_write_json, identity_mismatch

__all__ = ["RunDir", "RunDirError"]

_CHECKPOINT_NAME = re.compile(r"^step-(\d+)\.pt$")


class RunDir:
    """Paths and bookkeeping of one run folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.checkpoint_dir = self.root / "checkpoints"
        self.info_path = self.root / "run.json"
        self.index_path = self.checkpoint_dir / "index.json"
        self.metrics_jsonl = self.root / "metrics.jsonl"
        self.metrics_csv = self.root / "metrics.csv"
        self.tensorboard_dir = self.root / "tensorboard"
        self.lock_path = self.root / ".lock"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's exclusive lock for the body (the folder is created if missing).
        A RunDirError naming the holder's pid when another process holds it."""
        if fcntl is None:
            yield
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise RunDirError(f"cannot use {self.root} as a run folder: {exc.strerror or exc}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunDirError(
                    f"{self.root} is in use by another training run ({_holder(fd)}); wait for it "
                    "to finish or choose another --out"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def checkpoint_path(self, step: int) -> Path:
        """The checkpoint file of ``step``: ``checkpoints/step-<8 digits>.pt`` under the run folder."""
        return self.checkpoint_dir / f"step-{step:08d}.pt"

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(step, path) of every complete checkpoint on disk, oldest first."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = []
        for path in self.checkpoint_dir.iterdir():
            match = _CHECKPOINT_NAME.match(path.name)
            if match and path.is_file():
                found.append((int(match.group(1)), path))
        return sorted(found)

    def latest(self) -> Path | None:
        """The checkpoint with the highest step, or None."""
        found = self.checkpoints()
        return found[-1][1] if found else None

    def best(self, mode: str) -> Path | None:
        """The kept checkpoint with the best validation metric (``mode`` min or max), or None."""
        scored = self._scored(mode)
        return self.checkpoint_path(scored[0][1]) if scored else None

    def read_info(self) -> dict | None:
        """The run's ``run.json`` as a dict, None when there is none; a ``RunDirError`` when it cannot be read or
        parsed."""
        if not self.info_path.is_file():
            return None
        try:
            info = json.loads(self.info_path.read_text())
        except (OSError, ValueError) as exc:
            raise RunDirError(f"cannot read {self.info_path}: {exc}") from None
        # what the readers look into: a crafted or damaged file fails here, in one line
        if not isinstance(info, dict):
            raise RunDirError(f"{self.info_path} is damaged: it holds a {type(info).__name__}, not a JSON object")
        for key in ("identity", "config"):
            if key in info and not isinstance(info[key], dict):
                raise RunDirError(
                    f"{self.info_path} is damaged: its {key!r} is a {type(info[key]).__name__}, not a JSON object"
                )
        return info

    def check_start(self, identity: dict | None, resume: bool) -> Path | None:
        """Raise RunDirError unless a run may start here; return the checkpoint to
        resume from (None for a fresh start). ``identity=None`` skips the check
        that the folder belongs to the same task."""
        info = self.read_info()
        if identity is not None and info is not None:
            problem = identity_mismatch(info.get("identity", {}), identity)
            if problem:
                raise RunDirError(f"{self.root} holds another run: {problem}; choose another --out")
        latest = self.latest()
        if resume and latest is None:
            raise RunDirError(f"nothing to resume: no checkpoint in {self.checkpoint_dir}")
        if not resume and latest is not None:
            raise RunDirError(
                f"{self.root} already holds a run (latest checkpoint {latest.name}); "
                "pass --resume to continue it or choose another --out"
            )
        return latest

    def prepare(self, identity: dict, config: dict) -> None:
        """Create the folder, drop temporary files a crash left, and record the run
        (``run.json`` is written once, by the run that creates the folder)."""
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        for folder in (self.root, self.checkpoint_dir):
            for stale in folder.glob(f".*{TEMP_SUFFIX}"):
                stale.unlink(missing_ok=True)
        if not self.info_path.exists():
            created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            atomic_write_json({"identity": identity, "config": config, "created": created}, self.info_path)

    def _index(self) -> dict[int, float | None]:
        try:
            entries = json.loads(self.index_path.read_text())["checkpoints"]
            return {int(e["step"]): e["metric"] for e in entries}
        except (OSError, ValueError, KeyError, TypeError):
            return {}  # a lost or damaged index only forgets metrics

    def _scored(self, mode: str, index: dict[int, float | None] | None = None) -> list[tuple[float, int]]:
        """(metric, step) of checkpoints on disk with a finite metric, best first."""
        index = self._index() if index is None else index
        scored = [
            (index[step], step)
            for step, _ in self.checkpoints()
            if index.get(step) is not None and math.isfinite(index[step])
        ]
        sign = 1.0 if mode == "min" else -1.0
        return sorted(scored, key=lambda item: (sign * item[0], item[1]))

    def record(self, step: int, metric: float | None, keep_best: int, mode: str) -> list[Path]:
        """Register the checkpoint of ``step`` (already on disk) with its validation
        metric, keep the latest plus the ``keep_best`` best by metric, delete the
        rest, and return the deleted paths."""
        index = self._index()
        index[step] = metric
        on_disk = self.checkpoints()
        keep = {on_disk[-1][0]} if on_disk else set()
        keep |= {s for _, s in self._scored(mode, index)[:keep_best]}
        removed = [path for s, path in on_disk if s not in keep]
        # The index is rewritten before the files go, so it never names a missing file for long.
        self._write_index({s: index.get(s) for s, _ in on_disk if s in keep})
        for path in removed:
            path.unlink(missing_ok=True)
        return removed

    def _write_index(self, metrics: dict[int, float | None]) -> None:
        entries = [{"step": s, "file": self.checkpoint_path(s).name, "metric": m} for s, m in sorted(metrics.items())]
        atomic_write_json({"checkpoints": entries}, self.index_path)


def _holder(fd: int) -> str:
    """ "pid N" of the process that wrote the lock file, as far as it can be read."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return f"pid {text}" if text.isdigit() else "pid unknown"
