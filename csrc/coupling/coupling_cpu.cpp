// CPU operators of the affine coupling: the choice between the baseline and
// the AVX2 build of the kernels (coupling_cpu_kernels.h holds the kernels,
// coupling_ops.h the operators around them).
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../common/guard.h"
#include "coupling_cpu_avx2.h"
#include "coupling_ops.h"

#define SF_CPU_VARIANT baseline
#include "coupling_cpu_kernels.h"

namespace stegafast {
namespace coupling {
namespace {

constexpr cpu::ParallelFor kParallel = cpu::torch_parallel_for;

struct CpuKernels {
  using Guard = NoGuard;
  // both builds split samples alike, so a logdet does not depend on the thread count
  static constexpr int64_t kChunk = baseline::kChunk;

  template <typename T, typename A>
  static void coupling(Samples<const T> in, Samples<const T> r, Samples<const T> t, T* out, A* partials, A* logdet,
                       const Layout& g, ClampFn fn, double clamp, bool inverse) {
    SF_CPU_BEST_VARIANT(kAvx2Build<T>, run_coupling, in, r, t, out, partials, logdet, g, fn, clamp, inverse, kParallel);
  }

  template <typename T, typename A>
  static void forward_grad(Samples<const T> gy, const A* gl, Samples<const T> x, Samples<const T> r, T* gx, T* gr,
                           const Layout& g, ClampFn fn, double clamp) {
    SF_CPU_BEST_VARIANT(kAvx2Build<T>, run_forward_grad, gy, gl, x, r, gx, gr, g, fn, clamp, kParallel);
  }

  template <typename T, typename A>
  static void inverse_grad(Samples<const T> gx, const A* gl, Samples<const T> x, Samples<const T> r, T* gy, T* gr,
                           T* gt, const Layout& g, ClampFn fn, double clamp) {
    SF_CPU_BEST_VARIANT(kAvx2Build<T>, run_inverse_grad, gx, gl, x, r, gy, gr, gt, g, fn, clamp, kParallel);
  }
};

}  // namespace
}  // namespace coupling
}  // namespace stegafast

TORCH_LIBRARY_IMPL(stegafast, CPU, m) { SF_REGISTER_COUPLING_OPS(m, stegafast::coupling::CpuKernels); }
