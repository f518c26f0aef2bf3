// The two time loops of lstm_scan.py (forward recurrence, backward recurrence),
// run by the CPU with AVX-512 or AVX2 + FMA (one build each, simd.h), each thread
// over its own batch rows.
//
// Why: XLA:CPU runs a while loop's body one thunk after another on one thread;
// the LSTM tagger's per-step [32, 128] x [128, 512] product takes 34 us there
// (PyTorch's oneDNN LSTM: ~20 us on 2 threads), and the loops were more than half
// of the step. Batch rows are independent in an LSTM, so each thread runs the
// whole recurrence for its rows: no barrier per step. The large matmuls before
// and after the loops stay in XLA.
//
// Same arithmetic as lstm_scan.py's loops (float32): gates i, f, g, o;
// t = tanh((p + (h W_h + b)) * scale) with scale 0.5 for the sigmoid gates (a
// sigmoid is (tanh(x / 2) + 1) / 2); held steps (keep 0) copy the carry exactly.
// tanh is Eigen's float rational approximation (as XLA:CPU's), so results equal
// the XLA loops up to float rounding (each build repeats its own bits). Requires
// H % 16 == 0; the Python side checks that and the dtype, and isa.py the CPU.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "native_kernels.h"
#include "simd.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
namespace simd = jaxdl::simd;
using simd::Vec;

namespace {

constexpr int kLanes = simd::kLanes;

// tanh(x), Eigen's generic_fast_tanh_float. NaN stays NaN (operand order of
// min/max: the second operand is returned when either is NaN).
inline Vec Tanh(Vec x) {
  const Vec bound = simd::Set1(7.99881172180175781f);
  const simd::Mask tiny = simd::AbsBelow(x, 0.0004f);
  x = simd::Max(simd::Sub(simd::Zero(), bound), simd::Min(bound, x));
  const Vec x2 = simd::Mul(x, x);
  Vec p = simd::MulAdd(x2, simd::Set1(-2.76076847742355e-16f), simd::Set1(2.00018790482477e-13f));
  p = simd::MulAdd(x2, p, simd::Set1(-8.60467152213735e-11f));
  p = simd::MulAdd(x2, p, simd::Set1(5.12229709037114e-08f));
  p = simd::MulAdd(x2, p, simd::Set1(1.48572235717979e-05f));
  p = simd::MulAdd(x2, p, simd::Set1(6.37261928875436e-04f));
  p = simd::MulAdd(x2, p, simd::Set1(4.89352455891786e-03f));
  p = simd::Mul(x, p);
  Vec q = simd::MulAdd(x2, simd::Set1(1.19825839466702e-06f), simd::Set1(1.18534705686654e-04f));
  q = simd::MulAdd(x2, q, simd::Set1(2.26843463243900e-03f));
  q = simd::MulAdd(x2, q, simd::Set1(4.89352518554385e-03f));
  return simd::Select(tiny, x, simd::Div(p, q));
}

// C[R, N] = A[R, K] @ B[K, N], row-major with row strides lda / ldc; N % kLanes == 0.
// Register tile R x (kTile vectors) (R <= 4): AVX-512 4 x 64 (16 accumulators of
// 32 registers), AVX2 4 x 24 (12 of 16); B read once per 4 rows.
constexpr int kTile = simd::kWide ? 4 : 3;

template <int R>
void GemmRows(const float* a, int64_t lda, const float* b, int64_t n, int64_t k,
              float* c, int64_t ldc) {
  int64_t j = 0;
  for (; j + kTile * kLanes <= n; j += kTile * kLanes) {
    Vec acc[R][kTile];
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < kTile; ++q) acc[r][q] = simd::Zero();
    for (int64_t kk = 0; kk < k; ++kk) {
      const float* row = b + kk * n + j;
      Vec bv[kTile];
      for (int q = 0; q < kTile; ++q) bv[q] = simd::Load(row + q * kLanes);
      for (int r = 0; r < R; ++r) {
        const Vec ar = simd::Set1(a[r * lda + kk]);
        for (int q = 0; q < kTile; ++q) acc[r][q] = simd::MulAdd(ar, bv[q], acc[r][q]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < kTile; ++q) simd::Store(c + r * ldc + j + kLanes * q, acc[r][q]);
  }
  for (; j < n; j += kLanes) {
    Vec acc[R];
    for (int r = 0; r < R; ++r) acc[r] = simd::Zero();
    for (int64_t kk = 0; kk < k; ++kk) {
      const Vec bv = simd::Load(b + kk * n + j);
      for (int r = 0; r < R; ++r) acc[r] = simd::MulAdd(simd::Set1(a[r * lda + kk]), bv, acc[r]);
    }
    for (int r = 0; r < R; ++r) simd::Store(c + r * ldc + j, acc[r]);
  }
}

// C[rows, N] = A[rows, K] @ B[K, N] in tiles of 4 rows.
void Gemm(const float* a, int64_t lda, const float* b, int64_t n, int64_t k,
                       float* c, int64_t ldc, int64_t rows) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) GemmRows<4>(a + r * lda, lda, b, n, k, c + r * ldc, ldc);
  switch (rows - r) {
    case 3: GemmRows<3>(a + r * lda, lda, b, n, k, c + r * ldc, ldc); break;
    case 2: GemmRows<2>(a + r * lda, lda, b, n, k, c + r * ldc, ldc); break;
    case 1: GemmRows<1>(a + r * lda, lda, b, n, k, c + r * ldc, ldc); break;
    default: break;
  }
}

// Splits batch rows into blocks of 4 (one register tile) and runs
// body(first_row, last_row) for each, on up to all of the pool's threads. Small
// blocks cost nothing (the product runs in 4-row tiles anyway, and each row's sums
// are the same whatever block it is in) and keep a thread the OS has paused on a
// loaded machine from holding a large share of the batch while the others wait.
constexpr int64_t kRowsPerBlock = 4;

template <typename Body>
void RunOverRows(ffi::ThreadPool& pool, int64_t batch, Body body) {
  if (batch <= 0) return;
  const int64_t blocks = (batch + kRowsPerBlock - 1) / kRowsPerBlock;
  jaxdl::ParallelFor(pool, blocks, pool.num_threads(), [=](int64_t, int64_t block) {
    const int64_t first = block * kRowsPerBlock;
    body(first, std::min(batch, first + kRowsPerBlock));
  });
}

constexpr char kKernel[] = "jaxdl_lstm";  // names the kernel in errors

// projected [T, B, 4H] (x W_i), keep [T, B] (1 or 0), c0, h0 [B, H], w_h [H, 4H],
// b [4H] -> gate tanh t [T, B, 4H], carries c, h [T, B, H] (after each step).
ffi::Error LstmForwardImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> projected,
                           ffi::Buffer<ffi::F32> keep, ffi::Buffer<ffi::F32> c0,
                           ffi::Buffer<ffi::F32> h0, ffi::Buffer<ffi::F32> w_h,
                           ffi::Buffer<ffi::F32> bias, ffi::ResultBuffer<ffi::F32> gates,
                           ffi::ResultBuffer<ffi::F32> cells, ffi::ResultBuffer<ffi::F32> hiddens) {
  const auto dims = projected.dimensions();
  if (dims.size() != 3 || w_h.dimensions().size() != 2) return jaxdl::Invalid(kKernel, "bad ranks");
  const int64_t steps = dims[0], batch = dims[1], hidden = w_h.dimensions()[0];
  if (dims[2] != 4 * hidden || w_h.dimensions()[1] != 4 * hidden || hidden % 16 != 0 ||
      c0.element_count() != batch * hidden || h0.element_count() != batch * hidden ||
      keep.element_count() != steps * batch || bias.element_count() != 4 * hidden) {
    return jaxdl::Invalid(kKernel, "shapes do not match projected [T, B, 4H] with H % 16 == 0");
  }
  const float* p = projected.typed_data();
  const float* kp = keep.typed_data();
  const float* w = w_h.typed_data();
  const float* b = bias.typed_data();
  float* t_out = gates->typed_data();
  float* c_out = cells->typed_data();
  float* h_out = hiddens->typed_data();
  const float* c_init = c0.typed_data();
  const float* h_init = h0.typed_data();
  const int64_t h4 = 4 * hidden;

  RunOverRows(pool, batch, [=](int64_t first, int64_t last) {
    const int64_t rows = last - first;
    std::vector<float> z(rows * h4);
    const Vec half = simd::Set1(0.5f);
    for (int64_t s = 0; s < steps; ++s) {
      // The carry entering step s: the initial one, or step s - 1's.
      const float* c_prev = s ? c_out + ((s - 1) * batch) * hidden : c_init;
      const float* h_prev = s ? h_out + ((s - 1) * batch) * hidden : h_init;
      Gemm(h_prev + first * hidden, hidden, w, h4, hidden, z.data(), h4, rows);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t row = first + r;
        const float* p_row = p + (s * batch + row) * h4;
        float* t_row = t_out + (s * batch + row) * h4;
        const float* z_row = z.data() + r * h4;
        for (int64_t j = 0; j < h4; j += kLanes) {
          // t = tanh((p + (h W_h + b)) * scale); scale 1 for g (the third quarter).
          Vec v = simd::Add(simd::Load(p_row + j),
                                   simd::Add(simd::Load(z_row + j), simd::Load(b + j)));
          if (j < 2 * hidden || j >= 3 * hidden) v = simd::Mul(v, half);
          simd::Store(t_row + j, Tanh(v));
        }
        const bool kept = kp[s * batch + row] != 0.0f;
        const float* cp = c_prev + row * hidden;
        const float* hp = h_prev + row * hidden;
        float* cn = c_out + (s * batch + row) * hidden;
        float* hn = h_out + (s * batch + row) * hidden;
        for (int64_t j = 0; j < hidden; j += kLanes) {
          if (!kept) {  // held: the carry, bit for bit
            simd::Store(cn + j, simd::Load(cp + j));
            simd::Store(hn + j, simd::Load(hp + j));
            continue;
          }
          const Vec i = simd::Add(simd::Mul(half, simd::Load(t_row + j)), half);
          const Vec f = simd::Add(simd::Mul(half, simd::Load(t_row + hidden + j)), half);
          const Vec g = simd::Load(t_row + 2 * hidden + j);
          const Vec o = simd::Add(simd::Mul(half, simd::Load(t_row + 3 * hidden + j)), half);
          const Vec c = simd::Add(simd::Mul(f, simd::Load(cp + j)), simd::Mul(i, g));
          simd::Store(cn + j, c);
          simd::Store(hn + j, simd::Mul(o, Tanh(c)));
        }
      }
    }
  });
  return ffi::Error::Success();
}

// factors [T, B, 4H] (d z / d [c, c, c, h] per gate), carry_factors [T, B, 2H]
// ([d c_new / d h_new, f]), keep [T, B], d_outputs [T, B, H], d_c_final, d_h_final
// [B, H], w_h_t [4H, H] -> d_z [T, B, 4H], d_c0, d_h0 [B, H].
ffi::Error LstmBackwardImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> factors,
                            ffi::Buffer<ffi::F32> carry_factors, ffi::Buffer<ffi::F32> keep,
                            ffi::Buffer<ffi::F32> d_outputs, ffi::Buffer<ffi::F32> d_c_final,
                            ffi::Buffer<ffi::F32> d_h_final, ffi::Buffer<ffi::F32> w_h_t,
                            ffi::ResultBuffer<ffi::F32> d_z, ffi::ResultBuffer<ffi::F32> d_c0,
                            ffi::ResultBuffer<ffi::F32> d_h0) {
  const auto dims = factors.dimensions();
  if (dims.size() != 3 || w_h_t.dimensions().size() != 2) return jaxdl::Invalid(kKernel, "bad ranks");
  const int64_t steps = dims[0], batch = dims[1], hidden = w_h_t.dimensions()[1];
  if (dims[2] != 4 * hidden || w_h_t.dimensions()[0] != 4 * hidden || hidden % 16 != 0 ||
      carry_factors.element_count() != steps * batch * 2 * hidden ||
      d_outputs.element_count() != steps * batch * hidden || keep.element_count() != steps * batch ||
      d_c_final.element_count() != batch * hidden || d_h_final.element_count() != batch * hidden) {
    return jaxdl::Invalid(kKernel, "shapes do not match factors [T, B, 4H] with H % 16 == 0");
  }
  const float* fac = factors.typed_data();
  const float* cf = carry_factors.typed_data();
  const float* kp = keep.typed_data();
  const float* d_out = d_outputs.typed_data();
  const float* w_t = w_h_t.typed_data();
  const float* dc_final = d_c_final.typed_data();
  const float* dh_final = d_h_final.typed_data();
  float* dz = d_z->typed_data();
  float* dc0 = d_c0->typed_data();
  float* dh0 = d_h0->typed_data();
  const int64_t h4 = 4 * hidden;

  RunOverRows(pool, batch, [=](int64_t first, int64_t last) {
    const int64_t rows = last - first;
    // Gradients w.r.t. the carry leaving the current step, this block's rows.
    std::vector<float> d_c(dc_final + first * hidden, dc_final + last * hidden);
    std::vector<float> d_h(dh_final + first * hidden, dh_final + last * hidden);
    std::vector<float> d_h_next(rows * hidden);
    std::vector<float> d_z_rows(rows * h4);
    const Vec one = simd::Set1(1.0f);
    for (int64_t s = steps - 1; s >= 0; --s) {
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t at = s * batch + first + r;
        const Vec kept = simd::Set1(kp[at]);
        const Vec held = simd::Sub(one, kept);
        const float* f_row = fac + at * h4;
        const float* cf_row = cf + at * 2 * hidden;
        float* dz_row = d_z_rows.data() + r * h4;
        float* dc = d_c.data() + r * hidden;
        float* dh = d_h.data() + r * hidden;
        for (int64_t j = 0; j < hidden; j += kLanes) {
          const Vec dc_j = simd::Load(dc + j), dh_j = simd::Load(dh + j);
          const Vec d_new_h = simd::Mul(kept, simd::Add(dh_j, simd::Load(d_out + at * hidden + j)));
          const Vec d_new_c = simd::Add(simd::Mul(kept, dc_j),
                                               simd::Mul(d_new_h, simd::Load(cf_row + j)));
          simd::Store(dz_row + j, simd::Mul(d_new_c, simd::Load(f_row + j)));
          simd::Store(dz_row + hidden + j, simd::Mul(d_new_c, simd::Load(f_row + hidden + j)));
          simd::Store(dz_row + 2 * hidden + j, simd::Mul(d_new_c, simd::Load(f_row + 2 * hidden + j)));
          simd::Store(dz_row + 3 * hidden + j, simd::Mul(d_new_h, simd::Load(f_row + 3 * hidden + j)));
          simd::Store(dc + j, simd::Add(simd::Mul(d_new_c, simd::Load(cf_row + hidden + j)),
                                                 simd::Mul(held, dc_j)));
          simd::Store(dh + j, simd::Mul(held, dh_j));  // + d_z W_h^T below
        }
        std::copy(dz_row, dz_row + h4, dz + at * h4);
      }
      Gemm(d_z_rows.data(), h4, w_t, hidden, h4, d_h_next.data(), hidden, rows);
      for (int64_t i = 0; i < rows * hidden; i += kLanes) {
        simd::Store(d_h.data() + i, simd::Add(simd::Load(d_h_next.data() + i),
                                                       simd::Load(d_h.data() + i)));
      }
    }
    std::copy(d_c.begin(), d_c.end(), dc0 + first * hidden);
    std::copy(d_h.begin(), d_h.end(), dh0 + first * hidden);
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxdlLstmForward, LstmForwardImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // projected
                                  .Arg<ffi::Buffer<ffi::F32>>()  // keep
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c0
                                  .Arg<ffi::Buffer<ffi::F32>>()  // h0
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w_h
                                  .Arg<ffi::Buffer<ffi::F32>>()  // bias
                                  .Ret<ffi::Buffer<ffi::F32>>()  // gate tanh
                                  .Ret<ffi::Buffer<ffi::F32>>()  // c
                                  .Ret<ffi::Buffer<ffi::F32>>());  // h

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxdlLstmBackward, LstmBackwardImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // factors
                                  .Arg<ffi::Buffer<ffi::F32>>()  // carry factors
                                  .Arg<ffi::Buffer<ffi::F32>>()  // keep
                                  .Arg<ffi::Buffer<ffi::F32>>()  // d_outputs
                                  .Arg<ffi::Buffer<ffi::F32>>()  // d_c_final
                                  .Arg<ffi::Buffer<ffi::F32>>()  // d_h_final
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w_h^T
                                  .Ret<ffi::Buffer<ffi::F32>>()  // d_z
                                  .Ret<ffi::Buffer<ffi::F32>>()  // d_c0
                                  .Ret<ffi::Buffer<ffi::F32>>());  // d_h0
