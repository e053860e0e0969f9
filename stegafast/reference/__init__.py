"""Pure-PyTorch implementations of every kernel, with the same signatures as
stegafast.ops: the fallback, the test oracle, and the readable specification."""

from .coupling import affine_coupling, affine_coupling_inverse
from .lifting import ilwt53_forward, ilwt53_inverse

__all__ = ["affine_coupling", "affine_coupling_inverse", "ilwt53_forward", "ilwt53_inverse"]
