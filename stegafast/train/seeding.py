"""Seeds and random-number-generator states.

Three ideas make a run reproducible and resumable bit for bit:

- every stream is seeded from the run's seed mixed with what tells it apart
  (``mix_seed(seed, rank)``, ``mix_seed(seed, epoch, index)``), so nearby seeds
  still give unrelated streams;
- each training sample is produced with the generators seeded from
  (run seed, epoch, sample index) (see ``SeededSamples``), so a dataset's random
  augmentation does not depend on the number of loader workers, on which worker
  drew it, or on where a run was resumed;
- the main process's generator states are saved in checkpoints as tensors and
  plain numbers, which ``torch.load(weights_only=True)`` accepts.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "mix_seed",
    "seed_everything",
    "seed_worker",
    "forked_rng",
    "capture_rng_state",
    "restore_rng_state",
    "SeededSamples",
]

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def mix_seed(*parts: int) -> int:
    """A non-negative 63-bit seed mixed from integers (splitmix64 over the
    parts): ``mix_seed(7, 0)`` and ``mix_seed(7, 1)`` start unrelated streams."""
    h = 0
    for part in parts:
        h = _splitmix64(h ^ _splitmix64(int(part) & _MASK64))
    return h >> 1


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seeds Python's and NumPy's generators in a
    worker from the torch seed the loader gave it (its base seed, drawn from the
    loader's own ``torch.Generator``, plus the worker id), so that workers never
    share a NumPy stream."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def _seed_host(seed: int) -> None:
    # Only the CPU generator: torch.manual_seed would also reseed every CUDA device,
    # which forked_rng does not restore unless asked to.
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.random.default_generator.manual_seed(seed)


@contextlib.contextmanager
def forked_rng(seed: int, cuda_device: torch.device | None = None) -> Iterator[None]:
    """Run the body with Python, NumPy and torch CPU (and ``cuda_device``'s)
    generators seeded from ``seed``, then put all of them back as they were."""
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = [cuda_device] if cuda_device is not None and cuda_device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        try:
            _seed_host(seed)
            for device in devices:
                with torch.cuda.device(device):
                    torch.cuda.manual_seed(seed)
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def capture_rng_state(cuda_device: torch.device | None = None) -> dict[str, Any]:
    """This process's generator states as tensors and plain numbers (loadable with
    ``weights_only=True``): Python, NumPy, torch CPU and, when given, one CUDA device."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if cuda_device is not None and cuda_device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(cuda_device)
    return state


def restore_rng_state(state: dict[str, Any], cuda_device: torch.device | None = None) -> None:
    """Undo ``capture_rng_state``: the generators continue exactly where they were."""
    py = state["python"]
    random.setstate((int(py["version"]), tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        (npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and cuda_device is not None and cuda_device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], cuda_device)


class SeededSamples(Dataset):
    """Wraps a map-style dataset so that item ``(epoch, index)`` is produced with
    the generators seeded from ``(seed, epoch, index)`` (and restored afterwards).

    The engine's samplers yield such pairs. The epoch travels with the key rather
    than living on the dataset because persistent loader workers hold their own
    copy of the dataset, which never sees later epochs.
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        with forked_rng(mix_seed(self.seed, epoch, index)):
            return self.dataset[index]
