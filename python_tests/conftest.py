import os
import subprocess
import sys

import pytest
import torch

import stegafast

CUDA = torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords and not CUDA:
            item.add_marker(skip_cuda)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    yield


def on_native(fn, *args, **kwargs):
    """fn(*args, **kwargs) with the native backend (raises where no kernel exists)."""
    with stegafast.use_backend("native"):
        return fn(*args, **kwargs)


def on_reference(fn, *args, **kwargs):
    """fn(*args, **kwargs) with the pure-PyTorch reference."""
    with stegafast.use_backend("reference"):
        return fn(*args, **kwargs)


requires_native = pytest.mark.skipif(
    not stegafast.native_available(), reason="stegafast._C is not loaded"
)


def run_on_baseline_cpu_build(code: str) -> None:
    """Run a check script in a fresh process forced onto the baseline (non-AVX2)
    CPU build of the kernels; it must print 'baseline ok'."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "STEGAFAST_CPU_VARIANT": "baseline"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "baseline ok" in out.stdout
