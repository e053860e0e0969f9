"""The fused affine coupling: native kernels against the reference, the
reference against the formulas, invertibility, gradients, deterministic logdet,
operator registration, compile, autocast and bad input."""

import math
import random

import pytest
import torch
from kernel_testing import BadInput, Call, KernelTester
from testutils import on_native, on_reference, requires_native, run_on_baseline_cpu_build
from torch.autograd import gradcheck, gradgradcheck

import stegafast
from stegafast import ops, reference, use_backend

CLAMP_FNS = ("tanh", "atan")


def _shapes(count, seed):
    """Random (B, ...) shapes of 2 to 5 dims: odd sizes, batch 1 to 40."""
    rng = random.Random(seed)
    fixed = [
        (1, 1),
        (1, 7),
        (3, 1, 1, 1),
        (1, 3, 5, 4),
        (2, 5, 17, 9),
        (40, 3, 4, 5),
        (2, 3, 4, 5, 6),
        (3, 5, 70, 70),
    ]  # the last: several 8192-element chunks per sample
    shapes = []
    for _ in range(count):
        ndim = rng.choice([2, 4, 4, 5])
        tail = [rng.randint(1, 23) for _ in range(ndim - 1)]
        shapes.append((rng.randint(1, 16), *tail))
    return fixed + shapes


SHAPES = _shapes(12, seed=3)
ids = ["x".join(map(str, s)) for s in SHAPES]


def _inputs(shape, dtype=torch.float32, scale=3.0):
    x, s_raw, t = (torch.randn(shape, dtype=torch.float64) for _ in range(3))
    return x.to(dtype), (scale * s_raw).to(dtype), t.to(dtype)


def _tol(dtype):
    return {
        torch.float32: dict(atol=2e-5, rtol=2e-5),
        torch.float64: dict(atol=1e-12, rtol=1e-12),
        torch.float16: dict(atol=2e-2, rtol=2e-2),
        torch.bfloat16: dict(atol=1e-1, rtol=5e-2),
    }[dtype]


def _logdet_tol(dtype, numel_per_sample):
    # a sum of numel float32 terms of size <= clamp: absolute error grows with it
    if dtype == torch.float64:
        return dict(atol=1e-10, rtol=1e-12)
    return dict(atol=2e-6 * numel_per_sample**0.5 + 1e-5, rtol=1e-5)


def _output(fn, index):
    """fn with one of its outputs alone: autograd hands the kernel zeros for the other."""

    def one(*args, **kwargs):
        return fn(*args, **kwargs)[index]

    return one


_GOOD = torch.zeros(2, 3, 4)


def _bad(args, kwargs, error, message, fn=ops.affine_coupling):
    return BadInput(fn, args, error, message, kwargs)


class TestCouplingKernel(KernelTester):
    """The shared battery (kernel_testing.py); logdet, a sum over each sample,
    gets a tolerance growing with the sample's size."""

    kernel = "coupling"
    op_names = (
        "affine_coupling",
        "affine_coupling_inverse",
        "affine_coupling_backward",
        "affine_coupling_inverse_backward",
    )
    shapes = SHAPES
    dtypes = (torch.float32, torch.float64)
    tolerances = {dtype: _tol(dtype) for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16)}
    grad_shapes = [(1, 3), (2, 3, 4), (3, 2, 3, 5), (2, 1, 2, 3, 2)]
    compile_grad_tolerance = _tol(torch.float32)
    bad_inputs = [
        _bad(([[1.0]], _GOOD, _GOOD), {}, TypeError, "x must be a torch.Tensor"),
        _bad((_GOOD, None, _GOOD), {}, TypeError, "s_raw must be a torch.Tensor"),
        _bad((_GOOD.int(), _GOOD, _GOOD), {}, TypeError, "x has dtype torch.int32"),
        _bad((torch.zeros(5), torch.zeros(5), torch.zeros(5)), {}, ValueError, "at least one dim after the batch"),
        _bad((torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0, 3)), {}, ValueError, "batch of at least 1"),
        _bad((_GOOD, torch.zeros(2, 3, 5), _GOOD), {}, ValueError, "s_raw has shape"),
        _bad((_GOOD, _GOOD, torch.zeros(2, 4, 3)), {}, ValueError, "t has shape"),
        _bad((_GOOD, _GOOD.double(), _GOOD), {}, TypeError, "s_raw has dtype torch.float64 but x"),
        _bad((_GOOD, _GOOD, torch.zeros(2, 3, 4, device="meta")), {}, ValueError, "t is on meta"),
        _bad((_GOOD, _GOOD, _GOOD), {"clamp": 0.0}, ValueError, "clamp must be finite and > 0"),
        _bad((_GOOD, _GOOD, _GOOD), {"clamp": -1}, ValueError, "clamp must be finite and > 0"),
        _bad((_GOOD, _GOOD, _GOOD), {"clamp": float("inf")}, ValueError, "clamp must be finite"),
        _bad((_GOOD, _GOOD, _GOOD), {"clamp": float("nan")}, ValueError, "clamp must be finite"),
        _bad((_GOOD, _GOOD, _GOOD), {"clamp": True}, TypeError, "clamp must be a number"),
        _bad((_GOOD, _GOOD, _GOOD), {"clamp": "2"}, TypeError, "clamp must be a number"),
        _bad((_GOOD, _GOOD, _GOOD), {"clamp_fn": "sigmoid"}, ValueError, "clamp_fn must be one of"),
        # the inverse names its first argument y
        _bad(
            (_GOOD, torch.zeros(2, 3), _GOOD),
            {},
            ValueError,
            "affine_coupling_inverse: s_raw has shape .* but y has shape",
            fn=ops.affine_coupling_inverse,
        ),
    ]

    def output_tolerance(self, index, outputs, dtype):
        if outputs[index].dim() == 1:  # a logdet
            return _logdet_tol(dtype, math.prod(outputs[0].shape[1:]))
        return _tol(dtype)

    def check_native_output(self, call, outputs):
        x = call.args[0]
        out, logdet = outputs
        assert out.shape == x.shape and out.dtype == x.dtype and out.is_contiguous()
        assert logdet.shape == (x.shape[0],) and logdet.dtype == x.dtype

    def parity_calls(self, shape, dtype):
        x, s_raw, t = _inputs(shape, dtype)
        for clamp_fn in CLAMP_FNS:
            for clamp in (0.5, 2.0, 5.0):
                for fn in (ops.affine_coupling, ops.affine_coupling_inverse):
                    yield Call(fn, (x, s_raw, t, clamp, clamp_fn))

    def layout_calls(self):
        base = torch.randn(4, 10, 9, 8)
        h = torch.randn(4, 10, 9, 8) * 2
        cases = [
            # channel halves: samples contiguous but apart (read in place)
            (base[:, :5], h[:, :5], h[:, 5:]),
            # transposed, strided and channels_last: copied first
            (base.transpose(2, 3), h.transpose(2, 3), base.transpose(2, 3) * 0.5),
            (base[..., ::2], h[..., ::2], h[..., 1::2]),
            tuple(v.contiguous(memory_format=torch.channels_last) for v in (base, h, base * 2)),
            # one sample expanded over the batch (batch stride 0)
            (base[:1].expand(4, -1, -1, -1), h, base),
            # mixed layouts
            (base, h.contiguous(memory_format=torch.channels_last), h.transpose(2, 3).contiguous().transpose(2, 3)),
        ]
        for x, s_raw, t in cases:
            for fn in (ops.affine_coupling, ops.affine_coupling_inverse):
                yield Call(fn, (x, s_raw, t, 2.0, "tanh"))

    def gradcheck_calls(self, shape):
        args = tuple(v.requires_grad_() for v in _inputs(shape, torch.float64, scale=1.5))
        for clamp_fn in CLAMP_FNS:
            for fn in (ops.affine_coupling, ops.affine_coupling_inverse):
                for one_of in (fn, _output(fn, 1), _output(fn, 0)):
                    yield Call(one_of, args, dict(clamp=1.7, clamp_fn=clamp_fn))

    def opcheck_samples(self):
        op = torch.ops.stegafast
        samples = []
        for shape in [(1, 3), (2, 3, 5, 4)]:
            for dtype in (torch.float32, torch.float64):
                x, s_raw, t = (v.requires_grad_() for v in _inputs(shape, dtype, scale=1.0))
                gl = torch.randn(shape[0], dtype=dtype)
                plain = [v.detach() for v in (x, s_raw, t)]
                for clamp_fn in CLAMP_FNS:
                    samples += [
                        (op.affine_coupling, (x, s_raw, t, 2.0, clamp_fn)),
                        (op.affine_coupling_inverse, (x, s_raw, t, 0.7, clamp_fn)),
                        (op.affine_coupling_backward, (plain[2], gl, plain[0], plain[1], 2.0, clamp_fn)),
                        (op.affine_coupling_inverse_backward, (plain[2], gl, plain[0], plain[1], 2.0, clamp_fn)),
                    ]
        return samples

    def compile_case(self):
        def flow(x, s_raw, t):
            y, logdet = ops.affine_coupling(x, s_raw, t, 2.0, "tanh")
            back, inv_logdet = ops.affine_coupling_inverse(y * 1, s_raw, t, 2.0, "tanh")
            return y, logdet, back, inv_logdet

        return flow, tuple(v.requires_grad_() for v in _inputs((2, 3, 7, 5)))

    def compile_loss(self, outputs):
        y, logdet = outputs[:2]
        return y.sum() + logdet.sum()

    def check_compiled(self, outputs, args):
        _, logdet, back, inv_logdet = outputs
        torch.testing.assert_close(back, args[0].detach(), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(inv_logdet, -logdet)

    def autocast_calls(self, dtype):
        x, s_raw, t = _inputs((2, 3, 9, 10), dtype)
        yield Call(ops.affine_coupling, (x, s_raw, t))
        yield Call(ops.affine_coupling_inverse, (ops.affine_coupling(x, s_raw, t)[0], s_raw, t))


# --- the reference against the formulas --------------------------------------------


@pytest.mark.parametrize("clamp_fn", CLAMP_FNS)
def test_reference_follows_the_formulas(clamp_fn):
    x, s_raw, t = 1.5, -0.7, 0.25
    clamp = 2.0
    s = clamp * math.tanh(s_raw / clamp) if clamp_fn == "tanh" else clamp * 0.636 * math.atan(s_raw / clamp)
    xs, rs, ts = (torch.full((1, 1), v, dtype=torch.float64) for v in (x, s_raw, t))
    y, logdet = reference.affine_coupling(xs, rs, ts, clamp, clamp_fn)
    assert y.item() == pytest.approx(x * math.exp(s) + t, abs=1e-15)
    assert logdet.item() == pytest.approx(s, abs=1e-15)
    back, inv_logdet = reference.affine_coupling_inverse(y, rs, ts, clamp, clamp_fn)
    assert back.item() == pytest.approx(x, abs=1e-15)
    assert inv_logdet.item() == pytest.approx(-s, abs=1e-15)


def test_the_atan_clamp_keeps_the_seeds_constant():
    s = reference.coupling.clamped_scale(torch.tensor([1e15], dtype=torch.float64), 2.0, "atan")
    assert s.item() == pytest.approx(2.0 * 0.636 * math.pi / 2, rel=1e-9)


def test_logdet_sums_every_non_batch_dim():
    x, s_raw, t = _inputs((3, 2, 4, 5), torch.float64)
    _, logdet = reference.affine_coupling(x, s_raw, t)
    assert logdet.shape == (3,)
    s = 2.0 * torch.tanh(s_raw / 2.0)
    torch.testing.assert_close(logdet, s.sum((1, 2, 3)))


# --- native against reference ---------------------------------------------------------


_REFERENCE_OF = {
    ops.affine_coupling: reference.affine_coupling,
    ops.affine_coupling_inverse: reference.affine_coupling_inverse,
}


@requires_native
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES[::3], ids=ids[::3])
def test_half_types_match_the_float32_reference(shape, dtype):
    x, s_raw, t = _inputs(shape, dtype)
    for clamp_fn in CLAMP_FNS:
        for fn in (ops.affine_coupling, ops.affine_coupling_inverse):
            out, logdet = on_native(fn, x, s_raw, t, 1.5, clamp_fn)
            out32, logdet32 = _REFERENCE_OF[fn](x.float(), s_raw.float(), t.float(), 1.5, clamp_fn)
            assert out.dtype == dtype and logdet.dtype == torch.float32
            torch.testing.assert_close(out, out32.to(dtype), **_tol(dtype))
            torch.testing.assert_close(logdet, logdet32, **_logdet_tol(torch.float32, math.prod(shape[1:])))


@requires_native
def test_empty_samples_have_zero_logdet():
    x = torch.zeros(3, 0, 4)
    for backend in ("native", "reference"):
        with use_backend(backend):
            y, logdet = ops.affine_coupling(x, x, x)
            back, inv_logdet = ops.affine_coupling_inverse(x, x, x)
        assert y.shape == x.shape and back.shape == x.shape
        assert torch.equal(logdet, torch.zeros(3)) and torch.equal(inv_logdet, torch.zeros(3))


@requires_native
@pytest.mark.parametrize("clamp_fn", CLAMP_FNS)
def test_overflow_and_nan_follow_the_reference(clamp_fn):
    # clamp 200 lets s pass log(FLT_MAX) ~ 88.7: exp overflows to inf in both
    x = torch.ones(2, 9)
    s_raw = torch.tensor([[-400.0, -150.0, -89.0, -10.0, 0.0, 10.0, 88.0, 150.0, 400.0]] * 2)
    s_raw[1, 4] = float("nan")
    t = torch.zeros(2, 9)
    y, logdet = on_native(ops.affine_coupling, x, s_raw, t, 200.0, clamp_fn)
    y_ref, logdet_ref = on_reference(ops.affine_coupling, x, s_raw, t, 200.0, clamp_fn)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-30, equal_nan=True)
    assert torch.isinf(y).tolist() == torch.isinf(y_ref).tolist()
    assert torch.isnan(logdet).tolist() == [False, True]
    torch.testing.assert_close(logdet[0], logdet_ref[0], rtol=1e-5, atol=1e-4)


# --- invertibility ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("clamp_fn", CLAMP_FNS)
def test_inverse_undoes_forward_in_float64(backend, clamp_fn):
    if backend == "native" and not stegafast.native_available():
        pytest.skip("stegafast._C is not loaded")
    for shape in [(1, 5), (3, 4, 9, 11), (2, 3, 4, 5, 6)]:
        x, s_raw, t = _inputs(shape, torch.float64)
        with use_backend(backend):
            y, logdet = ops.affine_coupling(x, s_raw, t, 1.3, clamp_fn)
            back, inv_logdet = ops.affine_coupling_inverse(y, s_raw, t, 1.3, clamp_fn)
        torch.testing.assert_close(back, x, atol=1e-10, rtol=0)
        torch.testing.assert_close(inv_logdet, -logdet, atol=1e-10, rtol=0)


# --- deterministic logdet -------------------------------------------------------------


@requires_native
def test_logdet_does_not_depend_on_the_thread_count():
    x, s_raw, t = _inputs((5, 6, 61, 67))  # ~24.5k elements a sample: several chunks
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 1):
            torch.set_num_threads(n)
            results.append([on_native(f, x, s_raw, t)[1] for f in (ops.affine_coupling, ops.affine_coupling_inverse)])
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other))


# --- gradients -------------------------------------------------------------------------


def _grads(fn, args, cotangents):
    args = [a.detach().requires_grad_() for a in args]
    return torch.autograd.grad(fn(*args), args, cotangents)


@requires_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES[::2], ids=ids[::2])
def test_native_gradients_match_reference(shape, dtype):
    args = _inputs(shape, dtype, scale=2.0)
    cot = (torch.randn(shape).to(dtype), torch.randn(shape[0]))
    tol = _tol(dtype) if dtype == torch.float32 else dict(atol=0.1, rtol=0.05)
    for clamp_fn in CLAMP_FNS:
        for fn in (ops.affine_coupling, ops.affine_coupling_inverse):

            def call(a, r, t):
                return fn(a, r, t, 1.5, clamp_fn)  # noqa: B023

            native = on_native(_grads, call, args, cot)
            ref = on_reference(_grads, call, args, cot)
            for got, want in zip(native, ref):
                assert got.dtype == dtype
                torch.testing.assert_close(got, want, **tol)


@requires_native
def test_backward_of_sums_reads_expanded_gradients():
    # y.sum() + logdet.sum() hands the backward stride-0 gradients
    args = [v.requires_grad_() for v in _inputs((3, 4, 5, 6))]
    y, logdet = ops.affine_coupling(*args)
    (y.sum() + logdet.sum()).backward()
    expected = on_reference(
        _grads, lambda a, r, t: sum(v.sum() for v in reference.affine_coupling(a, r, t)), args, None
    )
    for arg, want in zip(args, expected):
        torch.testing.assert_close(arg.grad, want, **_tol(torch.float32))


@requires_native
def test_double_backward_raises_a_clear_error():
    args = [v.requires_grad_() for v in _inputs((2, 3, 4), torch.float64)]
    for fn in (ops.affine_coupling, ops.affine_coupling_inverse):
        y, logdet = on_native(fn, *args)
        grads = torch.autograd.grad(y.sum() + logdet.sum(), args, create_graph=True)
        with pytest.raises(NotImplementedError, match="double backward"):
            torch.autograd.grad(grads[1].sum(), args[1])
    with use_backend("reference"):  # the reference differentiates twice
        assert gradgradcheck(lambda a, r, t: ops.affine_coupling(a, r, t), args)


# --- direct calls ------------------------------------------------------------------------


@requires_native
def test_direct_native_calls_check_their_inputs_too():
    op = torch.ops.stegafast
    with pytest.raises(RuntimeError, match="clamp_fn must be"):
        op.affine_coupling(_GOOD, _GOOD, _GOOD, 2.0, "relu")
    with pytest.raises(RuntimeError, match="clamp must be finite and > 0"):
        op.affine_coupling_inverse(_GOOD, _GOOD, _GOOD, -2.0, "tanh")
    with pytest.raises(RuntimeError, match="t has shape"):
        op.affine_coupling(_GOOD, _GOOD, torch.zeros(2, 3, 5), 2.0, "tanh")
    with pytest.raises(RuntimeError, match="grad_logdet must be Float"):
        op.affine_coupling_backward(_GOOD, torch.zeros(2, dtype=torch.float64), _GOOD, _GOOD, 2.0, "tanh")
    with pytest.raises(RuntimeError, match="grad_logdet must have shape"):
        op.affine_coupling_inverse_backward(_GOOD, torch.zeros(3), _GOOD, _GOOD, 2.0, "tanh")


# --- the baseline CPU build (the AVX2 one runs wherever the CPU has it) --------------------

BASELINE_CHECK = """
import torch, stegafast
from stegafast import ops, use_backend, _native
assert _native.status().cpu_variant == "baseline", _native.status().cpu_variant
torch.manual_seed(0)
for shape in [(1, 3), (3, 5, 17, 9), (2, 4, 61, 67)]:
    x, r, t = torch.randn(shape), 3 * torch.randn(shape), torch.randn(shape)
    gy, gl = torch.randn(shape), torch.randn(shape[0])
    for clamp_fn in ("tanh", "atan"):
        for fn in (ops.affine_coupling, ops.affine_coupling_inverse):
            def grads():
                args = [v.clone().requires_grad_() for v in (x, r, t)]
                out = fn(*args, 1.5, clamp_fn)
                return out, torch.autograd.grad(out, args, (gy, gl))
            with use_backend("native"):
                (out, logdet), g = grads()
            with use_backend("reference"):
                (out_ref, logdet_ref), g_ref = grads()
            torch.testing.assert_close(out, out_ref, atol=2e-5, rtol=2e-5)
            torch.testing.assert_close(logdet, logdet_ref, atol=1e-3, rtol=1e-5)
            for a, b in zip(g, g_ref):
                torch.testing.assert_close(a, b, atol=2e-5, rtol=2e-5)
print("baseline ok")
"""


@requires_native
def test_baseline_cpu_build_matches_the_reference():
    run_on_baseline_cpu_build(BASELINE_CHECK)


# --- CUDA ---------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.parametrize("shape", SHAPES, ids=ids)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_cuda_matches_cpu_reference(shape, dtype):
    x, s_raw, t = _inputs(shape, dtype)
    for clamp_fn in CLAMP_FNS:
        for fn in (ops.affine_coupling, ops.affine_coupling_inverse):
            out, logdet = on_native(fn, x.cuda(), s_raw.cuda(), t.cuda(), 1.5, clamp_fn)
            out_ref, logdet_ref = on_reference(fn, x, s_raw, t, 1.5, clamp_fn)
            assert out.device.type == "cuda" and out.dtype == dtype
            torch.testing.assert_close(out.cpu(), out_ref, **_tol(dtype))
            torch.testing.assert_close(logdet.cpu(), logdet_ref, **_logdet_tol(dtype, math.prod(shape[1:])))


@pytest.mark.cuda
@pytest.mark.parametrize("shape", SHAPES[::2], ids=ids[::2])
def test_cuda_gradients_match_reference(shape):
    args = _inputs(shape, torch.float64, scale=2.0)
    cot = (torch.randn(shape, dtype=torch.float64), torch.randn(shape[0], dtype=torch.float64))
    for clamp_fn in CLAMP_FNS:
        for fn in (ops.affine_coupling, ops.affine_coupling_inverse):

            def call(a, r, t):
                return fn(a, r, t, 1.5, clamp_fn)  # noqa: B023

            got = on_native(_grads, call, [a.cuda() for a in args], [c.cuda() for c in cot])
            want = on_reference(_grads, call, args, cot)
            for g, w in zip(got, want):
                torch.testing.assert_close(g.cpu(), w)


@pytest.mark.cuda
def test_cuda_logdet_is_deterministic_and_channel_slices_work():
    h = torch.randn(6, 8, 65, 63, device="cuda")
    x = torch.randn(6, 4, 65, 63, device="cuda")
    first = on_native(ops.affine_coupling, x, h[:, :4], h[:, 4:])
    for _ in range(3):
        again = on_native(ops.affine_coupling, x, h[:, :4], h[:, 4:])
        assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    ref = on_reference(ops.affine_coupling, x.cpu(), h[:, :4].cpu(), h[:, 4:].cpu())
    torch.testing.assert_close(first[0].cpu(), ref[0], **_tol(torch.float32))
    torch.testing.assert_close(first[1].cpu(), ref[1], **_logdet_tol(torch.float32, 4 * 65 * 63))


@pytest.mark.cuda
def test_cuda_gradcheck_and_opcheck():
    args = tuple(v.cuda().requires_grad_() for v in _inputs((2, 3, 5, 4), torch.float64, scale=1.5))
    gl = torch.randn(2, dtype=torch.float64, device="cuda")
    with use_backend("native"):
        for clamp_fn in CLAMP_FNS:
            for fn in (ops.affine_coupling, ops.affine_coupling_inverse):
                assert gradcheck(lambda a, r, t: fn(a, r, t, 1.7, clamp_fn), args)  # noqa: B023
    op = torch.ops.stegafast
    plain = [a.detach() for a in args]
    torch.library.opcheck(op.affine_coupling, (*args, 2.0, "tanh"))
    torch.library.opcheck(op.affine_coupling_inverse, (*args, 2.0, "atan"))
    torch.library.opcheck(op.affine_coupling_backward, (plain[2], gl, plain[0], plain[1], 2.0, "tanh"))
    torch.library.opcheck(op.affine_coupling_inverse_backward, (plain[2], gl, plain[0], plain[1], 2.0, "atan"))
