"""A decoder never turns bytes into NaN or a traceback: the bounds of stegafast.entropy.bounds,
and a fuzz test of the .sfc parser and decoder with recomputed checksums under a memory cap."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from stegafast.entropy import EntropyBottleneck, GaussianConditional
from stegafast.entropy.bounds import SYMBOL_LIMIT, check_finite_decoded, check_stream_capacity, max_stream_bytes
from stegafast.errors import CorruptStreamError, DivergenceError, UserError
from stegafast.ops import range_encode


def _bottleneck(channels=2):
    eb = EntropyBottleneck(channels)
    eb.eval()
    eb.update()
    return eb


def test_the_stream_bound_holds_for_the_costliest_symbols():
    # every symbol an escape with the longest payload, in a row whose escape bin has one count:
    # the worst case the bound in stegafast.entropy.bounds is derived for
    cdfs = torch.tensor([[0, 65535, 65536]], dtype=torch.int32)
    lengths, offsets = torch.tensor([3], dtype=torch.int32), torch.tensor([2**31 - 1], dtype=torch.int32)
    for n in (1, 7, 200):
        symbols = torch.full((n,), -(2**31), dtype=torch.int32)
        stream = range_encode(symbols, torch.zeros(n, dtype=torch.int32), cdfs, lengths, offsets)
        assert 6 * n <= stream.numel() <= max_stream_bytes(n)  # ~7 bytes a symbol: the bound is close


def test_encoders_refuse_values_beyond_the_limit_and_decoders_streams_that_decode_to_them():
    eb = _bottleneck()
    x = torch.zeros(1, 2, 1, 3)
    x[0, 1, 0, 2] = SYMBOL_LIMIT * 4.0
    with pytest.raises(DivergenceError, match="beyond \\+-2\\*\\*24"):
        eb.compress(x)
    # the same stream, coded by the raw coder, is refused when decoded
    symbols = torch.round(x - eb.medians.reshape(1, -1, 1, 1)).to(torch.int32).reshape(1, -1)
    indexes = eb._indexes(x.shape, x.device)
    tables = eb._tables_on_cpu()
    stream = range_encode(symbols.reshape(-1), indexes.reshape(-1), *tables)
    with pytest.raises(CorruptStreamError, match="^corrupt stream: EntropyBottleneck.decompress decoded the value"):
        eb.decompress([bytes(stream.tolist())], (1, 3))


def test_a_stream_too_long_for_its_symbols_is_corrupt():
    eb = _bottleneck()
    with pytest.raises(CorruptStreamError, match="has 40 bytes, more than 2 symbols can code to \\(32\\)"):
        eb.decompress([b"\x01" * 40], (1, 1))
    check_stream_capacity([b"\x01" * 32], [2], "op")  # at the bound: accepted


def test_non_finite_means_or_images_are_corrupt_streams():
    gc = GaussianConditional()
    gc.update()
    indexes = torch.zeros(1, 4, dtype=torch.int32)
    means = torch.tensor([[0.0, float("inf"), 0.0, 0.0]])
    with pytest.raises(CorruptStreamError, match="the means is not finite"):
        gc.decompress([b""], indexes, means)
    with pytest.raises(CorruptStreamError, match="^corrupt stream: the image is not finite$"):
        check_finite_decoded("the image", torch.ones(2), torch.tensor([float("nan")]))
    assert issubclass(CorruptStreamError, UserError)


# The fuzz script: a tiny codec, one image, then mutated files with recomputed CRCs. Each must
# decode to a finite image in [0, 1] or raise a UserError; anything else (a traceback, NaN, an
# allocation beyond the address-space cap) fails the script.
_FUZZ = textwrap.dedent("""
    import collections, json, random, resource, struct, sys, traceback, zlib
    import torch
    from stegafast.errors import UserError
    from stegafast.models.codec.config import CodecConfig
    from stegafast.models.codec.fileformat import _FIXED
    from stegafast.models.codec.inference import ImageCodec
    from stegafast.models.codec.model import HyperpriorCodec

    torch.manual_seed(0)
    model = HyperpriorCodec(CodecConfig(N=8, M=8))
    model.update()
    codec = ImageCodec(model)
    good = codec.compress(torch.rand(3, 70, 90))
    cap = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    rng = random.Random(int(sys.argv[2]))

    def sealed(body):
        return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))

    def flip_stream_bytes(body):
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(_FIXED.size + 8, len(body))
            body[i] = rng.randrange(256)
        return body

    def new_size(body):
        h, w = rng.choice([(1, 1), (65536, 65536), (64, 4096), (rng.randint(1, 300), rng.randint(1, 300))])
        struct.pack_into("<II", body, 21, h, w)
        return body

    def random_streams(body):
        z, y = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40))), bytes(
            rng.randrange(256) for _ in range(rng.randint(0, 300)))
        return bytearray(body[:_FIXED.size] + struct.pack("<II", len(z), len(y)) + z + y)

    def truncate_stream(body):
        z, y = struct.unpack_from("<II", body, _FIXED.size)
        cut = rng.randint(0, y)
        struct.pack_into("<I", body, _FIXED.size + 4, cut)
        return body[: len(body) - (y - cut)]

    mutations = [flip_stream_bytes, new_size, random_streams, truncate_stream]
    outcomes = collections.Counter()
    for trial in range(int(sys.argv[3])):
        body = bytearray(good[:-4])
        for mutate in rng.sample(mutations, rng.randint(1, 2)):
            body = mutate(body)
        try:
            image = codec.decompress(sealed(body))
        except UserError as exc:
            message = str(exc)
            assert "\\n" not in message, message
            outcomes[type(exc).__name__] += 1
            continue
        except BaseException:
            traceback.print_exc()
            print("trial", trial, "body", bytes(body).hex())
            sys.exit(1)
        if not (torch.isfinite(image).all() and image.min() >= 0 and image.max() <= 1):
            print("trial", trial, "decoded to non-finite values:", bytes(body).hex())
            sys.exit(1)
        outcomes["decoded"] += 1
    print(json.dumps(outcomes))
""")


@pytest.mark.parametrize("seed", [0, 1])
def test_fuzzed_sfc_files_decode_or_fail_in_one_line_under_a_memory_cap(seed):
    cap = 3 << 30  # address space: the interpreter and torch take ~0.6 GiB; a bomb would need far more
    out = subprocess.run(
        [sys.executable, "-c", _FUZZ, str(cap), str(seed), "120"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    outcomes = json.loads(out.stdout.strip().splitlines()[-1])
    assert sum(outcomes.values()) == 120
    assert set(outcomes) <= {"decoded", "CorruptStreamError", "CodecFileError", "ImageTooLargeError"}
    assert outcomes.get("CorruptStreamError", 0) > 0 and outcomes.get("decoded", 0) > 0
