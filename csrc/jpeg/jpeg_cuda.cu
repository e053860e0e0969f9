// CUDA kernels of the differentiable JPEG block quantisation: one thread per
// 8x8 block, calling jpeg.h's block functions, so CPU and GPU share one piece
// of arithmetic; the DCT basis travels as a kernel argument. Checks, dtype
// dispatch and output allocation are jpeg_ops.h's, shared with the CPU.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "jpeg_ops.h"

namespace stegafast {
namespace jpeg {
namespace {

// A block's working set (three 64-value arrays) lives in registers and local
// memory, so fewer threads a CUDA block keep occupancy reasonable.
constexpr int kThreads = 128;

template <Rounding R, typename T, typename A>
__global__ void forward_kernel(const DctBasis<A> b, const T* __restrict__ x, const T* __restrict__ q, T* __restrict__ y,
                               Geometry g) {
  SF_GRID_STRIDE_LOOP(k, g.blocks()) { forward_at<R>(b, x, q, y, g, k); }
}

template <Rounding R, typename T, typename A>
__global__ void backward_kernel(const DctBasis<A> b, const T* __restrict__ gy, const T* __restrict__ x,
                                const T* __restrict__ q, T* __restrict__ gx, Geometry g) {
  SF_GRID_STRIDE_LOOP(k, g.blocks()) { backward_at<R>(b, gy, x, q, gx, g, k); }
}

struct CudaKernels {
  using Guard = cuda::DeviceGuard;

  template <Rounding R, typename T, typename A>
  static void forward(const DctBasis<A>& b, const T* x, const T* q, T* y, const Geometry& g) {
    cuda::launch_grid_stride(forward_kernel<R, T, A>, g.blocks(), kThreads, b, x, q, y, g);
  }

  template <Rounding R, typename T, typename A>
  static void backward(const DctBasis<A>& b, const T* gy, const T* x, const T* q, T* gx, const Geometry& g) {
    cuda::launch_grid_stride(backward_kernel<R, T, A>, g.blocks(), kThreads, b, gy, x, q, gx, g);
  }
};

}  // namespace
}  // namespace jpeg
}  // namespace stegafast

TORCH_LIBRARY_IMPL(stegafast, CUDA, m) { SF_REGISTER_JPEG_OPS(m, stegafast::jpeg::CudaKernels); }
