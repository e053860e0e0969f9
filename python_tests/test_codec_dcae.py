"""DCAE (``--model dcae``): shapes, presets, exact coding of the slices, the decoded image
against the forward pass, tables through save/load, damaged and desynchronised
files, decoding on the reference backend, and a short training with resume."""

import io
import struct
import zlib

import pytest
import torch
from testutils import requires_native, tiny_dcae_config

from stegafast import use_backend
from stegafast.models.codec import CodecFileError, CodecTask, ImageCodec, load_codec
from stegafast.models.codec.config import DCAE_PRESETS, DcaeConfig
from stegafast.models.codec.dcae import DcaeCodec
from stegafast.models.codec.fileformat import StreamDesyncError, read_sfc, write_sfc
from stegafast.models.codec.inference import pad_to_multiple
from stegafast.train import TrainConfig, load_checkpoint, train

TINY = tiny_dcae_config()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = DcaeCodec(TINY).eval()
    model.update()
    return model


def test_presets_and_parameter_counts():
    paper = DcaeCodec(DCAE_PRESETS["paper"])
    assert sum(p.numel() for p in paper.parameters()) == 122_805_279  # the public code's 122.8M
    assert paper.dictionary.shape == (128, 640) and paper.cross_attention[0].heads == 20
    assert len(paper.cc_mean) == 5 and paper.config.slice_channels == 64
    small = DcaeCodec(DCAE_PRESETS["small"])
    assert 5e6 < sum(p.numel() for p in small.parameters()) < 8e6
    assert DcaeConfig.from_dict(TINY.to_dict()) == TINY
    for bad, message in (
        (dict(M=21), "multiple of slices"),
        (dict(head_dims=(3, 8, 8, 8, 8, 8)), "head_dims"),
        (dict(window=17), "at most 16"),
        (dict(depths=(1, 2)), "depths"),
    ):
        with pytest.raises(ValueError, match=message):
            DcaeConfig(**{**TINY.to_dict(), **bad})


def test_forward_shapes_stride_chain_and_bad_input():
    model = DcaeCodec(TINY)
    out = model(torch.rand(2, 3, 64, 128))
    assert out.x_hat.shape == (2, 3, 64, 128)
    assert out.y_likelihoods.shape == (2, 20, 4, 8)  # y at H/16
    assert out.z_likelihoods.shape == (2, 8, 1, 2)  # z at H/64
    out.x_hat.float().mean().backward()  # gradients reach the dictionary through the entropy model
    loss = -torch.log2(model(torch.rand(1, 3, 64, 64)).y_likelihoods).sum()
    loss.backward()
    assert model.dictionary.grad is not None and model.dictionary.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="multiples of 64"):
        model(torch.rand(1, 3, 60, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(1, 1, 64, 64))


def _recording_symbols(model, monkeypatch):
    """Record the integer symbols the y entropy model codes and decodes."""
    coded, decoded = [], []
    gc = model.gaussian_conditional
    encode, decode = gc.encode_symbols, gc.decode_symbols

    def encode_symbols(symbols, indexes):
        coded.append(symbols.clone())
        return encode(symbols, indexes)

    def decode_symbols(strings, indexes):
        symbols = decode(strings, indexes)
        decoded.append(symbols.clone())
        return symbols

    monkeypatch.setattr(gc, "encode_symbols", encode_symbols)
    monkeypatch.setattr(gc, "decode_symbols", decode_symbols)
    return coded, decoded


def test_slices_round_trip_exactly(model, monkeypatch):
    coded, decoded = _recording_symbols(model, monkeypatch)
    x = torch.rand(2, 3, 64, 128)
    streams = model.compress(x)
    assert len(streams.y_strings) == TINY.slices and len(streams.checks) == 2
    model.decompress(streams)
    assert len(coded) == len(decoded) == TINY.slices
    for a, b in zip(coded, decoded):
        assert torch.equal(a, b) and a.dtype == torch.int32
    assert any(bool(a.ne(0).any()) for a in coded)  # something was coded


@pytest.mark.parametrize("size", [(37, 53), (64, 64), (1, 1), (70, 129)])
def test_decoded_image_is_the_forward_reconstruction(model, size):
    codec = ImageCodec(model)
    image = torch.rand(3, *size)
    data = codec.compress(image)
    assert len(read_sfc(data).streams) == TINY.slices + 2  # z, the slices, the checksums
    decoded = codec.decompress(data)
    assert decoded.shape == (3, *size)
    with torch.no_grad():
        forward = model(pad_to_multiple(image[None], 64)).x_hat.clamp(0, 1)[0, :, : size[0], : size[1]]
    assert torch.allclose(decoded, forward, atol=1e-5)
    assert codec.compress(image) == data  # deterministic


def test_tables_survive_save_and_load(model):
    data = ImageCodec(model).compress(torch.rand(3, 50, 70))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    again = DcaeCodec(TINY)
    again.load_state_dict(torch.load(buffer, weights_only=True))
    codec = ImageCodec(again.eval())  # no update(): the tables came with the state dict
    assert torch.equal(again.gaussian_conditional.quantized_cdf, model.gaussian_conditional.quantized_cdf)
    assert codec.model_id == ImageCodec(model).model_id
    assert torch.equal(codec.decompress(data), ImageCodec(model).decompress(data))


def _rewrite(data: bytes, streams) -> bytes:
    file = read_sfc(data)
    return write_sfc(type(file)(file.model_id, file.height, file.width, tuple(streams)))


def test_damaged_and_desynchronised_files_are_refused(model):
    codec = ImageCodec(model)
    data = codec.compress(torch.rand(3, 40, 40))
    with pytest.raises(CodecFileError, match="truncated"):
        codec.decompress(data[:-5], name="a.sfc")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    with pytest.raises(CodecFileError, match="corrupt"):
        codec.decompress(bytes(flipped), name="a.sfc")
    streams = read_sfc(data).streams
    with pytest.raises(CodecFileError, match="streams; this DCAE model writes 4"):
        codec.decompress(_rewrite(data, streams[:-1]), name="a.sfc")
    # an intact file whose recorded indexes the decoder does not reproduce: a loud failure
    sums = list(struct.unpack("<2I", streams[-1]))
    sums[1] ^= 1
    desync = _rewrite(data, (*streams[:-1], struct.pack("<2I", *sums)))
    with pytest.raises(StreamDesyncError, match="a.sfc: slice 1 decodes with other CDF indexes"):
        codec.decompress(desync, name="a.sfc")
    assert issubclass(StreamDesyncError, CodecFileError)


def test_decoder_whose_entropy_model_drifted_fails_loudly(model):
    """A decoder whose float entropy model gives other scales (here: a perturbed scale
    network, the model id recomputed as if it were the same) raises, rather than
    returning a wrong image."""
    codec = ImageCodec(model)
    data = codec.compress(torch.rand(3, 64, 64))
    drifted = DcaeCodec(TINY)
    drifted.load_state_dict(model.state_dict())
    with torch.no_grad():
        drifted.cc_scale[0][-1].bias.add_(3.0)
    other = ImageCodec(drifted.eval())
    other.model_id = codec.model_id
    with pytest.raises(StreamDesyncError, match="slice 0"):
        other.decompress(data)


@requires_native
@pytest.mark.parametrize("threads", [1, 2])
def test_native_encode_decodes_on_the_reference_backend(model, monkeypatch, threads):
    """Encoded with the native kernels, decoded with the pure-PyTorch reference: every
    slice's CDF indexes agree (else StreamDesyncError), so the decoded symbols are
    bit-exact; the image agrees to float rounding (the attention differs in the last bits)."""
    codec = ImageCodec(model)
    image = torch.rand(3, 70, 90)
    with use_backend("native"):
        data = codec.compress(image)
        native = codec.decompress(data)
    coded, decoded = _recording_symbols(model, monkeypatch)
    with use_backend("native"):
        codec.compress(image)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with use_backend("reference"):
            reference = codec.decompress(data)
    finally:
        torch.set_num_threads(previous)
    assert all(torch.equal(a, b) for a, b in zip(coded, decoded[-TINY.slices :]))
    assert torch.allclose(native, reference, atol=1e-5)
    assert torch.equal((native * 255).round(), (reference * 255).round())  # the same 8-bit PNG


def test_index_checksums_are_crc32_of_the_int32_indexes():
    from stegafast.models.codec.dcae import index_checksum

    indexes = torch.arange(12, dtype=torch.int32).reshape(3, 4)
    assert index_checksum(indexes) == zlib.crc32(indexes.numpy().tobytes())
    assert index_checksum(indexes.t().contiguous()) != index_checksum(indexes)


def test_training_with_resume_and_loading(tmp_path):
    run = tmp_path / "run"
    config = dict(out=run, batch_size=2, lr=1e-3, device="cpu", val_every=0, progress=False, clip_norm=1.0)
    first = train(CodecTask(TINY, lmbda=0.0067, image_size=64, epoch_length=8), TrainConfig(steps=2, **config))
    resumed = train(
        CodecTask(TINY, lmbda=0.0067, image_size=64, epoch_length=8), TrainConfig(steps=3, resume=True, **config)
    )
    assert first.step == 2 and resumed.step == 3
    assert {"loss", "bpp", "psnr", "aux", "mse"} <= set(resumed.train_metrics)
    state = load_checkpoint(resumed.latest_checkpoint)
    assert state["identity"]["architecture"] == "dcae" and state["identity"]["lmbda"] == 0.0067
    assert DcaeConfig.from_dict(state["identity"]["model"]) == TINY
    codec = load_codec(run)
    assert isinstance(codec.model, DcaeCodec)
    image = torch.rand(3, 33, 47)
    assert codec.decompress(codec.compress(image)).shape == (3, 33, 47)


@pytest.mark.parametrize("quantization", ["noise", "ste"])
def test_bf16_autocast_training_step(quantization):
    """Under bf16 autocast (--amp bf16) the likelihoods stay float32 and the gradients finite."""
    from dataclasses import replace

    from stegafast.models.codec.losses import rate_distortion

    torch.manual_seed(0)
    model = DcaeCodec(replace(TINY, quantization=quantization))
    x = torch.rand(2, 3, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.y_likelihoods.dtype == torch.float32 and out.z_likelihoods.dtype == torch.float32
    rate_distortion(x, out, 0.013).loss.backward()
    grads = [p.grad for p in model.main_parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)
