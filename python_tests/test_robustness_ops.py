"""No silent wrong answers from the operators (issue 16): native kernels agree
with the reference over the whole input range of each dtype (int32 lifting from
INT32_MIN to INT32_MAX, floats beyond their integer range, inf and NaN), on
both CPU builds; a parameter that is valid as given but 0, inf or NaN in the
dtype the kernel reads it in is refused before any kernel runs; and an unknown
STEGAFAST_CPU_VARIANT is said, not ignored."""

import os
import subprocess
import sys

import pytest
import torch
from testutils import on_native, on_reference, requires_native, run_on_baseline_cpu_build

from stegafast import ops, reference

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
HERE = os.path.dirname(os.path.abspath(__file__))


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit for bit, NaN where NaN (integers compared exactly)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if not a.is_floating_point():
        return torch.equal(a, b)
    return torch.equal(torch.isnan(a), torch.isnan(b)) and torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0))


# --- lifting: int32 over its whole range -------------------------------------

SHAPES = [(1, 1, 2, 2), (1, 1, 3, 2), (2, 3, 5, 7), (1, 2, 9, 4), (1, 1, 17, 33)]


def _int32_inputs(shape, seed):
    """The extremes, +-2**30 and full-range random values, each as one input."""
    g = torch.Generator().manual_seed(seed)
    full = torch.randint(INT32_MIN, INT32_MAX, shape, generator=g, dtype=torch.int64).to(torch.int32)
    extremes = torch.tensor([INT32_MIN, INT32_MAX, 2**30, -(2**30), -1, 0, 1], dtype=torch.int32)
    picked = extremes[torch.randint(0, len(extremes), shape, generator=g)]
    yield full
    yield picked
    yield torch.full(shape, INT32_MIN, dtype=torch.int32)
    yield torch.full(shape, INT32_MAX, dtype=torch.int32)
    yield torch.randint(-(2**28), 2**28, shape, generator=g, dtype=torch.int32)


def check_int32_lifting_matches_reference() -> None:
    """Native forward and inverse == reference bit for bit, and both round-trip."""
    issue_example = torch.tensor([[[[2**30, -(2**30)], [-(2**30), 2**30]]]], dtype=torch.int32)
    expected = torch.tensor([2**30, 0, 0, INT32_MIN], dtype=torch.int32).view(1, 4, 1, 1)
    assert torch.equal(on_native(ops.ilwt53_forward, issue_example), expected)
    for i, shape in enumerate(SHAPES):
        for x in _int32_inputs(shape, seed=i):
            bands = reference.ilwt53_forward(x)
            assert torch.equal(on_native(ops.ilwt53_forward, x), bands), (shape, x)
            assert torch.equal(on_native(ops.ilwt53_inverse, bands, shape[2:]), x), (shape, x)
            assert torch.equal(reference.ilwt53_inverse(bands, shape[2:]), x), (shape, x)


def _float_inputs(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    for scale in (2.0**20, 2.0**26, 2.0**60):
        yield (torch.randn(shape, generator=g, dtype=torch.float64) * scale).round().to(dtype)
    special = torch.tensor([float("inf"), -float("inf"), float("nan"), 3.0, -2.5, 1e30], dtype=torch.float64)
    yield special[torch.randint(0, len(special), shape, generator=g)].to(dtype)


def check_float_lifting_matches_reference() -> None:
    """Beyond the float integer ranges and with inf/NaN, native == reference
    bit for bit (forward and inverse, rounding and linear), and |x| <= 2**21
    integers round-trip exactly in float32."""
    for i, shape in enumerate(SHAPES):
        for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            for x in _float_inputs(shape, dtype, seed=i):
                for rounding in (True, False):
                    bands = reference.ilwt53_forward(x, rounding)
                    assert _same(on_native(ops.ilwt53_forward, x, rounding), bands), (shape, dtype, rounding)
                    back = reference.ilwt53_inverse(bands, shape[2:], rounding)
                    assert _same(on_native(ops.ilwt53_inverse, bands, shape[2:], rounding), back)
        x = torch.randint(-(2**21), 2**21 + 1, shape, dtype=torch.int32).float()
        assert torch.equal(on_native(ops.ilwt53_inverse, on_native(ops.ilwt53_forward, x), shape[2:]), x)


@requires_native
def test_int32_lifting_matches_the_reference_over_the_whole_range():
    check_int32_lifting_matches_reference()


@requires_native
def test_float_lifting_matches_the_reference_beyond_the_integer_range():
    check_float_lifting_matches_reference()


@requires_native
def test_baseline_cpu_build_lifting_matches_over_the_whole_range():
    run_on_baseline_cpu_build(
        f"import sys; sys.path.insert(0, {HERE!r})\n"
        "from stegafast import _native\n"
        "assert _native.status().cpu_variant == 'baseline'\n"
        "import test_robustness_ops as t\n"
        "t.check_int32_lifting_matches_reference()\n"
        "t.check_float_lifting_matches_reference()\n"
        "print('baseline ok')\n"
    )


def test_reference_floor_keeps_infinities():
    # the odd sample's inf reaches every subband through floors of inf, which
    # must stay inf (a straight-through floor v + (floor(v) - v) gives NaN)
    x = torch.tensor([[[[0.0, 0.0], [0.0, float("inf")]]]])
    assert torch.equal(reference.ilwt53_forward(x), torch.full((1, 4, 1, 1), float("inf")))


# --- parameters checked in the dtype the kernel reads them in ----------------

_PIXELS = torch.arange(64, dtype=torch.float32).view(1, 1, 8, 8) * 3


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize(
    "dtype, step, becomes",
    [
        (torch.float16, 1e-8, "0.0"),  # the issue's example: > 0 in float32, 0 in float16
        (torch.float16, 1e-6, "1.0132789611816406e-06"),  # subnormal in float16
        (torch.float16, 1e5, "inf"),  # beyond float16's range
        (torch.bfloat16, 1e-45, "0.0"),
        (torch.float32, 1e-50, "0.0"),  # a float64 table for float32 pixels
        (torch.float32, 1e-37, "9.99999991097579e-38"),  # finite, but 1024 / step overflows float32
        (torch.float32, 1e39, "inf"),
    ],
)
def test_jpeg_table_is_checked_in_the_pixels_dtype(backend, dtype, step, becomes):
    if backend == "native" and not ops.jpeg.QUANTIZE.native:
        pytest.skip("stegafast._C is not loaded")
    table = torch.full((8, 8), 16.0, dtype=torch.float64)
    table[3, 5] = step
    run = on_native if backend == "native" else on_reference
    with pytest.raises(ValueError, match=f"qtable must hold finite quantisation steps > 0.*becomes {becomes}"):
        run(ops.jpeg_quantize_blocks, _PIXELS.to(dtype), table)


@requires_native
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_jpeg_smallest_accepted_step_gives_finite_pixels(dtype):
    step = ops.jpeg._min_step(dtype)
    table = torch.full((8, 8), step, dtype=torch.float64)
    for run in (on_native, on_reference):
        out = run(ops.jpeg_quantize_blocks, _PIXELS.to(dtype), table)
        assert torch.isfinite(out).all(), (dtype, step)


@requires_native
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_jpeg_half_table_is_rounded_alike_by_both_backends(dtype):
    # 1.3 and 17.7 are not half numbers: both backends must round them to x's dtype alike
    table = torch.full((8, 8), 1.3, dtype=torch.float64)
    table[::2] = 17.7
    x = _PIXELS.to(dtype)
    for rounding in reference.jpeg.ROUNDINGS:
        native = on_native(ops.jpeg_quantize_blocks, x, table, rounding)
        ref = on_reference(ops.jpeg_quantize_blocks, x, table, rounding)
        torch.testing.assert_close(native, ref, atol=0.5, rtol=0)  # one half ulp at 255
        direct = reference.jpeg_quantize_blocks(x, table, rounding)
        assert torch.equal(ref, direct)


def _coupling_inputs(dtype):
    x = torch.linspace(-1, 1, 12, dtype=torch.float64).view(2, 6).to(dtype)
    return x, (x * 3).to(dtype), (x - 0.5).to(dtype)


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("fn", [ops.affine_coupling, ops.affine_coupling_inverse])
@pytest.mark.parametrize(
    "dtype, clamp, becomes",
    [
        (torch.float32, 1e-50, "0.0"),  # 1 / clamp would be inf
        (torch.float16, 1e-40, "9.99994610111476e-41"),  # half inputs compute in float32: subnormal there
        (torch.bfloat16, 1e39, "inf"),
        (torch.float64, 1e-310, "1e-310"),  # subnormal: 1 / clamp overflows float64
    ],
)
def test_coupling_clamp_is_checked_in_the_compute_dtype(backend, fn, dtype, clamp, becomes):
    if backend == "native" and not ops.coupling.FORWARD.native:
        pytest.skip("stegafast._C is not loaded")
    run = on_native if backend == "native" else on_reference
    with pytest.raises(ValueError, match=f"clamp must be finite and > 0, at least .*becomes {becomes}"):
        run(fn, *_coupling_inputs(dtype), clamp)


@requires_native
@pytest.mark.parametrize("clamp_fn", ["tanh", "atan"])
def test_coupling_extreme_valid_clamps_stay_finite(clamp_fn):
    for clamp in (torch.finfo(torch.float32).tiny, 1e-30, 1e30, torch.finfo(torch.float32).max):
        for run in (on_native, on_reference):
            y, logdet = run(ops.affine_coupling, *_coupling_inputs(torch.float32), clamp, clamp_fn)
            assert torch.isfinite(y).all() and torch.isfinite(logdet).all(), (clamp, run)


# --- entropy: int32 values at the extremes of the offsets --------------------


@requires_native
def test_range_coder_codes_int32_extremes_with_extreme_offsets():
    # value - offset overflows int32 for these pairs: the escape coding must see the true difference
    cdfs = torch.tensor([[0, 30000, 60000, 65535, 65536]] * 3, dtype=torch.int32)
    lengths = torch.full((3,), 5, dtype=torch.int32)
    offsets = torch.tensor([INT32_MIN, INT32_MAX, 0], dtype=torch.int32)
    values = [INT32_MIN, INT32_MAX, -1, 0, 1, INT32_MIN + 1, INT32_MAX - 2]
    symbols = torch.tensor(values * 3, dtype=torch.int32)
    indexes = torch.tensor([k for k in range(3) for _ in values], dtype=torch.int32)
    stream = on_native(ops.range_encode, symbols, indexes, cdfs, lengths, offsets)
    assert torch.equal(stream, on_reference(ops.range_encode, symbols, indexes, cdfs, lengths, offsets))
    for run in (on_native, on_reference):
        assert torch.equal(run(ops.range_decode, stream, indexes, cdfs, lengths, offsets), symbols)


# --- STEGAFAST_CPU_VARIANT ----------------------------------------------------

_SHOW_VARIANT = (
    "import warnings\n"
    "with warnings.catch_warnings(record=True) as caught:\n"
    "    warnings.simplefilter('always')\n"
    "    from stegafast import _native\n"
    "print(_native.status().cpu_variant)\n"
    "print(_native.status().cpu_variant_note)\n"
    "for w in caught:\n"
    "    print('WARNING', w.category.__name__, w.message)\n"
)


def _variant_run(value: str) -> list[str]:
    env = {**os.environ, "STEGAFAST_CPU_VARIANT": value}
    out = subprocess.run([sys.executable, "-c", _SHOW_VARIANT], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.splitlines()


@requires_native
def test_unknown_cpu_variant_is_said_and_auto_used():
    variant, note, *warned = _variant_run("bogus")
    auto, auto_note, *auto_warned = _variant_run("auto")
    assert variant == auto and auto_note == "None" and auto_warned == []
    assert "STEGAFAST_CPU_VARIANT='bogus'" in note and "auto (the default), baseline, avx2" in note
    assert warned == [f"WARNING RuntimeWarning stegafast: {note}"]


@requires_native
def test_cpu_variant_values_are_followed():
    auto = _variant_run("")[0]
    assert _variant_run("baseline")[:2] == ["baseline", "None"]
    variant, note, *warned = _variant_run("avx2")
    if auto == "avx2":
        assert (variant, note, warned) == ("avx2", "None", [])
    else:  # no AVX2 build here, or a CPU without it: said, and the baseline runs
        assert variant == "baseline" and "STEGAFAST_CPU_VARIANT=avx2, but" in note and len(warned) == 1
