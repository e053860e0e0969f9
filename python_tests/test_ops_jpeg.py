"""Differentiable JPEG: native block kernel against the reference, the reference
against a straightforward float64 JPEG quantiser, libjpeg's tables, gradients,
operator registration, compile, bad input, and DiffJPEG against Pillow."""

import io
import math
import random

import numpy as np
import pytest
import torch
from kernel_testing import BadInput, Call, KernelTester
from testutils import requires_native

from stegafast import ops, reference, use_backend
from stegafast.nn import DiffJPEG

ROUNDINGS = ("ste", "cubic", "ste_cubic")


def _shapes(count, seed):
    """(N, C, H, W) with H, W multiples of 8: batch 1 to large, odd block counts."""
    rng = random.Random(seed)
    fixed = [(1, 1, 8, 8), (1, 3, 8, 16), (2, 1, 24, 8), (33, 2, 8, 8), (3, 3, 40, 56)]
    return fixed + [
        (rng.randint(1, 5), rng.randint(1, 3), 8 * rng.randint(1, 5), 8 * rng.randint(1, 5)) for _ in range(count)
    ]


SHAPES = _shapes(6, seed=5)
ids = ["x".join(map(str, s)) for s in SHAPES]


def _pixels(shape, dtype=torch.float32):
    return (torch.rand(shape, dtype=torch.float64) * 255).to(dtype)


def _tables(n, seed=0):
    """Per-sample luma tables at random qualities."""
    q = torch.randint(1, 101, (n,), generator=torch.Generator().manual_seed(seed))
    return ops.jpeg_quality_table(q)


def _run(backend, *args):
    with use_backend(backend):
        return ops.jpeg_quantize_blocks(*args)


def _tol(dtype):
    return {
        torch.float32: dict(atol=2e-3, rtol=1e-5),
        torch.float64: dict(atol=1e-9, rtol=1e-12),
        torch.float16: dict(atol=1.0, rtol=1e-2),
        torch.bfloat16: dict(atol=4.0, rtol=2e-2),
    }[dtype]


_X = torch.zeros(2, 3, 8, 16)
_T = torch.ones(8, 8)


def _bad(args, error, message):
    return BadInput(ops.jpeg_quantize_blocks, args, error, message)


class TestJpegKernel(KernelTester):
    """The shared battery (kernel_testing.py) over the three rounding modes."""

    kernel = "jpeg"
    op_names = ("jpeg_quantize_blocks", "jpeg_quantize_blocks_backward")
    shapes = SHAPES
    dtypes = (torch.float32, torch.float64)
    tolerances = {dtype: _tol(dtype) for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16)}
    # cubic's gradient is its forward's own (away from the rounding steps, which
    # random inputs miss), so gradcheck applies; the ste modes' gradients are
    # surrogates by design (test_surrogate_gradients_match_the_reference)
    grad_shapes = [(2, 1, 8, 16)]  # two samples (per-sample tables), two blocks each: quick
    gradcheck_options = dict(eps=1e-6, atol=1e-5)
    compile_tolerance = dict(atol=1e-4, rtol=1e-4)
    compile_grad_tolerance = dict(atol=1e-4, rtol=1e-4)
    bad_inputs = [
        _bad(([[1.0]], _T), TypeError, "x must be a torch.Tensor"),
        _bad((_X.int(), _T), TypeError, "x has dtype torch.int32"),
        _bad((torch.zeros(3, 8, 8), _T), ValueError, "x must have 4 dims"),
        _bad((torch.zeros(1, 1, 8, 12), _T), ValueError, "multiples of 8"),
        _bad((_X, None), TypeError, "qtable must be a torch.Tensor"),
        _bad((_X, torch.ones(4, 4)), ValueError, r"qtable must be \(8, 8\)"),
        _bad((_X, torch.ones(3, 8, 8)), ValueError, "does not match x"),
        _bad((_X, torch.ones(2, 2, 8, 8)), ValueError, "does not match x"),
        _bad((_X, torch.zeros(8, 8)), ValueError, "quantisation steps > 0"),
        _bad((_X, torch.full((8, 8), float("nan"))), ValueError, "quantisation steps > 0"),
        _bad((_X, torch.ones(8, 8, device="meta")), ValueError, "qtable is on meta"),
        _bad((_X, _T, "floor"), ValueError, "rounding must be one of"),
    ]

    def parity_calls(self, shape, dtype):
        x = _pixels(shape, dtype)
        tables = _tables(shape[0])
        for rounding in ROUNDINGS:
            yield Call(ops.jpeg_quantize_blocks, (x, tables, rounding))

    def layout_calls(self):
        x = _pixels((3, 4, 16, 16))
        one, per_sample = ops.jpeg_quality_table(60), _tables(3)
        per_channel = ops.jpeg_quality_table(torch.arange(5, 101, 8)).view(3, 4, 8, 8)
        for table in (one, per_sample, per_channel, per_sample[:, None], one.double()):
            yield Call(ops.jpeg_quantize_blocks, (x, table))
        yield Call(ops.jpeg_quantize_blocks, (x.transpose(2, 3), per_sample))

    def gradcheck_calls(self, shape):
        x = _pixels(shape, torch.float64).requires_grad_()
        yield Call(ops.jpeg_quantize_blocks, (x, _tables(shape[0]).double(), "cubic"))

    def opcheck_samples(self):
        op = torch.ops.stegafast
        x = _pixels((2, 3, 8, 16)).requires_grad_()
        tables = ops.jpeg_quality_table(torch.tensor([20, 90]))[:, None].expand(2, 3, 8, 8).contiguous()
        samples = []
        for rounding in ROUNDINGS:
            samples += [
                (op.jpeg_quantize_blocks, (x, tables, rounding)),
                (op.jpeg_quantize_blocks_backward, (torch.randn(2, 3, 8, 16), x.detach(), tables, rounding)),
            ]
        return samples

    def compile_case(self):
        return DiffJPEG(torch.tensor([30, 80]), rounding="ste_cubic"), (torch.rand(2, 3, 20, 28, requires_grad=True),)

    def check_compiled(self, outputs, args):
        assert outputs[0].shape == args[0].shape

    def autocast_calls(self, dtype):
        x, table = _pixels((2, 1, 8, 8), dtype), ops.jpeg_quality_table(50)
        yield Call(ops.jpeg_quantize_blocks, (x, table))


@pytest.mark.parametrize("backend", [pytest.param("native", marks=requires_native), "reference"])
@pytest.mark.parametrize("rounding", ["ste", "ste_cubic"])
def test_surrogate_gradients_match_the_reference(backend, rounding):
    x = _pixels((2, 1, 8, 16), torch.float64).requires_grad_()
    tables = _tables(2).double()
    with use_backend(backend):
        y = ops.jpeg_quantize_blocks(x, tables, rounding)
    grad_out = torch.randn_like(y)
    (got,) = torch.autograd.grad(y, x, grad_out)
    with use_backend("reference"):
        (want,) = torch.autograd.grad(reference.jpeg_quantize_blocks(x, tables, rounding), x, grad_out)
    torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)


# --- quantisation tables -------------------------------------------------------------------


def _libjpeg_table(base, quality):
    """libjpeg's jpeg_quality_scaling + jpeg_add_quant_table(force_baseline=TRUE), in ints."""
    scale = 5000 // quality if quality < 50 else 200 - quality * 2
    return [min(max((b * scale + 50) // 100, 1), 255) for b in base]


@pytest.mark.parametrize("kind", ["luma", "chroma"])
def test_quality_tables_follow_libjpeg(kind):
    base = reference.jpeg.base_table(kind).flatten().tolist()
    qualities = torch.arange(1, 101)
    tables = ops.jpeg_quality_table(qualities, kind)
    assert tables.shape == (100, 8, 8)
    for q in (1, 10, 49, 50, 51, 75, 95, 100):
        assert tables[q - 1].flatten().int().tolist() == _libjpeg_table(base, q)
    assert torch.equal(ops.jpeg_quality_table(75, kind), tables[74])


def test_quality_tables_match_pillows():
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "JPEG", quality=75)
    quant = Image.open(io.BytesIO(buf.getvalue())).quantization
    # Pillow reports the tables in zig-zag order on some versions, natural order on others
    luma = sorted(quant[0])
    assert luma == sorted(ops.jpeg_quality_table(75, "luma").flatten().int().tolist())
    assert sorted(quant[1]) == sorted(ops.jpeg_quality_table(75, "chroma").flatten().int().tolist())


# --- the reference against a straightforward implementation ---------------------------------


def _straightforward_coefficients(block, table):
    """round(DCT(block - 128) / Q) for one 8x8 float64 block, summing the DCT-II's cosines."""
    out = torch.empty(8, 8, dtype=torch.float64)
    for u in range(8):
        for v in range(8):
            cu = math.sqrt(1 / 8) if u == 0 else math.sqrt(2 / 8)
            cv = math.sqrt(1 / 8) if v == 0 else math.sqrt(2 / 8)
            s = 0.0
            for x in range(8):
                for y in range(8):
                    s += (
                        (block[x, y].item() - 128)
                        * math.cos((2 * x + 1) * u * math.pi / 16)
                        * math.cos((2 * y + 1) * v * math.pi / 16)
                    )
            out[u, v] = cu * cv * s / table[u, v].item()
    return torch.round(out)


def _coefficients_of_output(y, table):
    """The quantised coefficients a decoded block was made from: DCT(y - 128) / Q,
    each within float64 noise of an integer."""
    d = reference.jpeg._dct_matrix(torch.float64, "cpu")
    k = (d @ (y - 128) @ d.T) / table
    assert torch.all((k - torch.round(k)).abs() < 1e-6)
    return torch.round(k)


@pytest.mark.parametrize("backend", [pytest.param("native", marks=requires_native), "reference"])
def test_ste_coefficients_equal_a_straightforward_quantiser(backend):
    x = _pixels((6, 1, 8, 8), torch.float64)
    tables = ops.jpeg_quality_table(torch.tensor([5, 25, 50, 75, 90, 100]), dtype=torch.float64)
    y = _run(backend, x, tables, "ste")
    for i in range(6):
        want = _straightforward_coefficients(x[i, 0], tables[i])
        assert torch.equal(_coefficients_of_output(y[i, 0], tables[i]), want)


def test_cubic_rounding_follows_its_formula():
    x = _pixels((2, 1, 8, 16), torch.float64)
    table = ops.jpeg_quality_table(40, dtype=torch.float64)
    d = reference.jpeg._dct_matrix(torch.float64, "cpu")
    blocks = reference.jpeg._blocks(x)
    v = d @ (blocks - 128) @ d.T / table
    soft = torch.round(v) + (v - torch.round(v)) ** 3
    want = reference.jpeg._unblocks(d.T @ (soft * table) @ d) + 128
    torch.testing.assert_close(_run("reference", x, table, "cubic"), want, atol=1e-9, rtol=0)


def test_rounding_gradients():
    """ste: identity; cubic and ste_cubic: 3 (v - round v)^2, checked on one coefficient."""
    table = torch.ones(8, 8, dtype=torch.float64)
    x = torch.full((1, 1, 8, 8), 128.0, dtype=torch.float64)
    x[0, 0, 0, 0] += 0.3  # every coefficient a small fraction, none a whole number
    for rounding in ROUNDINGS:
        xr = x.clone().requires_grad_()
        with use_backend("reference"):
            y = ops.jpeg_quantize_blocks(xr, table, rounding)
        grad_out = torch.randn_like(x)
        (y * grad_out).sum().backward()
        if rounding == "ste":
            torch.testing.assert_close(xr.grad, grad_out)
        else:
            d = reference.jpeg._dct_matrix(torch.float64, "cpu")
            v = d @ (x[0, 0] - 128) @ d.T
            slope = 3 * (v - torch.round(v)) ** 2
            want = d.T @ (slope * (d @ grad_out[0, 0] @ d.T)) @ d
            torch.testing.assert_close(xr.grad[0, 0], want)


# --- native against the reference ---------------------------------------------------------


@requires_native
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_types_match_the_float32_reference(dtype):
    x = _pixels((3, 2, 16, 24), dtype)
    tables = _tables(3)
    got = _run("native", x, tables, "ste")
    assert got.dtype == dtype
    want = _run("reference", x.float(), tables, "ste").to(dtype)
    torch.testing.assert_close(got.float(), want.float(), **_tol(dtype))


# --- gradients ------------------------------------------------------------------------------


@requires_native
@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_native_gradients_match_reference(rounding):
    x = _pixels((3, 2, 16, 24)).requires_grad_()
    tables = _tables(3)
    grad_out = torch.randn(x.shape)
    grads = []
    for backend in ("native", "reference"):
        (g,) = torch.autograd.grad(_run(backend, x, tables, rounding), x, grad_out)
        grads.append(g)
    torch.testing.assert_close(*grads, atol=1e-4, rtol=1e-4)


@requires_native
def test_double_backward_raises_a_clear_error():
    x = _pixels((1, 1, 8, 8)).requires_grad_()
    y = _run("native", x, ops.jpeg_quality_table(50), "cubic")
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    with pytest.raises(NotImplementedError, match="double backward"):
        g.sum().backward()


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "quality,error,message",
    [
        (0, ValueError, "1..100"),
        (101, ValueError, "1..100"),
        (75.5, ValueError, "whole number"),
        (True, TypeError, "number or a tensor"),
        ("75", TypeError, "number or a tensor"),
        (torch.tensor([[50]]), ValueError, "1-D"),
        (torch.tensor([50.5]), ValueError, "whole numbers"),
    ],
)
def test_quality_table_rejects_bad_quality(quality, error, message):
    with pytest.raises(error, match=message):
        ops.jpeg_quality_table(quality)


@requires_native
def test_direct_native_calls_check_their_inputs_too():
    op = torch.ops.stegafast
    with pytest.raises(RuntimeError, match="rounding must be"):
        op.jpeg_quantize_blocks(_X, torch.ones(2, 3, 8, 8), "floor")
    with pytest.raises(RuntimeError, match="multiples of 8"):
        op.jpeg_quantize_blocks(torch.zeros(1, 1, 8, 9), torch.ones(1, 1, 8, 8), "ste")
    with pytest.raises(RuntimeError, match="qtable must have shape"):
        op.jpeg_quantize_blocks(_X, torch.ones(8, 8), "ste")


# --- DiffJPEG ---------------------------------------------------------------------------------------


def _pillow_round_trip(image_u8, quality, subsampling):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image_u8.permute(1, 2, 0).numpy()).save(
        buf, "JPEG", quality=quality, subsampling={"4:4:4": 0, "4:2:0": 2}[subsampling]
    )
    decoded = np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return torch.from_numpy(decoded).permute(2, 0, 1).float()[None] / 255


def _psnr(a, b):
    return (10 * torch.log10(1 / torch.mean((a - b) ** 2))).item()


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:4:4"])
def test_diffjpeg_is_close_to_pillow_at_quality_75(subsampling):
    from stegafast.data import load_bundled_photo

    photo = load_bundled_photo("chelsea")[:3]  # 300 x 451: odd width, padding exercised
    x = photo.float()[None] / 255
    pillow = _pillow_round_trip(photo, 75, subsampling)
    simulated = DiffJPEG(75, subsampling)(x)
    # measured ~46 dB; the JPEG error itself (x against Pillow) is ~36 dB
    assert _psnr(simulated, pillow) > 40
    assert _psnr(simulated, pillow) > _psnr(x, pillow) + 6


def test_diffjpeg_per_image_quality_and_override():
    x = torch.rand(3, 3, 17, 23)
    model = DiffJPEG([10, 50, 95])
    y = model(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    for i, q in enumerate((10, 50, 95)):
        torch.testing.assert_close(y[i : i + 1], DiffJPEG(q)(x[i : i + 1]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model(x, quality=50), DiffJPEG(50)(x))
    errors = [(y[i] - x[i]).abs().mean() for i in range(3)]
    assert errors[0] > errors[1] > errors[2]


def test_diffjpeg_gradients_flow():
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    for rounding in ROUNDINGS:
        x.grad = None
        DiffJPEG(50, rounding=rounding)(x).sum().backward()
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_diffjpeg_keeps_float32_under_autocast():
    x = torch.rand(2, 3, 16, 16)
    model = DiffJPEG(50)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, model(x))


def test_diffjpeg_half_images_run_in_float32():
    x = torch.rand(1, 3, 16, 16)
    y = DiffJPEG(50)(x.to(torch.bfloat16))
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), DiffJPEG(50)(x.to(torch.bfloat16).float()), atol=1e-2, rtol=0)


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        (dict(quality=0), ValueError, "1..100"),
        (dict(subsampling="4:2:2"), ValueError, "subsampling"),
        (dict(rounding="floor"), ValueError, "rounding"),
    ],
)
def test_diffjpeg_rejects_bad_settings(kwargs, error, message):
    with pytest.raises(error, match=message):
        DiffJPEG(**kwargs)


def test_diffjpeg_rejects_bad_images():
    with pytest.raises(ValueError, match="RGB"):
        DiffJPEG()(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="2 qualities for a batch of 3"):
        DiffJPEG([10, 20])(torch.rand(3, 3, 8, 8))
    with pytest.raises(TypeError, match="floating point"):
        DiffJPEG()(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


# --- CUDA ---------------------------------------------------------------------------------------------


@pytest.mark.cuda
@requires_native
@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_cuda_matches_cpu(rounding, dtype):
    x = _pixels((5, 3, 24, 40), dtype)
    tables = _tables(5)
    want = _run("native", x, tables, rounding)
    got = _run("native", x.cuda(), tables.cuda(), rounding)
    torch.testing.assert_close(got.cpu(), want, **_tol(dtype))
    grad_out = torch.randn(x.shape, dtype=dtype)
    xc = x.cuda().requires_grad_()
    xr = x.clone().requires_grad_()
    (gc,) = torch.autograd.grad(_run("native", xc, tables.cuda(), rounding), xc, grad_out.cuda())
    (gr,) = torch.autograd.grad(_run("native", xr, tables, rounding), xr, grad_out)
    torch.testing.assert_close(gc.cpu(), gr, **_tol(dtype))
