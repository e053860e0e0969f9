#pragma once
// LeGall 5/3 integer lifting (JPEG 2000 Part 1, Annex F), shared by the CPU and
// CUDA kernels.
//
// A length-n signal is first extended by one whole-sample symmetric sample when n
// is odd (x[n] = x[n-2]): the whole batch shares that rule, so every subband has
// k = ceil(n/2) samples. The padded signal (length m = 2k) is then lifted with
// whole-sample symmetric extension at both ends:
//     d[i] = x[2i+1] - P(x[2i], x[2i+2])        P(a, b) = floor((a + b) / 2)
//     s[i] = x[2i]   + U(d[i-1], d[i])          U(a, b) = floor((a + b + 2) / 4)
// Without rounding P and U are the linear (a + b) / 2 and (a + b) / 4.
//
// The extension makes d[-1] = d[0] and x[m] = x[m-2]; the functions below apply
// it through index arithmetic, so no padded copy of the input is ever made.
//
// The gradients treat the floors as identities (straight-through), so the
// backward of either transform is the adjoint of its linear version; the
// `*_adjoint_at` functions compute those adjoints as gathers (no atomics).
//
// Every function works on one output position so that CPU loops and CUDA
// threads call exactly the same arithmetic.

#include "../common/hostdevice.h"

namespace stegafast {
namespace lifting {

template <typename A>
struct Pair {
  A lo;  // even / low-pass / s
  A hi;  // odd / high-pass / d
};

SF_HD int64_t half_len(int64_t n) { return (n + 1) / 2; }

// Physical index of logical sample p (-2 <= p <= 2*half_len(n)) of a length-n
// signal under the shared padding and whole-sample symmetric extension.
SF_HD int64_t ext(int64_t p, int64_t n) {
  const int64_t m = n + (n & 1);
  if (p < 0) p = -p;
  if (p > m - 1) p = 2 * (m - 1) - p;
  if (p == n) p = n - 2;  // the shared padding sample, only when n is odd
  return p;
}

// Two ways to take a floor. The library floor is one instruction on GPUs and on
// CPUs with SSE4.1, but a function call per sample on the x86-64 baseline, where
// it also stops loops from vectorising; truncation through an integer vectorises
// there with SSE2. The CPU kernels pick one per build (lifting_cpu_kernels.h).
struct LibraryFloor {
  SF_HD float operator()(float v) const { return floorf(v); }
  SF_HD double operator()(double v) const { return floor(v); }
};

struct TruncationFloor {
  // Values of magnitude >= 2^23 (2^52) are integers already; inf/NaN pass through.
  template <typename F, typename I>
  SF_HD static F floor_of(F v, F integral_from) {
    const F magnitude = v < F(0) ? -v : v;
    const bool small = magnitude < integral_from;  // false for NaN
    const F safe = small ? v : F(0);               // keeps the integer conversion in range
    const F t = F(I(safe));
    const F down = t > safe ? t - F(1) : t;
    return small ? down : v;
  }
  SF_HD float operator()(float v) const { return floor_of<float, int32_t>(v, 8388608.0f); }
  SF_HD double operator()(double v) const { return floor_of<double, int64_t>(v, 4503599627370496.0); }
};

#if defined(__CUDA_ARCH__)
using DefaultFloor = LibraryFloor;
#else
using DefaultFloor = TruncationFloor;
#endif

// The arithmetic type of the lifting of storage type T: acc_t<T> for floating
// types; uint32_t for int32, so that every sum and difference wraps modulo 2^32
// (defined behaviour for unsigned types, and what torch's int32 arithmetic does
// in the reference). The transform of int32 data is therefore two's-complement
// int32 arithmetic throughout, intermediate results included: each lifting step
// adds a function of the other half's samples, which the inverse subtracts
// again, so wrapping keeps the round trip exact for every int32 input.
template <typename T>
struct LiftAcc {
  using type = acc_t<T>;
};
template <>
struct LiftAcc<int32_t> {
  using type = uint32_t;
};
template <typename T>
using lift_acc_t = typename LiftAcc<T>::type;

// floor(v / 2^k) of the wrapped sum v read as a signed integer (C++20 defines
// both the conversion and the arithmetic shift).
template <typename A>
SF_HD A floor_shift(A v, int k) {
  using S = typename std::make_signed<A>::type;
  return A(S(v) >> k);
}

template <bool Round, typename A, typename Floor = DefaultFloor>
SF_HD A predict(A a, A b) {
  if constexpr (std::is_integral<A>::value) {
    return floor_shift(A(a + b), 1);
  } else if constexpr (Round) {
    return Floor()((a + b) * A(0.5));
  } else {
    return (a + b) * A(0.5);
  }
}

template <bool Round, typename A, typename Floor = DefaultFloor>
SF_HD A update(A a, A b) {
  if constexpr (std::is_integral<A>::value) {
    return floor_shift(A(a + b + A(2)), 2);
  } else if constexpr (Round) {
    return Floor()((a + b + A(2)) * A(0.25));
  } else {
    return (a + b) * A(0.25);
  }
}

// Forward lifting of pair i from the five samples x[2i-2] .. x[2i+2].
template <bool Round, typename A, typename Floor = DefaultFloor>
SF_HD Pair<A> lift5(A x0, A x1, A x2, A x3, A x4) {
  const A d_prev = x1 - predict<Round, A, Floor>(x0, x2);
  const A d = x3 - predict<Round, A, Floor>(x2, x4);
  return {x2 + update<Round, A, Floor>(d_prev, d), d};
}

// Forward lifting of pair i of a length-n signal; g(q) reads physical sample q.
template <bool Round, typename A, typename G>
SF_HD Pair<A> lift_at(const G& g, int64_t i, int64_t n) {
  return lift5<Round, A>(g(ext(2 * i - 2, n)), g(ext(2 * i - 1, n)), g(ext(2 * i, n)), g(ext(2 * i + 1, n)),
                         g(ext(2 * i + 2, n)));
}

// Inverse lifting of pair i from s[i], s[i+1], d[i-1], d[i], d[i+1]: returns the
// padded signal's samples 2i and 2i+1. `last` marks i = k-1, where the extension
// makes the next even sample equal this one (s_next and d_next are unused).
template <bool Round, typename A, typename Floor = DefaultFloor>
SF_HD Pair<A> unlift5(A s, A s_next, A d_prev, A d, A d_next, bool last) {
  const A even = s - update<Round, A, Floor>(d_prev, d);
  const A even_next = last ? even : s_next - update<Round, A, Floor>(d, d_next);
  return {even, d + predict<Round, A, Floor>(even, even_next)};
}

// Inverse lifting of pair i from k low (gs) and k high (gd) coefficients.
template <bool Round, typename A, typename GS, typename GD>
SF_HD Pair<A> unlift_at(const GS& gs, const GD& gd, int64_t i, int64_t k) {
  const int64_t prev = i > 0 ? i - 1 : 0;  // d[-1] = d[0]
  const int64_t next = i + 1 < k ? i + 1 : i;
  return unlift5<Round, A>(A(gs(i)), A(gs(next)), A(gd(prev)), A(gd(i)), A(gd(next)), i + 1 == k);
}

// Adjoint of the linear forward lifting, pair i: from the gradients of the k low
// (gs) and k high (gd) coefficients, the gradients of the physical samples 2i and
// 2i+1 of a length-n signal. For odd n the padding sample x[n] = x[n-2] sends its
// gradient back to sample n-2, i.e. to the odd sample of pair k-2.
template <typename A, typename GS, typename GD>
SF_HD Pair<A> lift_adjoint_at(const GS& gs, const GD& gd, int64_t i, int64_t k, int64_t n) {
  // gradient reaching d[q]: its own plus U^T of the low-pass gradient
  auto d_total = [&](int64_t q) SF_LAMBDA -> A {
    A u = gs(q);
    if (q + 1 < k) u += A(gs(q + 1));
    if (q == 0) u += A(gs(0));
    return A(gd(q)) + u * A(0.25);
  };
  const A dt = d_total(i);
  A p = dt;  // P^T of the d gradients, at i
  if (i >= 1) p += d_total(i - 1);
  if (i == k - 1) p += dt;
  A odd = dt;
  if ((n & 1) && i == k - 2) odd += d_total(k - 1);
  return {A(gs(i)) - p * A(0.5), odd};
}

// Adjoint of the linear inverse lifting, pair i: from the gradients of the
// length-n reconstructed signal (gx, physical indices), the gradients of
// coefficients s[i] and d[i]. The padding sample cropped away for odd n has zero
// gradient.
template <typename A, typename GX>
SF_HD Pair<A> unlift_adjoint_at(const GX& gx, int64_t i, int64_t k, int64_t n) {
  auto x = [&](int64_t q) SF_LAMBDA -> A { return q < n ? A(gx(q)) : A(0); };
  // gradient reaching the even sample q: its own plus P^T of the odd gradients
  auto even_total = [&](int64_t q) SF_LAMBDA -> A {
    A p = x(2 * q + 1);
    if (q >= 1) p += x(2 * q - 1);
    if (q == k - 1) p += x(2 * q + 1);
    return x(2 * q) + p * A(0.5);
  };
  const A et = even_total(i);
  A u = et;  // U^T of the even gradients, at i
  if (i + 1 < k) u += even_total(i + 1);
  if (i == 0) u += et;
  return {et, x(2 * i + 1) - u * A(0.25)};
}

// ---------------------------------------------------------------------------
// 2-D transforms, one 2x2 output quad (i, j) at a time: the form the CUDA
// kernels use (one thread per quad, neighbours served from cache). Subbands are
// LL, HL (high along W), LH (high along H), HH, each kh x kw.

// A batch of B x C image planes of h x w and its subbands of kh x kw.
struct Geometry {
  int64_t batch, channels, h, w, kh, kw;
};

// Offset of subband s (0..3: LL, HL, LH, HH) of image plane p = b * C + c in a
// contiguous (B, 4C, kh, kw) band tensor.
SF_HD int64_t band_offset(const Geometry& g, int64_t p, int64_t s) {
  const int64_t b = p / g.channels, c = p % g.channels;
  return ((b * 4 + s) * g.channels + c) * g.kh * g.kw;
}

// Distance between subband s and s+1 of the same plane.
SF_HD int64_t band_stride(const Geometry& g) { return g.channels * g.kh * g.kw; }

template <typename T>
struct Bands {
  const T* ll;
  const T* hl;
  const T* lh;
  const T* hh;
  int64_t kw;
};

template <typename T>
SF_HD Bands<T> bands_of(const T* y, const Geometry& g, int64_t p) {
  const T* ll = y + band_offset(g, p, 0);
  const int64_t stride = band_stride(g);
  return {ll, ll + stride, ll + 2 * stride, ll + 3 * stride, g.kw};
}

// Forward: vertical pass (along H) first, then horizontal. out = {LL, HL, LH, HH}.
template <bool Round, typename A, typename T>
SF_HD void forward_quad(const T* x, int64_t h, int64_t w, int64_t i, int64_t j, A out[4]) {
  Pair<A> v[5];
  for (int t = 0; t < 5; ++t) {
    const int64_t c = ext(2 * j - 2 + t, w);
    v[t] = lift_at<Round, A>([&](int64_t r) { return A(x[r * w + c]); }, i, h);
  }
  const Pair<A> lo = lift5<Round, A>(v[0].lo, v[1].lo, v[2].lo, v[3].lo, v[4].lo);
  const Pair<A> hi = lift5<Round, A>(v[0].hi, v[1].hi, v[2].hi, v[3].hi, v[4].hi);
  out[0] = lo.lo;
  out[1] = lo.hi;
  out[2] = hi.lo;
  out[3] = hi.hi;
}

// Inverse: undo the horizontal pass, then the vertical one. out = x at
// (2i, 2j), (2i, 2j+1), (2i+1, 2j), (2i+1, 2j+1) of the padded image.
template <bool Round, typename A, typename T>
SF_HD void inverse_quad(const Bands<T>& b, int64_t kh, int64_t i, int64_t j, A out[4]) {
  const int64_t kw = b.kw;
  auto row = [&](const T* lo, const T* hi, int64_t r) {
    return unlift_at<Round, A>([&](int64_t q) { return A(lo[r * kw + q]); },
                               [&](int64_t q) { return A(hi[r * kw + q]); }, j, kw);
  };
  for (int parity = 0; parity < 2; ++parity) {
    auto col = [&](const Pair<A>& p) { return parity ? p.hi : p.lo; };
    const Pair<A> y = unlift_at<Round, A>([&](int64_t r) { return col(row(b.ll, b.hl, r)); },
                                          [&](int64_t r) { return col(row(b.lh, b.hh, r)); }, i, kh);
    out[parity] = y.lo;
    out[2 + parity] = y.hi;
  }
}

// Gradient of the forward transform: adjoint of the horizontal pass, then of the
// vertical one. out as in inverse_quad, for the unpadded (h, w) image.
template <typename A, typename T>
SF_HD void forward_adjoint_quad(const Bands<T>& g, int64_t kh, int64_t h, int64_t w, int64_t i, int64_t j, A out[4]) {
  const int64_t kw = g.kw;
  auto row = [&](const T* lo, const T* hi, int64_t r) {
    return lift_adjoint_at<A>([&](int64_t q) { return A(lo[r * kw + q]); },
                              [&](int64_t q) { return A(hi[r * kw + q]); }, j, kw, w);
  };
  for (int parity = 0; parity < 2; ++parity) {
    auto col = [&](const Pair<A>& p) { return parity ? p.hi : p.lo; };
    const Pair<A> y = lift_adjoint_at<A>([&](int64_t r) { return col(row(g.ll, g.hl, r)); },
                                         [&](int64_t r) { return col(row(g.lh, g.hh, r)); }, i, kh, h);
    out[parity] = y.lo;
    out[2 + parity] = y.hi;
  }
}

// Gradient of the inverse transform: adjoint of the vertical inverse pass, then
// of the horizontal one. out = {LL, HL, LH, HH} gradients at (i, j).
template <typename A, typename T>
SF_HD void inverse_adjoint_quad(const T* gx, int64_t h, int64_t w, int64_t i, int64_t j, A out[4]) {
  const int64_t kh = half_len(h);
  const int64_t kw = half_len(w);
  auto column = [&](int64_t c) { return unlift_adjoint_at<A>([&](int64_t r) { return A(gx[r * w + c]); }, i, kh, h); };
  const Pair<A> lo = unlift_adjoint_at<A>([&](int64_t c) { return column(c).lo; }, j, kw, w);
  const Pair<A> hi = unlift_adjoint_at<A>([&](int64_t c) { return column(c).hi; }, j, kw, w);
  out[0] = lo.lo;
  out[1] = lo.hi;
  out[2] = hi.lo;
  out[3] = hi.hi;
}

}  // namespace lifting
}  // namespace stegafast
