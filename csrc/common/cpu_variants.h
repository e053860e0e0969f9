#pragma once
// CPU kernels compiled more than once, for the baseline x86-64 instruction set
// and for AVX2 + FMA, with the best one picked at run time. The recipe for a
// kernel is in csrc/README.md ("Adding a CPU variant"); in short:
//   <kernel>_cpu_kernels.h  the kernels as templates in `namespace SF_CPU_VARIANT`
//   <kernel>_cpu_avx2.h     their declarations in namespace avx2, and which dtypes
//                           the AVX2 build has
//   <kernel>_cpu_avx2.cpp   common/cpu_variant_avx2.h, then the kernels header, then
//                           explicit instantiations for those dtypes
//   <kernel>_cpu.cpp        the baseline build, and SF_CPU_BEST_VARIANT to call either
//
// A variant's source file must include no torch header: under
// `#pragma GCC target`, the inline functions of torch and of the C++ standard
// library would be compiled for AVX2 too, and the linker could then hand those
// copies to baseline code running on a CPU without AVX2. Variant code therefore
// reaches the thread pool through this plain function-pointer interface, and
// keeps its code in a namespace of its own.
#include <cstdint>

// 1 where AVX2 builds are compiled (x86-64 with GCC or Clang), else 0: then
// every <kernel>_cpu_avx2.cpp compiles to nothing and only the baseline runs.
// -DSF_CPU_AVX2_VARIANTS=0 builds that way on x86-64 too (how the path taken
// elsewhere is checked here).
#ifndef SF_CPU_AVX2_VARIANTS
#if defined(__x86_64__) && defined(__GNUC__)
#define SF_CPU_AVX2_VARIANTS 1
#else
#define SF_CPU_AVX2_VARIANTS 0
#endif
#endif

namespace stegafast {
namespace cpu {

// body(ctx, begin, end) processes items [begin, end).
using RangeBody = void (*)(void* ctx, int64_t begin, int64_t end);
// Runs body over [0, n) split into ranges of at least `grain` items, in parallel.
using ParallelFor = void (*)(int64_t n, int64_t grain, void* ctx, RangeBody body);

// at::parallel_for behind the interface above (defined in common/cpu_variants.cpp).
void torch_parallel_for(int64_t n, int64_t grain, void* ctx, RangeBody body);

// Whether the AVX2 + FMA builds run here (decided once): they were compiled,
// the CPU has both, and STEGAFAST_CPU_VARIANT (auto, the default: the best build
// that runs; baseline; avx2) does not ask for the baseline.
bool has_avx2_fma();

// What the user should be told about STEGAFAST_CPU_VARIANT: why an unknown value
// was ignored, or why avx2 could not be used; "" when it was followed.
// stegafast._C.cpu_variant_note() returns it, and importing stegafast warns.
const char* variant_note();

}  // namespace cpu
}  // namespace stegafast

// In a baseline file (<kernel>_cpu.cpp), inside the kernel's namespace, where
// both `baseline::fn` and `avx2::fn` are declared: returns avx2::fn(args...)
// when `avx2_built` (a constant: the AVX2 build was instantiated for these
// argument types) and the CPU runs it, else baseline::fn(args...). The AVX2 call
// sits in a discarded `if constexpr` branch otherwise, so it is never
// instantiated (nor needs to link) for dtypes the AVX2 build lacks.
#define SF_CPU_BEST_VARIANT(avx2_built, fn, ...)                          \
  do {                                                                    \
    if constexpr ((avx2_built) && SF_CPU_AVX2_VARIANTS) {                 \
      if (::stegafast::cpu::has_avx2_fma()) return avx2::fn(__VA_ARGS__); \
    }                                                                     \
    return baseline::fn(__VA_ARGS__);                                     \
  } while (0)
