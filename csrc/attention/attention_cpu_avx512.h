#pragma once
// Entry points of the AVX-512 build of the CPU attention kernels
// (attention_cpu_kernels.h compiled by attention_cpu_avx512.cpp), for float
// only; call only when avx512_usable() is true. Built where the AVX2 builds are
// (SF_CPU_AVX2_VARIANTS, common/cpu_variants.h); the attention kernels are the
// only ones with this third build, so `stegafast info` still names AVX2.
#include <cstdint>

#include "../common/cpu_variants.h"
#include "attention_cpu_items.h"

namespace stegafast {
namespace attention {
namespace avx512 {

// Whether the AVX-512 build runs here: the AVX2 builds run (so
// STEGAFAST_CPU_VARIANT=baseline is not set), the CPU has AVX-512 F, and
// STEGAFAST_CPU_VARIANT=avx2 is not set (it keeps the AVX2 build, for tests and
// comparisons). Checked once.
bool avx512_usable();

template <typename A>
void forward_item(const ForwardItem<A>& item);
template <typename A>
void backward_item(const BackwardItem<A>& item);
void transpose(const float* src, int64_t rows, int64_t cols, float* dst, int64_t ld);

}  // namespace avx512
}  // namespace attention
}  // namespace stegafast
