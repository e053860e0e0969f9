"""Backend selection: auto, native, reference; the env var and the context manager."""

import logging
import os
import subprocess
import sys

import pytest
import torch
from testutils import requires_native

import stegafast
from stegafast import NativeKernelUnavailable, backend, ops, use_backend


def _run_python(code, **env):
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120)


def test_use_backend_restores_the_previous_setting():
    assert stegafast.get_backend() == "auto"
    with use_backend("reference"):
        assert stegafast.get_backend() == "reference"
        with use_backend("native"):
            assert stegafast.get_backend() == "native"
        assert stegafast.get_backend() == "reference"
    assert stegafast.get_backend() == "auto"


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="choose one of auto, native, reference"):
        stegafast.set_backend("fast")
    with pytest.raises(ValueError, match="unknown stegafast backend"):
        with use_backend("gpu"):
            pass


def test_reference_backend_runs_the_reference(monkeypatch):
    calls = []
    real = stegafast.reference.lifting.ilwt53_forward
    monkeypatch.setattr(ops.lifting.reference, "ilwt53_forward", lambda *a: calls.append(1) or real(*a))
    x = torch.zeros(1, 1, 4, 4)
    with use_backend("reference"):
        ops.ilwt53_forward(x)
    assert calls == [1]
    if stegafast.native_available():
        ops.ilwt53_forward(x)  # auto: native on CPU
        assert calls == [1]


def test_native_backend_names_the_missing_kernel():
    x = torch.zeros(1, 1, 4, 4, device="meta")
    with use_backend("native"), pytest.raises(NativeKernelUnavailable, match="no native kernel for meta"):
        ops.ilwt53_forward(x)


def test_auto_falls_back_to_the_reference_and_logs_once(caplog):
    x = torch.zeros(2, 3, 9, 8, device="meta")
    backend._fallbacks_logged.discard(("ilwt53_forward", "meta"))
    with caplog.at_level(logging.INFO, logger="stegafast"):
        y = ops.ilwt53_forward(x)
        ops.ilwt53_forward(x)
    assert y.shape == (2, 12, 5, 4) and y.device.type == "meta"
    messages = [r.getMessage() for r in caplog.records if "ilwt53_forward runs the reference" in r.getMessage()]
    assert len(messages) == 1


@requires_native
def test_native_devices_reflect_the_build():
    assert "cpu" in backend.native_devices("ilwt53_forward")
    has_cuda = bool(stegafast._native.build_info().get("cuda_kernels"))
    assert ("cuda" in backend.native_devices("ilwt53_forward")) == has_cuda


def test_env_var_sets_the_default_backend():
    out = _run_python("import stegafast; print(stegafast.get_backend())", STEGAFAST_BACKEND="reference")
    assert out.returncode == 0 and out.stdout.strip() == "reference"


def test_bad_env_var_warns_and_uses_auto():
    out = _run_python("import stegafast; print(stegafast.get_backend())", STEGAFAST_BACKEND="turbo")
    assert out.returncode == 0 and out.stdout.strip() == "auto"
    assert "ignoring STEGAFAST_BACKEND='turbo'" in out.stderr
