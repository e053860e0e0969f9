"""Differentiable JPEG quantisation of 8x8 blocks: the public operator.

``jpeg_quantize_blocks(x, qtable, rounding="ste")`` runs JPEG's lossy step on
every 8x8 block of ``x`` (N, C, H, W) in one fused pass: level shift, forward
DCT-II, division by the quantisation table, differentiable rounding,
multiplication back, inverse DCT. See ``stegafast.reference.jpeg``, the
specification, for the formulas and the rounding modes ("ste", "cubic",
"ste_cubic" in the native kernels; "round_only_at_0", StegaStamp's, through
the reference implementation on every device).

* ``x``: pixel values on JPEG's 0..255 scale (not checked: any real values
  work), H and W multiples of 8 (``stegafast.nn.DiffJPEG`` pads whole images);
  float32, float64, float16 or bfloat16; half types compute in float32 inside
  the kernel.
* ``qtable``: positive quantisation steps, shape (8, 8) (one table for all),
  (N, 8, 8) (one per sample, e.g. per-image qualities) or anything broadcasting
  to (N, C, 8, 8); build them with ``jpeg_quality_table``. Not differentiated.
  Both backends read the table in x's dtype, and it is checked there: every
  step must be finite and at least the larger of that dtype's smallest normal
  number (6.1e-05 for float16) and 2 * 1024 / the compute dtype's largest
  value (so that a coefficient of 0..255 pixels over a step stays finite), else
  ValueError names the step and what it becomes (1e-8 is 0 in float16).
* The backward is one native pass too (for "ste" it is the identity, a copy).
  Double backward raises NotImplementedError (the reference backend supports it).
* Autocast: policy "keep": the op runs on its input dtype and returns it.
"""

from __future__ import annotations

import torch

from ..dtypes import FLOAT_TYPES, compute_dtype
from ..reference import jpeg as reference
from ..reference.jpeg import jpeg_quality_table
from . import _validate
from ._validate import check_tensor, dtype_names
from .registration import declare

__all__ = ["jpeg_quantize_blocks", "jpeg_quality_table"]

DTYPES = FLOAT_TYPES
ROUNDINGS = reference.ROUNDINGS
NATIVE_ROUNDINGS = ("ste", "cubic", "ste_cubic")  # the kernels' modes; the others run in the reference
_OP = "jpeg_quantize_blocks"


def _check_inputs(x, qtable, rounding) -> None:
    """Raise on bad input, naming the argument and the problem."""
    check_tensor(_OP, "x", x, DTYPES, ndim=4)
    n, c, h, w = x.shape
    if h % 8 or w % 8:
        raise ValueError(f"{_OP}: x's height and width must be multiples of 8, got shape {tuple(x.shape)}")
    if not isinstance(qtable, torch.Tensor):
        raise TypeError(f"{_OP}: qtable must be a torch.Tensor, got {type(qtable).__name__}")
    if not (qtable.is_floating_point() or qtable.dtype in (torch.int32, torch.int64, torch.int16, torch.uint8)):
        raise TypeError(f"{_OP}: qtable has dtype {qtable.dtype}; supported: {dtype_names(DTYPES)} or integers")
    if qtable.dim() not in (2, 3, 4) or tuple(qtable.shape[-2:]) != (8, 8):
        raise ValueError(f"{_OP}: qtable must be (8, 8), (N, 8, 8) or (N, C, 8, 8), got shape {tuple(qtable.shape)}")
    lead = (qtable.shape[0],) if qtable.dim() == 3 else tuple(qtable.shape[:-2])
    target = (n,) if qtable.dim() == 3 else (n, c)
    if any(a not in (1, b) for a, b in zip(lead, target)):
        raise ValueError(
            f"{_OP}: qtable of shape {tuple(qtable.shape)} does not match x of shape {tuple(x.shape)} "
            "(one table, one per sample, or one per sample and channel)"
        )
    if qtable.device != x.device:
        raise ValueError(f"{_OP}: qtable is on {qtable.device} but x is on {x.device}")
    if rounding not in ROUNDINGS:
        raise ValueError(f"{_OP}: rounding must be one of {', '.join(map(repr, ROUNDINGS))}, got {rounding!r}")


def _min_step(dtype: torch.dtype) -> float:
    """The smallest step accepted for x of ``dtype``: a normal number of the
    dtype the table is stored in (x's), and large enough that a coefficient of
    0..255 pixels (|coef| <= 1024) divided by it stays finite in the compute dtype."""
    return max(torch.finfo(dtype).tiny, 2 * reference.MAX_COEFFICIENT / torch.finfo(compute_dtype(dtype)).max)


def _checked_table(qtable: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """qtable in x's dtype (what both backends read), checked there: a step that
    is positive in the caller's dtype can be 0 or inf in x's (1e-8 in float16)."""
    return _validate.as_kernel_values(
        _OP, "qtable", qtable.detach(), x.dtype, minimum=_min_step(x.dtype), what="hold finite quantisation steps > 0"
    )


def _full_table(table: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A table in x's dtype as the native op wants it: contiguous (N, C, 8, 8)."""
    n, c = x.shape[:2]
    if table.dim() == 3:
        table = table[:, None]
    return table.expand(n, c, 8, 8).contiguous()


def jpeg_quantize_blocks(x: torch.Tensor, qtable: torch.Tensor, rounding: str = "ste") -> torch.Tensor:
    """JPEG's lossy step on every 8x8 block of x (N, C, H, W; values 0..255;
    H and W multiples of 8) with quantisation table(s) qtable and the given
    differentiable rounding; returns the decoded pixels (x's shape and dtype)."""
    _check_inputs(x, qtable, rounding)
    table = _checked_table(qtable, x)
    if rounding in NATIVE_ROUNDINGS and QUANTIZE.use_native(x):
        return QUANTIZE.native(x, _full_table(table, x), rounding)
    return reference.jpeg_quantize_blocks(x, table, rounding)


# --- the native ops' declarations: fake tensors, autograd, autocast -----------


def _fake_forward(x, qtable, rounding="ste"):
    # the kernels write contiguous outputs whatever the inputs' strides
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


def _fake_backward(grad_y, x, qtable, rounding):
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


def _setup_forward(ctx, inputs, output):
    x, qtable, rounding = inputs
    # ste's backward needs neither x nor the table
    ctx.save_for_backward(*((x, qtable) if rounding != "ste" else ()))
    ctx.rounding = rounding


def _forward_grad(ctx, grad_y):
    if ctx.rounding == "ste":
        return grad_y, None, None
    x, qtable = ctx.saved_tensors
    return QUANTIZE_BACKWARD.native(grad_y, x, qtable, ctx.rounding), None, None


QUANTIZE = declare(
    _OP, kernel="jpeg", dtypes=DTYPES, fake=_fake_forward, backward=_forward_grad, setup_context=_setup_forward
)
QUANTIZE_BACKWARD = declare(_OP + "_backward", kernel="jpeg", dtypes=DTYPES, fake=_fake_backward, gradient_of=_OP)
