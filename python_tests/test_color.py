"""The colour conversions (stegafast.color): JFIF YCbCr at two ranges, BT.601 YUV."""

import numpy as np
import pytest
import torch
from PIL import Image

from stegafast.color import (
    BT601_RGB_TO_YUV,
    JFIF_RGB_TO_YCBCR,
    JFIF_YCBCR_TO_RGB,
    rgb_to_ycbcr_01,
    rgb_to_ycbcr_255,
    rgb_to_yuv_bt601,
    ycbcr_01_to_rgb,
    ycbcr_255_to_rgb,
)


def test_jfif_matrix_is_t871s():
    torch.testing.assert_close(
        JFIF_RGB_TO_YCBCR[1], torch.tensor([-0.168735892, -0.331264108, 0.5], dtype=torch.float64), atol=1e-9, rtol=0
    )
    torch.testing.assert_close(
        JFIF_YCBCR_TO_RGB[:, 1:],
        torch.tensor([[0.0, 1.402], [-0.344136286, -0.714136286], [1.772, 0.0]], dtype=torch.float64),
        atol=1e-9,
        rtol=0,
    )


def test_the_two_ranges_are_one_conversion():
    x = torch.rand(2, 3, 5, 6, dtype=torch.float64)
    offset = torch.tensor([0.0, 128.0 - 127.5, 128.0 - 127.5], dtype=torch.float64).view(3, 1, 1)
    torch.testing.assert_close(rgb_to_ycbcr_255(x), 255 * rgb_to_ycbcr_01(x) + offset)
    torch.testing.assert_close(ycbcr_255_to_rgb(rgb_to_ycbcr_255(x)), x, atol=1e-12, rtol=0)
    torch.testing.assert_close(ycbcr_01_to_rgb(rgb_to_ycbcr_01(x)), x, atol=1e-12, rtol=0)
    grey = torch.full((3, 1, 1), 0.5, dtype=torch.float64)
    torch.testing.assert_close(
        rgb_to_ycbcr_255(grey).flatten(), torch.tensor([127.5, 128.0, 128.0], dtype=torch.float64)
    )


def test_ycbcr_255_matches_pillows_within_its_fixed_point_rounding():
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    theirs = np.asarray(Image.fromarray(pixels, "RGB").convert("YCbCr"), dtype=np.float64)
    ours = rgb_to_ycbcr_255(torch.from_numpy(pixels).permute(2, 0, 1).double() / 255).permute(1, 2, 0).numpy()
    # Pillow computes in fixed point and mostly rounds down: it is within a level below the exact value
    assert -0.05 < (ours - theirs).min() and (ours - theirs).max() < 1.01


def test_yuv_is_tensorflows_and_linear():
    assert BT601_RGB_TO_YUV[1:].sum(dim=1).abs().max() < 1e-7  # grey has no chroma
    x, y = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(rgb_to_yuv_bt601(x) - rgb_to_yuv_bt601(y), rgb_to_yuv_bt601(x - y))
    blue = rgb_to_yuv_bt601(torch.tensor([0.0, 0.0, 1.0]).view(3, 1, 1)).flatten()
    torch.testing.assert_close(blue, torch.tensor([0.114, 0.43601035, -0.10001026]))


@pytest.mark.parametrize("convert", [rgb_to_ycbcr_01, rgb_to_ycbcr_255, ycbcr_255_to_rgb, rgb_to_yuv_bt601])
def test_bad_input(convert):
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, H, W\)"):
        convert(torch.rand(1, 4, 2, 2))
    with pytest.raises(TypeError, match="floating"):
        convert(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))
