"""The diffusion family's training task for the shared engine (``stegafast.train``)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ...train import Task, TrainConfig
from .config import NUM_TRAIN_TIMESTEPS, DiffusionTrainConfig, PhysicsConfig, UNetConfig
from .data import SyntheticPairs, pairs_from_folder
from .losses import epsilon_loss, noised
from .model import ConditionalUNet, WeightEMA
from .schedulers import training_scheduler

__all__ = ["DiffusionTask", "TASK_NAME", "VAL_SEED_OFFSET"]

TASK_NAME = "diffusion"
VAL_SEED_OFFSET = 1_000_003  # validation specimens come from another stream than training's


class DiffusionTask(Task):
    """Trains ``ConditionalUNet`` to predict the noise of x_t given the widefield y.

    data:          a folder of clean images or of (clean/, widefield/) pairs (``data``);
                   None: seeded synthetic specimens (``epoch_length`` per epoch)
    val_data:      the same for validation; None: 16 synthetic pairs of another seed
                   stream without ``data``, no validation with it
    physics:       the microscope (also stored in the checkpoint: what denoise defaults to)

    Each step draws t uniformly in 0..999 and the noise; the loss is the epsilon MSE.
    After every optimiser step the EMA model ("ema", not trained) is updated (a step
    post-hook on the optimiser, so skipped fp16 steps are not averaged). Validation
    measures the EMA model's epsilon MSE at timesteps and noise fixed by the sample's
    index, so every validation is comparable; checkpoints are ranked by it ("loss", min).
    """

    name = TASK_NAME

    def __init__(
        self,
        model_config: UNetConfig | None = None,
        physics: PhysicsConfig | None = None,
        train_config: DiffusionTrainConfig | None = None,
        *,
        data: str | os.PathLike | None = None,
        val_data: str | os.PathLike | None = None,
        epoch_length: int = 10000,
        val_length: int = 16,
        seed: int = 0,
    ):
        self.model_config = model_config or UNetConfig()
        self.physics = physics or PhysicsConfig()
        self.train_config = train_config or DiffusionTrainConfig()
        self.data, self.val_data = data, val_data
        self.epoch_length, self.val_length, self.seed = epoch_length, val_length, seed
        self.scheduler = training_scheduler()

    def identity(self) -> dict[str, Any]:
        """What a checkpoint must match: the engine's identity, ``"model"`` (the UNet config as a dict) and
        ``"physics"`` (the microscope as a dict, stored so ``denoise`` defaults to it); training settings and data are
        not part of it."""
        return {**super().identity(), "model": self.model_config.to_dict(), "physics": self.physics.to_dict()}

    @classmethod
    def from_identity(cls, identity: dict[str, Any]) -> DiffusionTask:
        """The task of a checkpoint's ``identity()``: its UNet and microscope configs, default training settings and
        synthetic data. A KeyError when ``"model"`` or ``"physics"`` is missing, a ValueError for settings the configs
        reject."""
        return cls(UNetConfig.from_dict(identity["model"]), PhysicsConfig.from_dict(identity["physics"]))

    def build_models(self) -> dict[str, torch.nn.Module]:
        """``"model"``: a fresh ``ConditionalUNet`` of ``model_config``; ``"ema"``: a ``WeightEMA`` copy of it with
        ``train_config.ema_decay`` (no trainable parameters: it is only averaged)."""
        model = ConditionalUNet(self.model_config)
        return {"model": model, "ema": WeightEMA(model, self.train_config.ema_decay)}

    def build_optimizers(self, models, config: TrainConfig) -> torch.optim.Optimizer:
        """One Adam over ``models["model"]``, lr ``config.lr`` or ``train_config.lr`` (1e-4), with a step post-hook that
        updates ``models["ema"]`` after every optimiser step that runs."""
        optimizer = torch.optim.Adam(models["model"].parameters(), lr=config.lr or self.train_config.lr)
        model, ema = models["model"], models["ema"]
        optimizer.register_step_post_hook(lambda *_: ema.update(model))
        return optimizer

    def train_dataset(self) -> Dataset:
        """Pairs ``(x_n, y_n, scale)``: float32 (1, S, S) in the normalised range and a 0-d scale (photons), from
        ``data`` (``pairs_from_folder``, an ImageFileError for an unusable folder) or, without it, ``epoch_length``
        seeded synthetic pairs."""
        if self.data is not None:
            return pairs_from_folder(self.data, self.physics, self.seed)
        return SyntheticPairs(self.physics, self.epoch_length, self.seed)

    def val_dataset(self) -> Dataset | None:
        """``val_data``'s pairs ``(x_n, y_n, scale)`` (seed stream offset by VAL_SEED_OFFSET); without it, None when
        training on ``data``, else ``val_length`` synthetic pairs of the offset stream, each with a timestep and noise
        fixed by its index: ``(x_n, y_n, scale, t, noise)``, t a 0-d int64 in 0..999 and noise float32 (1, S, S)."""
        if self.val_data is not None:
            return pairs_from_folder(self.val_data, self.physics, self.seed + VAL_SEED_OFFSET)
        if self.data is not None:
            return None
        return _WithFixedNoise(SyntheticPairs(self.physics, self.val_length, self.seed + VAL_SEED_OFFSET))

    def training_step(self, batch, ctx) -> dict[str, torch.Tensor | float]:
        """One step on ``batch`` ``(x0, cond, scale)``: x0 and cond float32 (B, 1, S, S) in the normalised range. Draws
        t uniformly in 0..999 and Gaussian noise, back-propagates the float32 epsilon MSE of ``models["model"]`` on x_t
        and returns it as ``{"loss": 0-d tensor}``."""
        x0, cond, _scale = batch
        t = torch.randint(0, NUM_TRAIN_TIMESTEPS, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        predicted = ctx.models["model"](noised(self.scheduler, x0, noise, t), t, cond)
        loss = epsilon_loss(predicted, noise)
        ctx.backward(loss)
        return {"loss": loss}

    def validation_step(self, batch, ctx) -> dict[str, torch.Tensor | float]:
        """``{"loss"}``: the float32 epsilon MSE of the EMA model on ``batch``, either ``(x0, cond, scale)`` from a
        folder (t and noise drawn from a generator seeded with ``seed``, the same for every batch) or synthetic
        ``(x0, cond, scale, t, noise)`` with its fixed t and noise; x0, cond float32 (B, 1, S, S), normalised range."""
        if len(batch) == 3:  # a folder's pairs: noise drawn here from a fixed seed
            x0, cond, _ = batch
            g = torch.Generator(device="cpu").manual_seed(self.seed)
            t = torch.randint(0, NUM_TRAIN_TIMESTEPS, (x0.shape[0],), generator=g).to(x0.device)
            noise = torch.randn(x0.shape, generator=g).to(x0.device)
        else:
            x0, cond, _, t, noise = batch
        predicted = ctx.models["ema"](noised(self.scheduler, x0, noise, t), t, cond)
        return {"loss": epsilon_loss(predicted, noise)}


class _WithFixedNoise(Dataset):
    """Pairs plus a timestep and noise fixed by the index (validation that compares)."""

    def __init__(self, pairs: Dataset):
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int):
        x0, cond, scale = self.pairs[index]
        seed = int(np.random.SeedSequence([index, 7]).generate_state(1)[0])
        g = torch.Generator().manual_seed(seed)
        t = torch.randint(0, NUM_TRAIN_TIMESTEPS, (), generator=g)
        return x0, cond, scale, t, torch.randn(x0.shape, generator=g)
