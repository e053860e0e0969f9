#pragma once
// Windowed multi-head attention, the arithmetic shared by the CPU and CUDA
// kernels. For every window w and head h, with q, k, v rows of d values:
//
//   s[i][j] = scale * q[i] . k[j] + bias[h][i][j] + mask[w % nW][i][j]
//   lse[i]  = log sum_j exp(s[i][j])                    (the row's log-sum-exp)
//   p[i][j] = exp(s[i][j] - lse[i]),   out[i] = sum_j p[i][j] v[j]
//
// and the backward, recomputing p from the saved lse instead of storing it:
//
//   dp[i][j] = dout[i] . v[j],          D[i] = sum_j p[i][j] dp[i][j]
//   ds[i][j] = p[i][j] (dp[i][j] - D[i])
//   dq[i]    = scale sum_j ds[i][j] k[j],   dk[j] = scale sum_i ds[i][j] q[i]
//   dv[j]    = sum_i p[i][j] dout[i],       dbias[h] = sum over windows of ds
//
// A row whose every score is -inf (fully masked) has lse = -inf, out = 0 and
// zero gradients. D equals dout[i] . out[i] (out[i] = sum_j p[i][j] v[j]), the
// form flash attention uses; summed from p and dp, which the backward has anyway,
// it spares saving out for the backward.
#include <limits>

#include "../common/hostdevice.h"

namespace stegafast {
namespace attention {

constexpr int64_t kMaxTokens = 256;   // N, tokens per window
constexpr int64_t kMaxHeadDim = 128;  // d

struct Geometry {
  int64_t windows;  // B * nW: the first dim of q, k, v
  int64_t heads;
  int64_t n;             // tokens per window
  int64_t d;             // channels per head
  int64_t mask_windows;  // nW (0 without a mask)

  SF_HD int64_t items() const { return windows * heads; }  // (window, head) pairs
  // Window w of every image uses mask[w % nW].
  SF_HD int64_t mask_of(int64_t window) const { return window % mask_windows; }
};

// The windows are split into `count` groups of `size` consecutive windows (the
// last possibly shorter); each group sums its windows' ds into its own dbias
// partial, and the partials are added in group order. The split depends on the
// shapes only, so dbias does not depend on the thread count or on scheduling.
struct BiasGroups {
  int64_t count;
  int64_t size;
};

// At most kMaxGroups partials, at least kMinWindows windows each, and the
// partials together at most kBudget values (they are float32 scratch).
inline BiasGroups bias_groups(const Geometry& g) {
  constexpr int64_t kMaxGroups = 32, kMinWindows = 4, kBudget = int64_t(1) << 22;
  const int64_t per_partial = g.heads * g.n * g.n;
  int64_t count = (g.windows + kMinWindows - 1) / kMinWindows;
  if (count > kMaxGroups) count = kMaxGroups;
  const int64_t fit = kBudget / (per_partial > 0 ? per_partial : 1);
  if (count > fit) count = fit;
  if (count < 1) count = 1;
  const int64_t size = (g.windows + count - 1) / count;
  return {size > 0 ? (g.windows + size - 1) / size : 1, size > 0 ? size : 1};
}

template <typename A>
SF_HD A minus_infinity() {
  return -std::numeric_limits<A>::infinity();
}

SF_HD float log_of(float v) { return logf(v); }
SF_HD double log_of(double v) { return ::log(v); }

// lse of a row from its maximum m and the sum l of exp(s - m); -inf when fully masked.
template <typename A>
SF_HD A row_lse(A m, A l) {
  return m == minus_infinity<A>() ? m : m + log_of(l);
}

}  // namespace attention
}  // namespace stegafast
