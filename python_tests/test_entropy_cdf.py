"""The integer CDF tables: quantize_pmf, and the tables both entropy models build."""

import pytest
import torch

from stegafast.entropy import TOTAL, EntropyBottleneck, GaussianConditional, default_scale_table, quantize_pmf


def _check_table(cdfs, cdf_lengths):
    """CompressAI's convention: 0 first, 65536 last, every bin at least one count."""
    for row, n in zip(cdfs.tolist(), cdf_lengths.tolist()):
        assert row[0] == 0 and row[n - 1] == TOTAL
        steps = [b - a for a, b in zip(row[: n - 1], row[1:n])]
        assert min(steps) >= 1, "a bin without counts would make its values uncodable"
        assert all(v == TOTAL for v in row[n:])


def test_quantize_pmf_rows_of_different_lengths():
    pmf = torch.tensor([[0.5, 0.3, 0.2, 0.0], [0.1, 0.9, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    tail = torch.tensor([1e-9, 0.0, 0.0])
    cdfs, lengths = quantize_pmf(pmf, tail, torch.tensor([3, 2, 1]))
    assert cdfs.dtype == torch.int32 and cdfs.shape == (3, 5)
    assert lengths.tolist() == [5, 4, 3]
    _check_table(cdfs, lengths)
    freq = torch.diff(cdfs[0, :5].long())
    # counts follow the probabilities (one count each, then shares of the rest)
    assert freq[0] > freq[1] > freq[2] and freq[3] == 1
    assert abs(freq[0].item() / TOTAL - 0.5) < 1e-4


def test_quantize_pmf_many_symbols_and_escape_mass():
    pmf = torch.softmax(torch.randn(4, 3000, dtype=torch.float64), dim=1)
    tail = torch.full((4,), 0.01, dtype=torch.float64)
    cdfs, lengths = quantize_pmf(pmf * 0.99, tail, torch.tensor([3000, 10, 1000, 2999]))
    _check_table(cdfs, lengths)
    escape = cdfs[0, 3001] - cdfs[0, 3000]
    assert abs(escape.item() / TOTAL - 0.01) < 0.002


def test_quantize_pmf_massless_row_is_uniform():
    cdfs, lengths = quantize_pmf(torch.zeros(1, 3), torch.zeros(1), torch.tensor([3]))
    _check_table(cdfs, lengths)
    assert torch.diff(cdfs[0].long()).tolist() == [16384] * 4


@pytest.mark.parametrize(
    "bad",
    [
        (torch.ones(2, 3), torch.ones(2), torch.tensor([0, 3])),  # a row without symbols
        (torch.ones(2, 3), torch.ones(2), torch.tensor([3, 4])),  # longer than the pmf
        (torch.tensor([[float("nan"), 1.0]]), torch.ones(1), torch.tensor([2])),
        (torch.ones(1, 70000), torch.ones(1), torch.tensor([70000])),  # more bins than counts
        (torch.ones(2, 3), torch.ones(3), torch.tensor([3, 3])),  # shapes disagree
    ],
)
def test_quantize_pmf_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="quantize_pmf"):
        quantize_pmf(*bad)


def test_gaussian_tables():
    gc = GaussianConditional()
    gc.update()
    assert torch.allclose(gc.scale_table, default_scale_table().float())
    assert gc.scale_table.numel() == 64 and abs(gc.scale_table[0].item() - 0.11) < 1e-6
    assert abs(gc.scale_table[-1].item() - 256) < 1e-3
    _check_table(gc.quantized_cdf, gc.cdf_lengths)
    # row k is centred: symbol 0 (value - offset = centre) is the most probable bin
    for k in (0, 20, 63):
        n = int(gc.cdf_lengths[k])
        freq = torch.diff(gc.quantized_cdf[k, :n].long())[:-1]
        centre = -int(gc.offsets[k])
        assert freq.max() - freq[centre] <= 1  # (the widest rows are flat near the top)
        assert (freq - freq.flip(0)).abs().max() <= 1  # symmetric up to the rounding of ties
        assert n == 2 * -int(gc.offsets[k]) + 3
    # the widest scale spans about +-6.1 sigma (tail mass 1e-9)
    assert 1500 < -int(gc.offsets[-1]) < 1600


def test_bottleneck_tables_cover_the_quantiles():
    eb = EntropyBottleneck(3)
    with torch.no_grad():
        eb.quantiles.copy_(torch.tensor([[[-4.2, 0.3, 5.1]], [[-1.0, 0.0, 1.0]], [[0.0, 0.0, 0.0]]]))
    eb.update()
    _check_table(eb.quantized_cdf, eb.cdf_lengths)
    # ceil(0.3 + 4.2) = 5 below the median, ceil(5.1 - 0.3) = 5 above; one symbol for a degenerate channel
    assert eb.offsets.tolist() == [-5, -1, 0]
    assert eb.cdf_lengths.tolist() == [11 + 2, 3 + 2, 1 + 2]
