#pragma once
// The AVX2 + FMA build of the CPU lifting kernels: the entry points of
// lifting_cpu_kernels.h declared in namespace avx2, instantiated in
// lifting_cpu_avx2.cpp for the dtypes below. Called through
// SF_CPU_BEST_VARIANT (common/cpu_variants.h) only.
#include <type_traits>

#include "../common/cpu_variants.h"
#include "lifting.h"

namespace stegafast {
namespace lifting {

// float and double have AVX2 builds of all four operations, int32 of the two
// transforms (integer images have no gradients). Half types always run the
// baseline: they convert through torch's types, which a variant may not include.
template <typename T>
constexpr bool kAvx2Adjoints = std::is_same<T, float>::value || std::is_same<T, double>::value;
template <typename T>
constexpr bool kAvx2Transforms = kAvx2Adjoints<T> || std::is_same<T, int32_t>::value;

namespace avx2 {

template <typename T>
void run_forward(const T* x, T* y, const Geometry& g, bool rounding, cpu::ParallelFor par);
template <typename T>
void run_inverse(const T* y, T* x, const Geometry& g, bool rounding, cpu::ParallelFor par);
template <typename T>
void run_forward_adjoint(const T* gy, T* gx, const Geometry& g, cpu::ParallelFor par);
template <typename T>
void run_inverse_adjoint(const T* gx, T* gy, const Geometry& g, cpu::ParallelFor par);

}  // namespace avx2
}  // namespace lifting
}  // namespace stegafast
