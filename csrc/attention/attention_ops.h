#pragma once
// The two windowed attention operators, written once for every device: checks,
// output allocation, dtype dispatch. A device supplies its kernels as a struct
// K with
//   using Guard = ...;   // a device guard, or a no-op
//   template <typename T, typename A> static void forward(const Inputs<T>&, T* out, A* lse,
//       A scale, const Geometry&);
//   template <typename T, typename A> static void backward(const Inputs<T>&, const Grads<T, A>&,
//       A scale, const Geometry&, const at::TensorOptions& scratch);
// (`scratch`: the device and accumulation dtype for any scratch it allocates)
// and registers the ops with SF_REGISTER_ATTENTION_OPS(m, K).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <c10/util/Optional.h>

#include <cmath>
#include <tuple>

#include "../common/checks.h"
#include "../common/dispatch.h"
#include "attention.h"

namespace stegafast {
namespace attention {

// Contiguous operands; bias and mask are nullptr when absent.
template <typename T>
struct Inputs {
  const T* q;
  const T* k;
  const T* v;
  const T* bias;  // (heads, n, n)
  const T* mask;  // (nW, n, n)
};

template <typename T, typename A>
struct Grads {
  const T* gout;  // the gradient of out
  const A* lse;
  T* gq;
  T* gk;
  T* gv;
  T* gbias;  // nullptr without a bias
};

// lse is float32 for float and half inputs, float64 for double.
inline at::ScalarType lse_dtype(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

// The geometry of q after checking every input against it.
inline Geometry checked_geometry(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const c10::optional<at::Tensor>& bias, const c10::optional<at::Tensor>& mask,
                                 double scale, const char* op) {
  TORCH_CHECK(q.dim() == 4, op, ": q must be a 4-D (windows, heads, N, d) tensor, got ", q.dim(), " dims");
  check_float(q, op, "q");
  const Geometry g{q.size(0), q.size(1), q.size(2), q.size(3), 0};
  TORCH_CHECK(g.n >= 1 && g.n <= kMaxTokens, op, ": N (tokens per window) must be 1..", kMaxTokens, ", got ", g.n);
  TORCH_CHECK(g.d >= 1 && g.d <= kMaxHeadDim, op, ": d (channels per head) must be 1..", kMaxHeadDim, ", got ", g.d);
  check_like(q, "q", k, "k", op);
  check_like(q, "q", v, "v", op);
  if (bias.has_value()) {
    TORCH_CHECK(bias->dim() == 3 && bias->size(0) == g.heads && bias->size(1) == g.n && bias->size(2) == g.n, op,
                ": bias must have shape (", g.heads, ", ", g.n, ", ", g.n, "), got ", bias->sizes());
    check_same_dtype_and_device(q, "q", *bias, "bias", op);
  }
  Geometry out = g;
  if (mask.has_value()) {
    TORCH_CHECK(mask->dim() == 3 && mask->size(0) >= 1 && mask->size(1) == g.n && mask->size(2) == g.n, op,
                ": mask must have shape (nW, ", g.n, ", ", g.n, "), got ", mask->sizes());
    TORCH_CHECK(g.windows % mask->size(0) == 0, op, ": mask has ", mask->size(0),
                " windows, which does not divide the ", g.windows, " windows of q");
    check_same_dtype_and_device(q, "q", *mask, "mask", op);
    out.mask_windows = mask->size(0);
  }
  TORCH_CHECK(std::isfinite(scale), op, ": scale must be finite, got ", scale);
  return out;
}

inline c10::optional<at::Tensor> contiguous(const c10::optional<at::Tensor>& t) {
  return t.has_value() ? c10::optional<at::Tensor>(t->contiguous()) : c10::nullopt;
}

template <typename T>
const T* data_or_null(const c10::optional<at::Tensor>& t) {
  return t.has_value() ? t->const_data_ptr<T>() : nullptr;
}

template <typename K>
std::tuple<at::Tensor, at::Tensor> forward_op(const at::Tensor& q_, const at::Tensor& k_, const at::Tensor& v_,
                                              const c10::optional<at::Tensor>& bias_,
                                              const c10::optional<at::Tensor>& mask_, double scale) {
  const char* op = "window_attention";
  const Geometry g = checked_geometry(q_, k_, v_, bias_, mask_, scale, op);
  const typename K::Guard guard(q_.device());
  const at::Tensor q = q_.contiguous(), k = k_.contiguous(), v = v_.contiguous();
  const auto bias = contiguous(bias_), mask = contiguous(mask_);
  at::Tensor out = at::empty(q.sizes(), q.options());
  at::Tensor lse = at::empty({g.windows, g.heads, g.n}, q.options().dtype(lse_dtype(q.scalar_type())));
  if (g.items() == 0) return {out, lse};
  SF_DISPATCH_FLOAT(q.scalar_type(), "window_attention", [&] {
    using A = acc_t<scalar_t>;
    const Inputs<scalar_t> in{q.const_data_ptr<scalar_t>(), k.const_data_ptr<scalar_t>(), v.const_data_ptr<scalar_t>(),
                              data_or_null<scalar_t>(bias), data_or_null<scalar_t>(mask)};
    K::template forward<scalar_t, A>(in, out.mutable_data_ptr<scalar_t>(), lse.mutable_data_ptr<A>(),
                                     static_cast<A>(scale), g);
  });
  return {out, lse};
}

template <typename K>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward_op(const at::Tensor& gout_, const at::Tensor& q_,
                                                                       const at::Tensor& k_, const at::Tensor& v_,
                                                                       const c10::optional<at::Tensor>& bias_,
                                                                       const c10::optional<at::Tensor>& mask_,
                                                                       const at::Tensor& lse_, double scale) {
  const char* op = "window_attention_backward";
  const Geometry g = checked_geometry(q_, k_, v_, bias_, mask_, scale, op);
  check_like(q_, "q", gout_, "grad_out", op);
  TORCH_CHECK(lse_.dim() == 3 && lse_.size(0) == g.windows && lse_.size(1) == g.heads && lse_.size(2) == g.n, op,
              ": lse must have shape (", g.windows, ", ", g.heads, ", ", g.n, "), got ", lse_.sizes());
  TORCH_CHECK(lse_.scalar_type() == lse_dtype(q_.scalar_type()) && lse_.device() == q_.device(), op, ": lse must be ",
              lse_dtype(q_.scalar_type()), " on ", q_.device(), ", got ", lse_.scalar_type(), " on ", lse_.device());
  const typename K::Guard guard(q_.device());
  const at::Tensor q = q_.contiguous(), k = k_.contiguous(), v = v_.contiguous();
  const at::Tensor gout = gout_.contiguous(), lse = lse_.contiguous();
  const auto bias = contiguous(bias_), mask = contiguous(mask_);
  at::Tensor gq = at::empty(q.sizes(), q.options()), gk = at::empty(q.sizes(), q.options());
  at::Tensor gv = at::empty(q.sizes(), q.options());
  // without a bias, an empty tensor stands for its gradient
  at::Tensor gbias = bias.has_value() ? at::zeros(bias->sizes(), q.options()) : at::empty({0}, q.options());
  if (g.items() == 0) return {gq, gk, gv, gbias};
  SF_DISPATCH_FLOAT(q.scalar_type(), "window_attention_backward", [&] {
    using A = acc_t<scalar_t>;
    const Inputs<scalar_t> in{q.const_data_ptr<scalar_t>(), k.const_data_ptr<scalar_t>(), v.const_data_ptr<scalar_t>(),
                              data_or_null<scalar_t>(bias), data_or_null<scalar_t>(mask)};
    const Grads<scalar_t, A> grads{
        gout.const_data_ptr<scalar_t>(), lse.const_data_ptr<A>(),
        gq.mutable_data_ptr<scalar_t>(), gk.mutable_data_ptr<scalar_t>(),
        gv.mutable_data_ptr<scalar_t>(), bias.has_value() ? gbias.mutable_data_ptr<scalar_t>() : nullptr};
    K::template backward<scalar_t, A>(in, grads, static_cast<A>(scale), g,
                                      q.options().dtype(lse_dtype(q.scalar_type())));
  });
  return {gq, gk, gv, gbias};
}

}  // namespace attention
}  // namespace stegafast

// Registers the two operators of kernel set K for a dispatch key.
#define SF_REGISTER_ATTENTION_OPS(m, K)                                         \
  do {                                                                          \
    m.impl("window_attention", &stegafast::attention::forward_op<K>);           \
    m.impl("window_attention_backward", &stegafast::attention::backward_op<K>); \
  } while (0)
