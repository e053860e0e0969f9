#include "cpu_variants.h"

#include <ATen/Parallel.h>

#include <cstdlib>
#include <cstring>

namespace stegafast {
namespace cpu {

void torch_parallel_for(int64_t n, int64_t grain, void* ctx, RangeBody body) {
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) { body(ctx, begin, end); });
}

namespace {

bool detect_avx2_fma() {
  // STEGAFAST_CPU_VARIANT=baseline forces the baseline build (for tests and comparisons).
  const char* forced = std::getenv("STEGAFAST_CPU_VARIANT");
  if (forced != nullptr && std::strcmp(forced, "baseline") == 0) return false;
#if SF_CPU_AVX2_VARIANTS
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

}  // namespace

bool has_avx2_fma() {
  static const bool yes = detect_avx2_fma();
  return yes;
}

}  // namespace cpu
}  // namespace stegafast
