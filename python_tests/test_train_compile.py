"""``--compile`` in the engine: the training forwards run compiled, the checkpoints stay
those of the plain modules (a compiled run resumes uncompiled and the other way round),
with AMP too; and the option's checks."""

import argparse

import pytest
import torch
from train_toys import RegressionTask

from stegafast.cli.train_args import add_common_train_args, config_from_args
from stegafast.errors import UserError
from stegafast.train import COMPILE_MODES, TrainConfig, compile_models, load_checkpoint, train


class _Recording(RegressionTask):
    """The regression toy, remembering the type of the model its training step called."""

    def training_step(self, batch, ctx):
        self.called = type(ctx.model)
        return super().training_step(batch, ctx)


def _config(out, steps, **kw):
    return TrainConfig(out=out, steps=steps, batch_size=4, progress=False, device="cpu", tensorboard=False, **kw)


def _keys(checkpoint):
    return {name: sorted(weights) for name, weights in load_checkpoint(checkpoint)["models"].items()}


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_compiled_and_plain_runs_share_checkpoints(tmp_path, amp):
    compiled_first = _Recording(val=False)
    first = train(compiled_first, _config(tmp_path / "a", 1, compile=True, amp=amp))
    assert compiled_first.called is torch._dynamo.eval_frame.OptimizedModule
    plain = train(RegressionTask(val=False), _config(tmp_path / "b", 1, amp=amp))
    plain_keys = _keys(plain.latest_checkpoint)  # read now: resuming below replaces the step-1 checkpoints
    assert _keys(first.latest_checkpoint) == plain_keys
    assert not any("_orig_mod" in k for keys in plain_keys.values() for k in keys)
    assert not isinstance(first.models["model"], torch._dynamo.eval_frame.OptimizedModule)  # handed back plain

    resumed_plain = train(RegressionTask(val=False), _config(tmp_path / "a", 2, resume=True, amp=amp))
    resumed_compiled = _Recording(val=False)
    resumed = train(resumed_compiled, _config(tmp_path / "b", 2, resume=True, compile=True, amp=amp))
    assert resumed_compiled.called is torch._dynamo.eval_frame.OptimizedModule
    assert resumed_plain.step == resumed.step == 2
    assert _keys(resumed_plain.latest_checkpoint) == _keys(resumed.latest_checkpoint) == plain_keys
    assert torch.isfinite(torch.tensor(resumed.train_metrics["loss"]))


def test_compiled_training_matches_eager(tmp_path):
    """Same seed, same steps: the compiled run's weights are the eager run's (to float tolerance)."""
    eager = train(RegressionTask(val=False, dropout=0.0), _config(tmp_path / "e", 3))
    compiled = train(RegressionTask(val=False, dropout=0.0), _config(tmp_path / "c", 3, compile=True))
    expected = eager.models["model"].state_dict()
    for name, weights in compiled.models["model"].state_dict().items():
        torch.testing.assert_close(weights, expected[name], atol=1e-5, rtol=1e-4)


def test_compile_models_wraps_without_copying():
    model = torch.nn.Linear(3, 2)
    wrapped = compile_models({"model": model}, "max-autotune")["model"]
    assert wrapped._orig_mod is model and set(wrapped.state_dict()) == {"_orig_mod.weight", "_orig_mod.bias"}
    with pytest.raises(ValueError, match="compile_mode must be one of"):
        compile_models({"model": model}, "fast")


def _args(tmp_path, *argv):
    parser = argparse.ArgumentParser()
    add_common_train_args(parser)
    return parser.parse_args(["--out", str(tmp_path / "run"), *argv])


def test_the_options(tmp_path):
    assert COMPILE_MODES == ("default", "reduce-overhead", "max-autotune")
    config = config_from_args(_args(tmp_path, "--compile", "--compile-mode", "reduce-overhead"))
    assert config.compile and config.compile_mode == "reduce-overhead"
    config = config_from_args(_args(tmp_path))
    assert not config.compile and config.compile_mode == "default"
    with pytest.raises(UserError, match="--compile-mode max-autotune needs --compile"):
        config_from_args(_args(tmp_path, "--compile-mode", "max-autotune"))
    with pytest.raises(ValueError, match="compile_mode must be one of"):
        _config(tmp_path, 1, compile=True, compile_mode="fast")
    assert not (tmp_path / "run").exists()
