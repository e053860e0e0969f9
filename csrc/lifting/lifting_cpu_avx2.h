#pragma once
// Entry points of the AVX2 + FMA build of the CPU lifting kernels
// (lifting_cpu_avx2.cpp), for float, double and (the transforms) int32; call only when
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

// int32 images take the integer transform only (they have no gradients).
void forward(const int32_t* x, int32_t* y, const Geometry& g, bool rounding, cpu::ParallelFor par);
void inverse(const int32_t* y, int32_t* x, const Geometry& g, bool rounding, cpu::ParallelFor par);

}  // namespace avx2
}  // namespace lifting
}  // namespace stegafast
