"""Public functional kernels. Each validates its inputs, picks the native kernel
or the reference (see stegafast.backend), and carries fake-tensor, autograd and
autocast registrations for its native op."""

from .coupling import affine_coupling, affine_coupling_inverse
from .lifting import ilwt53_forward, ilwt53_inverse

__all__ = ["affine_coupling", "affine_coupling_inverse", "ilwt53_forward", "ilwt53_inverse"]
