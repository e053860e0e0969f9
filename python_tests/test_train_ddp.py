"""Data parallelism: two CPU processes under torchrun (gloo, loopback only) end
with identical parameters, equal to one process training on the same global
batch, for a single-optimiser task, a main + auxiliary task whose auxiliary
gradients DDP cannot see, and an alternating WGAN with a gradient penalty."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_toys import DDP_TASKS, ddp_config, flat_parameters

from stegafast.train import RunDir, train

WORKER = Path(__file__).with_name("train_toys.py")


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    (root / "runs").mkdir()
    (root / "results").mkdir()
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(WORKER),
        str(root / "runs"),
        str(root / "results"),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = {
        name: [torch.load(root / "results" / f"{name}-rank{rank}.pt", weights_only=True) for rank in (0, 1)]
        for name in DDP_TASKS
    }
    return root, results


@pytest.mark.parametrize("name", sorted(DDP_TASKS))
def test_both_processes_end_with_identical_parameters(two_process_results, name):
    rank0, rank1 = two_process_results[1][name]
    assert torch.equal(rank0["params"], rank1["params"])
    # Logged metrics are pooled over both processes, so both hold the same numbers (but the wall-clock ones).
    assert rank0["val"] == rank1["val"]
    clock = ("samples_per_s", "data_wait_share")
    assert {k: v for k, v in rank0["train"].items() if k not in clock} == {
        k: v for k, v in rank1["train"].items() if k not in clock
    }


@pytest.mark.parametrize("name", ["regression", "codec"])
def test_two_processes_train_like_one_with_the_global_batch(two_process_results, tmp_path, name):
    """2 processes x 4 samples x 2 micro-batches = 1 process x 8 samples x 2 micro-batches."""
    _, results = two_process_results
    single = train(DDP_TASKS[name](), ddp_config(tmp_path, batch_size=8, grad_accum=2))
    torch.testing.assert_close(results[name][0]["params"], flat_parameters(single.models), rtol=1e-5, atol=1e-6)
    for metric, value in single.val_metrics.items():  # pooled over both shards of the validation set
        assert results[name][0]["val"][metric] == pytest.approx(value, rel=1e-5)
    # A per-sample mean averaged over the processes is the mean over the global batch.
    assert results[name][0]["train"]["loss"] == pytest.approx(single.train_metrics["loss"], rel=1e-5)


def test_only_rank_zero_wrote_the_run_folder(two_process_results):
    root, _ = two_process_results
    for name in DDP_TASKS:
        run = RunDir(root / "runs" / name)
        assert run.latest() == run.checkpoint_path(6)
        lines = run.metrics_jsonl.read_text().splitlines()
        assert len(lines) == len(set(lines))  # one writer: no duplicated records
