"""The range coder (csrc/entropy/entropy.h) under AddressSanitizer and UBSan:
native/range_coder_fuzz_driver.cpp round-trips random tables and values, then decodes
corrupted, truncated and random streams from buffers of exactly their size, so
any read or write outside a buffer (or undefined arithmetic) fails the run."""

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DRIVER = HERE / "native" / "range_coder_fuzz_driver.cpp"
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


@pytest.fixture(scope="module")
def fuzz_driver(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("asan")
    compiler = shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no C++ compiler")
    exe = tmp_path / "range_coder_fuzz_driver"
    cmd = [compiler, "-std=c++20", "-O1", "-g", *SANITIZE, f"-I{ROOT / 'csrc'}", str(DRIVER), "-o", str(exe)]
    built = subprocess.run(cmd, capture_output=True, text=True)
    if built.returncode and "asan" in built.stderr.lower():
        pytest.skip(f"the compiler cannot link AddressSanitizer: {built.stderr.strip()[:200]}")
    assert built.returncode == 0, built.stderr
    return exe


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_coder_fuzz_under_address_sanitizer(fuzz_driver, seed):
    run = subprocess.run([str(fuzz_driver), "400", str(seed)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("ok: 400 round trips, 8000 corrupted streams decoded")
