"""Data loading for the engine: sharded, reproducible, resumable.

Training batches come from a ``DistributedSampler`` (also with one process, so
one process with batch ``N*B`` sees exactly the samples that N processes with
batch ``B`` see together) that shuffles each epoch with a ``torch.Generator``
seeded from (seed, epoch) and can start part-way through an epoch. Its keys are
``(epoch, index)`` pairs that ``SeededSamples`` turns into seeded items. The
``TrainStream`` walks epochs endlessly and knows its position: the epoch and
how many of its samples all processes together have consumed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from .seeding import SeededSamples, mix_seed, seed_worker

__all__ = [
    "EpochSampler",
    "ShardSampler",
    "TrainStream",
    "make_loader",
    "to_device",
    "map_tensors",
    "batch_size_of",
    "VAL_EPOCH",
]

# The epoch number that validation items are seeded with: the same every time, and
# never a training epoch, so validation sees identical random perturbations throughout.
VAL_EPOCH = -1


class EpochSampler(DistributedSampler):
    """A shuffling DistributedSampler yielding ``(epoch, index)`` keys, able to
    skip the first ``start`` keys of this process's share of the epoch."""

    def __init__(self, dataset: Dataset, *, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        """Shuffle as for ``epoch`` and skip the first ``start`` keys of this process's share (to resume mid-epoch)."""
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in itertools.islice(super().__iter__(), self.start, None):
            yield self.epoch, index

    def __len__(self) -> int:
        return max(self.num_samples - self.start, 0)


class ShardSampler(Sampler):
    """This process's share of a dataset in order, without padding (so pooled
    validation metrics weigh every sample once), as ``(VAL_EPOCH, index)`` keys."""

    def __init__(self, dataset: Dataset, *, num_replicas: int, rank: int):
        self._indices = range(rank, len(dataset), num_replicas)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((VAL_EPOCH, i) for i in self._indices)

    def __len__(self) -> int:
        return len(self._indices)


def make_loader(
    dataset: Dataset,
    sampler: Sampler,
    *,
    seed: int,
    batch_size: int,
    drop_last: bool,
    workers: int,
    pin_memory: bool,
    persistent_workers: bool,
    prefetch_factor: int,
    collate_fn: Callable | None,
) -> DataLoader:
    """A DataLoader over ``SeededSamples(dataset, seed)`` with the engine's settings
    and its own generator (so creating an iterator never draws from the global one)."""
    extra: dict[str, Any] = {}
    if workers > 0:
        extra = dict(worker_init_fn=seed_worker, persistent_workers=persistent_workers, prefetch_factor=prefetch_factor)
    return DataLoader(
        SeededSamples(dataset, seed),
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=workers,
        pin_memory=pin_memory,
        collate_fn=collate_fn,
        generator=torch.Generator(),
        **extra,
    )


class TrainStream:
    """Endless training micro-batches over epochs, resumable at a sample.

    ``position()`` is ``{"epoch": e, "samples": n}``: n samples of epoch e's
    shuffled order (summed over processes) are consumed.
    """

    def __init__(
        self,
        loader: DataLoader,
        sampler: EpochSampler,
        *,
        seed: int,
        rank: int,
        world_size: int,
        epoch: int = 0,
        samples: int = 0,
    ):
        self._loader, self._sampler = loader, sampler
        self._seed, self._rank, self._world = seed, rank, world_size
        self._batch = loader.batch_size * world_size
        self.epoch, self.samples = epoch, samples
        self.consumed = 0  # micro-batches delivered by this stream (throughput)
        self._iterator: Iterator | None = None

    def position(self) -> dict[str, int]:
        """Where the stream is: ``{"epoch": e, "samples": n}``, n samples of epoch e consumed over all processes."""
        return {"epoch": self.epoch, "samples": self.samples}

    def _open_epoch(self) -> None:
        self._sampler.set_position(self.epoch, self.samples // self._world)
        # Worker base seeds come from the loader's generator: derive it from where we are.
        self._loader.generator.manual_seed(mix_seed(self._seed, self._rank, self.epoch, self.samples))
        self._iterator = iter(self._loader)

    def __iter__(self) -> TrainStream:
        return self

    def __next__(self) -> Any:
        if self._iterator is None:
            self._open_epoch()
        try:
            batch = next(self._iterator)
        except StopIteration:
            self.epoch, self.samples = self.epoch + 1, 0
            self._open_epoch()
            batch = next(self._iterator)
        self.samples += self._batch
        self.consumed += 1
        return batch

    def close(self) -> None:
        """Stop the loader's worker processes (they end when the last reference to
        the loader and its iterator goes); the stream is unusable afterwards."""
        self._iterator = None
        self._loader = None


def map_tensors(batch: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``batch`` with ``fn`` applied to every tensor inside its tuples, lists, NamedTuples and dicts."""
    if isinstance(batch, torch.Tensor):
        return fn(batch)
    if isinstance(batch, Mapping):
        return type(batch)({k: map_tensors(v, fn) for k, v in batch.items()})
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a NamedTuple
        return type(batch)(*(map_tensors(v, fn) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(map_tensors(v, fn) for v in batch)
    return batch


def to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """``batch`` with every tensor inside tuples, lists and dicts moved to ``device``."""
    return map_tensors(batch, lambda t: t.to(device, non_blocking=non_blocking))


def batch_size_of(batch: Any) -> int:
    """The leading dimension of the first tensor found in ``batch``."""
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.dim() else 1
    values = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (list, tuple)) else ()
    for value in values:
        size = batch_size_of(value)
        if size:
            return size
    return 0
