"""Toy training tasks for the test_train_* files: tiny models on synthetic data
made in code. Run as a script under torchrun it is the worker of the
2-process data-parallel test (see test_train_ddp.py)."""

from __future__ import annotations

import random
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from stegafast.train import OptimizerSpec, Phase, Schedule, Task, TrainConfig


class Interrupted(Exception):
    """Raised by a toy task to stand for a run killed part-way."""


class NoisyPairs(Dataset):
    """(x, y = x @ W) pairs whose x is jittered in ``__getitem__`` with torch,
    NumPy and Python random draws, so item randomness exercises all three streams."""

    def __init__(self, n: int = 48, dim: int = 6, seed: int = 0, jitter: float = 0.05):
        self.x = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))
        self.w = torch.randn(dim, 2, generator=torch.Generator().manual_seed(1234))  # one truth for every split
        self.jitter = jitter

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        x = self.x[i] + self.jitter * torch.randn(self.x.shape[1])
        x = x * float(np.random.uniform(0.9, 1.1)) * (1.0 if random.random() < 0.5 else -1.0)
        return x, x @ self.w


class RegressionTask(Task):
    """An MLP regression with dropout and input noise (randomness in the step),
    Adam, optional schedule and clipping, and task state (an EMA of the loss)."""

    name = "toy.regression"

    def __init__(
        self,
        *,
        n: int = 48,
        val: bool = True,
        dropout: float = 0.1,
        input_noise: float = 0.01,
        optimizer: str = "adam",
        schedule: Schedule | None = None,
        jitter: float = 0.05,
        stop_at: int | None = None,
    ):
        self.n, self.val, self.dropout, self.input_noise = n, val, dropout, input_noise
        self.optimizer, self.schedule, self.jitter, self.stop_at = optimizer, schedule, jitter, stop_at
        self.ema = torch.zeros(())
        self.calls = 0

    def build_models(self):
        model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(self.dropout), nn.Linear(16, 2))
        self.initial_params = flat_parameters({"model": model})
        return model

    def build_optimizers(self, models, config):
        params = models["model"].parameters()
        if self.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=config.lr or 0.05)
        else:
            opt = torch.optim.Adam(params, lr=config.lr or 1e-2)
        return OptimizerSpec(opt, schedule=self.schedule)

    def train_dataset(self):
        return NoisyPairs(self.n, jitter=self.jitter)

    def val_dataset(self):
        return NoisyPairs(10, seed=1, jitter=self.jitter) if self.val else None

    def training_step(self, batch, ctx):
        if self.stop_at is not None and ctx.step == self.stop_at:
            raise Interrupted(f"stopped at step {ctx.step}")
        x, y = batch
        x = x + self.input_noise * torch.randn_like(x)
        loss = F.mse_loss(ctx.model(x), y)
        ctx.backward(loss)
        self.ema = 0.9 * self.ema + 0.1 * loss.detach().float().cpu()
        self.calls += 1
        return {"loss": loss, "ema": self.ema}

    def validation_step(self, batch, ctx):
        x, y = batch
        pred = ctx.model(x)
        return {"loss": F.mse_loss(pred, y), "mae": (pred - y).abs().mean()}

    def state_dict(self):
        return {"ema": self.ema, "calls": self.calls}

    def load_state_dict(self, state):
        self.ema, self.calls = state["ema"], state["calls"]


class Vectors(Dataset):
    """Vectors with a non-zero mean, so the codec's latents have means for the quantiles to learn."""

    def __init__(self, n: int, dim: int = 8, seed: int = 0):
        self.x = 2 + 3 * torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i]


class ToyCodec(nn.Module):
    """Analysis/synthesis transforms with a straight-through rounding, plus
    ``quantiles`` that only the auxiliary loss trains (as in a learned codec's
    entropy bottleneck)."""

    def __init__(self, dim: int = 8, latent: int = 4):
        super().__init__()
        self.enc, self.dec = nn.Linear(dim, latent), nn.Linear(latent, dim)
        self.quantiles = nn.Parameter(torch.zeros(latent))

    def forward(self, x):
        y = self.enc(x)
        y_hat = y + (torch.round(y) - y).detach()
        return self.dec(y_hat), y

    def aux_loss(self, latent):
        return ((self.quantiles - latent.detach().mean(0)) ** 2).sum()


class CodecTask(Task):
    """Main (rate-distortion) and auxiliary (quantile) optimisers on disjoint parameters."""

    name = "toy.codec"
    aux_lr = 0.1

    def build_models(self):
        return {"codec": ToyCodec()}

    def build_optimizers(self, models, config):
        codec = models["codec"]
        main = [p for n, p in codec.named_parameters() if n != "quantiles"]
        return {
            "main": torch.optim.Adam(main, lr=config.lr or 1e-2),
            "aux": OptimizerSpec(torch.optim.Adam([codec.quantiles], lr=self.aux_lr), outside_forward=True),
        }

    def train_dataset(self):
        return Vectors(64)

    def training_step(self, batch, ctx):
        x_hat, y = ctx.models["codec"](batch)
        loss = F.mse_loss(x_hat, batch) + 0.01 * y.abs().mean()
        ctx.backward(loss, "main")
        aux = ctx.modules["codec"].aux_loss(y)
        ctx.backward(aux, "aux")
        return {"loss": loss, "aux_loss": aux}


class Points(Dataset):
    """2-D points of a Gaussian centred at ``centre``: the "real" data of the WGAN."""

    centre = torch.tensor([2.0, -1.0])

    def __init__(self, n: int, seed: int = 0):
        self.points = self.centre + 0.3 * torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, i: int):
        return self.points[i]


class WganTask(Task):
    """A WGAN-GP: the critic is stepped ``n_critic`` times per generator step, with
    a gradient penalty; validation measures how far the generated mean is from the data's."""

    name = "toy.wgan"
    monitor = "mean_dist"
    monitor_mode = "min"

    def __init__(self, n_critic: int = 3):
        self.n_critic = n_critic

    def build_models(self):
        return {
            "generator": nn.Linear(4, 2),
            "critic": nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1)),
        }

    def build_optimizers(self, models, config):
        return {
            name: torch.optim.Adam(m.parameters(), lr=config.lr or 2e-2, betas=(0.5, 0.9)) for name, m in models.items()
        }

    def train_dataset(self):
        return Points(128)

    def val_dataset(self):
        return Points(64, seed=1)

    def phases(self, step, total_steps):
        return [Phase("critic", self.n_critic), Phase("generator")]

    def training_step(self, real, ctx):
        generator, critic = ctx.models["generator"], ctx.models["critic"]
        z = torch.randn(len(real), 4, device=ctx.device)
        if ctx.phase == "critic":
            with torch.no_grad():
                fake = generator(z)
            eps = torch.rand(len(real), 1, device=ctx.device)
            mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
            (grad,) = ctx.grad(critic(mixed), mixed)
            penalty = ((grad.norm(dim=1) - 1) ** 2).mean()
            loss = critic(fake).mean() - critic(real).mean() + 10 * penalty
            ctx.backward(loss, "critic")
            return {"critic_loss": loss, "penalty": penalty}
        loss = -critic(generator(z)).mean()
        ctx.backward(loss, "generator")
        return {"generator_loss": loss}

    def validation_step(self, real, ctx):
        fake = ctx.models["generator"](torch.randn(len(real), 4, device=ctx.device))
        return {"mean_dist": (fake.mean(0) - Points.centre.to(ctx.device)).norm()}


def flat_parameters(models: dict[str, nn.Module]) -> torch.Tensor:
    """Every parameter of every model, in name order, as one float64 vector."""
    return torch.cat(
        [p.detach().double().reshape(-1).cpu() for name in sorted(models) for p in models[name].parameters()]
    )


# ---- the 2-process DDP test's worker ---------------------------------------------------------

DDP_TASKS = {"regression": lambda: RegressionTask(dropout=0.0, input_noise=0.0), "codec": CodecTask, "wgan": WganTask}


def ddp_config(out, batch_size: int, steps: int = 6, grad_accum: int = 1) -> TrainConfig:
    return TrainConfig(
        out=out,
        steps=steps,
        batch_size=batch_size,
        grad_accum=grad_accum,
        device="cpu",
        seed=3,
        log_every=2,
        save_every=3,
        val_every=3,
        progress=False,
        tensorboard=False,
    )


def _worker(out_root: str, result_root: str) -> None:
    import os

    from stegafast.train import train

    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    for name, make in DDP_TASKS.items():
        result = train(make(), ddp_config(f"{out_root}/{name}", batch_size=4, grad_accum=2))
        torch.save(
            {"params": flat_parameters(result.models), "train": result.train_metrics, "val": result.val_metrics},
            f"{result_root}/{name}-rank{rank}.pt",
        )


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
