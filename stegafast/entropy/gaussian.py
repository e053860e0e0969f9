"""``GaussianConditional``: latents coded with a Gaussian whose scale (and mean)
a hyperprior predicts per element (Balle et al. 2018; Minnen et al. 2018).

A quantised value ``y`` with mean ``mu`` and scale ``sigma`` has likelihood
``Phi((|y - mu| + 1/2) / sigma) - Phi((|y - mu| - 1/2) / sigma)`` (computed on
the lower tail, where it does not cancel). For coding, scales are snapped up to
a fixed table (default: 64 scales log-spaced from 0.11 to 256, as in
CompressAI), one integer CDF per table entry, and ``y - mu`` is rounded: the
symbol. ``build_indexes(scales)`` picks each element's CDF row: the smallest
table scale at least as large (the top entry for anything larger).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .base import EntropyModel, check_symbols_input
from .bounds import check_finite_decoded
from .cdf import quantize_pmf
from .lower_bound import lower_bound

__all__ = ["GaussianConditional", "default_scale_table", "SCALES_MIN", "SCALES_MAX", "SCALES_LEVELS"]

SCALES_MIN, SCALES_MAX, SCALES_LEVELS = 0.11, 256.0, 64


def default_scale_table(
    minimum: float = SCALES_MIN, maximum: float = SCALES_MAX, levels: int = SCALES_LEVELS
) -> torch.Tensor:
    """``levels`` scales log-spaced from ``minimum`` to ``maximum`` (float64, on the CPU)."""
    # on the CPU even under a default-device context: the model checks the values (a
    # meta-device build, which only counts parameters, holds none)
    return torch.exp(torch.linspace(math.log(minimum), math.log(maximum), levels, dtype=torch.float64, device="cpu"))


def _standard_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x * (2**-0.5))


class GaussianConditional(EntropyModel):
    """Conditional Gaussian entropy model.

    scale_table:  increasing positive scales, one CDF row each (default ``default_scale_table()``)
    scale_bound:  scales are bounded below by this in likelihoods (default: the table's first)
    tail_mass:    mass outside each row's regular symbols (its escape bin)
    likelihood_bound, quantization: see ``EntropyModel``

    ``forward(y, scales, means=None)`` returns ``(y_hat, likelihoods)``;
    ``compress(y, indexes, means)`` / ``decompress(strings, indexes, means)`` code real
    streams (after ``update()``), with ``indexes = build_indexes(scales)``.
    """

    scale_table: torch.Tensor

    def __init__(
        self,
        scale_table: Sequence[float] | torch.Tensor | None = None,
        *,
        scale_bound: float | None = None,
        tail_mass: float = 1e-9,
        likelihood_bound: float = 1e-9,
        quantization: str = "noise",
    ):
        super().__init__(likelihood_bound=likelihood_bound, quantization=quantization)
        table = (
            default_scale_table()
            if scale_table is None
            else torch.as_tensor(scale_table, dtype=torch.float64, device="cpu")
        )
        if (
            table.ndim != 1
            or table.numel() < 1
            or not bool((table > 0).all())
            or not bool((table[1:] > table[:-1]).all())
        ):
            raise ValueError("scale_table must be a non-empty, strictly increasing sequence of positive scales")
        if not 0 < tail_mass < 1:
            raise ValueError(f"tail_mass must be in (0, 1), got {tail_mass!r}")
        self.tail_mass = float(tail_mass)
        self.scale_bound = float(table[0]) if scale_bound is None else float(scale_bound)
        if not self.scale_bound > 0:
            raise ValueError(f"scale_bound must be positive, got {scale_bound!r}")
        self.register_buffer("scale_table", table.float())

    # ---- likelihoods -------------------------------------------------------------------------

    def likelihood(self, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None = None) -> torch.Tensor:
        """The probability of the unit bin around each (quantised) value, unbounded."""
        values = torch.abs(y - means if means is not None else y)
        scales = lower_bound(scales, self.scale_bound)
        upper = _standard_cdf((0.5 - values) / scales)
        lower = _standard_cdf((-0.5 - values) / scales)
        return upper - lower

    def forward(
        self, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None = None, training: bool | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y_hat, likelihoods)`` shaped like y: in training y quantised as
        ``quantization`` says, otherwise rounded around the means."""
        self._check_shapes("forward", y, scales, means)
        training = self.training if training is None else training
        y_hat = self.quantize(y, training, means)
        return y_hat, self.bound_likelihood(self.likelihood(y_hat, scales, means))

    # ---- tables and coding -------------------------------------------------------------------

    def build_tables(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The integer coding tables of a zero-mean Gaussian for each entry of ``scale_table``.

        Returns ``(cdfs, cdf_lengths, offsets)``: int32 (S, L + 2) CDFs in units of 1/65536 with an escape bin (each
        covering all but ``tail_mass`` of the mass), int32 (S,) their lengths and int32 (S,) offsets: minus the number
        of bins below zero.
        """
        scales = self.scale_table.double()
        multiplier = -float(torch.special.ndtri(torch.tensor(self.tail_mass / 2, dtype=torch.float64)))
        centres = torch.ceil(scales * multiplier).long()
        lengths = 2 * centres + 1
        distance = torch.abs(torch.arange(int(lengths.max()), device=scales.device)[None, :] - centres[:, None])
        upper = _standard_cdf((0.5 - distance) / scales[:, None])
        lower = _standard_cdf((-0.5 - distance) / scales[:, None])
        tail = 2 * _standard_cdf((-0.5 - centres.double()) / scales)
        cdfs, cdf_lengths = quantize_pmf(upper - lower, tail, lengths)
        return cdfs, cdf_lengths, (-centres).to(torch.int32)

    def build_indexes(self, scales: torch.Tensor) -> torch.Tensor:
        """int32 CDF row per element: the first table scale >= the (bounded) scale."""
        scales = torch.clamp(scales.detach(), min=self.scale_bound)
        table = self.scale_table.to(scales.device, scales.dtype)
        return torch.bucketize(scales, table[:-1]).to(torch.int32)

    def _check_shapes(self, op: str, y: torch.Tensor, other: torch.Tensor, means: torch.Tensor | None) -> None:
        for name, t in (("scales/indexes", other), ("means", means)):
            if t is not None and t.shape != y.shape:
                raise ValueError(
                    f"GaussianConditional.{op}: {name} must have the latents' shape "
                    f"{tuple(y.shape)}, got {tuple(t.shape)}"
                )
        if y.ndim < 1:
            raise ValueError(f"GaussianConditional.{op}: expected a batch (B, ...), got a scalar")

    def _check_indexes(self, op: str, indexes: torch.Tensor) -> None:
        if indexes.dtype != torch.int32:
            raise ValueError(
                f"GaussianConditional.{op}: indexes must be int32 (from build_indexes), got {indexes.dtype}"
            )

    def compress(self, y: torch.Tensor, indexes: torch.Tensor, means: torch.Tensor | None = None) -> list[bytes]:
        """One byte string per batch item: ``round(y - means)`` coded with the CDF rows
        ``indexes`` (from ``build_indexes``), the batch in parallel."""
        self.check_ready("compress")
        self._check_shapes("compress", y, indexes, means)
        self._check_indexes("compress", indexes)
        check_symbols_input("GaussianConditional.compress", y)
        centred = y.detach() - means.detach() if means is not None else y.detach()
        symbols = torch.round(centred).to(torch.int32)
        return self.encode_symbols(symbols.reshape(y.shape[0], -1), indexes.reshape(y.shape[0], -1))

    def decompress(
        self, strings: list[bytes], indexes: torch.Tensor, means: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The values :meth:`compress` coded, as float shaped like ``indexes``: the
        symbols plus ``means``."""
        self.check_ready("decompress")
        self._check_indexes("decompress", indexes)
        if means is not None and means.shape != indexes.shape:
            raise ValueError(
                f"GaussianConditional.decompress: means must have the indexes' shape "
                f"{tuple(indexes.shape)}, got {tuple(means.shape)}"
            )
        if means is not None:
            # computed from decoded hyper-latents: a corrupt stream can make them inf
            check_finite_decoded("GaussianConditional.decompress: the means", means)
        symbols = self.decode_symbols(strings, indexes.reshape(indexes.shape[0], -1)).reshape(indexes.shape)
        values = symbols.to(means.dtype if means is not None else torch.float32)
        return values + means if means is not None else values
