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

// Image -> subbands: a vertical pass over image columns produces the low and high
// rows of row pair i, then a horizontal pass splits each of them in two. Used by
// the forward transform and by the adjoint of the inverse.
template <typename A, typename T, typename VOp, typename HOp>
void image_to_bands(const T* x, T* y, const Geometry& g, const VOp& vertical,
                    const HOp& horizontal) {
  const int64_t plane = g.h * g.w;
  for_each_row(g.batch * g.channels, g.kh, g.w, [&](int64_t p, int64_t i) {
    thread_local std::vector<A> lo, hi;
    lo.resize(g.w);
    hi.resize(g.w);
    const T* xp = x + p * plane;
    for (int64_t c = 0; c < g.w; ++c) {
      const Pair<A> v = vertical(Column<A, T>{xp, g.w, c}, i);
      lo[c] = v.lo;
      hi[c] = v.hi;
    }
    T* ll = band_plane(y, g, p, 0) + i * g.kw;
    T* hl = band_plane(y, g, p, 1) + i * g.kw;
    T* lh = band_plane(y, g, p, 2) + i * g.kw;
    T* hh = band_plane(y, g, p, 3) + i * g.kw;
    for (int64_t j = 0; j < g.kw; ++j) {
      const Pair<A> l = horizontal(Row<A, A>{lo.data()}, j);
      const Pair<A> h = horizontal(Row<A, A>{hi.data()}, j);
      ll[j] = T(l.lo);
      hl[j] = T(l.hi);
      lh[j] = T(h.lo);
      hh[j] = T(h.hi);
    }
  });
}

// Subbands -> image: a horizontal pass rebuilds the full-width low and high rows
// (kept in the accumulation type), then a vertical pass rebuilds the image rows.
// Used by the inverse transform and by the adjoint of the forward.
template <typename A, typename T, typename HOp, typename VOp>
void bands_to_image(const T* y, T* x, const Geometry& g, const HOp& horizontal,
                    const VOp& vertical) {
  const int64_t planes = g.batch * g.channels;
  const int64_t half_plane = g.kh * g.w;
  std::vector<A> lo_rows(planes * half_plane), hi_rows(planes * half_plane);
  for_each_row(planes, g.kh, g.w, [&](int64_t p, int64_t r) {
    const Bands<T> b = bands_of(y, g, p);
    A* lo = lo_rows.data() + p * half_plane + r * g.w;
    A* hi = hi_rows.data() + p * half_plane + r * g.w;
    for (int64_t j = 0; j < g.kw; ++j) {
      const Pair<A> l = horizontal(Row<A, T>{b.ll + r * g.kw}, Row<A, T>{b.hl + r * g.kw}, j);
      const Pair<A> h = horizontal(Row<A, T>{b.lh + r * g.kw}, Row<A, T>{b.hh + r * g.kw}, j);
      lo[2 * j] = l.lo;
      hi[2 * j] = h.lo;
      if (2 * j + 1 < g.w) {
        lo[2 * j + 1] = l.hi;
        hi[2 * j + 1] = h.hi;
      }
    }
  });
  const int64_t plane = g.h * g.w;
  for_each_row(planes, g.kh, g.w, [&](int64_t p, int64_t i) {
    const A* lo = lo_rows.data() + p * half_plane;
    const A* hi = hi_rows.data() + p * half_plane;
    T* even = x + p * plane + 2 * i * g.w;
    T* odd = even + g.w;
    const bool has_odd = 2 * i + 1 < g.h;
    for (int64_t c = 0; c < g.w; ++c) {
      const Pair<A> v = vertical(Column<A, A>{lo, g.w, c}, Column<A, A>{hi, g.w, c}, i);
      even[c] = T(v.lo);
      if (has_odd) odd[c] = T(v.hi);
    }
  });
}

template <bool Round, typename T>
void forward_kernel(const T* x, T* y, const Geometry& g) {
  using A = acc_t<T>;
  auto vertical = [&](const auto& col, int64_t i) { return lift_at<Round, A>(col, i, g.h); };
  auto horizontal = [&](const auto& row, int64_t j) { return lift_at<Round, A>(row, j, g.w); };
  image_to_bands<A>(x, y, g, vertical, horizontal);
}

template <bool Round, typename T>
void inverse_kernel(const T* y, T* x, const Geometry& g) {
  using A = acc_t<T>;
  auto horizontal = [&](const auto& lo, const auto& hi, int64_t j) {
    return unlift_at<Round, A>(lo, hi, j, g.kw);
  };
  auto vertical = [&](const auto& lo, const auto& hi, int64_t i) {
    return unlift_at<Round, A>(lo, hi, i, g.kh);
  };
  bands_to_image<A>(y, x, g, horizontal, vertical);
}

template <typename T>
void forward_adjoint_kernel(const T* gy, T* gx, const Geometry& g) {
  using A = acc_t<T>;
  auto horizontal = [&](const auto& lo, const auto& hi, int64_t j) {
    return lift_adjoint_at<A>(lo, hi, j, g.kw, g.w);
  };
  auto vertical = [&](const auto& lo, const auto& hi, int64_t i) {
    return lift_adjoint_at<A>(lo, hi, i, g.kh, g.h);
  };
  bands_to_image<A>(gy, gx, g, horizontal, vertical);
}

template <typename T>
void inverse_adjoint_kernel(const T* gx, T* gy, const Geometry& g) {
  using A = acc_t<T>;
  auto vertical = [&](const auto& col, int64_t i) { return unlift_adjoint_at<A>(col, i, g.kh, g.h); };
  auto horizontal = [&](const auto& row, int64_t j) {
    return unlift_adjoint_at<A>(row, j, g.kw, g.w);
  };
  image_to_bands<A>(gx, gy, g, vertical, horizontal);
}

at::Tensor ilwt53_forward_cpu(const at::Tensor& x_in, bool rounding) {
  const Geometry g = image_geometry(x_in, "ilwt53_forward input");
  check_rounding(x_in, rounding);
  const at::Tensor x = x_in.contiguous();
  at::Tensor y = empty_bands(x, g);
  SF_DISPATCH_FLOAT_AND_INT(x.scalar_type(), "ilwt53_forward_cpu", [&] {
    if (rounding) {
      forward_kernel<true>(x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(), g);
    } else {
      forward_kernel<false>(x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(), g);
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
    if (rounding) {
      inverse_kernel<true>(y.const_data_ptr<scalar_t>(), x.mutable_data_ptr<scalar_t>(), g);
    } else {
      inverse_kernel<false>(y.const_data_ptr<scalar_t>(), x.mutable_data_ptr<scalar_t>(), g);
    }
  });
  return x;
}

at::Tensor ilwt53_forward_backward_cpu(const at::Tensor& gy_in, c10::IntArrayRef in_size) {
  const Geometry g = band_geometry(gy_in, in_size, "ilwt53_forward_backward grad");
  const at::Tensor gy = gy_in.contiguous();
  at::Tensor gx = empty_image(gy, g);
  SF_DISPATCH_FLOAT(gy.scalar_type(), "ilwt53_forward_backward_cpu", [&] {
    forward_adjoint_kernel(gy.const_data_ptr<scalar_t>(), gx.mutable_data_ptr<scalar_t>(), g);
  });
  return gx;
}

at::Tensor ilwt53_inverse_backward_cpu(const at::Tensor& gx_in) {
  const Geometry g = image_geometry(gx_in, "ilwt53_inverse_backward grad");
  const at::Tensor gx = gx_in.contiguous();
  at::Tensor gy = empty_bands(gx, g);
  SF_DISPATCH_FLOAT(gx.scalar_type(), "ilwt53_inverse_backward_cpu", [&] {
    inverse_adjoint_kernel(gx.const_data_ptr<scalar_t>(), gy.mutable_data_ptr<scalar_t>(), g);
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
