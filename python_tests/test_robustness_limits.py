"""Memory bounded by limits, not by what a header claims: the pixel limit of stegafast.data.limits
for image files and .sfc headers (and its --max-pixels / STEGAFAST_MAX_PIXELS overrides), and the
memory budget (STEGAFAST_MEMORY_BUDGET) that large valid images are weighed against
(stegafast.train.footprint) by codec compress/decompress, stamp encode/decode and stego embed/extract."""

import os
import struct
import subprocess
import sys
import textwrap
import warnings
import zlib

import pytest
import torch
from PIL import Image
from testutils import single_error_line, write_random_png

from stegafast.cli import main
from stegafast.data import DataError, ImageFolder, load_image
from stegafast.data.limits import MEMORY_ENV, PIXELS_ENV, ImageTooLargeError, max_pixels, set_max_pixels
from stegafast.models.codec.config import CodecConfig
from stegafast.models.codec.fileformat import _FIXED, FORMAT_VERSION, MAGIC, read_sfc
from stegafast.models.codec.inference import ImageCodec
from stegafast.models.codec.model import HyperpriorCodec
from stegafast.models.stamp.config import StampModelConfig
from stegafast.models.stamp.task import StampTask
from stegafast.models.stego.config import StegoModelConfig
from stegafast.models.stego.task import StegoTask
from stegafast.train.checkpoint import CHECKPOINT_FORMAT, atomic_save
from stegafast.train.footprint import DECODE_BYTES_PER_PIXEL, ImageFootprint, peak_bytes
from stegafast.train.task import built_models


@pytest.fixture(autouse=True)
def _no_override(monkeypatch):
    monkeypatch.delenv(PIXELS_ENV, raising=False)
    monkeypatch.delenv(MEMORY_ENV, raising=False)
    set_max_pixels(None)
    yield
    set_max_pixels(None)


def _png_claiming(path, height, width):
    """A valid 2x2 PNG whose IHDR (CRC recomputed) claims height x width: a decompression bomb's header."""
    write_random_png(path, (2, 2, 3))
    data = bytearray(path.read_bytes())
    struct.pack_into(">II", data, 16, width, height)  # IHDR data starts at byte 16
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def _sfc_claiming(height, width):
    body = _FIXED.pack(MAGIC, FORMAT_VERSION, bytes(16), height, width, 2) + struct.pack("<II", 3, 5) + bytes(8)
    return body + struct.pack("<I", zlib.crc32(body))


def test_the_default_is_pillows_limit():
    assert max_pixels() == Image.MAX_IMAGE_PIXELS == 89_478_485


def test_an_image_header_over_the_limit_is_refused_before_decoding(tmp_path):
    bomb = _png_claiming(tmp_path / "bomb.png", 60000, 60000)
    with pytest.raises(ImageTooLargeError, match="is 60000x60000 = 3,600,000,000 pixels, more than the limit of"):
        load_image(bomb)
    with pytest.raises(ImageTooLargeError):
        ImageFolder(tmp_path, crop_size=2)  # the folder's header scan too


def test_the_microscopy_reader_checks_the_same_limit(tmp_path):
    """The diffusion family's one-channel reader goes through the same checked header open."""
    pytest.importorskip("diffusers")
    from stegafast.models.diffusion.imagefiles import read_intensity

    bomb = _png_claiming(tmp_path / "bomb.png", 60000, 60000)
    with pytest.raises(ImageTooLargeError, match="is 60000x60000 = 3,600,000,000 pixels, more than the limit of"):
        read_intensity(bomb)


def test_the_environment_and_the_override_set_the_limit(tmp_path, monkeypatch):
    image = write_random_png(tmp_path / "x.png", (16, 16, 3))
    monkeypatch.setenv(PIXELS_ENV, "255")
    with pytest.raises(ImageTooLargeError, match="16x16 = 256 pixels, more than the limit of 255"):
        load_image(image)
    set_max_pixels(256)  # a command's --max-pixels wins over the environment
    assert load_image(image).shape == (3, 16, 16)
    monkeypatch.setenv(PIXELS_ENV, "lots")
    set_max_pixels(None)
    with pytest.raises(DataError, match=f"{PIXELS_ENV} must be a positive integer"):
        max_pixels()


def test_a_limit_above_pillows_lets_pillow_read_the_image(tmp_path, monkeypatch):
    image = write_random_png(tmp_path / "x.png", (30, 30, 3))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow alone would refuse 900 pixels (> 2 x 100)
    set_max_pixels(1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor a DecompressionBombWarning
        assert load_image(image).shape == (3, 30, 30)
    assert Image.MAX_IMAGE_PIXELS == 100  # Pillow's setting is left as it was


def test_an_sfc_header_over_the_limit_is_refused_before_any_decoding():
    with pytest.raises(ImageTooLargeError, match="65536x65536 = 4,294,967,296 pixels"):
        read_sfc(_sfc_claiming(65536, 65536))
    assert read_sfc(_sfc_claiming(64, 64)).height == 64


def test_the_commands_say_it_in_one_line_and_take_max_pixels(tmp_path, capsys):
    bomb = tmp_path / "bomb.sfc"
    bomb.write_bytes(_sfc_claiming(40000, 40000))
    argv = ["codec", "decompress", str(bomb), "-o", str(tmp_path / "x.png"), "--checkpoint", str(tmp_path / "c.pt")]
    assert main(argv) == 2
    assert "more than the limit of 89,478,485 (raise it with --max-pixels" in single_error_line(capsys)
    assert main([*argv, "--max-pixels", str(40000 * 40000)]) == 2
    assert "no checkpoint at" in single_error_line(capsys)  # past the size check, to the missing checkpoint
    assert main([*argv, "--max-pixels", "0"]) == 2
    assert "--max-pixels must be a positive integer" in single_error_line(capsys)
    image = write_random_png(tmp_path / "x16.png", (16, 16, 3))
    compress = ["codec", "compress", image, "-o", str(tmp_path / "x.sfc"), "--checkpoint", str(tmp_path / "c.pt")]
    assert main([*compress, "--max-pixels", "100"]) == 2
    assert "16x16 = 256 pixels, more than the limit of 100" in single_error_line(capsys)


# ---- the memory budget (item 9): an image too large for the model is refused with an estimate ----


def _save_models(path, task):
    models = built_models(task)
    for m in models.values():
        if hasattr(m, "update"):
            m.update()
    atomic_save(
        {
            "format": CHECKPOINT_FORMAT,
            "identity": task.identity(),
            "models": {n: m.state_dict() for n, m in models.items()},
        },
        path,
    )
    return str(path)


def _flat_png(path, height, width):
    Image.new("RGB", (width, height), (90, 120, 200)).save(path)  # compresses to almost nothing
    return str(path)


def test_peak_bytes_counts_what_is_alive_at_once():
    def run():
        a = torch.zeros(2**18)  # 1 MiB
        b = torch.zeros(2**18)
        del a
        c = torch.zeros(2**17)  # 0.5 MiB while b lives
        return b, c

    assert peak_bytes(run) == 2**20 * 2
    view_only = peak_bytes(lambda: torch.zeros(2**18).view(512, 512).t())
    assert view_only == 2**20  # views share their storage


def test_the_footprint_is_fitted_affine_and_only_for_images_beyond_the_probes():
    calls = []

    def run_at(h, w):
        calls.append((h, w))
        return torch.zeros(5, h, w)  # 20 bytes a pixel, plus a fixed 4 KiB

    footprint = ImageFootprint(lambda h, w: (run_at(h, w), torch.zeros(1024)), side=32)
    assert footprint.estimate(64, 64) is None and not calls  # no larger than the larger probe
    assert footprint.estimate(1000, 1000) == 4096 + (20 + DECODE_BYTES_PER_PIXEL) * 10**6
    footprint.estimate(2000, 3000)
    assert calls == [(32, 32), (64, 64)]  # measured once


def test_codec_refuses_an_image_over_the_budget_with_its_estimate(monkeypatch):
    model = HyperpriorCodec(CodecConfig(N=8, M=8))
    model.update()
    codec = ImageCodec(model)
    image = torch.rand(3, 300, 400)
    data = codec.compress(image)  # within the default budget
    monkeypatch.setenv(MEMORY_ENV, "2M")
    with pytest.raises(ImageTooLargeError, match="the image is 300x400; processing it would take about .* MiB, more"):
        codec.compress(image)
    with pytest.raises(ImageTooLargeError, match="the image x.sfc holds is 300x400"):
        codec.decompress(data, name="x.sfc")


def test_stamp_encode_decode_and_stego_embed_refuse_in_one_line(tmp_path, capsys, monkeypatch):
    stamp = _save_models(tmp_path / "stamp.pt", StampTask(StampModelConfig(image_size=32)))
    stego = _save_models(tmp_path / "stego.pt", StegoTask(StegoModelConfig(blocks=1, hidden=8)))
    image = _flat_png(tmp_path / "big.png", 1024, 768)
    encode = ["stamp", "encode", "--checkpoint", stamp, "--image", image, "--secret", "hi"]
    encode += ["--out", str(tmp_path / "o")]
    embed = ["stego", "embed", "--checkpoint", stego, "--cover", image, "--secret", image]
    embed += ["--out", str(tmp_path / "s.png")]
    assert main(encode) == 0 and main(embed) == 0  # within the default budget
    capsys.readouterr()
    monkeypatch.setenv(MEMORY_ENV, "8M")  # the models fit (7 MiB at most), the image does not (14 MiB at least)
    decode = ["stamp", "decode", "--checkpoint", stamp, "--image", image]
    for argv, what in ((encode, f"image {image}"), (decode, f"image {image}"), (embed, f"cover image {image}")):
        assert main(argv) == 2
        line = single_error_line(capsys)
        assert f"{what} is 1024x768; processing it would take about" in line and "STEGAFAST_MEMORY_BUDGET" in line


def test_under_a_real_address_space_cap_the_budget_follows_it(tmp_path):
    # no STEGAFAST_MEMORY_BUDGET: the budget is 80% of what RLIMIT_AS leaves, and a cover the
    # model could not embed within it is refused in one line, not in the allocator
    stego = _save_models(tmp_path / "stego.pt", StegoTask(StegoModelConfig(blocks=2, hidden=32)))
    image = _flat_png(tmp_path / "big.png", 3000, 3000)
    script = textwrap.dedent(f"""
        import os, resource, sys
        from stegafast.cli import main
        mapped = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        cap = mapped + 1500 * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        sys.exit(main(["stego", "embed", "--checkpoint", {stego!r}, "--cover", {image!r}, "--secret", {image!r},
                       "--out", {str(tmp_path / "s.png")!r}]))
    """)
    env = {k: v for k, v in os.environ.items() if k != MEMORY_ENV}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 2, out.stderr[-3000:]
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "cover image" in err[0] and "more than the memory budget" in err[0], err
