#pragma once
// Lets one header of kernel math compile for the host compiler and for nvcc.

// SF_LAMBDA goes after a lambda's parameter list to force it inline likewise.
#if defined(__CUDACC__) || defined(__HIPCC__)
#define SF_HD __host__ __device__ __forceinline__
#define SF_LAMBDA
#elif defined(__GNUC__)
// Forced: GCC otherwise keeps the larger helpers out of line and, in a shared
// library, calls them through the PLT, which also stops the loops vectorising;
// and a helper compiled for the baseline target cannot take in a reader compiled
// for AVX2 (common/cpu_variants.h), so it must itself be inlined into the kernel.
#define SF_HD inline __attribute__((always_inline))
#define SF_LAMBDA __attribute__((always_inline))
#else
#define SF_HD inline
#define SF_LAMBDA
#endif

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace stegafast {

// Accumulation type: half types widen to float so that integer-valued 8-bit
// images stay exact; int32 widens to int64 so a sum of two cannot overflow (the
// lifting does not use it: its int32 arithmetic wraps, see lifting::lift_acc_t).
template <typename T>
struct AccType {
  using type = float;
};
template <>
struct AccType<double> {
  using type = double;
};
template <>
struct AccType<int32_t> {
  using type = int64_t;
};
template <typename T>
using acc_t = typename AccType<T>::type;

}  // namespace stegafast
