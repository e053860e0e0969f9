"""The StegaStamp networks: shapes at several sizes, the identity-initialised
spatial transformer, the configs' validation."""

import pytest
import torch
import torch.nn.functional as F

from stegafast.models.stamp import (
    StampCritic,
    StampDecoder,
    StampEncoder,
    StampLossConfig,
    StampModelConfig,
    StampNoiseConfig,
)


@pytest.mark.parametrize("size", [32, 48, 96])
@pytest.mark.parametrize("bits", [100, 17])
def test_shapes(size, bits):
    config = StampModelConfig(image_size=size, secret_bits=bits)
    image = torch.rand(3, 3, size, size)
    secret = torch.randint(0, 2, (3, bits)).float()
    assert StampEncoder(config)(secret, image).shape == (3, 3, size, size)
    assert StampDecoder(config)(image).shape == (3, bits)
    assert StampCritic(config)(image).shape == (3,)


def test_default_size_is_the_originals():
    encoder = StampEncoder()
    assert encoder.config.image_size == 400 and encoder.config.secret_bits == 100
    assert encoder.secret_dense.out_features == 7500  # 3 x 50 x 50, upsampled x8 to 400
    image = torch.rand(1, 3, 400, 400)
    assert encoder(torch.zeros(1, 100), image).shape == (1, 3, 400, 400)


def test_stn_starts_at_the_identity():
    decoder = StampDecoder(StampModelConfig(image_size=32))
    image = torch.rand(2, 3, 32, 32)
    theta = decoder.affine(image)
    assert torch.equal(theta, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(2, 2, 3))
    # so the decoder's convolutions see the (shifted) image itself
    expected = decoder.decoder(image - 0.5)
    torch.testing.assert_close(decoder(image), expected, atol=1e-5, rtol=1e-5)


def test_stn_grid_is_affine_grid():
    decoder = StampDecoder(StampModelConfig(image_size=48))
    theta = torch.randn(2, 2, 3)
    grid = (decoder._base_grid @ theta.transpose(1, 2)).view(-1, 48, 48, 2)
    torch.testing.assert_close(grid, F.affine_grid(theta, [2, 3, 48, 48], align_corners=False), atol=1e-5, rtol=1e-5)


def test_gradients_reach_every_encoder_and_decoder_parameter():
    config = StampModelConfig(image_size=32)
    encoder, decoder = StampEncoder(config), StampDecoder(config)
    image = torch.rand(2, 3, 32, 32)
    logits = decoder((image + encoder(torch.randint(0, 2, (2, 100)).float(), image)).clamp(0, 1))
    logits.square().sum().backward()
    for name, p in [*encoder.named_parameters(), *decoder.named_parameters()]:
        assert p.grad is not None, name


def test_bad_inputs():
    config = StampModelConfig(image_size=32)
    encoder, decoder = StampEncoder(config), StampDecoder(config)
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        decoder(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="secret must be"):
        encoder(torch.zeros(1, 99), torch.rand(1, 3, 32, 32))
    with pytest.raises(TypeError, match="floating"):
        decoder(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": 40}, "multiple of 16"),
        ({"image_size": 16}, "at least 32"),
        ({"secret_bits": 0}, "positive"),
    ],
)
def test_model_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StampModelConfig(**kwargs)


def test_loss_and_noise_config_validation_and_scaling():
    with pytest.raises(ValueError, match="yuv_scales"):
        StampLossConfig(yuv_scales=(1.0, 2.0))
    with pytest.raises(ValueError, match="jpeg_quality_min"):
        StampNoiseConfig(jpeg_quality_min=0)
    with pytest.raises(ValueError, match="contrast"):
        StampNoiseConfig(contrast_low=1.2)
    scaled = StampLossConfig().scaled(0.1)
    assert (scaled.l2_ramp, scaled.l2_edge_delay, scaled.no_image_loss_steps) == (2000, 6000, 50)
    assert StampNoiseConfig().scaled(0.1).warp_ramp == 1000
    assert StampModelConfig.from_dict(StampModelConfig(image_size=64).to_dict()).image_size == 64
    with pytest.raises(ValueError, match="unknown"):
        StampModelConfig.from_dict({"image_size": 64, "depth": 3})
