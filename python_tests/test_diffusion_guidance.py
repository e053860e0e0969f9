"""Physics guidance (gradients against autograd, descent, the step schedule) and the FRC."""

import pytest

pytest.importorskip("diffusers")

import torch  # noqa: E402

from stegafast.models.diffusion.config import GuidanceConfig  # noqa: E402
from stegafast.models.diffusion.frc import FRC_THRESHOLD, frc_curve, frc_resolution  # noqa: E402
from stegafast.models.diffusion.guidance import gradient, guide, objective, step_size  # noqa: E402
from stegafast.models.diffusion.physics import ForwardModel, gaussian_psf  # noqa: E402

MODES = ("pkl", "l2", "anscombe")


def _problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    forward = ForwardModel(gaussian_psf(1.5, 9, torch.float64), background=4.0)
    truth = torch.rand(2, 24, 20, generator=g, dtype=torch.float64) * 30
    y = torch.poisson(forward.mean(truth), generator=g)
    x = torch.rand(2, 24, 20, generator=g, dtype=torch.float64) * 30  # a wrong estimate
    return forward, x, y


@pytest.mark.parametrize("mode", MODES)
def test_gradients_match_autograd_of_the_objectives(mode):
    forward, x, y = _problem()
    x = x.requires_grad_(True)
    (auto,) = torch.autograd.grad(objective(mode, x, y, forward).sum(), x)
    assert torch.allclose(gradient(mode, x.detach(), y, forward), auto, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
def test_one_guided_step_lowers_each_misfit(mode):
    forward, x, y = _problem(1)
    config = GuidanceConfig(mode=mode, lambda_base=5.0, t_threshold=800)
    before, after = objective(mode, x, y, forward), objective(mode, guide(x, y, 100, forward, config), y, forward)
    assert (after < before).all()


def test_step_size_schedule():
    config = GuidanceConfig(lambda_base=0.1, t_threshold=800)
    g = torch.zeros(1, 4, 4)
    g[0, 0, 0] = 3.0
    g[0, 1, 1] = 4.0  # norm 5
    full = 0.1 / (5 + 1e-3)
    assert step_size(g, 500, config).item() == pytest.approx(full)
    assert step_size(g, 800, config).item() == pytest.approx(full)
    assert step_size(g, 900, config).item() == pytest.approx(full * 0.5)
    assert step_size(g, 1000, config).item() == 0
    x = torch.rand(1, 8, 8) * 10
    unguided = guide(x, x, 100, ForwardModel(gaussian_psf(1.0, 3)), GuidanceConfig(mode="none"))
    assert unguided is x


def test_guided_step_clamps_at_zero():
    forward, _, y = _problem(2)
    x = torch.zeros_like(y)  # already at the bound: a step that pushes below 0 is clamped
    out = guide(x, y * 0, 0, forward, GuidanceConfig(mode="l2", lambda_base=1e3))
    assert (out >= 0).all()


def test_frc_of_identical_images_reaches_nyquist():
    image = torch.rand(64, 64, generator=torch.Generator().manual_seed(0))
    freqs, curve = frc_curve(image, image)
    assert torch.allclose(curve, torch.ones_like(curve)) and freqs[-1] == pytest.approx(0.5)
    assert frc_resolution(image, image) == 2.0


def test_frc_of_independent_noise_is_low():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(128, 128, generator=g), torch.randn(128, 128, generator=g)
    _, curve = frc_curve(a, b)
    assert curve[16:].abs().mean() < 0.05  # rings of many pixels: near 0 (the inner ones fluctuate more)
    assert frc_resolution(a, b) >= 32  # one of the first few rings already falls below 1/7


def test_frc_resolution_finds_a_known_cutoff():
    # the truth and a copy low-passed at 0.125 cycles/px (8 px): the FRC drops there
    g = torch.Generator().manual_seed(2)
    truth = torch.randn(128, 128, generator=g)
    fy, fx = torch.fft.fftfreq(128), torch.fft.fftfreq(128)
    mask = (fy[:, None] ** 2 + fx[None, :] ** 2).sqrt() <= 0.125
    lowpassed = torch.fft.ifft2(torch.fft.fft2(truth) * mask).real
    # rings are 1/128 wide: the first ring past the cutoff (ring 16 is half inside it) is 17
    assert frc_resolution(lowpassed, truth) == pytest.approx(128 / 17)
    assert FRC_THRESHOLD == pytest.approx(1 / 7)
