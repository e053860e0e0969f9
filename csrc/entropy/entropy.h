#pragma once
// The range coder of stegafast.ops.range_encode / range_decode: an LZMA-style
// range coder widened to a 56-bit window, over 16-bit quantised CDFs.
// stegafast/reference/entropy.py is the specification (byte-identical streams).
//
// Stream format (one stream): big-endian bytes of the coded value, without the
// coder's always-zero first byte and without trailing zero bytes (the decoder
// reads bytes past the end as zeros). The coder state is plain integers and
// every step is branch-light arithmetic, so a CUDA coder (one thread or warp
// per stream) can include this header unchanged later.
#include <cstdint>
#include <vector>

namespace stegafast {
namespace entropy {

constexpr int kPrecision = 16;                      // CDF totals are 1 << 16
constexpr uint32_t kTotal = 1u << kPrecision;
constexpr int kWindowBits = 56;                     // low / range / code width
constexpr uint64_t kWindowMask = (uint64_t{1} << kWindowBits) - 1;
constexpr uint64_t kRenormBelow = uint64_t{1} << (kWindowBits - 8);
constexpr uint64_t kTopByte = uint64_t{0xFF} << (kWindowBits - 8);
constexpr int kLengthBits = 6;                      // bit length of an escape payload
constexpr int kChunkBits = 16;                      // bypass bits coded per step

// An escaped value's payload: a zig-zag-like map of the out-of-range offset.
inline uint64_t escape_payload(int64_t s, int64_t max_value) {
  return s < 0 ? static_cast<uint64_t>(-2 * s - 1) : static_cast<uint64_t>(2 * (s - max_value));
}

inline int64_t escape_value(uint64_t raw, int64_t max_value) {
  // unsigned arithmetic: a corrupted payload wraps instead of overflowing
  if (raw & 1) return static_cast<int64_t>(uint64_t{0} - ((raw >> 1) + 1));
  return static_cast<int64_t>(static_cast<uint64_t>(max_value) + (raw >> 1));
}

inline int bit_length(uint64_t v) {
  int n = 0;
  while (v) {
    ++n;
    v >>= 1;
  }
  return n;
}

class Encoder {
 public:
  explicit Encoder(std::vector<uint8_t>& out) : out_(out) {}

  // Codes the interval [start, start + freq) of a total of 1 << bits.
  void encode(uint32_t start, uint32_t freq, int bits) {
    const uint64_t r = range_ >> bits;
    low_ += r * start;
    range_ = r * freq;
    while (range_ < kRenormBelow) {
      range_ <<= 8;
      shift_low();
    }
  }

  // Picks the value in [low, low + range) with the most trailing zero bits,
  // emits it and trims the zero bytes the decoder supplies by itself.
  void finish() {
    // low + range < 1 << 57 (nested intervals), so v carries at most one bit
    for (int b = kWindowBits; b >= 0; --b) {
      const uint64_t mask = (uint64_t{1} << b) - 1;
      const uint64_t v = (low_ + mask) & ~mask;
      if (v >= low_ && v - low_ < range_) {
        low_ = v;
        break;
      }
    }
    for (int i = 0; i < kWindowBits / 8 + 1; ++i) shift_low();
    out_.erase(out_.begin());  // the first byte is always 0: the value is below 1 << 56
    while (!out_.empty() && out_.back() == 0) out_.pop_back();
  }

 private:
  // Carry propagation as in LZMA: a byte is held back (cache_) while later
  // bytes of 0xFF may still turn into a carry into it.
  void shift_low() {
    if (low_ < kTopByte || low_ > kWindowMask) {
      const uint8_t carry = static_cast<uint8_t>(low_ >> kWindowBits);
      out_.push_back(static_cast<uint8_t>(cache_ + carry));
      for (; pending_ff_; --pending_ff_) out_.push_back(static_cast<uint8_t>(0xFF + carry));
      cache_ = static_cast<uint8_t>(low_ >> (kWindowBits - 8));
    } else {
      ++pending_ff_;
    }
    low_ = (low_ << 8) & kWindowMask;
  }

  std::vector<uint8_t>& out_;
  uint64_t low_ = 0;
  uint64_t range_ = kWindowMask;
  uint8_t cache_ = 0;
  uint64_t pending_ff_ = 0;
};

class Decoder {
 public:
  // Every read is bounds-checked: bytes past the end read as zero, so a
  // truncated or corrupted stream decodes to garbage but never reads outside.
  Decoder(const uint8_t* data, int64_t size) : data_(data), size_(size) {
    for (int i = 0; i < kWindowBits / 8; ++i) code_ = (code_ << 8) | next_byte();
  }

  // The scaled target in [0, 1 << bits) and the step it was scaled by.
  uint32_t target(int bits) {
    step_ = range_ >> bits;
    const uint64_t t = code_ / step_;
    const uint64_t top = (uint64_t{1} << bits) - 1;
    return static_cast<uint32_t>(t > top ? top : t);  // only a corrupted stream exceeds top
  }

  // Consumes the interval found for the last target().
  void consume(uint32_t start, uint32_t freq) {
    code_ -= step_ * start;
    range_ = step_ * freq;
    while (range_ < kRenormBelow) {
      range_ <<= 8;
      code_ = ((code_ << 8) | next_byte()) & kWindowMask;
    }
  }

 private:
  uint64_t next_byte() { return pos_ < size_ ? data_[pos_++] : 0; }

  const uint8_t* data_;
  int64_t size_;
  int64_t pos_ = 0;
  uint64_t code_ = 0;
  uint64_t range_ = kWindowMask;
  uint64_t step_ = 1;
};

// One CDF table row, already validated (cdf[0] = 0, cdf[length-1] = 1 << 16,
// non-decreasing, length >= 2).
struct Row {
  const int32_t* cdf;
  int32_t length;
  int32_t offset;
};

// Codes one value; returns false (coding nothing) when its bin has zero probability.
inline bool encode_value(Encoder& enc, const Row& row, int32_t value) {
  const int64_t max_value = row.length - 2;  // the escape bin
  int64_t s = static_cast<int64_t>(value) - row.offset;
  const bool escape = s < 0 || s >= max_value;
  const uint64_t raw = escape ? escape_payload(s, max_value) : 0;
  if (escape) s = max_value;
  const uint32_t start = static_cast<uint32_t>(row.cdf[s]);
  const uint32_t freq = static_cast<uint32_t>(row.cdf[s + 1]) - start;
  if (freq == 0) return false;
  enc.encode(start, freq, kPrecision);
  if (escape) {
    const int n = bit_length(raw);
    enc.encode(static_cast<uint32_t>(n), 1, kLengthBits);
    for (int i = 0; i < n; i += kChunkBits) {
      const int bits = n - i < kChunkBits ? n - i : kChunkBits;
      enc.encode(static_cast<uint32_t>((raw >> i) & ((uint64_t{1} << bits) - 1)), 1, bits);
    }
  }
  return true;
}

// Binary search: the bin s with cdf[s] <= t < cdf[s + 1] (it has freq > 0).
inline int32_t find_bin(const Row& row, uint32_t t) {
  int32_t lo = 0, hi = row.length - 1;  // cdf[lo] <= t < cdf[hi]
  while (hi - lo > 1) {
    const int32_t mid = lo + (hi - lo) / 2;
    if (static_cast<uint32_t>(row.cdf[mid]) <= t) lo = mid; else hi = mid;
  }
  return lo;
}

inline int32_t decode_value(Decoder& dec, const Row& row) {
  const int64_t max_value = row.length - 2;
  const int32_t s = find_bin(row, dec.target(kPrecision));
  const uint32_t start = static_cast<uint32_t>(row.cdf[s]);
  dec.consume(start, static_cast<uint32_t>(row.cdf[s + 1]) - start);
  int64_t v = s;
  if (s == max_value) {
    const int n = static_cast<int>(dec.target(kLengthBits));
    dec.consume(static_cast<uint32_t>(n), 1);
    uint64_t raw = 0;
    for (int i = 0; i < n; i += kChunkBits) {
      const int bits = n - i < kChunkBits ? n - i : kChunkBits;
      const uint32_t chunk = dec.target(bits);
      dec.consume(chunk, 1);
      raw |= static_cast<uint64_t>(chunk) << i;
    }
    v = escape_value(raw, max_value);
  }
  // wrap to int32 as unsigned: defined behaviour for corrupted payloads
  const uint64_t sum = static_cast<uint64_t>(v) + static_cast<uint64_t>(static_cast<int64_t>(row.offset));
  return static_cast<int32_t>(static_cast<uint32_t>(sum));
}

}  // namespace entropy
}  // namespace stegafast
