"""The diffusion family's microscope: PSFs, the forward model and its adjoint, the noise
statistics of the simulator, the seeded specimens, the microscopy image files."""

import numpy as np
import pytest

pytest.importorskip("diffusers")

import torch  # noqa: E402

from stegafast.models.diffusion.config import PhysicsConfig  # noqa: E402
from stegafast.models.diffusion.data import SyntheticPairs, denormalise, measurement_scale, normalise  # noqa: E402
from stegafast.models.diffusion.imagefiles import ImageFileError, read_intensity, write_float_tiff  # noqa: E402
from stegafast.models.diffusion.physics import ForwardModel, PSFError, gaussian_psf, load_psf  # noqa: E402
from stegafast.models.diffusion.specimens import specimen  # noqa: E402


def test_gaussian_psf_is_centred_normalised_and_has_its_sigma():
    psf = gaussian_psf(2.0, 21, torch.float64)
    assert psf.shape == (21, 21) and torch.isclose(psf.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert psf.argmax() == 10 * 21 + 10 and torch.allclose(psf, psf.T) and torch.allclose(psf, psf.flip(0))
    r = torch.arange(21, dtype=torch.float64) - 10
    variance = (psf.sum(0) * r**2).sum()
    assert abs(variance.sqrt().item() - 2.0) < 0.01  # the 21-px support truncates almost nothing


@pytest.mark.parametrize("shape", [(32, 32), (17, 40), (9, 11), (3, 64)])
def test_adjoint_satisfies_the_inner_product_identity(shape):
    g = torch.Generator().manual_seed(0)
    psf = torch.rand(7, 5, generator=g, dtype=torch.float64)  # not symmetric: a wrong flip would show
    forward = ForwardModel(psf / psf.sum())
    x = torch.randn(2, *shape, generator=g, dtype=torch.float64)
    y = torch.randn(2, *shape, generator=g, dtype=torch.float64)
    lhs = (forward.apply(x) * y).sum()
    rhs = (x * forward.adjoint(y)).sum()
    assert forward.apply(x).shape == x.shape and forward.adjoint(y).shape == y.shape
    assert torch.allclose(lhs, rhs, rtol=1e-10, atol=1e-10)


def test_apply_is_zero_padded_linear_convolution():
    psf = torch.rand(5, 3, dtype=torch.float64)
    x = torch.rand(12, 9, dtype=torch.float64)
    out = ForwardModel(psf).apply(x)
    # direct "same" convolution with zero padding (conv2d is correlation: flip the kernel)
    direct = torch.nn.functional.conv2d(x[None, None], psf.flip(0, 1)[None, None], padding=(2, 1))[0, 0]
    assert torch.allclose(out, direct, atol=1e-12)


def test_convolution_keeps_flux_away_from_borders():
    x = torch.zeros(64, 64)
    x[32, 32] = 100.0
    assert torch.isclose(ForwardModel(gaussian_psf()).apply(x).sum(), torch.tensor(100.0), rtol=1e-5)


def test_measurement_has_poisson_statistics():
    forward = ForwardModel(gaussian_psf(1.0, 5), background=3.0)
    x = torch.full((200, 200), 7.0)  # mean 7 + 3 in the interior
    y = forward.measure(x, torch.Generator().manual_seed(1))[10:-10, 10:-10]
    assert y.eq(y.round()).all() and (y >= 0).all()
    assert abs(y.mean().item() - 10.0) < 0.05 and abs(y.var().item() - 10.0) < 0.3  # variance = mean


def test_read_noise_adds_its_variance():
    forward = ForwardModel(gaussian_psf(1.0, 5), background=5.0, read_noise=2.0)
    y = forward.measure(torch.zeros(200, 200), torch.Generator().manual_seed(2))
    assert abs(y.mean().item() - 5.0) < 0.05 and abs(y.var().item() - (5.0 + 4.0)) < 0.4


def test_psf_files(tmp_path):
    psf = np.outer(np.hanning(9), np.hanning(7))
    np.save(tmp_path / "psf.npy", psf)
    loaded = load_psf(tmp_path / "psf.npy")
    assert loaded.shape == (9, 7) and torch.isclose(loaded.sum(), torch.tensor(1.0))
    write_float_tiff(psf.astype(np.float32), tmp_path / "psf.tif")
    assert torch.allclose(load_psf(tmp_path / "psf.tif"), loaded, atol=1e-6)
    np.save(tmp_path / "neg.npy", -psf)
    np.save(tmp_path / "cube.npy", np.ones((2, 2, 2)))
    for name, words in (("missing.npy", "does not exist"), ("neg.npy", "non-negative"), ("cube.npy", "2-D")):
        with pytest.raises(PSFError, match=words):
            load_psf(tmp_path / name)


def test_image_files_round_trip_and_refuse_colour(tmp_path):
    values = np.random.default_rng(0).uniform(0, 500, (20, 24)).astype(np.float32)
    write_float_tiff(values, tmp_path / "a.tif")
    assert np.array_equal(read_intensity(tmp_path / "a.tif"), values)
    from PIL import Image

    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "b.png")
    assert read_intensity(tmp_path / "b.png", as_unit=True).max() == 1.0
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "c.png")
    with pytest.raises(ImageFileError, match="one-channel"):
        read_intensity(tmp_path / "c.png")


@pytest.mark.parametrize("kind", ["mixed", "filaments", "beads", "blobs"])
def test_specimens_are_seeded_and_in_unit_range(kind):
    a, b, c = specimen(3, 5, 64, kind), specimen(3, 5, 64, kind), specimen(3, 6, 64, kind)
    assert a.shape == (64, 64) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() == pytest.approx(1.0)


def test_synthetic_pairs_are_reproducible_and_normalised():
    physics = PhysicsConfig(image_size=32, psf_size=9)
    pairs = SyntheticPairs(physics, 4, seed=1)
    x_n, y_n, scale = pairs[2]
    again = SyntheticPairs(physics, 4, seed=1)[2]
    assert all(torch.equal(u, v) for u, v in zip((x_n, y_n, scale), again))
    assert x_n.shape == y_n.shape == (1, 32, 32) and y_n.max() == pytest.approx(1.0)
    assert torch.allclose(denormalise(x_n[0], scale), pairs.clean(2), atol=1e-4)
    y = pairs.measurement(2)
    assert torch.equal(measurement_scale(y), scale) and torch.allclose(normalise(y, scale), y_n[0])
