"""scripts/demo_jobs.py (the jobs scripts/demo.sh shows): with tiny bundled checkpoints of the three families it
hides, watermarks and compresses bundled photos and writes every image; without them it says so and succeeds."""

import importlib.util
from pathlib import Path

import pytest
from testutils import QUICK_TRAIN_ARGS, train_tiny_run

from stegafast.data import load_image
from stegafast.models.codec import CodecTask
from stegafast.models.stamp.task import StampTask
from stegafast.models.stego.task import StegoTask
from stegafast.train import bundled
from stegafast.train.bundled import export_bundled

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "stego": (StegoTask, ["--blocks", "2", "--hidden", "16", "--image-size", "32", "--lr", "1e-3"]),
    "stamp": (StampTask, ["--image-size", "32", "--ramp-scale", "0.001"]),
    "codec": (CodecTask, ["--N", "8", "--M", "8", "--image-size", "64", "--lr", "1e-3"]),
}


def _demo_jobs():
    spec = importlib.util.spec_from_file_location("demo_jobs", REPO / "scripts" / "demo_jobs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_jobs_run_on_tiny_bundled_checkpoints(tmp_path, monkeypatch, capsys):
    weights = tmp_path / "weights"
    for family, (task, args) in TINY.items():
        (tmp_path / family).mkdir()
        _, _, run = train_tiny_run(family, tmp_path / family, 2, (64, 72, 3), 1, [*args, *QUICK_TRAIN_ARGS])
        export_bundled(run, task, weights / f"{family}.pt")
    monkeypatch.setattr(bundled, "WEIGHTS_DIR", weights)
    out = tmp_path / "demo"
    capsys.readouterr()
    assert _demo_jobs().main(["--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "skipped" not in text
    assert "hiding PSNR (stego vs cover)" in text and "recovery PSNR" in text
    assert "$ stegafast stamp decode --image" in text and "JPG: " in text and "bits right" in text
    assert "bpp, PSNR" in text and "compress" in text
    for name in ("stego_hidden.png", "stego_recovered.png", "stamp_photo_hidden.png", "codec_decoded.png"):
        assert load_image(out / name).shape[0] == 3
    assert (out / "stamp_photo_hidden_q75.jpg").is_file() and (out / "codec_photo.sfc").is_file()


def test_families_without_a_bundled_checkpoint_are_skipped_plainly(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bundled, "WEIGHTS_DIR", tmp_path / "none")
    assert _demo_jobs().main(["--out", str(tmp_path / "demo")]) == 0
    text = capsys.readouterr().out
    for family in ("stego", "stamp", "codec"):
        assert f"skipped: no bundled {family} checkpoint ships with this installation" in text
