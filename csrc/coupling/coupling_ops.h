#pragma once
// The four affine coupling operators, written once for every device: checks,
// output allocation, dtype dispatch. A device supplies its kernels as a struct K
// with
//   using Guard = ...;                  // a device guard, or a no-op
//   static constexpr int64_t kChunk;    // elements per logdet partial (see Layout)
//   template <typename T, typename A> static void coupling(
//       Samples<const T> in, Samples<const T> r, Samples<const T> t, T* out,
//       A* partials, A* logdet, const Layout&, ClampFn, double clamp, bool inverse);
//   template <typename T, typename A> static void forward_grad(
//       Samples<const T> gy, const A* gl, Samples<const T> x, Samples<const T> r,
//       T* gx, T* gr, const Layout&, ClampFn, double clamp);
//   template <typename T, typename A> static void inverse_grad(
//       Samples<const T> gx, const A* gl, Samples<const T> x, Samples<const T> r,
//       T* gy, T* gr, T* gt, const Layout&, ClampFn, double clamp);
// and registers the ops with SF_REGISTER_COUPLING_OPS(m, K). Inputs arrive as
// Samples views (each sample contiguous, any distance between samples), so
// channel slices of NCHW batches are read in place; outputs are contiguous.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <c10/util/string_view.h>

#include <cmath>
#include <tuple>

#include "../common/checks.h"
#include "../common/dispatch.h"
#include "coupling.h"

namespace stegafast {
namespace coupling {

// logdet (and its gradient) are float32 for float and half inputs, float64 for double.
inline at::ScalarType logdet_dtype(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

inline ClampFn parse_clamp_fn(c10::string_view name, const char* op) {
  if (name == "tanh") return ClampFn::kTanh;
  TORCH_CHECK(name == "atan", op, ": clamp_fn must be \"tanh\" or \"atan\", got \"", std::string(name), "\"");
  return ClampFn::kAtan;
}

inline void check_clamp(double clamp, const char* op) {
  TORCH_CHECK(std::isfinite(clamp) && clamp > 0, op, ": clamp must be finite and > 0, got ", clamp);
}

// The layout of a (B, ...) batch with elements-per-logdet-partial `chunk`.
inline Layout batch_layout(const at::Tensor& a, const char* name, const char* op, int64_t chunk) {
  TORCH_CHECK(a.dim() >= 2, op, ": ", name, " must be (B, ...) with at least one dim after the batch, got ", a.dim(),
              " dims");
  check_float(a, op, name);
  const int64_t batch = a.size(0);
  return make_layout(batch, batch > 0 ? a.numel() / batch : 0, chunk);
}

inline void check_grad_logdet(const at::Tensor& gl, const at::Tensor& ref, const char* op) {
  TORCH_CHECK(gl.dim() == 1 && gl.size(0) == ref.size(0), op, ": grad_logdet must have shape (", ref.size(0), "), got ",
              gl.sizes());
  TORCH_CHECK(gl.scalar_type() == logdet_dtype(ref.scalar_type()), op, ": grad_logdet must be ",
              logdet_dtype(ref.scalar_type()), " for ", ref.scalar_type(), " inputs, got ", gl.scalar_type());
  TORCH_CHECK(gl.device() == ref.device(), op, ": grad_logdet is on ", gl.device(), " but the inputs on ",
              ref.device());
}

inline at::Tensor empty_like_contiguous(const at::Tensor& a) { return at::empty(a.sizes(), a.options()); }

// Whether every sample a[b] of a (B, ...) tensor is contiguous in memory.
inline bool samples_contiguous(const at::Tensor& a) {
  int64_t expected = 1;
  for (int64_t d = a.dim() - 1; d >= 1; --d) {
    if (a.size(d) != 1 && a.stride(d) != expected) return false;
    expected *= a.size(d);
  }
  return true;
}

// a itself when its samples are contiguous (no copy), else a contiguous copy.
inline at::Tensor with_contiguous_samples(const at::Tensor& a) { return samples_contiguous(a) ? a : a.contiguous(); }

template <typename T>
Samples<const T> samples_of(const at::Tensor& a) {
  return {a.const_data_ptr<T>(), a.stride(0)};
}

template <typename K>
std::tuple<at::Tensor, at::Tensor> coupling_op(const at::Tensor& in_, const at::Tensor& r_, const at::Tensor& t_,
                                               double clamp, c10::string_view clamp_fn, bool inverse) {
  const char* op = inverse ? "affine_coupling_inverse" : "affine_coupling";
  const char* in_name = inverse ? "y" : "x";
  const Layout g = batch_layout(in_, in_name, op, K::kChunk);
  check_like(in_, in_name, r_, "s_raw", op);
  check_like(in_, in_name, t_, "t", op);
  check_clamp(clamp, op);
  const ClampFn fn = parse_clamp_fn(clamp_fn, op);
  const typename K::Guard guard(in_.device());
  const at::Tensor in = with_contiguous_samples(in_), r = with_contiguous_samples(r_), t = with_contiguous_samples(t_);
  at::Tensor out = empty_like_contiguous(in);
  const auto acc_options = in.options().dtype(logdet_dtype(in.scalar_type()));
  at::Tensor logdet = at::empty({g.batch}, acc_options);
  at::Tensor partials = at::empty({g.batch * g.chunks}, acc_options);
  SF_DISPATCH_FLOAT(in.scalar_type(), "affine_coupling", [&] {
    using A = acc_t<scalar_t>;
    K::template coupling<scalar_t, A>(samples_of<scalar_t>(in), samples_of<scalar_t>(r), samples_of<scalar_t>(t),
                                      out.mutable_data_ptr<scalar_t>(), partials.mutable_data_ptr<A>(),
                                      logdet.mutable_data_ptr<A>(), g, fn, clamp, inverse);
  });
  return {out, logdet};
}

template <typename K>
std::tuple<at::Tensor, at::Tensor> forward_op(const at::Tensor& x, const at::Tensor& s_raw, const at::Tensor& t,
                                              double clamp, c10::string_view clamp_fn) {
  return coupling_op<K>(x, s_raw, t, clamp, clamp_fn, false);
}

template <typename K>
std::tuple<at::Tensor, at::Tensor> inverse_op(const at::Tensor& y, const at::Tensor& s_raw, const at::Tensor& t,
                                              double clamp, c10::string_view clamp_fn) {
  return coupling_op<K>(y, s_raw, t, clamp, clamp_fn, true);
}

template <typename K>
std::tuple<at::Tensor, at::Tensor> forward_backward_op(const at::Tensor& gy_, const at::Tensor& gl_,
                                                       const at::Tensor& x_, const at::Tensor& r_, double clamp,
                                                       c10::string_view clamp_fn) {
  const char* op = "affine_coupling_backward";
  const Layout g = batch_layout(x_, "x", op, K::kChunk);
  check_like(x_, "x", r_, "s_raw", op);
  check_like(x_, "x", gy_, "grad_y", op);
  check_grad_logdet(gl_, x_, op);
  check_clamp(clamp, op);
  const ClampFn fn = parse_clamp_fn(clamp_fn, op);
  const typename K::Guard guard(x_.device());
  const at::Tensor gy = with_contiguous_samples(gy_), gl = gl_.contiguous(), x = with_contiguous_samples(x_),
                   r = with_contiguous_samples(r_);
  at::Tensor gx = empty_like_contiguous(x), gr = empty_like_contiguous(x);
  SF_DISPATCH_FLOAT(x.scalar_type(), "affine_coupling_backward", [&] {
    using A = acc_t<scalar_t>;
    K::template forward_grad<scalar_t, A>(samples_of<scalar_t>(gy), gl.const_data_ptr<A>(), samples_of<scalar_t>(x),
                                          samples_of<scalar_t>(r), gx.mutable_data_ptr<scalar_t>(),
                                          gr.mutable_data_ptr<scalar_t>(), g, fn, clamp);
  });
  return {gx, gr};
}

template <typename K>
std::tuple<at::Tensor, at::Tensor, at::Tensor> inverse_backward_op(const at::Tensor& gx_, const at::Tensor& gl_,
                                                                   const at::Tensor& x_, const at::Tensor& r_,
                                                                   double clamp, c10::string_view clamp_fn) {
  const char* op = "affine_coupling_inverse_backward";
  const Layout g = batch_layout(x_, "x", op, K::kChunk);
  check_like(x_, "x", r_, "s_raw", op);
  check_like(x_, "x", gx_, "grad_x", op);
  check_grad_logdet(gl_, x_, op);
  check_clamp(clamp, op);
  const ClampFn fn = parse_clamp_fn(clamp_fn, op);
  const typename K::Guard guard(x_.device());
  const at::Tensor gx = with_contiguous_samples(gx_), gl = gl_.contiguous(), x = with_contiguous_samples(x_),
                   r = with_contiguous_samples(r_);
  at::Tensor gy = empty_like_contiguous(x), gr = empty_like_contiguous(x), gt = empty_like_contiguous(x);
  SF_DISPATCH_FLOAT(x.scalar_type(), "affine_coupling_inverse_backward", [&] {
    using A = acc_t<scalar_t>;
    K::template inverse_grad<scalar_t, A>(samples_of<scalar_t>(gx), gl.const_data_ptr<A>(), samples_of<scalar_t>(x),
                                          samples_of<scalar_t>(r), gy.mutable_data_ptr<scalar_t>(),
                                          gr.mutable_data_ptr<scalar_t>(), gt.mutable_data_ptr<scalar_t>(), g, fn,
                                          clamp);
  });
  return {gy, gr, gt};
}

}  // namespace coupling
}  // namespace stegafast

// Registers the four operators of kernel set K for a dispatch key.
#define SF_REGISTER_COUPLING_OPS(m, K)                                                        \
  do {                                                                                        \
    m.impl("affine_coupling", &stegafast::coupling::forward_op<K>);                           \
    m.impl("affine_coupling_inverse", &stegafast::coupling::inverse_op<K>);                   \
    m.impl("affine_coupling_backward", &stegafast::coupling::forward_backward_op<K>);         \
    m.impl("affine_coupling_inverse_backward", &stegafast::coupling::inverse_backward_op<K>); \
  } while (0)
