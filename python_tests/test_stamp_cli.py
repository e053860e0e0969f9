"""`stegafast stamp train|encode|decode|evaluate|export-onnx` end to end with a
tiny model (the plumbing, not the accuracy), and the user mistakes each
command reports as one error line and exit status 2."""

import json

import pytest
import torch
from PIL import Image
from testutils import QUICK_TRAIN_ARGS, single_error_line, train_tiny_run, write_random_png

import stegafast.models.stamp.cli as stamp_cli
from stegafast.cli import main
from stegafast.models.stamp import encode_message

TINY_TRAIN = [*"--image-size 32".split(), *QUICK_TRAIN_ARGS, *"--ramp-scale 0.001".split()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_run("stamp", tmp_path_factory.mktemp("stamp"), 3, (40, 36, 3), 2, TINY_TRAIN)


def test_encode_then_decode(trained, capsys):
    root, data, run = trained
    out = root / "encoded"
    image = write_random_png(root / "photo.png", (45, 70, 3), seed=5)  # not the model's size, not square
    assert (
        main(
            [
                "stamp",
                "encode",
                "--checkpoint",
                str(run),
                "--image",
                image,
                "--secret",
                "Hi!",
                "--out",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    for name in ("photo_hidden.png", "photo_residual.png"):
        with Image.open(out / name) as written:
            assert (written.mode, written.size) == ("RGB", (70, 45))
    capsys.readouterr()
    # an untrained model does not carry the message: decode says so, exit status 1
    status = main(["stamp", "decode", "--checkpoint", str(run), "--image", str(out / "photo_hidden.png")])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(str(out / "photo_hidden.png"))
    assert status == (0 if "corrected" in lines[0] else 1)


def test_decode_reports_message_and_corrections(trained, capsys, monkeypatch):
    root, data, run = trained
    bits = encode_message("Hello!")
    bits[3] = 1 - bits[3]
    monkeypatch.setattr(stamp_cli, "decode_logits", lambda decoder, images: (bits * 2 - 1).unsqueeze(0))
    assert main(["stamp", "decode", "--checkpoint", str(run), "--images-dir", str(data)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(line.endswith(": 'Hello!' (corrected 1 bits)") for line in lines)


def test_evaluate(trained, capsys, tmp_path):
    root, data, run = trained
    report = tmp_path / "eval.json"
    assert (
        main(
            [
                "stamp",
                "evaluate",
                "--checkpoint",
                str(run),
                "--data",
                str(data),
                "--crops",
                "1",
                "--json",
                str(report),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert json.loads(report.read_text()) == result
    assert result["images"] == 3 and result["image_size"] == 32
    assert set(result["distortions"]) == {"none", "jpeg50", "jpeg75", "blur", "noise", "warp", "resize"}
    for values in result["distortions"].values():
        assert 0 <= values["bit_accuracy"] <= 1 and 0 <= values["decode_success"] <= 1
    assert 0 < result["ssim"] <= 1 and result["psnr"] > 0
    clean = result["distortions"]["none"]
    assert result["summary"].startswith(f"clean decoded {100 * clean['decode_success']:.0f}% ")
    assert f"PSNR {result['psnr']:.1f} dB" in result["summary"]


def test_export_onnx(trained, capsys, tmp_path):
    pytest.importorskip("onnx", reason="onnx is the optional extra stegafast[onnx]")
    pytest.importorskip("onnxruntime", reason="onnxruntime is the optional extra stegafast[onnx]")
    _, _, run = trained
    assert main(["stamp", "export-onnx", "--checkpoint", str(run), "--out", str(tmp_path), "--test"]) == 0
    assert (tmp_path / "encoder.onnx").is_file() and (tmp_path / "decoder.onnx").is_file()
    assert "bit signs agree on 100.0%" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["encode", "--image", "{img}", "--secret", "too long!", "--out", "{tmp}"], "at most 7"),
        (["encode", "--image", "{img}", "--secret", "a\tb", "--out", "{tmp}"], "control characters"),
        (["encode", "--image", "{tmp}/missing.png", "--secret", "x", "--out", "{tmp}"], "does not exist"),
        (["encode", "--image", "{img}", "--secret", "x", "--out", "{img}"], "is a file"),
        (["decode", "--images-dir", "{tmp}/nothing"], "does not exist"),
        (["decode", "--image", "{img}", "--checkpoint", "{img}"], "not a checkpoint"),
        (["evaluate", "--limit", "0"], "--limit"),
        (["evaluate", "--crops", "0"], "--crops"),
        (["train", "--image-size", "40", "--out", "{tmp}/run"], "multiple of 16"),
        (["train", "--jpeg-quality-min", "0", "--out", "{tmp}/run"], "jpeg-quality-min"),
        (["train", "--ramp-scale", "-1", "--out", "{tmp}/run"], "ramp-scale"),
        (["train", "--noise-delay", "-1", "--out", "{tmp}/run"], "noise-delay"),
    ],
)
def test_user_mistakes(trained, capsys, tmp_path, args, message):
    root, data, run = trained
    img = write_random_png(tmp_path / "img.png", (32, 32, 3))
    args = [a.format(img=img, tmp=tmp_path) for a in args]
    if args[0] != "train" and "--checkpoint" not in args:
        args += ["--checkpoint", str(run)]
    assert main(["stamp", *args]) == 2
    assert message in single_error_line(capsys)


def test_checkpoint_of_another_family(tmp_path, capsys):
    from stegafast.train import atomic_save
    from stegafast.train.checkpoint import CHECKPOINT_FORMAT

    path = tmp_path / "other.pt"
    atomic_save({"format": CHECKPOINT_FORMAT, "identity": {"task": "stego"}, "models": {}}, path)
    img = write_random_png(tmp_path / "img.png", (32, 32, 3))
    assert main(["stamp", "decode", "--checkpoint", str(path), "--image", img]) == 2
    assert "not 'stamp'" in single_error_line(capsys)
    assert torch.is_tensor(encode_message("x"))
