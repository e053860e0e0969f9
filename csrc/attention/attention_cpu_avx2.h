#pragma once
// Entry points of the AVX2 + FMA build of the CPU attention kernels
// (attention_cpu_avx2.cpp), for float; call only when cpu::has_avx2_fma() is true.
#include "../common/cpu_variants.h"
#include "attention_cpu_items.h"

namespace stegafast {
namespace attention {
namespace avx2 {

void forward_item(const ForwardItem<float>& item);
void backward_item(const BackwardItem<float>& item);

}  // namespace avx2
}  // namespace attention
}  // namespace stegafast
