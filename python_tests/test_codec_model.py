"""The hyperprior codec: GDN, compress/decompress of odd image sizes against the
forward pass, checkpoints carrying the coding tables, and a short training run
through the shared engine with resume."""

import io

import pytest
import torch

from stegafast.models.codec import CodecConfig, CodecTask, HyperpriorCodec, ImageCodec
from stegafast.models.codec.gdn import GDN
from stegafast.models.codec.inference import pad_to_multiple
from stegafast.models.codec.losses import rate_distortion
from stegafast.train import TrainConfig, load_checkpoint, train

TINY = CodecConfig(N=8, M=12)


def test_gdn_and_its_inverse():
    gdn, igdn = GDN(4), GDN(4, inverse=True)
    x = torch.randn(2, 4, 5, 5)
    # at initialisation beta = 1, gamma = 0.1 I: y = x / sqrt(1 + 0.1 x^2)
    assert torch.allclose(gdn(x), x / torch.sqrt(1 + 0.1 * x * x), atol=1e-5)
    assert torch.allclose(igdn(x), x * torch.sqrt(1 + 0.1 * x * x), atol=1e-5)
    with torch.no_grad():
        gdn.gamma.fill_(-3.0)  # a stored value below zero still gives non-negative gamma
    assert torch.isfinite(gdn(x)).all()


def test_forward_shapes_and_bad_input():
    model = HyperpriorCodec(TINY)
    out = model(torch.rand(2, 3, 64, 128))
    assert out.x_hat.shape == (2, 3, 64, 128)
    assert out.y_likelihoods.shape == (2, 12, 4, 8) and out.z_likelihoods.shape == (2, 8, 1, 2)
    with pytest.raises(ValueError, match="multiples of 64"):
        model(torch.rand(1, 3, 60, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(1, 1, 64, 64))


def test_parameters_split_between_main_and_aux():
    model = HyperpriorCodec(TINY)
    main, aux = model.main_parameters(), model.aux_parameters()
    assert len(aux) == 1 and aux[0] is model.entropy_bottleneck.quantiles
    assert len(main) + 1 == len(list(model.parameters()))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """Three steps, then resumed to five, on the bundled photos (64x64 crops)."""
    run = tmp_path_factory.mktemp("codec") / "run"
    task = CodecTask(TINY, lmbda=0.01, image_size=64, epoch_length=16)
    config = dict(out=run, batch_size=2, lr=1e-3, device="cpu", val_every=0, progress=False)
    first = train(task, TrainConfig(steps=3, **config))
    resumed = train(
        CodecTask(TINY, lmbda=0.01, image_size=64, epoch_length=16), TrainConfig(steps=5, resume=True, **config)
    )
    return first, resumed


def test_training_with_resume(trained_run):
    first, resumed = trained_run
    assert first.step == 3 and resumed.step == 5
    for key in ("loss", "bpp", "psnr", "aux", "mse"):
        assert key in resumed.train_metrics
    assert {"loss", "psnr", "bpp"} <= set(resumed.val_metrics)  # bundled validation split
    state = load_checkpoint(resumed.latest_checkpoint)
    assert state["identity"] == {"task": "codec", "model": TINY.to_dict(), "lmbda": 0.01}
    assert set(state["optimizers"]) == {"main", "aux"}


def _model_from(state_dict):
    model = HyperpriorCodec(TINY)
    model.load_state_dict(state_dict)
    return model.eval()


def test_checkpoint_tables_are_the_ones_coding_uses(trained_run):
    _, resumed = trained_run
    trained = resumed.models["model"]
    saved = load_checkpoint(resumed.latest_checkpoint)["models"]["model"]
    # the checkpoint carries tables of the parameters it holds: the same as update() builds
    reference = _model_from(saved)
    rebuilt = _model_from(saved)
    rebuilt.update(force=True)
    for name in ("quantized_cdf", "cdf_lengths", "offsets"):
        key = f"entropy_bottleneck.{name}"
        assert saved[key].numel() > 0
        assert torch.equal(getattr(rebuilt.entropy_bottleneck, name), saved[key])
    image = torch.rand(3, 50, 70)
    data = ImageCodec(reference).compress(image)
    # saved and loaded once more: identical tables, the same file decodes identically
    buffer = io.BytesIO()
    torch.save(reference.state_dict(), buffer)
    buffer.seek(0)
    again = _model_from(torch.load(buffer, weights_only=True))
    codec_again = ImageCodec(again)
    assert torch.equal(again.entropy_bottleneck.quantized_cdf, reference.entropy_bottleneck.quantized_cdf)
    assert torch.equal(codec_again.decompress(data), ImageCodec(reference).decompress(data))
    assert trained.training  # the engine's model was left as it was


@pytest.mark.parametrize("size", [(37, 53), (64, 64), (1, 1), (70, 129)])
def test_any_size_round_trips_to_the_forward_reconstruction(trained_run, size):
    _, resumed = trained_run
    model = _model_from(load_checkpoint(resumed.latest_checkpoint)["models"]["model"])
    codec = ImageCodec(model)
    image = torch.rand(3, *size)
    data = codec.compress(image)
    decoded = codec.decompress(data)
    assert decoded.shape == (3, *size)
    with torch.no_grad():
        forward = model(pad_to_multiple(image[None], 64)).x_hat.clamp(0, 1)[0, :, : size[0], : size[1]]
    assert torch.allclose(decoded, forward, atol=1e-5)
    assert codec.compress(image) == data  # deterministic


def test_compress_needs_the_tables():
    model = HyperpriorCodec(TINY).eval()
    with pytest.raises(RuntimeError, match="call update"):
        ImageCodec(model)
    with pytest.raises(RuntimeError, match="call update"):
        model.compress(torch.rand(1, 3, 64, 64))


def test_short_training_learns():
    """40 steps at a high learning rate on one batch: the loss falls and PSNR rises."""
    torch.manual_seed(0)
    model = HyperpriorCodec(TINY)
    x = torch.rand(2, 3, 64, 64).mul(0.3).add(torch.linspace(0, 0.7, 64))  # smooth ramps plus texture
    optimizer = torch.optim.Adam(model.main_parameters(), lr=3e-3)
    history = []
    for _ in range(40):
        terms = rate_distortion(x, model(x), lmbda=0.01)
        optimizer.zero_grad()
        terms.loss.backward()
        optimizer.step()
        history.append((terms.loss.item(), terms.psnr.item()))
    assert history[-1][0] < 0.5 * history[0][0]
    assert history[-1][1] > history[0][1] + 3
