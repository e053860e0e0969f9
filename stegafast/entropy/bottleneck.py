"""``EntropyBottleneck``: the factorised prior of Balle et al. (2018), "Variational
image compression with a scale hyperprior", appendix 6.1.

Each channel has its own cumulative density ``c(x)``, a small monotone network
from a scalar to a logit: layers ``x <- softplus(H) x + b``, each but the last
followed by ``x <- x + tanh(a) * tanh(x)`` (``H``: ``matrices``, ``b``:
``biases``, ``a``: ``factors``; softplus and tanh(a) > -1 keep it monotone). A
quantised value's likelihood is ``sigmoid(c(x + 1/2)) - sigmoid(c(x - 1/2))``.

For coding, each channel's values are rounded around its median and coded as
integers in the range its ``quantiles`` (tail_mass / 2, median, 1 - tail_mass
/ 2, learned by the auxiliary ``loss()``) span; anything beyond is an escape.
The quantiles take no gradient from the rate: only the auxiliary loss moves
them, so they belong in their own optimiser (``quantile_parameters()``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config import check_positive_int
from .base import EntropyModel, check_symbols_input
from .cdf import quantize_pmf

__all__ = ["EntropyBottleneck"]


class EntropyBottleneck(EntropyModel):
    """Factorised entropy model for ``channels`` channels of (B, C, ...) tensors.

    filters:     hidden widths of the per-channel density network (default 3, 3, 3, 3)
    init_scale:  initial spread of the density (and the quantiles at +-init_scale)
    tail_mass:   probability mass outside the coded range, split between both tails
    likelihood_bound, quantization: see ``EntropyModel``

    ``forward(x)`` returns ``(x_hat, likelihoods)``: in training ``x`` quantised as
    ``quantization`` says, otherwise rounded around the medians; ``loss()`` is
    the auxiliary quantile loss; ``compress``/``decompress`` code real streams
    (after ``update()``).
    """

    def __init__(
        self,
        channels: int,
        *,
        filters: Sequence[int] = (3, 3, 3, 3),
        init_scale: float = 10.0,
        tail_mass: float = 1e-9,
        likelihood_bound: float = 1e-9,
        quantization: str = "noise",
    ):
        super().__init__(likelihood_bound=likelihood_bound, quantization=quantization)
        check_positive_int("channels", channels)
        if not 0 < tail_mass < 1:
            raise ValueError(f"tail_mass must be in (0, 1), got {tail_mass!r}")
        self.channels, self.filters = channels, tuple(int(f) for f in filters)
        self.init_scale, self.tail_mass = float(init_scale), float(tail_mass)
        widths = (1, *self.filters, 1)
        scale = self.init_scale ** (1 / (len(widths) - 1))
        self.matrices, self.biases, self.factors = nn.ParameterList(), nn.ParameterList(), nn.ParameterList()
        for i in range(len(widths) - 1):
            # softplus(init) = 1 / (scale * fan_out): the initial density spans about +-init_scale
            init = math.log(math.expm1(1 / scale / widths[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, widths[i + 1], widths[i]), init)))
            self.biases.append(nn.Parameter(torch.empty(channels, widths[i + 1], 1).uniform_(-0.5, 0.5)))
            if i < len(widths) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, widths[i + 1], 1)))
        self.quantiles = nn.Parameter(torch.tensor([-self.init_scale, 0.0, self.init_scale]).repeat(channels, 1, 1))
        target = math.log(2 / self.tail_mass - 1)
        self.register_buffer("target", torch.tensor([-target, 0.0, target]))

    def quantile_parameters(self) -> list[nn.Parameter]:
        """The parameters only the auxiliary loss trains."""
        return [self.quantiles]

    @property
    def medians(self) -> torch.Tensor:
        """(C,) the median of each channel's density (the rounding offsets)."""
        return self.quantiles[:, 0, 1].detach()

    # ---- the density -----------------------------------------------------------------------

    def _logits_cumulative(self, x: torch.Tensor, stop_gradient: bool) -> torch.Tensor:
        """c(x) for x of shape (C, 1, n)."""
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases)):
            if stop_gradient:
                matrix, bias = matrix.detach(), bias.detach()
            x = torch.matmul(F.softplus(matrix), x) + bias
            if i < len(self.factors):
                factor = self.factors[i].detach() if stop_gradient else self.factors[i]
                x = x + torch.tanh(factor) * torch.tanh(x)
        return x

    def _likelihood(self, x: torch.Tensor, stop_gradient: bool = False):
        """(likelihood, lower logit, upper logit) of the unit bins centred on x (C, 1, n)."""
        lower = self._logits_cumulative(x - 0.5, stop_gradient)
        upper = self._logits_cumulative(x + 0.5, stop_gradient)
        # subtract in the tail where both sigmoids are far from 1: no cancellation
        sign = -torch.sign(lower + upper).detach()
        likelihood = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        return likelihood, lower, upper

    def loss(self) -> torch.Tensor:
        """The auxiliary loss: drives ``quantiles`` to the tail_mass / 2, 0.5 and
        1 - tail_mass / 2 quantiles of the current density (gradient to the quantiles only)."""
        if self.training:
            self.mark_stale()
        logits = self._logits_cumulative(self.quantiles, stop_gradient=True)
        return torch.abs(logits - self.target).sum()

    # ---- forward -----------------------------------------------------------------------------

    def _check_input(self, op: str, x: torch.Tensor) -> None:
        if x.ndim < 2 or x.shape[1] != self.channels:
            raise ValueError(
                f"EntropyBottleneck.{op}: expected (B, {self.channels}, ...) input, got shape {tuple(x.shape)}"
            )

    def _channels_first(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(0, 1).reshape(self.channels, 1, -1)

    def forward(self, x: torch.Tensor, training: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_hat, likelihoods)``, both shaped like x (B, C, ...)."""
        self._check_input("forward", x)
        training = self.training if training is None else training
        if training:
            self.mark_stale()
        values = self._channels_first(x)
        x_hat = self.quantize(values, training, self.medians[:, None, None])
        likelihood, _, _ = self._likelihood(x_hat)
        likelihood = self.bound_likelihood(likelihood)

        def back(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(self.channels, x.shape[0], *x.shape[2:]).transpose(0, 1)

        return back(x_hat), back(likelihood)

    # ---- tables and coding -----------------------------------------------------------------

    def build_tables(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The integer coding tables of each channel's learned density, from its quantiles.

        Returns ``(cdfs, cdf_lengths, offsets)``: int32 (C, L + 2) CDFs in units of 1/65536 with an escape bin, int32
        (C,) their lengths, and int32 (C,) offsets: minus the number of bins below each channel's median.
        """
        medians = self.quantiles[:, 0, 1]
        minima = torch.ceil(medians - self.quantiles[:, 0, 0]).clamp(min=0).long()
        maxima = torch.ceil(self.quantiles[:, 0, 2] - medians).clamp(min=0).long()
        lengths = minima + maxima + 1
        samples = torch.arange(int(lengths.max()), device=medians.device)[None, :] + (medians - minima)[:, None]
        pmf, lower, upper = self._likelihood(samples[:, None, :], stop_gradient=True)
        last = (lengths - 1)[:, None]
        tail = torch.sigmoid(lower[:, 0, 0]) + torch.sigmoid(-upper[:, 0].gather(1, last)[:, 0])
        cdfs, cdf_lengths = quantize_pmf(pmf[:, 0], tail, lengths)
        return cdfs, cdf_lengths, (-minima).to(torch.int32)

    def _indexes(self, shape: torch.Size, device: torch.device) -> torch.Tensor:
        channel = torch.arange(self.channels, dtype=torch.int32, device=device)
        return channel.reshape(1, -1, *([1] * (len(shape) - 2))).expand(shape).reshape(shape[0], -1)

    def compress(self, x: torch.Tensor) -> list[bytes]:
        """One byte string per batch item of x (B, C, ...): its values rounded around the
        channel medians, range coded (the batch in parallel)."""
        self.check_ready("compress")
        self._check_input("compress", x)
        check_symbols_input("EntropyBottleneck.compress", x)
        medians = self.medians.reshape(1, -1, *([1] * (x.ndim - 2)))
        symbols = torch.round(x.detach() - medians).to(torch.int32)
        return self.encode_symbols(symbols.reshape(x.shape[0], -1), self._indexes(x.shape, x.device))

    def decompress(self, strings: list[bytes], shape: Sequence[int]) -> torch.Tensor:
        """The values :meth:`compress` coded: ``len(strings)`` items of shape (C, *shape),
        as float (B, C, *shape) on the parameters' device: symbols plus medians."""
        self.check_ready("decompress")
        full = torch.Size((len(strings), self.channels, *shape))
        device = self.quantiles.device
        symbols = self.decode_symbols(strings, self._indexes(full, device)).reshape(full)
        medians = self.medians.reshape(1, -1, *([1] * len(shape)))
        return symbols.to(medians.dtype) + medians
