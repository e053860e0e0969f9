"""The codec family's training task for the shared engine (``stegafast.train``)."""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from torch.utils.data import Dataset

from ...data import training_images, validation_images
from ...train import OptimizerSpec, Task, TrainConfig
from .architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE, architecture_of, build_codec
from .base import LearnedCodec
from .config import DEFAULT_LMBDA, MULTIPLE, CodecConfig, DcaeConfig
from .losses import rate_distortion

__all__ = ["CodecTask", "TASK_NAME", "MAIN_LR", "AUX_LR"]

TASK_NAME = "codec"
MAIN_LR, AUX_LR = 1e-4, 1e-3  # CompressAI's


class CodecTask(Task):
    """Trains a learned codec with ``lmbda * 255^2 * MSE + bpp``: ``HyperpriorCodec``
    for a ``CodecConfig``, ``DcaeCodec`` for a ``DcaeConfig`` (``architectures.py``).

    data:        a folder of images, or None for the bundled photographs (train
                 split; the validation split validates)
    val_data:    a folder of validation images (centre crops); None: none with
                 ``data``, the bundled validation split without it
    image_size:  side of the square training crops, a multiple of 64
    lmbda:       the rate-distortion trade-off (larger: better quality, more bits)

    Two optimisers: "main" (Adam, ``--lr`` or 1e-4) on the transforms and the
    density models, "aux" (Adam, 1e-3, never clipped) on the bottleneck's
    quantiles through the auxiliary loss. Validation runs the model in eval mode
    (rounding) and reports loss, psnr and the estimated bpp; checkpoints are
    ranked by the loss. Every checkpoint carries CDF tables built from the
    parameters it holds (``stegafast.entropy.base``), the ones compress and
    decompress use.
    """

    name = TASK_NAME
    monitor = "loss"
    monitor_mode = "min"

    def __init__(
        self,
        model_config: CodecConfig | DcaeConfig | None = None,
        *,
        lmbda: float = DEFAULT_LMBDA,
        data: str | os.PathLike | None = None,
        val_data: str | os.PathLike | None = None,
        image_size: int = 128,
        epoch_length: int = 1000,
    ):
        if (
            isinstance(image_size, bool)
            or not isinstance(image_size, int)
            or image_size < MULTIPLE
            or image_size % MULTIPLE
        ):
            raise ValueError(f"image size must be a positive multiple of {MULTIPLE}, got {image_size!r}")
        if isinstance(lmbda, bool) or not isinstance(lmbda, (int, float)) or not (math.isfinite(lmbda) and lmbda > 0):
            raise ValueError(f"lmbda must be a positive number, got {lmbda!r}")
        self.model_config = model_config or CodecConfig()
        self.lmbda = float(lmbda)
        self.data, self.val_data, self.image_size, self.epoch_length = data, val_data, image_size, epoch_length

    @property
    def architecture(self) -> str:
        """The registry name of ``model_config``'s architecture (``hyperprior`` or ``dcae``)."""
        return architecture_of(self.model_config).name

    def identity(self) -> dict[str, Any]:
        """What a checkpoint must match: the engine's identity, the architecture config and ``lmbda``; non-hyperprior
        architectures add their name."""
        identity = {**super().identity(), "model": self.model_config.to_dict(), "lmbda": self.lmbda}
        if self.architecture != DEFAULT_ARCHITECTURE:  # the hyperprior's identity predates the others
            identity["architecture"] = self.architecture
        return identity

    @classmethod
    def from_identity(cls, identity: dict[str, Any]) -> CodecTask:
        """The task of a checkpoint: its architecture and lmbda, no data."""
        name = identity.get("architecture", DEFAULT_ARCHITECTURE)
        if name not in ARCHITECTURES:
            raise ValueError(f"unknown codec architecture {name!r} (a newer stegafast wrote this checkpoint?)")
        return cls(ARCHITECTURES[name].config_type.from_dict(identity["model"]), lmbda=identity["lmbda"])

    def build_models(self) -> LearnedCodec:
        """A fresh codec of ``model_config``'s architecture."""
        return build_codec(self.model_config)

    def build_optimizers(self, models, config: TrainConfig) -> dict[str, OptimizerSpec]:
        """Two Adam optimisers: ``main`` (every weight but the quantiles, lr ``config.lr`` or 1e-4) and ``aux``.

        ``aux`` (the entropy bottleneck's quantiles, lr 1e-3) is stepped outside the forward's autocast and never
        clipped.
        """
        model: LearnedCodec = models["model"]
        main = torch.optim.Adam(model.main_parameters(), lr=config.lr or MAIN_LR)
        aux = torch.optim.Adam(model.aux_parameters(), lr=AUX_LR)
        return {"main": OptimizerSpec(main), "aux": OptimizerSpec(aux, clip_norm=0, outside_forward=True)}

    def train_dataset(self) -> Dataset:
        """Random ``image_size`` crops of the images under ``data``; without it, of the bundled training photos.

        ``epoch_length`` crops make an epoch of the bundled photos; a folder's epoch is one crop per image.
        """
        return training_images(self.data, self.image_size, self.epoch_length)

    def val_dataset(self) -> Dataset | None:
        """Centre crops of ``val_data``, else the bundled validation photos when training on them; None otherwise."""
        return validation_images(self.val_data, self.data, self.image_size)

    def training_step(self, batch, ctx) -> dict[str, torch.Tensor | float]:
        """One step on ``batch`` (float (B, 3, H, W) in [0, 1]): back-propagate the rate-distortion loss and the aux
        loss.

        Returns the detached ``loss``, ``mse``, ``bpp``, ``psnr`` (dB) and ``aux`` for the metric log.
        """
        out = ctx.model(batch)
        with ctx.autocast(enabled=False):
            terms = ctx.compiled(rate_distortion)(batch, out, self.lmbda)
        ctx.backward(terms.loss, "main")
        aux = ctx.modules["model"].aux_loss()
        ctx.backward(aux, "aux")
        return {
            "loss": terms.loss.detach(),
            "mse": terms.mse.detach(),
            "bpp": terms.bpp.detach(),
            "psnr": terms.psnr,
            "aux": aux.detach(),
        }

    def validation_step(self, batch, ctx) -> dict[str, torch.Tensor | float]:
        """``loss``, ``psnr`` (dB, the monitored metric, higher is better) and ``bpp`` of ``batch`` (float (B, 3, H,
        W) in [0, 1])."""
        terms = rate_distortion(batch, ctx.model(batch), self.lmbda)
        return {"loss": terms.loss, "psnr": terms.psnr, "bpp": terms.bpp}
