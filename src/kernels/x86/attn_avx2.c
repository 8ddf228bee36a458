/*
 * attn_avx2.c - the attention tile and KV row conversion for AVX2 + FMA +
 * F16C (8 lanes). Compiled with only those ISA flags; used after the run-time
 * CPU check. The tile is attn_simd_impl.h over __m256.
 */
#include "kernels/attn.h"

#include <immintrin.h>

#define V __m256
#define VW 8
#define ATTN_ISA avx2

static inline V vzero(void) { return _mm256_setzero_ps(); }
static inline V vset1(float x) { return _mm256_set1_ps(x); }
static inline V vld(const float *p) { return _mm256_loadu_ps(p); }
static inline void vst(float *p, V v) { _mm256_storeu_ps(p, v); }
static inline V vfma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
static inline V vmul(V a, V b) { return _mm256_mul_ps(a, b); }
static inline V vadd(V a, V b) { return _mm256_add_ps(a, b); }
static inline V vsub(V a, V b) { return _mm256_sub_ps(a, b); }
static inline V vmax(V a, V b) { return _mm256_max_ps(a, b); }

static inline V vld_f16(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

static inline V vld_bf16(const uint16_t *p)
{
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

static inline float vhsum(V v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/*
 * The 8 sums of rows 0..3 x keys j, j+1 (a0[i] = row i·key j, a1[i] = row
 * i·key j+1) stored to s[i·ld + j], s[i·ld + j + 1]: one transposing
 * reduction (6 hadds, 2 lane permutes, 1 add) instead of 8 vhsums.
 */
#define VHSUM_4X2 1
static inline void vhsum_4x2(const V a0[4], const V a1[4], float *s, size_t ld)
{
    __m256 t0 = _mm256_hadd_ps(a0[0], a1[0]), t1 = _mm256_hadd_ps(a0[1], a1[1]);
    __m256 t2 = _mm256_hadd_ps(a0[2], a1[2]), t3 = _mm256_hadd_ps(a0[3], a1[3]);
    /* u0 lanes: [r0k0 r0k1 r1k0 r1k1 | same, upper halves]; u1 likewise for rows 2, 3 */
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    __m256 sum = _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
    __m128 lo = _mm256_castps256_ps128(sum), hi = _mm256_extractf128_ps(sum, 1);
    _mm_storel_pi((__m64 *)(void *)s, lo);
    _mm_storeh_pi((__m64 *)(void *)(s + ld), lo);
    _mm_storel_pi((__m64 *)(void *)(s + 2 * ld), hi);
    _mm_storeh_pi((__m64 *)(void *)(s + 3 * ld), hi);
}

static inline float vhmax(V v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/*
 * e^x (Cephes expf): x = n·ln2 + r with |r| <= ln2/2, e^r by a degree-6
 * polynomial, 2^n through the exponent bits. x is clamped to
 * [-87.34, 88.38]; at the low end 2^n is 0, so e^x = 0 there.
 */
static inline V vexp(V x)
{
    V fx, r, y, z;
    __m256i n;
    x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f));
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.33654475f));
    fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
    z = _mm256_mul_ps(r, r);
    y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201E-1f));
    y = _mm256_fmadd_ps(y, z, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    n = _mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127));
    n = _mm256_max_epi32(n, _mm256_setzero_si256());
    return _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(n, 23)));
}

/* F16 rows with vcvtps2ph (round to nearest even, as pio_f32_to_f16);
 * F32 and BF16 as the reference. */
static void attn_store(void *dst, pio_dtype dt, const float *src, int64_t n)
{
    int64_t i = 0;
    if (dt != PIO_DTYPE_F16) {
        pio_attn_store_ref(dst, dt, src, n);
        return;
    }
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)((uint16_t *)dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        ((uint16_t *)dst)[i] = pio_f32_to_f16(src[i]);
}

#include "attn_simd_impl.h"
