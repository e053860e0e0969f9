#pragma once
// The AVX2 + FMA build of the CPU coupling kernels: the entry points of
// coupling_cpu_kernels.h declared in namespace avx2, instantiated in
// coupling_cpu_avx2.cpp for float. Called through SF_CPU_BEST_VARIANT
// (common/cpu_variants.h) only.
#include <type_traits>

#include "../common/cpu_variants.h"
#include "coupling.h"

namespace stegafast {
namespace coupling {

// Only float has an AVX2 build: double runs libm, which does not vectorise, and
// half types convert through torch's types, which a variant may not include.
template <typename T>
constexpr bool kAvx2Build = std::is_same<T, float>::value;

namespace avx2 {

template <typename T, typename A>
void run_coupling(Samples<const T> in, Samples<const T> r, Samples<const T> t, T* out, A* partials, A* logdet,
                  const Layout& g, ClampFn fn, double clamp, bool inverse, cpu::ParallelFor parallel);
template <typename T, typename A>
void run_forward_grad(Samples<const T> gy, const A* gl, Samples<const T> x, Samples<const T> r, T* gx, T* gr,
                      const Layout& g, ClampFn fn, double clamp, cpu::ParallelFor parallel);
template <typename T, typename A>
void run_inverse_grad(Samples<const T> gx, const A* gl, Samples<const T> x, Samples<const T> r, T* gy, T* gr, T* gt,
                      const Layout& g, ClampFn fn, double clamp, cpu::ParallelFor parallel);

}  // namespace avx2
}  // namespace coupling
}  // namespace stegafast
