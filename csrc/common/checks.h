#pragma once
// Last-line checks inside kernels. Users get friendlier messages from the Python
// wrappers (stegafast/ops/), which validate before anything native runs; these
// keep a direct torch.ops call from reading out of bounds. Every message starts
// with the operator's name `op` and names the argument `name` it is about.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace stegafast {

// t is a (B, C, H, W) batch.
inline void check_image_batch(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.dim() == 4, name, " must be a 4-D (B, C, H, W) tensor, got ", t.dim(), " dims");
}

// t holds one of the floating types every float kernel dispatches (common/dispatch.h).
inline void check_float(const at::Tensor& t, const char* op, const char* name) {
  const at::ScalarType s = t.scalar_type();
  TORCH_CHECK(s == at::kFloat || s == at::kDouble || s == at::kHalf || s == at::kBFloat16, op, ": ", name,
              " must be float32, float64, float16 or bfloat16, got ", s);
}

// t has exactly dtype `dtype`.
inline void check_dtype(const at::Tensor& t, const char* op, const char* name, at::ScalarType dtype) {
  TORCH_CHECK(t.scalar_type() == dtype, op, ": ", name, " must be ", dtype, ", got ", t.scalar_type());
}

// t lives in CPU memory (for kernels that have no CUDA implementation).
inline void check_cpu(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), op, ": ", name, " must be a CPU tensor");
}

// `other` has the shape of `ref`.
inline void check_same_shape(const at::Tensor& ref, const char* ref_name, const at::Tensor& other, const char* name,
                             const char* op) {
  TORCH_CHECK(other.sizes() == ref.sizes(), op, ": ", name, " has shape ", other.sizes(), " but ", ref_name,
              " has shape ", ref.sizes());
}

// `other` has the dtype and the device of `ref`.
inline void check_same_dtype_and_device(const at::Tensor& ref, const char* ref_name, const at::Tensor& other,
                                        const char* name, const char* op) {
  TORCH_CHECK(other.scalar_type() == ref.scalar_type(), op, ": ", name, " has dtype ", other.scalar_type(), " but ",
              ref_name, " has dtype ", ref.scalar_type());
  TORCH_CHECK(other.device() == ref.device(), op, ": ", name, " is on ", other.device(), " but ", ref_name, " is on ",
              ref.device());
}

// `other` matches `ref` in shape, dtype and device.
inline void check_like(const at::Tensor& ref, const char* ref_name, const at::Tensor& other, const char* name,
                       const char* op) {
  check_same_shape(ref, ref_name, other, name, op);
  check_same_dtype_and_device(ref, ref_name, other, name, op);
}

}  // namespace stegafast
