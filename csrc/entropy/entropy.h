#pragma once
// The range coder of stegafast.ops.range_encode / range_decode: an LZMA-style
// range coder widened to a 56-bit window, over 16-bit quantised CDFs.
// stegafast/reference/entropy.py is the specification (byte-identical streams).
//
// Stream format (one stream): big-endian bytes of the coded value, without the
// coder's always-zero first byte and without trailing zero bytes (the decoder
// reads bytes past the end as zeros).
//
// Coding an interval [start, start + freq) of a total 2^bits (bits <= 16):
//   r = range >> bits;  low += r * start;  range = r * freq;
//   then whole bytes leave the window while range < 2^48 (at most two per step).
// A carry out of the 56-bit window is added into the bytes already written.
// The coder state is two integers and a write position, every step is
// branch-free arithmetic (the byte count of a renormalisation comes from the
// leading-zero count of range; a variant for low-entropy data branches past
// the renormalisations that are not due), the output is one caller-provided buffer,
// so a CUDA coder (one thread per stream, streams laid out as in the batch
// container of entropy_cpu.cpp) can include this header unchanged. Decoding
// divides once per value and finds the bin through a small per-row lookup
// table (see Row) or a branch-free binary search.
#include <cstdint>
#include <cstring>

#include "../common/hostdevice.h"

namespace stegafast {
namespace entropy {

constexpr int kPrecision = 16;                      // CDF totals are 1 << 16
constexpr uint32_t kTotal = 1u << kPrecision;
constexpr int kWindowBits = 56;                     // low / range / code width
constexpr uint64_t kWindowMask = (uint64_t{1} << kWindowBits) - 1;
constexpr uint64_t kRenormBelow = uint64_t{1} << (kWindowBits - 8);  // range is kept >= this
constexpr int kLengthBits = 6;                      // bit length of an escape payload
constexpr int kChunkBits = 16;                      // bypass bits coded per step
// Bytes one value can add to a stream: 2 for its bin, and for an escape 1 for
// the payload length and 2 per 16-bit chunk of a payload of at most 33 bits.
constexpr int64_t kMaxValueBytes = 2 + 1 + 2 * 3;
// Encoder and decoder move 8 bytes at a time: a buffer keeps this much slack.
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

// Whole bytes to shift out so that a range in [1, 2^56) gets back to >= 2^48.
SF_HD int renorm_bytes(uint64_t range) { return (kWindowBits - 1 - (63 - leading_zeros(range))) >> 3; }

SF_HD void store_be64(uint8_t* p, uint64_t v) {
#if defined(__CUDA_ARCH__)
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
#else
  v = __builtin_bswap64(v);
  std::memcpy(p, &v, 8);
#endif
}

SF_HD uint64_t load_be64(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
#else
  uint64_t v;
  std::memcpy(&v, p, 8);
  return __builtin_bswap64(v);
#endif
}

// Writes into buf[0, capacity): the caller keeps room() >= kMaxValueBytes
// before each value (growing the buffer with rebase() if it must).
class Encoder {
 public:
  SF_HD Encoder(uint8_t* buf, int64_t capacity) : buf_(buf), capacity_(capacity) {
    buf_[0] = 0;  // the value's top byte, always 0: a carry never reaches it
  }

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
    low_ += r * start;
    range_ = r * freq;
    if (low_ > kWindowMask) carry();
    if (kSparse && range_ >= kRenormBelow) return;
    const int n = renorm_bytes(range_);
    store_be64(buf_ + pos_, low_ << (64 - kWindowBits));  // the top n bytes are the ones kept
    pos_ += n;
    low_ = (low_ << (8 * n)) & kWindowMask;
    range_ <<= 8 * n;
  }

  // Picks the value in [low, low + range) with the most trailing zero bits and
  // writes its window. Returns the offset of the stream in the buffer; the
  // stream is [offset, trimmed_end()).
  SF_HD int64_t finish() {
    for (int b = kWindowBits; b >= 0; --b) {
      const uint64_t mask = (uint64_t{1} << b) - 1;
      const uint64_t v = (low_ + mask) & ~mask;
      if (v >= low_ && v - low_ < range_) {
        low_ = v;
        break;
      }
    }
    if (low_ > kWindowMask) carry();
    store_be64(buf_ + pos_, low_ << (64 - kWindowBits));
    pos_ += kWindowBits / 8;
    return 1;  // without the always-zero top byte
  }

  // The end of the stream without its trailing zero bytes (the decoder supplies them).
  SF_HD int64_t trimmed_end() const {
    int64_t end = pos_;
    while (end > 1 && buf_[end - 1] == 0) --end;
    return end;
  }

 private:
  // Adds the bit that left the window into the bytes written: 0xFF bytes turn
  // to 0 and pass it on. Rare (a carry needs low near the window's top).
  SF_HD void carry() {
    int64_t i = pos_ - 1;
    while (++buf_[i] == 0) --i;
    low_ &= kWindowMask;
  }

  uint8_t* buf_;
  int64_t capacity_;
  int64_t pos_ = 1;
  uint64_t low_ = 0;
  uint64_t range_ = kWindowMask;
};

class Decoder {
 public:
  // Every read is bounds-checked: bytes past the end read as zero, so a
  // truncated or corrupted stream decodes to garbage but never reads outside.
  SF_HD Decoder(const uint8_t* data, int64_t size) : data_(data), size_(size) { shift_in(kWindowBits / 8); }

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
    const int n = renorm_bytes(range_);
    range_ <<= 8 * n;
    shift_in(n);
  }

 private:
  // Shifts the next n <= 7 stream bytes into the low end of code.
  SF_HD void shift_in(int n) {
    uint64_t next;  // the coming bytes, the first in the top byte
    if (pos_ + 8 <= size_) {
      next = load_be64(data_ + pos_);
    } else {  // the stream's last bytes, then zeros
      next = 0;
      for (int i = 0; i < 8 && pos_ + i < size_; ++i) next |= static_cast<uint64_t>(data_[pos_ + i]) << (56 - 8 * i);
    }
    pos_ += n;
    // the top 8n bits of next, by shifts below 64 (n = 0 takes none)
    code_ = ((code_ << (8 * n)) | ((next >> 8) >> (kWindowBits - 8 * n))) & kWindowMask;
  }

  const uint8_t* data_;
  int64_t size_;
  int64_t pos_ = 0;
  uint64_t code_ = 0;
  uint64_t range_ = kWindowMask;
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
SF_HD int64_t encode_values(Encoder& enc, const Row* rows, const int32_t* idx, const int32_t* values,
                            int64_t begin, int64_t end) {
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
