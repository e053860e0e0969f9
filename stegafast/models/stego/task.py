"""The stego family's training task for the shared engine (``stegafast.train``)."""

from __future__ import annotations

import functools
import os
from typing import Any

import torch
from torch.utils.data import Dataset

from ...data import PairedImages, training_images, validation_images
from ...metrics import PSNR_CAP_DB, psnr
from ...train import Task, TrainConfig, ramp
from .config import MIN_IMAGE_SIZE, StegoLossConfig, StegoModelConfig
from .losses import perturb, quantize_straight_through, stego_loss
from .model import StegoINN

__all__ = ["StegoTask", "TASK_NAME"]

TASK_NAME = "stego"


class StegoTask(Task):
    """Trains ``StegoINN`` on (cover, secret) crop pairs.

    data:        a folder of images, or None for the bundled photographs (train
                 split; the validation split validates)
    val_data:    a folder of validation images (centre crops); None: none with
                 ``data``, the bundled validation split without it
    image_size:  side of the square training crops (at least 16)

    Each step: hiding weight ``ramp(step, 0, steps, alpha_hid_start, alpha_hid_end)``;
    from ``perturb_from`` of the run the stego images are perturbed before
    extraction (``losses.perturb``). Validation reports hiding and recovery
    PSNR with the stego quantised to 8 bits, as it would be saved;
    checkpoints are ranked by their mean (``psnr_mean``, higher is better).
    """

    name = TASK_NAME
    monitor = "psnr_mean"
    monitor_mode = "max"

    def __init__(
        self,
        model_config: StegoModelConfig | None = None,
        loss_config: StegoLossConfig | None = None,
        *,
        data: str | os.PathLike | None = None,
        val_data: str | os.PathLike | None = None,
        image_size: int = 224,
        epoch_length: int = 1000,
    ):
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
            raise ValueError(f"image size must be an integer >= {MIN_IMAGE_SIZE}, got {image_size!r}")
        self.model_config = model_config or StegoModelConfig()
        self.loss_config = loss_config or StegoLossConfig()
        self.data, self.val_data, self.image_size, self.epoch_length = data, val_data, image_size, epoch_length

    def identity(self) -> dict[str, Any]:
        """What a checkpoint must match: the engine's identity plus the architecture config."""
        return {**super().identity(), "model": self.model_config.to_dict()}

    @classmethod
    def from_identity(cls, identity: dict[str, Any]) -> StegoTask:
        """The task of a checkpoint: its architecture, default losses, no data."""
        return cls(StegoModelConfig.from_dict(identity["model"]))

    def build_models(self) -> StegoINN:
        """A fresh ``StegoINN`` of ``model_config``."""
        return StegoINN(self.model_config)

    def build_optimizers(self, models, config: TrainConfig) -> torch.optim.Optimizer:
        """Adam over every weight, lr ``config.lr`` or the seed's ``loss_config.lr``."""
        return torch.optim.Adam(models["model"].parameters(), lr=config.lr or self.loss_config.lr)

    def train_dataset(self) -> Dataset:
        """Random (cover, secret) pairs of ``image_size`` crops of the images under ``data`` (or the bundled photos)."""
        return PairedImages(training_images(self.data, self.image_size, self.epoch_length))

    def val_dataset(self) -> Dataset | None:
        """Fixed (cover, secret) pairs of validation crops; None when training on own data without ``val_data``."""
        images = validation_images(self.val_data, self.data, self.image_size)
        return None if images is None else PairedImages(images)

    def alpha_hid(self, step: int, total_steps: int) -> float:
        """The hiding-loss weight at ``step``: linear from ``alpha_hid_start`` at 0 to ``alpha_hid_end`` at
        ``total_steps``."""
        c = self.loss_config
        return ramp(step, 0, total_steps, c.alpha_hid_start, c.alpha_hid_end)

    def perturbing(self, progress: float) -> bool:
        """Whether the stego images are perturbed at this fraction of the run."""
        return progress >= self.loss_config.perturb_from

    def training_step(self, batch, ctx) -> dict[str, torch.Tensor | float]:
        """One step on ``batch`` = (cover, secret), float (B, 3, H, W) in [0, 1]: back-propagate ``stego_loss``.

        The stego is perturbed (quantised, noised) once the run is past the fraction ``perturb_from``. Returns ``loss``
        and the detached terms of ``LossTerms``, plus the current ``alpha_hid``.
        """
        cover, secret = batch
        shake = functools.partial(perturb, config=self.loss_config) if self.perturbing(ctx.progress) else None
        stego, recovered = ctx.model(cover, secret, shake)
        alpha = self.alpha_hid(ctx.step, ctx.total_steps)
        with ctx.autocast(enabled=False):
            terms = ctx.compiled(stego_loss)(
                cover, secret, stego, recovered, self.loss_config, alpha, self.model_config.value_range
            )
        ctx.backward(terms.total)
        return {
            "loss": terms.total,
            **{k: v.detach() for k, v in terms._asdict().items() if k != "total"},
            "alpha_hid": alpha,
        }

    def validation_step(self, batch, ctx) -> dict[str, torch.Tensor | float]:
        """``hid_psnr``, ``rec_psnr`` and ``psnr_mean`` (the monitor, higher is better), in dB, capped.

        The stego of ``batch`` = (cover, secret) is rounded to 8-bit levels before extraction, as a saved PNG would be.
        """
        cover, secret = batch
        stego, recovered = ctx.model(cover, secret, quantize_straight_through)
        stego = quantize_straight_through(stego)
        hid = psnr(stego.float(), cover.float(), cap=PSNR_CAP_DB)
        rec = psnr(recovered.float(), secret.float(), cap=PSNR_CAP_DB)
        return {"hid_psnr": hid, "rec_psnr": rec, "psnr_mean": (hid + rec) / 2}
