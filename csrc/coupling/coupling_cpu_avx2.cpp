// The CPU coupling kernels compiled for AVX2 + FMA: twice the vector width of
// the x86-64 baseline, and fused multiply-adds for the polynomials of PolyMath.
// Only float gets this build (double runs libm, which does not vectorise; half
// types convert through torch's types, which may not be included here: see
// common/cpu_variants.h).
#if defined(__x86_64__) && defined(__GNUC__)
// Every header first, under the baseline target: only the kernels below are
// compiled for AVX2 (baseline helpers inline into them and take their target).
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "coupling_cpu_avx2.h"

#pragma GCC target("avx2,fma")
#define SF_CPU_VARIANT avx2
#include "coupling_cpu_kernels.h"

namespace stegafast {
namespace coupling {
namespace avx2 {

void coupling(Samples<const float> in, Samples<const float> r, Samples<const float> t, float* out,
              float* partials, float* logdet, const Layout& g, ClampFn fn, double clamp, bool inverse,
              cpu::ParallelFor parallel) {
  run_coupling(in, r, t, out, partials, logdet, g, fn, clamp, inverse, parallel);
}

void forward_grad(Samples<const float> gy, const float* gl, Samples<const float> x,
                  Samples<const float> r, float* gx, float* gr, const Layout& g, ClampFn fn,
                  double clamp, cpu::ParallelFor parallel) {
  run_forward_grad(gy, gl, x, r, gx, gr, g, fn, clamp, parallel);
}

void inverse_grad(Samples<const float> gx, const float* gl, Samples<const float> x,
                  Samples<const float> r, float* gy, float* gr, float* gt, const Layout& g,
                  ClampFn fn, double clamp, cpu::ParallelFor parallel) {
  run_inverse_grad(gx, gl, x, r, gy, gr, gt, g, fn, clamp, parallel);
}

}  // namespace avx2
}  // namespace coupling
}  // namespace stegafast
#endif
