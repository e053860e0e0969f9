// Runs the per-quad functions of csrc/lifting/lifting.h on the CPU exactly as the
// CUDA kernels (csrc/lifting/lifting_cuda.cu) do: every (plane, i, j) quad, the
// same accumulation type (lift_acc_t), the same band offsets and the same skipping of
// the padded row/column for odd sizes. The CPU kernels use the 1-D functions
// instead, so without a GPU this is the only test of the quad functions.
// Driven by python_tests/test_lifting_quad_stencil.py.
//
//   quad_stencil_driver IN OUT
//
// IN (native-endian): int64 ncases, then per case int64 B, C, H, W followed by six
// float64 arrays: x_int, x_real (B*C*H*W each), y_int, y_real, grad_y
// (B*4C*kh*kw each) and grad_x (B*C*H*W).
// OUT: per case, the float64 arrays listed in run_case, in that order.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <type_traits>
#include <vector>

#include "lifting/lifting.h"

namespace {

using namespace stegafast::lifting;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "quad_stencil_driver: %s\n", what);
  std::exit(2);
}

struct Geometry {
  int64_t batch, channels, h, w, kh, kw;
  int64_t planes() const { return batch * channels; }
  int64_t image_numel() const { return planes() * h * w; }
  int64_t band_numel() const { return planes() * 4 * kh * kw; }
};

int64_t band_offset(const Geometry& g, int64_t p, int64_t s) {
  const int64_t b = p / g.channels, c = p % g.channels;
  return ((b * 4 + s) * g.channels + c) * g.kh * g.kw;
}

template <typename T>
Bands<T> bands(const std::vector<T>& y, const Geometry& g, int64_t p) {
  return {y.data() + band_offset(g, p, 0), y.data() + band_offset(g, p, 1), y.data() + band_offset(g, p, 2),
          y.data() + band_offset(g, p, 3), g.kw};
}

// Starts every output at a value no correct result has, so that a position the
// quads miss shows up as a mismatch.
template <typename T>
std::vector<T> unset(int64_t n) {
  if constexpr (std::is_integral<T>::value) {
    return std::vector<T>(n, std::numeric_limits<T>::min());
  } else {
    return std::vector<T>(n, std::numeric_limits<T>::quiet_NaN());
  }
}

template <typename F>
void for_each_quad(const Geometry& g, const F& body) {
  for (int64_t p = 0; p < g.planes(); ++p)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) body(p, i, j);
}

template <typename T, typename A>
void store_bands(std::vector<T>& y, const Geometry& g, int64_t p, int64_t i, int64_t j, const A out[4]) {
  for (int s = 0; s < 4; ++s) y[band_offset(g, p, s) + i * g.kw + j] = T(out[s]);
}

// The kernel's skipping, with a check that it never leaves the image (a write
// past a row's end would land in the next row and could go unnoticed).
template <typename T, typename A>
void store_quad(std::vector<T>& x, const Geometry& g, int64_t p, int64_t i, int64_t j, const A out[4]) {
  const int64_t r = 2 * i, c = 2 * j;
  const bool has_col = c + 1 < g.w, has_row = r + 1 < g.h;
  auto put = [&](int64_t rr, int64_t cc, A v) {
    if (rr >= g.h || cc >= g.w) fail("write outside the image");
    x[(p * g.h + rr) * g.w + cc] = T(v);
  };
  put(r, c, out[0]);
  if (has_col) put(r, c + 1, out[1]);
  if (has_row) {
    put(r + 1, c, out[2]);
    if (has_col) put(r + 1, c + 1, out[3]);
  }
}

template <bool Round, typename T>
std::vector<T> forward(const std::vector<T>& x, const Geometry& g) {
  using A = lift_acc_t<T>;
  std::vector<T> y = unset<T>(g.band_numel());
  for_each_quad(g, [&](int64_t p, int64_t i, int64_t j) {
    A out[4];
    forward_quad<Round, A>(x.data() + p * g.h * g.w, g.h, g.w, i, j, out);
    store_bands(y, g, p, i, j, out);
  });
  return y;
}

template <bool Round, typename T>
std::vector<T> inverse(const std::vector<T>& y, const Geometry& g) {
  using A = lift_acc_t<T>;
  std::vector<T> x = unset<T>(g.image_numel());
  for_each_quad(g, [&](int64_t p, int64_t i, int64_t j) {
    A out[4];
    inverse_quad<Round, A>(bands(y, g, p), g.kh, i, j, out);
    store_quad(x, g, p, i, j, out);
  });
  return x;
}

template <typename T>
std::vector<T> forward_adjoint(const std::vector<T>& gy, const Geometry& g) {
  using A = lift_acc_t<T>;
  std::vector<T> gx = unset<T>(g.image_numel());
  for_each_quad(g, [&](int64_t p, int64_t i, int64_t j) {
    A out[4];
    forward_adjoint_quad<A>(bands(gy, g, p), g.kh, g.h, g.w, i, j, out);
    store_quad(gx, g, p, i, j, out);
  });
  return gx;
}

template <typename T>
std::vector<T> inverse_adjoint(const std::vector<T>& gx, const Geometry& g) {
  using A = lift_acc_t<T>;
  std::vector<T> gy = unset<T>(g.band_numel());
  for_each_quad(g, [&](int64_t p, int64_t i, int64_t j) {
    A out[4];
    inverse_adjoint_quad<A>(gx.data() + p * g.h * g.w, g.h, g.w, i, j, out);
    store_bands(gy, g, p, i, j, out);
  });
  return gy;
}

template <typename T>
std::vector<T> as(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

struct Reader {
  std::FILE* f;
  int64_t int64() {
    int64_t v;
    if (std::fread(&v, sizeof v, 1, f) != 1) fail("truncated input");
    return v;
  }
  std::vector<double> doubles(int64_t n) {
    std::vector<double> v(n);
    if (n && std::fread(v.data(), sizeof(double), n, f) != size_t(n)) fail("truncated input");
    return v;
  }
};

struct Writer {
  std::FILE* f;
  template <typename T>
  void operator()(const std::vector<T>& v) {
    const std::vector<double> d(v.begin(), v.end());
    if (d.size() && std::fwrite(d.data(), sizeof(double), d.size(), f) != d.size()) fail("cannot write output");
  }
};

void run_case(Reader& in, Writer& out) {
  Geometry g;
  g.batch = in.int64();
  g.channels = in.int64();
  g.h = in.int64();
  g.w = in.int64();
  if (g.batch < 0 || g.channels < 0 || g.h < 2 || g.w < 2) fail("bad shape");
  g.kh = half_len(g.h);
  g.kw = half_len(g.w);
  const auto x_int = in.doubles(g.image_numel());
  const auto x_real = in.doubles(g.image_numel());
  const auto y_int = in.doubles(g.band_numel());
  const auto y_real = in.doubles(g.band_numel());
  const auto grad_y = in.doubles(g.band_numel());
  const auto grad_x = in.doubles(g.image_numel());

  // int32 data lifts in wrapping uint32 arithmetic (lift_acc_t), as the CUDA kernels dispatch it.
  out(forward<true>(as<int32_t>(x_int), g));
  out(forward<true>(x_int, g));
  out(forward<true>(as<float>(x_int), g));
  out(forward<false>(x_real, g));
  out(inverse<true>(as<int32_t>(y_int), g));
  out(inverse<true>(y_int, g));
  out(inverse<true>(as<float>(y_int), g));
  out(inverse<false>(y_real, g));
  out(forward_adjoint(grad_y, g));
  out(inverse_adjoint(grad_x, g));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) fail("usage: quad_stencil_driver IN OUT");
  std::FILE* fin = std::fopen(argv[1], "rb");
  std::FILE* fout = std::fopen(argv[2], "wb");
  if (!fin || !fout) fail("cannot open the input or output file");
  Reader in{fin};
  Writer out{fout};
  const int64_t cases = in.int64();
  for (int64_t k = 0; k < cases; ++k) run_case(in, out);
  if (std::fclose(fout) != 0) fail("cannot write output");
  std::fclose(fin);
  return 0;
}
