"""EntropyBottleneck and GaussianConditional: likelihoods, exact coding round trips,
the auxiliary loss, the table life cycle and checkpoints."""

import functools
import io
import math

import pytest
import torch

from stegafast.entropy import EntropyBottleneck, GaussianConditional, lower_bound


def _normal_cdf(x):
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


@functools.cache
def _fitted_state(channels: int, steps: int) -> dict:
    torch.manual_seed(1)
    eb = EntropyBottleneck(channels)
    main = torch.optim.Adam([p for n, p in eb.named_parameters() if n != "quantiles"], lr=1e-2)
    aux = torch.optim.Adam([eb.quantiles], lr=5e-2)
    for _ in range(steps):
        x = torch.randn(8, channels, 4, 4) * 3 + 1
        _, likelihood = eb(x)
        rate = -torch.log2(likelihood).mean()
        main.zero_grad(), aux.zero_grad()
        rate.backward()
        eb.loss().backward()
        main.step(), aux.step()
    return eb.state_dict()


def _trained_bottleneck(channels=4, steps=150):
    """A bottleneck whose density and quantiles fitted wide Gaussian data a little
    (fitted once per setting; each call gets a fresh copy, in training mode and stale)."""
    eb = EntropyBottleneck(channels)
    eb.load_state_dict(_fitted_state(channels, steps))
    eb.mark_stale()
    return eb


# ---- likelihoods -------------------------------------------------------------------------------


def test_gaussian_likelihood_matches_closed_form():
    gc = GaussianConditional()
    y = torch.tensor([0.0, 1.0, -2.0, 7.0, 0.3], dtype=torch.float64)
    means = torch.tensor([0.0, 0.5, 1.0, -1.0, 0.3], dtype=torch.float64)
    scales = torch.tensor([1.0, 0.2, 3.0, 2.0, 0.05], dtype=torch.float64)  # the last is below the bound
    got = gc.likelihood(y, scales, means)
    for i in range(5):
        s = max(scales[i].item(), 0.11)
        d = y[i].item() - means[i].item()
        expected = _normal_cdf((d + 0.5) / s) - _normal_cdf((d - 0.5) / s)
        assert got[i].item() == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_gaussian_forward_modes():
    gc = GaussianConditional()
    y = torch.randn(2, 3, 4, 4) * 4
    means, scales = torch.randn_like(y), torch.rand_like(y) + 0.5
    y_noisy, lik = gc(y, scales, means, training=True)
    assert (y_noisy - y).abs().max() <= 0.5 and not torch.equal(y_noisy, y)
    assert lik.min() >= 1e-9 and lik.max() <= 1
    y_round, _ = gc(y, scales, means, training=False)
    assert torch.equal(y_round, torch.round(y - means) + means)
    gc_ste = GaussianConditional(quantization="ste")
    y = y.requires_grad_()
    y_ste, _ = gc_ste(y, scales, means, training=True)
    assert torch.allclose(y_ste, torch.round(y - means) + means)
    y_ste.sum().backward()
    assert torch.equal(y.grad, torch.ones_like(y))  # straight-through


def test_bottleneck_likelihoods_are_a_distribution():
    eb = _trained_bottleneck(2, steps=50)
    eb.eval()
    values = torch.arange(-60, 61, dtype=torch.float32)
    x = values.repeat(2, 1).T.reshape(-1, 2, 1, 1).contiguous()  # every integer, both channels
    _, likelihood = eb(x)
    total = likelihood.sum(0).flatten()
    assert torch.allclose(total, torch.ones(2), atol=1e-4)


def test_lower_bound_keeps_the_upward_gradient():
    x = torch.tensor([0.05, 0.05, 1.0], requires_grad=True)
    y = lower_bound(x, 0.11)
    assert y.tolist() == pytest.approx([0.11, 0.11, 1.0])
    (y * torch.tensor([-1.0, 1.0, 1.0])).sum().backward()
    # below the bound: a gradient that would raise x passes (-1), one that would lower it stops
    assert x.grad.tolist() == [-1.0, 0.0, 1.0]


# ---- coding --------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 3])
def test_bottleneck_round_trip_with_escapes(batch):
    eb = _trained_bottleneck()
    eb.eval()
    eb.update()
    x = torch.randn(batch, 4, 5, 7) * 3 + 1
    x[0, 0, 0, 0], x[-1, 3, 4, 6], x[0, 1, 2, 3] = 1e6, -3e5, 2**23  # far outside the coded range, inside +-2**24
    strings = eb.compress(x)
    assert len(strings) == batch and all(isinstance(s, bytes) for s in strings)
    x_hat = eb.decompress(strings, x.shape[2:])
    expected, _ = eb(x)
    assert torch.equal(x_hat, expected)


@pytest.mark.parametrize("batch", [1, 4])
def test_gaussian_round_trip_with_escapes(batch):
    gc = GaussianConditional()
    gc.update()
    y = torch.randn(batch, 6, 8, 3) * 20
    scales = torch.rand_like(y) * 30 + 0.01
    means = torch.randn_like(y) * 5
    y[0, 0, 0, 0], y[-1, 5, 7, 2] = 1e7, -5e4  # escapes, even for the widest scale
    scales[0, 1] = 1e4  # beyond the table: its widest row
    indexes = gc.build_indexes(scales)
    strings = gc.compress(y, indexes, means)
    y_hat = gc.decompress(strings, indexes, means)
    assert torch.equal(y_hat, torch.round(y - means) + means)
    # without means as well
    assert torch.equal(gc.decompress(gc.compress(y, indexes), indexes), torch.round(y))


def test_build_indexes_picks_the_first_scale_at_least_as_large():
    gc = GaussianConditional(scale_table=[0.5, 1.0, 2.0])
    scales = torch.tensor([0.01, 0.5, 0.7, 1.0, 1.5, 2.0, 50.0])
    assert gc.build_indexes(scales).tolist() == [0, 0, 1, 1, 2, 2, 2]
    assert gc.build_indexes(scales).dtype == torch.int32


def test_coded_size_is_close_to_the_information_content():
    gc = GaussianConditional()
    gc.update()
    scales = torch.full((1, 4096), 3.0)
    y = torch.round(torch.randn(1, 4096) * 3)
    bits = -torch.log2(gc.likelihood(y, scales)).sum().item()
    size = len(gc.compress(y, gc.build_indexes(scales))[0]) * 8
    # the table's scale (the first >= 3.0) differs slightly from 3.0: a few percent at most
    assert bits * 0.98 < size < bits * 1.05 + 64


# ---- the table life cycle --------------------------------------------------------------------


def test_coding_before_update_is_a_clear_error():
    eb, gc = EntropyBottleneck(2), GaussianConditional()
    with pytest.raises(RuntimeError, match="call update"):
        eb.compress(torch.zeros(1, 2, 2, 2))
    with pytest.raises(RuntimeError, match="call update"):
        gc.decompress([b""], torch.zeros(1, 2, dtype=torch.int32))
    eb.update()
    eb.train()
    eb(torch.zeros(1, 2, 2, 2))  # a training forward may change the parameters after it
    with pytest.raises(RuntimeError, match="changed since"):
        eb.compress(torch.zeros(1, 2, 2, 2))
    assert eb.update() and not eb.update()


def test_bad_inputs_are_clear_errors():
    eb, gc = EntropyBottleneck(2), GaussianConditional()
    eb.update(), gc.update()
    with pytest.raises(ValueError, match=r"expected \(B, 2, ...\)"):
        eb.compress(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="not all finite"):
        eb.compress(torch.full((1, 2, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="int32"):
        gc.compress(torch.zeros(1, 4), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="shape"):
        gc.compress(torch.zeros(1, 4), torch.zeros(1, 3, dtype=torch.int32))
    with pytest.raises(ValueError, match="2 byte strings for a batch of 1"):
        gc.decompress([b"", b""], torch.zeros(1, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match="quantization"):
        EntropyBottleneck(2, quantization="round")


def test_aux_loss_drives_the_quantiles():
    eb = EntropyBottleneck(2)
    optimizer = torch.optim.Adam([eb.quantiles], lr=1.0)
    losses = []
    for _ in range(300):
        optimizer.zero_grad()
        loss = eb.loss()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
    assert all(p.grad is None for n, p in eb.named_parameters() if n != "quantiles")
    # the fitted quantiles are where the density's CDF is tail/2, 1/2 and 1 - tail/2
    with torch.no_grad():
        cdf = torch.sigmoid(eb._logits_cumulative(eb.quantiles, stop_gradient=True))[:, 0]
    assert torch.allclose(cdf[:, 1], torch.full((2,), 0.5), atol=1e-2)
    assert (cdf[:, 0] < 1e-6).all() and (cdf[:, 2] > 1 - 1e-6).all()


def test_rate_loss_gives_the_quantiles_no_gradient():
    eb = EntropyBottleneck(2, quantization="ste")
    _, likelihood = eb(torch.randn(2, 2, 3, 3) * 4)
    (-torch.log2(likelihood).sum()).backward()
    assert eb.quantiles.grad is None and eb.matrices[0].grad is not None


def _saved(module):
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_update_save_load_gives_identical_tables_and_decodes_the_same_stream():
    eb = _trained_bottleneck()
    eb.eval()
    eb.update()
    x = torch.randn(2, 4, 6, 6) * 3
    strings = eb.compress(x)
    fresh = EntropyBottleneck(4)
    fresh.load_state_dict(_saved(eb))
    fresh.eval()
    for name in ("quantized_cdf", "cdf_lengths", "offsets"):
        assert torch.equal(getattr(fresh, name), getattr(eb, name))
    assert torch.equal(fresh.decompress(strings, x.shape[2:]), eb.decompress(strings, x.shape[2:]))
    assert fresh.compress(x) == strings
    assert not fresh.update()  # the loaded tables are current: nothing to rebuild


def test_state_dict_of_stale_model_carries_fresh_tables_without_changing_it():
    eb = EntropyBottleneck(4)
    eb.load_state_dict(
        {k: v for k, v in _fitted_state(4, 150).items() if k not in ("quantized_cdf", "cdf_lengths", "offsets")},
        strict=False,
    )
    assert not eb.has_tables
    state = eb.state_dict()
    assert not eb.has_tables  # the module's own buffers stay as they were (DDP-safe)
    reference = EntropyBottleneck(4)
    reference.load_state_dict(state)
    eb.update()
    assert torch.equal(state["quantized_cdf"], eb.quantized_cdf)
    gc = GaussianConditional()
    assert _saved(gc)["quantized_cdf"].shape == (64, 3133)
