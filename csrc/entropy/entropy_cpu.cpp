// CPU operators of the range coder (entropy.h holds the coder): argument checks,
// the batch container, and streams coded in parallel with at::parallel_for.
//
// Batch container (range_encode_batch / range_decode_batch), all integers
// little-endian:
//   bytes 0..3   magic "SFRC"
//   byte  4      format version (2: streams of 32-bit words; 1 had bytes)
//   bytes 5..8   uint32 S, the number of streams
//   S x uint32   symbols in each stream
//   S x uint32   bytes in each stream
//   the S streams, concatenated in order (each as in entropy.h)
// The lengths come first so that a decoder (or a later CUDA coder, one block per
// stream) finds every stream's start with one prefix sum.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "../common/checks.h"
#include "entropy.h"

namespace stegafast {
namespace entropy {
namespace {

constexpr uint8_t kMagic[4] = {'S', 'F', 'R', 'C'};
constexpr uint8_t kVersion = 2;
constexpr int64_t kFixedHeader = 9;

void check_1d(const at::Tensor& t, const char* op, const char* name, at::ScalarType dtype) {
  check_cpu(t, op, name);
  TORCH_CHECK(t.dim() == 1, op, ": ", name, " must be 1-D, got ", t.dim(), " dims");
  check_dtype(t, op, name, dtype);
}

// Decoder lookup tables: at most this many entries over all rows (64 KiB, so
// that they stay in the L1/L2 caches next to the CDFs; measured: 64 rows of 2^8
// decode faster than 64 rows of 2^12), and at most one entry per decoded symbol
// (an entry costs a few times less to build than a symbol to decode). Fewer
// than kMinLutBits bits do not pay: plain binary search then.
constexpr int64_t kLutBudget = 32768;
constexpr int kMaxLutBits = 12;
constexpr int kMinLutBits = 4;

// The validated CDF table: rows as (pointer, length, offset), and the decoder's
// lookup tables when add_luts() made them.
struct Table {
  at::Tensor cdfs;  // keeps the contiguous copy alive
  std::vector<Row> rows;
  std::vector<uint16_t> luts;
};

Table check_table(const char* op, const at::Tensor& cdfs, const at::Tensor& lengths, const at::Tensor& offsets) {
  check_cpu(cdfs, op, "cdfs");
  TORCH_CHECK(cdfs.dim() == 2, op, ": cdfs must be 2-D (K, Lmax), got ", cdfs.dim(), " dims");
  check_dtype(cdfs, op, "cdfs", at::kInt);
  check_1d(lengths, op, "cdf_lengths", at::kInt);
  check_1d(offsets, op, "offsets", at::kInt);
  const int64_t k = cdfs.size(0), lmax = cdfs.size(1);
  TORCH_CHECK(k >= 1, op, ": cdfs needs at least one row");
  TORCH_CHECK(lengths.size(0) == k && offsets.size(0) == k, op, ": cdf_lengths and offsets need ", k,
              " entries (one per cdfs row), got ", lengths.size(0), " and ", offsets.size(0));
  Table table{cdfs.contiguous(), {}, {}};
  const at::Tensor len_c = lengths.contiguous(), off_c = offsets.contiguous();
  const int32_t* base = table.cdfs.data_ptr<int32_t>();
  const int32_t* len = len_c.data_ptr<int32_t>();
  const int32_t* off = off_c.data_ptr<int32_t>();
  table.rows.reserve(k);
  for (int64_t r = 0; r < k; ++r) {
    TORCH_CHECK(len[r] >= 2 && len[r] <= lmax, op, ": cdf_lengths[", r, "] = ", len[r], " must be in [2, ", lmax, "]");
    const int32_t* cdf = base + r * lmax;
    TORCH_CHECK(cdf[0] == 0 && cdf[len[r] - 1] == static_cast<int32_t>(kTotal), op, ": cdfs row ", r,
                " must start at 0 and end at 65536");
    for (int32_t i = 1; i < len[r]; ++i)
      TORCH_CHECK(cdf[i] >= cdf[i - 1], op, ": cdfs row ", r, " is not non-decreasing at entry ", i);
    table.rows.push_back(Row{cdf, nullptr, len[r], off[r], 0});
  }
  return table;
}

// Bits of the decoder's lookup tables for decoding `symbols` values, 0 for none:
// about four slices per bin of the longest row, within the budgets above.
int lut_bits(int64_t rows, int64_t lmax, int64_t symbols) {
  if (lmax - 2 > 0xFFFF) return 0;  // bin numbers must fit the uint16 entries
  int bits = std::min(kMaxLutBits, bit_length(static_cast<uint64_t>(lmax - 2)) + 2);
  const int64_t budget = std::min(kLutBudget, symbols);
  while (bits >= kMinLutBits && rows * ((int64_t{1} << bits) + 1) > budget) --bits;
  return bits >= kMinLutBits ? bits : 0;
}

void add_luts(Table& table, int64_t symbols) {
  const int64_t k = static_cast<int64_t>(table.rows.size());
  const int bits = lut_bits(k, table.cdfs.size(1), symbols);
  if (bits == 0) return;
  const int64_t stride = (int64_t{1} << bits) + 1;
  table.luts.resize(k * stride);
  for (int64_t r = 0; r < k; ++r) {
    Row& row = table.rows[r];
    uint16_t* lut = table.luts.data() + r * stride;
    build_lut(row.cdf, row.length, bits, lut);
    row.lut = lut;
    row.lut_shift = kPrecision - bits;
  }
}

// One coded stream: the first `size` bytes of an uninitialised buffer.
struct Coded {
  std::unique_ptr<uint8_t[]> buf;
  int64_t size = 0;
};

// Moves the encoder to a buffer twice as large (only escapes can need it).
void grow(Encoder& enc, Coded& out, int64_t& capacity) {
  capacity *= 2;
  std::unique_ptr<uint8_t[]> larger(new uint8_t[capacity]);
  std::memcpy(larger.get(), out.buf.get(), static_cast<size_t>(enc.size()));
  out.buf = std::move(larger);
  enc.rebase(out.buf.get(), capacity);
}

// Indexes are checked a block at a time, just before the block is coded: the
// coder then reads them from the L1 cache, not a second time from memory.
constexpr int64_t kBlock = 4096;

// The first position in [begin, end) whose index is outside [0, k), or end.
int64_t first_bad_index(const int32_t* idx, int64_t begin, int64_t end, int64_t k) {
  uint32_t top = 0;  // unsigned: a negative index counts as a large one
  for (int64_t i = begin; i < end; ++i) top = std::max(top, static_cast<uint32_t>(idx[i]));
  if (top < k) return end;
  while (static_cast<uint32_t>(idx[begin]) < k) ++begin;
  return begin;
}

// Below 1 / kSparseBelow bytes a value (half a bit) in a block, the next block
// is coded with Encoder::encode<true>: measured (32-bit words) on 0.3 bits a
// value, 30% faster; on 3.6 and 11.6 bits a value, 10% slower (its
// renormalisation branch mispredicts).
constexpr int64_t kSparseBelow = 16;

int64_t encode_block(Encoder& enc, const Row* rows, const int32_t* idx, const int32_t* sym, int64_t begin, int64_t end,
                     bool sparse) {
  return sparse ? encode_values<true>(enc, rows, idx, sym, begin, end)
                : encode_values<false>(enc, rows, idx, sym, begin, end);
}

// Encodes symbols [begin, end); returns -1, or the position of a symbol with
// an index outside the table or in a bin of zero probability.
int64_t encode_range(const int32_t* sym, const int32_t* idx, int64_t begin, int64_t end, const Table& table,
                     Coded& out) {
  // n regular values add at most 16 bits each, plus under 2^-15 bits each
  // lost to rounding (range >> 16 with range >= 2^32), rounded up to a word:
  // without escapes the buffer never grows
  const int64_t n = end - begin;
  int64_t capacity = 2 * n + (n >> 16) + kWordBytes + kMaxValueBytes + kSlackBytes;
  out.buf.reset(new uint8_t[capacity]);
  Encoder enc(out.buf.get(), capacity);
  const int64_t k = static_cast<int64_t>(table.rows.size());
  bool sparse = false;
  for (int64_t block = begin; block < end; block += kBlock) {
    const int64_t block_end = std::min(end, block + kBlock);
    const int64_t stop = first_bad_index(idx, block, block_end, k);
    const int64_t bytes_before = enc.size();
    for (int64_t i = block; (i = encode_block(enc, table.rows.data(), idx, sym, i, stop, sparse)) < stop;) {
      if (enc.room() >= kMaxValueBytes) return i;  // not stopped for room: zero probability
      grow(enc, out, capacity);
    }
    if (stop < block_end) return stop;
    sparse = (enc.size() - bytes_before) * kSparseBelow < block_end - block;
  }
  enc.finish();
  out.size = enc.trimmed_end();
  return -1;
}

// Decodes symbols [begin, end); returns -1, or the position of an index outside the table.
int64_t decode_range(const uint8_t* data, int64_t size, const int32_t* idx, int64_t begin, int64_t end,
                     const Table& table, int32_t* out) {
  Decoder dec(data, size);
  const int64_t k = static_cast<int64_t>(table.rows.size());
  for (int64_t block = begin; block < end; block += kBlock) {
    const int64_t block_end = std::min(end, block + kBlock);
    const int64_t stop = first_bad_index(idx, block, block_end, k);
    decode_values(dec, table.rows.data(), idx, out, block, stop);
    if (stop < block_end) return stop;
  }
  return -1;
}

// The errors for the position where encode_range or decode_range stopped.
void check_index_at(const char* op, int64_t i, const int32_t* idx, int64_t k) {
  TORCH_CHECK(idx[i] >= 0 && idx[i] < k, op, ": indexes[", i, "] = ", idx[i], " is outside [0, ", k, ")");
}

void fail_at(const char* op, int64_t i, const int32_t* sym, const int32_t* idx, int64_t k) {
  check_index_at(op, i, idx, k);
  TORCH_CHECK(false, op, ": symbols[", i, "] = ", sym[i], " falls in a bin of zero probability of cdfs row ", idx[i]);
}

at::Tensor range_encode(const at::Tensor& symbols, const at::Tensor& indexes, const at::Tensor& cdfs,
                        const at::Tensor& cdf_lengths, const at::Tensor& offsets) {
  const char* op = "range_encode";
  check_1d(symbols, op, "symbols", at::kInt);
  check_1d(indexes, op, "indexes", at::kInt);
  TORCH_CHECK(symbols.size(0) == indexes.size(0), op, ": symbols and indexes differ in length");
  const Table table = check_table(op, cdfs, cdf_lengths, offsets);
  const at::Tensor sym = symbols.contiguous(), idx = indexes.contiguous();
  const int64_t n = sym.size(0);
  Coded coded;
  const int64_t bad = encode_range(sym.data_ptr<int32_t>(), idx.data_ptr<int32_t>(), 0, n, table, coded);
  if (bad >= 0) fail_at(op, bad, sym.data_ptr<int32_t>(), idx.data_ptr<int32_t>(), cdfs.size(0));
  at::Tensor out = at::empty({coded.size}, symbols.options().dtype(at::kByte));
  if (coded.size) std::memcpy(out.data_ptr<uint8_t>(), coded.buf.get(), coded.size);
  return out;
}

at::Tensor range_decode(const at::Tensor& stream, const at::Tensor& indexes, const at::Tensor& cdfs,
                        const at::Tensor& cdf_lengths, const at::Tensor& offsets) {
  const char* op = "range_decode";
  check_1d(stream, op, "stream", at::kByte);
  check_1d(indexes, op, "indexes", at::kInt);
  Table table = check_table(op, cdfs, cdf_lengths, offsets);
  const at::Tensor data = stream.contiguous(), idx = indexes.contiguous();
  const int64_t n = idx.size(0);
  add_luts(table, n);
  at::Tensor out = at::empty({n}, indexes.options());
  const int64_t bad = decode_range(data.data_ptr<uint8_t>(), data.size(0), idx.data_ptr<int32_t>(), 0, n, table,
                                   out.data_ptr<int32_t>());
  if (bad >= 0) check_index_at(op, bad, idx.data_ptr<int32_t>(), cdfs.size(0));
  return out;
}

void put_u32(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint64_t get_u32(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Symbol offsets of the streams from their counts (checked to sum to n).
std::vector<int64_t> stream_starts(const char* op, const int64_t* counts, int64_t s, int64_t n) {
  std::vector<int64_t> starts(s + 1, 0);
  for (int64_t i = 0; i < s; ++i) {
    TORCH_CHECK(counts[i] >= 0 && counts[i] <= 0xFFFFFFFFLL, op, ": symbol_counts[", i, "] = ", counts[i],
                " must be in [0, 2**32)");
    starts[i + 1] = starts[i] + counts[i];
    TORCH_CHECK(starts[i + 1] <= n, op, ": symbol_counts sum past the ", n, " symbols");
  }
  TORCH_CHECK(starts[s] == n, op, ": symbol_counts sum to ", starts[s], ", expected ", n);
  return starts;
}

std::tuple<at::Tensor, at::Tensor> range_encode_batch(const at::Tensor& symbols, const at::Tensor& indexes,
                                                      const at::Tensor& symbol_counts, const at::Tensor& cdfs,
                                                      const at::Tensor& cdf_lengths, const at::Tensor& offsets) {
  const char* op = "range_encode_batch";
  check_1d(symbols, op, "symbols", at::kInt);
  check_1d(indexes, op, "indexes", at::kInt);
  check_1d(symbol_counts, op, "symbol_counts", at::kLong);
  TORCH_CHECK(symbols.size(0) == indexes.size(0), op, ": symbols and indexes differ in length");
  const int64_t s = symbol_counts.size(0);
  TORCH_CHECK(s <= 0xFFFFFFFFLL, op, ": too many streams");
  const Table table = check_table(op, cdfs, cdf_lengths, offsets);
  const at::Tensor sym = symbols.contiguous(), idx = indexes.contiguous(), cnt = symbol_counts.contiguous();
  const int64_t n = sym.size(0);
  const std::vector<int64_t> starts = stream_starts(op, cnt.data_ptr<int64_t>(), s, n);

  std::vector<Coded> streams(s);
  std::vector<int64_t> bad(s, -1);  // errors are raised after the parallel region
  const int32_t* sp = sym.data_ptr<int32_t>();
  const int32_t* ip = idx.data_ptr<int32_t>();
  at::parallel_for(0, s, 1, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) bad[j] = encode_range(sp, ip, starts[j], starts[j + 1], table, streams[j]);
  });
  for (int64_t j = 0; j < s; ++j)
    if (bad[j] >= 0) fail_at(op, bad[j], sp, ip, cdfs.size(0));

  at::Tensor lengths = at::empty({s}, symbol_counts.options());
  int64_t* lp = lengths.data_ptr<int64_t>();
  int64_t total = kFixedHeader + 8 * s;
  for (int64_t j = 0; j < s; ++j) {
    lp[j] = streams[j].size;
    TORCH_CHECK(lp[j] <= 0xFFFFFFFFLL, op, ": stream ", j, " exceeds 2**32 bytes");
    total += lp[j];
  }
  at::Tensor out = at::empty({total}, symbols.options().dtype(at::kByte));
  uint8_t* p = out.data_ptr<uint8_t>();
  std::memcpy(p, kMagic, 4);
  p[4] = kVersion;
  put_u32(p + 5, static_cast<uint64_t>(s));
  for (int64_t j = 0; j < s; ++j) {
    put_u32(p + kFixedHeader + 4 * j, static_cast<uint64_t>(starts[j + 1] - starts[j]));
    put_u32(p + kFixedHeader + 4 * (s + j), static_cast<uint64_t>(lp[j]));
  }
  int64_t pos = kFixedHeader + 8 * s;
  for (int64_t j = 0; j < s; ++j) {
    if (lp[j]) std::memcpy(p + pos, streams[j].buf.get(), lp[j]);
    pos += lp[j];
  }
  return {out, lengths};
}

at::Tensor range_decode_batch(const at::Tensor& stream, const at::Tensor& indexes, const at::Tensor& cdfs,
                              const at::Tensor& cdf_lengths, const at::Tensor& offsets) {
  const char* op = "range_decode_batch";
  check_1d(stream, op, "stream", at::kByte);
  check_1d(indexes, op, "indexes", at::kInt);
  Table table = check_table(op, cdfs, cdf_lengths, offsets);
  const at::Tensor data = stream.contiguous(), idx = indexes.contiguous();
  const int64_t n = idx.size(0), size = data.size(0);
  const uint8_t* p = data.data_ptr<uint8_t>();
  TORCH_CHECK(size >= kFixedHeader && std::memcmp(p, kMagic, 4) == 0, op,
              ": stream is not a range_encode_batch container (bad magic)");
  TORCH_CHECK(p[4] == kVersion, op, ": unsupported container version ", int(p[4]));
  const uint64_t s64 = get_u32(p + 5);
  TORCH_CHECK(s64 <= static_cast<uint64_t>((size - kFixedHeader) / 8), op, ": truncated container header");
  const int64_t s = static_cast<int64_t>(s64);
  std::vector<int64_t> counts(s), byte_starts(s + 1, kFixedHeader + 8 * s);
  for (int64_t j = 0; j < s; ++j) {
    counts[j] = static_cast<int64_t>(get_u32(p + kFixedHeader + 4 * j));
    byte_starts[j + 1] = byte_starts[j] + static_cast<int64_t>(get_u32(p + kFixedHeader + 4 * (s + j)));
    TORCH_CHECK(byte_starts[j + 1] <= size, op, ": stream ", j, " runs past the end of the container");
  }
  const std::vector<int64_t> starts = stream_starts(op, counts.data(), s, n);
  add_luts(table, n);
  at::Tensor out = at::empty({n}, indexes.options());
  int32_t* op_out = out.data_ptr<int32_t>();
  const int32_t* ip = idx.data_ptr<int32_t>();
  std::vector<int64_t> bad(s, -1);  // errors are raised after the parallel region
  at::parallel_for(0, s, 1, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j)
      bad[j] = decode_range(p + byte_starts[j], byte_starts[j + 1] - byte_starts[j], ip, starts[j], starts[j + 1],
                            table, op_out);
  });
  for (int64_t j = 0; j < s; ++j)
    if (bad[j] >= 0) check_index_at(op, bad[j], ip, cdfs.size(0));
  return out;
}

}  // namespace
}  // namespace entropy
}  // namespace stegafast

TORCH_LIBRARY_IMPL(stegafast, CPU, m) {
  m.impl("range_encode", &stegafast::entropy::range_encode);
  m.impl("range_decode", &stegafast::entropy::range_decode);
  m.impl("range_encode_batch", &stegafast::entropy::range_encode_batch);
  m.impl("range_decode_batch", &stegafast::entropy::range_decode_batch);
}
