"""Trained models back from checkpoints (stegafast.train.loading): the task rebuilds
itself from the checkpoint's identity, and a run folder's best checkpoint is chosen
in the direction the run ranked them."""

import pytest
import torch
from train_toys import RegressionTask, flat_parameters

from stegafast.train import (
    CheckpointError,
    RunDir,
    RunDirError,
    Task,
    TrainConfig,
    checkpoint_file,
    load_trained,
    train,
)


class Scripted(RegressionTask):
    """A regression whose validation "loss" is scripted by step; rebuilt from its identity."""

    SCRIPT = {1: 5.0, 2: 3.0, 3: 4.0, 4: 1.0}

    def __init__(self, width: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.width = width

    def identity(self):
        return {**super().identity(), "width": self.width}

    @classmethod
    def from_identity(cls, identity):
        return cls(width=identity["width"])

    def build_models(self):
        return torch.nn.Sequential(torch.nn.Linear(6, self.width), torch.nn.ReLU(), torch.nn.Linear(self.width, 2))

    def validation_step(self, batch, ctx):
        return {"loss": self.SCRIPT[ctx.step]}


class ScriptedMax(Scripted):
    monitor_mode = "max"


def _train(task, out, **overrides):
    config = dict(
        out=out, steps=4, batch_size=8, val_every=1, save_every=0, keep_best=4, progress=False, tensorboard=False
    )
    return train(task, TrainConfig(**{**config, **overrides}))


@pytest.mark.parametrize("task_type,best", [(Scripted, 4), (ScriptedMax, 1)])
def test_the_best_checkpoint_follows_the_tasks_monitor_mode(tmp_path, task_type, best):
    _train(task_type(width=8), tmp_path)
    trained = load_trained(task_type, tmp_path)
    assert trained.checkpoint == RunDir(tmp_path).checkpoint_path(best)
    assert isinstance(trained.task, task_type) and trained.task.width == 8
    assert not trained.model.training


def test_a_run_started_with_its_own_best_mode_is_ranked_that_way(tmp_path):
    _train(Scripted(), tmp_path, best_mode="max")
    assert load_trained(Scripted, tmp_path).checkpoint == RunDir(tmp_path).checkpoint_path(1)


def test_the_weights_are_the_checkpoints(tmp_path):
    result = _train(Scripted(width=4), tmp_path, steps=2, val_every=0, save_every=1)
    trained = load_trained(Scripted, result.latest_checkpoint)
    assert torch.equal(flat_parameters(trained.models), flat_parameters(result.models))


def test_explicit_modes_only(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        checkpoint_file(tmp_path, "best")
    assert checkpoint_file(tmp_path / "a.pt", "min") == tmp_path / "a.pt"


def test_failures_are_user_errors(tmp_path):
    with pytest.raises(RunDirError, match="holds no checkpoint"):
        load_trained(Scripted, tmp_path)
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="is not a checkpoint file"):
        load_trained(Scripted, tmp_path / "notes.txt")
    run = tmp_path / "run"
    _train(Scripted(), run, steps=1)
    with pytest.raises(CheckpointError, match="saved by task 'toy.regression', not 'toy.other'"):
        load_trained(type("Other", (Scripted,), {"name": "toy.other"}), run)

    class Misfit(Scripted):
        def build_models(self):
            return torch.nn.Linear(6, 2)

    with pytest.raises(CheckpointError, match="does not hold a usable toy.regression model"):
        load_trained(Misfit, run)


def test_a_task_without_from_identity_says_so():
    class Plain(Task):
        name = "toy.plain"
        build_models = build_optimizers = train_dataset = training_step = None

    with pytest.raises(NotImplementedError, match="'toy.plain' cannot rebuild itself"):
        Plain.from_identity({"task": "toy.plain"})


def test_a_task_naming_its_monitor_must_name_its_direction():
    with pytest.raises(TypeError, match="sets monitor = 'psnr' but not monitor_mode"):

        class Forgetful(RegressionTask):
            monitor = "psnr"

    with pytest.raises(TypeError, match="monitor_mode must be 'min' or 'max', got 'best'"):

        class Wrong(RegressionTask):
            monitor_mode = "best"

    class Inherits(ScriptedMax):
        monitor = "psnr"  # the direction comes from ScriptedMax

    assert Inherits.monitor_mode == "max"
