// CUDA kernels of the batched 5/3 lifting wavelet: one thread per 2x2 output
// quad (plane, i, j), each calling the quad functions of lifting.h, so CPU and GPU
// share one piece of arithmetic. Neighbouring quads read overlapping
// neighbourhoods; the overlap is left to L1/L2 rather than shared-memory tiles,
// which keeps each kernel a single pass with no synchronisation. Checks, dtype
// dispatch and output layout mirror lifting_cpu.cpp.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "../common/dispatch.h"
#include "lifting_shapes.h"

namespace stegafast {
namespace lifting {
namespace {

constexpr int kThreads = 256;
// Grid cap, far below gridDim.x's limit: 2^20 blocks of 256 threads fill any
// current GPU many times over, and the grid-stride loops cover the rest.
constexpr int64_t kMaxBlocks = int64_t(1) << 20;

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
__device__ __forceinline__ void store_bands(T* y, const Geometry& g, const Quad& q,
                                            const A out[4]) {
  const int64_t at = q.i * g.kw + q.j;
  for (int s = 0; s < 4; ++s) y[band_offset(g, q.p, s) + at] = T(out[s]);
}

// out holds the padded image's (2i, 2j), (2i, 2j+1), (2i+1, 2j), (2i+1, 2j+1);
// for odd H (W) the last odd row (column) is padding and lies outside the image.
template <typename T, typename A>
__device__ __forceinline__ void store_quad(T* x, const Geometry& g, const Quad& q,
                                           const A out[4]) {
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

#define SF_FOR_EACH_QUAD(k, quads)                                                   \
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < (quads); \
       k += int64_t(gridDim.x) * blockDim.x)

template <bool Round, typename T>
__global__ void forward_kernel(const T* __restrict__ x, T* __restrict__ y, Geometry g,
                               int64_t quads) {
  using A = acc_t<T>;
  SF_FOR_EACH_QUAD(k, quads) {
    const Quad q = quad_at(k, g);
    A out[4];
    forward_quad<Round, A>(x + q.p * g.h * g.w, g.h, g.w, q.i, q.j, out);
    store_bands(y, g, q, out);
  }
}

template <bool Round, typename T>
__global__ void inverse_kernel(const T* __restrict__ y, T* __restrict__ x, Geometry g,
                               int64_t quads) {
  using A = acc_t<T>;
  SF_FOR_EACH_QUAD(k, quads) {
    const Quad q = quad_at(k, g);
    A out[4];
    inverse_quad<Round, A>(bands_of(y, g, q.p), g.kh, q.i, q.j, out);
    store_quad(x, g, q, out);
  }
}

template <typename T>
__global__ void forward_adjoint_kernel(const T* __restrict__ gy, T* __restrict__ gx, Geometry g,
                                       int64_t quads) {
  using A = acc_t<T>;
  SF_FOR_EACH_QUAD(k, quads) {
    const Quad q = quad_at(k, g);
    A out[4];
    forward_adjoint_quad<A>(bands_of(gy, g, q.p), g.kh, g.h, g.w, q.i, q.j, out);
    store_quad(gx, g, q, out);
  }
}

template <typename T>
__global__ void inverse_adjoint_kernel(const T* __restrict__ gx, T* __restrict__ gy, Geometry g,
                                       int64_t quads) {
  using A = acc_t<T>;
  SF_FOR_EACH_QUAD(k, quads) {
    const Quad q = quad_at(k, g);
    A out[4];
    inverse_adjoint_quad<A>(gx + q.p * g.h * g.w, g.h, g.w, q.i, q.j, out);
    store_bands(gy, g, q, out);
  }
}

#undef SF_FOR_EACH_QUAD

// Launches kernel over every quad of g on the current stream; an empty batch
// (B = 0 or C = 0) launches nothing, since a zero-block grid is a launch error.
template <typename Kernel, typename In, typename Out>
void launch(Kernel kernel, const In* in, Out* out, const Geometry& g) {
  const int64_t quads = g.batch * g.channels * g.kh * g.kw;
  if (quads == 0) return;
  const int64_t blocks = std::min((quads + kThreads - 1) / kThreads, kMaxBlocks);
  kernel<<<static_cast<unsigned>(blocks), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      in, out, g, quads);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

at::Tensor ilwt53_forward_cuda(const at::Tensor& x_in, bool rounding) {
  const Geometry g = image_geometry(x_in, "ilwt53_forward input");
  check_rounding(x_in, rounding);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  at::Tensor y = empty_bands(x, g);
  SF_DISPATCH_FLOAT_AND_INT(x.scalar_type(), "ilwt53_forward_cuda", [&] {
    const auto* in = x.const_data_ptr<scalar_t>();
    auto* out = y.mutable_data_ptr<scalar_t>();
    if (rounding) {
      launch(forward_kernel<true, scalar_t>, in, out, g);
    } else {
      launch(forward_kernel<false, scalar_t>, in, out, g);
    }
  });
  return y;
}

at::Tensor ilwt53_inverse_cuda(const at::Tensor& y_in, c10::IntArrayRef out_size, bool rounding) {
  const Geometry g = band_geometry(y_in, out_size, "ilwt53_inverse input");
  check_rounding(y_in, rounding);
  const c10::cuda::CUDAGuard guard(y_in.device());
  const at::Tensor y = y_in.contiguous();
  at::Tensor x = empty_image(y, g);
  SF_DISPATCH_FLOAT_AND_INT(y.scalar_type(), "ilwt53_inverse_cuda", [&] {
    const auto* in = y.const_data_ptr<scalar_t>();
    auto* out = x.mutable_data_ptr<scalar_t>();
    if (rounding) {
      launch(inverse_kernel<true, scalar_t>, in, out, g);
    } else {
      launch(inverse_kernel<false, scalar_t>, in, out, g);
    }
  });
  return x;
}

at::Tensor ilwt53_forward_backward_cuda(const at::Tensor& gy_in, c10::IntArrayRef in_size) {
  const Geometry g = band_geometry(gy_in, in_size, "ilwt53_forward_backward grad");
  const c10::cuda::CUDAGuard guard(gy_in.device());
  const at::Tensor gy = gy_in.contiguous();
  at::Tensor gx = empty_image(gy, g);
  SF_DISPATCH_FLOAT(gy.scalar_type(), "ilwt53_forward_backward_cuda", [&] {
    launch(forward_adjoint_kernel<scalar_t>, gy.const_data_ptr<scalar_t>(),
           gx.mutable_data_ptr<scalar_t>(), g);
  });
  return gx;
}

at::Tensor ilwt53_inverse_backward_cuda(const at::Tensor& gx_in) {
  const Geometry g = image_geometry(gx_in, "ilwt53_inverse_backward grad");
  const c10::cuda::CUDAGuard guard(gx_in.device());
  const at::Tensor gx = gx_in.contiguous();
  at::Tensor gy = empty_bands(gx, g);
  SF_DISPATCH_FLOAT(gx.scalar_type(), "ilwt53_inverse_backward_cuda", [&] {
    launch(inverse_adjoint_kernel<scalar_t>, gx.const_data_ptr<scalar_t>(),
           gy.mutable_data_ptr<scalar_t>(), g);
  });
  return gy;
}

}  // namespace
}  // namespace lifting
}  // namespace stegafast

TORCH_LIBRARY_IMPL(stegafast, CUDA, m) {
  using namespace stegafast::lifting;
  m.impl("ilwt53_forward", &ilwt53_forward_cuda);
  m.impl("ilwt53_inverse", &ilwt53_inverse_cuda);
  m.impl("ilwt53_forward_backward", &ilwt53_forward_backward_cuda);
  m.impl("ilwt53_inverse_backward", &ilwt53_inverse_backward_cuda);
}
