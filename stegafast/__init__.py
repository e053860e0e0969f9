"""stegafast: fast kernels and trainable models for neural image steganography,
watermarking, learned compression, autoencoders and diffusion denoising.

Importing never fails because the native library is missing: a warning names
the reason and the pure-PyTorch reference kernels run instead.
"""

from . import _native, nn, ops, reference  # noqa: E402  (ops registers on the loaded library)
from ._version import __version__
from .backend import NativeKernelUnavailable, get_backend, set_backend, use_backend

__all__ = [
    "__version__",
    "NativeKernelUnavailable",
    "get_backend",
    "set_backend",
    "use_backend",
    "ops",
    "reference",
    "nn",
    "native_available",
]


def native_available() -> bool:
    """Whether the native library stegafast._C is loaded."""
    return _native.status().loaded
