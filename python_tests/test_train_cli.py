"""The command-line helpers every family's `train` command shares: the options,
their conversion to the engine's config, and the mistakes they turn into
UserError before any work."""

import argparse

import pytest
from train_toys import RegressionTask, WganTask

from stegafast.cli.train_args import add_common_train_args, config_from_args, train_from_args
from stegafast.errors import UserError
from stegafast.train import RunDir, Schedule


def _parser():
    parser = argparse.ArgumentParser(prog="stegafast toy train")
    add_common_train_args(parser)
    return parser


def _args(tmp_path, *argv):
    return _parser().parse_args(["--out", str(tmp_path / "run"), *argv])


def test_options_become_the_engine_config(tmp_path):
    args = _args(
        tmp_path,
        "--steps",
        "50",
        "--batch-size",
        "4",
        "--image-size",
        "128",
        "--amp",
        "bf16",
        "--grad-accum",
        "2",
        "--clip-norm",
        "1.5",
        "--lr",
        "3e-4",
        "--lr-schedule",
        "cosine,warmup=5",
        "--workers",
        "0",
        "--seed",
        "7",
        "--device",
        "cpu",
        "--val-every",
        "10",
        "--save-every",
        "20",
        "--keep-best",
        "2",
        "--log-every",
        "5",
        "--no-progress",
        "--data",
        "photos/",
    )
    config = config_from_args(args)
    assert (config.steps, config.batch_size, config.grad_accum, config.amp) == (50, 4, 2, "bf16")
    assert (config.clip_norm, config.lr, config.schedule) == (1.5, 3e-4, Schedule("cosine", warmup=5))
    assert (config.workers, config.seed, config.device) == (0, 7, "cpu")
    assert (config.val_every, config.save_every, config.keep_best, config.log_every) == (10, 20, 2, 5)
    assert config.out == tmp_path / "run" and config.progress is False and config.resume is False
    assert (args.data, args.image_size) == ("photos/", 128)  # the family's own business


def test_families_set_their_own_defaults(tmp_path):
    parser = _parser()
    parser.set_defaults(steps=20000, batch_size=16, image_size=224, lr=3e-5)
    args = parser.parse_args(["--out", str(tmp_path)])
    config = config_from_args(args)
    assert (config.steps, config.batch_size, config.lr, args.image_size) == (20000, 16, 3e-5, 224)
    assert "default: 20000" in parser.format_help()
    assert config.progress is None  # shown on a terminal only


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--steps", "0"], "--steps must be a positive integer"),
        (["--batch-size", "-2"], "--batch-size must be a positive integer"),
        (["--grad-accum", "0"], "--grad-accum must be a positive integer"),
        (["--clip-norm", "-1"], "--clip-norm must be >= 0"),
        (["--lr", "0"], "--lr must be a positive number"),
        (["--workers", "-1"], "--workers must be a non-negative integer"),
        (["--keep-best", "-1"], "--keep-best must be a non-negative integer"),
        (["--image-size", "0"], "--image-size must be a positive integer"),
        (["--lr-schedule", "exponential"], "--lr-schedule: unknown schedule 'exponential'"),
        (["--lr-schedule", "step"], "--lr-schedule: a step schedule needs every >= 1"),
        (["--amp", "fp16", "--device", "cpu"], "--amp fp16 needs a CUDA device"),
        (["--device", "tpu"], "unsupported device 'tpu'"),
    ],
)
def test_bad_values_are_user_errors(tmp_path, argv, message):
    with pytest.raises(UserError, match=message):
        config_from_args(_args(tmp_path, *argv))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv", [["--amp", "fp8"], ["--steps", "many"], ["--batch-size"]])
def test_malformed_options_stop_argparse(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args(argv)
    assert exit_.value.code == 2


def test_out_has_a_default_run_folder():
    assert _parser().parse_args([]).out == "runs/train"


def test_run_folder_mistakes_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="nothing to resume: no checkpoint in"):
        config_from_args(_args(tmp_path, "--resume"), RegressionTask())
    quick = ("--steps", "2", "--workers", "0", "--device", "cpu", "--no-progress")
    result = train_from_args(RegressionTask(), _args(tmp_path, *quick))
    assert result.step == 2 and RunDir(tmp_path / "run").latest() is not None
    with pytest.raises(UserError, match="another run: it belongs to task 'toy.regression', not 'toy.wgan'"):
        config_from_args(_args(tmp_path, *quick, "--resume"), WganTask())
    with pytest.raises(UserError, match="already holds a run .*pass --resume"):
        config_from_args(_args(tmp_path, *quick), RegressionTask())
    more = train_from_args(RegressionTask(), _args(tmp_path, "--steps", "4", *quick[2:], "--resume"))
    assert more.step == 4


def test_checkpoint_problems_met_while_training_are_user_errors(tmp_path):
    quick = ("--steps", "2", "--workers", "0", "--device", "cpu", "--no-progress")
    train_from_args(RegressionTask(), _args(tmp_path, *quick))
    (tmp_path / "run" / "run.json").unlink()  # only the checkpoint can tell whose run it is now
    with pytest.raises(UserError, match="cannot resume from .*task 'toy.regression', not 'toy.wgan'"):
        train_from_args(WganTask(), _args(tmp_path, *quick, "--resume"))
