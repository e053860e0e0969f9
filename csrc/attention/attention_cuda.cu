// CUDA kernels of the windowed attention, float32 accumulation for every dtype
// (float64 in float64). The forward of float16 and bfloat16 runs on tensor cores
// (tensor_core_forward_kernel, below, where it is described); everything else,
// and that forward where it cannot run, uses the kernels here, which use no
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

// --- tensor cores: the forward for float16 and bfloat16 ------------------------------------------
//
// tensor_core_forward_kernel: CTA = one (window, head) item. The CTA stages the
// item's K and V, padded to multiples of 16 rows and columns (zeros), as the
// half type; then each warp takes strips of 16 query rows in turn:
//   1. stage the strip's Q rows (zeros past N and d) and hold them as wmma
//      fragments, so the strip's buffer is free for the scores;
//   2. S = Q K^T on tensor cores (float accumulators) into the buffer;
//   3. each row exactly once (N <= 256: a whole row fits, no online rescaling):
//      s = scale S + bias + mask, -inf for the padded keys, row max, sum,
//      lse; p = exp(s - max) / sum written over the row as the half type;
//   4. O = P V on tensor cores, stored into the buffer as float, written out.
// A padded query row (past N) is treated as fully masked and never written.
// Shared memory: K and V (Np rows of Dp + 8 halves) and one strip buffer per
// warp (16 rows of max(Np, Dp) + 4 floats); the pads put successive rows 16
// bytes apart in the 128-byte bank period, so the fragment loads do not
// conflict. Only sm_80 and later run it (bfloat16 fragments need sm_80); the
// host falls back to forward_kernel elsewhere, or where the CTA's shared memory
// exceeds the device's limit.

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

// Where the CTA's shared memory goes, for the host (its size) and the kernel.
struct TileLayout {
  int np, dp;    // N and d rounded up to 16
  int ld_kv;     // halves per staged K, V (and Q) row
  int ld_strip;  // floats per row of a warp's strip buffer
  int warps;

  SF_HD static TileLayout of(int n, int d, int warps) {
    const int np = (n + kTile - 1) / kTile * kTile, dp = (d + kTile - 1) / kTile * kTile;
    return {np, dp, dp + kHalfPad, (np > dp ? np : dp) + kFloatPad, warps};
  }
  SF_HD int strips() const { return np / kTile; }
  SF_HD int64_t kv_halves() const { return int64_t(np) * ld_kv; }
  SF_HD int64_t strip_floats() const { return int64_t(kTile) * ld_strip; }
  SF_HD size_t bytes() const { return sizeof(uint16_t) * 2 * kv_halves() + sizeof(float) * warps * strip_floats(); }
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

// Steps 3 of the kernel for the strip of rows [row0, row0 + 16): the scores in
// `strip` (ld floats a row) become probabilities of type H over the same bytes
// (2 ld halves a row: row r's halves lie inside row r's floats, and the warp
// reads a whole row before it writes it), and the real rows' lse are written.
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
  namespace wmma = nvcuda::wmma;
  using H = typename TensorCoreType<T>::type;
  using QFragment = wmma::fragment<wmma::matrix_a, kTile, kTile, kTile, H, wmma::row_major>;
  using KFragment = wmma::fragment<wmma::matrix_b, kTile, kTile, kTile, H, wmma::col_major>;  // K^T
  using VFragment = wmma::fragment<wmma::matrix_b, kTile, kTile, kTile, H, wmma::row_major>;
  using Accumulator = wmma::fragment<wmma::accumulator, kTile, kTile, kTile, float>;
  extern __shared__ __align__(128) unsigned char tile_shared[];

  const int n = int(g.n), d = int(g.d);
  const TileLayout lay = TileLayout::of(n, d, int(blockDim.x) / kWarp);
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp, dim_tiles = lay.dp / kTile;
  H* ks = reinterpret_cast<H*>(tile_shared);
  H* vs = ks + lay.kv_halves();
  float* strip = reinterpret_cast<float*>(vs + lay.kv_halves()) + warp * lay.strip_floats();
  const int64_t item = blockIdx.x, window = item / g.heads, head = item % g.heads;
  const int64_t base = item * g.n * g.d;
  const T* bias = bias_of(in, g, head);
  const T* mask = mask_of(in, g, window);
  stage_rows(bits_of(in.k + base), 0, lay.np, n, d, lay.dp, reinterpret_cast<uint16_t*>(ks), lay.ld_kv, threadIdx.x,
             blockDim.x, chunks);
  stage_rows(bits_of(in.v + base), 0, lay.np, n, d, lay.dp, reinterpret_cast<uint16_t*>(vs), lay.ld_kv, threadIdx.x,
             blockDim.x, chunks);
  __syncthreads();

  for (int row0 = warp * kTile; row0 < lay.np; row0 += lay.warps * kTile) {  // warp-uniform
    // 1. the strip's Q as fragments (dim_tiles of them; the loops over kDimTiles
    // are unrolled so the fragment arrays stay in registers)
    stage_rows(bits_of(in.q + base), row0, kTile, n, d, lay.dp, reinterpret_cast<uint16_t*>(strip), lay.ld_kv, lane,
               kWarp, chunks);
    __syncwarp();
    QFragment qf[kDimTiles];
#pragma unroll
    for (int t = 0; t < kDimTiles; ++t) {
      if (t < dim_tiles) wmma::load_matrix_sync(qf[t], reinterpret_cast<const H*>(strip) + t * kTile, lay.ld_kv);
    }
    __syncwarp();  // Q is in registers: the scores may take the buffer
    // 2. S = Q K^T, one 16 x 16 tile of keys at a time
    for (int key0 = 0; key0 < lay.np; key0 += kTile) {
      Accumulator s;
      wmma::fill_fragment(s, 0.0f);
#pragma unroll
      for (int t = 0; t < kDimTiles; ++t) {
        if (t >= dim_tiles) continue;
        KFragment kf;
        wmma::load_matrix_sync(kf, ks + key0 * lay.ld_kv + t * kTile, lay.ld_kv);
        wmma::mma_sync(s, qf[t], kf, s);
      }
      wmma::store_matrix_sync(strip + key0, s, lay.ld_strip, wmma::mem_row_major);
    }
    __syncwarp();
    // 3. the rows' softmax, probabilities over the scores
    softmax_rows<T, H>(strip, lay.ld_strip, row0, lay.np, scale, bias, mask, lse + item * g.n, n, lane);
    __syncwarp();
    // 4. O = P V
    Accumulator of[kDimTiles];
#pragma unroll
    for (int t = 0; t < kDimTiles; ++t) {
      if (t < dim_tiles) wmma::fill_fragment(of[t], 0.0f);
    }
    for (int key0 = 0; key0 < lay.np; key0 += kTile) {
      QFragment pf;  // a 16 x 16 tile of P, laid out as Q's
      wmma::load_matrix_sync(pf, reinterpret_cast<const H*>(strip) + key0, 2 * lay.ld_strip);
#pragma unroll
      for (int t = 0; t < kDimTiles; ++t) {
        if (t >= dim_tiles) continue;
        VFragment vf;
        wmma::load_matrix_sync(vf, vs + key0 * lay.ld_kv + t * kTile, lay.ld_kv);
        wmma::mma_sync(of[t], pf, vf, of[t]);
      }
    }
    __syncwarp();  // P is consumed: the output may take the buffer
#pragma unroll
    for (int t = 0; t < kDimTiles; ++t) {
      if (t < dim_tiles) wmma::store_matrix_sync(strip + t * kTile, of[t], lay.ld_strip, wmma::mem_row_major);
    }
    __syncwarp();
    H* dst = reinterpret_cast<H*>(out + base);
    for (int e = lane; e < kTile * d; e += kWarp) {
      const int r = e / d, c = e % d, i = row0 + r;
      if (i < n) store_as(dst + int64_t(i) * d + c, strip[r * lay.ld_strip + c]);
    }
    __syncwarp();  // the next strip's Q overwrites the buffer
  }
#endif
}

inline bool aligned_16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// The tensor-core forward where its code for this device is sm_80's or later
// and the device's shared memory allows: the most warps (up to one per strip of 16 rows) whose buffers
// fit. False where it does not run, for the caller's fallback.
template <typename T>
bool tensor_core_forward(const Inputs<T>& in, T* out, float* lse, float scale, const Geometry& g) {
  if (cuda::kernel_arch(tensor_core_forward_kernel<T>) < 80) return false;  // compiled to the __trap() body
  const size_t limit = cuda::shared_bytes_limit();
  const int n = int(g.n), d = int(g.d);
  int warps = std::min(kTileWarps, TileLayout::of(n, d, 1).strips());
  while (warps > 1 && TileLayout::of(n, d, warps).bytes() > limit) warps /= 2;
  const TileLayout lay = TileLayout::of(n, d, warps);
  if (lay.bytes() > limit) return false;
  const bool chunks = d % kChunk == 0 && aligned_16(in.q) && aligned_16(in.k) && aligned_16(in.v);
  cuda::launch_shared(tensor_core_forward_kernel<T>, dim3(cuda::block_per_item(g.items(), "window_attention")),
                      warps * kWarp, lay.bytes(), in, out, lse, scale, g, chunks);
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
