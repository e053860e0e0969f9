"""Windowed multi-head attention (Swin's W-MSA and SW-MSA): the public operator.

``window_attention(q, k, v, *, bias=None, mask=None, scale=None)`` returns
``softmax(scale * q k^T + bias + mask) v`` for every window and head; see
``stegafast.reference.attention``, the specification.

* ``q, k, v``: (B * nW, heads, N, d), one row per window, one shape, one dtype
  (float32, float64, float16, bfloat16), one device; N (tokens per window) 1..256
  (7 x 7 = 49 and 4 x 4 = 16 included), d (channels per head) 1..128.
* ``bias``: (heads, N, N), the relative-position bias already gathered from its
  table; it receives a gradient, summed over the windows.
* ``mask``: (nW, N, N) additive, nW dividing B * nW; window ``w`` uses
  ``mask[w % nW]`` (the shifted-window mask); ``-inf`` allowed; no gradient.
  A row whose every score is ``-inf`` returns zeros and passes zero gradients.
* ``scale``: a finite number, by default ``d ** -0.5``.
* For the backward, the native forward keeps its inputs and each row's float32
  log-sum-exp (float64 for float64 inputs), not even its output; the backward,
  a native op too, recomputes the probabilities from them, so training never
  stores the (B * nW, heads, N, N) attention matrix that the eager expression
  (and scaled_dot_product_attention with a float mask) saves.
  Double backward raises NotImplementedError (the reference backend supports it).
* dtypes: half types compute in float32 inside the kernel.
* Autocast: like ``F.scaled_dot_product_attention``: inside an autocast region
  floating inputs are cast to the autocast dtype (float16 or bfloat16) and the
  op runs, and returns, in it.
"""

from __future__ import annotations

import math
import numbers

import torch

from ..dtypes import FLOAT_TYPES
from ..reference import attention as reference
from ._validate import check_same_device, check_tensor
from .registration import declare

__all__ = ["window_attention"]

DTYPES = FLOAT_TYPES
MAX_TOKENS = 256
MAX_HEAD_DIM = 128
_OP = "window_attention"


def _check_inputs(q, k, v, bias, mask, scale) -> float:
    """Raise on bad input, naming the argument and the problem; return the scale."""
    check_tensor(_OP, "q", q, DTYPES, ndim=4)
    windows, heads, n, d = q.shape
    if not 1 <= n <= MAX_TOKENS:
        raise ValueError(
            f"{_OP}: q has N = {n} tokens per window; supported: 1..{MAX_TOKENS} "
            f"(q must be (B * nW, heads, N, d), got shape {tuple(q.shape)})"
        )
    if not 1 <= d <= MAX_HEAD_DIM:
        raise ValueError(
            f"{_OP}: q has d = {d} channels per head; supported: 1..{MAX_HEAD_DIM} "
            f"(q must be (B * nW, heads, N, d), got shape {tuple(q.shape)})"
        )
    for name, value in (("k", k), ("v", v)):
        check_tensor(_OP, name, value, DTYPES)
        if value.shape != q.shape:
            raise ValueError(f"{_OP}: {name} has shape {tuple(value.shape)} but q has shape {tuple(q.shape)}")
    named = {"q": q, "k": k, "v": v}
    if bias is not None:
        check_tensor(_OP, "bias", bias, DTYPES)
        if tuple(bias.shape) != (heads, n, n):
            raise ValueError(f"{_OP}: bias must have shape (heads, N, N) = {(heads, n, n)}, got {tuple(bias.shape)}")
        named["bias"] = bias
    if mask is not None:
        check_tensor(_OP, "mask", mask, DTYPES)
        if mask.dim() != 3 or tuple(mask.shape[1:]) != (n, n) or mask.shape[0] < 1:
            raise ValueError(f"{_OP}: mask must have shape (nW, N, N) = (nW, {n}, {n}), got {tuple(mask.shape)}")
        if windows % mask.shape[0]:
            raise ValueError(
                f"{_OP}: mask has {mask.shape[0]} windows, which does not divide the {windows} windows of q (B * nW)"
            )
        named["mask"] = mask
    for name, value in named.items():
        if value.dtype != q.dtype:
            raise TypeError(f"{_OP}: {name} has dtype {value.dtype} but q has dtype {q.dtype}")
    check_same_device(_OP, named)
    if scale is None:
        return d**-0.5
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise TypeError(f"{_OP}: scale must be a number, got {scale!r}")
    if not math.isfinite(scale):
        raise ValueError(f"{_OP}: scale must be finite, got {scale!r}")
    return float(scale)


def _autocast(q, k, v, bias, mask):
    """The inputs as the autocast policy "lower" has them: inside an autocast region
    the floating ones (float64 excepted, as autocast does) cast to its dtype, here,
    before the checks, so that float32 parameters (the bias table) meet half
    activations and both backends see one dtype; unchanged outside."""
    if not isinstance(q, torch.Tensor) or not torch.is_autocast_enabled(q.device.type):
        return q, k, v, bias, mask
    dtype = torch.get_autocast_dtype(q.device.type)

    def cast(t):  # anything not a floating tensor is left for the checks to name
        eligible = isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype != torch.float64
        return t.to(dtype) if eligible else t

    return cast(q), cast(k), cast(v), cast(bias), cast(mask)


def window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """softmax(scale * q k^T + bias + mask[w % nW]) v for q, k, v (B * nW, heads, N, d),
    bias (heads, N, N), mask (nW, N, N); returns (B * nW, heads, N, d) in q's dtype."""
    q, k, v, bias, mask = _autocast(q, k, v, bias, mask)
    scale = _check_inputs(q, k, v, bias, mask, scale)
    if FORWARD.use_native(q):
        out, _ = FORWARD.native(q, k, v, bias, mask, scale)
        return out
    return reference.window_attention(q, k, v, bias=bias, mask=mask, scale=scale)


# --- the native ops' declarations: fake tensors, autograd, autocast -----------


def _lse_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _fake_forward(q, k, v, bias, mask, scale):
    # the kernels write contiguous outputs whatever the inputs' strides
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    return out, torch.empty(q.shape[:3], dtype=_lse_dtype(q.dtype), device=q.device)


def _fake_backward(grad_out, q, k, v, bias, mask, lse, scale):
    grads = [torch.empty(q.shape, dtype=q.dtype, device=q.device) for _ in range(3)]
    bias_shape = bias.shape if bias is not None else (0,)
    return (*grads, torch.empty(bias_shape, dtype=q.dtype, device=q.device))


def _setup_forward(ctx, inputs, output):
    q, k, v, bias, mask, scale = inputs
    # the backward recomputes the probabilities from lse: the output is not kept
    ctx.save_for_backward(q, k, v, bias, mask, output[1])
    ctx.scale = scale


def _forward_grad(ctx, grad_out, grad_lse):
    # lse is an auxiliary output for the backward: no gradient flows into it
    q, k, v, bias, mask, lse = ctx.saved_tensors
    gq, gk, gv, gbias = BACKWARD.native(grad_out, q, k, v, bias, mask, lse, ctx.scale)
    return gq, gk, gv, (gbias if bias is not None else None), None, None


FORWARD = declare(
    _OP,
    kernel="attention",
    dtypes=DTYPES,
    autocast="lower",
    fake=_fake_forward,
    backward=_forward_grad,
    setup_context=_setup_forward,
)
BACKWARD = declare(
    _OP + "_backward", kernel="attention", dtypes=DTYPES, autocast="keep", fake=_fake_backward, gradient_of=_OP
)
