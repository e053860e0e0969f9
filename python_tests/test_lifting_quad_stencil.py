"""The per-quad lifting functions that the CUDA kernels call, checked on the CPU.

The CPU kernels are built from the 1-D functions of csrc/lifting/lifting.h; the
CUDA kernels call its 2-D quad functions (forward_quad, inverse_quad and the two
adjoints) once per 2x2 output quad. native/quad_stencil_driver.cpp runs those
quad functions over every quad the way lifting_cuda.cu does, so this test covers
their arithmetic, the band layout and the odd-size skipping without a GPU,
against stegafast.reference.lifting and its autograd gradients.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from stegafast.reference import lifting as ref

HERE = Path(__file__).resolve().parent
DRIVER_SOURCE = HERE / "native" / "quad_stencil_driver.cpp"
CSRC = HERE.parent / "csrc"

SIZES = (2, 3, 4, 5, 7, 8, 16, 17)
BATCH_CHANNELS = ((1, 1), (3, 2), (1, 2), (3, 1))
# Every (H, W) pair; (B, C) cycles so that each of its values meets odd and even sizes.
SHAPES = [(*BATCH_CHANNELS[k % len(BATCH_CHANNELS)], h, w) for k, (h, w) in enumerate(itertools.product(SIZES, SIZES))]

# The driver's outputs per case, in its order: (name, which side: bands or image).
OUTPUTS = (
    ("forward_round_int32", "bands"),
    ("forward_round_float64", "bands"),
    ("forward_round_float32", "bands"),
    ("forward_linear_float64", "bands"),
    ("inverse_round_int32", "image"),
    ("inverse_round_float64", "image"),
    ("inverse_round_float32", "image"),
    ("inverse_linear_float64", "image"),
    ("forward_adjoint_float64", "image"),
    ("inverse_adjoint_float64", "bands"),
)


def half(n: int) -> int:
    return (n + 1) // 2


def make_case(shape: tuple[int, int, int, int], seed: int, int_bound: int = 300) -> dict[str, torch.Tensor]:
    b, c, h, w = shape
    gen = torch.Generator().manual_seed(seed)
    image, bands = (b, c, h, w), (b, 4 * c, half(h), half(w))

    def ints(size):  # negative values too: the floors must round towards -inf
        return torch.randint(-int_bound, int_bound, size, generator=gen, dtype=torch.float64)

    def reals(size):
        return torch.randn(size, generator=gen, dtype=torch.float64)

    return {
        "x_int": ints(image),
        "x_real": reals(image),
        "y_int": ints(bands),
        "y_real": reals(bands),
        "grad_y": reals(bands),
        "grad_x": reals(image),
    }


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found: cannot build the quad-stencil driver")
    exe = tmp_path_factory.mktemp("quad_stencil") / "quad_stencil_driver"
    proc = subprocess.run(
        [gxx, "-O1", "-std=c++20", "-I", str(CSRC), str(DRIVER_SOURCE), "-o", str(exe)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"building the driver failed:\n{proc.stderr}"
    return exe


def run_driver(driver: Path, folder: Path, cases: list) -> dict:
    """The cases through one driver run: {shape: (inputs, {output name: tensor})}."""
    src, dst = folder / "in.bin", folder / "out.bin"
    with open(src, "wb") as f:
        np.array([len(SHAPES)], dtype=np.int64).tofile(f)
        for shape, case in zip(SHAPES, cases):
            np.array(shape, dtype=np.int64).tofile(f)
            for name in ("x_int", "x_real", "y_int", "y_real", "grad_y", "grad_x"):
                case[name].numpy().astype(np.float64).tofile(f)
    proc = subprocess.run([str(driver), str(src), str(dst)], capture_output=True, text=True)
    assert proc.returncode == 0, f"driver failed: {proc.stderr}"

    flat = torch.from_numpy(np.fromfile(dst, dtype=np.float64))
    out, at = {}, 0
    for shape, case in zip(SHAPES, cases):
        sizes = {"image": case["x_int"].shape, "bands": case["y_int"].shape}
        got = {}
        for name, side in OUTPUTS:
            n = int(np.prod(sizes[side]))
            got[name] = flat[at : at + n].reshape(sizes[side])
            at += n
        out[shape] = (case, got)
    assert at == flat.numel(), "driver wrote more values than expected"
    return out


@pytest.fixture(scope="module")
def results(driver, tmp_path_factory) -> dict:
    """All shapes through one driver run."""
    cases = [make_case(shape, seed) for seed, shape in enumerate(SHAPES)]
    return run_driver(driver, tmp_path_factory.mktemp("quad_stencil_io"), cases)


@pytest.fixture(scope="module")
def wide_results(driver, tmp_path_factory) -> dict:
    """The same with integers over the whole int32 range, where lifting sums wrap."""
    cases = [make_case(shape, seed, int_bound=2**31) for seed, shape in enumerate(SHAPES)]
    return run_driver(driver, tmp_path_factory.mktemp("quad_stencil_wide_io"), cases)


def shape_id(shape) -> str:
    return "B{}C{}H{}W{}".format(*shape)


def assert_exact(got: torch.Tensor, want: torch.Tensor) -> None:
    torch.testing.assert_close(got, want.to(torch.float64), rtol=0, atol=0)


def assert_close(got: torch.Tensor, want: torch.Tensor) -> None:
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_forward_quad_matches_reference(results, shape):
    case, got = results[shape]
    x = case["x_int"]
    assert_exact(got["forward_round_int32"], ref.ilwt53_forward(x.to(torch.int32), True))
    assert_exact(got["forward_round_float64"], ref.ilwt53_forward(x, True))
    assert_exact(got["forward_round_float32"], ref.ilwt53_forward(x.float(), True))
    assert_close(got["forward_linear_float64"], ref.ilwt53_forward(case["x_real"], False))


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_inverse_quad_matches_reference(results, shape):
    case, got = results[shape]
    size = shape[2:]
    y = case["y_int"]
    assert_exact(got["inverse_round_int32"], ref.ilwt53_inverse(y.to(torch.int32), size, True))
    assert_exact(got["inverse_round_float64"], ref.ilwt53_inverse(y, size, True))
    assert_exact(got["inverse_round_float32"], ref.ilwt53_inverse(y.float(), size, True))
    assert_close(got["inverse_linear_float64"], ref.ilwt53_inverse(case["y_real"], size, False))


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_forward_adjoint_quad_is_vjp_of_reference(results, shape):
    case, got = results[shape]
    x = case["x_real"].clone().requires_grad_(True)
    (want,) = torch.autograd.grad(ref.ilwt53_forward(x, False), x, case["grad_y"])
    assert_close(got["forward_adjoint_float64"], want)


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_inverse_adjoint_quad_is_vjp_of_reference(results, shape):
    case, got = results[shape]
    y = case["y_real"].clone().requires_grad_(True)
    (want,) = torch.autograd.grad(ref.ilwt53_inverse(y, shape[2:], False), y, case["grad_x"])
    assert_close(got["inverse_adjoint_float64"], want)


@pytest.mark.parametrize("shape", SHAPES[::7], ids=shape_id)
def test_int32_quads_wrap_as_the_reference_over_the_whole_range(wide_results, shape):
    # two's-complement int32 throughout (stegafast.reference.lifting): the CUDA
    # arithmetic must wrap exactly as the reference's torch int32 arithmetic does
    case, got = wide_results[shape]
    assert_exact(got["forward_round_int32"], ref.ilwt53_forward(case["x_int"].to(torch.int32), True))
    assert_exact(got["inverse_round_int32"], ref.ilwt53_inverse(case["y_int"].to(torch.int32), shape[2:], True))
