// CPU operators of the differentiable JPEG block quantisation: blocks split
// across threads with at::parallel_for, each block computed by jpeg.h's
// functions (jpeg_ops.h holds the checks and dispatch shared with CUDA).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../common/guard.h"
#include "jpeg_ops.h"

namespace stegafast {
namespace jpeg {
namespace {

// ~2k multiply-adds a block: a few dozen blocks amortise a task's overhead.
constexpr int64_t kGrain = 32;

struct CpuKernels {
  using Guard = NoGuard;

  template <Rounding R, typename T, typename A>
  static void forward(const DctBasis<A>& b, const T* x, const T* q, T* y, const Geometry& g) {
    at::parallel_for(0, g.blocks(), kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) forward_at<R>(b, x, q, y, g, k);
    });
  }

  template <Rounding R, typename T, typename A>
  static void backward(const DctBasis<A>& b, const T* gy, const T* x, const T* q, T* gx, const Geometry& g) {
    at::parallel_for(0, g.blocks(), kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) backward_at<R>(b, gy, x, q, gx, g, k);
    });
  }
};

}  // namespace
}  // namespace jpeg
}  // namespace stegafast

TORCH_LIBRARY_IMPL(stegafast, CPU, m) { SF_REGISTER_JPEG_OPS(m, stegafast::jpeg::CpuKernels); }
