"""Public functional kernels. Each validates its inputs, picks the native kernel
or the reference (see stegafast.backend), and declares its native ops (fake
tensors, autograd, autocast policy, supported dtypes) through
:mod:`stegafast.ops.registration`."""

from .attention import window_attention
from .coupling import affine_coupling, affine_coupling_inverse
from .entropy import range_decode, range_decode_batch, range_encode, range_encode_batch
from .jpeg import jpeg_quality_table, jpeg_quantize_blocks
from .lifting import ilwt53_forward, ilwt53_inverse

__all__ = [
    "affine_coupling",
    "affine_coupling_inverse",
    "ilwt53_forward",
    "ilwt53_inverse",
    "jpeg_quality_table",
    "jpeg_quantize_blocks",
    "range_decode",
    "range_decode_batch",
    "range_encode",
    "range_encode_batch",
    "window_attention",
]
