#pragma once
// Entry points of the AVX2 + FMA build of the CPU attention kernels
// (attention_cpu_kernels.h compiled by attention_cpu_avx2.cpp), for float only;
// call only when cpu::has_avx2_fma() is true.
#include <cstdint>

#include "../common/cpu_variants.h"
#include "attention_cpu_items.h"

namespace stegafast {
namespace attention {
namespace avx2 {

template <typename A>
void forward_item(const ForwardItem<A>& item);
template <typename A>
void backward_item(const BackwardItem<A>& item);
// dst[c][r] = src[r][c] for a rows x cols block, into rows of ld values.
void transpose(const float* src, int64_t rows, int64_t cols, float* dst, int64_t ld);

}  // namespace avx2
}  // namespace attention
}  // namespace stegafast
