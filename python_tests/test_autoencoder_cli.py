"""`stegafast autoencoder train|reconstruct|encode|visualize|evaluate` end to end with a tiny
model, and the user mistakes each command reports as one error line and exit status 2."""

import json

import numpy as np
import pytest
from PIL import Image
from testutils import QUICK_TRAIN_ARGS, single_error_line, train_tiny_run, write_random_png

from stegafast.cli import main
from stegafast.data import load_image

TINY_TRAIN = [*"--preset tiny --channels 4 8 8 --latent-size 24 --input-size 24 20".split(), *QUICK_TRAIN_ARGS]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_run("autoencoder", tmp_path_factory.mktemp("ae"), 3, (30, 26, 3), 2, TINY_TRAIN)


def test_train_resume(trained, capsys):
    _, data, run = trained
    args = ["autoencoder", "train", "--data", str(data), "--out", str(run), "--steps", "3", "--resume", *TINY_TRAIN]
    assert main(args) == 0
    assert "trained to step 3" in capsys.readouterr().out


def test_reconstruct_encode_visualize(trained, capsys):
    root, _, run = trained
    image = write_random_png(root / "odd.png", (37, 53, 3), "RGB", seed=3)  # colour, odd size: read as L
    recon, latent, picture = root / "recon.png", root / "latent.npy", root / "views.png"
    common = ["--checkpoint", str(run), "--device", "cpu"]
    assert main(["autoencoder", "reconstruct", image, "-o", str(recon), *common]) == 0
    assert load_image(recon, "L").shape == (1, 37, 53)
    assert main(["autoencoder", "encode", image, "-o", str(latent), *common]) == 0
    values = np.load(latent)
    assert values.shape == (24,) and values.dtype == np.float32
    assert main(["autoencoder", "visualize", image, "-o", str(picture), *common]) == 0
    with Image.open(picture) as drawn:
        assert drawn.width > 3 * 53 and drawn.height >= 37


def test_evaluate_json(trained, tmp_path, capsys):
    _, data, run = trained
    out = tmp_path / "eval.json"
    assert main(["autoencoder", "evaluate", "--checkpoint", str(run), "--data", str(data), "--json", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["images"] == 3 and printed["size"] == [24, 20]
    assert printed["psnr"] > 0 and -1 <= printed["ssim"] <= 1 and 0 <= printed["mse"] <= 1
    assert printed["psnr"] == pytest.approx(sum(r["psnr"] for r in printed["per_image"]) / 3)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--blocks", "resnet", "se"], "one entry per stage"),
        (["--channels", "0", "8", "8"], "channel_config"),
        (["--input-size", "0", "10"], "--input-size"),
        (["--image-size", "16"], "not both"),
        (["--loss", "both", "--l1-weight", "-1"], "--l1-weight"),
        (["--steps", "0"], "--steps"),
    ],
)
def test_train_errors(tmp_path, capsys, extra, message):
    assert main(["autoencoder", "train", "--out", str(tmp_path / "run"), *TINY_TRAIN, *extra]) == 2
    assert message in single_error_line(capsys)


def test_command_errors(trained, tmp_path, capsys):
    root, _, run = trained
    image = write_random_png(root / "err.png", (20, 20), "L")
    cases = [
        (["reconstruct", str(root / "missing.png"), "-o", str(tmp_path / "r.png")], "does not exist"),
        (["reconstruct", image, "-o", str(tmp_path / "r.jpg")], "must be a .png file"),
        (["encode", image, "-o", str(tmp_path / "l.txt")], "must be a .npy file"),
        (["visualize", image, "-o", image], "is also an input"),
        (["reconstruct", image, "-o", str(tmp_path / "r.png"), "--checkpoint", str(tmp_path / "none")], "none"),
        (["evaluate", "--limit", "0"], "--limit must be at least 1"),
    ]
    for args, message in cases:
        checkpoint = [] if "--checkpoint" in args else ["--checkpoint", str(run)]
        assert main(["autoencoder", *args, *checkpoint]) == 2, args
        assert message in single_error_line(capsys), args
