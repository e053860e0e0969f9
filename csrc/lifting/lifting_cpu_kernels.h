// CPU kernels of the batched 5/3 lifting wavelet, compiled once per CPU variant
// (see common/cpu_variants.h): the including file defines SF_CPU_VARIANT, the
// namespace the code lands in, and includes no torch header.
//
// Both 2-D transforms and both adjoints are separable: one 1-D pass along H and
// one along W, built from the functions of lifting.h. Work is spread over
// (plane, row) pairs so one large image uses every thread as well as a large
// batch does. No include guard on purpose: each variant includes it once.
#ifndef SF_CPU_VARIANT
#error "define SF_CPU_VARIANT before including lifting_cpu_kernels.h"
#endif

#include <cstdlib>
#include <new>

#include "../common/cpu_variants.h"
#include "lifting.h"

namespace stegafast {
namespace lifting {
namespace SF_CPU_VARIANT {

// The floor this build vectorises best (see lifting.h).
#ifdef SF_CPU_HAS_SSE41
using Floor = LibraryFloor;
#else
using Floor = TruncationFloor;
#endif

// A heap buffer of n elements. No std::vector: its inline code compiled for a
// variant could leak to baseline callers (see cpu_variants.h).
template <typename A>
struct Buffer {
  A* data = nullptr;
  int64_t size = 0;
  Buffer() = default;
  explicit Buffer(int64_t n) { reserve(n); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { std::free(data); }
  A* reserve(int64_t n) {
    if (n > size) {
      std::free(data);
      data = static_cast<A*>(std::malloc(sizeof(A) * n));
      if (data == nullptr) throw std::bad_alloc();
      size = n;
    }
    return data;
  }
};

// Per-thread scratch rows, fetched once per range of rows: thread_local access
// costs a call in a shared library, too much to pay per row of a narrow image.
template <typename A, typename T>
struct Scratch {
  A* lo;  // a full-width low row
  A* hi;  // a full-width high row
  A* a;   // work rows for lift_row / unlift_row
  A* b;
  A* c;
  T* spill;       // receives rows that fall outside an odd-height image
  A* window[6];   // merged low rows (slots 0-2) and high rows (3-5), see bands_to_image
  int64_t* tags;  // which (plane, row) each window slot holds; -1: none

  static Scratch get(int64_t width) {
    thread_local Buffer<A> rows[11];
    thread_local Buffer<T> spill_row;
    thread_local int64_t window_tags[6];
    const int64_t n = width + 4;
    Scratch s{rows[0].reserve(n),
              rows[1].reserve(n),
              rows[2].reserve(n),
              rows[3].reserve(n),
              rows[4].reserve(n),
              spill_row.reserve(n),
              {},
              window_tags};
    for (int t = 0; t < 6; ++t) {
      s.window[t] = rows[5 + t].reserve(n);
      s.tags[t] = -1;  // the buffers may have been resized: forget what they held
    }
    return s;
  }
};

// Runs body(plane, row, scratch) for rows [0, rows) of planes [0, planes).
template <typename A, typename T, typename F>
void for_each_row(cpu::ParallelFor parallel, int64_t planes, int64_t rows, int64_t width, const F& body) {
  struct Context {
    const F& body;
    int64_t rows, width;
  } ctx{body, rows, width};
  const int64_t grain = 1 + 32768 / (width > 0 ? width : 1);
  parallel(planes * rows, grain, &ctx, [](void* raw, int64_t begin, int64_t end) {
    const Context& c = *static_cast<const Context*>(raw);
    const Scratch<A, T> s = Scratch<A, T>::get(c.width);
    int64_t p = begin / c.rows, i = begin % c.rows;
    for (int64_t k = begin; k < end; ++k) {
      c.body(p, i, s);
      if (++i == c.rows) {
        i = 0;
        ++p;
      }
    }
  });
}

// One row of length n lifted into k lows and k highs. The samples are first
// split into contiguous even and odd arrays (extension included), so that both
// lifting steps run as plain vectorisable loops, each d computed once.
template <bool Round, typename A, typename T, typename S>
void lift_row(const A* x, int64_t n, T* __restrict lo, T* __restrict hi, const S& s) {
  const int64_t k = half_len(n);
  A* __restrict even = s.a;  // even[m + 1] = x(2m),      m = -1 .. k
  A* __restrict odd = s.b;   // odd[m + 1]  = x(2m + 1),  m = -1 .. k-1
  A* __restrict d = s.c;     // d[m + 1]    = d(m),       m = -1 .. k-1
  // interior samples copy straight across; only the ends go through ext()
  even[0] = x[ext(-2, n)];
  for (int64_t m = 0; m < k; ++m) even[m + 1] = x[2 * m];
  even[k + 1] = x[ext(2 * k, n)];
  odd[0] = x[ext(-1, n)];
  for (int64_t m = 0; m < n / 2; ++m) odd[m + 1] = x[2 * m + 1];
  if (n & 1) odd[k] = x[ext(2 * k - 1, n)];
  for (int64_t m = 0; m <= k; ++m) d[m] = odd[m] - predict<Round, A, Floor>(even[m], even[m + 1]);
  for (int64_t j = 0; j < k; ++j) {
    lo[j] = T(even[j + 1] + update<Round, A, Floor>(d[j], d[j + 1]));
    hi[j] = T(d[j + 1]);
  }
}

// Inverse of lift_row: k lows and k highs back to the n samples of a row.
template <bool Round, typename A, typename T, typename S>
void unlift_row(const T* lo, const T* hi, int64_t n, A* __restrict out, const S& s) {
  const int64_t k = half_len(n);
  A* __restrict d = s.a;     // d[j + 1] = d(j), d[0] = d(0): the extension
  A* __restrict even = s.b;  // even[k] = even[k - 1]: the extension
  d[0] = A(hi[0]);
  for (int64_t j = 0; j < k; ++j) d[j + 1] = A(hi[j]);
  for (int64_t j = 0; j < k; ++j) even[j] = A(lo[j]) - update<Round, A, Floor>(d[j], d[j + 1]);
  even[k] = even[k - 1];
  for (int64_t j = 0; j < n / 2; ++j) {
    out[2 * j] = even[j];
    out[2 * j + 1] = d[j + 1] + predict<Round, A, Floor>(even[j], even[j + 1]);
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
void image_to_bands(const T* x, T* y, const Geometry& g, const Ops& ops, cpu::ParallelFor par) {
  const int64_t plane = g.h * g.w, stride = band_stride(g);
  for_each_row<A, T>(par, g.batch * g.channels, g.kh, g.w, [&](int64_t p, int64_t i, const Scratch<A, T>& s) {
    ops.split_rows(x + p * plane, i, s.lo, s.hi);
    T* ll = y + band_offset(g, p, 0) + i * g.kw;
    ops.split_row(s.lo, ll, ll + stride, s);
    ops.split_row(s.hi, ll + 2 * stride, ll + 3 * stride, s);
  });
}

// Three consecutive merged rows, i-1 .. i+1, as the vertical pass of row pair i
// sees them: row(r) for r in that range (clamped to the k rows that exist).
template <typename A>
struct Window {
  const A* rows[3];
  int64_t first;  // i - 1
  const A* row(int64_t r) const { return rows[r - first]; }
};

template <typename A>
struct WindowColumn {
  const Window<A>& window;
  int64_t c;
  A operator()(int64_t r) const { return window.row(r)[c]; }
};

// Subbands -> image. ops.merge_row rebuilds a full-width low or high row from
// its two subband rows (horizontal pass, in the accumulation type), then
// ops.merge_rows rebuilds image rows 2i and 2i+1 from merged rows i-1 .. i+1
// (vertical pass). Merged rows live in a per-thread window of three low and
// three high rows, each computed once while a thread walks down a plane, so no
// image-sized temporary is needed. Inverse transform and adjoint of the forward.
template <typename A, typename T, typename Ops>
void bands_to_image(const T* y, T* x, const Geometry& g, const Ops& ops, cpu::ParallelFor par) {
  const int64_t stride = band_stride(g), plane = g.h * g.w;
  // merged low (high = 1) row r of plane p, from the window or computed into it
  auto merged = [&](const Scratch<A, T>& s, int high, int64_t p, int64_t r) -> const A* {
    const int slot = 3 * high + static_cast<int>(r % 3);
    const int64_t tag = p * g.kh + r;
    if (s.tags[slot] != tag) {
      const T* band = y + band_offset(g, p, 2 * high) + r * g.kw;
      ops.merge_row(band, band + stride, s.window[slot], s);
      s.tags[slot] = tag;
    }
    return s.window[slot];
  };
  for_each_row<A, T>(par, g.batch * g.channels, g.kh, g.w, [&](int64_t p, int64_t i, const Scratch<A, T>& s) {
    Window<A> lo{{nullptr, nullptr, nullptr}, i - 1}, hi{{nullptr, nullptr, nullptr}, i - 1};
    for (int64_t r = i > 0 ? i - 1 : 0; r <= i + 1 && r < g.kh; ++r) {
      lo.rows[r - (i - 1)] = merged(s, 0, p, r);
      hi.rows[r - (i - 1)] = merged(s, 1, p, r);
    }
    T* even = x + p * plane + 2 * i * g.w;
    // the odd row past an odd-height image is computed into scratch and dropped
    T* odd = 2 * i + 1 < g.h ? even + g.w : s.spill;
    ops.merge_rows(lo, hi, i, even, odd);
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
  using A = lift_acc_t<T>;
  const Geometry g;

  void split_rows(const T* x, int64_t i, A* __restrict lo, A* __restrict hi) const {
    const int64_t w = g.w;  // a local: stores through lo/hi cannot change it
    const T* r[5];
    for (int t = 0; t < 5; ++t) r[t] = x + ext(2 * i - 2 + t, g.h) * w;
    for (int64_t c = 0; c < w; ++c) {
      const Pair<A> v = lift5<Round, A, Floor>(A(r[0][c]), A(r[1][c]), A(r[2][c]), A(r[3][c]), A(r[4][c]));
      lo[c] = v.lo;
      hi[c] = v.hi;
    }
  }

  template <typename S>
  void split_row(const A* row, T* lo, T* hi, const S& s) const {
    lift_row<Round, A>(row, g.w, lo, hi, s);
  }
};

template <bool Round, typename T>
struct InverseOps {
  using A = lift_acc_t<T>;
  const Geometry g;

  template <typename S>
  void merge_row(const T* lo, const T* hi, A* out, const S& s) const {
    unlift_row<Round, A>(lo, hi, g.w, out, s);
  }

  void merge_rows(const Window<A>& lo, const Window<A>& hi, int64_t i, T* even, T* odd) const {
    const A* d0 = hi.row(i);
    const A* dm = i > 0 ? hi.row(i - 1) : d0;  // d[-1] = d[0]
    if (i + 1 == g.kh) {
      merge_rows_at<true>(lo.row(i), lo.row(i), dm, d0, d0, even, odd);
    } else {
      merge_rows_at<false>(lo.row(i), lo.row(i + 1), dm, d0, hi.row(i + 1), even, odd);
    }
  }

  // `Last` as a compile-time constant keeps the loop free of selects, so it vectorises.
  template <bool Last>
  void merge_rows_at(const A* s0, const A* s1, const A* dm, const A* d0, const A* d1, T* __restrict even,
                     T* __restrict odd) const {
    const int64_t w = g.w;
    for (int64_t c = 0; c < w; ++c) {
      const Pair<A> v = unlift5<Round, A, Floor>(s0[c], s1[c], dm[c], d0[c], d1[c], Last);
      even[c] = T(v.lo);
      odd[c] = T(v.hi);
    }
  }
};

// The adjoints below run their interior pairs as plain loops over contiguous
// data (which vectorise) and only the pairs near the two ends, where the
// extension rules add terms, through the general *_adjoint_at functions. The
// interior formulas are those functions with every boundary term dropped, in the
// same order of operations.

// Runs edge(i) for i in [0, k) outside [first, last] and inner(first, last) once.
template <typename Edge, typename Inner>
inline void split_pairs(int64_t k, int64_t first, int64_t last, const Edge& edge, const Inner& inner) {
  if (last < first) {
    for (int64_t i = 0; i < k; ++i) edge(i);
    return;
  }
  for (int64_t i = 0; i < first; ++i) edge(i);
  inner(first, last);
  for (int64_t i = last + 1; i < k; ++i) edge(i);
}

template <typename T>
struct ForwardAdjointOps {
  using A = lift_acc_t<T>;
  const Geometry g;

  // interior pairs: 2 <= j <= k-3 (no U^T term at 0, no P^T term at k-1, no fold)
  template <typename S>
  void merge_row(const T* gs, const T* gd, A* __restrict out, const S&) const {
    const int64_t k = g.kw, n = g.w;
    auto edge = [&](int64_t j) { store_samples(lift_adjoint_at<A>(Row<A, T>{gs}, Row<A, T>{gd}, j, k, n), out, j, n); };
    split_pairs(k, 2, k - 3, edge, [&](int64_t first, int64_t last) {
      for (int64_t j = first; j <= last; ++j) {
        const A d = A(gd[j]) + (A(gs[j]) + A(gs[j + 1])) * A(0.25);
        const A d_prev = A(gd[j - 1]) + (A(gs[j - 1]) + A(gs[j])) * A(0.25);
        out[2 * j] = A(gs[j]) - (d + d_prev) * A(0.5);
        out[2 * j + 1] = d;
      }
    });
  }

  void merge_rows(const Window<A>& gs, const Window<A>& gd, int64_t i, T* even, T* odd) const {
    const int64_t k = g.kh, w = g.w;
    if (i >= 2 && i <= k - 3) {
      merge_inner_rows(gs.row(i - 1), gs.row(i), gs.row(i + 1), gd.row(i - 1), gd.row(i), even, odd);
      return;
    }
    for (int64_t c = 0; c < w; ++c) {
      const Pair<A> v = lift_adjoint_at<A>(WindowColumn<A>{gs, c}, WindowColumn<A>{gd, c}, i, k, g.h);
      even[c] = T(v.lo);
      odd[c] = T(v.hi);
    }
  }

  void merge_inner_rows(const A* gs_prev, const A* gs0, const A* gs_next, const A* gd_prev, const A* gd0,
                        T* __restrict even, T* __restrict odd) const {
    const int64_t w = g.w;
    for (int64_t c = 0; c < w; ++c) {
      const A d = gd0[c] + (gs0[c] + gs_next[c]) * A(0.25);
      const A d_prev = gd_prev[c] + (gs_prev[c] + gs0[c]) * A(0.25);
      even[c] = T(gs0[c] - (d + d_prev) * A(0.5));
      odd[c] = T(d);
    }
  }
};

template <typename T>
struct InverseAdjointOps {
  using A = lift_acc_t<T>;
  const Geometry g;

  // interior pairs: 1 <= i <= k-3 (no boundary term, and x(2i+3) is inside)
  void split_rows(const T* gx, int64_t i, A* lo, A* hi) const {
    const int64_t k = g.kh, w = g.w;
    if (i >= 1 && i <= k - 3) {
      const T* r = gx + (2 * i - 1) * w;  // rows 2i-1 .. 2i+3
      split_inner_rows(r, r + w, r + 2 * w, r + 3 * w, r + 4 * w, lo, hi);
      return;
    }
    for (int64_t c = 0; c < w; ++c) {
      const Pair<A> v = unlift_adjoint_at<A>(Column<A, T>{gx, w, c}, i, k, g.h);
      lo[c] = v.lo;
      hi[c] = v.hi;
    }
  }

  void split_inner_rows(const T* xm1, const T* x0, const T* x1, const T* x2, const T* x3, A* __restrict lo,
                        A* __restrict hi) const {
    const int64_t w = g.w;
    for (int64_t c = 0; c < w; ++c) {
      const A even = A(x0[c]) + (A(x1[c]) + A(xm1[c])) * A(0.5);
      const A even_next = A(x2[c]) + (A(x3[c]) + A(x1[c])) * A(0.5);
      lo[c] = even;
      hi[c] = A(x1[c]) - (even + even_next) * A(0.25);
    }
  }

  template <typename S>
  void split_row(const A* x, T* __restrict lo, T* __restrict hi, const S&) const {
    const int64_t k = g.kw, n = g.w;
    auto edge = [&](int64_t j) { store_pair(unlift_adjoint_at<A>(Row<A, A>{x}, j, k, n), lo, hi, j); };
    split_pairs(k, 1, k - 3, edge, [&](int64_t first, int64_t last) {
      for (int64_t j = first; j <= last; ++j) {
        const A even = x[2 * j] + (x[2 * j + 1] + x[2 * j - 1]) * A(0.5);
        const A even_next = x[2 * j + 2] + (x[2 * j + 3] + x[2 * j + 1]) * A(0.5);
        lo[j] = T(even);
        hi[j] = T(x[2 * j + 1] - (even + even_next) * A(0.25));
      }
    });
  }
};

// The four operations of one variant, on contiguous tensors' data.
template <typename T>
void run_forward(const T* x, T* y, const Geometry& g, bool rounding, cpu::ParallelFor par) {
  if (rounding) {
    image_to_bands<lift_acc_t<T>>(x, y, g, ForwardOps<true, T>{g}, par);
  } else {
    image_to_bands<lift_acc_t<T>>(x, y, g, ForwardOps<false, T>{g}, par);
  }
}

template <typename T>
void run_inverse(const T* y, T* x, const Geometry& g, bool rounding, cpu::ParallelFor par) {
  if (rounding) {
    bands_to_image<lift_acc_t<T>>(y, x, g, InverseOps<true, T>{g}, par);
  } else {
    bands_to_image<lift_acc_t<T>>(y, x, g, InverseOps<false, T>{g}, par);
  }
}

template <typename T>
void run_forward_adjoint(const T* gy, T* gx, const Geometry& g, cpu::ParallelFor par) {
  bands_to_image<lift_acc_t<T>>(gy, gx, g, ForwardAdjointOps<T>{g}, par);
}

template <typename T>
void run_inverse_adjoint(const T* gx, T* gy, const Geometry& g, cpu::ParallelFor par) {
  image_to_bands<lift_acc_t<T>>(gx, gy, g, InverseAdjointOps<T>{g}, par);
}

}  // namespace SF_CPU_VARIANT
}  // namespace lifting
}  // namespace stegafast
