"""Crafted checkpoints and run folders fail in one line before anything is built: the layout
check of stegafast.train.checkpoint, the configs' types and ranges, and the meta-device size
estimate of stegafast.train.loading against the memory budget."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from testutils import single_error_line, write_random_png

from stegafast.cli import main
from stegafast.data.limits import MEMORY_ENV
from stegafast.errors import CheckpointError, RunDirError
from stegafast.models.codec import CodecTask
from stegafast.models.codec.config import CodecConfig
from stegafast.models.codec.model import HyperpriorCodec
from stegafast.models.stamp.task import StampTask
from stegafast.train import RunDir, load_trained
from stegafast.train.checkpoint import CHECKPOINT_FORMAT, atomic_save
from stegafast.train.loading import model_bytes


def _codec_identity(**model):
    return CodecTask(CodecConfig(N=8, M=8)).identity() | ({"model": {"N": 8, "M": 8, **model}} if model else {})


def _save(path, **parts):
    state = {"format": CHECKPOINT_FORMAT, "identity": _codec_identity(), "models": {"model": {}}, **parts}
    state = {k: v for k, v in state.items() if v is not None or k != "identity"}
    atomic_save(state, path)
    return path


@pytest.mark.parametrize(
    "parts, message",
    [
        ({"identity": None}, "its identity must be a dict, found none"),
        ({"identity": ["codec"]}, "its identity must be a dict, found a list"),
        ({"identity": {"model": {}}}, "its identity names no task"),
        ({"identity": {"task": 7}}, "its identity names no task"),
        ({"models": [1, 2]}, "its models must be a dict of name -> state dict"),
        ({"models": {"model": {"w": "not a tensor"}}}, "model 'model' entry 'w' is a str, not a tensor"),
        ({"identity": _codec_identity(N=4096)}, "N must be at most 1024, got 4096"),
        ({"identity": _codec_identity(N="64")}, "N must be a positive integer, got '64'"),
        ({"identity": _codec_identity(M=2.5)}, "M must be a positive integer, got 2.5"),
        ({"identity": {**_codec_identity(), "model": [64, 96]}}, "codec settings must be a dict, got list"),
        ({"identity": {**_codec_identity(), "lmbda": "0.01"}}, "lmbda must be a positive number"),
        ({"identity": {"task": _codec_identity()["task"]}}, "does not hold a usable"),
    ],
)
def test_crafted_checkpoints_are_one_line_errors(tmp_path, parts, message):
    path = _save(tmp_path / "c.pt", **parts)
    with pytest.raises(CheckpointError, match=message) as caught:
        load_trained(CodecTask, path)
    assert "\n" not in str(caught.value)


def test_the_command_reports_a_crafted_checkpoint_in_one_line(tmp_path, capsys):
    path = _save(tmp_path / "c.pt", identity=["codec"])
    image = write_random_png(tmp_path / "x.png", (8, 8, 3))
    assert main(["codec", "compress", image, "-o", str(tmp_path / "x.sfc"), "--checkpoint", str(path)]) == 2
    assert "its identity must be a dict, found a list" in single_error_line(capsys)


def test_secret_bits_have_an_upper_bound(tmp_path):
    identity = {**StampTask().identity(), "model": {"image_size": 400, "secret_bits": 10**6}}
    path = _save(tmp_path / "c.pt", identity=identity)
    with pytest.raises(CheckpointError, match="secret_bits must be at most 4096"):
        load_trained(StampTask, path)


def test_a_model_over_the_memory_budget_is_refused_with_its_size(tmp_path, monkeypatch):
    path = _save(tmp_path / "c.pt", identity=_codec_identity(N=64, M=96))
    size = model_bytes(CodecTask(CodecConfig(N=64, M=96)))  # counted on the meta device
    real = HyperpriorCodec(CodecConfig(N=64, M=96))
    assert size == sum(t.numel() * t.element_size() for t in (*real.parameters(), *real.buffers()))
    monkeypatch.setenv(MEMORY_ENV, "4M")
    with pytest.raises(CheckpointError, match="would take about .* MiB, more than the memory budget of 4.0 MiB"):
        load_trained(CodecTask, path)


def test_the_size_is_weighed_before_any_weight_is_allocated(tmp_path):
    # N = M = 1024 (the configs' bound) is 1.3 GB of weights; with 1.2 GB of address space
    # left, building them would fail in the allocator: the estimate refuses them first
    path = _save(tmp_path / "c.pt", identity=_codec_identity(N=1024, M=1024))
    script = textwrap.dedent(f"""
        import os, resource
        from stegafast.models.codec import CodecTask
        from stegafast.train import load_trained
        mapped = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        cap = mapped + 1200 * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        try:
            load_trained(CodecTask, {str(path)!r})
        except Exception as exc:
            print(type(exc).__name__, exc)
    """)
    env = {k: v for k, v in os.environ.items() if k != MEMORY_ENV}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("CheckpointError") and "more than the memory budget" in out.stdout, out.stdout


@pytest.mark.parametrize(
    "info, message",
    [
        ([1, 2], "it holds a list, not a JSON object"),
        ({"identity": "codec"}, "its 'identity' is a str, not a JSON object"),
        ({"config": [1]}, "its 'config' is a list, not a JSON object"),
    ],
)
def test_a_crafted_run_json_is_a_run_dir_error(tmp_path, capsys, info, message):
    run = RunDir(tmp_path / "run")
    run.checkpoint_dir.mkdir(parents=True)
    _save(run.checkpoint_path(1))
    run.info_path.write_text(json.dumps(info))
    with pytest.raises(RunDirError, match=message):
        load_trained(CodecTask, run.root)
    argv = ["codec", "train", "--out", str(run.root), "--steps", "1", "--resume"]
    assert main(argv) == 2
    assert message in single_error_line(capsys)
