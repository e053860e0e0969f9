"""Public functional kernels. Each validates its inputs, picks the native kernel
or the reference (see stegafast.backend), and carries fake-tensor, autograd and
autocast registrations for its native op."""

from .lifting import ilwt53_forward, ilwt53_inverse

__all__ = ["ilwt53_forward", "ilwt53_inverse"]
