// The CPU lifting kernels compiled for AVX2 + FMA: twice the vector width of
// the x86-64 baseline. No torch header may be included here (see
// common/cpu_variants.h). FMA contraction cannot change results: every product
// in the lifting is by 1/2 or 1/4, hence exact.
#include "../common/cpu_variants.h"

#if SF_CPU_AVX2_VARIANTS
// Every header first, under the baseline target: only the kernels below are
// compiled for AVX2 (baseline helpers inline into them and take their target).
#include <cstdlib>
#include <new>

#include "lifting_cpu_avx2.h"

#include "../common/cpu_variant_avx2.h"
#include "lifting_cpu_kernels.h"

namespace stegafast {
namespace lifting {
namespace avx2 {

// The dtypes of kAvx2Transforms and kAvx2Adjoints (lifting_cpu_avx2.h).
template void run_forward(const float*, float*, const Geometry&, bool, cpu::ParallelFor);
template void run_forward(const double*, double*, const Geometry&, bool, cpu::ParallelFor);
template void run_forward(const int32_t*, int32_t*, const Geometry&, bool, cpu::ParallelFor);
template void run_inverse(const float*, float*, const Geometry&, bool, cpu::ParallelFor);
template void run_inverse(const double*, double*, const Geometry&, bool, cpu::ParallelFor);
template void run_inverse(const int32_t*, int32_t*, const Geometry&, bool, cpu::ParallelFor);
template void run_forward_adjoint(const float*, float*, const Geometry&, cpu::ParallelFor);
template void run_forward_adjoint(const double*, double*, const Geometry&, cpu::ParallelFor);
template void run_inverse_adjoint(const float*, float*, const Geometry&, cpu::ParallelFor);
template void run_inverse_adjoint(const double*, double*, const Geometry&, cpu::ParallelFor);

}  // namespace avx2
}  // namespace lifting
}  // namespace stegafast
#endif
