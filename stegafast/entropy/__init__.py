"""Entropy models for learned compression, coded with the native range coder.

* ``EntropyBottleneck``: the factorised prior of Balle et al. (2018), for the
  hyper-latents.
* ``GaussianConditional``: a Gaussian whose mean and scale a hyperprior predicts
  per element, for the latents.
* ``quantize_pmf``: probabilities -> the 16-bit integer CDF tables both build.
* ``lower_bound`` / ``LowerBound``: a bound that keeps the upward gradient.
* ``bounds``: what a decoded stream may hold (symbols within +-2**24, streams no
  longer than their symbols can fill, finite values downstream); every decoder
  checks it and raises ``CorruptStreamError`` ("corrupt stream") otherwise.

Both models give ``(x_hat, likelihoods)`` for training (``quantization="noise"``,
additive uniform noise, or ``"ste"``, straight-through rounding), build integer
CDF tables once with ``update()`` (buffers: they go into checkpoints), and
``compress`` a batch into one byte string per item, which ``decompress`` turns
back into exactly the encoder's values. Example::

    eb = EntropyBottleneck(8)
    ...train...
    eb.eval(); eb.update()
    strings = eb.compress(z)            # list of bytes, one per batch item
    z_hat = eb.decompress(strings, z.shape[2:])
"""

from .base import QUANTIZATION_MODES, EntropyModel
from .bottleneck import EntropyBottleneck
from .cdf import PRECISION, TOTAL, quantize_pmf
from .gaussian import GaussianConditional, default_scale_table
from .lower_bound import LowerBound, lower_bound

__all__ = [
    "QUANTIZATION_MODES",
    "EntropyModel",
    "EntropyBottleneck",
    "GaussianConditional",
    "default_scale_table",
    "PRECISION",
    "TOTAL",
    "quantize_pmf",
    "LowerBound",
    "lower_bound",
]
