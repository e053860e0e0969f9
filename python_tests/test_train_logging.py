"""What a run writes besides checkpoints: metrics.jsonl and metrics.csv, the
progress display, and TensorBoard events only where tensorboard is installed."""

import csv
import importlib.util
import io
import json
import sys
import time

import pytest
import torch
from train_toys import NoisyPairs, RegressionTask

from stegafast.train import TrainConfig, train
from stegafast.train.metrics_log import MetricAccumulator
from stegafast.train.progress import Progress


def _config(out, **overrides):
    settings = dict(out=out, steps=6, batch_size=8, log_every=2, val_every=3, progress=False, tensorboard=False)
    return TrainConfig(**{**settings, **overrides})


def _jsonl(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _csv(run):
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_metrics_go_to_jsonl_and_csv(tmp_path):
    result = train(RegressionTask(), _config(tmp_path))
    records = _jsonl(tmp_path)
    assert [(r["step"], r["split"]) for r in records] == [
        (2, "train"),
        (3, "val"),
        (4, "train"),
        (6, "train"),
        (6, "val"),
    ]
    assert set(records[0]) == {"step", "split", "loss", "ema", "lr/main", "samples_per_s", "data_wait_share"}
    assert set(records[1]) == {"step", "split", "loss", "mae"}
    assert records[-2] == {"step": 6, "split": "train", **result.train_metrics}
    assert records[-1] == {"step": 6, "split": "val", **result.val_metrics}
    rows = _csv(tmp_path)
    assert list(rows[0]) == ["step", "split", "data_wait_share", "ema", "loss", "lr/main", "mae", "samples_per_s"]
    for row, record in zip(rows, records, strict=True):
        assert row["step"] == str(record["step"]) and row["split"] == record["split"]
        for name in ("data_wait_share", "ema", "loss", "lr/main", "mae", "samples_per_s"):
            assert row[name] == ("" if name not in record else str(record[name]))


def test_train_metrics_are_averages_over_the_logging_window(tmp_path):
    class Counting(RegressionTask):
        def training_step(self, batch, ctx):
            metrics = super().training_step(batch, ctx)
            return {**metrics, "step_seen": ctx.step}

    train(Counting(), _config(tmp_path, log_every=3, val_every=0, grad_accum=2))
    assert [r["step_seen"] for r in _jsonl(tmp_path) if r["split"] == "train"] == [1.0, 4.0]  # mean(0,1,2), mean(3,4,5)


def test_a_metric_that_appears_later_extends_the_csv(tmp_path):
    class Late(RegressionTask):
        def training_step(self, batch, ctx):
            metrics = super().training_step(batch, ctx)
            return {**metrics, "late": 7.0} if ctx.step >= 3 else metrics

    train(Late(), _config(tmp_path, val_every=0))
    rows = _csv(tmp_path)
    assert [(r["split"], r["late"]) for r in rows] == [("train", ""), ("train", "7.0"), ("train", "7.0"), ("val", "")]


def test_metric_accumulator_weighs_and_pools():
    acc = MetricAccumulator()
    acc.add("loss", torch.tensor(1.0), weight=3)
    acc.add("loss", 2.0, weight=1)
    acc.add("psnr", torch.tensor([30.0]))
    doubled = acc.reduce(lambda t: 2 * t)  # two processes holding the same sums
    assert doubled == {"loss": pytest.approx(1.25), "psnr": 30.0}
    assert not acc and acc.reduce(lambda t: t) == {}
    with pytest.raises(TypeError, match="metric 'flag' must be a number"):
        acc.add("flag", True)


def test_progress_prints_plain_lines_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed
    stream = io.StringIO()
    progress = Progress(total=6, initial=0, enabled=True, stream=stream)
    progress.advance()
    progress.show(2, {"loss": 0.123456, "lr/main": 0.01})
    progress.close()
    assert stream.getvalue().startswith("step 2/6 (") and "loss=0.1235 lr/main=0.01" in stream.getvalue()


def test_progress_stays_quiet_off_a_terminal():
    stream = io.StringIO()  # not a TTY
    progress = Progress(total=6, initial=0, enabled=None, stream=stream)
    progress.show(2, {"loss": 1.0})
    progress.message("validation")
    progress.close()
    assert stream.getvalue() == ""


def test_tensorboard_only_where_installed(tmp_path):
    train(RegressionTask(), _config(tmp_path, tensorboard=True))
    events = list((tmp_path / "tensorboard").glob("events.*")) if (tmp_path / "tensorboard").exists() else []
    installed = importlib.util.find_spec("tensorboard") is not None
    assert bool(events) == installed


class _SlowPairs(torch.utils.data.Dataset):
    """NoisyPairs that take ``delay`` seconds per item, as a slow disk or decoder would."""

    def __init__(self, delay: float):
        self.pairs, self.delay = NoisyPairs(16), delay

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, i):
        time.sleep(self.delay)
        return self.pairs[i]


class _Timed(RegressionTask):
    """The regression toy with ``data_delay`` seconds per sample loaded and ``step_delay`` per training step."""

    def __init__(self, data_delay: float, step_delay: float):
        super().__init__(val=False)
        self.data_delay, self.step_delay = data_delay, step_delay

    def train_dataset(self):
        return _SlowPairs(self.data_delay)

    def training_step(self, batch, ctx):
        time.sleep(self.step_delay)
        return super().training_step(batch, ctx)


@pytest.mark.parametrize("data_bound", [True, False], ids=["slow-data", "slow-step"])
def test_the_share_of_time_spent_waiting_for_data_is_logged(tmp_path, data_bound):
    """Loading in the main process (no workers): 20 ms per sample against an instant step, the step waits for its
    data most of the time; instant data against an 80 ms step, hardly ever."""
    task = _Timed(0.02, 0.0) if data_bound else _Timed(0.0, 0.08)
    train(task, _config(tmp_path, steps=4, batch_size=4, log_every=2, workers=0))
    shares = [r["data_wait_share"] for r in _jsonl(tmp_path) if r["split"] == "train"]
    assert len(shares) == 2 and all(0 <= s <= 1 for s in shares)
    if data_bound:
        assert min(shares) > 0.6, shares
    else:
        assert max(shares) < 0.4, shares
