// CUDA kernels of the differentiable JPEG block quantisation: one thread per
// 8x8 block, calling jpeg.h's block functions, so CPU and GPU share one piece
// of arithmetic; the DCT basis travels as a kernel argument. Checks, dtype
// dispatch and output allocation are jpeg_ops.h's, shared with the CPU.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "jpeg_ops.h"

namespace stegafast {
namespace jpeg {
namespace {

// A block's working set (three 64-value arrays) lives in registers and local
// memory, so fewer threads a CUDA block keep occupancy reasonable.
constexpr int kThreads = 128;
constexpr int64_t kMaxBlocks = int64_t(1) << 20;

#define SF_FOR_EACH_BLOCK(k, count)                                                  \
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < (count); \
       k += int64_t(gridDim.x) * blockDim.x)

template <Rounding R, typename T, typename A>
__global__ void forward_kernel(const DctBasis<A> b, const T* __restrict__ x, const T* __restrict__ q,
                               T* __restrict__ y, Geometry g) {
  SF_FOR_EACH_BLOCK(k, g.blocks()) { forward_at<R>(b, x, q, y, g, k); }
}

template <Rounding R, typename T, typename A>
__global__ void backward_kernel(const DctBasis<A> b, const T* __restrict__ gy, const T* __restrict__ x,
                                const T* __restrict__ q, T* __restrict__ gx, Geometry g) {
  SF_FOR_EACH_BLOCK(k, g.blocks()) { backward_at<R>(b, gy, x, q, gx, g, k); }
}

#undef SF_FOR_EACH_BLOCK

inline unsigned grid_for(const Geometry& g) {
  return static_cast<unsigned>(std::min((g.blocks() + kThreads - 1) / kThreads, kMaxBlocks));
}

struct CudaKernels {
  using Guard = c10::cuda::CUDAGuard;

  template <Rounding R, typename T, typename A>
  static void forward(const DctBasis<A>& b, const T* x, const T* q, T* y, const Geometry& g) {
    forward_kernel<R, T, A><<<grid_for(g), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(b, x, q, y, g);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  template <Rounding R, typename T, typename A>
  static void backward(const DctBasis<A>& b, const T* gy, const T* x, const T* q, T* gx,
                       const Geometry& g) {
    backward_kernel<R, T, A><<<grid_for(g), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        b, gy, x, q, gx, g);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

}  // namespace
}  // namespace jpeg
}  // namespace stegafast

TORCH_LIBRARY_IMPL(stegafast, CUDA, m) { SF_REGISTER_JPEG_OPS(m, stegafast::jpeg::CudaKernels); }
