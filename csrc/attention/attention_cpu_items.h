#pragma once
// The unit of work of the CPU kernels: one (window, head) pair, its operands
// staged by attention_cpu.cpp into thread-local buffers of the accumulation
// type A (float or double), row-major, each row padded with zeros to a multiple
// of kPad values so that the kernels' vector loops have no tails. The kernels
// (attention_cpu_kernels.h) see nothing but these buffers: they include no
// torch header and are compiled once per CPU variant.
#include <cstdint>

namespace stegafast {
namespace attention {

constexpr int64_t kPad = 16;

inline int64_t padded(int64_t n) { return (n + kPad - 1) / kPad * kPad; }

// n tokens of d channels; np = padded(n), dp = padded(d).
template <typename A>
struct ForwardItem {
  int64_t n, d, np, dp;
  A scale;
  const A* q;     // n x dp
  const A* kt;    // d x np: k transposed
  const A* v;     // n x dp
  const A* bias;  // n x np, or nullptr
  const A* mask;  // n x np, or nullptr
  A* s;           // n x np scratch: the scores, then the probabilities
  A* out;         // n x dp
  A* inv_sum;     // n scratch: 1 / the rows' sums of exp
  A* lse;         // n
};

template <typename A>
struct BackwardItem {
  int64_t n, d, np, dp;
  A scale;
  const A* q;     // n x dp
  const A* k;     // n x dp
  const A* kt;    // d x np
  const A* vt;    // d x np
  const A* gout;  // n x dp: the gradient of out
  const A* lse;   // n
  const A* bias;  // n x np, or nullptr
  const A* mask;  // n x np, or nullptr
  A* p;           // n x np scratch: the probabilities
  A* ds;          // n x np scratch: dp, then ds
  A* gq;          // n x dp
  A* gk;          // n x dp
  A* gv;          // n x dp
  A* gbias;       // n x n, ds is added to it; nullptr without a bias
};

}  // namespace attention
}  // namespace stegafast
