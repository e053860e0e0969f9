// The CPU attention kernels compiled for AVX-512: 16-float vectors and twice the
// registers of AVX2, so each matrix-product tile holds 8 rows of accumulators.
// Only float gets this build, as for AVX2 (see attention_cpu_avx2.cpp).
#include "attention_cpu_avx512.h"

#include <cstdlib>
#include <cstring>

#include "../common/cpu_variants.h"

#if defined(__x86_64__) && defined(__GNUC__)
// Every header first, under the baseline target (see attention_cpu_avx2.cpp).
#include <cmath>
#include <cstdint>
#include <limits>

#include "attention.h"

namespace stegafast {
namespace attention {
namespace avx512 {

bool avx512_usable() {
  static const bool yes = [] {
    const char* forced = std::getenv("STEGAFAST_CPU_VARIANT");
    if (forced != nullptr && std::strcmp(forced, "avx2") == 0) return false;
    return cpu::has_avx2_fma() && __builtin_cpu_supports("avx512f") != 0;
  }();
  return yes;
}

}  // namespace avx512
}  // namespace attention
}  // namespace stegafast

#pragma GCC target("avx512f,avx512vl,avx512dq,avx2,fma")
#define SF_CPU_VARIANT avx512
#define SF_VECTOR_BYTES 64
#include "attention_cpu_kernels.h"

namespace stegafast {
namespace attention {
namespace avx512 {

void forward_item(const ForwardItem<float>& item) { forward_item<float>(item); }
void backward_item(const BackwardItem<float>& item) { backward_item<float>(item); }
void transpose(const float* src, int64_t rows, int64_t cols, float* dst, int64_t ld) {
  transpose_rows(src, rows, cols, dst, ld);
}

}  // namespace avx512
}  // namespace attention
}  // namespace stegafast
#else
namespace stegafast {
namespace attention {
namespace avx512 {

bool avx512_usable() { return false; }
void forward_item(const ForwardItem<float>&) {}
void backward_item(const BackwardItem<float>&) {}
void transpose(const float*, int64_t, int64_t, float*, int64_t) {}

}  // namespace avx512
}  // namespace attention
}  // namespace stegafast
#endif
