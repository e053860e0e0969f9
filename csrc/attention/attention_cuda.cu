// CUDA kernels of the windowed attention, float32 accumulation for every dtype
// (float64 in float64), no tensor cores. A warp owns query rows and its 32 lanes
// take the 32 keys of a tile at once, so a row's scores, its softmax reductions
// (warp shuffles) and its output (each lane 4 of the <= 128 channels) never
// leave the warp:
//
//   forward_kernel    CTA = (window, head, 8 query rows); key tiles of 32 staged in
//                     shared memory; online softmax (running max and sum, output
//                     rescaled per tile), writes out and the rows' lse.
//   grad_q_kernel     CTA = (window group, head, 8 query rows): p recomputed from
//                     lse and dp = dout v^T, in two passes over the key tiles: D =
//                     rowsum(p dp) (kept for the next kernel), then ds = p (dp - D),
//                     dq, and ds added to the group's dbias partial, which only this
//                     CTA touches (no atomics: deterministic).
//   grad_kv_kernel    CTA = (window, head, 8 keys), lanes over 32 query rows: dk, dv.
//   sum_partials_kernel  dbias = the partials added in group order.
//
// The per-warp row loops are unrolled, so that row state (running max, sums,
// output and gradient accumulators) stays in registers.
// Shared memory holds float (double) copies of the tiles; rows that lanes read
// across are padded to d + 1 values, so the 32 lanes hit 32 banks.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "attention_ops.h"

namespace stegafast {
namespace attention {
namespace {

constexpr int kWarp = 32;
constexpr int kWarps = 4;
constexpr int kThreads = kWarp * kWarps;
constexpr int kRowsPerWarp = 2;
constexpr int kRows = kWarps * kRowsPerWarp;  // query rows (or keys) per CTA
constexpr int kKeys = kWarp;                  // keys (or query rows) per tile
constexpr int kChunks = kMaxHeadDim / kWarp;  // channels per lane
constexpr unsigned kFull = 0xffffffffu;

__device__ __forceinline__ float exp_of(float v) { return expf(v); }
__device__ __forceinline__ double exp_of(double v) { return exp(v); }

template <typename A>
__device__ __forceinline__ A warp_max(A v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const A other = __shfl_xor_sync(kFull, v, offset);
    v = other > v ? other : v;
  }
  return v;
}

template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFull, v, offset);
  return v;
}

// rows [first, first + count) of an n x d block of src (zeros past row n) into
// dst, rows of ld values; the whole CTA takes part.
template <typename T, typename A>
__device__ void load_rows(const T* __restrict__ src, int first, int count, int n, int d, A* dst, int ld) {
  for (int e = threadIdx.x; e < count * d; e += kThreads) {
    const int r = e / d, c = e % d, row = first + r;
    dst[r * ld + c] = row < n ? static_cast<A>(src[int64_t(row) * d + c]) : A(0);
  }
}

// a . b over d values of two rows in shared memory.
template <typename A>
__device__ __forceinline__ A dot(const A* a, const A* b, int d) {
  A total = A(0);
  for (int c = 0; c < d; ++c) total += a[c] * b[c];
  return total;
}

// The score of query i and key j: scale q.k + bias + mask (the dot product given).
template <typename T, typename A>
__device__ __forceinline__ A score(A qk, A scale, const T* bias, const T* mask, int i, int j, int n) {
  A s = qk * scale;
  if (bias != nullptr) s += static_cast<A>(bias[i * n + j]);
  if (mask != nullptr) s += static_cast<A>(mask[i * n + j]);
  return s;
}

template <typename T>
__device__ __forceinline__ const T* bias_of(const Inputs<T>& in, const Geometry& g, int64_t head) {
  return in.bias != nullptr ? in.bias + head * g.n * g.n : nullptr;
}

template <typename T>
__device__ __forceinline__ const T* mask_of(const Inputs<T>& in, const Geometry& g, int64_t window) {
  return in.mask != nullptr ? in.mask + g.mask_of(window) * g.n * g.n : nullptr;
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(Inputs<T> in, T* __restrict__ out, A* __restrict__ lse, A scale, Geometry g) {
  extern __shared__ __align__(16) unsigned char shared[];
  const int n = int(g.n), d = int(g.d), row0 = blockIdx.y * kRows;
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  A* qs = reinterpret_cast<A*>(shared);  // kRows x d
  A* ks = qs + kRows * d;                // kKeys x (d + 1)
  A* vs = ks + kKeys * (d + 1);          // kKeys x d
  const int64_t item = blockIdx.x, window = item / g.heads, head = item % g.heads;
  const int64_t base = item * g.n * g.d;
  const T* bias = bias_of(in, g, head);
  const T* mask = mask_of(in, g, window);
  load_rows(in.q + base, row0, kRows, n, d, qs, d);

  A m[kRowsPerWarp], l[kRowsPerWarp], o[kRowsPerWarp][kChunks];
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    m[rr] = minus_infinity<A>();
    l[rr] = A(0);
    for (int t = 0; t < kChunks; ++t) o[rr][t] = A(0);
  }
  for (int j0 = 0; j0 < n; j0 += kKeys) {
    const int tile = min(kKeys, n - j0);
    __syncthreads();  // the previous tile is consumed
    load_rows(in.k + base, j0, kKeys, n, d, ks, d + 1);
    load_rows(in.v + base, j0, kKeys, n, d, vs, d);
    __syncthreads();
    const int j = j0 + lane;
#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int r = warp * kRowsPerWarp + rr, i = row0 + r;
      if (i >= n) continue;  // the same for the whole warp
      const A s = lane < tile ? score(dot(qs + r * d, ks + lane * (d + 1), d), scale, bias, mask, i, j, n)
                              : minus_infinity<A>();
      const A tile_max = warp_max(s);
      const A m_new = tile_max > m[rr] ? tile_max : m[rr];
      if (m_new == minus_infinity<A>()) continue;  // every key so far masked (warp-uniform)
      const A correction = exp_of(m[rr] - m_new);  // 0 while m was -inf
      const A p = exp_of(s - m_new);
      l[rr] = l[rr] * correction + warp_sum(p);
      for (int t = 0; t < kChunks; ++t) o[rr][t] *= correction;
      for (int jj = 0; jj < tile; ++jj) {
        const A pj = __shfl_sync(kFull, p, jj);
        for (int t = 0; t < kChunks; ++t) {
          const int c = lane + t * kWarp;
          if (c < d) o[rr][t] += pj * vs[jj * d + c];
        }
      }
      m[rr] = m_new;
    }
  }
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int i = row0 + warp * kRowsPerWarp + rr;
    if (i >= n) continue;
    const A inv = l[rr] > A(0) ? A(1) / l[rr] : A(0);  // a fully masked row: out = 0
    for (int t = 0; t < kChunks; ++t) {
      const int c = lane + t * kWarp;
      if (c < d) out[base + int64_t(i) * d + c] = static_cast<T>(o[rr][t] * inv);
    }
    if (lane == 0) lse[item * g.n + i] = row_lse(m[rr], l[rr]);
  }
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads)
    grad_q_kernel(Inputs<T> in, Grads<T, A> gr, A* __restrict__ delta, A* __restrict__ partials, BiasGroups groups,
                  A scale, Geometry g) {
  extern __shared__ __align__(16) unsigned char shared[];
  const int n = int(g.n), d = int(g.d), row0 = blockIdx.y * kRows;
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  A* qs = reinterpret_cast<A*>(shared);  // kRows x d
  A* gos = qs + kRows * d;               // kRows x d
  A* ks = gos + kRows * d;               // kKeys x (d + 1)
  A* vs = ks + kKeys * (d + 1);          // kKeys x (d + 1)
  const int64_t group = blockIdx.x / g.heads, head = blockIdx.x % g.heads;
  const int64_t first = group * groups.size, last = min(first + groups.size, g.windows);
  const T* bias = bias_of(in, g, head);
  A* partial = partials != nullptr ? partials + blockIdx.x * g.n * g.n : nullptr;

  for (int64_t window = first; window < last; ++window) {
    const int64_t item = window * g.heads + head, base = item * g.n * g.d;
    const T* mask = mask_of(in, g, window);
    __syncthreads();  // the previous window is done with qs and gos
    load_rows(in.q + base, row0, kRows, n, d, qs, d);
    load_rows(gr.gout + base, row0, kRows, n, d, gos, d);
    A lse_row[kRowsPerWarp], delta_row[kRowsPerWarp], dq[kRowsPerWarp][kChunks];
#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int i = row0 + warp * kRowsPerWarp + rr;
      lse_row[rr] = i < n ? gr.lse[item * g.n + i] : minus_infinity<A>();
      delta_row[rr] = A(0);
      for (int t = 0; t < kChunks; ++t) dq[rr][t] = A(0);
    }
    // pass 1 sums D = rowsum(p * dp), pass 2 forms ds = p (dp - D), dq and the dbias partial
    for (int pass = 0; pass < 2; ++pass) {
      for (int j0 = 0; j0 < n; j0 += kKeys) {
        const int tile = min(kKeys, n - j0);
        __syncthreads();
        load_rows(in.k + base, j0, kKeys, n, d, ks, d + 1);
        load_rows(in.v + base, j0, kKeys, n, d, vs, d + 1);
        __syncthreads();
        const int j = j0 + lane;
#pragma unroll
        for (int rr = 0; rr < kRowsPerWarp; ++rr) {
          const int r = warp * kRowsPerWarp + rr, i = row0 + r;
          if (i >= n || lse_row[rr] == minus_infinity<A>()) continue;  // warp-uniform; a masked row has ds = 0
          A p = A(0), dp = A(0);
          if (lane < tile) {
            p = exp_of(score(dot(qs + r * d, ks + lane * (d + 1), d), scale, bias, mask, i, j, n) - lse_row[rr]);
            dp = dot(gos + r * d, vs + lane * (d + 1), d);
          }
          if (pass == 0) {
            delta_row[rr] += warp_sum(p * dp);
            continue;
          }
          const A ds = p * (dp - delta_row[rr]);
          if (partial != nullptr && lane < tile) partial[i * n + j] += ds;
          for (int jj = 0; jj < tile; ++jj) {
            const A dsj = __shfl_sync(kFull, ds, jj);
            for (int t = 0; t < kChunks; ++t) {
              const int c = lane + t * kWarp;
              if (c < d) dq[rr][t] += dsj * ks[jj * (d + 1) + c];
            }
          }
        }
      }
    }
#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int i = row0 + warp * kRowsPerWarp + rr;
      if (i < n && lane == 0) delta[item * g.n + i] = delta_row[rr];
    }
#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int i = row0 + warp * kRowsPerWarp + rr;
      if (i >= n) continue;
      for (int t = 0; t < kChunks; ++t) {
        const int c = lane + t * kWarp;
        if (c < d) gr.gq[base + int64_t(i) * d + c] = static_cast<T>(scale * dq[rr][t]);
      }
    }
  }
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads)
    grad_kv_kernel(Inputs<T> in, Grads<T, A> gr, const A* __restrict__ delta, A scale, Geometry g) {
  extern __shared__ __align__(16) unsigned char shared[];
  const int n = int(g.n), d = int(g.d), key0 = blockIdx.y * kRows;
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  A* ks = reinterpret_cast<A*>(shared);  // kRows x d: this CTA's keys
  A* vs = ks + kRows * d;                // kRows x d
  A* qs = vs + kRows * d;                // kKeys x (d + 1): a tile of query rows
  A* gos = qs + kKeys * (d + 1);         // kKeys x (d + 1)
  const int64_t item = blockIdx.x, window = item / g.heads, head = item % g.heads;
  const int64_t base = item * g.n * g.d;
  const T* bias = bias_of(in, g, head);
  const T* mask = mask_of(in, g, window);
  load_rows(in.k + base, key0, kRows, n, d, ks, d);
  load_rows(in.v + base, key0, kRows, n, d, vs, d);

  A dk[kRowsPerWarp][kChunks], dv[kRowsPerWarp][kChunks];
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    for (int t = 0; t < kChunks; ++t) dk[rr][t] = dv[rr][t] = A(0);
  }
  for (int i0 = 0; i0 < n; i0 += kKeys) {
    const int tile = min(kKeys, n - i0);
    __syncthreads();
    load_rows(in.q + base, i0, kKeys, n, d, qs, d + 1);
    load_rows(gr.gout + base, i0, kKeys, n, d, gos, d + 1);
    __syncthreads();
    const int i = i0 + lane;
    const A lse_i = lane < tile ? gr.lse[item * g.n + i] : minus_infinity<A>();
    const A delta_i = lane < tile ? delta[item * g.n + i] : A(0);
#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int r = warp * kRowsPerWarp + rr, j = key0 + r;
      if (j >= n) continue;  // warp-uniform
      A p = A(0), ds = A(0);
      if (lse_i != minus_infinity<A>()) {  // past the tile or a fully masked row: p = 0
        const A s = score(dot(qs + lane * (d + 1), ks + r * d, d), scale, bias, mask, i, j, n);
        p = exp_of(s - lse_i);
        ds = p * (dot(gos + lane * (d + 1), vs + r * d, d) - delta_i);
      }
      for (int ii = 0; ii < tile; ++ii) {
        const A pi = __shfl_sync(kFull, p, ii), dsi = __shfl_sync(kFull, ds, ii);
        for (int t = 0; t < kChunks; ++t) {
          const int c = lane + t * kWarp;
          if (c < d) {
            dv[rr][t] += pi * gos[ii * (d + 1) + c];
            dk[rr][t] += dsi * qs[ii * (d + 1) + c];
          }
        }
      }
    }
  }
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int j = key0 + warp * kRowsPerWarp + rr;
    if (j >= n) continue;
    for (int t = 0; t < kChunks; ++t) {
      const int c = lane + t * kWarp;
      if (c < d) {
        gr.gk[base + int64_t(j) * d + c] = static_cast<T>(scale * dk[rr][t]);
        gr.gv[base + int64_t(j) * d + c] = static_cast<T>(dv[rr][t]);
      }
    }
  }
}

template <typename T, typename A>
__global__ void sum_partials_kernel(const A* __restrict__ partials, int64_t count, int64_t size, T* __restrict__ out) {
  SF_GRID_STRIDE_LOOP(e, size) {
    A total = A(0);
    for (int64_t group = 0; group < count; ++group) total += partials[group * size + e];
    out[e] = static_cast<T>(total);
  }
}

// CTAs of (window, head) items, or of (group, head) pairs, by blocks of kRows rows.
inline dim3 grid_of(int64_t ctas, int64_t rows) {
  return dim3(cuda::block_per_item(ctas, "window_attention"), static_cast<unsigned>((rows + kRows - 1) / kRows));
}

struct CudaKernels {
  using Guard = cuda::DeviceGuard;

  template <typename T, typename A>
  static void forward(const Inputs<T>& in, T* out, A* lse, A scale, const Geometry& g) {
    const size_t bytes = sizeof(A) * size_t(kRows * g.d + kKeys * (g.d + 1) + kKeys * g.d);
    cuda::launch_shared(forward_kernel<T, A>, grid_of(g.items(), g.n), kThreads, bytes, in, out, lse, scale, g);
  }

  template <typename T, typename A>
  static void backward(const Inputs<T>& in, const Grads<T, A>& gr, A scale, const Geometry& g,
                       const at::TensorOptions& scratch) {
    // without a bias every window is its own group: the most CTAs
    const BiasGroups groups = gr.gbias != nullptr ? bias_groups(g) : BiasGroups{g.windows, 1};
    at::Tensor delta = at::empty({g.items() * g.n}, scratch);
    at::Tensor partials = gr.gbias != nullptr ? at::zeros({groups.count * g.heads * g.n * g.n}, scratch) : at::Tensor();
    A* partial_data = partials.defined() ? partials.mutable_data_ptr<A>() : nullptr;

    // both kernels hold four tiles: two of kRows rows, two of kKeys padded rows
    const size_t bytes = sizeof(A) * size_t(2 * kRows * g.d + 2 * kKeys * (g.d + 1));
    cuda::launch_shared(grad_q_kernel<T, A>, grid_of(groups.count * g.heads, g.n), kThreads, bytes, in, gr,
                        delta.mutable_data_ptr<A>(), partial_data, groups, scale, g);
    cuda::launch_shared(grad_kv_kernel<T, A>, grid_of(g.items(), g.n), kThreads, bytes, in, gr,
                        delta.const_data_ptr<A>(), scale, g);
    if (partial_data != nullptr) {
      cuda::launch_grid_stride(sum_partials_kernel<T, A>, g.heads * g.n * g.n, cuda::kThreadsPerBlock, partial_data,
                               groups.count, g.heads * g.n * g.n, gr.gbias);
    }
  }
};

}  // namespace
}  // namespace attention
}  // namespace stegafast

TORCH_LIBRARY_IMPL(stegafast, CUDA, m) { SF_REGISTER_ATTENTION_OPS(m, stegafast::attention::CudaKernels); }
