"""LPIPS for the StegaStamp image loss (``StampLossConfig.lpips``, ``stegafast stamp train --lpips``).

The original adds LPIPS (AlexNet features, Zhang et al. 2018) to the encoder's
loss. Here it is optional and never downloads anything: ``load_lpips()``
builds the ``lpips`` package's model only when the package is importable and
both of its weight files are already on disk --

* the linear calibration layers, shipped inside the package
  (``lpips/weights/v0.1/alex.pth``);
* torchvision's ImageNet AlexNet, where ``torch.hub`` caches it
  (``<torch.hub.get_dir()>/checkpoints/alexnet-owt-7be5be79.pth``; set
  ``TORCH_HOME`` to point elsewhere).

The backbone is built without its pretrained weights (``pnet_rand=True``, so
torchvision does not fetch them) and then loaded from that file with
``weights_only=True``. Anything missing is a ``UserError`` saying which file.
The model is frozen and in eval mode; it is not one of the trained models, so
checkpoints do not carry it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from ...errors import UserError

__all__ = ["LPIPSDistance", "load_lpips", "alexnet_weights_path", "linear_weights_path", "ALEXNET_FILE"]

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's AlexNet weights, the name torch.hub caches them under


def alexnet_weights_path() -> Path:
    """Where torch.hub keeps torchvision's AlexNet weights (``TORCH_HOME`` moves it)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


def linear_weights_path(package) -> Path:
    """The ``lpips`` package's own AlexNet calibration weights (version 0.1)."""
    return Path(package.__file__).parent / "weights" / "v0.1" / "alex.pth"


class LPIPSDistance(nn.Module):
    """``forward(a, b)`` -> (B,) LPIPS distances of two (B, 3, H, W) batches in [0, 1]."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> LPIPSDistance:
        """Stays in eval mode whatever ``mode``: the distance is a fixed measure (dropout and the like off)."""
        return super().train(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The distances, differentiable with respect to both batches."""
        return self.model(a, b, normalize=True).reshape(a.shape[0])  # normalize: inputs in [0, 1]


def _import_lpips():
    try:
        return importlib.import_module("lpips")
    except ImportError:
        raise UserError("--lpips needs the lpips package (pip install lpips) and its weights on disk") from None


def _load_backbone(net: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Load torchvision AlexNet weights (``features.<i>.*``) into lpips's backbone, whose slices
    ``slice<k>`` hold the same layers under their feature index ``<i>``."""
    mapped = {}
    for slice_name, block in net.named_children():
        for index, layer in block.named_children():
            for param in layer.state_dict():
                key = f"features.{index}.{param}"
                if key not in state:
                    raise UserError(f"--lpips: {source} is not torchvision's AlexNet weights (no {key})")
                mapped[f"{slice_name}.{index}.{param}"] = state[key]
    net.load_state_dict(mapped)


def load_lpips() -> LPIPSDistance:
    """The frozen LPIPS (AlexNet) distance, from weights on disk only; a UserError naming what is missing."""
    lpips = _import_lpips()
    for path in (linear_weights_path(lpips), alexnet_weights_path()):
        if not path.is_file():
            raise UserError(f"--lpips: LPIPS weights not found at {path} (nothing is downloaded; put the file there)")
    model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    source = alexnet_weights_path()
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged or foreign file: say which
        raise UserError(f"--lpips: cannot read {source}: {exc}") from None
    _load_backbone(model.net, state, source)
    return LPIPSDistance(model)
