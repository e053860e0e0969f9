"""The StegaStamp training task for the shared engine (``stegafast.train``).

Models: "encoder" and "decoder" (optimiser "generator", Adam) and, unless the
GAN is off, "critic" (optimiser "critic", RMSprop whose step clips the
critic's gradients elementwise to +-``critic_grad_clip`` first and its
weights to +-``critic_clip`` after, the original's WGAN). With ``lpips`` the
generator's loss adds LPIPS (``perceptual.load_lpips``: the ``lpips`` package
with weights already on disk, frozen, not part of the checkpoints). Each training
step runs ``critic_updates`` critic updates then one generator update (only
the generator while the secret loss trains alone). Secrets are random bits
drawn per image from the engine's seeded generator.

Validation encodes each image, quantises it to 8 bits (what a user saves) and
reports ``bit_acc`` (clean), ``bit_acc_noised`` (through the noise pipeline
at full strength, with the engine's fixed validation seed, so values from
different steps compare) and ``psnr``; checkpoints are ranked by
``bit_acc_noised``.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.data import Dataset

from ...data import training_images, validation_images
from ...metrics import PSNR_CAP_DB, psnr, quantize_uint8
from ...train import OptimizerSpec, Phase, Task, TrainConfig
from .config import StampLossConfig, StampModelConfig, StampNoiseConfig
from .losses import bit_accuracy, critic_loss, generator_critic_loss, loss_weights, secret_loss, yuv_l2_loss
from .model import StampCritic, StampDecoder, StampEncoder
from .noise import NoisePipeline, full_strength, strengths_at
from .perceptual import load_lpips

__all__ = ["StampTask", "TASK_NAME", "WeightClippedRMSprop", "random_bits"]

TASK_NAME = "stamp"


def random_bits(n: int, bits: int, device) -> torch.Tensor:
    """(n, bits) uniformly random 0/1 secrets, float32."""
    return torch.randint(0, 2, (n, bits), device=device).float()


class WeightClippedRMSprop(torch.optim.RMSprop):
    """RMSprop whose every step clips the gradients elementwise to +-``grad_clip``
    first (0: no clipping; the original's 0.25) and the parameters to +-``clip``
    after (the original WGAN's Lipschitz constraint on the critic)."""

    def __init__(self, params, lr: float, clip: float, grad_clip: float = 0.0):
        super().__init__(params, lr=lr)
        self.clip = float(clip)
        self.grad_clip = float(grad_clip)

    @torch.no_grad()
    def step(self, closure=None):
        """Clamp the gradients to [-grad_clip, grad_clip], one RMSprop step, then clamp every parameter to [-clip,
        clip]; returns the closure's loss (or None)."""
        params = [p for group in self.param_groups for p in group["params"]]
        if self.grad_clip > 0:
            for p in params:
                if p.grad is not None:
                    p.grad.clamp_(-self.grad_clip, self.grad_clip)
        loss = super().step(closure)
        for p in params:
            p.clamp_(-self.clip, self.clip)
        return loss


class StampTask(Task):
    """Trains the StegaStamp encoder and decoder (and critic) on square crops.

    data:        a folder of images, or None for the bundled photographs (train
                 split; the validation split validates)
    val_data:    a folder of validation images (centre crops); None: none with
                 ``data``, the bundled validation split without it
    The crops' side is the model config's ``image_size``.
    """

    name = TASK_NAME
    monitor = "bit_acc_noised"
    monitor_mode = "max"

    def __init__(
        self,
        model_config: StampModelConfig | None = None,
        loss_config: StampLossConfig | None = None,
        noise_config: StampNoiseConfig | None = None,
        *,
        data: str | os.PathLike | None = None,
        val_data: str | os.PathLike | None = None,
        epoch_length: int = 1000,
    ):
        self.model_config = model_config or StampModelConfig()
        self.loss_config = loss_config or StampLossConfig()
        self.noise_config = noise_config or StampNoiseConfig()
        self.data, self.val_data, self.epoch_length = data, val_data, epoch_length
        self.noise = NoisePipeline(self.noise_config)
        # built now, so that missing weights are a UserError before any training
        self.lpips = load_lpips() if self.loss_config.lpips else None

    @property
    def image_size(self) -> int:
        return self.model_config.image_size

    def identity(self) -> dict[str, Any]:
        """What a checkpoint must match: the engine's identity plus the architecture config and whether a critic is
        trained."""
        return {**super().identity(), "model": self.model_config.to_dict(), "gan": self.loss_config.gan}

    @classmethod
    def from_identity(cls, identity: dict[str, Any]) -> StampTask:
        """The task of a checkpoint: its architecture and whether it had a critic, no data."""
        return cls(StampModelConfig.from_dict(identity["model"]), StampLossConfig(gan=identity["gan"]))

    def build_models(self) -> dict[str, torch.nn.Module]:
        """``encoder`` and ``decoder``, plus ``critic`` (its weights clipped from the start) when training with the
        GAN loss."""
        models = {"encoder": StampEncoder(self.model_config), "decoder": StampDecoder(self.model_config)}
        if self.loss_config.gan:
            critic = StampCritic(self.model_config)
            with torch.no_grad():  # the clipping holds from the first update, as after every one
                for p in critic.parameters():
                    p.clamp_(-self.loss_config.critic_clip, self.loss_config.critic_clip)
            models["critic"] = critic
        return models

    def build_optimizers(self, models, config: TrainConfig) -> dict[str, OptimizerSpec | torch.optim.Optimizer]:
        """Adam for ``generator`` (encoder and decoder, lr ``config.lr`` or the seed's), and with the GAN ``critic``.

        The critic's optimiser is a ``WeightClippedRMSprop`` at ``critic_lr`` (elementwise gradient clipping, no
        gradient-norm clipping).
        """
        c = self.loss_config
        params = [*models["encoder"].parameters(), *models["decoder"].parameters()]
        optimizers: dict[str, Any] = {"generator": torch.optim.Adam(params, lr=config.lr or c.lr)}
        if c.gan:
            # its own rate and no clipping of gradients: the weights are clipped instead
            critic = WeightClippedRMSprop(
                models["critic"].parameters(), lr=c.critic_lr, clip=c.critic_clip, grad_clip=c.critic_grad_clip
            )
            optimizers["critic"] = OptimizerSpec(critic, clip_norm=0.0)
        return optimizers

    def train_dataset(self) -> Dataset:
        """Random ``image_size`` crops of the images under ``data``; without it, of the bundled training photos.

        ``epoch_length`` crops make an epoch of the bundled photos; a folder's epoch is one crop per image.
        """
        return training_images(self.data, self.image_size, self.epoch_length)

    def val_dataset(self) -> Dataset | None:
        """Two fixed crops per bundled validation photo (or centre crops of ``val_data``); None when training on own
        data only."""
        return validation_images(self.val_data, self.data, self.image_size, eval_crops=2)

    def phases(self, step: int, total_steps: int) -> list[Phase]:
        """The phases of ``step``: ``critic_updates`` critic updates then the generator once the GAN is on, else the
        generator."""
        c = self.loss_config
        if c.gan and step >= c.no_image_loss_steps:
            return [Phase("critic", c.critic_updates), Phase("generator")]
        return [Phase("generator")]

    def training_step(self, batch, ctx) -> dict[str, torch.Tensor | float]:
        """One phase on ``batch`` (float (B, 3, S, S) in [0, 1]) with fresh random secrets.

        The critic phase back-propagates the WGAN critic loss (returns ``critic_loss``); the generator phase the
        weighted image, secret and (once on) adversarial losses, returning the detached losses, ``bit_acc``, ``psnr``
        (dB) and the ramped weights.
        """
        image = batch
        bits = random_bits(image.shape[0], self.model_config.secret_bits, image.device)
        if ctx.phase == "critic":
            return self._critic_step(image, bits, ctx)
        return self._generator_step(image, bits, ctx)

    def _critic_step(self, image: torch.Tensor, bits: torch.Tensor, ctx) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            encoded = image + ctx.models["encoder"](bits, image)
        loss = critic_loss(ctx.models["critic"](image), ctx.models["critic"](encoded))
        ctx.backward(loss, "critic")
        return {"critic_loss": loss.detach()}

    def _generator_step(self, image: torch.Tensor, bits: torch.Tensor, ctx) -> dict[str, torch.Tensor | float]:
        weights = loss_weights(ctx.step, self.loss_config)
        encoded = image + ctx.models["encoder"](bits, image)
        # the decoder sees a valid image, as the original's clamp after its noise step gives it
        seen = self.noise(encoded.clamp(0, 1), strengths_at(ctx.step, self.noise_config))
        logits = ctx.models["decoder"](seen)
        with ctx.autocast(enabled=False):
            l2 = ctx.compiled(yuv_l2_loss)(encoded, image, self.loss_config.yuv_scales, weights.edge_gain)
            secret = secret_loss(logits, bits)
            total = weights.l2 * l2 + weights.secret * secret
            metrics: dict[str, torch.Tensor | float] = {}
            if weights.lpips > 0:
                perceptual = self._lpips(encoded, image)
                total = total + weights.lpips * perceptual
                metrics["lpips"] = perceptual.detach()
            if weights.critic > 0:
                g = generator_critic_loss(ctx.models["critic"](encoded))
                total = total + weights.critic * g
                metrics["g_loss"] = g.detach()
        ctx.backward(total, "generator")
        quality = psnr(encoded.detach().clamp(0, 1).float(), image.float(), cap=PSNR_CAP_DB)
        return {
            "loss": total.detach(),
            "l2": l2.detach(),
            "secret_loss": secret.detach(),
            "bit_acc": bit_accuracy(logits, bits),
            "psnr": quality,
            **metrics,
            "w_l2": weights.l2,
            "w_secret": weights.secret,
            "w_critic": weights.critic,
            "w_lpips": weights.lpips,
            "edge_gain": weights.edge_gain,
        }

    def _lpips(self, encoded: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        self.lpips.to(encoded.device)
        return self.lpips(encoded.float(), image.float()).mean()

    def validation_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        """``bit_acc``, ``bit_acc_noised`` (the monitor, higher is better), ``psnr`` (dB, capped) and ``secret_loss``.

        Encodes random secrets into ``batch`` (float (B, 3, S, S) in [0, 1]), rounds to 8-bit pixels, then decodes the
        clean image and the image after every distortion at full strength.
        """
        image = batch
        bits = random_bits(image.shape[0], self.model_config.secret_bits, image.device)
        encoded = quantize_uint8((image + ctx.models["encoder"](bits, image)).clamp(0, 1)).float() / 255
        encoded = encoded.to(image.dtype)
        clean = ctx.models["decoder"](encoded)
        noised = ctx.models["decoder"](self.noise(encoded, full_strength(self.noise_config)))
        return {
            "bit_acc": bit_accuracy(clean, bits),
            "bit_acc_noised": bit_accuracy(noised, bits),
            "psnr": psnr(encoded.float(), image.float(), cap=PSNR_CAP_DB),
            "secret_loss": secret_loss(clean, bits),
        }
