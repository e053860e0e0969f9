#pragma once
// Differentiable JPEG quantisation of 8x8 blocks, shared by the CPU and CUDA
// kernels. For one block X of pixel values (0..255) and its table Q:
//
//     C = D (X - 128) D^T          forward DCT-II, D the orthonormal 8x8 DCT matrix
//     Y = D^T (Q * r(C / Q)) D + 128
//
// with the rounding r one of
//     ste        r(v) = round(v)                     r'(v) = 1 (straight-through)
//     cubic      r(v) = round(v) + (v - round(v))^3  r'(v) = 3 (v - round(v))^2
//     ste_cubic  r(v) = round(v)                     r'(v) = 3 (v - round(v))^2
// (round: to nearest, ties to even, as torch.round). The backward, with D
// orthonormal so that the adjoint of each transform is the other one, is
//     grad_X = D^T (r'(C / Q) * (D grad_Y D^T)) D
// which for ste is grad_Y itself. The tables are not differentiated.
//
// Every function works on one block held in registers/locals, so CPU loops and
// CUDA threads run exactly the same arithmetic.

#include "../common/hostdevice.h"

namespace stegafast {
namespace jpeg {

enum class Rounding : int { kSte = 0, kCubic = 1, kSteCubic = 2 };

constexpr int kBlock = 8;
constexpr int kBlockSize = kBlock * kBlock;

// The orthonormal DCT-II matrix d[k][n] = a_k cos((2n + 1) k pi / 16), built once
// on the host in double and passed to kernels by value (256 bytes for float).
template <typename A>
struct DctBasis {
  A d[kBlock][kBlock];

  static DctBasis make() {
    DctBasis b;
    const double pi = 3.14159265358979323846;
    for (int k = 0; k < kBlock; ++k) {
      const double a = k == 0 ? std::sqrt(1.0 / kBlock) : std::sqrt(2.0 / kBlock);
      for (int n = 0; n < kBlock; ++n) b.d[k][n] = A(a * std::cos((2 * n + 1) * k * pi / (2 * kBlock)));
    }
    return b;
  }
};

// Round to nearest, ties to even, as straight-line arithmetic so CPU loops
// vectorise (rint is a library call on the x86-64 baseline): adding 2^mantissa
// leaves no fraction bits; values beyond it are integers already.
SF_HD float round_even(float v) {
  const float big = 8388608.0f;  // 2^23
  const float t = v < 0.0f ? -big : big;
  const float r = (v + t) - t;
  return (v < big && v > -big) ? r : v;
}

SF_HD double round_even(double v) {
  const double big = 4503599627370496.0;  // 2^52
  const double t = v < 0.0 ? -big : big;
  const double r = (v + t) - t;
  return (v < big && v > -big) ? r : v;
}

template <Rounding R, typename A>
SF_HD A round_value(A v) {
  const A r = round_even(v);
  if constexpr (R == Rounding::kCubic) {
    const A e = v - r;
    return r + e * e * e;
  } else {
    return r;
  }
}

template <Rounding R, typename A>
SF_HD A round_slope(A v) {
  if constexpr (R == Rounding::kSte) {
    return A(1);
  } else {
    const A e = v - round_even(v);
    return A(3) * e * e;
  }
}

// out = D in D^T (Forward) or D^T in D (inverse), for row-major 8x8 blocks.
template <bool Forward, typename A>
SF_HD void transform(const DctBasis<A>& b, const A in[kBlockSize], A out[kBlockSize]) {
  A tmp[kBlockSize];
  // columns: tmp[k][n] = sum_m M[k][m] in[m][n]
  for (int k = 0; k < kBlock; ++k) {
    for (int n = 0; n < kBlock; ++n) {
      A s = A(0);
      for (int m = 0; m < kBlock; ++m) s += (Forward ? b.d[k][m] : b.d[m][k]) * in[m * kBlock + n];
      tmp[k * kBlock + n] = s;
    }
  }
  // rows: out[k][l] = sum_n tmp[k][n] M[l][n]
  for (int k = 0; k < kBlock; ++k) {
    for (int l = 0; l < kBlock; ++l) {
      A s = A(0);
      for (int n = 0; n < kBlock; ++n) s += tmp[k * kBlock + n] * (Forward ? b.d[l][n] : b.d[n][l]);
      out[k * kBlock + l] = s;
    }
  }
}

// The forward of one block: pixels px (0..255) and table q in, pixels out.
template <Rounding R, typename A>
SF_HD void quantize_block(const DctBasis<A>& b, const A q[kBlockSize], A px[kBlockSize]) {
  A coef[kBlockSize];
  for (int i = 0; i < kBlockSize; ++i) px[i] -= A(128);
  transform<true>(b, px, coef);
  for (int i = 0; i < kBlockSize; ++i) coef[i] = q[i] * round_value<R>(coef[i] / q[i]);
  transform<false>(b, coef, px);
  for (int i = 0; i < kBlockSize; ++i) px[i] += A(128);
}

// The backward of one block (not for ste, whose gradient is grad_y itself):
// the forward's input px and table q, grad_y in g, replaced by grad_x.
template <Rounding R, typename A>
SF_HD void quantize_block_backward(const DctBasis<A>& b, const A q[kBlockSize], A px[kBlockSize], A g[kBlockSize]) {
  A coef[kBlockSize], gc[kBlockSize];
  for (int i = 0; i < kBlockSize; ++i) px[i] -= A(128);
  transform<true>(b, px, coef);
  transform<true>(b, g, gc);
  for (int i = 0; i < kBlockSize; ++i) gc[i] *= round_slope<R>(coef[i] / q[i]);
  transform<false>(b, gc, g);
}

// Where the blocks of a contiguous (N, C, H, W) batch lie, H and W multiples of 8;
// block k is (plane k / (bh bw), row-block, column-block), plane = n C + c, and
// plane p's table starts at p * 64 of a contiguous (N, C, 8, 8) table tensor.
struct Geometry {
  int64_t planes, h, w, bh, bw;
  SF_HD int64_t blocks() const { return planes * bh * bw; }
  // offset of block k's top-left pixel
  SF_HD int64_t origin(int64_t k) const {
    const int64_t j = k % bw;
    const int64_t rest = k / bw;
    const int64_t i = rest % bh, p = rest / bh;
    return (p * h + i * kBlock) * w + j * kBlock;
  }
  SF_HD int64_t plane(int64_t k) const { return k / (bh * bw); }
};

template <typename T, typename A>
SF_HD void load_block(const T* src, int64_t w, A out[kBlockSize]) {
  for (int r = 0; r < kBlock; ++r)
    for (int c = 0; c < kBlock; ++c) out[r * kBlock + c] = A(src[r * w + c]);
}

template <typename T, typename A>
SF_HD void store_block(const A in[kBlockSize], int64_t w, T* dst) {
  for (int r = 0; r < kBlock; ++r)
    for (int c = 0; c < kBlock; ++c) dst[r * w + c] = T(in[r * kBlock + c]);
}

template <typename T, typename A>
SF_HD void load_table(const T* src, A out[kBlockSize]) {
  for (int i = 0; i < kBlockSize; ++i) out[i] = A(src[i]);
}

// Block k of the forward, read from x and written to y.
template <Rounding R, typename T, typename A>
SF_HD void forward_at(const DctBasis<A>& b, const T* x, const T* qtable, T* y, const Geometry& g, int64_t k) {
  A q[kBlockSize], px[kBlockSize];
  const int64_t o = g.origin(k);
  load_table(qtable + g.plane(k) * kBlockSize, q);
  load_block(x + o, g.w, px);
  quantize_block<R>(b, q, px);
  store_block(px, g.w, y + o);
}

// Block k of the backward (not for ste).
template <Rounding R, typename T, typename A>
SF_HD void backward_at(const DctBasis<A>& b, const T* gy, const T* x, const T* qtable, T* gx, const Geometry& g,
                       int64_t k) {
  A q[kBlockSize], px[kBlockSize], gr[kBlockSize];
  const int64_t o = g.origin(k);
  load_table(qtable + g.plane(k) * kBlockSize, q);
  load_block(x + o, g.w, px);
  load_block(gy + o, g.w, gr);
  quantize_block_backward<R>(b, q, px, gr);
  store_block(gr, g.w, gx + o);
}

}  // namespace jpeg
}  // namespace stegafast
