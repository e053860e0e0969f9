#pragma once
// The one way stegafast launches CUDA kernels (include from .cu files only):
//   - the operator takes `const cuda::DeviceGuard guard(t.device())` (through
//     its kernel set's `Guard`, see common/guard.h) before it allocates;
//   - the grid is grid_stride_blocks() for kernels that loop with
//     SF_GRID_STRIDE_LOOP, or block_per_item() for kernels that give each block
//     one item of work (reductions that must sum in a fixed order);
//   - launch() runs the kernel on the current stream and checks the launch.
// Only c10/cuda headers: ATen/cuda/CUDAContext.h pulls in cusparse.h, which a
// compile check without the full toolkit lacks (see tools/check_cuda_compile.py).
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

namespace stegafast {
namespace cuda {

using DeviceGuard = c10::cuda::CUDAGuard;

// Threads per block unless a kernel has a reason for another count (say so
// where it is set): eight warps, enough to hide latency on every GPU built for.
constexpr int kThreadsPerBlock = 256;

// Grid cap of grid-stride kernels, far below gridDim.x's limit: 2^20 blocks of
// 128 or more threads fill any current GPU many times over, and the grid-stride
// loop covers the rest.
constexpr int64_t kMaxGridStrideBlocks = int64_t(1) << 20;

// gridDim.x's limit, for kernels with one block per item.
constexpr int64_t kMaxGridBlocks = std::numeric_limits<int32_t>::max();

// Blocks of `threads` threads for a grid-stride loop over `items` items; 0 for none.
inline unsigned grid_stride_blocks(int64_t items, int threads) {
  return static_cast<unsigned>(std::min((items + threads - 1) / threads, kMaxGridStrideBlocks));
}

// `items` blocks, one per item of work, after checking the grid can hold them.
inline unsigned block_per_item(int64_t items, const char* op) {
  TORCH_CHECK(items <= kMaxGridBlocks, op, ": the input is too large for one launch (", items, " blocks)");
  return static_cast<unsigned>(items);
}

// kernel<<<blocks, threads>>>(args...) on the current stream, then the launch
// check. Launches nothing for 0 blocks (an empty input): a zero-block grid is a
// launch error.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), unsigned blocks, int threads, Args&&... args) {
  if (blocks == 0) return;
  kernel<<<blocks, threads, 0, c10::cuda::getCurrentCUDAStream()>>>(std::forward<Args>(args)...);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Dynamic shared memory a kernel may take without asking (cudaFuncSetAttribute).
constexpr size_t kDefaultSharedBytes = 48 * 1024;

// An attribute of the current device (cudaDevAttr...).
inline int device_attribute(cudaDeviceAttr attribute) {
  int device = 0, value = 0;
  C10_CUDA_CHECK(cudaGetDevice(&device));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&value, attribute, device));
  return value;
}

// The virtual architecture (80: compute_80) of the code of `kernel` that runs on
// the current device: what its `__CUDA_ARCH__` guards saw. A build for sm_80 and
// sm_90 gives 80 or 90; one that reaches an sm_80 GPU only through older PTX, less.
template <typename... Params>
int kernel_arch(void (*kernel)(Params...)) {
  cudaFuncAttributes attributes{};
  C10_CUDA_CHECK(cudaFuncGetAttributes(&attributes, reinterpret_cast<const void*>(kernel)));
  return attributes.ptxVersion;
}

// The most dynamic shared memory one block may opt into on the current device
// (about 163 KiB on sm_80, 227 KiB on sm_90); kernels whose need depends on the
// shapes compare against it to choose a launch that fits.
inline size_t shared_bytes_limit() {
  return static_cast<size_t>(device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin));
}

// kernel<<<grid, threads, shared_bytes>>>(args...) on the current stream, then
// the launch check: launch() for kernels with a 2-D or 3-D grid and dynamic
// shared memory. Above kDefaultSharedBytes it first checks the device allows
// that much and allows the kernel that much (every GPU built for, sm_80 and
// later, has at least 163 KiB per block). Launches nothing for an empty grid.
template <typename... Params, typename... Args>
void launch_shared(void (*kernel)(Params...), dim3 grid, int threads, size_t shared_bytes, Args&&... args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
  if (shared_bytes > kDefaultSharedBytes) {
    const size_t limit = shared_bytes_limit();
    TORCH_CHECK(shared_bytes <= limit, "a kernel needs ", shared_bytes, " bytes of shared memory per block, above the ",
                limit, " this GPU allows");
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared_bytes)));
  }
  kernel<<<grid, threads, shared_bytes, c10::cuda::getCurrentCUDAStream()>>>(std::forward<Args>(args)...);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// launch() with the grid of a grid-stride loop over `items` items.
template <typename... Params, typename... Args>
void launch_grid_stride(void (*kernel)(Params...), int64_t items, int threads, Args&&... args) {
  launch(kernel, grid_stride_blocks(items, threads), threads, std::forward<Args>(args)...);
}

}  // namespace cuda
}  // namespace stegafast

// The body runs once for every item i in [0, n) that falls to this thread:
// i starts at the thread's global index and steps by the grid's thread count.
#define SF_GRID_STRIDE_LOOP(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)
