#pragma once
// Entry points of the AVX2 + FMA build of the CPU lifting kernels
// (lifting_cpu_avx2.cpp), for float and double; call only when
// cpu::has_avx2_fma() is true.
#include "../common/cpu_variants.h"
#include "lifting.h"

namespace stegafast {
namespace lifting {
namespace avx2 {

#define SF_LIFTING_VARIANT_ENTRY_POINTS(T)                                                \
  void forward(const T* x, T* y, const Geometry& g, bool rounding, cpu::ParallelFor par); \
  void inverse(const T* y, T* x, const Geometry& g, bool rounding, cpu::ParallelFor par); \
  void forward_adjoint(const T* gy, T* gx, const Geometry& g, cpu::ParallelFor par);     \
  void inverse_adjoint(const T* gx, T* gy, const Geometry& g, cpu::ParallelFor par);

SF_LIFTING_VARIANT_ENTRY_POINTS(float)
SF_LIFTING_VARIANT_ENTRY_POINTS(double)
#undef SF_LIFTING_VARIANT_ENTRY_POINTS

}  // namespace avx2
}  // namespace lifting
}  // namespace stegafast
