"""The StegaStamp losses and their ramps."""

import pytest
import torch

from stegafast.color import rgb_to_yuv_bt601
from stegafast.models.stamp import StampLossConfig
from stegafast.models.stamp.losses import (
    bit_accuracy,
    critic_loss,
    edge_falloff,
    generator_critic_loss,
    loss_weights,
    secret_loss,
    yuv_l2_loss,
)


def test_edge_falloff():
    f = edge_falloff(40, 40)
    assert f.shape == (40, 40)
    assert f[20, 20] == 0 and f[0, 0] == 1 and f[0, 20] == 1 and f[20, 0] == 1
    assert torch.equal(f, f.flip(0)) and torch.equal(f, f.flip(1)) and torch.equal(f, f.T)
    assert ((f >= 0) & (f <= 1)).all()
    assert f[20, :10].diff().le(0).all()  # falls from the border towards the middle


def test_yuv_l2_weighs_colour_changes_more():
    image = torch.full((1, 3, 16, 16), 0.5)
    grey_shift = image + 0.01  # luma only: U and V of an equal RGB change are ~0
    blue_shift = image.clone()
    blue_shift[:, 2] += 0.01
    assert yuv_l2_loss(image, image, (1, 100, 100), 0.0) == 0
    grey = yuv_l2_loss(grey_shift, image, (1, 100, 100), 0.0)
    blue = yuv_l2_loss(blue_shift, image, (1, 100, 100), 0.0)
    assert grey == pytest.approx(1e-4, rel=1e-3)
    assert blue > 10 * grey
    # the edge gain amplifies differences at the border only
    border = torch.zeros_like(image)
    border[..., 0, :] = 0.01
    assert yuv_l2_loss(image + border, image, (1, 1, 1), 10.0) > 50 * yuv_l2_loss(image + border, image, (1, 1, 1), 0)


def test_rgb_to_yuv_of_grey_has_no_chroma():
    yuv = rgb_to_yuv_bt601(torch.full((1, 3, 2, 2), 0.7))
    torch.testing.assert_close(yuv[:, 0], torch.full((1, 2, 2), 0.7))
    assert yuv[:, 1:].abs().max() < 1e-6


def test_secret_and_critic_losses():
    bits = torch.tensor([[1.0, 0.0, 1.0]])
    good, bad = torch.tensor([[5.0, -5.0, 5.0]]), torch.tensor([[-5.0, 5.0, 5.0]])
    assert secret_loss(good, bits) < 0.01 < secret_loss(bad, bits)
    assert bit_accuracy(good, bits) == 1 and bit_accuracy(bad, bits) == pytest.approx(1 / 3)
    assert critic_loss(torch.tensor([1.0, 1.0]), torch.tensor([3.0, 5.0])) == -3
    assert generator_critic_loss(torch.tensor([3.0, 5.0])) == 4


def test_loss_weight_ramps():
    c = StampLossConfig(
        no_image_loss_steps=10, l2_ramp=100, critic_ramp=100, secret_ramp=1, l2_edge_delay=200, l2_edge_ramp=100
    )
    assert loss_weights(0, c) == (0.0, 0.0, 0.0, 0.0, 0.0)
    early = loss_weights(5, c)
    assert early.secret == 1.0 and early.l2 == 0 and early.critic == 0 and not early.image_losses
    mid = loss_weights(50, c)
    assert mid.l2 == pytest.approx(0.75) and mid.critic == pytest.approx(0.5) and mid.edge_gain == 0
    assert loss_weights(250, c).edge_gain == pytest.approx(5.0)
    assert loss_weights(10**6, c) == (1.5, 10.0, 1.0, 1.0, 0.0)  # LPIPS is off by default
    assert loss_weights(10**6, StampLossConfig(gan=False)).critic == 0
    with_lpips = StampLossConfig(lpips=True, lpips_scale=1.5, lpips_ramp=100, no_image_loss_steps=10)
    assert loss_weights(5, with_lpips).lpips == 0  # secret-only steps
    assert loss_weights(50, with_lpips).lpips == pytest.approx(0.75)
    assert loss_weights(50, with_lpips).image_losses
