#pragma once
// The device guard of a CPU kernel set. Every <kernel>_ops.h takes
// `const typename K::Guard guard(tensor.device());` before it allocates or
// launches anything, so one operator body serves every device: CUDA kernel sets
// name common/cuda_launch.h's cuda::DeviceGuard, CPU ones this no-op.
#include <c10/core/Device.h>

namespace stegafast {

struct NoGuard {
  explicit NoGuard(c10::Device) {}
};

}  // namespace stegafast
