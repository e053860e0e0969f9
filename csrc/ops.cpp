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
  // Fused affine coupling of invertible networks (csrc/coupling/): y = x * exp(s) + t with
  // s = clamp * tanh(s_raw / clamp) (or the seed's atan clamp), and the per-sample
  // log-determinant sum(s); the inverse returns x and -sum(s).
  m.def(
      "affine_coupling(Tensor x, Tensor s_raw, Tensor t, float clamp=2.0, str clamp_fn=\"tanh\") -> (Tensor, Tensor)");
  m.def(
      "affine_coupling_inverse(Tensor y, Tensor s_raw, Tensor t, float clamp=2.0, str clamp_fn=\"tanh\") -> (Tensor, "
      "Tensor)");
  // Their backward passes: (grad_x, grad_s_raw) (grad_t is grad_y itself) and
  // (grad_y, grad_s_raw, grad_t); x is the forward's input, the inverse's output.
  m.def(
      "affine_coupling_backward(Tensor grad_y, Tensor grad_logdet, Tensor x, Tensor s_raw, float clamp, str clamp_fn) "
      "-> (Tensor, Tensor)");
  m.def(
      "affine_coupling_inverse_backward(Tensor grad_x, Tensor grad_logdet, Tensor x, Tensor s_raw, float clamp, str "
      "clamp_fn) -> (Tensor, Tensor, Tensor)");
  // Differentiable JPEG quantisation of 8x8 blocks (csrc/jpeg/): per block of x (pixel values
  // 0..255, H and W multiples of 8), level shift, DCT-II, division by qtable (N, C, 8, 8),
  // rounding ("ste", "cubic" or "ste_cubic"), multiplication back, inverse DCT.
  m.def("jpeg_quantize_blocks(Tensor x, Tensor qtable, str rounding=\"ste\") -> Tensor");
  // Its backward pass: grad_x (the tables are not differentiated).
  m.def("jpeg_quantize_blocks_backward(Tensor grad_y, Tensor x, Tensor qtable, str rounding) -> Tensor");
  // Windowed multi-head attention (csrc/attention/): q, k, v (windows, heads, N, d) with
  // N <= 256 and d <= 128, an optional bias (heads, N, N) and an optional additive mask
  // (nW, N, N), window w using mask[w % nW]: out = softmax(scale q k^T + bias + mask) v and
  // the rows' log-sum-exp lse (windows, heads, N), float32 (float64 for float64 inputs).
  m.def("window_attention(Tensor q, Tensor k, Tensor v, Tensor? bias, Tensor? mask, float scale) -> (Tensor, Tensor)");
  // Its backward pass from the forward's lse alone (the probabilities are recomputed, the
  // output is not needed): (grad_q, grad_k, grad_v, grad_bias), grad_bias summed over the
  // windows (an empty tensor without a bias); the mask gets none.
  m.def(
      "window_attention_backward(Tensor grad_out, Tensor q, Tensor k, Tensor v, Tensor? bias, Tensor? mask, Tensor "
      "lse, float scale) -> (Tensor, Tensor, Tensor, Tensor)");
  // Range coder over 16-bit quantised CDFs (csrc/entropy/): one stream, or many
  // streams coded in parallel in one self-describing container (format in
  // csrc/entropy/entropy_cpu.cpp). Integer data: no autograd.
  m.def("range_encode(Tensor symbols, Tensor indexes, Tensor cdfs, Tensor cdf_lengths, Tensor offsets) -> Tensor");
  m.def("range_decode(Tensor stream, Tensor indexes, Tensor cdfs, Tensor cdf_lengths, Tensor offsets) -> Tensor");
  m.def(
      "range_encode_batch(Tensor symbols, Tensor indexes, Tensor symbol_counts, Tensor cdfs, Tensor cdf_lengths, "
      "Tensor offsets) -> (Tensor, Tensor)");
  m.def("range_decode_batch(Tensor stream, Tensor indexes, Tensor cdfs, Tensor cdf_lengths, Tensor offsets) -> Tensor");
}
