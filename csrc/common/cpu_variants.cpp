#include "cpu_variants.h"

#include <ATen/Parallel.h>

#include <cstdlib>
#include <string>

namespace stegafast {
namespace cpu {

void torch_parallel_for(int64_t n, int64_t grain, void* ctx, RangeBody body) {
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) { body(ctx, begin, end); });
}

namespace {

bool avx2_fma_runs_here() {
#if SF_CPU_AVX2_VARIANTS
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

// The build the kernels run, from STEGAFAST_CPU_VARIANT (read once), and a note
// for the user when the request could not be followed as written.
struct Choice {
  bool avx2;
  std::string note;  // empty when the request was followed
};

Choice choose() {
  const char* env = std::getenv("STEGAFAST_CPU_VARIANT");
  const std::string requested = env != nullptr ? env : "";
  const bool avx2 = avx2_fma_runs_here();
  if (requested.empty() || requested == "auto") return {avx2, ""};
  if (requested == "baseline") return {false, ""};
  if (requested == "avx2") {
    if (avx2) return {true, ""};
    return {false, SF_CPU_AVX2_VARIANTS ? "STEGAFAST_CPU_VARIANT=avx2, but this CPU lacks AVX2 or FMA; using baseline"
                                        : "STEGAFAST_CPU_VARIANT=avx2, but this build has no AVX2 kernels (not an "
                                          "x86-64 GCC/Clang build, or built with -DSF_CPU_AVX2_VARIANTS=0); "
                                          "using baseline"};
  }
  // the same rule as STEGAFAST_BACKEND: an unknown value is ignored, and said so
  return {avx2, "ignoring STEGAFAST_CPU_VARIANT='" + requested +
                    "': expected one of auto (the default), baseline, avx2; using auto"};
}

const Choice& choice() {
  static const Choice c = choose();
  return c;
}

}  // namespace

bool has_avx2_fma() { return choice().avx2; }

const char* variant_note() { return choice().note.c_str(); }

}  // namespace cpu
}  // namespace stegafast
