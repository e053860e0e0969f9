#pragma once
// Shape checks and output allocation shared by the CPU and CUDA ILWT kernels.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

#include "../common/checks.h"
#include "lifting.h"

namespace stegafast {
namespace lifting {

// Geometry of a (B, C, H, W) image batch.
inline Geometry image_geometry(const at::Tensor& x, const char* name) {
  check_image_batch(x, name);
  const int64_t h = x.size(2), w = x.size(3);
  TORCH_CHECK(h >= 2 && w >= 2, name, " needs H >= 2 and W >= 2, got ", h, "x", w);
  return {x.size(0), x.size(1), h, w, half_len(h), half_len(w)};
}

// Geometry of a (B, 4C, ceil(H/2), ceil(W/2)) subband batch for an (H, W) image.
inline Geometry band_geometry(const at::Tensor& y, c10::IntArrayRef size, const char* name) {
  check_image_batch(y, name);
  TORCH_CHECK(size.size() == 2, "image size must have two entries (H, W)");
  const int64_t h = size[0], w = size[1];
  TORCH_CHECK(h >= 2 && w >= 2, "image size needs H >= 2 and W >= 2, got ", h, "x", w);
  TORCH_CHECK(y.size(1) % 4 == 0, name, " needs 4*C channels, got ", y.size(1));
  TORCH_CHECK(y.size(2) == half_len(h) && y.size(3) == half_len(w), name, " of spatial size ",
              y.size(2), "x", y.size(3), " cannot come from a ", h, "x", w, " image");
  return {y.size(0), y.size(1) / 4, h, w, half_len(h), half_len(w)};
}

inline void check_rounding(const at::Tensor& t, bool rounding) {
  TORCH_CHECK(rounding || at::isFloatingType(t.scalar_type()),
              "ilwt53: integer tensors need rounding=True (the integer transform)");
}

inline at::Tensor empty_bands(const at::Tensor& like, const Geometry& g) {
  return at::empty({g.batch, 4 * g.channels, g.kh, g.kw}, like.options());
}

inline at::Tensor empty_image(const at::Tensor& like, const Geometry& g) {
  return at::empty({g.batch, g.channels, g.h, g.w}, like.options());
}

}  // namespace lifting
}  // namespace stegafast
