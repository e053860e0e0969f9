// Every stegafast operator schema, in one table. Implementations register
// themselves per dispatch key next to their kernels (csrc/<kernel>/); the fake
// (meta) implementations, autograd formulas and autocast policies live in
// Python, one module per kernel (stegafast/ops/<kernel>.py); the library is only
// ever loaded by `import stegafast`, which imports them all.
#include <torch/library.h>

TORCH_LIBRARY(stegafast, m) {
  // Batched LeGall 5/3 lifting wavelet with shared padding (csrc/lifting/).
  m.def("ilwt53_forward(Tensor x, bool rounding=True) -> Tensor");
  m.def("ilwt53_inverse(Tensor y, SymInt[2] out_size, bool rounding=True) -> Tensor");
  // Adjoints of the linear transforms: the backward passes of the two above.
  m.def("ilwt53_forward_backward(Tensor grad_y, SymInt[2] in_size) -> Tensor");
  m.def("ilwt53_inverse_backward(Tensor grad_x) -> Tensor");
}
