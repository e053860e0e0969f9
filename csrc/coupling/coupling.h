#pragma once
// Affine coupling of invertible networks (INN / Glow-style flows), shared by the
// CPU and CUDA kernels. With r = s_raw and c = clamp > 0:
//
//     s = c * tanh(r / c)              clamp_fn "tanh"
//     s = c * 0.636 * atan(r / c)      clamp_fn "atan" (0.636 ~ 2/pi: the seed's constant, kept exactly)
//
//     forward:  y = x * exp(s) + t       logdet =  sum over a sample of s
//     inverse:  x = (y - t) * exp(-s)    logdet = -sum over a sample of s
//
// Gradients, with gl the gradient of the sample's logdet and s' = ds/dr:
//     forward:  gx = gy e^s    gs = gx x + gl       gr = gs s'    gt = gy
//     inverse:  gy = gx e^-s   gs = -(gx x + gl)    gr = gs s'    gt = -gy
// where x is the forward's input and the inverse's output: both backward passes
// read x rather than y and t, one tensor less.
//
// Every function works on one element so that CPU loops and CUDA threads call
// exactly the same arithmetic; the transcendental functions come from a Math
// policy (the C library's, or PolyMath below, which the CPU vectorises).

#include "../common/hostdevice.h"

#include <cstring>

namespace stegafast {
namespace coupling {

enum class ClampFn : int { kTanh = 0, kAtan = 1 };

// The seed's atan scale: s = clamp * 0.636 * atan(r / clamp).
constexpr double kAtanScale = 0.636;

// The C library's functions: CUDA's device functions on the GPU, libm on the
// host (for double, where PolyMath's float accuracy would not do).
struct LibMath {
  SF_HD static float exp(float v) { return expf(v); }
  SF_HD static float tanh(float v) { return tanhf(v); }
  SF_HD static float atan(float v) { return atanf(v); }
  SF_HD static double exp(double v) { return ::exp(v); }
  SF_HD static double tanh(double v) { return ::tanh(v); }
  SF_HD static double atan(double v) { return ::atan(v); }
};

// float exp, tanh and atan as straight-line arithmetic (selects, no branches, no
// calls), so that CPU loops over them vectorise: libm's expf and friends are a
// call per element and stop that. Accurate to a few ulp; NaN propagates, and
// tanh and atan take +-inf to their limits; exp needs |v| <= kMaxExp.
struct PolyMath {
  // 2^k for -126 <= k <= 127, through the exponent bits.
  SF_HD static float pow2(int32_t k) {
    const uint32_t bits = uint32_t(k + 127) << 23;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }

  // Round to nearest for |v| < 2^22, without the library call rintf is on the
  // x86-64 baseline: adding 1.5 * 2^23 leaves no fraction bits.
  SF_HD static float round_small(float v) {
    const float magic = 12582912.0f;
    return (v + magic) - magic;
  }

  // Cephes' expf for |v| <= kMaxExp (and NaN): e^v = 2^n e^r with
  // n = round(v / ln2) in [-126, 126] and |r| <= ln2 / 2. Without the range
  // handling a general exp needs, it is a third cheaper; the coupling's
  // |s| <= clamp keeps it in range for clamp <= kMaxExp (see with_activation).
  static constexpr float kMaxExp = 87.0f;
  SF_HD static float exp(float v) {
    const float n = round_small(v * 1.44269504088896341f);
    // r = v - n ln2 in two steps (Cody-Waite)
    float r = v - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float e = p * (r * r) + r + 1.0f;
    // NaN: e is NaN already; the select keeps the integer conversion defined
    return e * pow2(int32_t(n == n ? n : 0.0f));
  }

  // A 13/6-degree odd/even rational approximation, accurate to a few ulp on
  // [-7.9, 7.9] (beyond, tanh is +-1 to float precision), and tanh(v) = v for
  // |v| < 4e-4; the coefficients are Eigen's (generic_fast_tanh_float). One
  // division and no exp: a third of the cost of an exp-based tanh.
  SF_HD static float tanh(float v) {
    const float bound = 7.90531110763549805f;
    const float c = v > bound ? bound : (v < -bound ? -bound : v);  // NaN stays NaN
    const float z = c * c;
    float p = -2.76076847742355e-16f;
    p = p * z + 2.00018790482477e-13f;
    p = p * z - 8.60467152213735e-11f;
    p = p * z + 5.12229709037114e-08f;
    p = p * z + 1.48572235717979e-05f;
    p = p * z + 6.37261928875436e-04f;
    p = p * z + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * z + 1.18534705686654e-04f;
    q = q * z + 2.26843463243900e-03f;
    q = q * z + 4.89352518554385e-03f;
    const float m = (c * p) / q;
    // with FMA contraction the quotient can pass 1 by an ulp near the bound
    const float bounded = m > 1.0f ? 1.0f : (m < -1.0f ? -1.0f : m);
    const float a = v < 0.0f ? -v : v;
    return a < 4e-4f ? v : bounded;
  }

  // Cephes' atanf: reduced to |w| <= tan(pi/8) through
  // atan(a) = pi/2 + atan(-1/a) for a > tan(3pi/8) and pi/4 + atan((a-1)/(a+1))
  // for a > tan(pi/8), then an odd polynomial.
  SF_HD static float atan(float v) {
    const float a = v < 0.0f ? -v : v;
    const bool far = a > 2.414213562373095f;
    const bool mid = a > 0.4142135623730950f;
    const float num = far ? -1.0f : (mid ? a - 1.0f : a);
    const float den = far ? a : (mid ? a + 1.0f : 1.0f);
    const float base = far ? 1.5707963267948966f : (mid ? 0.7853981633974483f : 0.0f);
    const float w = num / den;
    const float z = w * w;
    float p = 8.05374449538e-2f;
    p = p * z - 1.38776856032e-1f;
    p = p * z + 1.99777106478e-1f;
    p = p * z - 3.33329491539e-1f;
    const float m = base + (p * z * w + w);
    return v < 0.0f ? -m : m;
  }
};

// The clamped scale s(r) and its slope s'(r), in accumulation type A, with the
// transcendental functions of M (also used for exp by the element functions).
template <ClampFn F, typename A, typename M>
struct Activation {
  using Math = M;
  A inv_clamp;  // 1 / c
  A scale;      // c for tanh, c * 0.636 for atan

  static Activation make(double clamp) {
    const double scale = F == ClampFn::kTanh ? clamp : clamp * kAtanScale;
    return {A(1.0 / clamp), A(scale)};
  }

  SF_HD A value(A r) const {
    const A u = r * inv_clamp;
    if constexpr (F == ClampFn::kTanh) {
      return scale * M::tanh(u);
    } else {
      return scale * M::atan(u);
    }
  }

  SF_HD A value(A r, A& slope) const {
    const A u = r * inv_clamp;
    if constexpr (F == ClampFn::kTanh) {
      const A th = M::tanh(u);
      slope = A(1) - th * th;
      return scale * th;
    } else {
      slope = A(kAtanScale) / (A(1) + u * u);
      return scale * M::atan(u);
    }
  }
};

// One element of the forward: y, with s left in `s` for the logdet.
template <typename Act, typename A>
SF_HD A forward_element(const Act act, A x, A r, A t, A& s) {
  s = act.value(r);
  return x * Act::Math::exp(s) + t;
}

// One element of the inverse: x, with s left in `s` (the logdet sums -s).
template <typename Act, typename A>
SF_HD A inverse_element(const Act act, A y, A r, A t, A& s) {
  s = act.value(r);
  return (y - t) * Act::Math::exp(-s);
}

template <typename A>
struct ForwardGrads {
  A x, r;  // gt = gy needs no arithmetic
};

// Gradients of one forward element from gy, its sample's gl, the input x and r.
template <typename Act, typename A>
SF_HD ForwardGrads<A> forward_grad_element(const Act act, A gy, A gl, A x, A r) {
  A slope;
  const A s = act.value(r, slope);
  const A gx = gy * Act::Math::exp(s);
  return {gx, (gx * x + gl) * slope};
}

template <typename A>
struct InverseGrads {
  A y, r, t;
};

// Gradients of one inverse element from gx, its sample's gl, the output x and r.
template <typename Act, typename A>
SF_HD InverseGrads<A> inverse_grad_element(const Act act, A gx, A gl, A x, A r) {
  A slope;
  const A s = act.value(r, slope);
  const A gy = gx * Act::Math::exp(-s);
  return {gy, -(gx * x + gl) * slope, -gy};
}

// A (B, ...) tensor whose samples are each contiguous (any tensor after
// .contiguous(), but also slices such as x[:, c:] of an NCHW batch): sample b
// starts at data + b * stride.
template <typename T>
struct Samples {
  T* data;
  int64_t stride;
  SF_HD T* at(int64_t sample, int64_t offset) const { return data + sample * stride + offset; }
};

// Where a flat element range lies: per_sample elements a sample, each split into
// `chunks` fixed chunks of `chunk` elements (the last one shorter). The logdet
// sums one partial per chunk, then a sample's partials in a fixed order, so its
// value depends on the data alone, never on threads or scheduling.
struct Layout {
  int64_t batch;
  int64_t per_sample;
  int64_t chunk;
  int64_t chunks;  // per sample: ceil(per_sample / chunk), 0 for empty samples
};

inline Layout make_layout(int64_t batch, int64_t per_sample, int64_t chunk) {
  return {batch, per_sample, chunk, (per_sample + chunk - 1) / chunk};
}

}  // namespace coupling
}  // namespace stegafast
