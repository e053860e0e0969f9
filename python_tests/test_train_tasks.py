"""The task patterns the model families need train on toy problems: a main +
auxiliary optimiser on disjoint parameters (learned compression), a WGAN critic
stepped n times per generator step with a gradient penalty (StegaStamp), and
per-step hyper-parameters (the INN steganography's loss-weight ramp and late
perturbations)."""

import json

import pytest
import torch
import torch.nn.functional as F
from train_toys import CodecTask, RegressionTask, Vectors, WganTask

from stegafast.train import TrainConfig, ramp, train


def _config(out, **overrides):
    settings = dict(out=out, steps=60, batch_size=16, log_every=10, progress=False, tensorboard=False)
    return TrainConfig(**{**settings, **overrides})


def _records(run, split):
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["split"] == split]


def test_main_and_auxiliary_optimisers_both_train(tmp_path):
    result = train(CodecTask(), _config(tmp_path))
    losses = [r["loss"] for r in _records(tmp_path, "train")]
    assert losses[-1] < 0.5 * losses[0]
    codec = result.models["codec"]
    with torch.no_grad():
        latent_mean = codec.enc(Vectors(64).x).mean(0)
    # The quantiles started at zero; the auxiliary loss alone pulled them to the latent means.
    assert (codec.quantiles.detach() - latent_mean).norm() < 0.25 * latent_mean.norm()
    assert {"lr/main", "lr/aux", "aux_loss"} <= set(result.train_metrics)


def test_the_critic_steps_n_times_per_generator_step_and_the_generator_learns(tmp_path):
    result = train(WganTask(n_critic=3), _config(tmp_path, val_every=10))
    checkpoint = torch.load(result.latest_checkpoint, weights_only=True)
    steps = {name: {int(s["step"]) for s in opt["state"].values()} for name, opt in checkpoint["optimizers"].items()}
    assert steps == {"critic": {3 * 60}, "generator": {60}}
    distances = [r["mean_dist"] for r in _records(tmp_path, "val")]
    assert distances[-1] < 0.6 * distances[0]
    assert result.best_checkpoint == result.latest_checkpoint  # monitor "mean_dist", lowest is best
    assert {"critic_loss", "penalty", "generator_loss"} <= set(result.train_metrics)


class _InnLikeSchedule(RegressionTask):
    """A loss weight ramped from 2 to 24 over training and perturbations switched on
    at 85% of it, as the INN steganography seed does; records what each call saw."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.trace = []

    def training_step(self, batch, ctx):
        weight = ramp(ctx.step, 0, ctx.total_steps - 1, 2.0, 24.0)
        perturb = ctx.progress >= 0.85
        self.trace.append((ctx.step, ctx.micro_batch, weight, perturb))
        x, y = batch
        if perturb:
            x = x + 0.1 * torch.randn_like(x)
        loss = weight * F.mse_loss(ctx.model(x), y)
        ctx.backward(loss)
        return {"loss": loss, "weight": weight}


def test_per_step_hyper_parameters_follow_the_step(tmp_path):
    task = _InnLikeSchedule()
    train(task, _config(tmp_path, steps=20, batch_size=8, grad_accum=2, log_every=1))
    assert [(s, m) for s, m, _, _ in task.trace] == [(s, m) for s in range(20) for m in range(2)]
    weights = {s: w for s, _, w, _ in task.trace}
    assert weights[0] == 2.0 and weights[19] == 24.0 and weights[10] == pytest.approx(2 + 22 * 10 / 19)
    assert [s for s, _, _, p in task.trace if p][0] == 17  # 17/20 = 0.85
    assert [r["weight"] for r in _records(tmp_path, "train")] == pytest.approx([weights[s] for s in range(20)])


def test_ramp():
    assert [ramp(s, 10, 20, 2.0, 24.0) for s in (0, 10, 15, 20, 99)] == [2.0, 2.0, 13.0, 24.0, 24.0]
    assert ramp(4, 5, 5, 0.0, 1.0) == 0.0 and ramp(5, 5, 5, 0.0, 1.0) == 1.0  # a switch
