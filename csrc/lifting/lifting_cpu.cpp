// CPU operators of the batched 5/3 lifting wavelet: checks, dtype dispatch, and
// the choice between the baseline and the AVX2 build of the kernels
// (lifting_cpu_kernels.h holds the kernels themselves).
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../common/dispatch.h"
#include "lifting_cpu_avx2.h"
#include "lifting_shapes.h"

#define SF_CPU_VARIANT baseline
#include "lifting_cpu_kernels.h"

namespace stegafast {
namespace lifting {
namespace {

constexpr cpu::ParallelFor kParallel = cpu::torch_parallel_for;

// float and double run the AVX2 build where the CPU has it; half types and
// int32 always run the baseline build.
template <typename T>
constexpr bool kHasAvx2Build = std::is_same<T, float>::value || std::is_same<T, double>::value;

template <typename T>
void forward(const T* x, T* y, const Geometry& g, bool rounding) {
  if constexpr (kHasAvx2Build<T>) {
    if (cpu::has_avx2_fma()) return avx2::forward(x, y, g, rounding, kParallel);
  }
  baseline::run_forward(x, y, g, rounding, kParallel);
}

template <typename T>
void inverse(const T* y, T* x, const Geometry& g, bool rounding) {
  if constexpr (kHasAvx2Build<T>) {
    if (cpu::has_avx2_fma()) return avx2::inverse(y, x, g, rounding, kParallel);
  }
  baseline::run_inverse(y, x, g, rounding, kParallel);
}

template <typename T>
void forward_adjoint(const T* gy, T* gx, const Geometry& g) {
  if constexpr (kHasAvx2Build<T>) {
    if (cpu::has_avx2_fma()) return avx2::forward_adjoint(gy, gx, g, kParallel);
  }
  baseline::run_forward_adjoint(gy, gx, g, kParallel);
}

template <typename T>
void inverse_adjoint(const T* gx, T* gy, const Geometry& g) {
  if constexpr (kHasAvx2Build<T>) {
    if (cpu::has_avx2_fma()) return avx2::inverse_adjoint(gx, gy, g, kParallel);
  }
  baseline::run_inverse_adjoint(gx, gy, g, kParallel);
}

at::Tensor ilwt53_forward_cpu(const at::Tensor& x_in, bool rounding) {
  const Geometry g = image_geometry(x_in, "ilwt53_forward input");
  check_rounding(x_in, rounding);
  const at::Tensor x = x_in.contiguous();
  at::Tensor y = empty_bands(x, g);
  SF_DISPATCH_FLOAT_AND_INT(x.scalar_type(), "ilwt53_forward_cpu", [&] {
    forward(x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(), g, rounding);
  });
  return y;
}

at::Tensor ilwt53_inverse_cpu(const at::Tensor& y_in, c10::IntArrayRef out_size, bool rounding) {
  const Geometry g = band_geometry(y_in, out_size, "ilwt53_inverse input");
  check_rounding(y_in, rounding);
  const at::Tensor y = y_in.contiguous();
  at::Tensor x = empty_image(y, g);
  SF_DISPATCH_FLOAT_AND_INT(y.scalar_type(), "ilwt53_inverse_cpu", [&] {
    inverse(y.const_data_ptr<scalar_t>(), x.mutable_data_ptr<scalar_t>(), g, rounding);
  });
  return x;
}

at::Tensor ilwt53_forward_backward_cpu(const at::Tensor& gy_in, c10::IntArrayRef in_size) {
  const Geometry g = band_geometry(gy_in, in_size, "ilwt53_forward_backward grad");
  const at::Tensor gy = gy_in.contiguous();
  at::Tensor gx = empty_image(gy, g);
  SF_DISPATCH_FLOAT(gy.scalar_type(), "ilwt53_forward_backward_cpu", [&] {
    forward_adjoint(gy.const_data_ptr<scalar_t>(), gx.mutable_data_ptr<scalar_t>(), g);
  });
  return gx;
}

at::Tensor ilwt53_inverse_backward_cpu(const at::Tensor& gx_in) {
  const Geometry g = image_geometry(gx_in, "ilwt53_inverse_backward grad");
  const at::Tensor gx = gx_in.contiguous();
  at::Tensor gy = empty_bands(gx, g);
  SF_DISPATCH_FLOAT(gx.scalar_type(), "ilwt53_inverse_backward_cpu", [&] {
    inverse_adjoint(gx.const_data_ptr<scalar_t>(), gy.mutable_data_ptr<scalar_t>(), g);
  });
  return gy;
}

}  // namespace
}  // namespace lifting
}  // namespace stegafast

TORCH_LIBRARY_IMPL(stegafast, CPU, m) {
  using namespace stegafast::lifting;
  m.impl("ilwt53_forward", &ilwt53_forward_cpu);
  m.impl("ilwt53_inverse", &ilwt53_inverse_cpu);
  m.impl("ilwt53_forward_backward", &ilwt53_forward_backward_cpu);
  m.impl("ilwt53_inverse_backward", &ilwt53_inverse_backward_cpu);
}
