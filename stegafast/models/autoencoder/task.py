"""The autoencoder family's training task for the shared engine (``stegafast.train``)."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.data import Dataset

from ...data import training_images, validation_images
from ...train import Task, TrainConfig
from .config import AutoencoderConfig
from .losses import LossWeights, reconstruction_loss
from .model import AutoencoderCNN

__all__ = ["AutoencoderTask", "TASK_NAME", "LR", "WEIGHT_DECAY"]

TASK_NAME = "autoencoder"
LR, WEIGHT_DECAY = 1e-4, 1e-5  # the seed's AdamW settings


class AutoencoderTask(Task):
    """Trains ``AutoencoderCNN`` to reconstruct grayscale crops.

    data:          a folder of images (any mode, converted to L), or None for the bundled
                   grayscale collection (``BUNDLED_GRAY_SPLITS``: train split; its
                   validation split validates)
    val_data:      a folder of validation images (centre crops); None: none with ``data``,
                   the bundled validation split without it
    crop_size:     (H, W) of the training and validation crops; None: the config's input_size
    loss:          "l1", "mse" or "both" (weighted by ``l1_weight`` and ``mse_weight``)
    checkpointing: gradient checkpointing of every encoder and decoder stage

    One optimiser, AdamW (``--lr`` or 1e-4, weight decay 1e-5). Validation reports loss,
    mse, l1 and psnr; checkpoints are ranked by psnr (higher is better). Only the
    architecture is the task's identity: loss and checkpointing may change on resume. (``--compile``
    is the engine's: ``TrainConfig.compile``.)
    """

    name = TASK_NAME
    monitor = "psnr"
    monitor_mode = "max"

    def __init__(
        self,
        model_config: AutoencoderConfig | None = None,
        *,
        data: str | os.PathLike | None = None,
        val_data: str | os.PathLike | None = None,
        crop_size: tuple[int, int] | None = None,
        loss: str = "l1",
        l1_weight: float = 1.0,
        mse_weight: float = 1.0,
        checkpointing: bool = False,
        epoch_length: int = 1000,
    ):
        self.model_config = model_config or AutoencoderConfig()
        self.weights = LossWeights.of(loss, l1_weight, mse_weight)
        self.data, self.val_data, self.epoch_length = data, val_data, epoch_length
        self.crop_size = tuple(crop_size) if crop_size is not None else self.model_config.input_size
        self.checkpointing = bool(checkpointing)

    def identity(self) -> dict[str, Any]:
        """What a checkpoint must match: the engine's identity and ``"model"``, the architecture config as a dict
        (loss, crops and checkpointing are not part of it)."""
        return {**super().identity(), "model": self.model_config.to_dict()}

    @classmethod
    def from_identity(cls, identity: dict[str, Any]) -> AutoencoderTask:
        """The task of a checkpoint: its architecture, no data."""
        return cls(AutoencoderConfig.from_dict(identity["model"]))

    def build_models(self) -> AutoencoderCNN:
        """A fresh ``AutoencoderCNN`` of ``model_config``, with gradient checkpointing as asked."""
        model = AutoencoderCNN.from_config(self.model_config)
        model.set_gradient_checkpointing(self.checkpointing)
        return model

    def build_optimizers(self, models, config: TrainConfig) -> torch.optim.Optimizer:
        """One AdamW over ``models["model"]``: lr ``config.lr`` or LR (1e-4), weight decay WEIGHT_DECAY (1e-5)."""
        return torch.optim.AdamW(models["model"].parameters(), lr=config.lr or LR, weight_decay=WEIGHT_DECAY)

    def train_dataset(self) -> Dataset:
        """Random ``crop_size`` grayscale (L) crops, float (1, H, W) in [0, 1], of the images under ``data``; without
        it, of the bundled grayscale training split (``epoch_length`` crops an epoch)."""
        return training_images(self.data, self.crop_size, self.epoch_length, mode="L", collection="grayscale")

    def val_dataset(self) -> Dataset | None:
        """Grayscale centre crops of ``crop_size`` of ``val_data``; without it, the bundled grayscale validation split
        when training on the bundled set, None when training on ``data``."""
        return validation_images(self.val_data, self.data, self.crop_size, mode="L", collection="grayscale")

    def _terms(self, batch, ctx):
        x_hat = ctx.model(batch)
        with ctx.autocast(enabled=False):
            return ctx.compiled(reconstruction_loss)(x_hat, batch, self.weights)

    def training_step(self, batch, ctx) -> dict[str, torch.Tensor | float]:
        """One step on ``batch`` (float (B, 1, H, W) in [0, 1]): back-propagate the weighted reconstruction loss,
        computed in float32 outside autocast.

        Returns the detached ``loss``, ``l1``, ``mse`` and ``psnr`` (dB, capped at PSNR_CAP_DB) for the metric log.
        """
        terms = self._terms(batch, ctx)
        ctx.backward(terms.loss)
        return {"loss": terms.loss.detach(), "l1": terms.l1.detach(), "mse": terms.mse.detach(), "psnr": terms.psnr}

    def validation_step(self, batch, ctx) -> dict[str, torch.Tensor | float]:
        """``loss``, ``l1``, ``mse`` and ``psnr`` (dB, the monitored metric, higher is better) of ``batch`` (float
        (B, 1, H, W) in [0, 1])."""
        terms = self._terms(batch, ctx)
        return {"loss": terms.loss, "l1": terms.l1, "mse": terms.mse, "psnr": terms.psnr}
