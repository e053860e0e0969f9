// CUDA kernels of the batched 5/3 lifting wavelet: one thread per 2x2 output
// quad (plane, i, j), each calling the quad functions of lifting.h, so CPU and GPU
// share one piece of arithmetic. Neighbouring quads read overlapping
// neighbourhoods; the overlap is left to L1/L2 rather than shared-memory tiles,
// which keeps each kernel a single pass with no synchronisation. Checks, dtype
// dispatch and output allocation are lifting_ops.h's, shared with the CPU.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "lifting_ops.h"

namespace stegafast {
namespace lifting {
namespace {

struct Quad {
  int64_t p, i, j;
};

// j fastest, so neighbouring threads touch neighbouring columns (coalesced).
__device__ __forceinline__ Quad quad_at(int64_t k, const Geometry& g) {
  const int64_t j = k % g.kw;
  k /= g.kw;
  return {k / g.kh, k % g.kh, j};
}

template <typename T, typename A>
__device__ __forceinline__ void store_bands(T* y, const Geometry& g, const Quad& q, const A out[4]) {
  const int64_t at = q.i * g.kw + q.j;
  for (int s = 0; s < 4; ++s) y[band_offset(g, q.p, s) + at] = T(out[s]);
}

// out holds the padded image's (2i, 2j), (2i, 2j+1), (2i+1, 2j), (2i+1, 2j+1);
// for odd H (W) the last odd row (column) is padding and lies outside the image.
template <typename T, typename A>
__device__ __forceinline__ void store_quad(T* x, const Geometry& g, const Quad& q, const A out[4]) {
  const int64_t r = 2 * q.i, c = 2 * q.j;
  const bool has_col = c + 1 < g.w, has_row = r + 1 < g.h;
  T* even = x + (q.p * g.h + r) * g.w + c;
  even[0] = T(out[0]);
  if (has_col) even[1] = T(out[1]);
  if (has_row) {
    T* odd = even + g.w;
    odd[0] = T(out[2]);
    if (has_col) odd[1] = T(out[3]);
  }
}

template <bool Round, typename T>
__global__ void forward_kernel(const T* __restrict__ x, T* __restrict__ y, Geometry g, int64_t quads) {
  using A = lift_acc_t<T>;
  SF_GRID_STRIDE_LOOP(k, quads) {
    const Quad q = quad_at(k, g);
    A out[4];
    forward_quad<Round, A>(x + q.p * g.h * g.w, g.h, g.w, q.i, q.j, out);
    store_bands(y, g, q, out);
  }
}

template <bool Round, typename T>
__global__ void inverse_kernel(const T* __restrict__ y, T* __restrict__ x, Geometry g, int64_t quads) {
  using A = lift_acc_t<T>;
  SF_GRID_STRIDE_LOOP(k, quads) {
    const Quad q = quad_at(k, g);
    A out[4];
    inverse_quad<Round, A>(bands_of(y, g, q.p), g.kh, q.i, q.j, out);
    store_quad(x, g, q, out);
  }
}

template <typename T>
__global__ void forward_adjoint_kernel(const T* __restrict__ gy, T* __restrict__ gx, Geometry g, int64_t quads) {
  using A = lift_acc_t<T>;
  SF_GRID_STRIDE_LOOP(k, quads) {
    const Quad q = quad_at(k, g);
    A out[4];
    forward_adjoint_quad<A>(bands_of(gy, g, q.p), g.kh, g.h, g.w, q.i, q.j, out);
    store_quad(gx, g, q, out);
  }
}

template <typename T>
__global__ void inverse_adjoint_kernel(const T* __restrict__ gx, T* __restrict__ gy, Geometry g, int64_t quads) {
  using A = lift_acc_t<T>;
  SF_GRID_STRIDE_LOOP(k, quads) {
    const Quad q = quad_at(k, g);
    A out[4];
    inverse_adjoint_quad<A>(gx + q.p * g.h * g.w, g.h, g.w, q.i, q.j, out);
    store_bands(gy, g, q, out);
  }
}

// Launches kernel over every quad of g (none for an empty batch).
template <typename Kernel, typename In, typename Out>
void launch_over_quads(Kernel kernel, const In* in, Out* out, const Geometry& g) {
  const int64_t quads = g.batch * g.channels * g.kh * g.kw;
  cuda::launch_grid_stride(kernel, quads, cuda::kThreadsPerBlock, in, out, g, quads);
}

struct CudaKernels {
  using Guard = cuda::DeviceGuard;

  template <typename T>
  static void forward(const T* x, T* y, const Geometry& g, bool rounding) {
    if (rounding) {
      launch_over_quads(forward_kernel<true, T>, x, y, g);
    } else {
      launch_over_quads(forward_kernel<false, T>, x, y, g);
    }
  }

  template <typename T>
  static void inverse(const T* y, T* x, const Geometry& g, bool rounding) {
    if (rounding) {
      launch_over_quads(inverse_kernel<true, T>, y, x, g);
    } else {
      launch_over_quads(inverse_kernel<false, T>, y, x, g);
    }
  }

  template <typename T>
  static void forward_adjoint(const T* gy, T* gx, const Geometry& g) {
    launch_over_quads(forward_adjoint_kernel<T>, gy, gx, g);
  }

  template <typename T>
  static void inverse_adjoint(const T* gx, T* gy, const Geometry& g) {
    launch_over_quads(inverse_adjoint_kernel<T>, gx, gy, g);
  }
};

}  // namespace
}  // namespace lifting
}  // namespace stegafast

TORCH_LIBRARY_IMPL(stegafast, CUDA, m) { SF_REGISTER_LIFTING_OPS(m, stegafast::lifting::CudaKernels); }
