#pragma once
// dtype dispatch shared by every kernel: float, double, half and bfloat16
// (half types accumulate in float32), plus int32 where a kernel is integer-exact.
#include <ATen/Dispatch.h>

#define SF_DISPATCH_FLOAT(dtype, name, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, name, __VA_ARGS__)

#define SF_DISPATCH_FLOAT_AND_INT(dtype, name, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND3(at::kHalf, at::kBFloat16, at::kInt, dtype, name, __VA_ARGS__)
