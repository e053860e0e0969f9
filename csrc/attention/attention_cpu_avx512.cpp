// The CPU attention kernels compiled for AVX-512: 16-float vectors and twice the
// registers of AVX2, so that a matrix-product tile holds 6 rows by 2 vectors of
// accumulators. Only float gets this build, as for AVX2 (see attention_cpu_avx2.cpp).
#include "../common/cpu_variants.h"

#if SF_CPU_AVX2_VARIANTS
// every header the kernels need, under the baseline target
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>

#include "attention.h"
#include "attention_cpu_avx512.h"

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

// from here on: AVX-512 (with AVX2 and FMA), SF_CPU_VARIANT = avx512
#pragma GCC target("avx512f,avx512vl,avx512dq,avx2,fma")
#define SF_CPU_VARIANT avx512
#define SF_VECTOR_BYTES 64
#include "attention_cpu_kernels.h"

namespace stegafast {
namespace attention {
namespace avx512 {

template void forward_item<float>(const ForwardItem<float>&);
template void backward_item<float>(const BackwardItem<float>&);

}  // namespace avx512
}  // namespace attention
}  // namespace stegafast
#endif
