"""The codec's training defaults (issue 14 item 3): N=128/M=192, gradient clipping 1.0, a 10x LR drop at 80%
of the steps, 256 px crops when the data allow them; checkpoints of other sizes keep loading."""

import json

from testutils import QUICK_TRAIN_ARGS, write_random_png

from stegafast.cli import main
from stegafast.models.codec import CodecConfig, CodecTask
from stegafast.models.codec.defaults import PREFERRED_CROP, default_crop_size, default_lr_schedule
from stegafast.train import Schedule


def test_the_architecture_defaults_are_the_published_low_rate_models():
    assert (CodecConfig().N, CodecConfig().M) == (128, 192)
    # a checkpoint records its sizes: one of the earlier defaults is rebuilt as it was trained
    task = CodecTask.from_identity(
        {"task": "codec", "model": {"N": 64, "M": 96, "quantization": "noise"}, "lmbda": 0.01}
    )
    assert task.model_config == CodecConfig(N=64, M=96)


def test_the_learning_rate_drops_tenfold_at_80_percent_of_the_steps():
    schedule = Schedule.parse(default_lr_schedule(3000))
    assert [schedule.factor(s, 3000) for s in (0, 2399, 2400, 2999)] == [1.0, 1.0, 0.1, 0.1]


def test_crops_are_256_when_the_data_allow_and_smaller_when_not(tmp_path):
    assert default_crop_size(None) == (PREFERRED_CROP, None)  # the bundled training photos
    for i, shape in enumerate([(150, 200, 3), (140, 300, 3), (400, 400, 3)]):
        write_random_png(tmp_path / f"{i}.png", shape, seed=i)
    size, note = default_crop_size(tmp_path)
    assert size == 128 and "median training image is 150 px on its short side" in note


def test_train_applies_the_defaults(tmp_path, capsys):
    data = tmp_path / "images"
    data.mkdir()
    for i in range(2):
        write_random_png(data / f"{i}.png", (70, 90, 3), seed=i)
    run = tmp_path / "run"
    argv = ["codec", "train", "--data", str(data), "--out", str(run), "--steps", "5", "--N", "8", "--M", "8"]
    assert main([*argv, *QUICK_TRAIN_ARGS]) == 0
    assert "codec train: training on 64 px crops" in capsys.readouterr().err
    config = json.loads((run / "run.json").read_text())["config"]
    assert config["clip_norm"] == 1.0
    assert config["schedule"] == {"kind": "step", "warmup": 0, "final": 0.0, "every": 4, "gamma": 0.1}
