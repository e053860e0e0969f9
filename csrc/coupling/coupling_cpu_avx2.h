#pragma once
// Entry points of the AVX2 + FMA build of the CPU coupling kernels
// (coupling_cpu_avx2.cpp), for float; call only when cpu::has_avx2_fma() is true.
#include "../common/cpu_variants.h"
#include "coupling.h"

namespace stegafast {
namespace coupling {
namespace avx2 {

void coupling(Samples<const float> in, Samples<const float> r, Samples<const float> t, float* out,
              float* partials, float* logdet, const Layout& g, ClampFn fn, double clamp, bool inverse,
              cpu::ParallelFor parallel);
void forward_grad(Samples<const float> gy, const float* gl, Samples<const float> x,
                  Samples<const float> r, float* gx, float* gr, const Layout& g, ClampFn fn,
                  double clamp, cpu::ParallelFor parallel);
void inverse_grad(Samples<const float> gx, const float* gl, Samples<const float> x,
                  Samples<const float> r, float* gy, float* gr, float* gt, const Layout& g,
                  ClampFn fn, double clamp, cpu::ParallelFor parallel);

}  // namespace avx2
}  // namespace coupling
}  // namespace stegafast
