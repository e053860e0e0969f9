#pragma once
// Last-line checks inside kernels. Users get friendlier messages from the Python
// wrappers (stegafast/ops/), which validate before anything native runs; these
// keep a direct torch.ops call from reading out of bounds.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace stegafast {

inline void check_image_batch(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.dim() == 4, name, " must be a 4-D (B, C, H, W) tensor, got ", t.dim(), " dims");
}

}  // namespace stegafast
