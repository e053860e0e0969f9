"""``--channels-last``: every native op gives the same values and gradients for a channels-last
input as for its contiguous copy (forward and backward), and returns a contiguous (NCHW) result,
which is the copy the README (section "Training speed") documents; the engine trains with channels-last
models and batches; the helpers leave non-image tensors alone."""

import argparse

import pytest
import torch
from testutils import on_native, requires_native
from torch import nn
from torch.utils.data import Dataset

from stegafast import ops
from stegafast.cli.train_args import add_common_train_args, config_from_args
from stegafast.nn import DiffJPEG
from stegafast.train import OptimizerSpec, Task, TrainConfig, train
from stegafast.train.memory_format import batch_to_channels_last, models_to_channels_last

CL = torch.channels_last


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    out = t.contiguous(memory_format=CL)
    assert out.is_contiguous(memory_format=CL) and not out.is_contiguous()
    return out


def _values_and_grads(fn, inputs, weights):
    """fn(*inputs) and the gradients of sum(weights * output) for each input (natively)."""
    leaves = [x.detach().requires_grad_() for x in inputs]
    out = on_native(fn, *leaves)
    out = out[0] if isinstance(out, tuple) else out
    grads = torch.autograd.grad((out * weights).sum(), leaves)
    return out, grads


def _assert_same_for_channels_last(fn, inputs, atol=0.0):
    """fn on channels-last copies of ``inputs`` equals fn on the contiguous inputs, bit for bit (the kernels
    read a contiguous copy) unless ``atol`` allows more, forward and backward; and the output is contiguous
    NCHW."""
    contiguous = [x.contiguous() for x in inputs]
    first = on_native(fn, *contiguous)
    weights = torch.randn_like(first[0] if isinstance(first, tuple) else first)
    expected, expected_grads = _values_and_grads(fn, contiguous, weights)
    out, grads = _values_and_grads(fn, [_channels_last(x) for x in inputs], weights)
    assert out.is_contiguous()
    torch.testing.assert_close(out, expected, rtol=0, atol=atol)
    for grad, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, want, rtol=0, atol=atol)


def _image(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=g).float()


@requires_native
@pytest.mark.parametrize("shape", [(2, 3, 16, 12), (1, 5, 9, 7)], ids=["even", "odd"])
def test_ilwt_forward_and_inverse(shape):
    x = _image(shape)
    _assert_same_for_channels_last(lambda t: ops.ilwt53_forward(t, rounding=False), [x])
    bands = ops.ilwt53_forward(x)
    _assert_same_for_channels_last(lambda t: ops.ilwt53_inverse(t, shape[2:], rounding=False), [bands])


@requires_native
@pytest.mark.parametrize("clamp_fn", ["tanh", "atan"])
def test_affine_coupling_forward_and_inverse(clamp_fn):
    x, s, t = (torch.randn(2, 6, 10, 9, generator=torch.Generator().manual_seed(i)) for i in range(3))
    _assert_same_for_channels_last(lambda a, b, c: ops.affine_coupling(a, b, c, clamp_fn=clamp_fn), [x, s, t])
    _assert_same_for_channels_last(lambda a, b, c: ops.affine_coupling_inverse(a, b, c, clamp_fn=clamp_fn), [x, s, t])


@requires_native
@pytest.mark.parametrize("rounding", ["ste", "cubic"])
def test_jpeg_quantize_blocks(rounding):
    x = _image((2, 3, 16, 24)) - 128
    table = ops.jpeg_quality_table(50)
    _assert_same_for_channels_last(lambda t: ops.jpeg_quantize_blocks(t, table, rounding), [x])


@requires_native
def test_diffjpeg_module():
    """DiffJPEG as the stamp noise layers call it: on an NHWC image, the same images and gradients up to float32
    rounding (its colour transforms and chroma resampling are PyTorch ops, whose CPU kernels may sum in another
    order for another layout: images up to 1.2e-7 and gradients up to 3.6e-6 apart on an AMD EPYC, bit for bit
    on an Intel Xeon)."""
    jpeg = DiffJPEG(quality=60, rounding="cubic")
    x = _image((2, 3, 20, 18)) / 255
    _assert_same_for_channels_last(jpeg, [x], atol=1e-5)


@requires_native
def test_window_attention():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(4, 2, 16, 8, generator=g) for _ in range(3))
    bias = torch.randn(2, 16, 16, generator=g)
    _assert_same_for_channels_last(lambda a, b, c: ops.window_attention(a, b, c, bias=bias), [q, k, v])


def test_batch_to_channels_last_converts_only_floating_images():
    images, bits, vectors = torch.rand(2, 3, 8, 8), torch.randint(0, 2, (2, 1, 4, 4)), torch.rand(2, 5)
    converted = batch_to_channels_last({"x": images, "pair": (bits, vectors)})
    assert converted["x"].is_contiguous(memory_format=CL) and torch.equal(converted["x"], images)
    assert converted["pair"][0] is bits and converted["pair"][1] is vectors


def test_models_to_channels_last_keeps_the_state_dict():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(2, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    models_to_channels_last({"m": model})
    assert model[0].weight.is_contiguous(memory_format=CL)
    assert before.keys() == model.state_dict().keys()
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name])


class _Images(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, index):
        g = torch.Generator().manual_seed(index)
        return torch.rand(3, 8, 8, generator=g), torch.rand(2, generator=g)


class _ConvTask(Task):
    """A convolution regression that records the memory formats its step sees."""

    name = "toy.conv"

    def __init__(self):
        self.seen = []

    def build_models(self):
        return nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
        )

    def build_optimizers(self, models, config):
        return OptimizerSpec(torch.optim.SGD(models["model"].parameters(), lr=0.1))

    def train_dataset(self):
        return _Images()

    def training_step(self, batch, ctx):
        x, y = batch
        self.seen.append(
            (x.is_contiguous(memory_format=CL), ctx.modules["model"][0].weight.is_contiguous(memory_format=CL))
        )
        loss = nn.functional.mse_loss(ctx.model(x), y)
        ctx.backward(loss)
        return {"loss": loss}


@pytest.mark.parametrize("channels_last", [False, True])
def test_engine_trains_channels_last_to_the_same_weights(tmp_path, channels_last):
    task = _ConvTask()
    config = TrainConfig(
        out=tmp_path / "run",
        steps=2,
        batch_size=4,
        device="cpu",
        progress=False,
        tensorboard=False,
        channels_last=channels_last,
    )
    result = train(task, config)
    assert task.seen == [(channels_last, channels_last)] * 2
    plain = train(
        _ConvTask(),
        TrainConfig(out=tmp_path / "plain", steps=2, batch_size=4, device="cpu", progress=False, tensorboard=False),
    )
    for name, value in result.models["model"].state_dict().items():
        torch.testing.assert_close(value, plain.models["model"].state_dict()[name], atol=1e-6, rtol=1e-5)


def test_cli_option_sets_the_config(tmp_path):
    parser = argparse.ArgumentParser()
    add_common_train_args(parser)
    args = parser.parse_args(["--out", str(tmp_path / "run"), "--channels-last", "--image-size", "32"])
    assert config_from_args(args).channels_last is True
    args = parser.parse_args(["--out", str(tmp_path / "run"), "--image-size", "32"])
    assert config_from_args(args).channels_last is False
