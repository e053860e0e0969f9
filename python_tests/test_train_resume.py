"""Resuming a run: a run interrupted after its checkpoint and resumed in a fresh
task and trainer ends bit for bit where an uninterrupted run ends (parameters,
optimiser state, task state, logged metrics), with 0 and 2 loader workers; and
resuming refuses what does not fit."""

import json
import random

import numpy as np
import pytest
import torch
from train_toys import Interrupted, RegressionTask, WganTask, flat_parameters

from stegafast.train import CheckpointError, RunDirError, Schedule, TrainConfig, load_checkpoint, train


def _config(out, **overrides) -> TrainConfig:
    # 48 samples, 16 per step: an epoch is 3 steps, so step 5 resumes mid-epoch.
    settings = dict(
        out=out,
        steps=12,
        batch_size=8,
        grad_accum=2,
        seed=5,
        clip_norm=1.0,
        schedule=Schedule("cosine", warmup=3),
        save_every=4,
        val_every=5,
        log_every=1,
        progress=False,
        tensorboard=False,
    )
    return TrainConfig(**{**settings, **overrides})


def _records(run):
    """The metric log without the wall-clock measurements (throughput, data-wait share)."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("samples_per_s", "data_wait_share")} for r in records]


def _disturb_global_streams():
    # A fresh process would start its generators elsewhere: the checkpoint must not depend on them.
    torch.manual_seed(12345)
    random.seed(999)
    np.random.seed(777)


@pytest.mark.parametrize("workers", [0, 2])
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one_bitwise(tmp_path, workers):
    straight = train(RegressionTask(), _config(tmp_path / "straight", workers=workers))

    with pytest.raises(Interrupted):  # killed during step 7: checkpoints exist for steps 4 and 5
        train(RegressionTask(stop_at=7), _config(tmp_path / "resumed", workers=workers))
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "step-00000005.pt")["data"] == {
        "epoch": 1,
        "samples": 32,
    }
    _disturb_global_streams()
    task = RegressionTask()
    resumed = train(task, _config(tmp_path / "resumed", workers=workers, resume=True))

    assert resumed.step == straight.step == 12
    assert torch.equal(flat_parameters(resumed.models), flat_parameters(straight.models))
    final_straight = load_checkpoint(straight.latest_checkpoint)
    final_resumed = load_checkpoint(resumed.latest_checkpoint)
    for name in ("optimizers", "task_state", "data", "metrics"):
        torch.testing.assert_close(final_resumed[name], final_straight[name], rtol=0, atol=0)
    assert task.calls == 12 * 2  # restored from the checkpoint, then 7 more steps of 2 micro-batches
    # The interrupted run's records after step 5 were dropped, so both logs tell one history.
    assert _records(tmp_path / "resumed") == _records(tmp_path / "straight")


def test_dataset_randomness_does_not_depend_on_the_number_of_workers(tmp_path):
    runs = [train(RegressionTask(dropout=0.0), _config(tmp_path / f"w{w}", steps=4, workers=w)) for w in (0, 2)]
    assert torch.equal(flat_parameters(runs[0].models), flat_parameters(runs[1].models))


def test_the_seed_changes_the_run(tmp_path):
    a = train(RegressionTask(), _config(tmp_path / "a", steps=3))
    b = train(RegressionTask(), _config(tmp_path / "b", steps=3, seed=6))
    assert not torch.equal(flat_parameters(a.models), flat_parameters(b.models))


def test_resume_continues_to_a_larger_step_count(tmp_path):
    train(RegressionTask(), _config(tmp_path, steps=4))
    more = train(RegressionTask(), _config(tmp_path, steps=6, resume=True))
    assert more.step == 6 and more.latest_checkpoint.name == "step-00000006.pt"
    done = train(RegressionTask(), _config(tmp_path, steps=6, resume=True))  # nothing left to do
    assert done.step == 6 and torch.equal(flat_parameters(done.models), flat_parameters(more.models))


def test_resume_refuses_what_does_not_fit(tmp_path):
    with pytest.raises(RunDirError, match="nothing to resume"):
        train(RegressionTask(), _config(tmp_path, resume=True))
    train(RegressionTask(), _config(tmp_path, steps=2))
    with pytest.raises(RunDirError, match="already holds a run.*--resume"):
        train(RegressionTask(), _config(tmp_path, steps=2))
    with pytest.raises(RunDirError, match="task 'toy.regression', not 'toy.wgan'"):
        train(WganTask(), _config(tmp_path, resume=True))
    # Without run.json the checkpoint itself still says whose it is.
    (tmp_path / "run.json").unlink()
    with pytest.raises(CheckpointError, match="task 'toy.regression', not 'toy.wgan'"):
        train(WganTask(), _config(tmp_path, resume=True))


def test_identity_covers_architecture_settings(tmp_path):
    class Wide(RegressionTask):
        def __init__(self, width, **kwargs):
            super().__init__(**kwargs)
            self.width = width

        def identity(self):
            return {**super().identity(), "width": self.width}

    train(Wide(16), _config(tmp_path, steps=2))
    with pytest.raises(RunDirError, match=r"differs \(width: 16 there, 32 here\)"):
        train(Wide(32), _config(tmp_path, steps=4, resume=True))
