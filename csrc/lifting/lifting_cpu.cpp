// CPU kernels of the batched 5/3 lifting wavelet. Both 2-D transforms and both
// adjoints are separable: one 1-D pass along H and one along W, built from the
// per-position functions of lifting.h. Work is spread over (plane, row) pairs so
// a single large image uses every thread as well as a large batch does.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <vector>

#include "../common/dispatch.h"
#include "lifting_shapes.h"

namespace stegafast {
namespace lifting {
namespace {

// Runs body(plane, row) for rows [0, rows) of planes [0, planes) on all threads.
template <typename F>
void for_each_row(int64_t planes, int64_t rows, int64_t row_len, const F& body) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(row_len, 1));
  at::parallel_for(0, planes * rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) body(k / rows, k % rows);
  });
}

// Per-thread scratch rows, reused across calls: slot picks one of a few buffers.
template <typename A>
A* scratch(int slot, int64_t size) {
  thread_local std::vector<A> buffers[6];
  std::vector<A>& b = buffers[slot];
  if (static_cast<int64_t>(b.size()) < size) b.resize(size);
  return b.data();
}

// One row of length n lifted into k lows and k highs. The samples are first
// split into contiguous even and odd arrays (extension included), so that both
// lifting steps run as plain vectorisable loops, each d computed once.
template <bool Round, typename A, typename T>
void lift_row(const A* x, int64_t n, T* __restrict lo, T* __restrict hi) {
  const int64_t k = half_len(n);
  A* __restrict even = scratch<A>(2, k + 2);  // even[m + 1] = x(2m),      m = -1 .. k
  A* __restrict odd = scratch<A>(3, k + 1);   // odd[m + 1]  = x(2m + 1),  m = -1 .. k-1
  A* __restrict d = scratch<A>(4, k + 1);     // d[m + 1]    = d(m),       m = -1 .. k-1
  for (int64_t m = -1; m <= k; ++m) even[m + 1] = x[ext(2 * m, n)];
  for (int64_t m = -1; m < k; ++m) odd[m + 1] = x[ext(2 * m + 1, n)];
  for (int64_t m = 0; m <= k; ++m) d[m] = odd[m] - predict<Round>(even[m], even[m + 1]);
  for (int64_t j = 0; j < k; ++j) {
    lo[j] = T(even[j + 1] + update<Round>(d[j], d[j + 1]));
    hi[j] = T(d[j + 1]);
  }
}

// Inverse of lift_row: k lows and k highs back to the n samples of a row.
template <bool Round, typename A, typename T>
void unlift_row(const T* lo, const T* hi, int64_t n, A* __restrict out) {
  const int64_t k = half_len(n);
  A* __restrict d = scratch<A>(2, k + 1);     // d[j + 1] = d(j), d[0] = d(0): the extension
  A* __restrict even = scratch<A>(3, k + 1);  // even[k] = even[k - 1]: the extension
  d[0] = A(hi[0]);
  for (int64_t j = 0; j < k; ++j) d[j + 1] = A(hi[j]);
  for (int64_t j = 0; j < k; ++j) even[j] = A(lo[j]) - update<Round>(d[j], d[j + 1]);
  even[k] = even[k - 1];
  for (int64_t j = 0; j < n / 2; ++j) {
    out[2 * j] = even[j];
    out[2 * j + 1] = d[j + 1] + predict<Round>(even[j], even[j + 1]);
  }
  if (n & 1) out[n - 1] = even[k - 1];
}

// Column and row readers over a row-major plane.
template <typename A, typename T>
struct Column {
  const T* plane;
  int64_t stride, c;
  A operator()(int64_t r) const { return A(plane[r * stride + c]); }
};
template <typename A, typename T>
struct Row {
  const T* row;
  A operator()(int64_t q) const { return A(row[q]); }
};

// Image -> subbands. For row pair i of each plane, ops.split_rows fills the
// full-width low and high rows (vertical pass), then ops.split_row splits each
// of them along W (horizontal pass). Forward transform and adjoint of the inverse.
template <typename A, typename T, typename Ops>
void image_to_bands(const T* x, T* y, const Geometry& g, const Ops& ops) {
  const int64_t plane = g.h * g.w;
  for_each_row(g.batch * g.channels, g.kh, g.w, [&](int64_t p, int64_t i) {
    A* lo = scratch<A>(0, g.w);
    A* hi = scratch<A>(1, g.w);
    ops.split_rows(x + p * plane, i, lo, hi);
    const int64_t at = i * g.kw;
    ops.split_row(lo, band_plane(y, g, p, 0) + at, band_plane(y, g, p, 1) + at);
    ops.split_row(hi, band_plane(y, g, p, 2) + at, band_plane(y, g, p, 3) + at);
  });
}

// Subbands -> image. ops.merge_row rebuilds every full-width low and high row
// from its two subband rows (horizontal pass, kept in the accumulation type),
// then ops.merge_rows rebuilds image rows 2i and 2i+1 (vertical pass). Inverse
// transform and adjoint of the forward.
template <typename A, typename T, typename Ops>
void bands_to_image(const T* y, T* x, const Geometry& g, const Ops& ops) {
  const int64_t planes = g.batch * g.channels;
  const int64_t half_plane = g.kh * g.w;
  std::vector<A> lo_rows(planes * half_plane), hi_rows(planes * half_plane);
  for_each_row(planes, g.kh, g.w, [&](int64_t p, int64_t r) {
    const int64_t at = r * g.kw;
    A* lo = lo_rows.data() + p * half_plane + r * g.w;
    A* hi = hi_rows.data() + p * half_plane + r * g.w;
    ops.merge_row(band_plane(y, g, p, 0) + at, band_plane(y, g, p, 1) + at, lo);
    ops.merge_row(band_plane(y, g, p, 2) + at, band_plane(y, g, p, 3) + at, hi);
  });
  const int64_t plane = g.h * g.w;
  for_each_row(planes, g.kh, g.w, [&](int64_t p, int64_t i) {
    T* even = x + p * plane + 2 * i * g.w;
    // the odd row past an odd-height image is computed into scratch and dropped
    T* odd = 2 * i + 1 < g.h ? even + g.w : scratch<T>(5, g.w);
    ops.merge_rows(lo_rows.data() + p * half_plane, hi_rows.data() + p * half_plane, i, even, odd);
  });
}

// Writes pair j of a split row: low to lo[j], high to hi[j].
template <typename T, typename A>
inline void store_pair(const Pair<A>& v, T* lo, T* hi, int64_t j) {
  lo[j] = T(v.lo);
  hi[j] = T(v.hi);
}

// Writes pair j of a merged row of length n: samples 2j and (if inside) 2j+1.
template <typename T, typename A>
inline void store_samples(const Pair<A>& v, T* out, int64_t j, int64_t n) {
  out[2 * j] = T(v.lo);
  if (2 * j + 1 < n) out[2 * j + 1] = T(v.hi);
}

template <bool Round, typename T>
struct ForwardOps {
  using A = acc_t<T>;
  const Geometry g;

  void split_rows(const T* x, int64_t i, A* __restrict lo, A* __restrict hi) const {
    const int64_t w = g.w;  // a local: stores through lo/hi cannot change it
    const T* r[5];
    for (int t = 0; t < 5; ++t) r[t] = x + ext(2 * i - 2 + t, g.h) * w;
    for (int64_t c = 0; c < w; ++c) {
      const Pair<A> v = lift5<Round, A>(A(r[0][c]), A(r[1][c]), A(r[2][c]), A(r[3][c]), A(r[4][c]));
      lo[c] = v.lo;
      hi[c] = v.hi;
    }
  }

  void split_row(const A* row, T* __restrict lo, T* __restrict hi) const { lift_row<Round, A>(row, g.w, lo, hi); }
};

template <bool Round, typename T>
struct InverseOps {
  using A = acc_t<T>;
  const Geometry g;

  void merge_row(const T* lo, const T* hi, A* __restrict out) const { unlift_row<Round, A>(lo, hi, g.w, out); }

  void merge_rows(const A* lo, const A* hi, int64_t i, T* even, T* odd) const {
    const int64_t w = g.w;
    const A* d0 = hi + i * w;
    const A* dm = i > 0 ? d0 - w : d0;  // d[-1] = d[0]
    if (i + 1 == g.kh) {
      merge_rows_at<true>(lo + i * w, lo + i * w, dm, d0, d0, even, odd);
    } else {
      merge_rows_at<false>(lo + i * w, lo + (i + 1) * w, dm, d0, d0 + w, even, odd);
    }
  }

  // `Last` as a compile-time constant keeps the loop free of selects, so it vectorises.
  template <bool Last>
  void merge_rows_at(const A* s0, const A* s1, const A* dm, const A* d0, const A* d1,
                     T* __restrict even, T* __restrict odd) const {
    const int64_t w = g.w;
    for (int64_t c = 0; c < w; ++c) {
      const Pair<A> v = unlift5<Round, A>(s0[c], s1[c], dm[c], d0[c], d1[c], Last);
      even[c] = T(v.lo);
      odd[c] = T(v.hi);
    }
  }
};

template <typename T>
struct ForwardAdjointOps {
  using A = acc_t<T>;
  const Geometry g;

  void merge_row(const T* lo, const T* hi, A* __restrict out) const {
    const int64_t kw = g.kw, w = g.w;
    for (int64_t j = 0; j < kw; ++j)
      store_samples(lift_adjoint_at<A>(Row<A, T>{lo}, Row<A, T>{hi}, j, kw, w), out, j, w);
  }

  void merge_rows(const A* lo, const A* hi, int64_t i, T* __restrict even, T* __restrict odd) const {
    const int64_t kh = g.kh, h = g.h, w = g.w;
    for (int64_t c = 0; c < w; ++c) {
      const Pair<A> v = lift_adjoint_at<A>(Column<A, A>{lo, w, c}, Column<A, A>{hi, w, c}, i, kh, h);
      even[c] = T(v.lo);
      odd[c] = T(v.hi);
    }
  }
};

template <typename T>
struct InverseAdjointOps {
  using A = acc_t<T>;
  const Geometry g;

  void split_rows(const T* gx, int64_t i, A* __restrict lo, A* __restrict hi) const {
    const int64_t kh = g.kh, h = g.h, w = g.w;
    for (int64_t c = 0; c < w; ++c) {
      const Pair<A> v = unlift_adjoint_at<A>(Column<A, T>{gx, w, c}, i, kh, h);
      lo[c] = v.lo;
      hi[c] = v.hi;
    }
  }

  void split_row(const A* row, T* __restrict lo, T* __restrict hi) const {
    const int64_t kw = g.kw, w = g.w;
    for (int64_t j = 0; j < kw; ++j) store_pair(unlift_adjoint_at<A>(Row<A, A>{row}, j, kw, w), lo, hi, j);
  }
};

at::Tensor ilwt53_forward_cpu(const at::Tensor& x_in, bool rounding) {
  const Geometry g = image_geometry(x_in, "ilwt53_forward input");
  check_rounding(x_in, rounding);
  const at::Tensor x = x_in.contiguous();
  at::Tensor y = empty_bands(x, g);
  SF_DISPATCH_FLOAT_AND_INT(x.scalar_type(), "ilwt53_forward_cpu", [&] {
    using A = acc_t<scalar_t>;
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    scalar_t* out = y.mutable_data_ptr<scalar_t>();
    if (rounding) {
      image_to_bands<A>(in, out, g, ForwardOps<true, scalar_t>{g});
    } else {
      image_to_bands<A>(in, out, g, ForwardOps<false, scalar_t>{g});
    }
  });
  return y;
}

at::Tensor ilwt53_inverse_cpu(const at::Tensor& y_in, c10::IntArrayRef out_size, bool rounding) {
  const Geometry g = band_geometry(y_in, out_size, "ilwt53_inverse input");
  check_rounding(y_in, rounding);
  const at::Tensor y = y_in.contiguous();
  at::Tensor x = empty_image(y, g);
  SF_DISPATCH_FLOAT_AND_INT(y.scalar_type(), "ilwt53_inverse_cpu", [&] {
    using A = acc_t<scalar_t>;
    const scalar_t* in = y.const_data_ptr<scalar_t>();
    scalar_t* out = x.mutable_data_ptr<scalar_t>();
    if (rounding) {
      bands_to_image<A>(in, out, g, InverseOps<true, scalar_t>{g});
    } else {
      bands_to_image<A>(in, out, g, InverseOps<false, scalar_t>{g});
    }
  });
  return x;
}

at::Tensor ilwt53_forward_backward_cpu(const at::Tensor& gy_in, c10::IntArrayRef in_size) {
  const Geometry g = band_geometry(gy_in, in_size, "ilwt53_forward_backward grad");
  const at::Tensor gy = gy_in.contiguous();
  at::Tensor gx = empty_image(gy, g);
  SF_DISPATCH_FLOAT(gy.scalar_type(), "ilwt53_forward_backward_cpu", [&] {
    bands_to_image<acc_t<scalar_t>>(gy.const_data_ptr<scalar_t>(), gx.mutable_data_ptr<scalar_t>(), g,
                                    ForwardAdjointOps<scalar_t>{g});
  });
  return gx;
}

at::Tensor ilwt53_inverse_backward_cpu(const at::Tensor& gx_in) {
  const Geometry g = image_geometry(gx_in, "ilwt53_inverse_backward grad");
  const at::Tensor gx = gx_in.contiguous();
  at::Tensor gy = empty_bands(gx, g);
  SF_DISPATCH_FLOAT(gx.scalar_type(), "ilwt53_inverse_backward_cpu", [&] {
    image_to_bands<acc_t<scalar_t>>(gx.const_data_ptr<scalar_t>(), gy.mutable_data_ptr<scalar_t>(), g,
                                    InverseAdjointOps<scalar_t>{g});
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
