"""`stegafast stego train|embed|extract|evaluate` end to end in a temporary
folder, with a tiny model, and the user mistakes each command reports as one
error line and exit status 2."""

import json

import pytest
from PIL import Image
from testutils import QUICK_TRAIN_ARGS, single_error_line, train_tiny_run, write_random_png

from stegafast.cli import main
from stegafast.data import load_image
from stegafast.train import atomic_save
from stegafast.train.checkpoint import CHECKPOINT_FORMAT

TINY_TRAIN = [*"--blocks 2 --hidden 16 --image-size 32".split(), *QUICK_TRAIN_ARGS, *"--lr 1e-3".split()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-step run on images generated in a folder."""
    return train_tiny_run("stego", tmp_path_factory.mktemp("stego"), 4, (40, 48, 3), 3, TINY_TRAIN)


def test_train_embed_extract_evaluate(trained, capsys):
    root, data, run = trained
    checkpoint = run / "checkpoints" / "step-00000003.pt"
    assert checkpoint.is_file()
    cover = write_random_png(root / "cover.png", (35, 41, 3), seed=10)  # odd size
    secret = write_random_png(root / "secret.png", (20, 30, 4), "RGBA", seed=11)  # another size, with alpha
    stego = root / "stego.png"
    assert (
        main(
            [
                "stego",
                "embed",
                "--checkpoint",
                str(checkpoint),
                "--cover",
                cover,
                "--secret",
                secret,
                "--out",
                str(stego),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    with Image.open(stego) as image:
        assert (image.mode, image.size) == ("RGB", (41, 35))
    # the residual is bounded: |dY| <= 0.02, |dCb|, |dCr| <= 0.06, so in RGB at most
    # 0.02 + 1.772 * 0.06 (blue), plus half an 8-bit step of rounding
    assert (load_image(stego) - load_image(cover)).abs().max() <= 0.02 + 1.772 * 0.06 + 0.5 / 255 + 1e-6
    recovered = root / "recovered.png"
    # a run folder works as --checkpoint too
    assert main(["stego", "extract", "--checkpoint", str(run), "--stego", str(stego), "--out", str(recovered)]) == 0
    with Image.open(recovered) as image:
        assert image.size == (41, 35)
    capsys.readouterr()
    assert (
        main(
            [
                "stego",
                "evaluate",
                "--checkpoint",
                str(checkpoint),
                "--data",
                str(data),
                "--image-size",
                "32",
                "--limit",
                "2",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    for key in ("hiding_psnr", "hiding_ssim", "recovery_psnr", "recovery_ssim", "ber", "bit_accuracy"):
        assert isinstance(result[key], float)
    assert result["pairs"] == 2 and 0 <= result["ber"] <= 1
    assert result["hiding_psnr"] > 20  # kY = 0.02 and kC = 0.06 bound the change
    headline = f"hiding {result['hiding_psnr']:.1f} dB, recovery {result['recovery_psnr']:.1f} dB"
    assert result["summary"].startswith(headline)


def test_grayscale_cover_is_converted(trained, tmp_path):
    _, _, run = trained
    cover = write_random_png(tmp_path / "grey.png", (32, 32), "L")
    secret = write_random_png(tmp_path / "secret.png", (32, 32, 3))
    out = tmp_path / "stego.png"
    assert (
        main(["stego", "embed", "--checkpoint", str(run), "--cover", cover, "--secret", secret, "--out", str(out)]) == 0
    )
    assert load_image(out).shape == (3, 32, 32)


def test_resume_continues_the_run(trained, tmp_path):
    root, data, run = trained
    assert (
        main(["stego", "train", "--data", str(data), "--out", str(run), "--steps", "4", "--resume", *TINY_TRAIN]) == 0
    )
    assert (run / "checkpoints" / "step-00000004.pt").is_file()


def _foreign_checkpoint(path):
    atomic_save({"format": CHECKPOINT_FORMAT, "identity": {"task": "toy.regression"}, "models": {}}, path)
    return str(path)


@pytest.mark.parametrize(
    "case",
    [
        "missing cover",
        "not an image",
        "too small",
        "other model",
        "not a checkpoint",
        "not png out",
        "missing checkpoint",
    ],
)
def test_embed_mistakes_are_one_line_errors(trained, tmp_path, capsys, case):
    _, _, run = trained
    good = write_random_png(tmp_path / "good.png", (32, 32, 3))
    args = {"--checkpoint": str(run), "--cover": good, "--secret": good, "--out": str(tmp_path / "s.png")}
    expected = {
        "missing cover": ("--cover", str(tmp_path / "nope.png"), "does not exist"),
        "not an image": ("--cover", str(tmp_path / "notes.png"), "cannot read image"),
        "too small": (
            "--secret",
            write_random_png(tmp_path / "small.png", (12, 40, 3)),
            "12x40; the stego model needs at least",
        ),
        "other model": ("--checkpoint", _foreign_checkpoint(tmp_path / "toy.pt"), "not 'stego'"),
        "not a checkpoint": ("--checkpoint", str(tmp_path / "notes.png"), "is not a checkpoint file"),
        "not png out": ("--out", str(tmp_path / "s.jpg"), "must be a .png"),
        "missing checkpoint": ("--checkpoint", str(tmp_path / "none.pt"), "no checkpoint at"),
    }[case]
    (tmp_path / "notes.png").write_text("not an image")
    args[expected[0]] = expected[1]
    argv = ["stego", "embed"] + [x for kv in args.items() for x in kv]
    assert main(argv) == 2
    assert expected[2] in single_error_line(capsys)
    assert not (tmp_path / "s.png").exists()


def test_extract_and_evaluate_mistakes(trained, tmp_path, capsys):
    _, data, run = trained
    assert (
        main(
            [
                "stego",
                "extract",
                "--checkpoint",
                str(run),
                "--stego",
                str(tmp_path / "nope.png"),
                "--out",
                str(tmp_path / "o.png"),
            ]
        )
        == 2
    )
    assert "does not exist" in single_error_line(capsys)
    assert main(["stego", "evaluate", "--checkpoint", str(run), "--data", str(tmp_path / "empty")]) == 2
    assert "does not exist" in single_error_line(capsys)
    assert main(["stego", "evaluate", "--checkpoint", str(run), "--image-size", "8"]) == 2
    assert "at least 16" in single_error_line(capsys)


def test_train_mistakes(tmp_path, capsys):
    assert main(["stego", "train", "--out", str(tmp_path / "r"), "--data", str(tmp_path / "none"), *TINY_TRAIN]) == 2
    assert "does not exist" in single_error_line(capsys)
    assert main(["stego", "train", "--out", str(tmp_path / "r"), *TINY_TRAIN, "--blocks", "0"]) == 2
    assert "--blocks must be a positive integer" in single_error_line(capsys)
    assert main(["stego", "train", "--out", str(tmp_path / "r"), *TINY_TRAIN, "--image-size", "8"]) == 2
    assert "--image-size must be at least 16" in single_error_line(capsys)
    assert not (tmp_path / "r").exists()
