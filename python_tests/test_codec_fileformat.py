"""The .sfc file format: round trip, and a clear error for every truncation, every
flipped byte and a file of another model."""

import pytest
import torch

from stegafast.models.codec import CodecConfig, CodecFileError, HyperpriorCodec, ImageCodec, ModelMismatchError
from stegafast.models.codec.fileformat import FORMAT_VERSION, MAGIC, SfcFile, read_sfc, write_sfc


def _file():
    return SfcFile(bytes(range(16)), 37, 53, (b"\x01\x02\x03", b"", bytes(range(200))))


def test_round_trip():
    data = write_sfc(_file())
    assert data[:4] == MAGIC and data[4] == FORMAT_VERSION
    assert read_sfc(data) == _file()
    assert read_sfc(data, bytes(range(16))) == _file()


def test_every_truncation_is_a_clear_error():
    data = write_sfc(_file())
    for n in range(len(data)):
        with pytest.raises(CodecFileError, match="truncated|not an .sfc file"):
            read_sfc(data[:n], name="x.sfc")


def test_every_flipped_byte_is_a_clear_error():
    data = write_sfc(_file())
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            damaged = bytearray(data)
            damaged[i] ^= bit
            with pytest.raises(CodecFileError, match="x.sfc"):
                read_sfc(bytes(damaged), name="x.sfc")


def test_trailing_bytes_and_foreign_files():
    data = write_sfc(_file())
    with pytest.raises(CodecFileError, match="corrupt"):
        read_sfc(data + b"\0")
    with pytest.raises(CodecFileError, match="not an .sfc file"):
        read_sfc(b"\x89PNG\r\n\x1a\n" + bytes(40))
    with pytest.raises(ModelMismatchError, match="another model"):
        read_sfc(data, bytes(16))


def test_sfc_fields_are_checked_when_written():
    with pytest.raises(ValueError, match="model_id"):
        SfcFile(b"short", 1, 1, ())
    with pytest.raises(ValueError, match="height"):
        SfcFile(bytes(16), 0, 1, ())


@pytest.fixture(scope="module")
def codecs():
    torch.manual_seed(0)
    one = HyperpriorCodec(CodecConfig(N=8, M=8))
    torch.manual_seed(1)
    other = HyperpriorCodec(CodecConfig(N=8, M=8))  # the same architecture, other weights
    for model in (one, other):
        model.eval()
        model.update()
    return ImageCodec(one), ImageCodec(other)


def test_a_file_of_another_model_is_refused(codecs):
    one, other = codecs
    data = one.compress(torch.rand(3, 40, 30))
    assert one.model_id != other.model_id
    with pytest.raises(ModelMismatchError, match="another model"):
        other.decompress(data)
    assert one.decompress(data).shape == (3, 40, 30)


def test_codec_file_damage_is_detected(codecs):
    one, _ = codecs
    data = one.compress(torch.rand(3, 20, 20))
    for n in (0, 5, len(data) // 2, len(data) - 1):
        with pytest.raises(CodecFileError):
            one.decompress(data[:n])
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0x10
    with pytest.raises(CodecFileError, match="checksum"):
        one.decompress(bytes(damaged))
