"""Fused affine coupling of invertible networks: the public operators.

``affine_coupling(x, s_raw, t, clamp=2.0, clamp_fn="tanh")`` returns
``(y, logdet)`` with

    s = clamp * tanh(s_raw / clamp)           clamp_fn="tanh"
    s = clamp * 0.636 * atan(s_raw / clamp)   clamp_fn="atan" (the seed's constant)
    y = x * exp(s) + t,   logdet = s summed over every dim but the batch, shape (B,)

and ``affine_coupling_inverse(y, s_raw, t, ...)`` returns ``(x, logdet)`` with
``x = (y - t) * exp(-s)`` and ``logdet = -sum(s)``, the log-determinant of the
inverse map, so a flow's forward and inverse logdets cancel. See
``stegafast.reference.coupling``, the specification.

* Inputs: x (or y), s_raw and t of one shape (B, ...) with B >= 1 and at least
  one more dim, one dtype (float32, float64, float16, bfloat16), one device;
  ``clamp`` a finite number > 0 that stays a normal number in the compute dtype
  (float32 for float32 and half inputs: 1.2e-38 <= clamp <= 3.4e38), so that
  clamp and 1 / clamp are finite and non-zero there.
* One pass over memory per call: the forward writes y and the per-sample
  logdet partials together; its backward (a native op) computes the gradients
  of x and s_raw, with the logdet's gradient folded in, in one more pass (the
  gradient of t is the gradient of y itself); the inverse and its backward
  likewise. Double backward raises NotImplementedError (the reference
  backend supports it).
* Inputs whose samples are each contiguous (such as ``x[:, c:]`` or
  ``h.chunk(2, 1)`` of NCHW tensors) are read in place; others are copied first.
* dtypes: half types compute in float32 inside the kernel; ``logdet`` is
  float32 for float32 and half inputs, float64 for float64. It is summed in
  fixed-size chunks added in a fixed order, so it does not depend on the thread
  count (or, on the GPU, on scheduling).
* Autocast: policy "keep": the op runs on its input dtype and returns it.
"""

from __future__ import annotations

import math
import numbers

import torch

from ..dtypes import FLOAT_TYPES, compute_dtype
from ..reference import coupling as reference
from ._validate import check_kernel_scalar, dtype_names
from .registration import declare

__all__ = ["affine_coupling", "affine_coupling_inverse"]

DTYPES = FLOAT_TYPES
CLAMP_FNS = reference.CLAMP_FNS


def _check_inputs(op: str, names: tuple[str, str, str], tensors, clamp, clamp_fn) -> float:
    """Raise on bad input, naming the argument; return clamp as a float."""
    first_name, first = names[0], tensors[0]
    for name, value in zip(names, tensors):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(value).__name__}")
        if value.dtype not in DTYPES:
            raise TypeError(f"{op}: {name} has dtype {value.dtype}; supported: {dtype_names(DTYPES)}")
    if first.dim() < 2:
        raise ValueError(
            f"{op}: {first_name} must be (B, ...) with at least one dim after the batch, got shape {tuple(first.shape)}"
        )
    if first.shape[0] < 1:
        raise ValueError(f"{op}: {first_name} must have a batch of at least 1, got shape {tuple(first.shape)}")
    for name, value in zip(names[1:], tensors[1:]):
        if value.shape != first.shape:
            raise ValueError(
                f"{op}: {name} has shape {tuple(value.shape)} but {first_name} has shape {tuple(first.shape)}"
            )
        if value.dtype != first.dtype:
            raise TypeError(f"{op}: {name} has dtype {value.dtype} but {first_name} has dtype {first.dtype}")
        if value.device != first.device:
            raise ValueError(f"{op}: {name} is on {value.device} but {first_name} is on {first.device}")
    if isinstance(clamp, bool) or not isinstance(clamp, numbers.Real):
        raise TypeError(f"{op}: clamp must be a number, got {clamp!r}")
    if not (math.isfinite(clamp) and clamp > 0):
        raise ValueError(f"{op}: clamp must be finite and > 0, got {clamp!r}")
    if clamp_fn not in CLAMP_FNS:
        raise ValueError(f"{op}: clamp_fn must be one of {', '.join(map(repr, CLAMP_FNS))}, got {clamp_fn!r}")
    # the kernels use clamp and 1 / clamp in the compute dtype: both must be finite and non-zero there
    work = compute_dtype(first.dtype)
    return check_kernel_scalar(op, "clamp", clamp, work, minimum=torch.finfo(work).tiny, what="be finite and > 0")


def affine_coupling(
    x: torch.Tensor, s_raw: torch.Tensor, t: torch.Tensor, clamp: float = 2.0, clamp_fn: str = "tanh"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, logdet): y = x * exp(s) + t with s = clamp * tanh(s_raw / clamp)
    (or the atan clamp), logdet = sum of s per sample, shape (B,)."""
    clamp = _check_inputs("affine_coupling", ("x", "s_raw", "t"), (x, s_raw, t), clamp, clamp_fn)
    if FORWARD.use_native(x):
        y, logdet = FORWARD.native(x, s_raw, t, clamp, clamp_fn)
        return y, logdet
    return reference.affine_coupling(x, s_raw, t, clamp, clamp_fn)


def affine_coupling_inverse(
    y: torch.Tensor, s_raw: torch.Tensor, t: torch.Tensor, clamp: float = 2.0, clamp_fn: str = "tanh"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, logdet): x = (y - t) * exp(-s), the inverse of ``affine_coupling``
    for the same s_raw and t; logdet = -(sum of s per sample), shape (B,)."""
    clamp = _check_inputs("affine_coupling_inverse", ("y", "s_raw", "t"), (y, s_raw, t), clamp, clamp_fn)
    if INVERSE.use_native(y):
        x, logdet = INVERSE.native(y, s_raw, t, clamp, clamp_fn)
        return x, logdet
    return reference.affine_coupling_inverse(y, s_raw, t, clamp, clamp_fn)


# --- the native ops' declarations: fake tensors, autograd, autocast -----------


def _logdet_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _fake_coupling(a, s_raw, t, clamp=2.0, clamp_fn="tanh"):
    # the kernels write contiguous outputs whatever the inputs' strides
    out = torch.empty(a.shape, dtype=a.dtype, device=a.device)
    return out, torch.empty((a.shape[0],), dtype=_logdet_dtype(a.dtype), device=a.device)


def _fake_backward(grad_y, grad_logdet, x, s_raw, clamp, clamp_fn):
    return torch.empty_like(x, memory_format=torch.contiguous_format), torch.empty_like(
        x, memory_format=torch.contiguous_format
    )


def _fake_inverse_backward(grad_x, grad_logdet, x, s_raw, clamp, clamp_fn):
    return tuple(torch.empty_like(x, memory_format=torch.contiguous_format) for _ in range(3))


def _setup_forward(ctx, inputs, output):
    x, s_raw, _, clamp, clamp_fn = inputs
    ctx.save_for_backward(x, s_raw)
    ctx.clamp, ctx.clamp_fn = clamp, clamp_fn


def _setup_inverse(ctx, inputs, output):
    # the inverse's backward reads its output x (not y and t): one tensor less
    _, s_raw, _, clamp, clamp_fn = inputs
    ctx.save_for_backward(output[0], s_raw)
    ctx.clamp, ctx.clamp_fn = clamp, clamp_fn


def _forward_grad(ctx, grad_y, grad_logdet):
    x, s_raw = ctx.saved_tensors
    grad_x, grad_s = FORWARD_BACKWARD.native(grad_y, grad_logdet, x, s_raw, ctx.clamp, ctx.clamp_fn)
    # y = x * exp(s) + t: the gradient of t is grad_y itself, no kernel needed
    return grad_x, grad_s, grad_y, None, None


def _inverse_grad(ctx, grad_x, grad_logdet):
    x, s_raw = ctx.saved_tensors
    grad_y, grad_s, grad_t = INVERSE_BACKWARD.native(grad_x, grad_logdet, x, s_raw, ctx.clamp, ctx.clamp_fn)
    return grad_y, grad_s, grad_t, None, None


FORWARD = declare(
    "affine_coupling",
    kernel="coupling",
    dtypes=DTYPES,
    fake=_fake_coupling,
    backward=_forward_grad,
    setup_context=_setup_forward,
)
INVERSE = declare(
    "affine_coupling_inverse",
    kernel="coupling",
    dtypes=DTYPES,
    fake=_fake_coupling,
    backward=_inverse_grad,
    setup_context=_setup_inverse,
)
FORWARD_BACKWARD = declare(
    "affine_coupling_backward", kernel="coupling", dtypes=DTYPES, fake=_fake_backward, gradient_of="affine_coupling"
)
INVERSE_BACKWARD = declare(
    "affine_coupling_inverse_backward",
    kernel="coupling",
    dtypes=DTYPES,
    fake=_fake_inverse_backward,
    gradient_of="affine_coupling_inverse",
)
