// CUDA kernels of the windowed attention, float32 accumulation for every dtype
// (float64 in float64). float16 and bfloat16 run on tensor cores (the
// tensor_core_* kernels, below, where they are described); float32, float64,
// and the half types where those cannot run, use the kernels here, which use no
// tensor cores. A warp owns query rows and its 32 lanes
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
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

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

// --- tensor cores: float16 and bfloat16 -----------------------------------------------------------
//
// Three kernels on wmma 16 x 16 x 16 fragments with float accumulators. Each
// stages one (window, head) item's two shared operands in shared memory as the
// half type, padded to multiples of 16 rows and columns with zeros, and each
// warp then takes strips of 16 rows in turn. N <= 256, so a strip's whole rows
// of scores fit in a warp's strip buffer: each row is handled exactly once (no
// online rescaling), in float32, and whatever a row turns into (probabilities,
// ds) is written back over the row as the half type for the next product.
//
//   tensor_core_forward_kernel  CTA = (window, head), K and V staged; a strip of
//       queries: S = Q K^T; s = scale S + bias + mask (-inf for padded keys), row
//       max, sum, lse; P = exp(s - max) / sum; O = P V.
//   tensor_core_grad_q_kernel   CTA = (window group, head) as grad_q_kernel, K and
//       V staged: S = Q K^T, dP = dO V^T; p = exp(s - lse), D = rowsum(p dp)
//       (kept for the next kernel), ds = p (dp - D) added to the group's dbias
//       partial (each (i, j) owned by one warp: deterministic); dQ = scale ds K.
//   tensor_core_grad_kv_kernel  CTA = (window, head), Q and dO staged; a strip of
//       keys: S^T = K Q^T, dP^T = V dO^T; p, ds as above; dV = P^T dO, dK =
//       scale ds^T Q.
// A padded row or key (past N) is treated as fully masked and never written.
// Shared memory: the two staged operands (Np rows of Dp + 8 halves) and one or
// two strip buffers per warp (16 rows of max(Np, Dp) + 4 floats); the pads put
// successive rows 16 bytes apart in the 128-byte bank period. Only sm_80 and
// later run them (bfloat16 fragments need sm_80); the host falls back to the
// kernels above elsewhere, or where the CTA's shared memory exceeds the limit.

constexpr int kTile = 16;                         // the wmma shape: 16 x 16 x 16
constexpr int kTileWarps = 4;                     // the most warps of a tensor-core CTA
constexpr int kDimTiles = kMaxHeadDim / kTile;    // most 16-column tiles of a head
constexpr int kKeysPerLane = kMaxTokens / kWarp;  // a row's scores per lane
constexpr int kHalfPad = 8, kFloatPad = 4;        // values appended to each staged row
constexpr int kChunk = 8;                         // 16-bit values per 16-byte load

template <typename T>
struct TensorCoreType;  // the CUDA type with T's bits, for the wmma fragments
template <>
struct TensorCoreType<c10::Half> {
  using type = __half;
};
template <>
struct TensorCoreType<c10::BFloat16> {
  using type = __nv_bfloat16;
};

template <typename T>
constexpr bool kTensorCoreType = std::is_same_v<T, c10::Half> || std::is_same_v<T, c10::BFloat16>;

__device__ __forceinline__ void store_as(__half* dst, float v) { *dst = __float2half_rn(v); }
__device__ __forceinline__ void store_as(__nv_bfloat16* dst, float v) { *dst = __float2bfloat16_rn(v); }

// Where a CTA's shared memory goes, for the host (its size) and the kernels.
struct TileLayout {
  int np, dp;     // N and d rounded up to 16
  int ld_staged;  // halves per staged row (the two operands and a strip of either)
  int ld_strip;   // floats per row of a strip buffer
  int warps;
  int buffers;  // strip buffers per warp

  SF_HD static TileLayout of(int n, int d, int warps, int buffers) {
    const int np = (n + kTile - 1) / kTile * kTile, dp = (d + kTile - 1) / kTile * kTile;
    return {np, dp, dp + kHalfPad, (np > dp ? np : dp) + kFloatPad, warps, buffers};
  }
  SF_HD int strips() const { return np / kTile; }
  SF_HD int64_t staged_halves() const { return int64_t(np) * ld_staged; }
  SF_HD int64_t strip_floats() const { return int64_t(kTile) * ld_strip; }
  SF_HD size_t bytes() const {
    return sizeof(uint16_t) * 2 * staged_halves() + sizeof(float) * warps * buffers * strip_floats();
  }
  // warp's strip buffer `b` past the two staged operands at `shared`
  __device__ float* strip(unsigned char* shared, int warp, int b) const {
    return reinterpret_cast<float*>(shared + sizeof(uint16_t) * 2 * staged_halves()) +
           (int64_t(warp) * buffers + b) * strip_floats();
  }
};

// Rows [first, first + rows) of an n x d block of 16-bit values into dst (rows of
// ld values, cols of them filled: zeros past row n and column d), by threads
// `thread`, `thread + threads`, ... With `chunks` (d a multiple of 8, src 16-byte
// aligned) it moves 8 values per load; dst rows are 16-byte aligned either way.
__device__ void stage_rows(const uint16_t* __restrict__ src, int first, int rows, int n, int d, int cols, uint16_t* dst,
                           int ld, int thread, int threads, bool chunks) {
  if (chunks) {
    const int per_row = cols / kChunk;
    for (int e = thread; e < rows * per_row; e += threads) {
      const int r = e / per_row, c = e % per_row * kChunk, row = first + r;
      uint4 value = make_uint4(0, 0, 0, 0);
      if (row < n && c < d) value = *reinterpret_cast<const uint4*>(src + int64_t(row) * d + c);
      *reinterpret_cast<uint4*>(dst + r * ld + c) = value;
    }
    return;
  }
  for (int e = thread; e < rows * cols; e += threads) {
    const int r = e / cols, c = e % cols, row = first + r;
    dst[r * ld + c] = row < n && c < d ? src[int64_t(row) * d + c] : uint16_t(0);
  }
}

template <typename T>
__device__ __forceinline__ const uint16_t* bits_of(const T* p) {
  return reinterpret_cast<const uint16_t*>(p);
}

// The whole CTA stages an item's Np x Dp operand (rows of src past n: zeros).
template <typename T, typename H>
__device__ __forceinline__ void stage_operand(const T* src, const TileLayout& lay, int n, int d, H* dst, bool chunks) {
  stage_rows(bits_of(src), 0, lay.np, n, d, lay.dp, reinterpret_cast<uint16_t*>(dst), lay.ld_staged, threadIdx.x,
             blockDim.x, chunks);
}

// One warp stages the 16 rows from row0 of src into a strip buffer as halves.
template <typename T>
__device__ __forceinline__ void stage_strip(const T* src, const TileLayout& lay, int row0, int n, int d, float* strip,
                                            int lane, bool chunks) {
  stage_rows(bits_of(src), row0, kTile, n, d, lay.dp, reinterpret_cast<uint16_t*>(strip), lay.ld_staged, lane, kWarp,
             chunks);
}

namespace wmma = nvcuda::wmma;
template <typename H>
using RowFragment = wmma::fragment<wmma::matrix_a, kTile, kTile, kTile, H, wmma::row_major>;  // a strip's tile
template <typename H>
using ColumnFragment = wmma::fragment<wmma::matrix_b, kTile, kTile, kTile, H, wmma::col_major>;  // rows^T
template <typename H>
using OperandFragment = wmma::fragment<wmma::matrix_b, kTile, kTile, kTile, H, wmma::row_major>;
using Accumulator = wmma::fragment<wmma::accumulator, kTile, kTile, kTile, float>;

// The strip's tiles of 16 columns as fragments (the loops over kDimTiles are
// unrolled, guarded by `tiles`, so that fragment arrays stay in registers).
template <typename H>
__device__ __forceinline__ void load_strip(RowFragment<H> (&frags)[kDimTiles], const float* strip, int ld, int tiles) {
#pragma unroll
  for (int t = 0; t < kDimTiles; ++t) {
    if (t < tiles) wmma::load_matrix_sync(frags[t], reinterpret_cast<const H*>(strip) + t * kTile, ld);
  }
}

// acc = strip rows^T: the 16 x 16 products of a strip (as fragments) and 16
// staged rows (ld halves each), over `tiles` tiles of 16 columns.
template <typename H>
__device__ __forceinline__ void times_transposed(Accumulator& acc, const RowFragment<H> (&a)[kDimTiles], const H* rows,
                                                 int ld, int tiles) {
  wmma::fill_fragment(acc, 0.0f);
#pragma unroll
  for (int t = 0; t < kDimTiles; ++t) {
    if (t >= tiles) continue;
    ColumnFragment<H> b;
    wmma::load_matrix_sync(b, rows + t * kTile, ld);
    wmma::mma_sync(acc, a[t], b, acc);
  }
}

// acc[t] = a b for t < tiles: a the 16 x np halves over a strip buffer (ld_a
// halves a row), b the staged np x dp operand (ld_b), acc[t] its columns 16 t...
template <typename H>
__device__ __forceinline__ void times_operand(Accumulator (&acc)[kDimTiles], const float* strip, int ld_a, const H* b,
                                              int ld_b, int np, int tiles) {
#pragma unroll
  for (int t = 0; t < kDimTiles; ++t) {
    if (t < tiles) wmma::fill_fragment(acc[t], 0.0f);
  }
  for (int k0 = 0; k0 < np; k0 += kTile) {
    RowFragment<H> a;
    wmma::load_matrix_sync(a, reinterpret_cast<const H*>(strip) + k0, ld_a);
#pragma unroll
    for (int t = 0; t < kDimTiles; ++t) {
      if (t >= tiles) continue;
      OperandFragment<H> bf;
      wmma::load_matrix_sync(bf, b + int64_t(k0) * ld_b + t * kTile, ld_b);
      wmma::mma_sync(acc[t], a, bf, acc[t]);
    }
  }
}

// The accumulators into a strip buffer as floats, then factor times its 16 x d
// values into rows row0.. of dst (n x d, rows past n skipped). The warp's
// __syncwarp()s bracket the buffer's reuse.
template <typename H>
__device__ void write_strip(const Accumulator (&acc)[kDimTiles], float* strip, int ld, int tiles, int row0, int n,
                            int d, float factor, H* dst, int lane) {
  __syncwarp();  // the warp is done reading the buffer
#pragma unroll
  for (int t = 0; t < kDimTiles; ++t) {
    if (t < tiles) wmma::store_matrix_sync(strip + t * kTile, acc[t], ld, wmma::mem_row_major);
  }
  __syncwarp();
  for (int e = lane; e < kTile * d; e += kWarp) {
    const int r = e / d, c = e % d, i = row0 + r;
    if (i < n) store_as(dst + int64_t(i) * d + c, factor * strip[r * ld + c]);
  }
  __syncwarp();  // the buffer is free again
}

// Forward step 3 for the strip of rows [row0, row0 + 16): the scores in `strip`
// (ld floats a row) become probabilities of type H over the same bytes (2 ld
// halves a row: row r's halves lie inside row r's floats, and the warp reads a
// whole row before it writes it), and the real rows' lse are written.
template <typename T, typename H>
__device__ void softmax_rows(float* strip, int ld, int row0, int np, float scale, const T* bias, const T* mask,
                             float* lse, int n, int lane) {
  H* probs = reinterpret_cast<H*>(strip);
  for (int r = 0; r < kTile; ++r) {
    const int i = row0 + r;
    float s[kKeysPerLane];
    float m = minus_infinity<float>();
#pragma unroll
    for (int t = 0; t < kKeysPerLane; ++t) {
      const int j = lane + t * kWarp;
      s[t] = i < n && j < n ? score(strip[r * ld + j], scale, bias, mask, i, j, n) : minus_infinity<float>();
      m = fmaxf(m, s[t]);
    }
    m = warp_max(m);
    float l = 0.0f;
#pragma unroll
    for (int t = 0; t < kKeysPerLane; ++t) {
      s[t] = m == minus_infinity<float>() ? 0.0f : exp_of(s[t] - m);  // a fully masked (or padded) row: p = 0
      l += s[t];
    }
    l = warp_sum(l);
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    __syncwarp();  // every lane has read row r before the row is overwritten
#pragma unroll
    for (int t = 0; t < kKeysPerLane; ++t) {
      const int j = lane + t * kWarp;
      if (j < np) store_as(probs + r * 2 * ld + j, s[t] * inv);
    }
    if (lane == 0 && i < n) lse[i] = row_lse(m, l);
  }
}

template <typename T>
__global__ void __launch_bounds__(kTileWarps* kWarp)
    tensor_core_forward_kernel(Inputs<T> in, T* __restrict__ out, float* __restrict__ lse, float scale, Geometry g,
                               bool chunks) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // never launched: the host takes this kernel on sm_80 and later only
#else
  using H = typename TensorCoreType<T>::type;
  extern __shared__ __align__(128) unsigned char tile_shared[];
  const int n = int(g.n), d = int(g.d);
  const TileLayout lay = TileLayout::of(n, d, int(blockDim.x) / kWarp, 1);
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp, tiles = lay.dp / kTile;
  H* ks = reinterpret_cast<H*>(tile_shared);
  H* vs = ks + lay.staged_halves();
  float* strip = lay.strip(tile_shared, warp, 0);
  const int64_t item = blockIdx.x, window = item / g.heads, head = item % g.heads;
  const int64_t base = item * g.n * g.d;
  const T* bias = bias_of(in, g, head);
  const T* mask = mask_of(in, g, window);
  stage_operand(in.k + base, lay, n, d, ks, chunks);
  stage_operand(in.v + base, lay, n, d, vs, chunks);
  __syncthreads();

  for (int row0 = warp * kTile; row0 < lay.np; row0 += lay.warps * kTile) {  // warp-uniform
    // 1. the strip's Q as fragments, so the buffer is free for the scores
    stage_strip(in.q + base, lay, row0, n, d, strip, lane, chunks);
    __syncwarp();
    RowFragment<H> qf[kDimTiles];
    load_strip(qf, strip, lay.ld_staged, tiles);
    __syncwarp();
    // 2. S = Q K^T, 16 keys at a time
    for (int key0 = 0; key0 < lay.np; key0 += kTile) {
      Accumulator s;
      times_transposed(s, qf, ks + key0 * lay.ld_staged, lay.ld_staged, tiles);
      wmma::store_matrix_sync(strip + key0, s, lay.ld_strip, wmma::mem_row_major);
    }
    __syncwarp();
    // 3. the rows' softmax, probabilities over the scores
    softmax_rows<T, H>(strip, lay.ld_strip, row0, lay.np, scale, bias, mask, lse + item * g.n, n, lane);
    __syncwarp();
    // 4. O = P V
    Accumulator o[kDimTiles];
    times_operand(o, strip, 2 * lay.ld_strip, vs, lay.ld_staged, lay.np, tiles);
    write_strip(o, strip, lay.ld_strip, tiles, row0, n, d, 1.0f, reinterpret_cast<H*>(out + base), lane);
  }
#endif
}

// Backward of the strip of query rows from row0 (grad_q): over the scores in
// `s_strip` and dp in `dp_strip` (ld floats a row), p = exp(s - lse), D =
// rowsum(p dp) into delta, ds = p (dp - D) written over s_strip as halves (as
// softmax_rows does) and added to the dbias partial (nullptr: none).
template <typename T, typename H>
__device__ void grad_rows(float* s_strip, const float* dp_strip, int ld, int row0, int np, float scale, const T* bias,
                          const T* mask, const float* lse, float* delta, float* partial, int n, int lane) {
  H* ds_out = reinterpret_cast<H*>(s_strip);
  for (int r = 0; r < kTile; ++r) {
    const int i = row0 + r;
    const float lse_i = i < n ? lse[i] : minus_infinity<float>();
    float p[kKeysPerLane], dp[kKeysPerLane];
    float sum = 0.0f;
#pragma unroll
    for (int t = 0; t < kKeysPerLane; ++t) {
      const int j = lane + t * kWarp;
      p[t] = dp[t] = 0.0f;
      if (lse_i != minus_infinity<float>() && j < n) {  // a padded or fully masked row: p = 0
        p[t] = exp_of(score(s_strip[r * ld + j], scale, bias, mask, i, j, n) - lse_i);
        dp[t] = dp_strip[r * ld + j];
      }
      sum += p[t] * dp[t];
    }
    const float row_delta = warp_sum(sum);
    __syncwarp();  // every lane has read row r before the row is overwritten
#pragma unroll
    for (int t = 0; t < kKeysPerLane; ++t) {
      const int j = lane + t * kWarp;
      const float ds = p[t] * (dp[t] - row_delta);
      if (j < np) store_as(ds_out + r * 2 * ld + j, ds);
      if (partial != nullptr && i < n && j < n) partial[i * n + j] += ds;
    }
    if (lane == 0 && i < n) delta[i] = row_delta;
  }
}

template <typename T>
__global__ void __launch_bounds__(kTileWarps* kWarp)
    tensor_core_grad_q_kernel(Inputs<T> in, Grads<T, float> gr, float* __restrict__ delta, float* __restrict__ partials,
                              BiasGroups groups, float scale, Geometry g, bool chunks) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // never launched: the host takes this kernel on sm_80 and later only
#else
  using H = typename TensorCoreType<T>::type;
  extern __shared__ __align__(128) unsigned char tile_shared[];
  const int n = int(g.n), d = int(g.d);
  const TileLayout lay = TileLayout::of(n, d, int(blockDim.x) / kWarp, 2);
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp, tiles = lay.dp / kTile;
  H* ks = reinterpret_cast<H*>(tile_shared);
  H* vs = ks + lay.staged_halves();
  float* s_strip = lay.strip(tile_shared, warp, 0);
  float* dp_strip = lay.strip(tile_shared, warp, 1);
  const int64_t group = blockIdx.x / g.heads, head = blockIdx.x % g.heads;
  const int64_t first = group * groups.size, last = min(first + groups.size, g.windows);
  const T* bias = bias_of(in, g, head);
  float* partial = partials != nullptr ? partials + blockIdx.x * g.n * g.n : nullptr;

  for (int64_t window = first; window < last; ++window) {
    const int64_t item = window * g.heads + head, base = item * g.n * g.d;
    const T* mask = mask_of(in, g, window);
    __syncthreads();  // the previous window is done with K and V
    stage_operand(in.k + base, lay, n, d, ks, chunks);
    stage_operand(in.v + base, lay, n, d, vs, chunks);
    __syncthreads();
    for (int row0 = warp * kTile; row0 < lay.np; row0 += lay.warps * kTile) {  // warp-uniform
      stage_strip(in.q + base, lay, row0, n, d, s_strip, lane, chunks);
      stage_strip(gr.gout + base, lay, row0, n, d, dp_strip, lane, chunks);
      __syncwarp();
      RowFragment<H> qf[kDimTiles], gf[kDimTiles];
      load_strip(qf, s_strip, lay.ld_staged, tiles);
      load_strip(gf, dp_strip, lay.ld_staged, tiles);
      __syncwarp();
      for (int key0 = 0; key0 < lay.np; key0 += kTile) {  // S = Q K^T and dP = dO V^T
        Accumulator s, dp;
        times_transposed(s, qf, ks + key0 * lay.ld_staged, lay.ld_staged, tiles);
        times_transposed(dp, gf, vs + key0 * lay.ld_staged, lay.ld_staged, tiles);
        wmma::store_matrix_sync(s_strip + key0, s, lay.ld_strip, wmma::mem_row_major);
        wmma::store_matrix_sync(dp_strip + key0, dp, lay.ld_strip, wmma::mem_row_major);
      }
      __syncwarp();
      grad_rows<T, H>(s_strip, dp_strip, lay.ld_strip, row0, lay.np, scale, bias, mask, gr.lse + item * g.n,
                      delta + item * g.n, partial, n, lane);
      __syncwarp();
      Accumulator dq[kDimTiles];  // dQ = scale ds K
      times_operand(dq, s_strip, 2 * lay.ld_strip, ks, lay.ld_staged, lay.np, tiles);
      write_strip(dq, dp_strip, lay.ld_strip, tiles, row0, n, d, scale, reinterpret_cast<H*>(gr.gq + base), lane);
    }
  }
#endif
}

// Backward of the strip of keys from key0 (grad_kv): over s^T in `s_strip` and
// dp^T in `dp_strip` (row r: key key0 + r, column i: query i), p^T and ds^T
// written over them as halves (as softmax_rows does).
template <typename T, typename H>
__device__ void grad_key_rows(float* s_strip, float* dp_strip, int ld, int key0, int np, float scale, const T* bias,
                              const T* mask, const float* lse, const float* delta, int n, int lane) {
  H* p_out = reinterpret_cast<H*>(s_strip);
  H* ds_out = reinterpret_cast<H*>(dp_strip);
  for (int r = 0; r < kTile; ++r) {
    const int j = key0 + r;
    float p[kKeysPerLane], ds[kKeysPerLane];
#pragma unroll
    for (int t = 0; t < kKeysPerLane; ++t) {
      const int i = lane + t * kWarp;
      p[t] = ds[t] = 0.0f;
      const float lse_i = i < n && j < n ? lse[i] : minus_infinity<float>();
      if (lse_i != minus_infinity<float>()) {  // a padded key or query, or a fully masked row: p = 0
        p[t] = exp_of(score(s_strip[r * ld + i], scale, bias, mask, i, j, n) - lse_i);
        ds[t] = p[t] * (dp_strip[r * ld + i] - delta[i]);
      }
    }
    __syncwarp();  // every lane has read row r before the row is overwritten
#pragma unroll
    for (int t = 0; t < kKeysPerLane; ++t) {
      const int i = lane + t * kWarp;
      if (i < np) {
        store_as(p_out + r * 2 * ld + i, p[t]);
        store_as(ds_out + r * 2 * ld + i, ds[t]);
      }
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kTileWarps* kWarp)
    tensor_core_grad_kv_kernel(Inputs<T> in, Grads<T, float> gr, const float* __restrict__ delta, float scale,
                               Geometry g, bool chunks) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // never launched: the host takes this kernel on sm_80 and later only
#else
  using H = typename TensorCoreType<T>::type;
  extern __shared__ __align__(128) unsigned char tile_shared[];
  const int n = int(g.n), d = int(g.d);
  const TileLayout lay = TileLayout::of(n, d, int(blockDim.x) / kWarp, 2);
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp, tiles = lay.dp / kTile;
  H* qs = reinterpret_cast<H*>(tile_shared);
  H* gos = qs + lay.staged_halves();
  float* s_strip = lay.strip(tile_shared, warp, 0);
  float* dp_strip = lay.strip(tile_shared, warp, 1);
  const int64_t item = blockIdx.x, window = item / g.heads, head = item % g.heads;
  const int64_t base = item * g.n * g.d;
  const T* bias = bias_of(in, g, head);
  const T* mask = mask_of(in, g, window);
  stage_operand(in.q + base, lay, n, d, qs, chunks);
  stage_operand(gr.gout + base, lay, n, d, gos, chunks);
  __syncthreads();

  for (int key0 = warp * kTile; key0 < lay.np; key0 += lay.warps * kTile) {  // warp-uniform
    stage_strip(in.k + base, lay, key0, n, d, s_strip, lane, chunks);
    stage_strip(in.v + base, lay, key0, n, d, dp_strip, lane, chunks);
    __syncwarp();
    RowFragment<H> kf[kDimTiles], vf[kDimTiles];
    load_strip(kf, s_strip, lay.ld_staged, tiles);
    load_strip(vf, dp_strip, lay.ld_staged, tiles);
    __syncwarp();
    for (int row0 = 0; row0 < lay.np; row0 += kTile) {  // S^T = K Q^T and dP^T = V dO^T
      Accumulator s, dp;
      times_transposed(s, kf, qs + row0 * lay.ld_staged, lay.ld_staged, tiles);
      times_transposed(dp, vf, gos + row0 * lay.ld_staged, lay.ld_staged, tiles);
      wmma::store_matrix_sync(s_strip + row0, s, lay.ld_strip, wmma::mem_row_major);
      wmma::store_matrix_sync(dp_strip + row0, dp, lay.ld_strip, wmma::mem_row_major);
    }
    __syncwarp();
    grad_key_rows<T, H>(s_strip, dp_strip, lay.ld_strip, key0, lay.np, scale, bias, mask, gr.lse + item * g.n,
                        delta + item * g.n, n, lane);
    __syncwarp();
    Accumulator acc[kDimTiles];
    times_operand(acc, s_strip, 2 * lay.ld_strip, gos, lay.ld_staged, lay.np, tiles);  // dV = P^T dO
    write_strip(acc, s_strip, lay.ld_strip, tiles, key0, n, d, 1.0f, reinterpret_cast<H*>(gr.gv + base), lane);
    times_operand(acc, dp_strip, 2 * lay.ld_strip, qs, lay.ld_staged, lay.np, tiles);  // dK = scale ds^T Q
    write_strip(acc, dp_strip, lay.ld_strip, tiles, key0, n, d, scale, reinterpret_cast<H*>(gr.gk + base), lane);
  }
#endif
}

inline bool aligned_16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// The launch of a tensor-core kernel for an (n, d) geometry: the most warps (up
// to one per strip of 16 rows) whose strip buffers fit the device's shared
// memory; none (warps = 0) where even one warp's do not, or where the kernel's
// code for this device is not sm_80's or later (compiled to the __trap() body).
struct TileLaunch {
  TileLayout layout;
  bool ok;
};

template <typename... Params>
TileLaunch tile_launch(void (*kernel)(Params...), const Geometry& g, int buffers) {
  const int n = int(g.n), d = int(g.d);
  int warps = std::min(kTileWarps, TileLayout::of(n, d, 1, buffers).strips());
  if (cuda::kernel_arch(kernel) < 80) return {TileLayout::of(n, d, warps, buffers), false};
  const size_t limit = cuda::shared_bytes_limit();
  while (warps > 1 && TileLayout::of(n, d, warps, buffers).bytes() > limit) warps /= 2;
  const TileLayout layout = TileLayout::of(n, d, warps, buffers);
  return {layout, layout.bytes() <= limit};
}

// Whether the kernels may move 8 values per load: d a multiple of 8 and every
// operand 16-byte aligned.
inline bool chunked(const Geometry& g, std::initializer_list<const void*> operands) {
  if (g.d % kChunk != 0) return false;
  return std::all_of(operands.begin(), operands.end(), aligned_16);
}

// The tensor-core forward where it can run; false otherwise, for the caller's fallback.
template <typename T>
bool tensor_core_forward(const Inputs<T>& in, T* out, float* lse, float scale, const Geometry& g) {
  const TileLaunch run = tile_launch(tensor_core_forward_kernel<T>, g, 1);
  if (!run.ok) return false;
  cuda::launch_shared(tensor_core_forward_kernel<T>, dim3(cuda::block_per_item(g.items(), "window_attention")),
                      run.layout.warps * kWarp, run.layout.bytes(), in, out, lse, scale, g,
                      chunked(g, {in.q, in.k, in.v}));
  return true;
}

// The tensor-core backward (both kernels) where it can run; false otherwise.
template <typename T>
bool tensor_core_backward(const Inputs<T>& in, const Grads<T, float>& gr, float* delta, float* partials,
                          const BiasGroups& groups, float scale, const Geometry& g) {
  const TileLaunch q_run = tile_launch(tensor_core_grad_q_kernel<T>, g, 2);
  const TileLaunch kv_run = tile_launch(tensor_core_grad_kv_kernel<T>, g, 2);
  if (!q_run.ok || !kv_run.ok) return false;
  const bool chunks = chunked(g, {in.q, in.k, in.v, gr.gout});
  const char* op = "window_attention_backward";
  cuda::launch_shared(tensor_core_grad_q_kernel<T>, dim3(cuda::block_per_item(groups.count * g.heads, op)),
                      q_run.layout.warps * kWarp, q_run.layout.bytes(), in, gr, delta, partials, groups, scale, g,
                      chunks);
  cuda::launch_shared(tensor_core_grad_kv_kernel<T>, dim3(cuda::block_per_item(g.items(), op)),
                      kv_run.layout.warps * kWarp, kv_run.layout.bytes(), in, gr, static_cast<const float*>(delta),
                      scale, g, chunks);
  return true;
}

// CTAs of (window, head) items, or of (group, head) pairs, by blocks of kRows rows.
inline dim3 grid_of(int64_t ctas, int64_t rows) {
  return dim3(cuda::block_per_item(ctas, "window_attention"), static_cast<unsigned>((rows + kRows - 1) / kRows));
}

struct CudaKernels {
  using Guard = cuda::DeviceGuard;

  template <typename T, typename A>
  static void forward(const Inputs<T>& in, T* out, A* lse, A scale, const Geometry& g) {
    if constexpr (kTensorCoreType<T>) {
      if (tensor_core_forward(in, out, lse, scale, g)) return;
    }
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

    bool done = false;
    if constexpr (kTensorCoreType<T>) {
      done = tensor_core_backward(in, gr, delta.mutable_data_ptr<A>(), partial_data, groups, scale, g);
    }
    if (!done) {
      // both kernels hold four tiles: two of kRows rows, two of kKeys padded rows
      const size_t bytes = sizeof(A) * size_t(2 * kRows * g.d + 2 * kKeys * (g.d + 1));
      cuda::launch_shared(grad_q_kernel<T, A>, grid_of(groups.count * g.heads, g.n), kThreads, bytes, in, gr,
                          delta.mutable_data_ptr<A>(), partial_data, groups, scale, g);
      cuda::launch_shared(grad_kv_kernel<T, A>, grid_of(g.items(), g.n), kThreads, bytes, in, gr,
                          delta.const_data_ptr<A>(), scale, g);
    }
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
