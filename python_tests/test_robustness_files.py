"""Files are never lost: the atomic writer on a full disk, strict JSON, and one run per folder."""

import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from stegafast.data import DataError, save_image
from stegafast.errors import OutputError, RunDirError
from stegafast.io import TEMP_SUFFIX, strict_json_dumps, write_bytes, write_json
from stegafast.train import RunDir


def _full_disk(*args):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize(
    "write",
    [
        lambda p: write_bytes(p, b"new bytes"),
        lambda p: write_json(p, {"a": 1}),
        lambda p: save_image(torch.rand(3, 4, 4), p),
    ],
)
def test_a_full_disk_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, write):
    path = tmp_path / "out.png"
    path.write_bytes(b"old")
    monkeypatch.setattr(os, "fsync", _full_disk)
    with pytest.raises((OutputError, DataError), match="No space left on device"):
        write(path)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.png"]


def test_a_missing_folder_or_a_folder_as_destination_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="cannot write"):
        write_bytes(tmp_path / "no" / "x.bin", b"x")
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputError, match="cannot write"):
        write_bytes(tmp_path / "d", b"x")
    assert not list(tmp_path.glob(f".*{TEMP_SUFFIX}"))


def test_json_is_strict():
    text = strict_json_dumps({"loss": float("nan"), "x": [float("inf"), 1.5]})
    assert json.loads(text) == {"loss": None, "x": [None, 1.5]}
    assert "NaN" not in text and "Infinity" not in text


def test_a_held_run_folder_is_refused_with_the_holders_pid(tmp_path):
    run = RunDir(tmp_path / "run")
    with run.locked():
        with pytest.raises(RunDirError, match=f"in use by another training run \\(pid {os.getpid()}\\)"):
            with RunDir(tmp_path / "run").locked():
                pass
    with run.locked():  # released on exit
        pass


def test_a_killed_holder_releases_the_lock(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from stegafast.train import RunDir
        with RunDir({str(tmp_path / "run")!r}).locked():
            print("locked", flush=True)
            time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirError, match=f"pid {holder.pid}"):
            with RunDir(tmp_path / "run").locked():
                pass
    finally:
        holder.kill()
        holder.wait(timeout=60)
    with RunDir(tmp_path / "run").locked():
        pass
