"""`import stegafast` never fails because of the native library: it warns once
with the reason and runs the references."""

import os
import subprocess
import sys

ROUND_TRIP = """
import torch, stegafast
x = torch.randint(0, 256, (2, 3, 7, 6), dtype=torch.int32)
y = stegafast.ops.ilwt53_forward(x)
assert torch.equal(stegafast.ops.ilwt53_inverse(y, (7, 6)), x)
assert not stegafast.native_available()
print("reference ok")
"""


def _run(prelude, env=None):
    code = "import warnings; warnings.simplefilter('always')\n" + prelude + ROUND_TRIP
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120
    )


def test_missing_library_warns_and_runs_the_reference():
    out = _run("import sys; sys.modules['stegafast._C'] = None\n")
    assert out.returncode == 0, out.stderr
    assert "reference ok" in out.stdout
    assert out.stderr.count("using its pure-PyTorch reference kernels") == 1
    assert "stegafast._C could not be loaded" in out.stderr


def test_library_built_for_another_torch_is_not_loaded():
    out = _run("import torch; torch.__version__ = '0.0.1'\n")
    assert out.returncode == 0, out.stderr
    assert "built for torch" in out.stderr and "0.0.1" in out.stderr
    assert "pip install --no-build-isolation" in out.stderr


def test_native_can_be_disabled_and_info_says_why():
    env = {"STEGAFAST_DISABLE_NATIVE": "1"}
    assert _run("", env).returncode == 0
    out = subprocess.run(
        [sys.executable, "-m", "stegafast", "info"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert out.returncode == 0
    assert "NOT loaded (disabled by STEGAFAST_DISABLE_NATIVE=1)" in out.stdout
    assert "ilwt53_forward" in out.stdout
