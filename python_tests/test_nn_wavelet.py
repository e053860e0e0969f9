"""stegafast.nn.ILWT2d: multi-level decomposition and its exact inverse."""

import pytest
import torch

from stegafast import ops
from stegafast.data import load_bundled_photo
from stegafast.nn import ILWT2d


@pytest.mark.parametrize(
    "shape,levels", [((1, 3, 64, 64), 3), ((4, 1, 37, 50), 4), ((2, 2, 5, 3), 1), ((3, 3, 17, 16), 3)]
)
def test_round_trip_is_exact(shape, levels):
    x = torch.randint(0, 256, shape, dtype=torch.int32)
    wavelet = ILWT2d(levels)
    pyramid = wavelet(x)
    assert len(pyramid.highs) == levels == len(pyramid.sizes)
    assert pyramid.sizes[0] == tuple(shape[2:])
    assert pyramid.highs[0].shape[1] == 3 * shape[1]
    assert torch.equal(wavelet.inverse(pyramid), x)


def test_first_level_equals_the_op():
    x = torch.randint(0, 256, (2, 3, 21, 30)).float()
    pyramid = ILWT2d(2)(x)
    bands = ops.ilwt53_forward(x)
    assert torch.equal(pyramid.highs[0], bands[:, 3:])
    assert torch.equal(pyramid.low, ops.ilwt53_forward(bands[:, :3])[:, :3])


def test_real_photo_round_trip_and_energy_compaction():
    photo = load_bundled_photo("astronaut").float().unsqueeze(0)
    wavelet = ILWT2d(3)
    pyramid = wavelet(photo)
    assert torch.equal(wavelet.inverse(pyramid), photo)
    # a natural image's high bands are mostly small: the reason for the transform
    assert (pyramid.highs[0].abs() <= 8).float().mean() > 0.7


def test_gradients_flow_through_both_directions():
    x = torch.rand(2, 3, 19, 22, requires_grad=True)
    wavelet = ILWT2d(2, rounding=False)
    pyramid = wavelet(x)
    wavelet.inverse(pyramid).sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x), atol=1e-5, rtol=0)


def test_bad_levels_and_small_images_are_reported():
    with pytest.raises(ValueError, match="positive int"):
        ILWT2d(0)
    with pytest.raises(ValueError, match="level 3 would get 1x"):
        ILWT2d(3)(torch.zeros(1, 1, 4, 16))
