/*
 * attn_avx512.c - the attention tile and KV row conversion for AVX-512 F/BW/
 * VL/DQ (16 lanes). Compiled with only those ISA flags (plus AVX2/FMA/F16C);
 * used after the run-time CPU check. The tile is attn_simd_impl.h over
 * __m512; the steps are the AVX2 file's with twice the lanes.
 */
#include "kernels/attn.h"

#include <immintrin.h>

#define V __m512
#define VW 16
#define ATTN_ISA avx512

static inline V vzero(void) { return _mm512_setzero_ps(); }
static inline V vset1(float x) { return _mm512_set1_ps(x); }
static inline V vld(const float *p) { return _mm512_loadu_ps(p); }
static inline void vst(float *p, V v) { _mm512_storeu_ps(p, v); }
static inline V vfma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
static inline V vmul(V a, V b) { return _mm512_mul_ps(a, b); }
static inline V vadd(V a, V b) { return _mm512_add_ps(a, b); }
static inline V vsub(V a, V b) { return _mm512_sub_ps(a, b); }
static inline V vmax(V a, V b) { return _mm512_max_ps(a, b); }

static inline V vld_f16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}

static inline V vld_bf16(const uint16_t *p)
{
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

static inline float vhsum(V v) { return _mm512_reduce_add_ps(v); }
static inline float vhmax(V v) { return _mm512_reduce_max_ps(v); }

/* e^x as in attn_avx2.c (Cephes expf, x clamped to [-87.34, 88.38]). */
static inline V vexp(V x)
{
    V fx, r, y, z;
    __m512i n;
    x = _mm512_min_ps(x, _mm512_set1_ps(88.3762626647949f));
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.33654475f));
    fx = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f),
                                              _mm512_set1_ps(0.5f)),
                              _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), r);
    z = _mm512_mul_ps(r, r);
    y = _mm512_set1_ps(1.9875691500E-4f);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507E-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073E-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894E-2f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459E-1f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201E-1f));
    y = _mm512_fmadd_ps(y, z, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    n = _mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127));
    n = _mm512_max_epi32(n, _mm512_setzero_si512());
    return _mm512_mul_ps(y, _mm512_castsi512_ps(_mm512_slli_epi32(n, 23)));
}

/* F16 rows with vcvtps2ph (round to nearest even); F32 and BF16 as the reference. */
static void attn_store(void *dst, pio_dtype dt, const float *src, int64_t n)
{
    int64_t i = 0;
    if (dt != PIO_DTYPE_F16) {
        pio_attn_store_ref(dst, dt, src, n);
        return;
    }
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(void *)((uint16_t *)dst + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        ((uint16_t *)dst)[i] = pio_f32_to_f16(src[i]);
}

#include "attn_simd_impl.h"
