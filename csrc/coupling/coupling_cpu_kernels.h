// CPU kernels of the affine coupling, compiled once per CPU variant (see
// common/cpu_variants.h): the including file defines SF_CPU_VARIANT, the
// namespace the code lands in, and includes no torch header.
//
// Work is spread over (sample, chunk) items of a fixed chunk size, so one large
// sample uses every thread as well as a large batch does, and each chunk's
// logdet partial is the same whatever the thread count. Inside a chunk the
// elementwise loops are plain loops over restrict-qualified arrays that the
// compiler vectorises (PolyMath for float); the logdet partial is summed from a
// small tile of s values in kLanes independent lanes, which vectorises too and
// fixes the order of every addition. No include guard on purpose: each variant
// includes it once.
#ifndef SF_CPU_VARIANT
#error "define SF_CPU_VARIANT before including coupling_cpu_kernels.h"
#endif

#include <type_traits>

#include "../common/cpu_variants.h"
#include "coupling.h"

namespace stegafast {
namespace coupling {
namespace SF_CPU_VARIANT {

constexpr int64_t kChunk = 8192;     // elements per (sample, chunk) item
constexpr int64_t kMinTask = 32768;  // elements below which a task is not split
constexpr int64_t kTile = 256;       // s values buffered before summing
constexpr int kLanes = 16;           // independent partial sums per chunk

// Runs body(item, sample, offset, length) for every (sample, chunk) item of g:
// elements [offset, offset + length) of the sample, its chunk item % g.chunks.
template <typename F>
void for_each_chunk(cpu::ParallelFor parallel, const Layout& g, const F& body) {
  const int64_t items = g.batch * g.chunks;
  if (items == 0) return;
  struct Context {
    const F& body;
    const Layout& g;
  } ctx{body, g};
  const int64_t item_size = g.per_sample < g.chunk ? g.per_sample : g.chunk;
  const int64_t grain = 1 + (kMinTask - 1) / item_size;
  parallel(items, grain, &ctx, [](void* raw, int64_t begin, int64_t end) {
    const Context& c = *static_cast<const Context*>(raw);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t sample = item / c.g.chunks;
      const int64_t offset = (item % c.g.chunks) * c.g.chunk;
      const int64_t rest = c.g.per_sample - offset;
      c.body(item, sample, offset, rest < c.g.chunk ? rest : c.g.chunk);
    }
  });
}

// lanes[l] += tile[q] for q = l (mod kLanes), in increasing q.
template <typename A>
void add_to_lanes(const A* __restrict tile, int64_t n, A* __restrict lanes) {
  int64_t q = 0;
  for (; q + kLanes <= n; q += kLanes) {
    for (int l = 0; l < kLanes; ++l) lanes[l] += tile[q + l];
  }
  for (int l = 0; q + l < n; ++l) lanes[l] += tile[q + l];
}

template <typename A>
A sum_lanes(A* lanes) {
  for (int width = kLanes / 2; width > 0; width /= 2) {
    for (int l = 0; l < width; ++l) lanes[l] += lanes[l + width];
  }
  return lanes[0];
}

// Pairwise sum of v[0..n) in a fixed order.
template <typename A>
A pairwise_sum(const A* v, int64_t n) {
  if (n <= 8) {
    A total = A(0);
    for (int64_t i = 0; i < n; ++i) total += v[i];
    return total;
  }
  const int64_t half = n / 2;
  return pairwise_sum(v, half) + pairwise_sum(v + half, n - half);
}

// One chunk of the forward (or inverse): writes out[0..n) and returns sum(s).
template <bool Inverse, typename T, typename A, typename Act>
A coupling_chunk(const Act act, const T* __restrict in, const T* __restrict r, const T* __restrict t, T* __restrict out,
                 int64_t n) {
  A lanes[kLanes] = {};
  A tile[kTile];
  for (int64_t base = 0; base < n; base += kTile) {
    const int64_t m = n - base < kTile ? n - base : kTile;
    const T* __restrict in_b = in + base;
    const T* __restrict r_b = r + base;
    const T* __restrict t_b = t + base;
    T* __restrict out_b = out + base;
    for (int64_t i = 0; i < m; ++i) {
      A s;
      const A v = Inverse ? inverse_element(act, A(in_b[i]), A(r_b[i]), A(t_b[i]), s)
                          : forward_element(act, A(in_b[i]), A(r_b[i]), A(t_b[i]), s);
      out_b[i] = T(v);
      tile[i] = s;
    }
    add_to_lanes(tile, m, lanes);
  }
  return sum_lanes(lanes);
}

template <typename A, typename M, typename Body>
void with_math(ClampFn fn, double clamp, const Body& body) {
  if (fn == ClampFn::kTanh) {
    body(Activation<ClampFn::kTanh, A, M>::make(clamp));
  } else {
    body(Activation<ClampFn::kAtan, A, M>::make(clamp));
  }
}

// Calls body(act) with the activation of fn in accumulation type A: float runs
// the vectorisable PolyMath wherever |s| <= clamp keeps its exp in range (any
// sensible clamp); double, and float with a huge clamp, run libm.
template <typename A, typename Body>
void with_activation(ClampFn fn, double clamp, const Body& body) {
  if constexpr (std::is_same<A, float>::value) {
    if (clamp <= PolyMath::kMaxExp) return with_math<A, PolyMath>(fn, clamp, body);
  }
  with_math<A, LibMath>(fn, clamp, body);
}

// Forward (inverse = false) or inverse of the whole batch: out, one partial per
// (sample, chunk) item, then logdet[b] = +-(the pairwise sum of b's partials).
template <typename T, typename A>
void run_coupling(Samples<const T> in, Samples<const T> r, Samples<const T> t, T* out, A* partials, A* logdet,
                  const Layout& g, ClampFn fn, double clamp, bool inverse, cpu::ParallelFor parallel) {
  with_activation<A>(fn, clamp, [&](const auto act) {
    for_each_chunk(parallel, g, [&](int64_t item, int64_t b, int64_t offset, int64_t n) {
      T* out_c = out + b * g.per_sample + offset;
      partials[item] =
          inverse ? coupling_chunk<true, T, A>(act, in.at(b, offset), r.at(b, offset), t.at(b, offset), out_c, n)
                  : coupling_chunk<false, T, A>(act, in.at(b, offset), r.at(b, offset), t.at(b, offset), out_c, n);
    });
  });
  for (int64_t b = 0; b < g.batch; ++b) {
    const A total = pairwise_sum(partials + b * g.chunks, g.chunks);
    logdet[b] = inverse ? -total : total;
  }
}

// One chunk of the forward's gradients: gx and gr from gy, the sample's gl, x and r.
template <typename T, typename A, typename Act>
void forward_grad_chunk(const Act act, const T* __restrict gy, A gl, const T* __restrict x, const T* __restrict r,
                        T* __restrict gx, T* __restrict gr, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const ForwardGrads<A> d = forward_grad_element(act, A(gy[i]), gl, A(x[i]), A(r[i]));
    gx[i] = T(d.x);
    gr[i] = T(d.r);
  }
}

// One chunk of the inverse's gradients: gy, gr and gt from gx, the sample's gl,
// the inverse's output x and r.
template <typename T, typename A, typename Act>
void inverse_grad_chunk(const Act act, const T* __restrict gx, A gl, const T* __restrict x, const T* __restrict r,
                        T* __restrict gy, T* __restrict gr, T* __restrict gt, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const InverseGrads<A> d = inverse_grad_element(act, A(gx[i]), gl, A(x[i]), A(r[i]));
    gy[i] = T(d.y);
    gr[i] = T(d.r);
    gt[i] = T(d.t);
  }
}

template <typename T, typename A>
void run_forward_grad(Samples<const T> gy, const A* gl, Samples<const T> x, Samples<const T> r, T* gx, T* gr,
                      const Layout& g, ClampFn fn, double clamp, cpu::ParallelFor parallel) {
  with_activation<A>(fn, clamp, [&](const auto act) {
    for_each_chunk(parallel, g, [&](int64_t, int64_t b, int64_t offset, int64_t n) {
      const int64_t first = b * g.per_sample + offset;
      forward_grad_chunk<T, A>(act, gy.at(b, offset), gl[b], x.at(b, offset), r.at(b, offset), gx + first, gr + first,
                               n);
    });
  });
}

template <typename T, typename A>
void run_inverse_grad(Samples<const T> gx, const A* gl, Samples<const T> x, Samples<const T> r, T* gy, T* gr, T* gt,
                      const Layout& g, ClampFn fn, double clamp, cpu::ParallelFor parallel) {
  with_activation<A>(fn, clamp, [&](const auto act) {
    for_each_chunk(parallel, g, [&](int64_t, int64_t b, int64_t offset, int64_t n) {
      const int64_t first = b * g.per_sample + offset;
      inverse_grad_chunk<T, A>(act, gx.at(b, offset), gl[b], x.at(b, offset), r.at(b, offset), gy + first, gr + first,
                               gt + first, n);
    });
  });
}

}  // namespace SF_CPU_VARIANT
}  // namespace coupling
}  // namespace stegafast
