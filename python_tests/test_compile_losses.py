"""The losses under ``--compile``: ``ctx.compiled(fn)`` compiles a task's loss once per run (and is
``fn`` itself in eager runs); the stego and codec losses, which their tasks compile so, trace as one
graph each (dynamo's explain: no break), with their step-dependent float weights among the inputs."""

import pytest
import torch
import torch._dynamo
import torch.nn.functional as F
from train_toys import RegressionTask

from stegafast.models.codec import CodecConfig, CodecTask
from stegafast.models.codec.losses import rate_distortion
from stegafast.models.stego import StegoLossConfig, StegoModelConfig, StegoTask
from stegafast.models.stego.losses import stego_loss
from stegafast.train import TrainConfig, train
from stegafast.train.task import built_models


def _mse(prediction, target, weight):
    return weight * F.mse_loss(prediction, target)


class _CompiledLoss(RegressionTask):
    """The regression toy computing its loss through ``ctx.compiled``, recording what that gave."""

    def training_step(self, batch, ctx):
        x, y = batch
        self.wrappers = [*getattr(self, "wrappers", []), ctx.compiled(_mse)]
        loss = self.wrappers[-1](ctx.model(x), y, 1.0 + ctx.step)  # a weight that changes every step
        ctx.backward(loss)
        return {"loss": loss}


def _config(out, **kw):
    return TrainConfig(out=out, steps=3, batch_size=4, device="cpu", progress=False, tensorboard=False, **kw)


def test_compiled_is_the_function_itself_in_eager_runs(tmp_path):
    task = _CompiledLoss(val=False, dropout=0.0)
    train(task, _config(tmp_path / "eager"))
    assert task.wrappers == [_mse] * 3


@pytest.mark.slow
def test_compiled_runs_compile_the_loss_once_and_train_alike(tmp_path):
    task = _CompiledLoss(val=False, dropout=0.0)
    compiled = train(task, _config(tmp_path / "compiled", compile=True))
    assert task.wrappers[0] is not _mse and all(w is task.wrappers[0] for w in task.wrappers)
    eager = train(_CompiledLoss(val=False, dropout=0.0), _config(tmp_path / "eager"))
    for name, value in compiled.models["model"].state_dict().items():
        torch.testing.assert_close(value, eager.models["model"].state_dict()[name], atol=1e-5, rtol=1e-4)


def _no_break(fn, *args):
    torch._dynamo.reset()
    explained = torch._dynamo.explain(fn)(*args)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


def test_stego_loss_is_one_graph():
    task = StegoTask(StegoModelConfig(blocks=1, hidden=8), StegoLossConfig(), image_size=16)
    model = built_models(task)["model"]
    cover, secret = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    stego, recovered = model(cover, secret, None)
    _no_break(stego_loss, cover, secret, stego, recovered, task.loss_config, task.alpha_hid(3, 10))


def test_codec_loss_is_one_graph():
    task = CodecTask(CodecConfig(N=8, M=12), image_size=64, epoch_length=4)
    model = built_models(task)["model"]
    x = torch.rand(2, 3, 64, 64)
    _no_break(rate_distortion, x, model(x), task.lmbda)


def test_autoencoder_loss_is_one_graph():
    from stegafast.models.autoencoder import AutoencoderTask, preset_config
    from stegafast.models.autoencoder.losses import reconstruction_loss

    task = AutoencoderTask(preset_config("tiny", (24, 20), channel_config=(4, 8, 8), latent_size=16), epoch_length=4)
    x = torch.rand(2, 1, 24, 20)
    _no_break(reconstruction_loss, built_models(task)["model"](x), x, task.weights)


def test_stamp_image_loss_is_one_graph():
    from stegafast.models.stamp import StampLossConfig
    from stegafast.models.stamp.losses import yuv_l2_loss

    image, encoded = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    _no_break(yuv_l2_loss, encoded, image, StampLossConfig().yuv_scales, 1.5)
