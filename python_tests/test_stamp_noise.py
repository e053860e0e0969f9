"""The StegaStamp noise pipeline: identity at strength 0, every term
differentiable and shape-keeping, the ramps, the perspective warp's geometry."""

import pytest
import torch
import torch.nn.functional as F

from stegafast.models.stamp import NoisePipeline, StampNoiseConfig
from stegafast.models.stamp.noise import TERMS, full_strength, homography_grid, strengths_at, warp


def _images(n=2, size=32):
    return torch.rand(n, 3, size, size) * 0.8 + 0.1


def test_all_terms_at_strength_zero_are_the_identity():
    x = _images()
    pipeline = NoisePipeline()
    assert torch.equal(pipeline(x, {term: 0.0 for term in TERMS}), x)
    assert torch.equal(pipeline(x, strengths_at(0, StampNoiseConfig())), x)


@pytest.mark.parametrize("term", TERMS)
def test_each_term_alone(term):
    x = _images(3, 48).requires_grad_()
    out = NoisePipeline()(x, {term: 1.0})
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.isfinite(out).all()
    assert not torch.equal(out, x)  # the term does something at full strength
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_full_pipeline_keeps_shape_and_dtype_under_bf16_input():
    x = _images(2, 32).bfloat16()
    out = NoisePipeline()(x, full_strength(StampNoiseConfig()))
    assert out.shape == x.shape and out.dtype == torch.bfloat16


def test_ramps():
    config = StampNoiseConfig(warp_ramp=100, noise_ramp=10)
    assert strengths_at(0, config)["warp"] == 0.0
    assert strengths_at(50, config)["warp"] == pytest.approx(0.5)
    assert strengths_at(5, config)["noise"] == pytest.approx(0.5)
    assert all(v == 1.0 for v in strengths_at(10**6, config).values())
    off = StampNoiseConfig(jpeg=False)
    assert strengths_at(10**6, off)["jpeg"] == 0.0 and full_strength(off)["jpeg"] == 0.0


def test_noise_delay_holds_every_term_off_then_ramps_it():
    config = StampNoiseConfig(warp_ramp=100, noise_ramp=10, blur_ramp=0, noise_delay=40)
    assert all(v == 0.0 for v in strengths_at(39, config).values())
    assert strengths_at(45, config)["noise"] == pytest.approx(0.5)
    assert strengths_at(90, config)["warp"] == pytest.approx(0.5)
    assert strengths_at(39, config)["blur"] == 0.0 and strengths_at(40, config)["blur"] == 1.0
    assert strengths_at(140, config)["warp"] == 1.0 and strengths_at(1040, config)["jpeg"] == 1.0
    assert StampNoiseConfig(noise_delay=1000).scaled(0.25).noise_delay == 250
    with pytest.raises(ValueError, match="noise_delay"):
        StampNoiseConfig(noise_delay=-1)


def test_bad_strengths():
    with pytest.raises(ValueError, match="unknown noise terms"):
        NoisePipeline()(_images(), {"rotate": 1.0})
    with pytest.raises(ValueError, match="within"):
        NoisePipeline()(_images(), {"blur": 1.5})


def test_homography_of_zero_shifts_is_the_identity_grid():
    grid = homography_grid(torch.zeros(2, 4, 2), 16, 24, torch.float32)
    identity = F.affine_grid(torch.eye(2, 3).expand(2, 2, 3), [2, 1, 16, 24], align_corners=False)
    torch.testing.assert_close(grid, identity, atol=1e-6, rtol=0)
    x = _images()
    torch.testing.assert_close(warp(x, torch.zeros(2, 4, 2)), x, atol=1e-5, rtol=0)


def test_homography_moves_the_corners():
    from stegafast.models.stamp.noise import _homographies

    shifts = torch.tensor([[[0.1, 0.0], [0.0, 0.2], [-0.1, -0.1], [0.05, 0.0]]])
    h = _homographies(shifts)[0]
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], dtype=torch.float64)
    mapped = torch.cat([corners, torch.ones(4, 1, dtype=torch.float64)], 1) @ h.T
    torch.testing.assert_close(mapped[:, :2] / mapped[:, 2:], corners + shifts[0].double())
    assert homography_grid(shifts, 8, 8, torch.float32).shape == (1, 8, 8, 2)


def test_jpeg_term_uses_per_image_qualities():
    torch.manual_seed(1)
    x = _images(4, 32)
    out = NoisePipeline(StampNoiseConfig(jpeg_quality_min=10))(x, {"jpeg": 1.0})
    errors = (out - x).abs().flatten(1).mean(1)
    assert errors.min() > 0 and errors.max() > errors.min()  # different qualities, different losses
