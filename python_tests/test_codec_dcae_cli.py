"""`stegafast codec ... --model dcae` end to end: train (with resume), compress,
decompress and evaluate with the CPU preset, and its option mistakes."""

import json

import pytest
from testutils import QUICK_TRAIN_ARGS, single_error_line, train_tiny_run, write_random_png

from stegafast.cli import main
from stegafast.data import load_image
from stegafast.train import load_checkpoint

# QUICK_TRAIN_ARGS with batch 1 (argparse keeps the last value)
DCAE_MODEL = "--model dcae --preset small --lmbda 0.0067 --image-size 64".split()
DCAE_TRAIN = [*DCAE_MODEL, *QUICK_TRAIN_ARGS, "--batch-size", "1", "--lr", "1e-3"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_run("codec", tmp_path_factory.mktemp("dcae"), 2, (70, 80, 3), 2, DCAE_TRAIN)


def test_train_resume_compress_decompress_evaluate(trained, tmp_path, capsys):
    root, data, run = trained
    argv = ["codec", "train", "--data", str(data), "--out", str(run), "--steps", "3", "--resume", *DCAE_TRAIN]
    assert main(argv) == 0
    state = load_checkpoint(sorted((run / "checkpoints").glob("step-*.pt"))[-1])
    assert state["step"] == 3 and state["identity"]["architecture"] == "dcae"
    assert state["identity"]["model"]["M"] == 80  # the small preset
    image = write_random_png(root / "odd.png", (37, 53), "L", seed=5)
    sfc, out = tmp_path / "odd.sfc", tmp_path / "odd.png"
    assert main(["codec", "compress", image, "-o", str(sfc), "--checkpoint", str(run)]) == 0
    assert "bpp" in capsys.readouterr().out
    assert main(["codec", "decompress", str(sfc), "-o", str(out), "--checkpoint", str(run)]) == 0
    assert load_image(out).shape == (3, 37, 53)
    argv = ["codec", "evaluate", "--checkpoint", str(run), "--data", str(data), "--out", str(tmp_path / "rd")]
    assert main([*argv, "--limit", "1", "--jpeg-qualities", "50", "--webp-qualities", "50"]) == 0
    table = json.loads((tmp_path / "rd" / "rd.json").read_text())
    assert [p["codec"] for p in table["points"]] == ["stegafast", "JPEG", "WebP"]
    assert table["points"][0]["bpp"] > 0 and table["points"][0]["psnr"] > 0
    capsys.readouterr()
    sfc.write_bytes(sfc.read_bytes()[:-1])
    assert main(["codec", "decompress", str(sfc), "-o", str(out), "--checkpoint", str(run)]) == 2
    assert "truncated" in single_error_line(capsys)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "dcae", "--M", "81"], "--M must be a multiple of slices"),
        (["--preset", "small"], "--preset is for --model dcae"),
        (["--model", "dcae", "--preset", "small", "--N", "0"], "--N must be a positive integer"),
    ],
)
def test_option_mistakes(tmp_path, capsys, extra, message):
    assert main(["codec", "train", "--out", str(tmp_path / "o"), *extra]) == 2
    assert message in single_error_line(capsys)
