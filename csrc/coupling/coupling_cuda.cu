// CUDA kernels of the affine coupling. One block of kThreads threads per
// (sample, chunk) item of kBlockChunk elements, each thread handling kPerThread
// elements kThreads apart (coalesced), all calling the element functions of
// coupling.h with CUDA's own exp/tanh/atan. The forward and inverse reduce
// their chunk's s values to one partial per block (a fixed tree: warp shuffles,
// then the warp sums in order), and a second kernel sums each sample's
// partials in a fixed order, so a logdet never depends on scheduling. Checks,
// dtype dispatch and output allocation are coupling_ops.h's, shared with the CPU.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "coupling_ops.h"

namespace stegafast {
namespace coupling {
namespace {

constexpr int kThreads = cuda::kThreadsPerBlock;
constexpr int kWarps = kThreads / 32;
constexpr int kPerThread = 4;
constexpr int64_t kBlockChunk = int64_t(kThreads) * kPerThread;  // elements per block

// The (sample, chunk) item of this block: its sample, the chunk's offset in
// the sample, and how many of its elements exist (the last chunk is shorter).
struct Item {
  int64_t sample, offset, length;
};

__device__ __forceinline__ Item block_item(const Layout& g) {
  const int64_t item = blockIdx.x;
  const int64_t sample = item / g.chunks;
  const int64_t offset = (item % g.chunks) * kBlockChunk;
  const int64_t rest = g.per_sample - offset;
  return {sample, offset, rest < kBlockChunk ? rest : kBlockChunk};
}

// Sum of v over the block, in a fixed order; valid in thread 0 only. Every
// thread of the block must call it (it synchronises).
template <typename A>
__device__ A block_sum(A v) {
  __shared__ A warp_sums[kWarps];
  for (int delta = 16; delta > 0; delta /= 2) v += __shfl_down_sync(0xffffffffu, v, delta);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = v;
  __syncthreads();
  A total = A(0);
  if (threadIdx.x == 0) {
    for (int w = 0; w < kWarps; ++w) total += warp_sums[w];
  }
  return total;
}

// Forward (Inverse = false) or inverse of one chunk, and its partial sum of s.
template <bool Inverse, typename T, typename Act>
__global__ void __launch_bounds__(kThreads)
    coupling_kernel(Samples<const T> in, Samples<const T> r, Samples<const T> t, T* __restrict__ out,
                    acc_t<T>* __restrict__ partials, Layout g, Act act) {
  using A = acc_t<T>;
  const Item it = block_item(g);
  const T* __restrict__ in_c = in.at(it.sample, it.offset);
  const T* __restrict__ r_c = r.at(it.sample, it.offset);
  const T* __restrict__ t_c = t.at(it.sample, it.offset);
  T* __restrict__ out_c = out + it.sample * g.per_sample + it.offset;
  A sum = A(0);
#pragma unroll
  for (int k = 0; k < kPerThread; ++k) {
    const int64_t i = threadIdx.x + int64_t(k) * kThreads;
    if (i < it.length) {
      A s;
      const A v = Inverse ? inverse_element(act, A(in_c[i]), A(r_c[i]), A(t_c[i]), s)
                          : forward_element(act, A(in_c[i]), A(r_c[i]), A(t_c[i]), s);
      out_c[i] = T(v);
      sum += s;
    }
  }
  const A total = block_sum(sum);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// logdet[b] = sign * (sum of sample b's partials): one block per sample, each
// thread summing a strided subset in order, then the block's fixed tree.
template <typename A>
__global__ void __launch_bounds__(kThreads)
    finish_logdet_kernel(const A* __restrict__ partials, int64_t chunks, A sign, A* __restrict__ logdet) {
  const A* p = partials + int64_t(blockIdx.x) * chunks;
  A sum = A(0);
  for (int64_t j = threadIdx.x; j < chunks; j += kThreads) sum += p[j];
  const A total = block_sum(sum);
  if (threadIdx.x == 0) logdet[blockIdx.x] = sign * total;
}

template <typename T, typename Act>
__global__ void __launch_bounds__(kThreads)
    forward_grad_kernel(Samples<const T> gy, const acc_t<T>* __restrict__ gl, Samples<const T> x, Samples<const T> r,
                        T* __restrict__ gx, T* __restrict__ gr, Layout g, Act act) {
  using A = acc_t<T>;
  const Item it = block_item(g);
  const T* __restrict__ gy_c = gy.at(it.sample, it.offset);
  const T* __restrict__ x_c = x.at(it.sample, it.offset);
  const T* __restrict__ r_c = r.at(it.sample, it.offset);
  const int64_t first = it.sample * g.per_sample + it.offset;
  const A gl_b = gl[it.sample];
#pragma unroll
  for (int k = 0; k < kPerThread; ++k) {
    const int64_t i = threadIdx.x + int64_t(k) * kThreads;
    if (i < it.length) {
      const ForwardGrads<A> d = forward_grad_element(act, A(gy_c[i]), gl_b, A(x_c[i]), A(r_c[i]));
      gx[first + i] = T(d.x);
      gr[first + i] = T(d.r);
    }
  }
}

template <typename T, typename Act>
__global__ void __launch_bounds__(kThreads)
    inverse_grad_kernel(Samples<const T> gx, const acc_t<T>* __restrict__ gl, Samples<const T> x, Samples<const T> r,
                        T* __restrict__ gy, T* __restrict__ gr, T* __restrict__ gt, Layout g, Act act) {
  using A = acc_t<T>;
  const Item it = block_item(g);
  const T* __restrict__ gx_c = gx.at(it.sample, it.offset);
  const T* __restrict__ x_c = x.at(it.sample, it.offset);
  const T* __restrict__ r_c = r.at(it.sample, it.offset);
  const int64_t first = it.sample * g.per_sample + it.offset;
  const A gl_b = gl[it.sample];
#pragma unroll
  for (int k = 0; k < kPerThread; ++k) {
    const int64_t i = threadIdx.x + int64_t(k) * kThreads;
    if (i < it.length) {
      const InverseGrads<A> d = inverse_grad_element(act, A(gx_c[i]), gl_b, A(x_c[i]), A(r_c[i]));
      gy[first + i] = T(d.y);
      gr[first + i] = T(d.r);
      gt[first + i] = T(d.t);
    }
  }
}

// One block per (sample, chunk) item; 0 when there is nothing to do.
unsigned item_blocks(const Layout& g) { return cuda::block_per_item(g.batch * g.chunks, "affine_coupling"); }

// Calls body(act) with the activation of fn, in accumulation type A.
template <typename A, typename Body>
void with_activation(ClampFn fn, double clamp, const Body& body) {
  if (fn == ClampFn::kTanh) {
    body(Activation<ClampFn::kTanh, A, LibMath>::make(clamp));
  } else {
    body(Activation<ClampFn::kAtan, A, LibMath>::make(clamp));
  }
}

struct CudaKernels {
  using Guard = cuda::DeviceGuard;
  static constexpr int64_t kChunk = kBlockChunk;

  template <typename T, typename A>
  static void coupling(Samples<const T> in, Samples<const T> r, Samples<const T> t, T* out, A* partials, A* logdet,
                       const Layout& g, ClampFn fn, double clamp, bool inverse) {
    const unsigned samples = cuda::block_per_item(g.batch, "affine_coupling");
    const unsigned blocks = item_blocks(g);
    with_activation<A>(fn, clamp, [&](auto act) {
      if (inverse) {
        cuda::launch(coupling_kernel<true, T, decltype(act)>, blocks, kThreads, in, r, t, out, partials, g, act);
      } else {
        cuda::launch(coupling_kernel<false, T, decltype(act)>, blocks, kThreads, in, r, t, out, partials, g, act);
      }
    });
    // also for empty samples (no chunks): their logdet is 0
    cuda::launch(finish_logdet_kernel<A>, samples, kThreads, partials, g.chunks, inverse ? A(-1) : A(1), logdet);
  }

  template <typename T, typename A>
  static void forward_grad(Samples<const T> gy, const A* gl, Samples<const T> x, Samples<const T> r, T* gx, T* gr,
                           const Layout& g, ClampFn fn, double clamp) {
    const unsigned blocks = item_blocks(g);
    with_activation<A>(fn, clamp, [&](auto act) {
      cuda::launch(forward_grad_kernel<T, decltype(act)>, blocks, kThreads, gy, gl, x, r, gx, gr, g, act);
    });
  }

  template <typename T, typename A>
  static void inverse_grad(Samples<const T> gx, const A* gl, Samples<const T> x, Samples<const T> r, T* gy, T* gr,
                           T* gt, const Layout& g, ClampFn fn, double clamp) {
    const unsigned blocks = item_blocks(g);
    with_activation<A>(fn, clamp, [&](auto act) {
      cuda::launch(inverse_grad_kernel<T, decltype(act)>, blocks, kThreads, gx, gl, x, r, gy, gr, gt, g, act);
    });
  }
};

}  // namespace
}  // namespace coupling
}  // namespace stegafast

TORCH_LIBRARY_IMPL(stegafast, CUDA, m) { SF_REGISTER_COUPLING_OPS(m, stegafast::coupling::CudaKernels); }
