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

// float and double (and int32 for the transforms, which have no gradients) run
// the AVX2 build where the CPU has it; half types always run the baseline build.
template <typename T>
constexpr bool kHasAvx2Build = std::is_same<T, float>::value || std::is_same<T, double>::value;
template <typename T>
constexpr bool kHasAvx2Transform = kHasAvx2Build<T> || std::is_same<T, int32_t>::value;

struct CpuKernels {
  using Guard = NoGuard;

  template <typename T>
  static void forward(const T* x, T* y, const Geometry& g, bool rounding) {
    if constexpr (kHasAvx2Transform<T>) {
      if (cpu::has_avx2_fma()) return avx2::forward(x, y, g, rounding, kParallel);
    }
    baseline::run_forward(x, y, g, rounding, kParallel);
  }

  template <typename T>
  static void inverse(const T* y, T* x, const Geometry& g, bool rounding) {
    if constexpr (kHasAvx2Transform<T>) {
      if (cpu::has_avx2_fma()) return avx2::inverse(y, x, g, rounding, kParallel);
    }
    baseline::run_inverse(y, x, g, rounding, kParallel);
  }

  template <typename T>
  static void forward_adjoint(const T* gy, T* gx, const Geometry& g) {
    if constexpr (kHasAvx2Build<T>) {
      if (cpu::has_avx2_fma()) return avx2::forward_adjoint(gy, gx, g, kParallel);
    }
    baseline::run_forward_adjoint(gy, gx, g, kParallel);
  }

  template <typename T>
  static void inverse_adjoint(const T* gx, T* gy, const Geometry& g) {
    if constexpr (kHasAvx2Build<T>) {
      if (cpu::has_avx2_fma()) return avx2::inverse_adjoint(gx, gy, g, kParallel);
    }
    baseline::run_inverse_adjoint(gx, gy, g, kParallel);
  }
};

}  // namespace
}  // namespace lifting
}  // namespace stegafast

TORCH_LIBRARY_IMPL(stegafast, CPU, m) { SF_REGISTER_LIFTING_OPS(m, stegafast::lifting::CpuKernels); }
