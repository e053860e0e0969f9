"""One line, not a traceback, and no input overwritten: the command line's checks before any work."""

import pytest
import torch
from testutils import single_error_line, write_random_png
from train_toys import RegressionTask

from stegafast.cli import main
from stegafast.models.stamp.bch import check_message
from stegafast.train import DivergenceError, TrainConfig, load_checkpoint, train


@pytest.fixture
def files(tmp_path):
    image = write_random_png(tmp_path / "photo.png", (16, 16, 3))
    (tmp_path / "afile").write_text("x")
    return tmp_path, image


@pytest.mark.parametrize(
    "argv, message",
    [
        (["codec", "train", "--lmbda", "inf"], "--lmbda must be a finite number, got inf"),
        (["stamp", "train", "--ramp-scale", "inf"], "--ramp-scale must be a finite number"),
        (["stego", "train", "--lr", "nan"], "--lr must be a finite number, got nan"),
        (["codec", "train", "--seed", str(2**64)], "--seed must be an integer from 0 to 2**64 - 1"),
        (["codec", "train", "--seed", "-1"], "--seed must be an integer from 0 to 2**64 - 1"),
        (["codec", "train", "--image-size", "64000"], "--image-size must be at most 4096"),
        (["codec", "train", "--N", "100000"], "--N must be at most 1024"),
        (["codec", "train", "--out", "AFILE"], "is a file, not a folder"),
        (["codec", "compress", "IMG", "-o", "IMG", "--checkpoint", "C"], "must be a .sfc file"),
        (["codec", "compress", "IMG", "-o", "DIR/x.sfc", "--checkpoint", "DIR/x.sfc"], "is also an input"),
        (["codec", "compress", "IMG", "-o", "DIR", "--checkpoint", "C"], "must be a .sfc"),
        (
            ["stego", "embed", "--cover", "IMG", "--secret", "IMG", "--out", "IMG", "--checkpoint", "C"],
            "is also an input",
        ),
        (["stamp", "evaluate", "--checkpoint", "C", "--json", "DIR"], "must be a .json"),
        (["stamp", "export-onnx", "--checkpoint", "C", "--out", "AFILE"], "is a file, not a folder"),
        (
            ["stamp", "encode", "--checkpoint", "C", "--image", "IMG", "--secret", "x" * 10000, "--out", "DIR"],
            "... (10000 characters)",
        ),
    ],
)
def test_mistakes_are_one_line(files, capsys, argv, message):
    tmp, image = files
    names = {"IMG": image, "AFILE": str(tmp / "afile"), "DIR": str(tmp), "DIR/x.sfc": str(tmp / "x.sfc")}
    argv = [names.get(a, a) for a in argv]
    if argv[1] == "train" and "--out" not in argv:
        argv += ["--out", str(tmp / "run")]
    assert main(argv) == 2
    line = single_error_line(capsys)
    assert message in line and len(line) < 300


def test_secrets_that_are_not_utf8_are_named():
    with pytest.raises(ValueError, match="not valid UTF-8"):
        check_message("ab\udcff")


def _encode(tmp, data, out):
    return main(
        [
            "stamp",
            "encode",
            "--checkpoint",
            str(tmp / "none.pt"),
            "--images-dir",
            str(data),
            "--secret",
            "hi",
            "--out",
            str(out),
        ]
    )


def test_encode_refuses_colliding_outputs(tmp_path, capsys):
    data = tmp_path / "in"
    data.mkdir()
    write_random_png(data / "x.png", (8, 8, 3))
    write_random_png(data / "x.jpg", (8, 8, 3))
    assert _encode(tmp_path, data, tmp_path / "out") == 2
    assert "would both be written to" in single_error_line(capsys)


def test_encode_never_overwrites_an_input(tmp_path, capsys):
    data = tmp_path / "in"
    (data / "a").mkdir(parents=True)
    write_random_png(data / "a" / "x.png", (8, 8, 3))
    write_random_png(data / "a" / "x_hidden.png", (8, 8, 3))
    assert _encode(tmp_path, data, data) == 2
    assert "is also an input" in single_error_line(capsys)


def test_a_diverging_run_stops_with_the_step_and_keeps_only_good_checkpoints(tmp_path):
    out = tmp_path / "run"
    config = TrainConfig(
        out=out, steps=40, batch_size=8, save_every=1, log_every=1, lr=1e30, progress=False, tensorboard=False
    )
    with pytest.raises(DivergenceError, match="became NaN or infinite at step"):
        train(RegressionTask(), config)
    for path in (out / "checkpoints").glob("step-*.pt"):
        state = load_checkpoint(path)
        assert all(torch.isfinite(t).all() for t in state["models"]["model"].values())
    assert "NaN" not in (out / "metrics.jsonl").read_text()
