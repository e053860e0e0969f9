"""Checkpoint files: atomic writes that survive a crash, loading that never runs
pickled code, contents checked at save time, best-k retention."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from train_toys import RegressionTask, flat_parameters

from stegafast.train import (
    CheckpointError,
    RunDir,
    TrainConfig,
    atomic_save,
    check_weights_only,
    load_checkpoint,
    train,
)
from stegafast.train.checkpoint import CHECKPOINT_FORMAT, TEMP_SUFFIX


def _state(step, **extra):
    return {
        "format": CHECKPOINT_FORMAT,
        "identity": {"task": "toy"},
        "step": step,
        "w": torch.full((256,), step),
        **extra,
    }


def _config(out, **overrides):
    settings = dict(out=out, steps=4, batch_size=8, save_every=2, log_every=2, progress=False, tensorboard=False)
    return TrainConfig(**{**settings, **overrides})


def test_a_write_that_fails_midway_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    atomic_save(_state(1), path)

    def save_half_then_fail(obj, f):
        f.write(b"PK\x03\x04 half a zip archive")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="No space"):
        atomic_save(_state(2), path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["ckpt.pt"]  # the temporary file went too


def test_a_process_killed_midway_leaves_the_previous_file(tmp_path):
    """A real crash (os._exit while writing) cannot clean up: the old file stays whole,
    and the next run's set-up removes the stray temporary file."""
    run = RunDir(tmp_path)
    path = run.checkpoint_path(1)
    atomic_save(_state(1), path)
    script = textwrap.dedent(f"""
        import os, torch
        from stegafast.train import atomic_save
        from stegafast.train.checkpoint import CHECKPOINT_FORMAT
        def die_midway(obj, f):
            f.write(b"PK\\x03\\x04 partial")
            f.flush()
            os._exit(3)
        torch.save = die_midway
        atomic_save({{"format": CHECKPOINT_FORMAT, "identity": {{"task": "toy"}}, "step": 2}}, {str(path)!r})
    """)
    assert subprocess.run([sys.executable, "-c", script], timeout=120).returncode == 3
    assert load_checkpoint(path)["step"] == 1
    assert len(list(run.checkpoint_dir.glob(f".*{TEMP_SUFFIX}"))) == 1
    run.prepare({"task": "toy"}, {})
    assert list(run.checkpoint_dir.glob(f".*{TEMP_SUFFIX}")) == []
    assert run.latest() == path


def test_training_survives_a_failed_checkpoint_write(tmp_path, monkeypatch):
    real_save = torch.save
    calls = []

    def fail_second(obj, f):
        calls.append(obj["step"])
        if len(calls) == 2:
            f.write(b"partial")
            raise KeyboardInterrupt
        real_save(obj, f)

    monkeypatch.setattr(torch, "save", fail_second)
    with pytest.raises(KeyboardInterrupt):
        train(RegressionTask(), _config(tmp_path))
    monkeypatch.undo()
    assert [p.name for _, p in RunDir(tmp_path).checkpoints()] == ["step-00000002.pt"]
    resumed = train(RegressionTask(), _config(tmp_path, resume=True))
    assert resumed.step == 4


class _Payload:
    """Unpickling this creates a file: the stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_loading_refuses_pickled_objects_without_running_them(tmp_path):
    path, marker = tmp_path / "evil.pt", tmp_path / "pwned"
    torch.save(_state(1, extra=_Payload(str(marker))), path)  # written without the engine's checks
    with pytest.raises(CheckpointError, match="refusing to load .*objects other than tensors.*GLOBAL io.open"):
        load_checkpoint(path)
    assert not marker.exists()


def test_loading_names_foreign_damaged_and_missing_files(tmp_path):
    atomic_save(_state(1), tmp_path / "toy.pt")
    with pytest.raises(CheckpointError, match="saved by task 'toy', not 'codec'"):
        load_checkpoint(tmp_path / "toy.pt", expect_task="codec")
    assert load_checkpoint(tmp_path / "toy.pt", expect_task="toy")["step"] == 1
    (tmp_path / "cut.pt").write_bytes((tmp_path / "toy.pt").read_bytes()[:200])
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"weights": torch.ones(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a stegafast training checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize(
    "value,kind",
    [
        (np.zeros(3), "numpy.ndarray"),
        (np.float64(1.5), "numpy.float64"),
        ({1, 2}, "builtins.set"),
        (torch.float32, "torch.dtype"),
    ],
)
def test_contents_are_checked_when_saving(tmp_path, value, kind):
    state = _state(1, task_state={"ramp": [1, value]})
    with pytest.raises(CheckpointError, match=rf"checkpoint\['task_state'\]\['ramp'\]\[1\] is a {kind}"):
        check_weights_only(state)
    with pytest.raises(CheckpointError):
        atomic_save(state, tmp_path / "x.pt")
    assert not list(tmp_path.iterdir())
    check_weights_only(_state(1, task_state={"ramp": (1, 2.5, "a", None, True, [torch.ones(1)])}))


def test_a_task_state_that_would_not_load_fails_at_the_first_save(tmp_path):
    class NumpyState(RegressionTask):
        def state_dict(self):
            return {"weights": np.ones(2)}

    with pytest.raises(CheckpointError, match=r"\['task_state'\]\['weights'\] is a numpy.ndarray"):
        train(NumpyState(), _config(tmp_path))


class _ScriptedValidation(RegressionTask):
    """Validation "loss" taken from a table by step, to know which checkpoints are best."""

    SCRIPT = {1: 5.0, 2: 3.0, 3: 4.0, 4: 1.0, 5: 2.0, 6: 6.0, 7: 7.0, 8: 8.0}

    def validation_step(self, batch, ctx):
        return {"loss": self.SCRIPT[ctx.step]}


@pytest.mark.parametrize(
    "mode,keep_best,kept,best",
    [
        ("min", 2, [4, 5, 8], 4),
        ("max", 2, [7, 8], 8),
        ("min", 0, [8], 8),  # the latest is the only candidate left
    ],
)
def test_best_k_checkpoints_and_the_latest_are_kept(tmp_path, mode, keep_best, kept, best):
    config = _config(tmp_path, steps=8, val_every=1, save_every=0, keep_best=keep_best, best_mode=mode)
    result = train(_ScriptedValidation(), config)
    run = RunDir(tmp_path)
    assert [step for step, _ in run.checkpoints()] == kept
    assert result.latest_checkpoint == run.checkpoint_path(8)
    assert result.best_checkpoint == run.checkpoint_path(best)
    assert load_checkpoint(result.best_checkpoint)["metrics"]["loss"] == _ScriptedValidation.SCRIPT[best]


def test_a_lost_index_forgets_metrics_not_checkpoints(tmp_path):
    train(_ScriptedValidation(), _config(tmp_path, steps=4, val_every=1, save_every=0, keep_best=1))
    run = RunDir(tmp_path)
    run.index_path.unlink()
    assert run.latest() == run.checkpoint_path(4) and run.best("min") is None
    resumed = train(
        _ScriptedValidation(), _config(tmp_path, steps=5, val_every=1, save_every=0, keep_best=1, resume=True)
    )
    # Step 4 (loss 1.0) lost its metric with the index, so it goes; step 5 (2.0) is now the best.
    assert [step for step, _ in run.checkpoints()] == [5]
    assert resumed.best_checkpoint == run.checkpoint_path(5)
    assert torch.equal(flat_parameters(resumed.models), flat_parameters({"model": _load_model(run.checkpoint_path(5))}))


def _load_model(path):
    model = RegressionTask().build_models()
    model.load_state_dict(load_checkpoint(path, expect_task="toy.regression")["models"]["model"])
    return model
