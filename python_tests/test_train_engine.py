"""The engine's optimisation mechanics: gradient accumulation, clipping,
learning-rate schedules, AMP, validation pooling, and the errors a task or a
config gets for mistakes."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import IterableDataset
from train_toys import CodecTask, RegressionTask, flat_parameters

from stegafast.errors import DataError
from stegafast.train import OptimizerSpec, Schedule, TrainConfig, Trainer, resolve_amp, train


def _config(out, **overrides):
    settings = dict(out=out, steps=6, batch_size=8, log_every=1, progress=False, tensorboard=False)
    return TrainConfig(**{**settings, **overrides})


def _deterministic_task(**kwargs):
    return RegressionTask(dropout=0.0, input_noise=0.0, **kwargs)


# ---- accumulation and clipping ----------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_accumulated_micro_batches_equal_one_large_batch(tmp_path, optimizer):
    runs = {}
    for batch, accum in ((16, 1), (8, 2), (4, 4)):
        task = _deterministic_task(optimizer=optimizer)
        result = train(task, _config(tmp_path / f"{batch}x{accum}", batch_size=batch, grad_accum=accum))
        runs[batch] = flat_parameters(result.models)
    assert (runs[16] - task.initial_params).abs().max() > 1e-2  # it trained
    torch.testing.assert_close(runs[8], runs[16], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(runs[4], runs[16], rtol=1e-5, atol=1e-6)


def test_gradients_are_clipped_to_the_norm(tmp_path):
    clip = 1e-3
    task = _deterministic_task(optimizer="sgd")
    result = train(task, _config(tmp_path, steps=1, clip_norm=clip, lr=1.0))
    moved = (flat_parameters(result.models) - task.initial_params).norm().item()
    assert moved == pytest.approx(clip, rel=1e-4)  # SGD, lr 1: the update is the clipped gradient
    assert result.train_metrics["grad_norm/main"] > 100 * clip  # the norm before clipping

    unclipped = _deterministic_task(optimizer="sgd")
    result = train(unclipped, _config(tmp_path / "free", steps=1, lr=1.0))
    assert (flat_parameters(result.models) - unclipped.initial_params).norm().item() > 100 * clip
    assert "grad_norm/main" not in result.train_metrics


def test_an_optimiser_can_override_the_run_clip_norm(tmp_path):
    class ClipOwn(RegressionTask):
        def build_optimizers(self, models, config):
            return OptimizerSpec(torch.optim.SGD(models["model"].parameters(), lr=1.0), clip_norm=2e-3)

    task = ClipOwn(dropout=0.0, input_noise=0.0)
    result = train(task, _config(tmp_path, steps=1, clip_norm=1e-3))
    assert (flat_parameters(result.models) - task.initial_params).norm().item() == pytest.approx(2e-3, rel=1e-4)


# ---- schedules -------------------------------------------------------------------------------


def test_schedule_factors():
    total = 11
    assert [Schedule().factor(s, total) for s in (0, 5, 10)] == [1.0, 1.0, 1.0]
    assert [Schedule(warmup=4).factor(s, total) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cosine = Schedule("cosine", final=0.1)
    assert cosine.factor(0, total) == 1.0 and cosine.factor(10, total) == pytest.approx(0.1)
    assert cosine.factor(5, total) == pytest.approx(0.55)
    assert Schedule("cosine", warmup=2).factor(1, total) == 1.0 and Schedule("cosine", warmup=2).factor(2, total) == 1.0
    assert Schedule("linear").factor(5, total) == pytest.approx(0.5) and Schedule("linear").factor(10, total) == 0.0
    step = Schedule("step", every=3, gamma=0.5)
    assert [step.factor(s, total) for s in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]


def test_schedule_parsing():
    assert Schedule.parse("cosine,warmup=500,final=0.01") == Schedule("cosine", warmup=500, final=0.01)
    assert Schedule.parse("step, every=10, gamma=0.5") == Schedule("step", every=10, gamma=0.5)
    for spec, message in [
        ("exp", "unknown schedule 'exp'"),
        ("cosine,warm=5", "bad schedule option 'warm=5'"),
        ("cosine,warmup=x", "needs a number"),
        ("step", "every >= 1"),
        ("cosine,final=2", "within \\[0, 1\\]"),
        ("constant,warmup=-1", "non-negative"),
    ]:
        with pytest.raises(ValueError, match=message):
            Schedule.parse(spec)


def test_the_engine_applies_each_optimisers_schedule(tmp_path):
    class Scheduled(CodecTask):
        def build_optimizers(self, models, config):
            optimizers = super().build_optimizers(models, config)
            optimizers["aux"].schedule = Schedule(warmup=4)
            return optimizers

    train(Scheduled(), _config(tmp_path, lr=0.1, schedule=Schedule("step", every=2, gamma=0.5)))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr/main"] for r in records] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    assert [r["lr/aux"] for r in records] == pytest.approx([CodecTask.aux_lr * f for f in (0.25, 0.5, 0.75, 1, 1, 1)])


# ---- AMP -------------------------------------------------------------------------------------


def test_fp16_on_cpu_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="fp16 needs a CUDA device.*bf16"):
        resolve_amp("fp16", "cpu")
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        train(RegressionTask(), _config(tmp_path / "run", amp="fp16", device="cpu"))
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="unknown AMP mode"):
        resolve_amp("fp8", "cpu")


class _DtypeProbe(RegressionTask):
    """Records the dtype a Linear produces inside the step, and in a full-precision region."""

    def training_step(self, batch, ctx):
        x, y = batch
        self.seen = ctx.model(x).dtype
        with ctx.autocast(enabled=False):
            self.seen_full = ctx.model(x.float()).dtype
        return super().training_step(batch, ctx)


def test_bf16_autocast_on_cpu_trains(tmp_path):
    task = _DtypeProbe()
    result = train(task, _config(tmp_path, steps=40, amp="bf16", lr=3e-2, log_every=5))
    assert task.seen == torch.bfloat16 and task.seen_full == torch.float32
    assert all(p.dtype == torch.float32 for p in result.models["model"].parameters())  # master weights stay fp32
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["split"] == "train"]
    assert all(map(math.isfinite, losses)) and losses[-1] < 0.2 * losses[0]
    assert "loss_scale" not in result.train_metrics  # loss scaling is for fp16 only


@pytest.mark.cuda
def test_fp16_with_loss_scaling_on_cuda(tmp_path):
    task = _DtypeProbe()
    result = train(task, _config(tmp_path, steps=20, amp="fp16", device="cuda"))
    assert task.seen == torch.float16 and result.train_metrics["loss_scale"] > 1
    assert math.isfinite(result.train_metrics["loss"])


# ---- validation ------------------------------------------------------------------------------


def test_validation_weighs_batches_by_their_size(tmp_path):
    # 10 validation samples in batches of 4, 4, 2 must average like one batch of 10.
    ragged = train(_deterministic_task(), _config(tmp_path / "a", steps=2, val_batch_size=4)).val_metrics
    whole = train(_deterministic_task(), _config(tmp_path / "b", steps=2, val_batch_size=10)).val_metrics
    assert ragged.keys() == {"loss", "mae"}
    assert ragged["loss"] == pytest.approx(whole["loss"], rel=1e-6)
    assert ragged["mae"] == pytest.approx(whole["mae"], rel=1e-6)


def test_validation_leaves_training_streams_and_modes_alone(tmp_path):
    class FrozenDropout(RegressionTask):
        def build_models(self):
            model = super().build_models()
            model[2].eval()  # a part the task keeps in eval mode
            return model

    # Validating every step or only at the end must not change training.
    often = train(FrozenDropout(), _config(tmp_path / "often", val_every=1))
    rarely = train(FrozenDropout(), _config(tmp_path / "rarely", val_every=0))
    assert torch.equal(flat_parameters(often.models), flat_parameters(rarely.models))
    model = often.models["model"]
    assert model.training and model[0].training and not model[2].training


# ---- mistakes ----------------------------------------------------------------------------------


class _Custom(RegressionTask):
    def __init__(self, optimizers=None, step=None, train_set=None, **kwargs):
        super().__init__(**kwargs)
        self._optimizers, self._step, self._train_set = optimizers, step, train_set

    def build_optimizers(self, models, config):
        return self._optimizers(models) if self._optimizers else super().build_optimizers(models, config)

    def training_step(self, batch, ctx):
        return self._step(batch, ctx) if self._step else super().training_step(batch, ctx)

    def train_dataset(self):
        return self._train_set if self._train_set is not None else super().train_dataset()


def _two_optimizers(models):
    first, last = models["model"][0], models["model"][3]
    return {"a": torch.optim.SGD(first.parameters(), lr=0.1), "b": torch.optim.SGD(last.parameters(), lr=0.1)}


def _loss(batch, ctx):
    x, y = batch
    return F.mse_loss(ctx.model(x), y)


class _Stream(IterableDataset):
    def __iter__(self):
        return iter([])


@pytest.mark.parametrize(
    "task,error,message",
    [
        (
            _Custom(optimizers=lambda m: torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=1)),
            ValueError,
            "holds a parameter that is in none of the task's models",
        ),
        (
            _Custom(
                optimizers=lambda m: {
                    "a": torch.optim.SGD(m["model"].parameters(), lr=1),
                    "b": torch.optim.SGD(m["model"][0].parameters(), lr=1),
                }
            ),
            ValueError,
            "in optimisers 'a' and 'b'",
        ),
        (
            _Custom(optimizers=_two_optimizers, step=lambda b, ctx: ctx.backward(_loss(b, ctx))),
            ValueError,
            "several optimisers \\(a, b\\).*ctx.backward\\(loss, name\\)",
        ),
        (_Custom(step=lambda b, ctx: ctx.backward(_loss(b, ctx), "critic")), ValueError, "unknown optimiser 'critic'"),
        (_Custom(step=lambda b, ctx: {"loss": _loss(b, ctx)}), RuntimeError, "called ctx.backward for no optimiser"),
        (_Custom(step=lambda b, ctx: ctx.backward(_loss(b, ctx)) or 1.5), TypeError, "must return a dict"),
        (
            _Custom(step=lambda b, ctx: ctx.backward(_loss(b, ctx)) or {"x": torch.ones(3)}),
            ValueError,
            "metric 'x' must be a scalar",
        ),
        (_Custom(n=12), DataError, "training set has 12 samples, fewer than one batch"),
        (_Custom(train_set=_Stream()), TypeError, "must return a map-style Dataset"),
    ],
)
def test_task_mistakes_get_clear_errors(tmp_path, task, error, message):
    with pytest.raises(error, match=message):
        train(task, _config(tmp_path, batch_size=16, steps=1))


def test_task_definition_mistakes(tmp_path):
    class Unnamed(RegressionTask):
        name = ""

    with pytest.raises(ValueError, match="name must name the task"):
        Trainer(Unnamed(), _config(tmp_path))

    class NoValidationStep(CodecTask):
        def val_dataset(self):
            return self.train_dataset()

    with pytest.raises(TypeError, match="has a validation set but no validation_step"):
        train(NoValidationStep(), _config(tmp_path))

    class NotJson(RegressionTask):
        def identity(self):
            return {"task": self.name, "dtype": torch.float32}

    with pytest.raises(ValueError, match="identity\\(\\) must be JSON-able"):
        Trainer(NotJson(), _config(tmp_path))


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("steps", 0, "steps must be a positive integer"),
        ("batch_size", 2.5, "batch_size must be a positive integer"),
        ("grad_accum", 0, "grad_accum must be a positive integer"),
        ("workers", -1, "workers must be a non-negative integer"),
        ("lr", float("nan"), "lr must be a positive number"),
        ("clip_norm", -1.0, "clip_norm must be >= 0"),
        ("amp", "fp8", "amp must be one of bf16, fp16, off"),
        ("best_mode", "lowest", "best_mode must be 'min' or 'max'"),
    ],
)
def test_config_rejects_bad_values(tmp_path, field, value, message):
    with pytest.raises(ValueError, match=message):
        _config(tmp_path, **{field: value})
