#pragma once
// The four ILWT operators, written once for every device: shape checks, output
// allocation, dtype dispatch. A device supplies its kernels as a struct K with
//   using Guard = ...;                         // a device guard, or a no-op
//   template <typename T> static void forward(const T* x, T* y, const Geometry&, bool rounding);
//   template <typename T> static void inverse(const T* y, T* x, const Geometry&, bool rounding);
//   template <typename T> static void forward_adjoint(const T* gy, T* gx, const Geometry&);
//   template <typename T> static void inverse_adjoint(const T* gx, T* gy, const Geometry&);
// and registers ForwardOp<K>::run and its siblings for its dispatch key.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

#include "../common/checks.h"
#include "../common/dispatch.h"
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
  TORCH_CHECK(y.size(2) == half_len(h) && y.size(3) == half_len(w), name, " of spatial size ", y.size(2), "x",
              y.size(3), " cannot come from a ", h, "x", w, " image");
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

template <typename K>
at::Tensor forward_op(const at::Tensor& x_in, bool rounding) {
  const Geometry g = image_geometry(x_in, "ilwt53_forward input");
  check_rounding(x_in, rounding);
  const typename K::Guard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  at::Tensor y = empty_bands(x, g);
  SF_DISPATCH_FLOAT_AND_INT(x.scalar_type(), "ilwt53_forward", [&] {
    K::forward(x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(), g, rounding);
  });
  return y;
}

template <typename K>
at::Tensor inverse_op(const at::Tensor& y_in, c10::IntArrayRef out_size, bool rounding) {
  const Geometry g = band_geometry(y_in, out_size, "ilwt53_inverse input");
  check_rounding(y_in, rounding);
  const typename K::Guard guard(y_in.device());
  const at::Tensor y = y_in.contiguous();
  at::Tensor x = empty_image(y, g);
  SF_DISPATCH_FLOAT_AND_INT(y.scalar_type(), "ilwt53_inverse", [&] {
    K::inverse(y.const_data_ptr<scalar_t>(), x.mutable_data_ptr<scalar_t>(), g, rounding);
  });
  return x;
}

template <typename K>
at::Tensor forward_backward_op(const at::Tensor& gy_in, c10::IntArrayRef in_size) {
  const Geometry g = band_geometry(gy_in, in_size, "ilwt53_forward_backward grad");
  const typename K::Guard guard(gy_in.device());
  const at::Tensor gy = gy_in.contiguous();
  at::Tensor gx = empty_image(gy, g);
  SF_DISPATCH_FLOAT(gy.scalar_type(), "ilwt53_forward_backward",
                    [&] { K::forward_adjoint(gy.const_data_ptr<scalar_t>(), gx.mutable_data_ptr<scalar_t>(), g); });
  return gx;
}

template <typename K>
at::Tensor inverse_backward_op(const at::Tensor& gx_in) {
  const Geometry g = image_geometry(gx_in, "ilwt53_inverse_backward grad");
  const typename K::Guard guard(gx_in.device());
  const at::Tensor gx = gx_in.contiguous();
  at::Tensor gy = empty_bands(gx, g);
  SF_DISPATCH_FLOAT(gx.scalar_type(), "ilwt53_inverse_backward",
                    [&] { K::inverse_adjoint(gx.const_data_ptr<scalar_t>(), gy.mutable_data_ptr<scalar_t>(), g); });
  return gy;
}

}  // namespace lifting
}  // namespace stegafast

// Registers the four operators of kernel set K for a dispatch key.
#define SF_REGISTER_LIFTING_OPS(m, K)                                               \
  do {                                                                              \
    m.impl("ilwt53_forward", &stegafast::lifting::forward_op<K>);                   \
    m.impl("ilwt53_inverse", &stegafast::lifting::inverse_op<K>);                   \
    m.impl("ilwt53_forward_backward", &stegafast::lifting::forward_backward_op<K>); \
    m.impl("ilwt53_inverse_backward", &stegafast::lifting::inverse_backward_op<K>); \
  } while (0)
