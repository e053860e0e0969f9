#pragma once
// The range coder of stegafast.ops.range_encode / range_decode: a range coder
// with a 64-bit state that renormalises in 32-bit words, over 16-bit quantised
// CDFs. stegafast/reference/entropy.py is the specification (byte-identical
// streams).
//
// Stream format (one stream, container version 2): the coded value as
// big-endian 32-bit words, the last two holding the final 64-bit state, without
// trailing zero bytes (the decoder reads bytes past the end as zeros), so a
// stream's length is any number of bytes.
//
// Coding an interval [start, start + freq) of a total 2^bits (bits <= 16):
//   r = range >> bits;  low += r * start;  range = r * freq;
//   then, if range < 2^32, the top word of low leaves the state (one word at
//   most per step: range >= 2^16 after a step, so >= 2^48 after the shift).
// A carry out of the 64-bit low is added into the bytes already written; it
// never runs past the stream's first byte (every interval lies inside the
// first one, [0, 2^64 - 1), so the coded value stays below 1).
// Words rather than bytes: a renormalisation is due about once per 32 bits
// coded, not once per 8, and takes no leading-zero count (at most one word).
// The coder state is two integers and a write position, every step is
// branch-free arithmetic (a variant for low-entropy data branches past the
// renormalisations that are not due), the output is one caller-provided buffer,
// so a CUDA coder (one thread per stream, streams laid out as in the batch
// container of entropy_cpu.cpp) can include this header unchanged. Decoding
// divides once per value and finds the bin through a small per-row lookup
// table (see Row) or a branch-free binary search.
#include <cstdint>
#include <cstring>

#include "../common/hostdevice.h"

namespace stegafast {
namespace entropy {

constexpr int kPrecision = 16;  // CDF totals are 1 << 16
constexpr uint32_t kTotal = 1u << kPrecision;
constexpr int kWordBits = 32;  // renormalisation unit
constexpr int kWordBytes = kWordBits / 8;
constexpr uint64_t kRenormBelow = uint64_t{1} << kWordBits;  // range is kept >= this
constexpr int kLengthBits = 6;                               // bit length of an escape payload
constexpr int kChunkBits = 16;                               // bypass bits coded per step
// Bytes one value can add to a stream: a word per coding step, and a value
// codes its bin, and for an escape the payload length and up to 3 chunks of a
// payload of at most 33 bits.
constexpr int64_t kMaxValueBytes = kWordBytes * (1 + 1 + 3);
// The encoder stores a word per step, due or not, and finish() the 8-byte
// state: a buffer keeps this much slack.
constexpr int64_t kSlackBytes = 8;
// A decoder lookup-table slice holding at most this many bins is scanned, not halved.
constexpr uint32_t kScanBins = 8;

// An escaped value's payload: a zig-zag-like map of the out-of-range offset.
SF_HD uint64_t escape_payload(int64_t s, int64_t max_value) {
  return s < 0 ? static_cast<uint64_t>(-2 * s - 1) : static_cast<uint64_t>(2 * (s - max_value));
}

SF_HD int64_t escape_value(uint64_t raw, int64_t max_value) {
  // unsigned arithmetic: a corrupted payload wraps instead of overflowing
  if (raw & 1) return static_cast<int64_t>(uint64_t{0} - ((raw >> 1) + 1));
  return static_cast<int64_t>(static_cast<uint64_t>(max_value) + (raw >> 1));
}

SF_HD int leading_zeros(uint64_t v) {  // v > 0
#if defined(__CUDA_ARCH__)
  return __clzll(static_cast<long long>(v));
#else
  return __builtin_clzll(v);
#endif
}

SF_HD int bit_length(uint64_t v) { return v ? 64 - leading_zeros(v) : 0; }

// Big-endian n <= 8 bytes at p into the low end of the result.
SF_HD uint64_t load_be(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

SF_HD void store_be32(uint8_t* p, uint32_t v) {
#if defined(__CUDA_ARCH__)
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
#else
  v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
#endif
}

SF_HD uint32_t load_be32(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint32_t>(load_be(p, 4));
#else
  uint32_t v;
  std::memcpy(&v, p, 4);
  return __builtin_bswap32(v);
#endif
}

// Writes into buf[0, capacity): the caller keeps room() >= kMaxValueBytes
// before each value (growing the buffer with rebase() if it must).
class Encoder {
 public:
  SF_HD Encoder(uint8_t* buf, int64_t capacity) : buf_(buf), capacity_(capacity) {}

  SF_HD int64_t room() const { return capacity_ - kSlackBytes - pos_; }
  SF_HD int64_t size() const { return pos_; }
  // Continues in a larger copy of the buffer (its first size() bytes).
  SF_HD void rebase(uint8_t* buf, int64_t capacity) {
    buf_ = buf;
    capacity_ = capacity;
  }

  // Codes the interval [start, start + freq) of a total of 1 << bits (bits <= 16).
  // kSparse: a branch skips the renormalisation when none is due, faster where
  // few values need one (low-entropy data: the branch is then predictable).
  template <bool kSparse = false>
  SF_HD void encode(uint32_t start, uint32_t freq, int bits) {
    const uint64_t r = range_ >> bits;
    const uint64_t low = low_ + r * start;
    if (low < low_) carry();  // wrapped: the sum has a 65th bit
    low_ = low;
    range_ = r * freq;
    if (kSparse && range_ >= kRenormBelow) return;
    const int n = range_ < kRenormBelow;                                // words to shift out: 0 or 1
    store_be32(buf_ + pos_, static_cast<uint32_t>(low_ >> kWordBits));  // kept only when n = 1
    pos_ += kWordBytes * n;
    low_ <<= kWordBits * n;
    range_ <<= kWordBits * n;
  }

  // Moves low to the value in [low, low + range) with the most trailing zero
  // bits (so that the most bytes trim away) and writes it; the stream is then
  // buf[0, trimmed_end()).
  SF_HD void finish() {
    for (int b = 64; b >= 0; --b) {  // b = 0 always succeeds (range >= 1)
      const uint64_t mask = b == 64 ? ~uint64_t{0} : (uint64_t{1} << b) - 1;
      const uint64_t up = (uint64_t{0} - low_) & mask;  // low + up: the next multiple of 2^b
      if (up < range_) {
        const uint64_t low = low_ + up;
        if (low < low_) carry();
        low_ = low;
        break;
      }
    }
    store_be32(buf_ + pos_, static_cast<uint32_t>(low_ >> kWordBits));
    store_be32(buf_ + pos_ + kWordBytes, static_cast<uint32_t>(low_));
    pos_ += 2 * kWordBytes;
  }

  // The end of the stream without its trailing zero bytes (the decoder supplies them).
  SF_HD int64_t trimmed_end() const {
    int64_t end = pos_;
    while (end > 0 && buf_[end - 1] == 0) --end;
    return end;
  }

 private:
  // Adds the bit that left low into the bytes written: 0xFF bytes turn to 0 and
  // pass it on. Rare (a carry needs low near 2^64); it stops inside the stream
  // (see the top of this file).
  SF_HD void carry() {
    int64_t i = pos_ - 1;
    while (++buf_[i] == 0) --i;
  }

  uint8_t* buf_;
  int64_t capacity_;
  int64_t pos_ = 0;
  uint64_t low_ = 0;
  uint64_t range_ = ~uint64_t{0};
};

class Decoder {
 public:
  // Every read is bounds-checked: bytes past the end read as zero, so a
  // truncated or corrupted stream decodes to garbage but never reads outside.
  SF_HD Decoder(const uint8_t* data, int64_t size) : data_(data), size_(size) {
    code_ = next_word() << kWordBits;
    pos_ += kWordBytes;
    code_ |= next_word();
    pos_ += kWordBytes;
  }

  // The scaled target in [0, 1 << bits) and the step it was scaled by.
  SF_HD uint32_t target(int bits) {
    step_ = range_ >> bits;
    const uint64_t t = code_ / step_;
    const uint64_t top = (uint64_t{1} << bits) - 1;
    return static_cast<uint32_t>(t > top ? top : t);  // only a corrupted stream exceeds top
  }

  // Consumes the interval found for the last target().
  SF_HD void consume(uint32_t start, uint32_t freq) {
    code_ -= step_ * start;
    range_ = step_ * freq;
    const int n = range_ < kRenormBelow;  // words to shift in: 0 or 1
    const uint64_t word = next_word();
    pos_ += kWordBytes * n;
    range_ <<= kWordBits * n;
    // n = 0 takes none of the word (a shift by 32 of a 32-bit value)
    code_ = (code_ << (kWordBits * n)) | (word >> (kWordBits - kWordBits * n));
  }

 private:
  // The word at the read position; zeros for bytes past the end of the stream.
  SF_HD uint64_t next_word() const {
    if (pos_ + kWordBytes <= size_) return load_be32(data_ + pos_);
    if (pos_ >= size_) return 0;
    const int left = static_cast<int>(size_ - pos_);
    return load_be(data_ + pos_, left) << (8 * (kWordBytes - left));
  }

  const uint8_t* data_;
  int64_t size_;
  int64_t pos_ = 0;
  uint64_t code_ = 0;
  uint64_t range_ = ~uint64_t{0};
  uint64_t step_ = 1;
};

// One CDF table row, already validated (cdf[0] = 0, cdf[length-1] = 1 << 16,
// non-decreasing, length >= 2). `lut`, when set, speeds up decoding: it has
// (1 << lut_bits) + 1 entries, entry j < 1 << lut_bits the bin holding the value
// j << (16 - lut_bits), so that a target in slice j of [0, 1 << 16) lies in one
// of the bins lut[j] .. lut[j + 1] (the last entry is the escape bin, length - 2).
struct Row {
  const int32_t* cdf;
  const uint16_t* lut;
  int32_t length;
  int32_t offset;
  int32_t lut_shift;  // 16 - lut_bits
};

// Codes a value's escape payload after its escape bin.
SF_HD void encode_payload(Encoder& enc, uint64_t raw) {
  const int n = bit_length(raw);
  enc.encode(static_cast<uint32_t>(n), 1, kLengthBits);
  for (int i = 0; i < n; i += kChunkBits) {
    const int bits = n - i < kChunkBits ? n - i : kChunkBits;
    enc.encode(static_cast<uint32_t>((raw >> i) & ((uint64_t{1} << bits) - 1)), 1, bits);
  }
}

// Codes one value; returns false (coding nothing) when its bin has zero probability.
template <bool kSparse>
SF_HD bool encode_value(Encoder& enc, const Row& row, int32_t value) {
  const int64_t max_value = row.length - 2;  // the escape bin
  const int64_t s = static_cast<int64_t>(value) - row.offset;
  const bool escape = static_cast<uint64_t>(s) >= static_cast<uint64_t>(max_value);  // s < 0 or s >= max
  const int64_t bin = escape ? max_value : s;
  const uint32_t start = static_cast<uint32_t>(row.cdf[bin]);
  const uint32_t freq = static_cast<uint32_t>(row.cdf[bin + 1]) - start;
  if (freq == 0) return false;
  enc.template encode<kSparse>(start, freq, kPrecision);
  if (__builtin_expect(escape, 0)) encode_payload(enc, escape_payload(s, max_value));
  return true;
}

// Codes values[begin, end), value i with rows[idx[i]] (indexes already
// checked), while the buffer has room. Returns where it stopped: end, or a
// value that needs a larger buffer (enc.room() < kMaxValueBytes), or one whose
// bin has zero probability (coding nothing of it).
template <bool kSparse>
SF_HD int64_t encode_values(Encoder& enc, const Row* rows, const int32_t* idx, const int32_t* values, int64_t begin,
                            int64_t end) {
  // A local copy: the buffer's bytes cannot alias it, so its state stays in
  // registers instead of being reloaded after every byte store.
  Encoder local = enc;
  int64_t i = begin;
  // runs of values that surely fit, so that the inner loop checks no room
  for (int64_t fit = local.room() / kMaxValueBytes; i < end && fit > 0; fit = local.room() / kMaxValueBytes) {
    const int64_t stop = end - i < fit ? end : i + fit;
    for (; i < stop; ++i)
      if (!encode_value<kSparse>(local, rows[idx[i]], values[i])) {
        enc = local;
        return i;
      }
  }
  enc = local;
  return i;
}

// The bin s with cdf[s] <= t < cdf[s + 1] (it has freq > 0; t < 1 << 16).
SF_HD int32_t find_bin(const Row& row, uint32_t t) {
  const int32_t* base = row.cdf;  // branch-free binary search: the answer stays in [base, base + n)
  uint32_t n = static_cast<uint32_t>(row.length - 1);
  if (row.lut) {  // only the bins of t's slice of [0, 1 << 16) remain
    const uint32_t j = t >> row.lut_shift;
    base += row.lut[j];
    n = row.lut[j + 1] - row.lut[j] + 1;
    if (n <= kScanBins) {  // a few bins: stepping over them beats halving
      int32_t s = row.lut[j];
      while (static_cast<uint32_t>(row.cdf[s + 1]) <= t) ++s;
      return s;
    }
  }
  while (n > 1) {
    const uint32_t half = n >> 1;
    base = static_cast<uint32_t>(base[half]) <= t ? base + half : base;
    n -= half;
  }
  return static_cast<int32_t>(base - row.cdf);
}

// Fills a row's lookup table ((1 << lut_bits) + 1 entries, see Row); needs length <= 65537.
SF_HD void build_lut(const int32_t* cdf, int32_t length, int lut_bits, uint16_t* lut) {
  const int shift = kPrecision - lut_bits;
  int32_t s = 0;
  for (uint32_t j = 0; j < (1u << lut_bits); ++j) {
    const uint32_t v = j << shift;
    while (s < length - 2 && static_cast<uint32_t>(cdf[s + 1]) <= v) ++s;
    lut[j] = static_cast<uint16_t>(s);
  }
  lut[1u << lut_bits] = static_cast<uint16_t>(length - 2);  // the last slice ends at the last bin
}

SF_HD uint64_t decode_payload(Decoder& dec) {
  const int n = static_cast<int>(dec.target(kLengthBits));
  dec.consume(static_cast<uint32_t>(n), 1);
  uint64_t raw = 0;
  for (int i = 0; i < n; i += kChunkBits) {
    const int bits = n - i < kChunkBits ? n - i : kChunkBits;
    const uint32_t chunk = dec.target(bits);
    dec.consume(chunk, 1);
    raw |= static_cast<uint64_t>(chunk) << i;
  }
  return raw;
}

SF_HD int32_t decode_value(Decoder& dec, const Row& row) {
  const int64_t max_value = row.length - 2;
  const int32_t s = find_bin(row, dec.target(kPrecision));
  const uint32_t start = static_cast<uint32_t>(row.cdf[s]);
  dec.consume(start, static_cast<uint32_t>(row.cdf[s + 1]) - start);
  const int64_t v = __builtin_expect(s == max_value, 0) ? escape_value(decode_payload(dec), max_value) : s;
  // wrap to int32 as unsigned: defined behaviour for corrupted payloads
  const uint64_t sum = static_cast<uint64_t>(v) + static_cast<uint64_t>(static_cast<int64_t>(row.offset));
  return static_cast<int32_t>(static_cast<uint32_t>(sum));
}

// Decodes values[begin, end), value i with rows[idx[i]] (indexes already checked).
SF_HD void decode_values(Decoder& dec, const Row* rows, const int32_t* idx, int32_t* values, int64_t begin,
                         int64_t end) {
  Decoder local = dec;  // kept in registers, as in encode_values
  for (int64_t i = begin; i < end; ++i) values[i] = decode_value(local, rows[idx[i]]);
  dec = local;
}

}  // namespace entropy
}  // namespace stegafast
