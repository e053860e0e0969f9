"""Pure-PyTorch implementations of every kernel, with the same signatures as
stegafast.ops: the fallback, the test oracle, and the readable specification."""

from .lifting import ilwt53_forward, ilwt53_inverse

__all__ = ["ilwt53_forward", "ilwt53_inverse"]
