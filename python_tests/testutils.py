"""Helpers the tests share: backend switches, the native-library skip mark, a
fresh process on the baseline CPU build, random PNGs, a tiny training run and
the one-error-line check of the command line."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import stegafast
from stegafast.models.codec.config import DCAE_PRESETS


def on_native(fn, *args, **kwargs):
    """fn(*args, **kwargs) with the native backend (raises where no kernel exists)."""
    with stegafast.use_backend("native"):
        return fn(*args, **kwargs)


def on_reference(fn, *args, **kwargs):
    """fn(*args, **kwargs) with the pure-PyTorch reference."""
    with stegafast.use_backend("reference"):
        return fn(*args, **kwargs)


requires_native = pytest.mark.skipif(not stegafast.native_available(), reason="stegafast._C is not loaded")


def run_on_baseline_cpu_build(code: str) -> None:
    """Run a check script in a fresh process forced onto the baseline (non-AVX2)
    CPU build of the kernels; it must print 'baseline ok'."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "STEGAFAST_CPU_VARIANT": "baseline"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "baseline ok" in out.stdout


def write_random_png(path, shape, mode="RGB", seed=0) -> str:
    """A PNG of seeded random pixels of ``shape`` (H, W[, C]) at ``path``; returns the path as a string."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    Image.fromarray(pixels, mode).save(path)
    return str(path)


# The options every family's tiny CLI training shares: small batches, no workers or progress bar, no validation
QUICK_TRAIN_ARGS = ("--batch-size", "2", "--workers", "0", "--device", "cpu", "--no-progress", "--val-every", "0")


def train_tiny_run(family: str, root, images: int, shape, steps: int, tiny_args) -> tuple:
    """``stegafast <family> train`` for ``steps`` steps on ``images`` random PNGs of ``shape`` in
    ``root/images``; returns (root, data folder, run folder)."""
    from stegafast.cli import main

    data = root / "images"
    data.mkdir()
    for i in range(images):
        write_random_png(data / f"img{i}.png", shape, seed=i)
    run = root / "run"
    assert main([family, "train", "--data", str(data), "--out", str(run), "--steps", str(steps), *tiny_args]) == 0
    return root, data, run


def single_error_line(capsys) -> str:
    """The one line a command printed to stderr for a user mistake."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stegafast: error: "), err
    return err[0]


def tiny_dcae_config():
    """A DCAE configuration of the paper's structure (Swin stages, slices, dictionary) small enough to train and
    code in a test within seconds."""
    return DCAE_PRESETS["tiny"]
