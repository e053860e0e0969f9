// CPU operators of the batched 5/3 lifting wavelet: the choice between the
// baseline and the AVX2 build of the kernels (lifting_cpu_kernels.h holds the
// kernels, lifting_ops.h the operators around them).
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../common/guard.h"
#include "lifting_cpu_avx2.h"
#include "lifting_ops.h"

#define SF_CPU_VARIANT baseline
#include "lifting_cpu_kernels.h"

namespace stegafast {
namespace lifting {
namespace {

constexpr cpu::ParallelFor kParallel = cpu::torch_parallel_for;

struct CpuKernels {
  using Guard = NoGuard;

  template <typename T>
  static void forward(const T* x, T* y, const Geometry& g, bool rounding) {
    SF_CPU_BEST_VARIANT(kAvx2Transforms<T>, run_forward, x, y, g, rounding, kParallel);
  }

  template <typename T>
  static void inverse(const T* y, T* x, const Geometry& g, bool rounding) {
    SF_CPU_BEST_VARIANT(kAvx2Transforms<T>, run_inverse, y, x, g, rounding, kParallel);
  }

  template <typename T>
  static void forward_adjoint(const T* gy, T* gx, const Geometry& g) {
    SF_CPU_BEST_VARIANT(kAvx2Adjoints<T>, run_forward_adjoint, gy, gx, g, kParallel);
  }

  template <typename T>
  static void inverse_adjoint(const T* gx, T* gy, const Geometry& g) {
    SF_CPU_BEST_VARIANT(kAvx2Adjoints<T>, run_inverse_adjoint, gx, gy, g, kParallel);
  }
};

}  // namespace
}  // namespace lifting
}  // namespace stegafast

TORCH_LIBRARY_IMPL(stegafast, CPU, m) { SF_REGISTER_LIFTING_OPS(m, stegafast::lifting::CpuKernels); }
