// CPU operators of the range coder (entropy.h holds the coder): argument checks,
// the batch container, and streams coded in parallel with at::parallel_for.
//
// Batch container (range_encode_batch / range_decode_batch), all integers
// little-endian:
//   bytes 0..3   magic "SFRC"
//   byte  4      format version (1)
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

#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "entropy.h"

namespace stegafast {
namespace entropy {
namespace {

constexpr uint8_t kMagic[4] = {'S', 'F', 'R', 'C'};
constexpr uint8_t kVersion = 1;
constexpr int64_t kFixedHeader = 9;

void check_1d(const at::Tensor& t, const char* op, const char* name, at::ScalarType dtype) {
  TORCH_CHECK(t.device().is_cpu(), op, ": ", name, " must be a CPU tensor");
  TORCH_CHECK(t.dim() == 1, op, ": ", name, " must be 1-D, got ", t.dim(), " dims");
  TORCH_CHECK(t.scalar_type() == dtype, op, ": ", name, " must be ", dtype, ", got ", t.scalar_type());
}

// The validated CDF table: rows as (pointer, length, offset).
struct Table {
  at::Tensor cdfs;  // keeps the contiguous copy alive
  std::vector<Row> rows;
};

Table check_table(const char* op, const at::Tensor& cdfs, const at::Tensor& lengths,
                  const at::Tensor& offsets) {
  TORCH_CHECK(cdfs.device().is_cpu(), op, ": cdfs must be a CPU tensor");
  TORCH_CHECK(cdfs.dim() == 2, op, ": cdfs must be 2-D (K, Lmax), got ", cdfs.dim(), " dims");
  TORCH_CHECK(cdfs.scalar_type() == at::kInt, op, ": cdfs must be int32, got ", cdfs.scalar_type());
  check_1d(lengths, op, "cdf_lengths", at::kInt);
  check_1d(offsets, op, "offsets", at::kInt);
  const int64_t k = cdfs.size(0), lmax = cdfs.size(1);
  TORCH_CHECK(k >= 1, op, ": cdfs needs at least one row");
  TORCH_CHECK(lengths.size(0) == k && offsets.size(0) == k, op, ": cdf_lengths and offsets need ", k,
              " entries (one per cdfs row), got ", lengths.size(0), " and ", offsets.size(0));
  Table table{cdfs.contiguous(), {}};
  const at::Tensor len_c = lengths.contiguous(), off_c = offsets.contiguous();
  const int32_t* base = table.cdfs.data_ptr<int32_t>();
  const int32_t* len = len_c.data_ptr<int32_t>();
  const int32_t* off = off_c.data_ptr<int32_t>();
  table.rows.reserve(k);
  for (int64_t r = 0; r < k; ++r) {
    TORCH_CHECK(len[r] >= 2 && len[r] <= lmax, op, ": cdf_lengths[", r, "] = ", len[r],
                " must be in [2, ", lmax, "]");
    const int32_t* cdf = base + r * lmax;
    TORCH_CHECK(cdf[0] == 0 && cdf[len[r] - 1] == static_cast<int32_t>(kTotal), op, ": cdfs row ", r,
                " must start at 0 and end at 65536");
    for (int32_t i = 1; i < len[r]; ++i)
      TORCH_CHECK(cdf[i] >= cdf[i - 1], op, ": cdfs row ", r, " is not non-decreasing at entry ", i);
    table.rows.push_back(Row{cdf, len[r], off[r]});
  }
  return table;
}

void check_indexes(const char* op, const int32_t* idx, int64_t n, int64_t k) {
  for (int64_t i = 0; i < n; ++i)
    TORCH_CHECK(idx[i] >= 0 && idx[i] < k, op, ": indexes[", i, "] = ", idx[i], " is outside [0, ", k, ")");
}

// Encodes symbols [begin, end); returns the first uncodable position, or -1.
int64_t encode_range(const int32_t* sym, const int32_t* idx, int64_t begin, int64_t end,
                     const Table& table, std::vector<uint8_t>& out) {
  Encoder enc(out);
  for (int64_t i = begin; i < end; ++i)
    if (!encode_value(enc, table.rows[idx[i]], sym[i])) return i;
  enc.finish();
  return -1;
}

void decode_range(const uint8_t* data, int64_t size, const int32_t* idx, int64_t begin, int64_t end,
                  const Table& table, int32_t* out) {
  Decoder dec(data, size);
  for (int64_t i = begin; i < end; ++i) out[i] = decode_value(dec, table.rows[idx[i]]);
}

void fail_zero_probability(const char* op, int64_t i, const int32_t* sym, const int32_t* idx) {
  TORCH_CHECK(false, op, ": symbols[", i, "] = ", sym[i], " falls in a bin of zero probability of cdfs row ",
              idx[i]);
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
  check_indexes(op, idx.data_ptr<int32_t>(), n, cdfs.size(0));
  std::vector<uint8_t> bytes;
  const int64_t bad = encode_range(sym.data_ptr<int32_t>(), idx.data_ptr<int32_t>(), 0, n, table, bytes);
  if (bad >= 0) fail_zero_probability(op, bad, sym.data_ptr<int32_t>(), idx.data_ptr<int32_t>());
  at::Tensor out = at::empty({static_cast<int64_t>(bytes.size())}, symbols.options().dtype(at::kByte));
  if (!bytes.empty()) std::memcpy(out.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  return out;
}

at::Tensor range_decode(const at::Tensor& stream, const at::Tensor& indexes, const at::Tensor& cdfs,
                        const at::Tensor& cdf_lengths, const at::Tensor& offsets) {
  const char* op = "range_decode";
  check_1d(stream, op, "stream", at::kByte);
  check_1d(indexes, op, "indexes", at::kInt);
  const Table table = check_table(op, cdfs, cdf_lengths, offsets);
  const at::Tensor data = stream.contiguous(), idx = indexes.contiguous();
  const int64_t n = idx.size(0);
  check_indexes(op, idx.data_ptr<int32_t>(), n, cdfs.size(0));
  at::Tensor out = at::empty({n}, indexes.options());
  decode_range(data.data_ptr<uint8_t>(), data.size(0), idx.data_ptr<int32_t>(), 0, n, table,
               out.data_ptr<int32_t>());
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
  check_indexes(op, idx.data_ptr<int32_t>(), n, cdfs.size(0));
  const std::vector<int64_t> starts = stream_starts(op, cnt.data_ptr<int64_t>(), s, n);

  std::vector<std::vector<uint8_t>> streams(s);
  std::vector<int64_t> bad(s, -1);  // errors are raised after the parallel region
  const int32_t* sp = sym.data_ptr<int32_t>();
  const int32_t* ip = idx.data_ptr<int32_t>();
  at::parallel_for(0, s, 1, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) bad[j] = encode_range(sp, ip, starts[j], starts[j + 1], table, streams[j]);
  });
  for (int64_t j = 0; j < s; ++j)
    if (bad[j] >= 0) fail_zero_probability(op, bad[j], sp, ip);

  at::Tensor lengths = at::empty({s}, symbol_counts.options());
  int64_t* lp = lengths.data_ptr<int64_t>();
  int64_t total = kFixedHeader + 8 * s;
  for (int64_t j = 0; j < s; ++j) {
    lp[j] = static_cast<int64_t>(streams[j].size());
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
    if (lp[j]) std::memcpy(p + pos, streams[j].data(), lp[j]);
    pos += lp[j];
  }
  return {out, lengths};
}

at::Tensor range_decode_batch(const at::Tensor& stream, const at::Tensor& indexes, const at::Tensor& cdfs,
                              const at::Tensor& cdf_lengths, const at::Tensor& offsets) {
  const char* op = "range_decode_batch";
  check_1d(stream, op, "stream", at::kByte);
  check_1d(indexes, op, "indexes", at::kInt);
  const Table table = check_table(op, cdfs, cdf_lengths, offsets);
  const at::Tensor data = stream.contiguous(), idx = indexes.contiguous();
  const int64_t n = idx.size(0), size = data.size(0);
  check_indexes(op, idx.data_ptr<int32_t>(), n, cdfs.size(0));
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
  at::Tensor out = at::empty({n}, indexes.options());
  int32_t* op_out = out.data_ptr<int32_t>();
  const int32_t* ip = idx.data_ptr<int32_t>();
  at::parallel_for(0, s, 1, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j)
      decode_range(p + byte_starts[j], byte_starts[j + 1] - byte_starts[j], ip, starts[j], starts[j + 1], table,
                   op_out);
  });
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
