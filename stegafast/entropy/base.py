"""What both entropy models share: quantisation, the likelihood bound, and the
integer coding tables with their life cycle.

The tables (``quantized_cdf``, ``cdf_lengths``, ``offsets``) are buffers, so
they travel in checkpoints. Their life cycle:

* a model starts without tables; ``update()`` builds them from the current
  parameters (once; ``update(force=True)`` rebuilds);
* a training forward (or the auxiliary loss) may change the parameters, so it
  marks the tables stale, and ``compress``/``decompress`` then refuse to run
  until ``update()``;
* ``state_dict()`` always carries tables that match the parameters it carries:
  when the model's own are stale it computes fresh ones for the dictionary
  without touching the module (so training under DDP never sees buffers change
  shape), and ``load_state_dict`` takes them as they are. A checkpoint's tables
  are therefore the exact integers every later encoder and decoder use.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import torch
from torch import nn

from ..ops import entropy as coder
from .bounds import check_decoded_symbols, check_stream_capacity, check_symbol_range
from .lower_bound import lower_bound
from .streams import join_streams, split_container

__all__ = ["EntropyModel", "QUANTIZATION_MODES"]

# how training quantises: additive uniform noise (Balle et al.), or rounding
# with the identity gradient (straight-through)
QUANTIZATION_MODES = ("noise", "ste")
_TABLES = ("quantized_cdf", "cdf_lengths", "offsets")


def _empty_int32() -> torch.Tensor:
    return torch.zeros(0, dtype=torch.int32)


class EntropyModel(nn.Module, abc.ABC):
    """Base of ``EntropyBottleneck`` and ``GaussianConditional``.

    likelihood_bound: likelihoods are bounded below by this (so -log2 stays finite)
    quantization:     "noise" or "ste", how the training forward quantises
    """

    quantized_cdf: torch.Tensor
    cdf_lengths: torch.Tensor
    offsets: torch.Tensor

    def __init__(self, *, likelihood_bound: float = 1e-9, quantization: str = "noise"):
        super().__init__()
        if quantization not in QUANTIZATION_MODES:
            raise ValueError(f"quantization must be one of {', '.join(QUANTIZATION_MODES)}, got {quantization!r}")
        if not likelihood_bound > 0:
            raise ValueError(f"likelihood_bound must be positive, got {likelihood_bound!r}")
        self.quantization = quantization
        self.likelihood_bound = float(likelihood_bound)
        for name in _TABLES:
            self.register_buffer(name, _empty_int32())
        self._stale = True
        self.register_state_dict_post_hook(_current_tables_into_state_dict)

    # ---- tables --------------------------------------------------------------------------

    @abc.abstractmethod
    def build_tables(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(quantized_cdf int32 [K, Lmax], cdf_lengths int32 [K], offsets int32 [K]) from
        the current parameters."""

    def update(self, force: bool = False) -> bool:
        """Build the integer CDF tables if there are none or they are stale (or with
        ``force``); True when it built them."""
        if self.has_tables and not self._stale and not force:
            return False
        with torch.no_grad():
            tables = self.build_tables()
        for name, value in zip(_TABLES, tables):
            setattr(self, name, value.to(device=self.quantized_cdf.device, dtype=torch.int32).contiguous())
        self._stale = False
        return True

    @property
    def has_tables(self) -> bool:
        return self.quantized_cdf.numel() > 0

    def mark_stale(self) -> None:
        """Record that the parameters may have changed since the tables were built."""
        self._stale = True

    def check_ready(self, op: str) -> None:
        """Raise a RuntimeError saying what to do when the tables cannot be used."""
        name = type(self).__name__
        if not self.has_tables:
            raise RuntimeError(
                f"{name}.{op}: there are no CDF tables yet; call update() first (after training, "
                "or load a checkpoint, which carries them)"
            )
        if self._stale:
            raise RuntimeError(
                f"{name}.{op}: the parameters may have changed since the CDF tables were built "
                "(a training forward ran); call update() first"
            )

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        # the tables' shapes depend on the parameters: take the checkpoint's as they are
        loaded = 0
        for name in _TABLES:
            value = state_dict.get(prefix + name)
            if isinstance(value, torch.Tensor):
                setattr(self, name, torch.empty_like(value, device=getattr(self, name).device))
                loaded += value.numel() > 0
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        self._stale = loaded == 0

    # ---- quantisation and likelihoods ----------------------------------------------------

    def quantize(self, x: torch.Tensor, training: bool, offset: torch.Tensor | None = None) -> torch.Tensor:
        """Training: ``x`` plus uniform noise in [-0.5, 0.5) ("noise") or rounded around
        ``offset`` with the identity gradient ("ste"); otherwise rounded around ``offset``."""
        if training and self.quantization == "noise":
            return x + torch.empty_like(x).uniform_(-0.5, 0.5)
        offset = torch.zeros((), dtype=x.dtype, device=x.device) if offset is None else offset.detach()
        rounded = torch.round(x - offset) + offset
        return x + (rounded - x).detach() if training else rounded

    def bound_likelihood(self, likelihood: torch.Tensor) -> torch.Tensor:
        """``likelihood`` clamped below at ``likelihood_bound`` (same shape and dtype), so ``-log2`` stays finite."""
        return lower_bound(likelihood, self.likelihood_bound)

    # ---- coding --------------------------------------------------------------------------

    def encode_symbols(self, symbols: torch.Tensor, indexes: torch.Tensor) -> list[bytes]:
        """Row b of int32 (B, n) ``symbols``, coded with the table rows ``indexes[b]``, as
        stream b; the B streams are coded in parallel."""
        check_symbol_range(symbols, f"{type(self).__name__}.compress")
        tables = self._tables_on_cpu()
        counts = torch.full((symbols.shape[0],), symbols[0].numel() if symbols.shape[0] else 0, dtype=torch.int64)
        container, lengths = coder.range_encode_batch(
            symbols.reshape(-1).to("cpu", torch.int32), indexes.reshape(-1).to("cpu", torch.int32), counts, *tables
        )
        return split_container(container, lengths)

    def decode_symbols(self, strings: Sequence[bytes], indexes: torch.Tensor) -> torch.Tensor:
        """int32 (B, n) symbols of B streams from :meth:`encode_symbols`, stream b read with
        the table rows ``indexes[b]`` (B, n); decoded in parallel, on ``indexes``' device.
        A stream that cannot come from :meth:`encode_symbols` (too long for its symbols, or
        decoding beyond the coder's range) is a ``CorruptStreamError``
        (:mod:`stegafast.entropy.bounds`)."""
        op = f"{type(self).__name__}.decompress"
        if len(strings) != indexes.shape[0]:
            raise ValueError(
                f"{type(self).__name__}.decompress: {len(strings)} byte strings for a batch of {indexes.shape[0]}"
            )
        n = indexes[0].numel() if indexes.shape[0] else 0
        check_stream_capacity(strings, [n] * len(strings), op)
        container = join_streams(list(strings), [n] * len(strings))
        symbols = coder.range_decode_batch(
            container, indexes.reshape(-1).to("cpu", torch.int32), *self._tables_on_cpu()
        )
        check_decoded_symbols(symbols, op)
        return symbols.reshape(indexes.shape[0], -1).to(indexes.device)

    def _tables_on_cpu(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # the range coder is a CPU kernel; the tables are small
        return tuple(getattr(self, name).cpu() for name in _TABLES)


def check_symbols_input(op: str, x: torch.Tensor) -> None:
    """Values to code must be finite: NaN or inf has no integer symbol."""
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{op}: the values to code are not all finite")


def _current_tables_into_state_dict(module: EntropyModel, state_dict: dict, prefix: str, local_metadata) -> None:
    if not module._stale and module.has_tables:
        return
    with torch.no_grad():
        tables = module.build_tables()
    for name, value in zip(_TABLES, tables):
        state_dict[prefix + name] = value.to(torch.int32).contiguous()
