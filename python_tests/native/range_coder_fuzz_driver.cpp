// A stand-alone fuzz driver for the range coder in csrc/entropy/entropy.h (no
// torch): random tables (zero-width bins, escapes, every decoder search path),
// round trips through an encoder whose buffer starts tiny and grows (both of its
// renormalisations, which must write the same bytes), then corrupted,
// truncated and random streams decoded from buffers of exactly their size.
// Built under AddressSanitizer + UBSan by python_tests/test_ops_entropy_asan.py,
// so any read or write outside a buffer fails the run.
//
//   g++ -std=c++20 -O1 -g -fsanitize=address,undefined -Icsrc python_tests/native/range_coder_fuzz_driver.cpp
//   ./a.out [iterations] [seed]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "entropy/entropy.h"

using namespace stegafast::entropy;

namespace {

struct Rng {
  uint64_t s;
  uint64_t next() {  // xorshift64*
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
  }
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
};

// One row in an array of exactly `length` entries, and its lookup table in one
// of exactly (1 << bits) + 1 entries when bits > 0.
struct OwnedRow {
  std::unique_ptr<int32_t[]> cdf;
  std::unique_ptr<uint16_t[]> lut;
  Row row;
};

OwnedRow random_row(Rng& rng) {
  const int32_t length =
      rng.below(8) == 0 ? 2 + static_cast<int32_t>(rng.below(5000)) : 2 + static_cast<int32_t>(rng.below(300));
  OwnedRow r{std::unique_ptr<int32_t[]>(new int32_t[length]), nullptr, {}};
  std::vector<uint64_t> weight(length - 1);
  uint64_t sum = 0;
  for (auto& w : weight) sum += (w = rng.below(3) == 0 ? 0 : 1 + rng.below(1000));  // some zero-width bins
  if (sum == 0) sum = weight[rng.below(length - 1)] = 1;
  uint64_t acc = 0;
  r.cdf[0] = 0;
  for (int32_t i = 1; i < length; ++i) {
    acc += weight[i - 1];
    r.cdf[i] = static_cast<int32_t>(acc * kTotal / sum);  // non-decreasing, ends at 65536
  }
  r.row = Row{r.cdf.get(), nullptr, length, static_cast<int32_t>(rng.next()), 0};
  const int bits = rng.below(3) == 0 ? 0 : 4 + static_cast<int>(rng.below(9));
  if (bits > 0 && length <= 65537) {
    r.lut.reset(new uint16_t[(1u << bits) + 1]);
    build_lut(r.cdf.get(), length, bits, r.lut.get());
    r.row.lut = r.lut.get();
    r.row.lut_shift = kPrecision - bits;
  }
  return r;
}

// A value whose bin has non-zero probability: a regular bin, or an escape.
bool random_value(Rng& rng, const Row& row, int32_t* value) {
  const int32_t escape = row.length - 2;
  for (int attempt = 0; attempt < 64; ++attempt) {
    const int32_t bin = static_cast<int32_t>(rng.below(row.length - 1));
    if (row.cdf[bin + 1] == row.cdf[bin]) continue;
    if (bin < escape) {
      *value = static_cast<int32_t>(static_cast<uint32_t>(bin) + static_cast<uint32_t>(row.offset));
      return true;
    }
    for (;;) {  // any int32 outside [offset, offset + escape)
      const int32_t v = static_cast<int32_t>(rng.next());
      const int64_t s = static_cast<int64_t>(v) - row.offset;
      if (s < 0 || s >= escape) {
        *value = v;
        return true;
      }
    }
  }
  return false;
}

// Encodes like the CPU operator, from a buffer with room for one value only.
std::vector<uint8_t> encode(const std::vector<int32_t>& values, const std::vector<int32_t>& idx,
                            const std::vector<Row>& rows, bool sparse) {
  int64_t capacity = kMaxValueBytes + kSlackBytes;
  std::unique_ptr<uint8_t[]> buf(new uint8_t[capacity]);
  Encoder enc(buf.get(), capacity);
  const int64_t n = static_cast<int64_t>(values.size());
  for (int64_t i = 0; (i = sparse ? encode_values<true>(enc, rows.data(), idx.data(), values.data(), i, n)
                                  : encode_values<false>(enc, rows.data(), idx.data(), values.data(), i, n)) < n;) {
    if (enc.room() >= kMaxValueBytes) std::abort();  // random_value picks codable values
    capacity *= 2;
    std::unique_ptr<uint8_t[]> larger(new uint8_t[capacity]);
    std::memcpy(larger.get(), buf.get(), static_cast<size_t>(enc.size()));
    buf = std::move(larger);
    enc.rebase(buf.get(), capacity);
  }
  enc.finish();
  return std::vector<uint8_t>(buf.get(), buf.get() + enc.trimmed_end());
}

// Decodes from a heap copy of exactly the stream's size.
std::vector<int32_t> decode(const uint8_t* data, size_t size, const std::vector<int32_t>& idx,
                            const std::vector<Row>& rows) {
  std::unique_ptr<uint8_t[]> exact(new uint8_t[size ? size : 1]);
  if (size) std::memcpy(exact.get(), data, size);
  Decoder dec(exact.get(), static_cast<int64_t>(size));
  const int64_t n = static_cast<int64_t>(idx.size());
  std::vector<int32_t> out(n);
  decode_values(dec, rows.data(), idx.data(), out.data(), 0, n);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const long iterations = argc > 1 ? std::atol(argv[1]) : 300;
  Rng rng{argc > 2 ? std::strtoull(argv[2], nullptr, 10) | 1 : 0x9E3779B97F4A7C15ULL};
  long corrupted = 0;
  for (long it = 0; it < iterations; ++it) {
    std::vector<OwnedRow> table;
    std::vector<Row> rows;
    for (int64_t k = 1 + rng.below(5); k > 0; --k) {
      table.push_back(random_row(rng));
      rows.push_back(table.back().row);
    }
    const int64_t n = rng.below(4) == 0 ? rng.below(4) : rng.below(3000);
    std::vector<int32_t> values, idx;
    for (int64_t i = 0; i < n; ++i) {
      const int32_t k = static_cast<int32_t>(rng.below(static_cast<int64_t>(rows.size())));
      int32_t v;
      if (!random_value(rng, rows[k], &v)) continue;
      values.push_back(v);
      idx.push_back(k);
    }
    const std::vector<uint8_t> stream = encode(values, idx, rows, false);
    if (encode(values, idx, rows, true) != stream) {  // both renormalisations write the same bytes
      std::printf("sparse and dense encodings differ at iteration %ld\n", it);
      return 1;
    }
    if (decode(stream.data(), stream.size(), idx, rows) != values) {
      std::printf("round trip failed at iteration %ld\n", it);
      return 1;
    }
    for (int c = 0; c < 20; ++c, ++corrupted) {
      std::vector<uint8_t> bad = stream;
      switch (c % 4) {
        case 0:  // truncated
          bad.resize(bad.empty() ? 0 : rng.below(static_cast<int64_t>(bad.size())));
          break;
        case 1:  // flipped bytes
          for (int f = 0; f < 3 && !bad.empty(); ++f) bad[rng.below(bad.size())] ^= 1 + rng.below(255);
          break;
        case 2:  // random bytes of any length
          bad.resize(rng.below(64));
          for (auto& b : bad) b = static_cast<uint8_t>(rng.next());
          break;
        default:  // all 0xFF: the largest code values
          bad.assign(1 + rng.below(40), 0xFF);
      }
      decode(bad.data(), bad.size(), idx, rows);
    }
  }
  std::printf("ok: %ld round trips, %ld corrupted streams decoded\n", iterations, corrupted);
  return 0;
}
