// CPU operators of the windowed attention: (window, head) items spread over
// threads with at::parallel_for. Each thread stages an item's operands into its
// scratch (one allocation per thread and call, none per item), converting half
// types to float, and runs attention_cpu_kernels.h on them, in the AVX-512 or
// AVX2 build where the CPU has it. attention_ops.h holds the checks and dispatch shared
// with CUDA.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <type_traits>
#include <vector>

#include "../common/guard.h"
#include "attention_cpu_avx2.h"
#include "attention_cpu_avx512.h"
#include "attention_ops.h"

#define SF_CPU_VARIANT baseline
#define SF_VECTOR_BYTES 32
#include "attention_cpu_kernels.h"

namespace stegafast {
namespace attention {
namespace {

// float runs the widest build the CPU has (AVX-512, AVX2, the baseline);
// double always runs the baseline build. The wider builds exist only where
// SF_CPU_AVX2_VARIANTS (common/cpu_variants.h); elsewhere nothing refers to them.
#define SF_ATTENTION_BEST_VARIANT(A, fn, ...)                         \
  do {                                                                \
    if constexpr (std::is_same_v<A, float> && SF_CPU_AVX2_VARIANTS) { \
      if (avx512::avx512_usable()) return avx512::fn(__VA_ARGS__);    \
      if (cpu::has_avx2_fma()) return avx2::fn(__VA_ARGS__);          \
    }                                                                 \
    return baseline::fn(__VA_ARGS__);                                 \
  } while (0)

template <typename A>
void run_item(const ForwardItem<A>& item) {
  SF_ATTENTION_BEST_VARIANT(A, forward_item, item);
}

template <typename A>
void run_item(const BackwardItem<A>& item) {
  SF_ATTENTION_BEST_VARIANT(A, backward_item, item);
}

// dst[r][c] = src[r][c] for a rows x cols block of src into rows of ld values.
template <typename T, typename A>
void stage(const T* src, int64_t rows, int64_t cols, A* dst, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) dst[r * ld + c] = static_cast<A>(src[r * cols + c]);
  }
}

// dst[c][r] = src[r][c]: the transpose of a rows x cols block, into rows of ld
// values; float in registers (in the widest build), other types value by value.
template <typename T, typename A>
void stage_transposed(const T* src, int64_t rows, int64_t cols, A* dst, int64_t ld) {
  if constexpr (std::is_same_v<T, float>) {
    SF_ATTENTION_BEST_VARIANT(T, transpose, src, rows, cols, dst, ld);
  } else {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) dst[c * ld + r] = static_cast<A>(src[r * cols + c]);
    }
  }
}

template <typename T, typename A>
void unstage(const A* src, int64_t ld, int64_t rows, int64_t cols, T* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) dst[r * cols + c] = static_cast<T>(src[r * ld + c]);
  }
}

// Operands and results are used in place, without staging, when T is A and
// their rows need no padding (d a multiple of kPad, as for d = 32 or 64).
template <typename T, typename A>
bool in_place(int64_t d) {
  return std::is_same_v<T, A> && d % kPad == 0;
}

// An n x d operand as the kernels read it: src itself when in place, else staged into buf.
template <typename T, typename A>
const A* operand(const T* src, int64_t n, int64_t d, A* buf) {
  if constexpr (std::is_same_v<T, A>) {
    if (in_place<T, A>(d)) return src;
  }
  stage(src, n, d, buf, padded(d));
  return buf;
}

// Where the kernels write an n x d result: dst itself when in place, else buf.
template <typename T, typename A>
A* result(T* dst, int64_t d, A* buf) {
  if constexpr (std::is_same_v<T, A>) {
    if (in_place<T, A>(d)) return dst;
  }
  return buf;
}

// Copies a result the kernels wrote into buf (not in place) to dst.
template <typename T, typename A>
void finish(const A* buf, int64_t n, int64_t d, T* dst) {
  if (static_cast<const void*>(buf) != static_cast<const void*>(dst)) unstage(buf, padded(d), n, d, dst);
}

// bias or mask, (count, n, n), as padded A rows (count, n, np); empty when absent.
template <typename T, typename A>
std::vector<A> padded_tables(const T* table, int64_t count, int64_t n) {
  if (table == nullptr) return {};
  const int64_t np = padded(n);
  std::vector<A> out(count * n * np, A(0));
  stage(table, count * n, n, out.data(), np);
  return out;
}

template <typename A>
const A* table_at(const std::vector<A>& tables, int64_t index, int64_t n) {
  return tables.empty() ? nullptr : tables.data() + index * n * padded(n);
}

// Carves one zeroed allocation into consecutive buffers.
template <typename A>
class Scratch {
 public:
  explicit Scratch(int64_t size) : data_(size, A(0)) {}
  A* take(int64_t count) {
    A* p = data_.data() + used_;
    used_ += count;
    return p;
  }

 private:
  std::vector<A> data_;
  int64_t used_ = 0;
};

struct CpuKernels {
  using Guard = NoGuard;

  template <typename T, typename A>
  static void forward(const Inputs<T>& in, T* out, A* lse, A scale, const Geometry& g) {
    const int64_t n = g.n, d = g.d, np = padded(n), dp = padded(d), per = n * d;
    const std::vector<A> bias = padded_tables<T, A>(in.bias, g.heads, n);
    const std::vector<A> mask = padded_tables<T, A>(in.mask, g.mask_windows, n);
    const int64_t grain = 1 + (int64_t(1) << 16) / (n * n * d);
    at::parallel_for(0, g.items(), grain, [&](int64_t begin, int64_t end) {
      Scratch<A> scratch(3 * n * dp + d * np + n * np + n);
      ForwardItem<A> it{n, d, np, dp, scale};
      A* q = scratch.take(n * dp);
      A* kt = scratch.take(d * np);
      A* v = scratch.take(n * dp);
      A* o = scratch.take(n * dp);
      it.kt = kt;
      it.s = scratch.take(n * np);
      it.inv_sum = scratch.take(n);
      for (int64_t item = begin; item < end; ++item) {
        const int64_t window = item / g.heads, head = item % g.heads, at = item * per;
        it.q = operand(in.q + at, n, d, q);
        stage_transposed(in.k + at, n, d, kt, np);
        it.v = operand(in.v + at, n, d, v);
        it.bias = table_at(bias, head, n);
        it.mask = g.mask_windows ? table_at(mask, g.mask_of(window), n) : nullptr;
        it.out = result(out + at, d, o);
        it.lse = lse + item * n;
        run_item(it);
        finish(it.out, n, d, out + at);
      }
    });
  }

  template <typename T, typename A>
  static void backward(const Inputs<T>& in, const Grads<T, A>& gr, A scale, const Geometry& g,
                       const at::TensorOptions& /*scratch*/) {
    const int64_t n = g.n, d = g.d, np = padded(n), dp = padded(d), per = n * d;
    const std::vector<A> bias = padded_tables<T, A>(in.bias, g.heads, n);
    const std::vector<A> mask = padded_tables<T, A>(in.mask, g.mask_windows, n);
    // one task per (window group, head): each sums its windows' ds into its own partial
    const BiasGroups groups = bias_groups(g);
    std::vector<A> partials(gr.gbias != nullptr ? groups.count * g.heads * n * n : 0, A(0));
    at::parallel_for(0, groups.count * g.heads, 1, [&](int64_t begin, int64_t end) {
      Scratch<A> scratch(6 * n * dp + 2 * d * np + 2 * n * np);
      BackwardItem<A> it{n, d, np, dp, scale};
      A* q = scratch.take(n * dp);
      A* k = scratch.take(n * dp);
      A* kt = scratch.take(d * np);
      A* vt = scratch.take(d * np);
      A* gout = scratch.take(n * dp);
      A* gq = scratch.take(n * dp);
      A* gk = scratch.take(n * dp);
      A* gv = scratch.take(n * dp);
      it.kt = kt, it.vt = vt;
      it.p = scratch.take(n * np);
      it.ds = scratch.take(n * np);
      for (int64_t task = begin; task < end; ++task) {
        const int64_t group = task / g.heads, head = task % g.heads;
        const int64_t first = group * groups.size;
        const int64_t last = std::min(first + groups.size, g.windows);
        it.gbias = partials.empty() ? nullptr : partials.data() + task * n * n;
        it.bias = table_at(bias, head, n);
        for (int64_t window = first; window < last; ++window) {
          const int64_t item = window * g.heads + head, at = item * per;
          it.q = operand(in.q + at, n, d, q);
          it.k = operand(in.k + at, n, d, k);
          stage_transposed(in.k + at, n, d, kt, np);
          stage_transposed(in.v + at, n, d, vt, np);
          it.gout = operand(gr.gout + at, n, d, gout);
          it.mask = g.mask_windows ? table_at(mask, g.mask_of(window), n) : nullptr;
          it.lse = gr.lse + item * n;
          it.gq = result(gr.gq + at, d, gq);
          it.gk = result(gr.gk + at, d, gk);
          it.gv = result(gr.gv + at, d, gv);
          run_item(it);
          finish(it.gq, n, d, gr.gq + at);
          finish(it.gk, n, d, gr.gk + at);
          finish(it.gv, n, d, gr.gv + at);
        }
      }
    });
    if (gr.gbias != nullptr) sum_partials(partials.data(), groups.count, g.heads * n * n, gr.gbias);
  }

  // out[e] = sum over groups of partials[group][e], added in group order.
  template <typename T, typename A>
  static void sum_partials(const A* partials, int64_t count, int64_t size, T* out) {
    at::parallel_for(0, size, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t e = begin; e < end; ++e) {
        A total = A(0);
        for (int64_t group = 0; group < count; ++group) total += partials[group * size + e];
        out[e] = static_cast<T>(total);
      }
    });
  }
};

}  // namespace
}  // namespace attention
}  // namespace stegafast

TORCH_LIBRARY_IMPL(stegafast, CPU, m) { SF_REGISTER_ATTENTION_OPS(m, stegafast::attention::CpuKernels); }
