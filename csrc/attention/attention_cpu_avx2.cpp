// The CPU attention kernels compiled for AVX2 + FMA: 8-float vectors in one
// register and fused multiply-adds in every matrix product. Only float gets this
// build (double is for gradient checks; half types are staged to float by
// attention_cpu.cpp, which may include torch's types where this file may not:
// see common/cpu_variants.h).
#include "../common/cpu_variants.h"

#if SF_CPU_AVX2_VARIANTS
// every header the kernels need, under the baseline target
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "attention.h"
#include "attention_cpu_avx2.h"

#include "../common/cpu_variant_avx2.h"  // from here on: AVX2 + FMA, SF_CPU_VARIANT = avx2
#define SF_VECTOR_BYTES 32
#include "attention_cpu_kernels.h"

namespace stegafast {
namespace attention {
namespace avx2 {

template void forward_item<float>(const ForwardItem<float>&);
template void backward_item<float>(const BackwardItem<float>&);

}  // namespace avx2
}  // namespace attention
}  // namespace stegafast
#endif
