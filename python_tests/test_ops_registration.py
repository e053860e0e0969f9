"""The op declaration helper (stegafast.ops.registration): the autocast policies,
the double-backward error, argument checks and the table `stegafast info` reads.
The policies are tried on small ops of this file, defined in Python in the
stegafast namespace and declared in a registry of their own."""

import pytest
import torch
from testutils import requires_native

from stegafast import NativeKernelUnavailable, use_backend
from stegafast.dtypes import FLOAT_TYPES
from stegafast.ops import registration

_LIB = torch.library.Library("stegafast", "FRAGMENT")  # noqa: TOR901 - test-only ops
_REGISTRY = registration.Registry()


def _scale_add(x, w, k):
    return x * w + k


def _probe(name: str, autocast: str) -> registration.DeclaredOp:
    """stegafast::<name>(x, w, k) = x * w + k with a CPU kernel, declared with autocast."""
    _LIB.define(f"{name}(Tensor x, Tensor w, int k) -> Tensor")
    _LIB.impl(name, _scale_add, "CPU")

    def setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], inputs[1])

    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        return grad * w, grad * x, None

    return _REGISTRY.declare(
        name,
        kernel="probe",
        dtypes=FLOAT_TYPES,
        autocast=autocast,
        fake=lambda x, w, k: torch.empty_like(x),
        backward=backward,
        setup_context=setup,
    )


KEEP = _probe("_probe_keep", "keep")
FLOAT32 = _probe("_probe_float32", "float32")
LOWER = _probe("_probe_lower", "lower")

_LIB.define("_probe_grad(Tensor grad) -> Tensor")
_LIB.impl("_probe_grad", lambda grad: grad * 2, "CPU")
GRAD = _REGISTRY.declare(
    "_probe_grad", kernel="probe", dtypes=FLOAT_TYPES, fake=lambda grad: torch.empty_like(grad), gradient_of="probe_op"
)


def _inputs(dtype=torch.float32):
    return torch.randn(3, 5, dtype=dtype), torch.randn(3, 5, dtype=dtype)


def test_declaration_holds_what_was_declared():
    assert [op.name for op in _REGISTRY.declared()] == ["_probe_keep", "_probe_float32", "_probe_lower", "_probe_grad"]
    assert LOWER.kernel == "probe" and LOWER.autocast == "lower" and LOWER.dtypes == FLOAT_TYPES
    assert LOWER.native is torch.ops.stegafast._probe_lower
    # a registry of its own: the process's table (what `stegafast info` lists) is untouched
    assert "_probe_lower" not in {op.name for op in registration.declared()}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_lower_runs_in_the_active_autocast_dtype(dtype):
    x, w = _inputs()
    with torch.autocast("cpu", dtype=dtype):
        y = LOWER.native(x, w, 2)
    assert y.dtype == dtype
    assert torch.equal(y, _scale_add(x.to(dtype), w.to(dtype), 2))


def test_lower_leaves_float64_integers_and_plain_calls_alone():
    x, w = _inputs(torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert LOWER.native(x, w, 1).dtype == torch.float64
        ints = torch.arange(6).view(2, 3)
        assert torch.equal(LOWER.native(ints, ints, 1), ints * ints + 1)
    x, w = _inputs()
    assert LOWER.native(x, w, 1).dtype == torch.float32


def test_lower_gradients_flow_back_to_the_input_dtype():
    x, w = (v.requires_grad_() for v in _inputs())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = LOWER.native(x, w, 0)
    y.float().sum().backward()
    assert x.grad.dtype == torch.float32 and w.grad.dtype == torch.float32
    torch.testing.assert_close(x.grad, w.detach().to(torch.bfloat16).float())


def test_lower_under_torch_compile():
    x, w = _inputs()

    def fn(a, b):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return LOWER.native(a, b, 3)

    y = torch.compile(fn, fullgraph=True)(x, w)
    assert y.dtype == torch.bfloat16
    assert torch.equal(y, _scale_add(x.bfloat16(), w.bfloat16(), 3))


def test_keep_and_float32_policies():
    x, w = _inputs(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert KEEP.native(x, w, 1).dtype == torch.bfloat16
        assert KEEP.native(x.float(), w.float(), 1).dtype == torch.float32
        y = FLOAT32.native(x, w, 1)
    assert y.dtype == torch.float32
    assert torch.equal(y, _scale_add(x.float(), w.float(), 1))


def test_a_declared_gradient_op_refuses_double_backward():
    g = torch.randn(4, requires_grad=True)
    out = GRAD.native(g)
    with pytest.raises(NotImplementedError, match=r"stegafast.ops.probe_op: .*double backward"):
        out.sum().backward()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(autocast="half"), "unknown autocast policy 'half'"),
        (dict(backward=lambda ctx, g: g, gradient_of="x"), "either backward or gradient_of"),
        (dict(setup_context=lambda ctx, i, o: None), "setup_context needs a backward"),
    ],
)
def test_declare_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        registration.Registry().declare("_probe_unused", kernel="probe", dtypes=FLOAT_TYPES, fake=lambda x: x, **kwargs)


def test_every_kernel_declares_its_ops():
    kernels = {}
    for op in registration.declared():
        kernels.setdefault(op.kernel, []).append(op.name)
    assert set(kernels) >= {"lifting", "coupling", "jpeg", "entropy"}
    assert len(kernels["lifting"]) == 4 and len(kernels["coupling"]) == 4
    assert kernels["jpeg"] == ["jpeg_quantize_blocks", "jpeg_quantize_blocks_backward"]
    assert all(op.autocast in registration.AUTOCAST_POLICIES for op in registration.declared())


@requires_native
def test_backend_choice_reads_the_declared_dtypes():
    assert LOWER.use_native(torch.zeros(2))
    assert not LOWER.use_native(torch.zeros(2, dtype=torch.int64))  # auto: the reference, logged once
    with use_backend("native"), pytest.raises(NativeKernelUnavailable, match="no native kernel for torch.int64"):
        LOWER.use_native(torch.zeros(2, dtype=torch.int64))
    with use_backend("reference"):
        assert not LOWER.use_native(torch.zeros(2))
