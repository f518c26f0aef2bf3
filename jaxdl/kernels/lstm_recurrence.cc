// The two time loops of lstm_scan.py (forward recurrence, backward recurrence),
// run by the CPU with AVX-512, each thread over its own batch rows.
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
// the XLA loops up to float rounding. Requires H % 16 == 0; the Python side
// checks that, the dtype and the CPU (JaxdlLstmSupported) before using it.

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "native_kernels.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// tanh(x), Eigen's generic_fast_tanh_float. NaN stays NaN (operand order of
// min/max: the second operand is returned when either is NaN).
JAXDL_AVX512 inline __m512 Tanh(__m512 x) {
  const __m512 bound = _mm512_set1_ps(7.99881172180175781f);
  const __mmask16 tiny = _mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(0.0004f), _CMP_LT_OQ);
  x = _mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), bound), _mm512_min_ps(bound, x));
  const __m512 x2 = _mm512_mul_ps(x, x);
  __m512 p = _mm512_fmadd_ps(x2, _mm512_set1_ps(-2.76076847742355e-16f), _mm512_set1_ps(2.00018790482477e-13f));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-8.60467152213735e-11f));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(5.12229709037114e-08f));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(1.48572235717979e-05f));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(6.37261928875436e-04f));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(4.89352455891786e-03f));
  p = _mm512_mul_ps(x, p);
  __m512 q = _mm512_fmadd_ps(x2, _mm512_set1_ps(1.19825839466702e-06f), _mm512_set1_ps(1.18534705686654e-04f));
  q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(2.26843463243900e-03f));
  q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(4.89352518554385e-03f));
  return _mm512_mask_blend_ps(tiny, _mm512_div_ps(p, q), x);
}

// C[R, N] = A[R, K] @ B[K, N], row-major with row strides lda / ldc; N % 16 == 0.
// Register tile R x 64 (R <= 4): 16 accumulators, B read once per 4 rows.
template <int R>
JAXDL_AVX512 void GemmRows(const float* a, int64_t lda, const float* b, int64_t n, int64_t k,
                           float* c, int64_t ldc) {
  int64_t j = 0;
  for (; j + 64 <= n; j += 64) {
    __m512 acc[R][4];
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < 4; ++q) acc[r][q] = _mm512_setzero_ps();
    for (int64_t kk = 0; kk < k; ++kk) {
      const float* row = b + kk * n + j;
      const __m512 b0 = _mm512_loadu_ps(row), b1 = _mm512_loadu_ps(row + 16),
                   b2 = _mm512_loadu_ps(row + 32), b3 = _mm512_loadu_ps(row + 48);
      for (int r = 0; r < R; ++r) {
        const __m512 ar = _mm512_set1_ps(a[r * lda + kk]);
        acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
        acc[r][2] = _mm512_fmadd_ps(ar, b2, acc[r][2]);
        acc[r][3] = _mm512_fmadd_ps(ar, b3, acc[r][3]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < 4; ++q) _mm512_storeu_ps(c + r * ldc + j + 16 * q, acc[r][q]);
  }
  for (; j < n; j += 16) {
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t kk = 0; kk < k; ++kk) {
      const __m512 bv = _mm512_loadu_ps(b + kk * n + j);
      for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r * lda + kk]), bv, acc[r]);
    }
    for (int r = 0; r < R; ++r) _mm512_storeu_ps(c + r * ldc + j, acc[r]);
  }
}

// C[rows, N] = A[rows, K] @ B[K, N] in tiles of 4 rows.
JAXDL_AVX512 void Gemm(const float* a, int64_t lda, const float* b, int64_t n, int64_t k,
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

// Splits batch rows into one block per thread (at least 4 rows each, one
// register tile) and runs body(first_row, last_row) for each block.
template <typename Body>
void RunOverRows(ffi::ThreadPool& pool, int64_t batch, Body body) {
  if (batch <= 0) return;
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(pool.num_threads(), batch / 4));
  const int64_t rows_per_block = (batch + threads - 1) / threads;
  const int64_t blocks = (batch + rows_per_block - 1) / rows_per_block;
  jaxdl::ParallelFor(pool, blocks, blocks, [=](int64_t, int64_t block) {
    const int64_t first = block * rows_per_block;
    body(first, std::min(batch, first + rows_per_block));
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

  RunOverRows(pool, batch, [=](int64_t first, int64_t last) JAXDL_AVX512 {
    const int64_t rows = last - first;
    std::vector<float> z(rows * h4);
    const __m512 half = _mm512_set1_ps(0.5f);
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
        for (int64_t j = 0; j < h4; j += 16) {
          // t = tanh((p + (h W_h + b)) * scale); scale 1 for g (the third quarter).
          __m512 v = _mm512_add_ps(_mm512_loadu_ps(p_row + j),
                                   _mm512_add_ps(_mm512_loadu_ps(z_row + j), _mm512_loadu_ps(b + j)));
          if (j < 2 * hidden || j >= 3 * hidden) v = _mm512_mul_ps(v, half);
          _mm512_storeu_ps(t_row + j, Tanh(v));
        }
        const bool kept = kp[s * batch + row] != 0.0f;
        const float* cp = c_prev + row * hidden;
        const float* hp = h_prev + row * hidden;
        float* cn = c_out + (s * batch + row) * hidden;
        float* hn = h_out + (s * batch + row) * hidden;
        for (int64_t j = 0; j < hidden; j += 16) {
          if (!kept) {  // held: the carry, bit for bit
            _mm512_storeu_ps(cn + j, _mm512_loadu_ps(cp + j));
            _mm512_storeu_ps(hn + j, _mm512_loadu_ps(hp + j));
            continue;
          }
          const __m512 i = _mm512_add_ps(_mm512_mul_ps(half, _mm512_loadu_ps(t_row + j)), half);
          const __m512 f = _mm512_add_ps(_mm512_mul_ps(half, _mm512_loadu_ps(t_row + hidden + j)), half);
          const __m512 g = _mm512_loadu_ps(t_row + 2 * hidden + j);
          const __m512 o = _mm512_add_ps(_mm512_mul_ps(half, _mm512_loadu_ps(t_row + 3 * hidden + j)), half);
          const __m512 c = _mm512_add_ps(_mm512_mul_ps(f, _mm512_loadu_ps(cp + j)), _mm512_mul_ps(i, g));
          _mm512_storeu_ps(cn + j, c);
          _mm512_storeu_ps(hn + j, _mm512_mul_ps(o, Tanh(c)));
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

  RunOverRows(pool, batch, [=](int64_t first, int64_t last) JAXDL_AVX512 {
    const int64_t rows = last - first;
    // Gradients w.r.t. the carry leaving the current step, this block's rows.
    std::vector<float> d_c(dc_final + first * hidden, dc_final + last * hidden);
    std::vector<float> d_h(dh_final + first * hidden, dh_final + last * hidden);
    std::vector<float> d_h_next(rows * hidden);
    std::vector<float> d_z_rows(rows * h4);
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t s = steps - 1; s >= 0; --s) {
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t at = s * batch + first + r;
        const __m512 kept = _mm512_set1_ps(kp[at]);
        const __m512 held = _mm512_sub_ps(one, kept);
        const float* f_row = fac + at * h4;
        const float* cf_row = cf + at * 2 * hidden;
        float* dz_row = d_z_rows.data() + r * h4;
        float* dc = d_c.data() + r * hidden;
        float* dh = d_h.data() + r * hidden;
        for (int64_t j = 0; j < hidden; j += 16) {
          const __m512 dc_j = _mm512_loadu_ps(dc + j), dh_j = _mm512_loadu_ps(dh + j);
          const __m512 d_new_h = _mm512_mul_ps(kept, _mm512_add_ps(dh_j, _mm512_loadu_ps(d_out + at * hidden + j)));
          const __m512 d_new_c = _mm512_add_ps(_mm512_mul_ps(kept, dc_j),
                                               _mm512_mul_ps(d_new_h, _mm512_loadu_ps(cf_row + j)));
          _mm512_storeu_ps(dz_row + j, _mm512_mul_ps(d_new_c, _mm512_loadu_ps(f_row + j)));
          _mm512_storeu_ps(dz_row + hidden + j, _mm512_mul_ps(d_new_c, _mm512_loadu_ps(f_row + hidden + j)));
          _mm512_storeu_ps(dz_row + 2 * hidden + j, _mm512_mul_ps(d_new_c, _mm512_loadu_ps(f_row + 2 * hidden + j)));
          _mm512_storeu_ps(dz_row + 3 * hidden + j, _mm512_mul_ps(d_new_h, _mm512_loadu_ps(f_row + 3 * hidden + j)));
          _mm512_storeu_ps(dc + j, _mm512_add_ps(_mm512_mul_ps(d_new_c, _mm512_loadu_ps(cf_row + hidden + j)),
                                                 _mm512_mul_ps(held, dc_j)));
          _mm512_storeu_ps(dh + j, _mm512_mul_ps(held, dh_j));  // + d_z W_h^T below
        }
        std::copy(dz_row, dz_row + h4, dz + at * h4);
      }
      Gemm(d_z_rows.data(), h4, w_t, hidden, h4, d_h_next.data(), hidden, rows);
      for (int64_t i = 0; i < rows * hidden; i += 16) {
        _mm512_storeu_ps(d_h.data() + i, _mm512_add_ps(_mm512_loadu_ps(d_h_next.data() + i),
                                                       _mm512_loadu_ps(d_h.data() + i)));
      }
    }
    std::copy(d_c.begin(), d_c.end(), dc0 + first * hidden);
    std::copy(d_h.begin(), d_h.end(), dh0 + first * hidden);
  });
  return ffi::Error::Success();
}

}  // namespace

// Whether this CPU runs the kernels above (the Python side asks before use).
extern "C" int JaxdlLstmSupported() { return jaxdl::CpuRunsAvx512(); }

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
