"""Memory bounded by limits, not by what a header claims: the pixel limit of stegafast.data.limits
for image files and .sfc headers (and its --max-pixels / STEGAFAST_MAX_PIXELS overrides)."""

import struct
import warnings
import zlib

import pytest
from PIL import Image
from testutils import single_error_line, write_random_png

from stegafast.cli import main
from stegafast.data import DataError, ImageFolder, load_image
from stegafast.data.limits import PIXELS_ENV, ImageTooLargeError, max_pixels, set_max_pixels
from stegafast.models.codec.fileformat import _FIXED, FORMAT_VERSION, MAGIC, read_sfc


@pytest.fixture(autouse=True)
def _no_override(monkeypatch):
    monkeypatch.delenv(PIXELS_ENV, raising=False)
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
