// CPU kernels of the windowed attention for one (window, head) item, compiled
// once per CPU variant (see common/cpu_variants.h): the including file defines
// SF_CPU_VARIANT, the namespace the code lands in, and SF_VECTOR_BYTES, the
// vector width it targets (32: AVX2 or the baseline's pairs of SSE registers,
// 64: AVX-512), and includes no torch header.
//
// An item is a handful of small matrix products over its staged buffers
// (attention_cpu_items.h), each run by one register-blocked kernel, gemm(),
// written with GCC vector types: kTileRows rows by two vectors of columns of
// accumulators, the columns loaded from b, each row one broadcast of a; so AVX2
// gets 8 fused multiply-adds per 2 loads and 4 broadcasts, AVX-512 16 per 2
// loads and 8 broadcasts. N <= 256, so a whole row of
// scores fits in the scratch: each row is normalised exactly once (max, exp,
// sum) rather than rescaled block by block as flash attention must for long
// rows, and only its log-sum-exp is kept for the backward.
// No include guard on purpose: each variant includes it once.
#if !defined(SF_CPU_VARIANT) || !defined(SF_VECTOR_BYTES)
#error "define SF_CPU_VARIANT and SF_VECTOR_BYTES before including attention_cpu_kernels.h"
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "attention.h"
#include "attention_cpu_items.h"

// The vector helpers are always inlined, so the calling convention GCC warns
// about for 32-byte vectors on the baseline target never applies.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace stegafast {
namespace attention {
namespace SF_CPU_VARIANT {

// Rows of a matrix-product tile: as many accumulators as the registers hold
// (16 AVX2 registers, 32 AVX-512 ones) beside the loaded and broadcast operands.
constexpr int kTileRows = SF_VECTOR_BYTES == 64 ? 6 : 4;

template <typename A>
struct Lanes {
  typedef A Vec __attribute__((vector_size(SF_VECTOR_BYTES)));
  static constexpr int kWidth = SF_VECTOR_BYTES / sizeof(A);
};

template <typename A>
using Vec = typename Lanes<A>::Vec;

template <typename A>
SF_HD Vec<A> load(const A* p) {
  Vec<A> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename A>
SF_HD void store(A* p, Vec<A> v) {
  std::memcpy(p, &v, sizeof v);
}

// Every lane a (a loop GCC turns into one broadcast; `Vec{} + a` would add too).
template <typename A>
SF_HD Vec<A> splat(A a) {
  Vec<A> v;
  for (int l = 0; l < Lanes<A>::kWidth; ++l) v[l] = a;
  return v;
}

// v with lanes l and l ^ step exchanged (a constant permutation once unrolled).
template <typename A>
SF_HD Vec<A> exchanged(Vec<A> v, int step) {
  typedef typename std::conditional<sizeof(A) == 4, int32_t, int64_t>::type Index;
  typedef Index Indices __attribute__((vector_size(SF_VECTOR_BYTES)));
  Indices order;
  for (int l = 0; l < Lanes<A>::kWidth; ++l) order[l] = l ^ step;
  return __builtin_shuffle(v, order);
}

// Horizontal sum and maximum as trees of lane exchanges: log2(width) steps.
template <typename A>
SF_HD A horizontal_sum(Vec<A> v) {
  for (int step = Lanes<A>::kWidth / 2; step > 0; step /= 2) v += exchanged<A>(v, step);
  return v[0];
}

template <typename A>
SF_HD A horizontal_max(Vec<A> v) {
  for (int step = Lanes<A>::kWidth / 2; step > 0; step /= 2) {
    const Vec<A> other = exchanged<A>(v, step);
    v = other > v ? other : v;
  }
  return v[0];
}

// One tile of a matrix product: c(r, 0..U W) = alpha * sum_k a(r, k) b(k, 0..U W)
// + add0(r, ..) + add1(r, ..) for r < R, where a(r, k) = a[r * sr + k * sk]
// (row-major a or its transpose), b has rows of ldb values, and the optional
// add0 and add1 (nullptr: none) are laid out as c.
template <int R, int U, typename A>
SF_HD void gemm_tile(const A* a, int64_t sr, int64_t sk, const A* __restrict b, int64_t ldb, int64_t depth, A alpha,
                     A* __restrict c, int64_t ldc, const A* add0, const A* add1) {
  constexpr int W = Lanes<A>::kWidth;
  Vec<A> acc[R][U];
  for (int r = 0; r < R; ++r) {
    for (int u = 0; u < U; ++u) acc[r][u] = Vec<A>{};
  }
  for (int64_t k = 0; k < depth; ++k) {
    Vec<A> bk[U];
    for (int u = 0; u < U; ++u) bk[u] = load(b + k * ldb + u * W);
    for (int r = 0; r < R; ++r) {
      const A ar = a[r * sr + k * sk];  // vector * scalar broadcasts it
      for (int u = 0; u < U; ++u) acc[r][u] += bk[u] * ar;
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int u = 0; u < U; ++u) {
      const int64_t at = r * ldc + u * W;
      Vec<A> value = acc[r][u] * alpha;
      if (add0 != nullptr) value += load(add0 + at);
      if (add1 != nullptr) value += load(add1 + at);
      store(c + at, value);
    }
  }
}

// R rows of a matrix product over cols columns (a multiple of kPad), in tiles of
// two vectors and, where one is left (AVX-512), of one.
template <int R, typename A>
SF_HD void gemm_rows(const A* a, int64_t sr, int64_t sk, const A* b, int64_t ldb, int64_t depth, int64_t cols, A alpha,
                     A* c, int64_t ldc, const A* add0, const A* add1) {
  constexpr int W = Lanes<A>::kWidth;
  const auto at = [](const A* add, int64_t j) { return add != nullptr ? add + j : nullptr; };
  int64_t j = 0;
  for (; j + 2 * W <= cols; j += 2 * W) {
    gemm_tile<R, 2>(a, sr, sk, b + j, ldb, depth, alpha, c + j, ldc, at(add0, j), at(add1, j));
  }
  for (; j < cols; j += W) gemm_tile<R, 1>(a, sr, sk, b + j, ldb, depth, alpha, c + j, ldc, at(add0, j), at(add1, j));
}

template <typename A>
void gemm(int64_t rows, const A* a, int64_t sr, int64_t sk, const A* b, int64_t ldb, int64_t depth, int64_t cols,
          A alpha, A* c, int64_t ldc, const A* add0 = nullptr, const A* add1 = nullptr) {
  const auto shifted = [ldc](const A* add, int64_t r) { return add != nullptr ? add + r * ldc : nullptr; };
  int64_t r = 0;
  for (; r + kTileRows <= rows; r += kTileRows) {
    gemm_rows<kTileRows>(a + r * sr, sr, sk, b, ldb, depth, cols, alpha, c + r * ldc, ldc, shifted(add0, r),
                         shifted(add1, r));
  }
  if constexpr (kTileRows > 4) {
    if (r + 4 <= rows) {
      gemm_rows<4>(a + r * sr, sr, sk, b, ldb, depth, cols, alpha, c + r * ldc, ldc, shifted(add0, r),
                   shifted(add1, r));
      r += 4;
    }
  }
  for (; r < rows; ++r) {
    gemm_rows<1>(a + r * sr, sr, sk, b, ldb, depth, cols, alpha, c + r * ldc, ldc, shifted(add0, r), shifted(add1, r));
  }
}

// e^x for a vector of floats by Cephes' expf polynomial (e^x = 2^n e^r, n = round(x / ln2),
// |r| <= ln2 / 2), straight-line so that it stays in vector registers; x below
// -87.3 (the normal range's end), -inf included, gives exactly 0.
SF_HD Vec<float> exp_lanes(Vec<float> x) {
  typedef int32_t Ints __attribute__((vector_size(SF_VECTOR_BYTES)));
  const Vec<float> lo = splat(-87.3f), hi = splat(88.3f);
  const Vec<float> xc = x < lo ? lo : (x > hi ? hi : x);
  // round to nearest: adding 1.5 * 2^23 leaves no fraction bits
  const Vec<float> magic = splat(12582912.0f);
  const Vec<float> n = (xc * 1.44269504088896341f + magic) - magic;
  Vec<float> r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  Vec<float> p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const Vec<float> e = p * (r * r) + r + 1.0f;
  const Ints bits = (__builtin_convertvector(n, Ints) + 127) << 23;
  Vec<float> pow2;
  std::memcpy(&pow2, &bits, sizeof pow2);
  return x < lo ? Vec<float>{} : e * pow2;
}

// s[0..np) = exp(s - shift); returns their sum.
SF_HD float exp_shifted(float* s, int64_t np, float shift) {
  Vec<float> total{};
  for (int64_t j = 0; j < np; j += Lanes<float>::kWidth) {
    const Vec<float> e = exp_lanes(load(s + j) - shift);
    store(s + j, e);
    total += e;
  }
  return horizontal_sum<float>(total);
}

// Double precision is for gradient checks, not speed: libm's exp.
SF_HD double exp_shifted(double* s, int64_t np, double shift) {
  double total = 0;
  for (int64_t j = 0; j < np; ++j) {
    s[j] = std::exp(s[j] - shift);
    total += s[j];
  }
  return total;
}

// dst[c][r] = src[r][c] for a rows x cols block of src (rows of cols values)
// into rows of ld values of dst: 8 x 8 blocks transposed in registers (the
// classic unpack, shuffle, lane-swap sequence), the edges value by value. Not
// inline: the variant files' entry point (attention_cpu_avx2.h).
void transpose(const float* __restrict src, int64_t rows, int64_t cols, float* __restrict dst, int64_t ld) {
  typedef float V8 __attribute__((vector_size(32)));
  typedef int32_t I8 __attribute__((vector_size(32)));
  const I8 lo = {0, 8, 1, 9, 4, 12, 5, 13}, hi = {2, 10, 3, 11, 6, 14, 7, 15};
  const I8 even = {0, 1, 8, 9, 4, 5, 12, 13}, odd = {2, 3, 10, 11, 6, 7, 14, 15};
  const I8 first = {0, 1, 2, 3, 8, 9, 10, 11}, second = {4, 5, 6, 7, 12, 13, 14, 15};
  const int64_t rows8 = rows / 8 * 8, cols8 = cols / 8 * 8;
  for (int64_t r0 = 0; r0 < rows8; r0 += 8) {
    for (int64_t c0 = 0; c0 < cols8; c0 += 8) {
      V8 x[8], t[8], u[8];
      for (int i = 0; i < 8; ++i) std::memcpy(&x[i], src + (r0 + i) * cols + c0, sizeof(V8));
      for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shuffle(x[i], x[i + 1], lo);
        t[i + 1] = __builtin_shuffle(x[i], x[i + 1], hi);
      }
      for (int i = 0; i < 8; i += 4) {
        u[i] = __builtin_shuffle(t[i], t[i + 2], even);
        u[i + 1] = __builtin_shuffle(t[i], t[i + 2], odd);
        u[i + 2] = __builtin_shuffle(t[i + 1], t[i + 3], even);
        u[i + 3] = __builtin_shuffle(t[i + 1], t[i + 3], odd);
      }
      for (int i = 0; i < 4; ++i) {
        const V8 a = __builtin_shuffle(u[i], u[i + 4], first), b = __builtin_shuffle(u[i], u[i + 4], second);
        std::memcpy(dst + (c0 + i) * ld + r0, &a, sizeof(V8));
        std::memcpy(dst + (c0 + i + 4) * ld + r0, &b, sizeof(V8));
      }
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = r < rows8 ? cols8 : 0; c < cols; ++c) dst[c * ld + r] = src[r * cols + c];
  }
}

template <typename A>
SF_HD A row_max(const A* s, int64_t np) {
  constexpr int W = Lanes<A>::kWidth;
  Vec<A> m = load(s);
  for (int64_t j = W; j < np; j += W) {
    const Vec<A> v = load(s + j);
    m = v > m ? v : m;
  }
  return horizontal_max<A>(m);
}

template <typename A>
SF_HD void fill(A* s, int64_t count, A value) {
  for (int64_t j = 0; j < count; ++j) s[j] = value;
}

// The scores scale q k^T + bias + mask of an item into s (n x np), with -inf
// in the padding columns so that they get probability 0.
template <typename A>
SF_HD void scores(const A* q, const A* kt, const A* bias, const A* mask, int64_t n, int64_t d, int64_t np, int64_t dp,
                  A scale, A* s) {
  gemm(n, q, dp, 1, kt, np, d, np, scale, s, np, bias, mask);
  for (int64_t i = 0; i < n; ++i) fill(s + i * np + n, np - n, minus_infinity<A>());
}

template <typename A>
void forward_item(const ForwardItem<A>& it) {
  const int64_t n = it.n, np = it.np, dp = it.dp;
  scores(it.q, it.kt, it.bias, it.mask, n, it.d, np, dp, it.scale, it.s);
  // s becomes exp(s - max) row by row; lse holds 1 / sum until out is scaled
  for (int64_t i = 0; i < n; ++i) {
    A* s = it.s + i * np;
    const A m = row_max(s, np);
    if (m == minus_infinity<A>()) {  // fully masked: out = 0
      fill(s, np, A(0));
      it.lse[i] = m;
      continue;
    }
    const A l = exp_shifted(s, np, m);
    it.lse[i] = row_lse(m, l);
    it.inv_sum[i] = A(1) / l;
  }
  gemm(n, it.s, np, 1, it.v, dp, n, dp, A(1), it.out, dp);
  for (int64_t i = 0; i < n; ++i) {
    const A inv = it.lse[i] == minus_infinity<A>() ? A(0) : it.inv_sum[i];
    for (int64_t c = 0; c < dp; ++c) it.out[i * dp + c] *= inv;
  }
}

template <typename A>
void backward_item(const BackwardItem<A>& it) {
  const int64_t n = it.n, np = it.np, dp = it.dp;
  // p, recomputed from the saved lse
  scores(it.q, it.kt, it.bias, it.mask, n, it.d, np, dp, it.scale, it.p);
  for (int64_t i = 0; i < n; ++i) {
    A* p = it.p + i * np;
    if (it.lse[i] == minus_infinity<A>()) {
      fill(p, np, A(0));
    } else {
      exp_shifted(p, np, it.lse[i]);
    }
  }
  // ds = p * (dp - D), dp = gout v^T, D = rowsum(p * dp)
  gemm(n, it.gout, dp, 1, it.vt, np, it.d, np, A(1), it.ds, np);
  for (int64_t i = 0; i < n; ++i) {
    const A* __restrict p = it.p + i * np;
    A* __restrict ds = it.ds + i * np;
    Vec<A> total{};
    for (int64_t j = 0; j < np; j += Lanes<A>::kWidth) total += load(p + j) * load(ds + j);
    const A delta = horizontal_sum<A>(total);
    for (int64_t j = 0; j < np; ++j) ds[j] = p[j] * (ds[j] - delta);
  }
  gemm(n, it.ds, np, 1, it.k, dp, n, dp, it.scale, it.gq, dp);  // dq = scale ds k
  gemm(n, it.ds, 1, np, it.q, dp, n, dp, it.scale, it.gk, dp);  // dk = scale ds^T q
  gemm(n, it.p, 1, np, it.gout, dp, n, dp, A(1), it.gv, dp);    // dv = p^T gout
  if (it.gbias != nullptr) {
    for (int64_t i = 0; i < n; ++i) {
      const A* __restrict ds = it.ds + i * np;
      A* __restrict gb = it.gbias + i * n;
      for (int64_t j = 0; j < n; ++j) gb[j] += ds[j];
    }
  }
}

}  // namespace SF_CPU_VARIANT
}  // namespace attention
}  // namespace stegafast
