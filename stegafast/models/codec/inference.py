"""Using a trained codec: load it (``load_codec``) and code images of any size to
.sfc bytes and back (``ImageCodec``).

The image is padded on the bottom and right to the model's multiple (64) by
replicating its edge pixels, coded, and cropped back to its size on decoding.
Every file carries the writing model's identifier; another model refuses it.
"""

from __future__ import annotations

import hashlib
import json
import os

import torch
import torch.nn.functional as F

from ...errors import CorruptStreamError
from ...train import load_trained
from ...train.footprint import ImageFootprint
from .architectures import DEFAULT_ARCHITECTURE
from .base import LearnedCodec
from .fileformat import MAX_SIDE, MODEL_ID_BYTES, SfcFile, read_sfc, write_sfc
from .task import TASK_NAME, CodecTask

__all__ = ["ImageCodec", "load_codec", "model_identifier", "pad_to_multiple"]


def model_identifier(model: LearnedCodec) -> bytes:
    """16 bytes of SHA-256 over the task name, the architecture and every tensor of the
    state dict (weights and CDF tables): two models share an id only when they
    decode identically."""
    digest = hashlib.sha256()
    described = {"task": TASK_NAME, "model": model.config.to_dict()}
    if model.architecture != DEFAULT_ARCHITECTURE:  # hyperprior ids stay what they were
        described["architecture"] = model.architecture
    digest.update(json.dumps(described, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(json.dumps(list(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.digest()[:MODEL_ID_BYTES]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """(B, C, H, W) padded on the bottom and right, edge pixels replicated, to sides
    that are multiples of ``multiple``."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % multiple, 0, -h % multiple), mode="replicate")


def _as_batch(image: torch.Tensor) -> torch.Tensor:
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[:2] != (1, 3) or not image.is_floating_point():
        raise ValueError(
            f"expected one float RGB image (3, H, W) or (1, 3, H, W), got {tuple(image.shape)} {image.dtype}"
        )
    h, w = image.shape[-2:]
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise ValueError(f"image of {h}x{w}: sides must be in 1..{MAX_SIDE}")
    return image


class ImageCodec:
    """Compresses single images into .sfc bytes and back with one model.

    The model must have its CDF tables (``model.update()``, or loaded from a
    checkpoint, which carries them); it is put in eval mode. Its identifier is
    computed once here, so the model must not change afterwards. An image whose
    coding would take more memory than ``stegafast.data.limits.memory_budget()``
    is refused (ImageTooLargeError with the estimate) before it is coded.
    """

    def __init__(self, model: LearnedCodec):
        model.eval()
        model.check_ready("compress")
        self.model = model
        self.model_id = model_identifier(model)
        self.device = next(model.parameters()).device
        # memory: estimated from a coding round trip (stegafast.train.footprint), refused above the budget
        self.footprint = ImageFootprint(self._round_trip_at, side=2 * model.multiple)

    def _round_trip_at(self, height: int, width: int) -> None:
        x = torch.rand(1, 3, height, width, device=self.device)
        self.model.decompress(self.model.compress(x))

    def compress(self, image: torch.Tensor) -> bytes:
        """The .sfc bytes of a float RGB image in [0, 1], (3, H, W) or (1, 3, H, W)."""
        image = _as_batch(image)
        h, w = image.shape[-2:]
        self.footprint.check(int(h), int(w), "the image")
        x = pad_to_multiple(image.to(self.device).clamp(0, 1), self.model.multiple)
        return write_sfc(SfcFile(self.model_id, int(h), int(w), self.model.encode_image(x)))

    def decompress(self, data: bytes, name: str = "the file") -> torch.Tensor:
        """The (3, H, W) float image in [0, 1] of .sfc bytes; raises ``CodecFileError``
        for a truncated, corrupt or foreign file and ``CorruptStreamError`` for an intact
        one whose streams decode to what no encoder writes (``name`` goes into the message)."""
        file = read_sfc(data, self.model_id, name=name)
        self.footprint.check(file.height, file.width, f"the image {name} holds")
        padded = (file.height + (-file.height % self.model.multiple), file.width + (-file.width % self.model.multiple))
        try:
            x_hat = self.model.decode_image(file.streams, padded, name)
        except CorruptStreamError as exc:
            raise CorruptStreamError(f"{name}: {exc}") from None
        return x_hat[0, :, : file.height, : file.width]


def load_codec(path: str | os.PathLike, device: torch.device | str = "cpu") -> ImageCodec:
    """The trained codec of a checkpoint file or run folder (its best checkpoint by
    validation loss, else its latest), ready to code on ``device``. The checkpoint
    carries the architecture and the CDF tables. Failures are CheckpointError /
    RunDirError."""
    model = load_trained(CodecTask, path, device).model
    model.update()  # a no-op: every checkpoint carries its tables; only an older file would lack them
    return ImageCodec(model)
