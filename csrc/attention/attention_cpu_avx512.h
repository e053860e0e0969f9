#pragma once
// Entry points of the AVX-512 build of the CPU attention kernels
// (attention_cpu_avx512.cpp), for float; call only when avx512_usable() is true.
#include "attention_cpu_items.h"

namespace stegafast {
namespace attention {
namespace avx512 {

// Whether the AVX-512 build runs here: the AVX2 build does (so
// STEGAFAST_CPU_VARIANT=baseline is not set), the CPU has AVX-512 F, and
// STEGAFAST_CPU_VARIANT=avx2 is not set (it keeps the AVX2 build, for tests and
// comparisons). Checked once.
bool avx512_usable();

void forward_item(const ForwardItem<float>& item);
void backward_item(const BackwardItem<float>& item);
// dst[c][r] = src[r][c] for a rows x cols block, into rows of ld values.
void transpose(const float* src, int64_t rows, int64_t cols, float* dst, int64_t ld);

}  // namespace avx512
}  // namespace attention
}  // namespace stegafast
