"""Pure-PyTorch implementations of every kernel, with the same signatures as
stegafast.ops: the fallback, the test oracle, and the readable specification."""

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
