"""The autoencoder's network: presets, block types, latent strategies, input sizes, the
no-skip property, attention matrix and saliency, config round trip, V1 aliases."""

import json

import pytest
import torch

from stegafast.models.autoencoder import AutoencoderCNN, AutoencoderConfig, create_autoencoder, preset_config
from stegafast.models.autoencoder.attention import PatchAttention, head_count
from stegafast.models.autoencoder.model import stage_sizes

# (preset, latent, parameter range): the seed's "about 0.5M, 2M, 8M, 32M"
PRESET_SIZES = [
    ("tiny", 128, (0.3e6, 0.6e6)),
    ("small", 512, (1.5e6, 2.5e6)),
    ("medium", 2048, (6e6, 10e6)),
    ("large", 8192, (26e6, 38e6)),
]
SEED_SIZES = [(201, 201), (1280, 152), (152, 1280), (152, 333), (37, 53), (7, 9), (1, 1)]


def tiny(**overrides):
    torch.manual_seed(0)
    return create_autoencoder("tiny", (33, 45), **overrides).eval()


@pytest.mark.parametrize(("preset", "latent", "params"), PRESET_SIZES)
def test_presets_shapes_and_parameter_counts(preset, latent, params):
    model = create_autoencoder(preset, (201, 201)).eval()
    assert params[0] < model.parameter_count() < params[1]
    x = torch.rand(1, 1, 201, 201)
    with torch.no_grad():
        z = model.encode(x)
        assert z.shape == (1, latent) and model.latent_size == latent
        assert model.decode(z).shape == (1, 1, 201, 201)  # the config's input size by default


@pytest.mark.parametrize("size", SEED_SIZES)
def test_any_input_size_comes_back_exactly(size):
    model = tiny()
    x = torch.rand(2, 1, *size)
    with torch.no_grad():
        y = model(x)
        assert y.shape == x.shape
        assert y.min() >= 0 and y.max() <= 1
        assert model.decode(model.encode(x), size).shape == x.shape


def test_decode_takes_any_target_size():
    model = tiny()
    z = model.encode(torch.rand(1, 1, 40, 40))
    for size in ((201, 201), (152, 1280), (3, 5)):
        assert model.decode(z, size).shape == (1, 1, *size)


@pytest.mark.parametrize("block", ["resnet", "resnext", "se", "inception"])
def test_every_block_type(block):
    model = AutoencoderCNN(16, (block, block), (8, 16), (2, 3), input_size=(29, 31)).eval()
    x = torch.rand(2, 1, 29, 31)
    y = model(x)
    assert y.shape == x.shape
    y.mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_mixed_blocks_and_stride_one():
    model = AutoencoderCNN(32, ("inception", "resnext", "se", "resnet"), (8, 16, 24, 32), (1, 2, 2, 4))
    x = torch.rand(1, 1, 50, 61)
    assert model(x).shape == x.shape


def test_spatial_latent_rounds_to_sixteen():
    model = tiny(latent_strategy="spatial", latent_size=500)  # 500 / 16 = 31.25 -> C' = 31
    assert model.config.latent_channels == 31 and model.latent_size == 496
    x = torch.rand(2, 1, 33, 45)
    with torch.no_grad():
        flat, native = model.encode(x), model.Embedding(x)
        assert flat.shape == (2, 496) and native.shape == (2, 31, 4, 4)
        torch.testing.assert_close(flat, native.flatten(1))
        torch.testing.assert_close(model.decode(flat, (33, 45)), model.decode(native, (33, 45)))
        torch.testing.assert_close(model.decode(flat, (33, 45)), model(x))


def test_conv_latent_is_exact():
    model = tiny(latent_size=77)
    assert model.encode(torch.rand(3, 1, 33, 45)).shape == (3, 77)


@pytest.mark.parametrize("strategy", ["conv", "spatial"])
def test_no_skip_connections_the_output_is_a_function_of_the_latent(strategy, monkeypatch):
    """Force one latent whatever the input: two different images then reconstruct identically,
    and equal the decoder's output for that latent, so nothing else flows from encoder to decoder."""
    model = tiny(latent_strategy=strategy)
    a, b = torch.rand(1, 1, 33, 45), torch.zeros(1, 1, 33, 45)
    with torch.no_grad():
        fixed = model.latent(torch.rand(1, 1, 33, 45))
        expected = model.decode(fixed.flatten(1), (33, 45))
        monkeypatch.setattr(model.to_latent, "forward", lambda features: fixed)
        out_a, out_b = model(a), model(b)
    assert torch.equal(out_a, out_b)
    assert torch.equal(out_a, expected)
    assert not torch.equal(model.encoder(a), model.encoder(b))  # the encoder did see different images


def test_attention_matrix_shape_and_rows():
    model = tiny()
    x = torch.rand(2, 1, 33, 45)
    h, w = stage_sizes((33, 45), model.config.stride_config)[-1]
    matrix = model.get_attention_matrix(x)
    assert model.attention_grid(x) == (h, w)
    assert matrix.shape == (2, h * w, h * w)
    torch.testing.assert_close(matrix.sum(-1), torch.ones(2, h * w))
    assert (matrix >= 0).all()


def test_attention_matrix_none_without_attention():
    model = tiny(use_attention=False)
    assert model.get_attention_matrix(torch.rand(1, 1, 33, 45)) is None
    assert model(torch.rand(1, 1, 33, 45)).shape == (1, 1, 33, 45)


@pytest.mark.parametrize("side", [10, 20])  # 100 patches: the package's op; 400: scaled_dot_product_attention
def test_patch_attention_matches_its_matrix(side):
    torch.manual_seed(1)
    attention = PatchAttention(24)
    x = torch.randn(2, 24, side, side)
    probs = attention.attention_matrix(x)  # heads averaged: compare head by head instead
    q, k, v = attention._qkv(x)
    per_head = ((q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5).softmax(-1)
    torch.testing.assert_close(per_head.mean(1), probs)
    expected = x + attention.proj((per_head @ v).transpose(1, 2).flatten(2)).transpose(1, 2).reshape(x.shape)
    torch.testing.assert_close(attention(x), expected, atol=1e-5, rtol=1e-4)


def test_head_count():
    assert head_count(32) == 1 and head_count(128) == 2 and head_count(96) == 2 and head_count(131) == 131


def test_saliency_map():
    model = tiny()
    x = torch.rand(2, 1, 33, 45)
    saliency = model.get_attention_map(x)
    assert saliency.shape == (2, 1, 33, 45)
    assert saliency.min() >= 0
    torch.testing.assert_close(saliency.amax(dim=(1, 2, 3)), torch.ones(2))
    assert all(p.grad is None for p in model.parameters())


def test_config_round_trip():
    model = tiny(latent_strategy="spatial", block_config=("inception", "resnext", "se"))
    rebuilt = AutoencoderCNN(**json.loads(json.dumps(model.get_config())))
    assert rebuilt.get_config() == model.get_config()
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(1, 1, 33, 45)
    torch.testing.assert_close(rebuilt.eval()(x), model(x))
    assert AutoencoderConfig.from_dict(model.get_config()) == model.config


def test_v1_aliases():
    model = AutoencoderCNN(embedding_dim=64, channel_config=(8, 8, 8), DropOut=False)
    assert model.latent_size == 64
    x = torch.rand(1, 1, 20, 20)
    torch.testing.assert_close(model.Embedding(x), model.encode(x))
    torch.testing.assert_close(model.decode_from_latent(model.encode(x), (20, 20)), model(x))
    assert create_autoencoder("tiny", embedding_dim=100).latent_size == 100
    with pytest.raises(ValueError, match="DropOut=True"):
        AutoencoderCNN(DropOut=True)


def test_gradient_checkpointing_gives_the_same_gradients():
    model = tiny()
    model.train()
    x = torch.rand(2, 1, 33, 45)
    grads = []
    for enabled in (False, True):
        model.zero_grad()
        model.set_gradient_checkpointing(enabled)
        (model(x) - x).abs().mean().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for plain, recomputed in zip(*grads, strict=True):
        torch.testing.assert_close(plain, recomputed)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"block_config": ("resnet", "se")}, "one entry per stage"),
        ({"block_config": ("resnet", "vgg", "se")}, "unknown block 'vgg'"),
        ({"channel_config": (8, 0, 8)}, "channel_config"),
        ({"stride_config": (2, 2, 9)}, "stride_config"),
        ({"latent_strategy": "flat"}, "latent_strategy"),
        ({"latent_size": 0}, "latent_size"),
        ({"input_size": (0, 5)}, "input_size"),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AutoencoderCNN(**kwargs)


def test_input_errors():
    model = tiny()
    with pytest.raises(ValueError, match=r"grayscale images \(B, 1, H, W\)"):
        model(torch.rand(1, 3, 20, 20))
    with pytest.raises(ValueError, match=r"the latent must be \(B, 128\)"):
        model.decode(torch.rand(1, 100), (20, 20))
    with pytest.raises(ValueError, match="size"):
        model.decode(torch.rand(1, 128), (20,))
    with pytest.raises(ValueError, match="unknown preset"):
        preset_config("huge")
    with pytest.raises(ValueError, match="unknown autoencoder settings"):
        preset_config("tiny", colour=True)
    with pytest.raises(TypeError, match="unknown arguments"):
        AutoencoderCNN(dropout=0.1)
