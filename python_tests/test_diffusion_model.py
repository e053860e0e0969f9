"""The diffusion family's UNet, attention processor, EMA, schedulers and samplers."""

import pytest

pytest.importorskip("diffusers")

import torch  # noqa: E402
from diffusers.models.attention_processor import AttnProcessor2_0  # noqa: E402

import stegafast.models.diffusion.attention as attention_module  # noqa: E402
from stegafast.models.diffusion.attention import WindowAttentionProcessor, attention_modules, set_attention  # noqa: E402
from stegafast.models.diffusion.config import GuidanceConfig, UNetConfig  # noqa: E402
from stegafast.models.diffusion.data import measurement_scale, normalise  # noqa: E402
from stegafast.models.diffusion.model import ConditionalUNet, WeightEMA  # noqa: E402
from stegafast.models.diffusion.physics import ForwardModel, gaussian_psf  # noqa: E402
from stegafast.models.diffusion.sampling import sample  # noqa: E402
from stegafast.models.diffusion.schedulers import (  # noqa: E402
    alpha_sigma,
    sampling_scheduler,
    training_scheduler,
)

TINY = UNetConfig(block_out_channels=(8, 16, 16, 16), layers_per_block=1)


def _tiny(seed=0, **changes):
    torch.manual_seed(seed)
    return ConditionalUNet(UNetConfig(**{**TINY.to_dict(), **changes}))


def test_seed_unet_is_the_seeds_architecture():
    config = UNetConfig()
    assert config.block_out_channels == (128, 256, 512, 512) and config.layers_per_block == 2
    unet = ConditionalUNet(UNetConfig.cpu()).unet
    assert unet.config.in_channels == 2 and unet.config.out_channels == 1
    assert [type(b).__name__ for b in unet.down_blocks] == [
        "DownBlock2D",
        "AttnDownBlock2D",
        "AttnDownBlock2D",
        "DownBlock2D",
    ]
    assert unet.config.attention_head_dim == 8 and unet.config.norm_num_groups == 8


def test_every_attention_module_gets_the_processor():
    model = _tiny()
    modules = attention_modules(model)
    assert len(modules) == 7  # 2 down levels x 1 layer, 2 up levels x (1 + 1) layers, the mid block
    assert all(isinstance(m.processor, WindowAttentionProcessor) for m in modules)
    assert set_attention(model, "sdpa") == len(modules)
    assert all(isinstance(m.processor, AttnProcessor2_0) for m in modules)
    with pytest.raises(ValueError, match="stegafast"):
        set_attention(model, "flash")


def test_attention_processor_matches_diffusers_default(monkeypatch):
    calls = []
    real = attention_module.window_attention
    monkeypatch.setattr(attention_module, "window_attention", lambda *a, **k: calls.append(a[0].shape) or real(*a, **k))
    model = _tiny(1)
    x = torch.randn(2, 1, 32, 32)
    cond, t = torch.randn(2, 1, 32, 32), torch.tensor([3, 700])
    ours = model(x, t, cond)
    assert calls and all(shape[2] <= 256 for shape in calls)  # the op ran (16 x 16 = 256 tokens at most)
    set_attention(model, "sdpa")
    theirs = model(x, t, cond)
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=1e-4)


def test_attention_falls_back_to_sdpa_above_the_ops_token_limit(monkeypatch):
    calls = []
    real = attention_module.window_attention
    monkeypatch.setattr(attention_module, "window_attention", lambda *a, **k: calls.append(a[0].shape) or real(*a, **k))
    model = _tiny(2)
    x = torch.randn(1, 1, 64, 64)  # first attention level at 32 x 32 = 1024 tokens: SDPA there
    ours = model(x, torch.tensor([10]), x)
    assert sorted({s[2] for s in calls}) == [64, 256]  # 16 x 16 and the 8 x 8 mid block on the op
    set_attention(model, "sdpa")
    assert torch.allclose(ours, model(x, torch.tensor([10]), x), atol=1e-5, rtol=1e-4)


def test_gradient_checkpointing_gives_the_same_gradients():
    x, t = torch.randn(2, 1, 16, 16), torch.tensor([1, 500])
    grads = []
    for checkpointing in (False, True):
        model = _tiny(3, gradient_checkpointing=checkpointing).train()
        model(x, t, x).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_model_refuses_sizes_the_unet_cannot_halve():
    with pytest.raises(ValueError, match="multiples of 8"):
        _tiny()(torch.zeros(1, 1, 20, 16), torch.tensor([0]), torch.zeros(1, 1, 20, 16))


def test_ema_averages_with_warmup():
    model = _tiny(4)
    ema = WeightEMA(model, decay=0.9)
    start = [p.clone() for p in ema.model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)  # first decay: min(0.9, 1/10) = 0.1
    assert int(ema.updates) == 1 and ema.current_decay() == pytest.approx(2 / 11)
    for before, after, live in zip(start, ema.model.parameters(), model.parameters()):
        assert torch.allclose(after, 0.1 * before + 0.9 * live)
        assert not after.requires_grad


def test_ddim_round_trip_recovers_x0():
    scheduler = sampling_scheduler("ddim", 50)
    x0, noise = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8)
    for i, t in enumerate(scheduler.timesteps[[0, 10, 49]]):
        xt = training_scheduler().add_noise(x0, noise, t.repeat(2))
        alpha, sigma = alpha_sigma(scheduler, t, i)
        assert torch.allclose((xt - sigma * noise) / alpha, x0, atol=1e-3)


def test_dpm_solver_x0_agrees_with_the_schedulers_own_conversion():
    scheduler = sampling_scheduler("dpmpp", 25)
    assert scheduler.config.algorithm_type == "dpmsolver++" and scheduler.config.solver_order == 2
    assert scheduler.config.use_karras_sigmas and len(set(scheduler.timesteps.tolist())) == 25
    x, eps = torch.randn(1, 1, 8, 8), torch.randn(1, 1, 8, 8)
    for i in (0, 12, 24):
        scheduler._step_index = i
        alpha, sigma = alpha_sigma(scheduler, scheduler.timesteps[i], i)
        theirs = scheduler.convert_model_output(eps, sample=x)
        assert torch.allclose((x - sigma * eps) / alpha, theirs, rtol=1e-4, atol=1e-4)
    uncapped = sampling_scheduler("dpmpp", 25, dpm_sigma_max=None)
    assert len(set(uncapped.timesteps.tolist())) < 20  # the squaredcos tail repeats timesteps


def test_scheduler_arguments_are_checked():
    with pytest.raises(ValueError, match="sampler"):
        sampling_scheduler("euler", 10)
    with pytest.raises(ValueError, match="steps"):
        sampling_scheduler("ddim", 0)


@pytest.mark.parametrize("sampler,steps", [("ddim", 3), ("dpmpp", 4)])
@pytest.mark.parametrize("mode", ["none", "pkl", "l2", "anscombe"])
def test_sampling_shapes_for_every_sampler_and_guidance(sampler, steps, mode):
    model = WeightEMA(_tiny(5), 0.99).eval()
    forward = ForwardModel(gaussian_psf(1.0, 5), background=2.0)
    y = torch.poisson(torch.full((2, 1, 16, 24), 20.0), generator=torch.Generator().manual_seed(0))
    scale = measurement_scale(y[:, 0])
    guidance = GuidanceConfig(mode=mode)
    out = sample(model, y, scale, forward, sampler=sampler, steps=steps, guidance=guidance)
    again = sample(
        model, y, scale, forward, sampler=sampler, steps=steps, guidance=guidance, generator=torch.Generator()
    )
    assert out.shape == y.shape and torch.isfinite(out).all() and (out >= 0).all()
    assert again.shape == y.shape


class _Oracle(torch.nn.Module):
    """A denoiser that knows the answer: the epsilon that x_t and the true x0 imply under the
    training schedule's alphas_cumprod at the integer timestep it is given."""

    def __init__(self, x0):
        super().__init__()
        self.x0 = x0
        self.weight = torch.nn.Parameter(torch.zeros(()))  # samplers read the device from a parameter
        self.abar = training_scheduler().alphas_cumprod

    def forward(self, x_t, t, cond):
        abar = self.abar[t].view(-1, 1, 1, 1)
        return (x_t - abar.sqrt() * self.x0) / (1 - abar).sqrt()


@pytest.mark.parametrize("sampler,steps", [("ddim", 10), ("dpmpp", 10)])
def test_samplers_return_the_truth_with_an_oracle_denoiser(sampler, steps):
    truth = torch.rand(1, 1, 16, 16) * 50
    y = torch.full_like(truth, 60.0)
    scale = measurement_scale(y[:, 0])
    oracle = _Oracle(normalise(truth, scale[:, None]))
    out = sample(oracle, y, scale, ForwardModel(gaussian_psf(1.0, 3)), sampler=sampler, steps=steps)
    # DPM-Solver++ converts with its own (Karras) sigmas, the oracle with the integer timestep's:
    # agreement to a fraction of a photon shows the loop, the conversions and the last step are right
    assert torch.allclose(out, truth, atol=0.5 if sampler == "dpmpp" else 1e-3)
