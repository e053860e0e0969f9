// The CPU attention kernels compiled for AVX2 + FMA: 8-float vectors in one
// register and fused multiply-adds in every matrix product. Only float gets this
// build (double is for gradient checks; half types are staged to float by
// attention_cpu.cpp, which may include torch's types where this file may not:
// see common/cpu_variants.h).
#if defined(__x86_64__) && defined(__GNUC__)
// Every header first, under the baseline target: only the kernels below are
// compiled for AVX2 (baseline helpers inline into them and take their target).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "attention.h"
#include "attention_cpu_avx2.h"

#pragma GCC target("avx2,fma")
#define SF_CPU_VARIANT avx2
#define SF_VECTOR_BYTES 32
#include "attention_cpu_kernels.h"

namespace stegafast {
namespace attention {
namespace avx2 {

void forward_item(const ForwardItem<float>& item) { forward_item<float>(item); }
void backward_item(const BackwardItem<float>& item) { backward_item<float>(item); }
void transpose(const float* src, int64_t rows, int64_t cols, float* dst, int64_t ld) {
  transpose_rows(src, rows, cols, dst, ld);
}

}  // namespace avx2
}  // namespace attention
}  // namespace stegafast
#endif
