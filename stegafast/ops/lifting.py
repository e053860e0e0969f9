"""Batched LeGall 5/3 integer lifting wavelet (ILWT): the public operators.

``ilwt53_forward(x)`` maps a (B, C, H, W) batch to (B, 4C, ceil(H/2), ceil(W/2))
subbands ``[LL | HL | LH | HH]`` in one launch, the whole batch sharing one
padding rule (an odd side gains the whole-sample symmetric sample x[N] = x[N-2]);
``ilwt53_inverse(y, out_size)`` inverts it. The math is JPEG 2000's reversible
5/3 lifting (see ``stegafast.reference.lifting``, the specification).

* Integer-valued input (int32, or floating tensors holding integers) is
  transformed exactly and reconstructed bit for bit. ``rounding=False`` gives
  the linear 5/3 lifting for float features.
* int32 is two's-complement int32 arithmetic throughout: sums and differences
  wrap modulo 2**32, so the round trip is exact for every int32 input, from
  INT32_MIN to INT32_MAX (inputs of magnitude 2**28 or more can give wrapped
  subbands). Floating types round-trip integer-valued input exactly
  up to |x| <= 2**21 in float32 (2**50 in float64); beyond, and for inf/NaN,
  native and reference still agree bit for bit. The exact rules are in
  ``stegafast.reference.lifting``.
* Gradients: floors pass gradients straight through, so each backward is the
  adjoint of the linear lifting, computed by its own native kernel (and the
  double backward by the linear transform).
* dtypes: int32 (rounding only), float32, float64, float16, bfloat16. Half types
  compute in float32 inside the kernel: exact for 8-bit images in float16;
  bfloat16 stores integers exactly only up to 256 in magnitude.
* Autocast: policy "keep": the op runs on its input dtype and returns it.
"""

from __future__ import annotations

import torch

from ..dtypes import FLOAT_TYPES
from ..reference import lifting as reference
from ._validate import check_size_pair, check_tensor
from .registration import declare

__all__ = ["ilwt53_forward", "ilwt53_inverse"]

DTYPES = (torch.int32, *FLOAT_TYPES)


def _half(n):
    return (n + 1) // 2


def _check_rounding(op: str, t: torch.Tensor, rounding) -> None:
    if not isinstance(rounding, bool):
        raise TypeError(f"{op}: rounding must be True or False, got {rounding!r}")
    if not rounding and not t.is_floating_point():
        raise ValueError(f"{op}: rounding=False (the linear lifting) needs a floating tensor, got {t.dtype}")


def _check_forward(x, rounding) -> None:
    op = "ilwt53_forward"
    check_tensor(op, "x", x, DTYPES, ndim=4)
    _check_rounding(op, x, rounding)
    if x.shape[2] < 2 or x.shape[3] < 2:
        raise ValueError(f"{op}: x needs H >= 2 and W >= 2, got shape {tuple(x.shape)}")


def _check_inverse(y, out_size, rounding) -> tuple[int, int]:
    op = "ilwt53_inverse"
    check_tensor(op, "y", y, DTYPES, ndim=4)
    _check_rounding(op, y, rounding)
    h, w = check_size_pair(op, "out_size", out_size)
    if h < 2 or w < 2:
        raise ValueError(f"{op}: out_size needs H >= 2 and W >= 2, got {(h, w)}")
    if y.shape[1] % 4:
        raise ValueError(f"{op}: y must have 4*C channels (LL, HL, LH, HH), got {y.shape[1]}")
    if (y.shape[2], y.shape[3]) != (_half(h), _half(w)):
        raise ValueError(
            f"{op}: out_size {(h, w)} needs subbands of {_half(h)}x{_half(w)}, got {y.shape[2]}x{y.shape[3]}"
        )
    return h, w


def ilwt53_forward(x: torch.Tensor, rounding: bool = True) -> torch.Tensor:
    """Forward 2-D 5/3 lifting: (B, C, H, W) -> (B, 4C, ceil(H/2), ceil(W/2))."""
    _check_forward(x, rounding)
    if FORWARD.use_native(x):
        return FORWARD.native(x, rounding)
    return reference.ilwt53_forward(x, rounding)


def ilwt53_inverse(y: torch.Tensor, out_size, rounding: bool = True) -> torch.Tensor:
    """Inverse 2-D 5/3 lifting: subbands -> (B, C, H, W) with (H, W) = out_size."""
    h, w = _check_inverse(y, out_size, rounding)
    if INVERSE.use_native(y):
        return INVERSE.native(y, [h, w], rounding)
    return reference.ilwt53_inverse(y, (h, w), rounding)


# --- the native ops' declarations: fake tensors, autograd, autocast -----------


def _fake_bands(x, rounding=True):
    b, c, h, w = x.shape
    return x.new_empty((b, 4 * c, _half(h), _half(w)))


def _fake_image(y, out_size, rounding=True):
    return y.new_empty((y.shape[0], y.shape[1] // 4, out_size[0], out_size[1]))


def _fake_forward_backward(grad_y, in_size):
    return _fake_image(grad_y, in_size)


def _fake_inverse_backward(grad_x):
    return _fake_bands(grad_x)


def _setup_size(ctx, inputs, output):
    # the spatial size of the first input: what the linear transforms of the
    # gradient need to know (the image size for the forward and inverse_backward)
    ctx.size = list(inputs[0].shape[2:])


def _forward_grad(ctx, grad):
    return FORWARD_BACKWARD.native(grad, ctx.size), None


def _inverse_grad(ctx, grad):
    return INVERSE_BACKWARD.native(grad), None, None


def _forward_backward_grad(ctx, grad):
    # the backward is linear: its own gradient is the linear forward transform
    return FORWARD.native(grad, False), None


def _inverse_backward_grad(ctx, grad):
    return INVERSE.native(grad, ctx.size, False)


def _declare(name, fake, backward):
    # the backwards are linear maps with native gradients of their own: training
    # (and double backward) stays native end to end
    return declare(
        name, kernel="lifting", dtypes=DTYPES, autocast="keep", fake=fake, backward=backward, setup_context=_setup_size
    )


FORWARD = _declare("ilwt53_forward", _fake_bands, _forward_grad)
INVERSE = _declare("ilwt53_inverse", _fake_image, _inverse_grad)
FORWARD_BACKWARD = _declare("ilwt53_forward_backward", _fake_forward_backward, _forward_backward_grad)
INVERSE_BACKWARD = _declare("ilwt53_inverse_backward", _fake_inverse_backward, _inverse_backward_grad)
