"""The range coder: round trips over many distributions, escapes, native streams
byte-identical to the reference, the batch container, compression against the
ideal information content, corrupted streams, operator registration and bad input."""

import math

import numpy as np
import pytest
import torch
from kernel_testing import BadInput, Call, KernelTester
from testutils import on_native, on_reference, requires_native

import stegafast
from stegafast import NativeKernelUnavailable, _native, ops, reference, use_backend
from stegafast.ops.entropy import CONTAINER_VERSION

TOTAL = 1 << 16
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def quantised_cdf(pmf, escape_mass=1.0 / TOTAL) -> list[int]:
    """A CompressAI-style row: every bin (regular ones and the escape) gets >= 1/65536."""
    pmf = np.append(np.asarray(pmf, dtype=np.float64), escape_mass)
    freq = np.maximum(1, np.floor(pmf / pmf.sum() * TOTAL)).astype(np.int64)
    freq[np.argmax(freq)] += TOTAL - freq.sum()
    assert freq.min() >= 1
    return [0] + np.cumsum(freq).tolist()


def make_table(rows: list[list[int]], offsets: list[int], pad: int = 3):
    """cdfs (with `pad` garbage entries past each row: they must be ignored), lengths, offsets."""
    lmax = max(len(r) for r in rows) + pad
    cdfs = torch.full((len(rows), lmax), -12345, dtype=torch.int32)
    for k, r in enumerate(rows):
        cdfs[k, : len(r)] = torch.tensor(r, dtype=torch.int32)
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.int32)
    return cdfs, lengths, torch.tensor(offsets, dtype=torch.int32)


def sample(rng, row, offset, n) -> np.ndarray:
    """n values drawn from a row's distribution (escape bin -> value = max_value + offset)."""
    freq = np.diff(row)
    return rng.choice(len(freq), size=n, p=freq / TOTAL) + offset


def ideal_bits(symbols, indexes, cdfs, lengths, offsets) -> float:
    bits = 0.0
    for v, k in zip(symbols.tolist(), indexes.tolist()):
        m, s = int(lengths[k]) - 2, v - int(offsets[k])
        s = m if s < 0 or s > m else s
        bits -= math.log2((int(cdfs[k, s + 1]) - int(cdfs[k, s])) / TOTAL)
    return bits


DISTRIBUTIONS = {
    "peaked": lambda: quantised_cdf(np.exp(-np.abs(np.arange(-20, 21)) * 1.5)),
    "flat": lambda: quantised_cdf(np.ones(64)),
    "two_symbols": lambda: quantised_cdf([0.3, 0.7]),
    "4096_symbols": lambda: quantised_cdf(np.random.default_rng(3).random(4096) + 0.01),
    "one_symbol_with_escape": lambda: quantised_cdf([1.0]),
    "all_mass_on_one": lambda: [0, 0, TOTAL, TOTAL, TOTAL],  # only bin 1; escape has zero mass
}


def _dist_case(name, n, seed=0):
    row = DISTRIBUTIONS[name]()
    cdfs, lengths, offsets = make_table([row, quantised_cdf(np.ones(3))], [-7, 2])
    rng = np.random.default_rng(seed)
    idx = np.zeros(n, dtype=np.int32)
    idx[rng.random(n) < 0.1] = 1 if name != "all_mass_on_one" else 0
    vals = np.where(idx == 0, sample(rng, row, -7, n), sample(rng, quantised_cdf(np.ones(3)), 2, n))
    return (torch.tensor(vals, dtype=torch.int32), torch.tensor(idx), cdfs, lengths, offsets)


def _escape_case(n=400, seed=1):
    rng = np.random.default_rng(seed)
    cdfs, lengths, offsets = make_table(
        [quantised_cdf(np.ones(9), escape_mass=0.2), quantised_cdf([1, 2], 0.5)], [INT32_MAX, INT32_MIN]
    )
    vals = rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True)
    vals[:8] = [INT32_MIN, INT32_MAX, 0, -1, 1, INT32_MIN + 1, INT32_MAX - 1, 2**20]
    idx = rng.integers(0, 2, n).astype(np.int32)
    return torch.tensor(vals, dtype=torch.int32), torch.tensor(idx), cdfs, lengths, offsets


# --- round trips ---------------------------------------------------------------


@pytest.mark.parametrize("backend", ["reference", pytest.param("native", marks=requires_native)])
@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
def test_round_trip(backend, name):
    sym, idx, cdfs, lengths, offsets = _dist_case(name, 3000)
    with use_backend(backend):
        stream = ops.range_encode(sym, idx, cdfs, lengths, offsets)
        assert stream.dtype == torch.uint8 and stream.dim() == 1
        assert torch.equal(ops.range_decode(stream, idx, cdfs, lengths, offsets), sym)


@pytest.mark.parametrize("backend", ["reference", pytest.param("native", marks=requires_native)])
def test_escapes_round_trip_every_int32(backend):
    args = _escape_case()
    with use_backend(backend):
        stream = ops.range_encode(*args)
        assert torch.equal(ops.range_decode(stream, *args[1:]), args[0])


@pytest.mark.parametrize("backend", ["reference", pytest.param("native", marks=requires_native)])
def test_empty_input(backend):
    _, _, cdfs, lengths, offsets = _dist_case("flat", 1)
    empty = torch.zeros(0, dtype=torch.int32)
    with use_backend(backend):
        stream = ops.range_encode(empty, empty, cdfs, lengths, offsets)
        assert stream.numel() == 0
        assert ops.range_decode(stream, empty, cdfs, lengths, offsets).numel() == 0
        container, stream_lengths = ops.range_encode_batch(
            empty, empty, torch.zeros(0, dtype=torch.int64), cdfs, lengths, offsets
        )
        assert stream_lengths.numel() == 0
        assert ops.range_decode_batch(container, empty, cdfs, lengths, offsets).numel() == 0


def test_zero_bit_symbols_give_an_empty_stream():
    sym, idx, cdfs, lengths, offsets = _dist_case("all_mass_on_one", 500)
    assert ops.range_encode(sym, idx, cdfs, lengths, offsets).numel() == 0


# --- native against the reference --------------------------------------------


@requires_native
@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
def test_native_streams_equal_reference(name):
    args = _dist_case(name, 2000, seed=5)
    assert torch.equal(on_native(ops.range_encode, *args), on_reference(ops.range_encode, *args))


@requires_native
def test_native_escape_streams_equal_reference():
    args = _escape_case(seed=7)
    native = on_native(ops.range_encode, *args)
    assert torch.equal(native, reference.range_encode(*args))
    assert torch.equal(on_native(ops.range_decode, native, *args[1:]), args[0])


# --- the native coder's fast paths: decoder lookup tables, carries, buffer growth ---


def _zero_width_row(length: int, positive: list[int]) -> list[int]:
    """A row of `length` entries whose only bins of non-zero width are `positive`."""
    freq = np.zeros(length - 1, dtype=np.int64)
    freq[positive] = TOTAL // len(positive)
    freq[positive[0]] += TOTAL - freq.sum()
    return [0] + np.cumsum(freq).tolist()


# (rows, number of symbols): the decoder picks its search per table and call size
SEARCH_CASES = {
    "binary_search_too_few_symbols_for_a_table": ([quantised_cdf(np.random.default_rng(3).random(4096))], 12),
    "table_slices_scanned": ([DISTRIBUTIONS["peaked"]()], 3000),
    "table_slices_halved": ([quantised_cdf(np.random.default_rng(4).random(4096) + 0.01)], 200),
    "many_rows_share_the_table_budget": (
        [quantised_cdf(np.exp(-np.arange(n) / (1 + n / 8))) for n in range(1, 301)],
        6000,
    ),
    "zero_width_bins": ([_zero_width_row(40, [2, 3, 9, 10, 11, 30, 38])], 3000),
    "over_65536_bins_no_table": ([_zero_width_row(70000, [0, 5, 40000, 65536, 69990, 69998])], 3000),
}


@requires_native
@pytest.mark.parametrize("name", list(SEARCH_CASES))
def test_decoder_search_paths_round_trip_and_equal_reference(name):
    rows, n = SEARCH_CASES[name]
    rng = np.random.default_rng(8)
    offsets = rng.integers(-50, 50, len(rows)).tolist()
    cdfs, lengths, offs = make_table(rows, offsets)
    idx = rng.integers(0, len(rows), n).astype(np.int32)
    vals = np.zeros(n, dtype=np.int32)
    for k in np.unique(idx):
        vals[idx == k] = sample(rng, rows[k], offsets[k], int((idx == k).sum()))
    args = (torch.tensor(vals), torch.tensor(idx), cdfs, lengths, offs)
    stream = on_native(ops.range_encode, *args)
    assert torch.equal(stream, reference.range_encode(*args))
    assert torch.equal(on_native(ops.range_decode, stream, *args[1:]), args[0])


@requires_native
def test_carries_through_runs_of_ff_bytes_equal_reference():
    # a fair bin next to an escape without payload: the coded value often lands
    # just below a byte boundary, so carries ripple through runs of 0xFF bytes
    cdfs, lengths, offsets = make_table([[0, TOTAL // 2, TOTAL]], [0])
    rng = np.random.default_rng(0)
    sym = torch.tensor(rng.integers(0, 2, 20000), dtype=torch.int32)
    args = (sym, torch.zeros(20000, dtype=torch.int32), cdfs, lengths, offsets)
    stream = on_native(ops.range_encode, *args)
    assert b"\xff" * 4 in bytes(stream.tolist())
    assert torch.equal(stream, reference.range_encode(*args))
    assert torch.equal(on_native(ops.range_decode, stream, *args[1:]), sym)


@requires_native
def test_low_entropy_streams_equal_reference():
    # under half a bit a value, the encoder switches to its branchy
    # renormalisation after the first block of 4096 values: the same bytes
    cdfs, lengths, offsets = make_table([[0, 40, TOTAL - 40, TOTAL]], [-3])
    rng = np.random.default_rng(14)
    sym = torch.tensor(sample(rng, [0, 40, TOTAL - 40, TOTAL], -3, 15000), dtype=torch.int32)
    sym[rng.integers(0, 15000, 20)] = 1000  # a few escapes among them
    idx = torch.zeros(15000, dtype=torch.int32)
    args = (sym, idx, cdfs, lengths, offsets)
    stream = on_native(ops.range_encode, *args)
    assert stream.numel() < 15000 / 16  # the branchy path's regime
    assert torch.equal(stream, reference.range_encode(*args))
    assert torch.equal(on_native(ops.range_decode, stream, *args[1:]), sym)


@requires_native
def test_escape_heavy_streams_grow_the_buffer_and_equal_reference():
    # nearly every value escapes with a 32-bit payload: about 7 bytes a value,
    # well past the 2 bytes a value the encoder's first buffer holds
    args = _escape_case(3000, seed=12)
    stream = on_native(ops.range_encode, *args)
    assert stream.numel() > 5 * 3000
    assert torch.equal(stream, reference.range_encode(*args))
    assert torch.equal(on_native(ops.range_decode, stream, *args[1:]), args[0])
    counts = torch.tensor([1000, 0, 2000], dtype=torch.int64)
    container, _ = on_native(ops.range_encode_batch, args[0], args[1], counts, *args[2:])
    assert torch.equal(container, reference.range_encode_batch(args[0], args[1], counts, *args[2:])[0])


def _batch_case(seed=2):
    rng = np.random.default_rng(seed)
    rows = [quantised_cdf(np.exp(-np.arange(n) / (n / 4))) for n in (3, 17, 300)]
    cdfs, lengths, offsets = make_table(rows, [0, -8, -150])
    counts = torch.tensor([0, 1, 250, 0, 1000, 37, 500], dtype=torch.int64)
    n = int(counts.sum())
    idx = rng.integers(0, 3, n).astype(np.int32)
    vals = np.array([sample(rng, rows[k], int(offsets[k]), 1)[0] for k in idx], dtype=np.int64)
    vals[::50] = rng.integers(-(10**6), 10**6, len(vals[::50]))  # some escapes
    return torch.tensor(vals, dtype=torch.int32), torch.tensor(idx), counts, cdfs, lengths, offsets


@pytest.mark.parametrize("backend", ["reference", pytest.param("native", marks=requires_native)])
def test_batch_round_trip_and_container(backend):
    sym, idx, counts, cdfs, lengths, offsets = _batch_case()
    with use_backend(backend):
        container, stream_lengths = ops.range_encode_batch(sym, idx, counts, cdfs, lengths, offsets)
        assert torch.equal(ops.range_decode_batch(container, idx, cdfs, lengths, offsets), sym)
    data = bytes(container.tolist())
    s = len(counts)
    assert data[:5] == b"SFRC" + bytes([CONTAINER_VERSION]) and int.from_bytes(data[5:9], "little") == s
    header = np.frombuffer(data[9 : 9 + 8 * s], dtype="<u4")
    assert header[:s].tolist() == counts.tolist() and header[s:].tolist() == stream_lengths.tolist()
    assert len(data) == 9 + 8 * s + int(stream_lengths.sum())
    # each stream is exactly the single-stream coding of its run
    pos, start = 9 + 8 * s, 0
    for c, nbytes in zip(counts.tolist(), stream_lengths.tolist()):
        single = reference.range_encode(sym[start : start + c], idx[start : start + c], cdfs, lengths, offsets)
        assert data[pos : pos + nbytes] == bytes(single.tolist())
        pos, start = pos + nbytes, start + c


@requires_native
def test_batch_native_equal_reference_and_deterministic_across_threads():
    args = _batch_case(seed=4)
    expected, expected_lengths = reference.range_encode_batch(*args)
    threads = torch.get_num_threads()
    try:
        for t in (1, 2, 4):
            torch.set_num_threads(t)
            container, stream_lengths = on_native(ops.range_encode_batch, *args)
            assert torch.equal(container, expected) and torch.equal(stream_lengths, expected_lengths)
    finally:
        torch.set_num_threads(threads)


def test_encoding_is_deterministic():
    args = _dist_case("peaked", 3000, seed=9)
    first = ops.range_encode(*args)
    assert all(torch.equal(first, ops.range_encode(*args)) for _ in range(3))


# --- compression ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["peaked", "flat", "4096_symbols", "one_symbol_with_escape"])
def test_size_within_a_tenth_of_a_percent_of_ideal(name):
    args = _dist_case(name, 20000, seed=11)
    nbytes = ops.range_encode(*args).numel()
    ideal = ideal_bits(*args) / 8
    assert nbytes <= ideal * 1.001 + 4, (nbytes, ideal)


# --- corrupted and truncated streams ---------------------------------------------


@requires_native
def test_corrupted_streams_never_crash():
    rng = np.random.default_rng(13)
    args = _escape_case(200, seed=3)
    clean = on_native(ops.range_encode, *args).numpy()
    tables = args[1:]
    for case in range(3000):
        data = clean.copy()
        kind = case % 4
        if kind == 0:  # flipped bytes
            pos = rng.integers(0, len(data), rng.integers(1, 5))
            data[pos] ^= rng.integers(1, 256, len(pos)).astype(np.uint8)
        elif kind == 1:  # truncated
            data = data[: rng.integers(0, len(data))]
        elif kind == 2:  # random garbage of any length
            data = rng.integers(0, 256, rng.integers(0, 64)).astype(np.uint8)
        else:  # all 0xFF: the largest code values
            data = np.full(rng.integers(1, 40), 0xFF, dtype=np.uint8)
        out = torch.ops.stegafast.range_decode(torch.from_numpy(data.copy()), *tables)
        assert out.shape == args[0].shape and out.dtype == torch.int32


@requires_native
@pytest.mark.parametrize("case", ["escapes", "peaked"])
def test_corrupted_streams_decode_as_the_reference_does(case):
    """Garbage in, the same garbage out: the fast decoder keeps the reference's
    semantics (clamped targets, zeros past the end) on any bytes."""
    rng = np.random.default_rng(19)
    args = _escape_case(120, seed=5) if case == "escapes" else _dist_case("peaked", 300, seed=6)
    clean = on_native(ops.range_encode, *args).numpy()
    for trial in range(60):
        data = clean.copy()
        if trial % 3 == 0:
            data = data[: rng.integers(0, len(data))]
        elif trial % 3 == 1:
            pos = rng.integers(0, len(data), rng.integers(1, 4))
            data[pos] ^= rng.integers(1, 256, len(pos)).astype(np.uint8)
        else:
            data = rng.integers(0, 256, rng.integers(0, 80)).astype(np.uint8)
        stream = torch.from_numpy(data.copy())
        native = torch.ops.stegafast.range_decode(stream, *args[1:])
        assert torch.equal(native, reference.range_decode(stream, *args[1:]))


@requires_native
def test_corrupted_containers_raise_or_decode():
    rng = np.random.default_rng(17)
    sym, idx, counts, cdfs, lengths, offsets = _batch_case(seed=6)
    container, _ = ops.range_encode_batch(sym, idx, counts, cdfs, lengths, offsets)
    clean = container.numpy()
    for case in range(1500):
        data = clean.copy()
        if case % 2:
            data = data[: rng.integers(0, len(data))]
        else:
            pos = rng.integers(0, min(len(data), 9 + 8 * len(counts) + 4), rng.integers(1, 4))
            data[pos] ^= rng.integers(1, 256, len(pos)).astype(np.uint8)
        try:
            out = torch.ops.stegafast.range_decode_batch(torch.from_numpy(data.copy()), idx, cdfs, lengths, offsets)
        except RuntimeError as e:
            assert "range_decode_batch" in str(e)
        else:
            assert out.shape == sym.shape


def test_damaged_container_header_is_a_value_error():
    sym, idx, counts, cdfs, lengths, offsets = _batch_case()
    container, _ = ops.range_encode_batch(sym, idx, counts, cdfs, lengths, offsets)
    for backend in ["reference"] + (["native"] if stegafast.native_available() else []):
        with use_backend(backend):
            with pytest.raises(ValueError, match="magic"):
                ops.range_decode_batch(container[1:], idx, cdfs, lengths, offsets)
            with pytest.raises(ValueError, match="past the end"):
                ops.range_decode_batch(container[:-1], idx, cdfs, lengths, offsets)
            with pytest.raises(ValueError, match="symbols"):
                ops.range_decode_batch(container, idx[:-1], cdfs, lengths, offsets)


# --- bad input -------------------------------------------------------------------


def _good():
    cdfs, lengths, offsets = make_table([quantised_cdf(np.ones(4)), quantised_cdf([1, 3])], [0, -1])
    sym = torch.tensor([0, 1, 2, -1], dtype=torch.int32)
    idx = torch.tensor([0, 0, 1, 1], dtype=torch.int32)
    return sym, idx, cdfs, lengths, offsets


def _with(i, value):
    args = list(_good())
    args[i] = value(args[i]) if callable(value) else value
    return args


def _set(t, index, v):
    t = t.clone()
    t[index] = v
    return t


BAD_ENCODE = [
    (_with(0, lambda s: s.long()), TypeError, "symbols has dtype"),
    (_with(1, lambda i: i[None]), ValueError, "indexes must have 1 dims"),
    (_with(2, lambda c: c.float()), TypeError, "cdfs has dtype"),
    (_with(2, lambda c: c[0]), ValueError, "cdfs must have 2 dims"),
    (_with(3, lambda n: n[:1]), ValueError, "one per cdfs row"),
    (_with(4, lambda o: o.long()), TypeError, "offsets has dtype"),
    (_with(1, lambda i: _set(i, 2, 2)), ValueError, r"indexes\[2\] = 2 is outside"),
    (_with(1, lambda i: _set(i, 0, -1)), ValueError, r"indexes\[0\] = -1 is outside"),
    (_with(2, lambda c: _set(c, (0, 2), 70000)), ValueError, "not non-decreasing"),
    (_with(2, lambda c: _set(c, (1, 0), 5)), ValueError, "must start at 0 and end at 65536"),
    (_with(2, lambda c: _set(c, (1, 3), 65535)), ValueError, "must start at 0 and end at 65536"),
    (_with(3, lambda n: _set(n, 0, 1)), ValueError, r"cdf_lengths\[0\] = 1 must be in"),
    (_with(3, lambda n: _set(n, 1, 99)), ValueError, r"cdf_lengths\[1\] = 99 must be in"),
    (_with(0, lambda s: s[:3]), ValueError, "symbols and indexes must have one shape"),
]


@pytest.mark.parametrize("backend", ["reference", pytest.param("native", marks=requires_native)])
def test_zero_probability_symbol_is_refused(backend):
    cdfs, lengths, offsets = make_table([[0, 0, TOTAL, TOTAL]], [0])
    idx = torch.zeros(2, dtype=torch.int32)
    with use_backend(backend):
        for bad in (0, 5):  # a zero-mass regular bin, and an escape with zero mass
            sym = torch.tensor([1, bad], dtype=torch.int32)
            with pytest.raises(ValueError, match=r"symbols\[1\] = .* zero probability"):
                ops.range_encode(sym, idx, cdfs, lengths, offsets)
            with pytest.raises(ValueError, match=r"symbols\[1\] = .* zero probability"):
                ops.range_encode_batch(sym, idx, torch.tensor([2]), cdfs, lengths, offsets)


def test_bad_decode_and_batch_arguments():
    sym, idx, cdfs, lengths, offsets = _good()
    stream = ops.range_encode(sym, idx, cdfs, lengths, offsets)
    with pytest.raises(TypeError, match="stream has dtype"):
        ops.range_decode(stream.int(), idx, cdfs, lengths, offsets)
    with pytest.raises(ValueError, match="is outside"):
        ops.range_decode(stream, idx + 5, cdfs, lengths, offsets)
    with pytest.raises(ValueError, match="sum to 3, but there are 4"):
        ops.range_encode_batch(sym, idx, torch.tensor([1, 2]), cdfs, lengths, offsets)
    with pytest.raises(ValueError, match="non-negative"):
        ops.range_encode_batch(sym, idx, torch.tensor([5, -1]), cdfs, lengths, offsets)
    with pytest.raises(TypeError, match="symbol_counts has dtype"):
        ops.range_encode_batch(sym, idx, torch.tensor([4], dtype=torch.int32), cdfs, lengths, offsets)


@requires_native
@pytest.mark.parametrize("args,error,match", BAD_ENCODE, ids=[m for _, _, m in BAD_ENCODE])
def test_direct_native_calls_are_checked(args, error, match):
    """The C++ checks (TORCH_CHECK) catch what the Python wrapper would, so a
    direct torch.ops call cannot read out of bounds."""
    with pytest.raises(RuntimeError, match="range_encode: "):
        torch.ops.stegafast.range_encode(*args)
    if not match.startswith("symbols"):  # decoding takes no symbols
        with pytest.raises(RuntimeError, match="range_decode: "):
            torch.ops.stegafast.range_decode(torch.zeros(3, dtype=torch.uint8), *args[1:])


@requires_native
def test_direct_native_zero_probability_and_counts_are_checked():
    cdfs, lengths, offsets = make_table([[0, 0, TOTAL, TOTAL]], [0])
    idx = torch.zeros(2, dtype=torch.int32)
    sym = torch.tensor([1, 0], dtype=torch.int32)
    with pytest.raises(RuntimeError, match="zero probability"):
        torch.ops.stegafast.range_encode(sym, idx, cdfs, lengths, offsets)
    with pytest.raises(RuntimeError, match="zero probability"):
        torch.ops.stegafast.range_encode_batch(sym, idx, torch.tensor([1, 1]), cdfs, lengths, offsets)
    with pytest.raises(RuntimeError, match="symbol_counts"):
        torch.ops.stegafast.range_encode_batch(sym, idx, torch.tensor([3, -1]), cdfs, lengths, offsets)


# --- devices ----------------------------------------------------------------------


@requires_native
def test_no_cuda_kernel_is_reported():
    for op in ("range_encode", "range_decode", "range_encode_batch", "range_decode_batch"):
        assert _native.has_kernel(op, "cpu")
        assert _native.unavailable_reason(op, "cuda") is not None


@pytest.mark.cuda
def test_cuda_tensors_use_the_reference_or_raise_under_native():
    sym, idx, cdfs, lengths, offsets = (t.cuda() for t in _dist_case("flat", 100))
    stream = ops.range_encode(sym, idx, cdfs, lengths, offsets)
    assert torch.equal(ops.range_decode(stream, idx, cdfs, lengths, offsets), sym)
    with use_backend("native"), pytest.raises(NativeKernelUnavailable, match="no native kernel for cuda"):
        ops.range_encode(sym, idx, cdfs, lengths, offsets)


# --- the shared battery ---------------------------------------------------------------

EXACT = dict(atol=0, rtol=0)


class TestEntropyKernel(KernelTester):
    """The shared battery (kernel_testing.py): streams and symbols are integers,
    so every comparison is exact; the ops have no gradients (integer data)."""

    kernel = "entropy"
    op_names = ("range_encode", "range_decode", "range_encode_batch", "range_decode_batch")
    shapes = [(1,), (13,), (3000,)]  # symbols per call
    dtypes = (torch.int32,)
    tolerances = {torch.int32: EXACT, torch.uint8: EXACT}  # by the first tensor argument's dtype
    autocast_input_dtypes = (torch.int32,)
    compile_backend = "eager"
    bad_inputs = [BadInput(ops.range_encode, tuple(args), error, match) for args, error, match in BAD_ENCODE]

    def parity_calls(self, shape, dtype):
        (n,) = shape
        args = _dist_case("peaked", n, seed=n)
        sym, idx, cdfs, lengths, offsets = args
        yield Call(ops.range_encode, args)
        yield Call(ops.range_decode, (reference.range_encode(*args), *args[1:]), expected=sym)
        counts = torch.tensor([n // 3, 0, n - n // 3], dtype=torch.int64)
        batch = (sym, idx, counts, cdfs, lengths, offsets)
        yield Call(ops.range_encode_batch, batch)
        container, _ = reference.range_encode_batch(*batch)
        yield Call(ops.range_decode_batch, (container, idx, cdfs, lengths, offsets), expected=sym)

    def layout_calls(self):
        sym, idx, cdfs, lengths, offsets = _dist_case("peaked", 1000, seed=21)
        wide = torch.zeros(2 * cdfs.shape[0], cdfs.shape[1] + 4, dtype=torch.int32)
        wide[::2, 2 : 2 + cdfs.shape[1]] = cdfs
        strided = [torch.stack([t, t], 1)[:, 0] for t in (sym, idx)]  # stride 2
        args = (*strided, wide[::2, 2 : 2 + cdfs.shape[1]], lengths, offsets)
        assert not args[0].is_contiguous() and not args[2].is_contiguous()
        stream = reference.range_encode(sym, idx, cdfs, lengths, offsets)
        yield Call(ops.range_encode, args, expected=stream)
        yield Call(ops.range_decode, (stream, *args[1:]), expected=sym)

    def opcheck_samples(self):
        sym, idx, counts, cdfs, lengths, offsets = _batch_case()
        stream = ops.range_encode(sym, idx, cdfs, lengths, offsets)
        container, _ = ops.range_encode_batch(sym, idx, counts, cdfs, lengths, offsets)
        # encode's output length is data-dependent: the fake returns an unbacked size,
        # which the AOT-dispatch checks do not cover; the schema and fake checks do
        encode_checks = dict(test_utils=("test_schema", "test_faketensor"))
        op = torch.ops.stegafast
        return [
            (op.range_encode, (sym, idx, cdfs, lengths, offsets), encode_checks),
            (op.range_encode_batch, (sym, idx, counts, cdfs, lengths, offsets), encode_checks),
            (op.range_decode, (stream, idx, cdfs, lengths, offsets)),
            (op.range_decode_batch, (container, idx, cdfs, lengths, offsets)),
        ]

    def compile_case(self):
        # the wrappers' value checks read data; the compiled graph calls the ops themselves
        def round_trip(sym, idx, cdfs, lengths, offsets):
            stream = torch.ops.stegafast.range_encode(sym, idx, cdfs, lengths, offsets)
            return stream, torch.ops.stegafast.range_decode(stream, idx, cdfs, lengths, offsets)

        return round_trip, _dist_case("peaked", 500)

    def compile_expected(self, fn, args):
        return reference.range_encode(*args), args[0]

    def check_compiled(self, outputs, args):
        stream, decoded = outputs
        assert torch.equal(decoded, args[0])
        assert torch.equal(stream, ops.range_encode(*args))

    def autocast_calls(self, dtype):
        args = _dist_case("flat", 200)
        yield Call(ops.range_encode, args)
        yield Call(ops.range_decode, (ops.range_encode(*args), *args[1:]), expected=args[0])
