#pragma once
// CPU kernels compiled more than once, for the baseline x86-64 instruction set
// and for AVX2 + FMA, with the best one picked at run time.
//
// A variant's source file must include no torch header: under
// `#pragma GCC target`, the inline functions of torch and of the C++ standard
// library would be compiled for AVX2 too, and the linker could then hand those
// copies to baseline code running on a CPU without AVX2. Variant code therefore
// reaches the thread pool through this plain function-pointer interface, and
// keeps its code in a namespace of its own.
#include <cstdint>

namespace stegafast {
namespace cpu {

// body(ctx, begin, end) processes items [begin, end).
using RangeBody = void (*)(void* ctx, int64_t begin, int64_t end);
// Runs body over [0, n) split into ranges of at least `grain` items, in parallel.
using ParallelFor = void (*)(int64_t n, int64_t grain, void* ctx, RangeBody body);

// at::parallel_for behind the interface above (defined in common/cpu_variants.cpp).
void torch_parallel_for(int64_t n, int64_t grain, void* ctx, RangeBody body);

// Whether the AVX2 + FMA builds run here: the CPU has both and
// STEGAFAST_CPU_VARIANT=baseline is not set (checked once).
bool has_avx2_fma();

}  // namespace cpu
}  // namespace stegafast
