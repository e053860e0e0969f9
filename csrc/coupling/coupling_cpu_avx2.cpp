// The CPU coupling kernels compiled for AVX2 + FMA: twice the vector width of
// the x86-64 baseline, and fused multiply-adds for the polynomials of PolyMath.
// Only float gets this build (see coupling_cpu_avx2.h). No torch header may be
// included here (see common/cpu_variants.h).
#include "../common/cpu_variants.h"

#if SF_CPU_AVX2_VARIANTS
// Every header first, under the baseline target: only the kernels below are
// compiled for AVX2 (baseline helpers inline into them and take their target).
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "coupling_cpu_avx2.h"

#include "../common/cpu_variant_avx2.h"
#include "coupling_cpu_kernels.h"

namespace stegafast {
namespace coupling {
namespace avx2 {

// The dtypes of kAvx2Build (coupling_cpu_avx2.h).
template void run_coupling(Samples<const float>, Samples<const float>, Samples<const float>, float*, float*, float*,
                           const Layout&, ClampFn, double, bool, cpu::ParallelFor);
template void run_forward_grad(Samples<const float>, const float*, Samples<const float>, Samples<const float>, float*,
                               float*, const Layout&, ClampFn, double, cpu::ParallelFor);
template void run_inverse_grad(Samples<const float>, const float*, Samples<const float>, Samples<const float>, float*,
                               float*, float*, const Layout&, ClampFn, double, cpu::ParallelFor);

}  // namespace avx2
}  // namespace coupling
}  // namespace stegafast
#endif
