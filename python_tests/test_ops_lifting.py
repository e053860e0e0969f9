"""The batched 5/3 lifting wavelet: native kernels against the reference, the
reference against the JPEG 2000 formulas, exactness, gradients, operator
registration, compile, autocast and bad input."""

import random

import numpy as np
import pytest
import torch
from kernel_testing import BadInput, Call, KernelTester
from testutils import on_native, on_reference, requires_native, run_on_baseline_cpu_build
from torch.autograd import gradcheck

import stegafast
from stegafast import ops, reference, use_backend


def _shapes(count, seed):
    """Random (B, C, H, W) with H, W in 2..70 (odd and even), B in 1..16."""
    rng = random.Random(seed)
    fixed = [(1, 1, 2, 2), (1, 1, 2, 3), (1, 1, 3, 2), (1, 2, 3, 3), (1, 3, 5, 4), (16, 1, 7, 9)]
    return fixed + [
        (rng.randint(1, 16), rng.choice([1, 3, 6]), rng.randint(2, 70), rng.randint(2, 70)) for _ in range(count)
    ]


SHAPES = _shapes(18, seed=1)
ids = ["x".join(map(str, s)) for s in SHAPES]


def _image(shape, dtype=torch.float32, low=0, high=256):
    return torch.randint(low, high, shape, dtype=torch.int32).to(dtype)


def _bands_shape(shape):
    return (shape[0], 4 * shape[1], (shape[2] + 1) // 2, (shape[3] + 1) // 2)


EXACT = dict(atol=0, rtol=0)


class TestLiftingKernel(KernelTester):
    """The shared battery (kernel_testing.py): integer-valued images transform
    bit-exactly in every dtype, so every tolerance is exact."""

    kernel = "lifting"
    op_names = ("ilwt53_forward", "ilwt53_inverse", "ilwt53_forward_backward", "ilwt53_inverse_backward")
    shapes = SHAPES
    dtypes = (torch.int32, torch.float32, torch.float64, torch.float16, torch.bfloat16)
    tolerances = {dtype: EXACT for dtype in dtypes}
    grad_shapes = [(1, 1, 2, 2), (1, 1, 3, 2), (2, 1, 5, 4), (1, 2, 4, 7), (2, 2, 7, 9)]
    double_backward = True  # the backwards are linear native ops with native gradients
    bad_inputs = [
        BadInput(ops.ilwt53_forward, ([[1.0, 2.0]],), TypeError, "must be a torch.Tensor"),
        BadInput(ops.ilwt53_forward, (torch.zeros(4, 4),), ValueError, "must have 4 dims"),
        BadInput(ops.ilwt53_forward, (torch.zeros(1, 1, 1, 8),), ValueError, "H >= 2 and W >= 2"),
        BadInput(ops.ilwt53_forward, (torch.zeros(1, 1, 8, 1),), ValueError, "H >= 2 and W >= 2"),
        BadInput(ops.ilwt53_forward, (torch.zeros(1, 1, 4, 4, dtype=torch.uint8),), TypeError, "dtype torch.uint8"),
        BadInput(ops.ilwt53_forward, (torch.zeros(1, 1, 4, 4, dtype=torch.int64),), TypeError, "supported: int32"),
        BadInput(
            ops.ilwt53_forward,
            (torch.zeros(1, 1, 4, 4, dtype=torch.int32), False),
            ValueError,
            "needs a floating tensor",
        ),
        BadInput(ops.ilwt53_forward, (torch.zeros(1, 1, 4, 4), 1), TypeError, "rounding must be True or False"),
        BadInput(ops.ilwt53_inverse, (torch.zeros(1, 4, 2, 2), (5, 4)), ValueError, "needs subbands of 3x2"),
        BadInput(ops.ilwt53_inverse, (torch.zeros(1, 4, 2, 2), (2, 2)), ValueError, "needs subbands of 1x1"),
        BadInput(ops.ilwt53_inverse, (torch.zeros(1, 6, 2, 2), (4, 4)), ValueError, "4\\*C channels"),
        BadInput(ops.ilwt53_inverse, (torch.zeros(1, 4, 1, 1), (1, 2)), ValueError, "out_size needs H >= 2"),
        BadInput(ops.ilwt53_inverse, (torch.zeros(1, 4, 2, 2), (4,)), ValueError, "must be a pair"),
        BadInput(ops.ilwt53_inverse, (torch.zeros(1, 4, 2, 2), (4.0, 4)), TypeError, "must hold ints"),
        BadInput(ops.ilwt53_inverse, (torch.zeros(4, 2, 2), (4, 4)), ValueError, "y must have 4 dims"),
    ]

    def parity_calls(self, shape, dtype):
        x = _image(shape, dtype)
        yield Call(ops.ilwt53_forward, (x,))
        # bfloat16 holds the subbands exactly but is not promised to round-trip
        back = x if dtype != torch.bfloat16 else None
        yield Call(ops.ilwt53_inverse, (reference.ilwt53_forward(x), shape[2:]), expected=back)

    def check_native_output(self, call, outputs):
        if call.fn is ops.ilwt53_forward:
            x = call.args[0]
            assert outputs[0].dtype == x.dtype and outputs[0].shape == _bands_shape(x.shape)

    def layout_calls(self):
        base = _image((3, 4, 20, 15))
        for x in [
            base.transpose(2, 3),
            base[:, ::2],
            base[..., 1:, :-2],
            base.contiguous(memory_format=torch.channels_last),
        ]:
            yield Call(ops.ilwt53_forward, (x,))
            y_cl = reference.ilwt53_forward(x.contiguous()).contiguous(memory_format=torch.channels_last)
            yield Call(ops.ilwt53_inverse, (y_cl, x.shape[2:]), expected=x)

    def gradcheck_calls(self, shape):
        x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
        y = ops.ilwt53_forward(x.detach(), rounding=False).requires_grad_()
        yield Call(ops.ilwt53_forward, (x,), dict(rounding=False))
        yield Call(ops.ilwt53_inverse, (y,), dict(out_size=shape[2:], rounding=False))

    def opcheck_samples(self):
        op = torch.ops.stegafast
        samples = []
        for shape in [(1, 1, 2, 2), (2, 3, 5, 4), (3, 2, 7, 9)]:
            for dtype in (torch.float32, torch.float64):
                x = torch.randn(shape, dtype=dtype, requires_grad=True)
                y = torch.randn(_bands_shape(shape), dtype=dtype, requires_grad=True)
                size = list(shape[2:])
                xi = (x.detach() * 100).round().requires_grad_()
                samples += [
                    (op.ilwt53_forward, (x, False)),
                    (op.ilwt53_inverse, (y, size, False)),
                    (op.ilwt53_forward_backward, (y, size)),
                    (op.ilwt53_inverse_backward, (x,)),
                    (op.ilwt53_forward, (xi, True)),
                    (op.ilwt53_forward, (xi.detach().int(), True)),
                ]
        return samples

    def compile_case(self):
        def round_trip(t):
            bands = ops.ilwt53_forward(t)
            return ops.ilwt53_inverse(bands * 1, t.shape[2:]), bands

        return round_trip, (_image((2, 3, 11, 8)).requires_grad_(),)

    def check_compiled(self, outputs, args):
        back, bands = outputs
        x = args[0].detach()
        assert torch.equal(back, x)
        assert torch.equal(bands, ops.ilwt53_forward(x))

    def autocast_calls(self, dtype):
        x = _image((2, 3, 9, 10), dtype)
        yield Call(ops.ilwt53_forward, (x,))
        yield Call(ops.ilwt53_inverse, (ops.ilwt53_forward(x), (9, 10)), expected=x)


# --- an independent oracle: the JPEG 2000 formulas, literally ----------------


def _spec_lift_1d(x):
    """JPEG 2000 reversible 5/3 lifting of a list of ints, with the shared padding."""
    x = list(x)
    if len(x) % 2:
        x.append(x[-2])  # x[N] = x[N-2]
    m = len(x)

    def sample(i):  # whole-sample symmetric extension of the padded signal
        i = -i if i < 0 else i
        return x[2 * (m - 1) - i] if i > m - 1 else x[i]

    def d(k):
        return sample(2 * k + 1) - (sample(2 * k) + sample(2 * k + 2)) // 2

    low = [sample(2 * k) + (d(k - 1) + d(k) + 2) // 4 for k in range(m // 2)]
    return low, [d(k) for k in range(m // 2)]


def _spec_forward(img):
    """(H, W) int array -> LL, HL, LH, HH arrays: along H first, then W."""
    cols = [_spec_lift_1d(img[:, c]) for c in range(img.shape[1])]
    low = np.array([c[0] for c in cols]).T
    high = np.array([c[1] for c in cols]).T

    def rows(a):
        parts = [_spec_lift_1d(r) for r in a]
        return np.array([p[0] for p in parts]), np.array([p[1] for p in parts])

    ll, hl = rows(low)
    lh, hh = rows(high)
    return ll, hl, lh, hh


@pytest.mark.parametrize("h,w", [(2, 2), (2, 5), (3, 3), (4, 7), (9, 6), (11, 13)])
def test_reference_follows_the_jpeg2000_formulas(h, w):
    img = np.random.default_rng(h * 31 + w).integers(-300, 300, size=(h, w))
    expected = np.concatenate(_spec_forward(img), 0)
    got = reference.ilwt53_forward(torch.from_numpy(img).int()[None, None])
    assert np.array_equal(got[0].reshape(-1, got.shape[-1]).numpy(), expected)


def test_known_values_of_a_short_signal():
    # x = [10, 20, 30, 25]: d0 = 20 - 20 = 0, d1 = 25 - 30 = -5 (x[4] = x[2]);
    # s0 = 10 + floor((0 + 0 + 2) / 4) = 10, s1 = 30 + floor((0 - 5 + 2) / 4) = 29
    x = torch.tensor([[10, 20, 30, 25]] * 2, dtype=torch.int32)[None, None]
    y = ops.ilwt53_forward(x)
    assert y[0, 1, 0].tolist() == [0, -5]  # HL: high along W, low along H
    assert y[0, 0, 0].tolist() == [10, 29]
    assert y[0, 2:].abs().sum() == 0  # constant along H: no high-pass along H


# --- native against reference ----------------------------------------------


@requires_native
def test_integer_transform_is_exact_beyond_8_bits():
    x = _image((2, 2, 33, 18), torch.int32, low=-(2**20), high=2**20)
    y = on_native(ops.ilwt53_forward, x)
    assert torch.equal(y, on_reference(ops.ilwt53_forward, x))
    assert torch.equal(on_native(ops.ilwt53_inverse, y, (33, 18)), x)


@requires_native
@pytest.mark.parametrize("shape", SHAPES[::2], ids=ids[::2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_linear_lifting_matches_reference_and_inverts(shape, dtype):
    x = torch.randn(shape, dtype=dtype)
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-12, rtol=1e-12)
    y = on_native(ops.ilwt53_forward, x, rounding=False)
    torch.testing.assert_close(y, on_reference(ops.ilwt53_forward, x, rounding=False), **tol)
    back = on_native(ops.ilwt53_inverse, y, shape[2:], rounding=False)
    torch.testing.assert_close(back, on_reference(ops.ilwt53_inverse, y, shape[2:], rounding=False), **tol)
    torch.testing.assert_close(back, x, **tol)


@pytest.mark.parametrize("shape", SHAPES[:8], ids=ids[:8])
def test_reference_round_trip_is_exact(shape):
    x = _image(shape, torch.int32, low=-1000, high=1000)
    assert torch.equal(reference.ilwt53_inverse(reference.ilwt53_forward(x), shape[2:]), x)


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("shape", [(0, 3, 8, 7), (2, 0, 8, 7)])
def test_empty_batches(backend, shape):
    if backend == "native" and not stegafast.native_available():
        pytest.skip("stegafast._C is not loaded")
    with use_backend(backend):
        y = ops.ilwt53_forward(torch.zeros(shape))
        x = ops.ilwt53_inverse(y, shape[2:])
    assert y.shape == (shape[0], 4 * shape[1], 4, 4) and x.shape == shape


# --- gradients ---------------------------------------------------------------


def _grads(fn, inp, cotangent):
    inp = inp.detach().requires_grad_()
    (grad,) = torch.autograd.grad(fn(inp), inp, cotangent)
    return grad


@requires_native
@pytest.mark.parametrize("shape", SHAPES[::2], ids=ids[::2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_native_gradients_match_reference(shape, dtype):
    x = _image(shape, dtype)
    y = ops.ilwt53_forward(x)
    gy, gx = torch.randn(y.shape).to(dtype), torch.randn(x.shape).to(dtype)
    tol = {} if dtype == torch.float32 else dict(atol=0.05, rtol=0.02)
    for rounding in (True, False):
        fwd = lambda t, r=rounding: ops.ilwt53_forward(t, rounding=r)  # noqa: E731
        inv = lambda t, r=rounding: ops.ilwt53_inverse(t, shape[2:], rounding=r)  # noqa: E731
        torch.testing.assert_close(on_native(_grads, fwd, x, gy), on_reference(_grads, fwd, x, gy), **tol)
        torch.testing.assert_close(on_native(_grads, inv, y, gx), on_reference(_grads, inv, y, gx), **tol)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_rounding_passes_gradients_straight_through(backend):
    if backend == "native" and not stegafast.native_available():
        pytest.skip("stegafast._C is not loaded")
    x = torch.rand(2, 3, 9, 12, dtype=torch.float64) * 255
    cot = torch.randn(2, 12, 5, 6, dtype=torch.float64)
    with use_backend(backend):
        rounded = _grads(lambda t: ops.ilwt53_forward(t, rounding=True), x, cot)
        linear = _grads(lambda t: ops.ilwt53_forward(t, rounding=False), x, cot)
    torch.testing.assert_close(rounded, linear, atol=1e-12, rtol=0)


# --- direct calls -------------------------------------------------------------


@requires_native
def test_direct_native_call_checks_shapes_too():
    with pytest.raises(RuntimeError, match="cannot come from"):
        torch.ops.stegafast.ilwt53_inverse(torch.zeros(1, 4, 2, 2), [9, 4], True)


# --- CUDA ---------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.parametrize("shape", SHAPES, ids=ids)
@pytest.mark.parametrize("dtype", [torch.int32, torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_cuda_matches_cpu_reference(shape, dtype):
    x = _image(shape, dtype)
    y_ref = on_reference(ops.ilwt53_forward, x)
    y = on_native(ops.ilwt53_forward, x.cuda())
    assert torch.equal(y.cpu(), y_ref)
    back = on_native(ops.ilwt53_inverse, y, shape[2:])
    assert torch.equal(back.cpu(), on_reference(ops.ilwt53_inverse, y_ref, shape[2:]))
    if dtype != torch.bfloat16:
        assert torch.equal(back.cpu(), x)


@pytest.mark.cuda
@pytest.mark.parametrize("shape", SHAPES[::2], ids=ids[::2])
def test_cuda_gradients_match_reference(shape):
    x = torch.randn(shape, dtype=torch.float64)
    y = ops.ilwt53_forward(x, rounding=False)
    gy, gx = torch.randn(y.shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    for rounding in (True, False):
        fwd = lambda t, r=rounding: ops.ilwt53_forward(t, rounding=r)  # noqa: E731
        inv = lambda t, r=rounding: ops.ilwt53_inverse(t, shape[2:], rounding=r)  # noqa: E731
        torch.testing.assert_close(on_native(_grads, fwd, x.cuda(), gy.cuda()).cpu(), on_reference(_grads, fwd, x, gy))
        torch.testing.assert_close(on_native(_grads, inv, y.cuda(), gx.cuda()).cpu(), on_reference(_grads, inv, y, gx))


@pytest.mark.cuda
def test_cuda_gradcheck_and_opcheck():
    x = torch.randn(2, 2, 7, 5, dtype=torch.float64, device="cuda", requires_grad=True)
    y = torch.randn(2, 8, 4, 3, dtype=torch.float64, device="cuda", requires_grad=True)
    with use_backend("native"):
        assert gradcheck(lambda t: ops.ilwt53_forward(t, rounding=False), (x,))
        assert gradcheck(lambda t: ops.ilwt53_inverse(t, (7, 5), rounding=False), (y,))
    op = torch.ops.stegafast
    torch.library.opcheck(op.ilwt53_forward, (x, False))
    torch.library.opcheck(op.ilwt53_inverse, (y, [7, 5], False))
    torch.library.opcheck(op.ilwt53_forward_backward, (y, [7, 5]))
    torch.library.opcheck(op.ilwt53_inverse_backward, (x,))


# --- the baseline CPU build (the AVX2 one runs wherever the CPU has it) -------

BASELINE_CHECK = """
import torch, stegafast
from stegafast import ops, use_backend, _native
assert _native.status().cpu_variant == "baseline", _native.status().cpu_variant
torch.manual_seed(0)
for shape in [(1, 1, 2, 2), (2, 3, 7, 9), (3, 2, 33, 18), (1, 1, 64, 65)]:
    for dtype in (torch.float32, torch.float64):
        x = torch.randint(-300, 300, shape).to(dtype)
        for rounding in (True, False):
            if not rounding:
                x = torch.randn(shape, dtype=dtype)
            with use_backend("reference"):
                y_ref = ops.ilwt53_forward(x, rounding)
                x_ref = ops.ilwt53_inverse(y_ref, shape[2:], rounding)
            with use_backend("native"):
                y = ops.ilwt53_forward(x, rounding)
                back = ops.ilwt53_inverse(y_ref, shape[2:], rounding)
                gx = torch.ops.stegafast.ilwt53_forward_backward(y_ref, list(shape[2:]))
                gy = torch.ops.stegafast.ilwt53_inverse_backward(x)
            tol = dict(rtol=0, atol=0) if rounding else dict(rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(y, y_ref, **tol)
            torch.testing.assert_close(back, x_ref, **tol)
            xr = x.clone().requires_grad_()
            yr = stegafast.reference.ilwt53_forward(xr, False)
            (g_ref,) = torch.autograd.grad(yr, xr, y_ref)
            torch.testing.assert_close(gx, g_ref, rtol=1e-4, atol=1e-3)
            yq = y_ref.clone().requires_grad_()
            (gy_ref,) = torch.autograd.grad(stegafast.reference.ilwt53_inverse(yq, shape[2:], False), yq, x)
            torch.testing.assert_close(gy, gy_ref, rtol=1e-4, atol=1e-3)
print("baseline ok")
"""


@requires_native
def test_baseline_cpu_build_matches_the_reference():
    run_on_baseline_cpu_build(BASELINE_CHECK)
