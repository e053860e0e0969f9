#pragma once
// The two JPEG block operators, written once for every device: checks, output
// allocation, dtype dispatch. A device supplies its kernels as a struct K with
//   using Guard = ...;   // a device guard, or a no-op
//   template <Rounding R, typename T, typename A> static void forward(
//       const DctBasis<A>&, const T* x, const T* qtable, T* y, const Geometry&);
//   template <Rounding R, typename T, typename A> static void backward(
//       const DctBasis<A>&, const T* gy, const T* x, const T* qtable, T* gx, const Geometry&);
// (backward is never called for ste, whose gradient is grad_y itself) and
// registers the ops with SF_REGISTER_JPEG_OPS(m, K).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <c10/util/string_view.h>

#include <string>

#include "../common/checks.h"
#include "../common/dispatch.h"
#include "jpeg.h"

namespace stegafast {
namespace jpeg {

inline Rounding parse_rounding(c10::string_view name, const char* op) {
  if (name == "ste") return Rounding::kSte;
  if (name == "cubic") return Rounding::kCubic;
  TORCH_CHECK(name == "ste_cubic", op, ": rounding must be \"ste\", \"cubic\" or \"ste_cubic\", got \"",
              std::string(name), "\"");
  return Rounding::kSteCubic;
}

// The geometry of x after checking it and the table against it.
inline Geometry checked_geometry(const at::Tensor& x, const at::Tensor& qtable, const char* op) {
  check_image_batch(x, "x");
  check_float(x, op, "x");
  TORCH_CHECK(x.size(2) % kBlock == 0 && x.size(3) % kBlock == 0, op,
              ": x's height and width must be multiples of 8, got ", x.sizes());
  TORCH_CHECK(qtable.dim() == 4 && qtable.size(0) == x.size(0) && qtable.size(1) == x.size(1) &&
                  qtable.size(2) == kBlock && qtable.size(3) == kBlock,
              op, ": qtable must have shape (", x.size(0), ", ", x.size(1), ", 8, 8), got ", qtable.sizes());
  check_same_dtype_and_device(x, "x", qtable, "qtable", op);
  return {x.size(0) * x.size(1), x.size(2), x.size(3), x.size(2) / kBlock, x.size(3) / kBlock};
}

template <typename K, typename T, typename A>
void run_forward(Rounding r, const DctBasis<A>& b, const T* x, const T* q, T* y, const Geometry& g) {
  switch (r) {
    case Rounding::kSte:
      return K::template forward<Rounding::kSte, T, A>(b, x, q, y, g);
    case Rounding::kCubic:
      return K::template forward<Rounding::kCubic, T, A>(b, x, q, y, g);
    case Rounding::kSteCubic:
      return K::template forward<Rounding::kSteCubic, T, A>(b, x, q, y, g);
  }
}

template <typename K>
at::Tensor forward_op(const at::Tensor& x_, const at::Tensor& qtable_, c10::string_view rounding) {
  const char* op = "jpeg_quantize_blocks";
  const Geometry g = checked_geometry(x_, qtable_, op);
  const Rounding r = parse_rounding(rounding, op);
  const typename K::Guard guard(x_.device());
  const at::Tensor x = x_.contiguous(), qtable = qtable_.contiguous();
  at::Tensor y = at::empty(x.sizes(), x.options());
  if (g.blocks() == 0) return y;
  SF_DISPATCH_FLOAT(x.scalar_type(), "jpeg_quantize_blocks", [&] {
    using A = acc_t<scalar_t>;
    run_forward<K, scalar_t, A>(r, DctBasis<A>::make(), x.const_data_ptr<scalar_t>(), qtable.const_data_ptr<scalar_t>(),
                                y.mutable_data_ptr<scalar_t>(), g);
  });
  return y;
}

template <typename K>
at::Tensor backward_op(const at::Tensor& gy_, const at::Tensor& x_, const at::Tensor& qtable_,
                       c10::string_view rounding) {
  const char* op = "jpeg_quantize_blocks_backward";
  const Geometry g = checked_geometry(x_, qtable_, op);
  const Rounding r = parse_rounding(rounding, op);
  check_like(x_, "x", gy_, "grad_y", op);
  const typename K::Guard guard(x_.device());
  const at::Tensor gy = gy_.contiguous();
  // ste's gradient is the identity: D^T D grad_y D^T D = grad_y, exactly; a copy,
  // since an op's output must not alias its input
  if (r == Rounding::kSte) return gy.is_same(gy_) ? gy.clone() : gy;
  const at::Tensor x = x_.contiguous(), qtable = qtable_.contiguous();
  at::Tensor gx = at::empty(x.sizes(), x.options());
  if (g.blocks() == 0) return gx;
  SF_DISPATCH_FLOAT(x.scalar_type(), "jpeg_quantize_blocks_backward", [&] {
    using A = acc_t<scalar_t>;
    const DctBasis<A> b = DctBasis<A>::make();
    const scalar_t* gyp = gy.const_data_ptr<scalar_t>();
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* qp = qtable.const_data_ptr<scalar_t>();
    scalar_t* gxp = gx.mutable_data_ptr<scalar_t>();
    if (r == Rounding::kCubic) {
      K::template backward<Rounding::kCubic, scalar_t, A>(b, gyp, xp, qp, gxp, g);
    } else {
      K::template backward<Rounding::kSteCubic, scalar_t, A>(b, gyp, xp, qp, gxp, g);
    }
  });
  return gx;
}

}  // namespace jpeg
}  // namespace stegafast

// Registers the two operators of kernel set K for a dispatch key.
#define SF_REGISTER_JPEG_OPS(m, K)                                             \
  do {                                                                         \
    m.impl("jpeg_quantize_blocks", &stegafast::jpeg::forward_op<K>);           \
    m.impl("jpeg_quantize_blocks_backward", &stegafast::jpeg::backward_op<K>); \
  } while (0)
