// The float vector of a kernel build: 16 lanes (__m512) in the avx512 build,
// 8 lanes (__m256) in the avx2 build (isa.py compiles each build with its own
// flags: -mavx512f -mavx2 -mfma, or -mavx2 -mfma). Kernels written against
// these names compile for either; their sums run in another order per width,
// so each build has its own (repeatable) bits.

#pragma once

#include <immintrin.h>

namespace jaxdl::simd {

#if defined(__AVX512F__) && defined(__FMA__)

constexpr int kLanes = 16;
constexpr bool kWide = true;  // 32 vector registers (16 in the avx2 build)
using Vec = __m512;
using Mask = __mmask16;
inline Vec Zero() { return _mm512_setzero_ps(); }
inline Vec Set1(float x) { return _mm512_set1_ps(x); }
inline Vec Load(const float* p) { return _mm512_loadu_ps(p); }
inline void Store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline Vec Add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline Vec Sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
inline Vec Mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
inline Vec Div(Vec a, Vec b) { return _mm512_div_ps(a, b); }
// min/max: the second operand when either is NaN (as the x86 instructions).
inline Vec Min(Vec a, Vec b) { return _mm512_min_ps(a, b); }
inline Vec Max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
inline Vec MulAdd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }  // a * b + c
inline Vec Abs(Vec v) { return _mm512_abs_ps(v); }
inline float ReduceAdd(Vec v) { return _mm512_reduce_add_ps(v); }
inline Mask AbsBelow(Vec v, float bound) {
  return _mm512_cmp_ps_mask(Abs(v), Set1(bound), _CMP_LT_OQ);
}
inline Vec Select(Mask m, Vec if_set, Vec if_clear) { return _mm512_mask_blend_ps(m, if_clear, if_set); }

#elif defined(__AVX2__) && defined(__FMA__)

constexpr int kLanes = 8;
constexpr bool kWide = false;
using Vec = __m256;
using Mask = __m256;
inline Vec Zero() { return _mm256_setzero_ps(); }
inline Vec Set1(float x) { return _mm256_set1_ps(x); }
inline Vec Load(const float* p) { return _mm256_loadu_ps(p); }
inline void Store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline Vec Add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline Vec Sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
inline Vec Mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
inline Vec Div(Vec a, Vec b) { return _mm256_div_ps(a, b); }
inline Vec Min(Vec a, Vec b) { return _mm256_min_ps(a, b); }
inline Vec Max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
inline Vec MulAdd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec Abs(Vec v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }
inline float ReduceAdd(Vec v) {  // a fixed tree: halves, then pairs
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline Mask AbsBelow(Vec v, float bound) { return _mm256_cmp_ps(Abs(v), Set1(bound), _CMP_LT_OQ); }
inline Vec Select(Mask m, Vec if_set, Vec if_clear) { return _mm256_blendv_ps(if_clear, if_set, m); }

#else
#error "simd.h needs the avx512 or avx2 build (isa.py's -mavx512f / -mavx2 -mfma)"
#endif

}  // namespace jaxdl::simd
