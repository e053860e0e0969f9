"""Windowed attention: native against the reference over the issue's shapes (with and
without bias and mask, fully masked rows, non-contiguous inputs, batch 1), half types,
the log-sum-exp output, gradients (gradcheck in float64 of all four, deterministic dbias),
operator registration, compile, autocast, bad input, the other CPU builds, and CUDA."""

import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from kernel_testing import BadInput, Call, KernelTester
from testutils import requires_native, run_on_baseline_cpu_build

from stegafast import ops, reference, use_backend

TOKENS = (1, 16, 49, 64, 144, 256)
HEAD_DIMS = (8, 16, 32, 64)
EXTRAS = ("plain", "bias", "mask", "bias+mask")
# fewer windows for longer rows keeps the reference (and the suite) quick
WINDOWS = {1: 6, 16: 8, 49: 4, 64: 4, 144: 2, 256: 2}


def _inputs(windows, heads, n, d, extras="bias+mask", dtype=torch.float32, mask_windows=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(windows, heads, n, d, generator=gen, dtype=torch.float64).to(dtype) for _ in range(3))
    bias = torch.randn(heads, n, n, generator=gen, dtype=torch.float64).to(dtype) if "bias" in extras else None
    mask = None
    if "mask" in extras:
        nw = math.gcd(windows, mask_windows)
        # Swin's shift mask: 0 or a large negative number, here with -inf too
        mask = torch.where(torch.rand(nw, n, n, generator=gen) < 0.3, -100.0, 0.0).to(dtype)
        mask[..., 0] = 0.0  # every row keeps one key
        mask[0, :, -1] = float("-inf")
    return q, k, v, bias, mask


def _run(backend, q, k, v, bias=None, mask=None, scale=None):
    with use_backend(backend):
        return ops.window_attention(q, k, v, bias=bias, mask=mask, scale=scale)


def _grads(backend, q, k, v, bias, mask, grad_out, scale=None):
    leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    b = bias.detach().clone().requires_grad_() if bias is not None else None
    out = _run(backend, *leaves, b, mask, scale)
    wrt = leaves + ([b] if b is not None else [])
    return out, torch.autograd.grad(out, wrt, grad_out)


def _tol(dtype):
    return {
        torch.float32: dict(atol=2e-5, rtol=1e-4),
        torch.float64: dict(atol=1e-12, rtol=1e-10),
        torch.float16: dict(atol=2e-3, rtol=2e-3),
        torch.bfloat16: dict(atol=2e-2, rtol=2e-2),
    }[dtype]


def _attend(q, k, v, bias, mask, scale=None):
    """ops.window_attention with every tensor positional (as the battery passes them)."""
    return ops.window_attention(q, k, v, bias=bias, mask=mask, scale=scale)


def _attend_and_grads(q, k, v, bias, mask):
    """(out, dq, dk, dv[, dbias]) for a cotangent fixed by the shape: parity of the forward
    and of the native backward in one call."""
    grad_out = torch.randn(q.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64).to(q.dtype)
    leaves = [t.detach().requires_grad_() for t in (q, k, v)] + (
        [bias.detach().requires_grad_()] if bias is not None else []
    )
    out = _attend(*leaves[:3], leaves[3] if bias is not None else None, mask)
    return (out.detach(), *torch.autograd.grad(out, leaves, grad_out))


def _battery_shapes():
    """(windows, heads, N, d) over the issue's N and d, 1 to 8 heads across the grid."""
    return [(WINDOWS[n], 1 + (n + d) % 8, n, d) for n in TOKENS for d in HEAD_DIMS]


_Q = torch.zeros(4, 2, 16, 8)
_B = torch.zeros(2, 16, 16)
_M = torch.zeros(2, 16, 16)


def _bad(args, kwargs, error, message):
    return BadInput(ops.window_attention, args, error, message, kwargs)


class TestAttentionKernel(KernelTester):
    """The shared battery (kernel_testing.py): each parity call returns the output and
    the gradients of q, k, v and the bias, so the native backward is compared too."""

    kernel = "attention"
    op_names = ("window_attention",)  # the backward's policy: test_backward_keeps_its_inputs_dtypes_under_autocast
    autocast_policy = "lower"
    shapes = _battery_shapes()
    dtypes = (torch.float32, torch.float64)
    tolerances = {dtype: _tol(dtype) for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16)}
    grad_shapes = [(1, 1, 1, 2), (2, 2, 5, 3), (3, 1, 7, 4)]
    gradcheck_options = {"eps": 1e-6, "atol": 1e-6}
    compile_grad_tolerance = {"atol": 1e-4, "rtol": 1e-4}
    bad_inputs = [
        _bad(([[1.0]], _Q, _Q), {}, TypeError, "q must be a torch.Tensor"),
        _bad((_Q.int(), _Q, _Q), {}, TypeError, "q has dtype torch.int32"),
        _bad((torch.zeros(2, 16, 8), _Q, _Q), {}, ValueError, "q must have 4 dims"),
        _bad((torch.zeros(1, 1, 257, 8),) * 3, {}, ValueError, "N = 257 tokens per window; supported: 1..256"),
        _bad((torch.zeros(1, 1, 4, 129),) * 3, {}, ValueError, "d = 129 channels per head; supported: 1..128"),
        _bad((_Q, _Q[:, :, :8], _Q), {}, ValueError, r"k has shape \(4, 2, 8, 8\) but q has shape"),
        _bad((_Q, _Q, _Q.double()), {}, TypeError, "v has dtype torch.float64 but q has dtype torch.float32"),
        _bad((_Q, _Q, _Q), {"bias": torch.zeros(3, 16, 16)}, ValueError, r"bias must have shape \(heads, N, N\)"),
        _bad((_Q, _Q, _Q), {"bias": _B.half()}, TypeError, "bias has dtype torch.float16"),
        _bad((_Q, _Q, _Q), {"mask": torch.zeros(16, 16)}, ValueError, r"mask must have shape \(nW, N, N\)"),
        _bad(
            (_Q, _Q, _Q),
            {"mask": torch.zeros(3, 16, 16)},
            ValueError,
            "mask has 3 windows, which does not divide the 4",
        ),
        _bad((_Q, _Q, _Q), {"mask": _M.to(torch.int64)}, TypeError, "mask has dtype torch.int64"),
        _bad((_Q, _Q, _Q), {"mask": torch.zeros(2, 16, 16, device="meta")}, ValueError, "one device"),
        _bad((_Q, _Q, _Q), {"scale": float("nan")}, ValueError, "scale must be finite"),
        _bad((_Q, _Q, _Q), {"scale": torch.tensor(1.0)}, TypeError, "scale must be a number"),
    ]

    def output_tolerance(self, index, outputs, dtype):
        # gradients sum over up to 256 keys (and dbias over the windows)
        return self.tolerances[dtype] if index == 0 or dtype == torch.float64 else {"atol": 1e-4, "rtol": 1e-4}

    def check_native_output(self, call, outputs):
        q = call.args[0]
        assert outputs[0].shape == q.shape and outputs[0].dtype == q.dtype and outputs[0].is_contiguous()

    def parity_calls(self, shape, dtype):
        for extras in EXTRAS:
            yield Call(_attend_and_grads, _inputs(*shape, extras, dtype))

    def layout_calls(self):
        # q, k, v as Swin cuts them from one qkv projection, the bias gathered from its
        # table and permuted, the mask one window expanded; and batch 1
        windows, n, heads, d = 3, 49, 4, 16
        q, k, v = torch.randn(windows, n, 3, heads, d).permute(2, 0, 3, 1, 4).unbind(0)
        assert not q.is_contiguous()
        bias = torch.randn(169, heads)[torch.randint(0, 169, (n * n,))].view(n, n, heads).permute(2, 0, 1)
        mask = torch.zeros(1, n, n).expand(3, n, n)
        yield Call(_attend_and_grads, (q, k, v, bias, mask))
        yield Call(_attend_and_grads, (q[:1], k[:1], v[:1], bias, None))

    def gradcheck_calls(self, shape):
        for extras in ("plain", "bias+mask"):
            q, k, v, bias, mask = _inputs(*shape, extras, torch.float64, mask_windows=shape[0])
            for t in (q, k, v) + ((bias,) if bias is not None else ()):
                t.requires_grad_()
            yield Call(_attend, (q, k, v, bias, mask, 0.7))

    def opcheck_samples(self):
        op = torch.ops.stegafast
        samples = []
        for extras in ("plain", "bias+mask"):
            q, k, v, bias, mask = _inputs(4, 2, 16, 8, extras)
            grad_leaves = (q, k, v) + ((bias,) if bias is not None else ())
            _, lse = op.window_attention(q, k, v, bias, mask, 0.35)
            samples.append((op.window_attention_backward, (torch.randn(q.shape), q, k, v, bias, mask, lse, 0.35)))
            samples.append(
                (
                    op.window_attention,
                    (
                        *(t.clone().requires_grad_() for t in grad_leaves[:3]),
                        bias.clone().requires_grad_() if bias is not None else None,
                        mask,
                        0.35,
                    ),
                )
            )
        return samples

    def compile_case(self):
        q, k, v, bias, mask = _inputs(4, 2, 49, 16)
        bias.requires_grad_()
        return (lambda q, k, v, bias, mask: _attend(q * 1.5, k, v, bias, mask).sum(dim=1)), (q, k, v, bias, mask)

    def autocast_calls(self, dtype):
        yield Call(_attend, _inputs(4, 2, 16, 8, dtype=dtype))


# --- the reference --------------------------------------------------------------------------


@pytest.mark.parametrize("extras", EXTRAS)
def test_reference_equals_sdpa_with_the_combined_mask(extras):
    q, k, v, bias, mask = _inputs(4, 3, 49, 16, extras, torch.float64)
    combined = reference.attention.attention_scores(torch.zeros_like(q), k, bias=bias, mask=mask)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=combined)
    torch.testing.assert_close(reference.window_attention(q, k, v, bias=bias, mask=mask), want)


def test_reference_fully_masked_rows_are_zero_without_nan():
    q, k, v, _, _ = _inputs(2, 1, 5, 4, dtype=torch.float64)
    mask = torch.zeros(1, 5, 5, dtype=torch.float64)
    mask[0, 2] = float("-inf")
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    out = reference.window_attention(*leaves, mask=mask)
    assert torch.equal(out[:, :, 2], torch.zeros_like(out[:, :, 2]))
    grads = torch.autograd.grad(out.sum(), leaves)
    assert all(torch.isfinite(g).all() for g in grads)
    assert torch.equal(grads[0][:, :, 2], torch.zeros_like(grads[0][:, :, 2]))


# --- native against the reference ------------------------------------------------------------


@requires_native
@pytest.mark.parametrize(
    "shape",
    [(1, 1, 1, 1), (1, 8, 49, 32), (3, 2, 7, 5), (5, 3, 33, 127), (2, 1, 256, 128)],
    ids=lambda s: "x".join(map(str, s)),
)
def test_float64_and_odd_sizes_match_reference(shape):
    q, k, v, bias, mask = _inputs(*shape, dtype=torch.float64, mask_windows=shape[0])
    grad_out = torch.randn(q.shape, dtype=torch.float64)
    got, got_grads = _grads("native", q, k, v, bias, mask, grad_out, scale=0.3)
    want, want_grads = _grads("reference", q, k, v, bias, mask, grad_out, scale=0.3)
    torch.testing.assert_close(got, want, **_tol(torch.float64))
    for g, w in zip(got_grads, want_grads):
        torch.testing.assert_close(g, w, **_tol(torch.float64))


@requires_native
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_types_match_the_float32_reference(dtype):
    q, k, v, bias, mask = _inputs(4, 2, 49, 32, dtype=dtype)
    grad_out = torch.randn(q.shape).to(dtype)
    got, got_grads = _grads("native", q, k, v, bias, mask, grad_out)
    assert got.dtype == dtype and all(g.dtype == dtype for g in got_grads)
    f32 = [t.float() if t is not None else None for t in (q, k, v, bias, mask)]
    want, want_grads = _grads("reference", *f32, grad_out.float())
    torch.testing.assert_close(got.float(), want, **_tol(dtype))
    for g, w in zip(got_grads, want_grads):
        torch.testing.assert_close(g.float(), w, atol=5 * _tol(dtype)["atol"], rtol=5 * _tol(dtype)["rtol"])


@requires_native
def test_fully_masked_rows_give_zeros_and_zero_gradients():
    q, k, v, bias, _ = _inputs(4, 2, 16, 8)
    mask = torch.zeros(2, 16, 16)
    mask[0, 3] = float("-inf")  # row 3 of every even window
    mask[1, :, 5:] = float("-inf")  # odd windows see keys 0..4 only
    grad_out = torch.randn(q.shape)
    got, got_grads = _grads("native", q, k, v, bias, mask, grad_out)
    want, want_grads = _grads("reference", q, k, v, bias, mask, grad_out)
    assert torch.equal(got[0::2, :, 3], torch.zeros_like(got[0::2, :, 3]))
    assert torch.equal(got_grads[0][0::2, :, 3], torch.zeros_like(got_grads[0][0::2, :, 3]))
    torch.testing.assert_close(got, want, **_tol(torch.float32))
    for g, w in zip(got_grads, want_grads):
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4)


@requires_native
def test_lse_is_the_rows_log_sum_exp():
    q, k, v, bias, mask = _inputs(4, 3, 49, 32)
    mask[1, 7] = float("-inf")
    out, lse = torch.ops.stegafast.window_attention(q, k, v, bias, mask, 0.25)
    assert lse.shape == (4, 3, 49) and lse.dtype == torch.float32
    assert torch.equal(out[1::2, :, 7], torch.zeros_like(out[1::2, :, 7]))
    scores = reference.attention.attention_scores(q, k, bias=bias, mask=mask, scale=0.25)
    torch.testing.assert_close(lse, torch.logsumexp(scores, dim=-1), atol=1e-5, rtol=1e-5)
    assert torch.isneginf(lse[1::2, :, 7]).all()
    _, lse64 = torch.ops.stegafast.window_attention(q.double(), k.double(), v.double(), None, None, 0.25)
    assert lse64.dtype == torch.float64


@requires_native
def test_empty_batch():
    q = torch.zeros(0, 2, 16, 8)
    assert _run("native", q, q, q).shape == q.shape


# --- gradients ----------------------------------------------------------------------------------


@requires_native
def test_bias_gradient_does_not_depend_on_the_thread_count():
    q, k, v, bias, mask = _inputs(64, 3, 49, 32)
    grad_out = torch.randn(q.shape)
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            results.append(_grads("native", q, k, v, bias, mask, grad_out)[1])
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other))


@requires_native
def test_double_backward_raises_a_clear_error():
    q, k, v, bias, _ = _inputs(1, 1, 4, 4)
    q.requires_grad_()
    out = _run("native", q, k, v, bias)
    (g,) = torch.autograd.grad(out.sum(), q, create_graph=True)
    with pytest.raises(NotImplementedError, match="double backward"):
        g.sum().backward()


@requires_native
def test_direct_native_calls_check_their_inputs_too():
    op = torch.ops.stegafast
    with pytest.raises(RuntimeError, match="N .tokens per window. must be 1..256"):
        op.window_attention(*(torch.zeros(1, 1, 300, 8),) * 3, None, None, 1.0)
    with pytest.raises(RuntimeError, match="does not divide"):
        op.window_attention(_Q, _Q, _Q, None, torch.zeros(3, 16, 16), 1.0)
    with pytest.raises(RuntimeError, match="bias must have shape"):
        op.window_attention(_Q, _Q, _Q, torch.zeros(16, 16), None, 1.0)
    _, lse = op.window_attention(_Q, _Q, _Q, None, None, 1.0)
    with pytest.raises(RuntimeError, match="lse must have shape"):
        op.window_attention_backward(_Q, _Q, _Q, _Q, None, None, lse[:, :1], 1.0)


# --- the other CPU builds -------------------------------------------------------------------------

# native against the reference in a fresh process on a chosen CPU build; prints "<build> ok"
_BUILD_CHECK = """
import torch, stegafast
from stegafast import _native, ops, use_backend
torch.manual_seed(0)
q, k, v = (torch.randn(4, 3, 49, 32, requires_grad=True) for _ in range(3))
bias = torch.randn(3, 49, 49, requires_grad=True)
mask = torch.where(torch.rand(2, 49, 49) < 0.3, -100.0, 0.0)
grads = []
for backend in ("native", "reference"):
    with use_backend(backend):
        out = ops.window_attention(q, k, v, bias=bias, mask=mask)
    grads.append((out, *torch.autograd.grad(out.square().sum(), (q, k, v, bias))))
for a, b in zip(*grads):
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
print(_native.status().cpu_variant, "ok")
"""


@requires_native
def test_baseline_cpu_build_matches_reference():
    run_on_baseline_cpu_build(_BUILD_CHECK)


@requires_native
def test_avx2_build_matches_reference_where_avx512_would_run():
    # STEGAFAST_CPU_VARIANT=avx2 keeps the attention kernels off their AVX-512 build
    out = subprocess.run(
        [sys.executable, "-c", _BUILD_CHECK],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "STEGAFAST_CPU_VARIANT": "avx2"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ok" in out.stdout


# --- CUDA ---------------------------------------------------------------------------------------------


@pytest.mark.cuda
@requires_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    "shape",
    [(6, 3, 49, 32), (4, 4, 64, 32), (9, 2, 16, 8), (2, 2, 256, 128), (3, 1, 1, 5), (5, 8, 144, 64), (2, 3, 37, 100)],
    ids=lambda s: "x".join(map(str, s)),
)
def test_cuda_matches_cpu(shape, dtype):
    q, k, v, bias, mask = _inputs(*shape, dtype=dtype, mask_windows=shape[0])
    mask[..., 1] = float("-inf") if shape[2] > 1 else 0.0
    if shape[0] > 1:
        mask[0, 0] = float("-inf")  # a fully masked row
    grad_out = torch.randn(q.shape).to(dtype)
    want, want_grads = _grads("native", q, k, v, bias, mask, grad_out)
    cuda = [t.cuda() for t in (q, k, v, bias, mask)]
    got, got_grads = _grads("native", *cuda, grad_out.cuda())
    tol = _tol(dtype) if dtype != torch.float32 else dict(atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got.cpu(), want, **tol)
    for g, w in zip(got_grads, want_grads):
        torch.testing.assert_close(g.cpu(), w, atol=10 * tol["atol"], rtol=10 * tol["rtol"])


@pytest.mark.cuda
@requires_native
def test_cuda_without_bias_and_mask_and_lse():
    q, k, v, _, _ = _inputs(8, 4, 64, 32)
    out, lse = torch.ops.stegafast.window_attention(q.cuda(), k.cuda(), v.cuda(), None, None, 0.2)
    want, want_lse = torch.ops.stegafast.window_attention(q, k, v, None, None, 0.2)
    torch.testing.assert_close(out.cpu(), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(lse.cpu(), want_lse, atol=1e-5, rtol=1e-5)


# float16 and bfloat16 on CUDA run the forward on tensor cores (sm_80 and later): the scores
# accumulate in float32 and the softmax is float32, but the probabilities are rounded to the
# half type before P @ V, so the output errs by about that rounding (2^-11 for float16, 2^-8
# for bfloat16, relative) on top of rounding the output itself.
HALF_TYPES = (torch.float16, torch.bfloat16)
TENSOR_CORE_HEAD_DIMS = (8, 32, 64, 128)


def _half_forward_tol(dtype):
    return {torch.float16: dict(atol=5e-3, rtol=5e-3), torch.bfloat16: dict(atol=3e-2, rtol=3e-2)}[dtype]


def _misaligned(t):
    """t's values in a contiguous tensor whose data starts one element past an allocation
    (not 16-byte aligned), so the kernels must take their element-wise loads."""
    flat = torch.empty(t.numel() + 1, dtype=t.dtype, device=t.device)
    out = flat[1:].view(t.shape)
    out.copy_(t)
    return out


def _check_half_forward(device, n, d, dtype, extras="bias+mask", misaligned=False):
    """The native forward (out and lse) on `device` against the reference computed in float32
    from the same half inputs, with a fully masked row where there are two windows or more."""
    q, k, v, bias, mask = _inputs(WINDOWS.get(n, 3), 1 + (n + d) % 4, n, d, extras, dtype)
    if mask is not None and q.shape[0] > 1:
        mask[0, 0] = float("-inf")  # window 0 (and every nW-th), row 0: every key masked
    scale = d**-0.5
    ref = [t.float() if t is not None else None for t in (q, k, v, bias, mask)]
    want = reference.window_attention(*ref[:3], bias=ref[3], mask=ref[4], scale=scale)
    scores = reference.attention.attention_scores(*ref[:2], bias=ref[3], mask=ref[4], scale=scale)
    want_lse = torch.logsumexp(scores, -1)
    on_device = [t.to(device) if t is not None else None for t in (q, k, v, bias, mask)]
    if misaligned:
        on_device[:3] = [_misaligned(t) for t in on_device[:3]]
    out, lse = torch.ops.stegafast.window_attention(*on_device, scale)
    assert out.dtype == dtype and lse.dtype == torch.float32
    torch.testing.assert_close(out.float().cpu(), want, **_half_forward_tol(dtype))
    torch.testing.assert_close(lse.cpu(), want_lse, atol=2e-4, rtol=2e-4)
    if mask is not None and q.shape[0] > 1:
        assert not out[0, :, 0].any() and torch.isneginf(lse[0, :, 0]).all()


@pytest.mark.cuda
@requires_native
@pytest.mark.parametrize("dtype", HALF_TYPES)
@pytest.mark.parametrize("d", TENSOR_CORE_HEAD_DIMS)
@pytest.mark.parametrize("n", TOKENS)
def test_cuda_half_forward_matches_float32_reference(n, d, dtype):
    _check_half_forward("cuda", n, d, dtype)


@pytest.mark.cuda
@requires_native
@pytest.mark.parametrize("dtype", HALF_TYPES)
@pytest.mark.parametrize(("n", "d", "extras"), [(49, 32, "plain"), (144, 64, "bias"), (37, 100, "mask")])
def test_cuda_half_forward_other_extras_and_odd_sizes(n, d, extras, dtype):
    _check_half_forward("cuda", n, d, dtype, extras)


@pytest.mark.cuda
@requires_native
@pytest.mark.parametrize("dtype", HALF_TYPES)
@pytest.mark.parametrize(("n", "d"), [(49, 32), (256, 128), (16, 5)])
def test_cuda_half_forward_unaligned_inputs(n, d, dtype):
    _check_half_forward("cuda", n, d, dtype, misaligned=True)


def _half_grad_tol(dtype, want):
    """The tensor-core backward also rounds p and ds to the half type before its products,
    so a gradient errs by a fraction of its largest entry (an emulation of those roundings
    over the grid below stays under a third of these)."""
    fraction, rtol = {torch.float16: (2e-3, 1e-2), torch.bfloat16: (1.5e-2, 5e-2)}[dtype]
    return dict(atol=fraction * max(want.abs().max().item(), 1e-3), rtol=rtol)


def _check_half_backward(device, n, d, dtype):
    """The native dq, dk, dv and dbias on `device` against the float32 reference's autograd
    from the same half inputs, with bias, mask and a fully masked row (zero gradients)."""
    q, k, v, bias, mask = _inputs(WINDOWS[n], 1 + (n + d) % 4, n, d, "bias+mask", dtype)
    if q.shape[0] > 1:
        mask[0, 0] = float("-inf")
    grad_out = torch.randn(q.shape, generator=torch.Generator().manual_seed(3)).to(dtype)
    leaves = [t.float().requires_grad_() for t in (q, k, v, bias)]
    out = reference.window_attention(*leaves[:3], bias=leaves[3], mask=mask.float())
    wants = torch.autograd.grad(out, leaves, grad_out.float())
    got, gots = _grads("native", *(t.to(device) for t in (q, k, v, bias, mask)), grad_out.to(device))
    for name, got_grad, want in zip(("dq", "dk", "dv", "dbias"), gots, wants):
        assert got_grad.dtype == dtype, name
        tol = _half_grad_tol(dtype, want)
        torch.testing.assert_close(got_grad.float().cpu(), want, **tol, msg=lambda m, name=name: f"{name}: {m}")
    if q.shape[0] > 1:
        assert not gots[0][0, :, 0].any()  # the fully masked row passes no gradient to q


@pytest.mark.cuda
@requires_native
@pytest.mark.parametrize("dtype", HALF_TYPES)
@pytest.mark.parametrize("d", TENSOR_CORE_HEAD_DIMS)
@pytest.mark.parametrize("n", TOKENS)
def test_cuda_half_backward_matches_float32_reference(n, d, dtype):
    _check_half_backward("cuda", n, d, dtype)


@pytest.mark.cuda
@requires_native
@pytest.mark.parametrize("dtype", HALF_TYPES)
def test_cuda_half_types_run_on_tensor_cores(dtype):
    if torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("the tensor-core kernels need sm_80 or later")
    q, k, v, bias, mask = (t.cuda() for t in _inputs(4, 2, 49, 32, dtype=dtype))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        out, lse = torch.ops.stegafast.window_attention(q, k, v, bias, mask, 0.2)
        torch.ops.stegafast.window_attention_backward(torch.ones_like(out), q, k, v, bias, mask, lse, 0.2)
        torch.cuda.synchronize()
    names = {event.name for event in prof.events()}
    for kernel in ("tensor_core_forward_kernel", "tensor_core_grad_q_kernel", "tensor_core_grad_kv_kernel"):
        assert any(kernel in name for name in names), (kernel, sorted(names))


@requires_native
def test_backward_keeps_its_inputs_dtypes_under_autocast():
    """The backward is declared "keep": its inputs are the forward's saved tensors, already in the lowered dtype,
    and lse float32. ("lower" cast lse to bfloat16 where AOTAutograd traces the backward inside the forward's
    autocast region: torch.compile with bf16 autocast failed in the attention families.)"""
    from stegafast.ops import registration

    assert {op.name: op for op in registration.declared()}["window_attention_backward"].autocast == "keep"
    q, k, v = (torch.randn(4, 2, 16, 8, requires_grad=True) for _ in range(3))

    def loss(q, k, v):
        return ops.window_attention(q, k, v).float().sum()

    with torch.autocast("cpu", dtype=torch.bfloat16):
        compiled = torch.compile(loss, backend="aot_eager", fullgraph=True)(q, k, v)
    grads = torch.autograd.grad(compiled, (q, k, v))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        eager = loss(q, k, v)
    for got, want in zip(grads, torch.autograd.grad(eager, (q, k, v)), strict=True):
        torch.testing.assert_close(got, want)
