// The CPU lifting kernels compiled for AVX2 + FMA: twice the vector width of
// the x86-64 baseline. No torch header may be included here (see
// common/cpu_variants.h). FMA contraction cannot change results: every product
// in the lifting is by 1/2 or 1/4, hence exact.
#if defined(__x86_64__) && defined(__GNUC__)
// Every header first, under the baseline target: only the kernels below are
// compiled for AVX2 (baseline helpers inline into them and take their target).
#include <cstdlib>
#include <new>

#include "lifting_cpu_avx2.h"

#pragma GCC target("avx2,fma")
#define SF_CPU_VARIANT avx2
#define SF_CPU_HAS_SSE41 1
#include "lifting_cpu_kernels.h"

namespace stegafast {
namespace lifting {
namespace avx2 {

#define SF_LIFTING_VARIANT_DEFINITIONS(T)                                                  \
  void forward(const T* x, T* y, const Geometry& g, bool rounding, cpu::ParallelFor par) { \
    run_forward(x, y, g, rounding, par);                                                   \
  }                                                                                        \
  void inverse(const T* y, T* x, const Geometry& g, bool rounding, cpu::ParallelFor par) { \
    run_inverse(y, x, g, rounding, par);                                                   \
  }                                                                                        \
  void forward_adjoint(const T* gy, T* gx, const Geometry& g, cpu::ParallelFor par) {      \
    run_forward_adjoint(gy, gx, g, par);                                                   \
  }                                                                                        \
  void inverse_adjoint(const T* gx, T* gy, const Geometry& g, cpu::ParallelFor par) {      \
    run_inverse_adjoint(gx, gy, g, par);                                                   \
  }

SF_LIFTING_VARIANT_DEFINITIONS(float)
SF_LIFTING_VARIANT_DEFINITIONS(double)
#undef SF_LIFTING_VARIANT_DEFINITIONS

void forward(const int32_t* x, int32_t* y, const Geometry& g, bool rounding, cpu::ParallelFor par) {
  run_forward(x, y, g, rounding, par);
}
void inverse(const int32_t* y, int32_t* x, const Geometry& g, bool rounding, cpu::ParallelFor par) {
  run_inverse(y, x, g, rounding, par);
}

}  // namespace avx2
}  // namespace lifting
}  // namespace stegafast
#endif
