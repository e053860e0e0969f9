"""The one device resolver: what ``--device`` means, for commands and the training engine.

``auto`` is CUDA when a GPU is visible, else the CPU; ``cpu``, ``cuda`` and
``cuda:N`` name a device. A CUDA device always comes back with its index.
Under torchrun (``local_rank`` given) each process takes the GPU of its
LOCAL_RANK, so naming one GPU there is an error.
"""

from __future__ import annotations

import torch

from .errors import DeviceError

__all__ = ["DEVICE_CHOICES", "device_type_of", "resolve_device"]

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def device_type_of(spec: str) -> str:
    """ "cpu" or "cuda" for a device name, without touching any GPU (it picks a
    process-group backend before the device exists); a DeviceError for other names."""
    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device_type = torch.device(spec).type
    except (RuntimeError, TypeError):
        device_type = None
    if device_type not in ("cpu", "cuda"):
        raise DeviceError(f"unsupported device {spec!r}; use {DEVICE_CHOICES}")
    return device_type


def resolve_device(spec: str, local_rank: int | None = None) -> torch.device:
    """The ``torch.device`` of a device name (see the module docstring).

    local_rank: this process's LOCAL_RANK when it is one of several under
                torchrun, None for a single process.
    Raises DeviceError for an unknown name, a CUDA device without a visible
    GPU, a GPU index that does not exist, or one GPU named under torchrun.
    """
    if device_type_of(spec) == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {spec!r} asked for, but no CUDA GPU is visible")
    device = torch.device("cuda" if spec == "auto" else spec)
    if local_rank is not None:
        if device.index is not None:
            raise DeviceError(
                f"--device {spec} names one GPU, but under torchrun each process uses the GPU "
                "of its LOCAL_RANK; pass --device cuda"
            )
        device = torch.device("cuda", local_rank)
    elif device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if device.index >= torch.cuda.device_count():
        raise DeviceError(f"device {device} does not exist ({torch.cuda.device_count()} GPU(s) visible)")
    return device
