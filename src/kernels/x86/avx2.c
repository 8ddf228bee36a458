/*
 * avx2.c - AVX2 + FMA + F16C kernels (compiled with -mavx2 -mfma -mf16c;
 * called only after the CPU check in dispatch.c).
 *
 * Every tile is a loop of register-blocked micro-kernels over R weight rows
 * x T tokens (4x2, 4x1, 1x2, 1x1): a weight block is loaded and decoded once
 * for T tokens, an activation block once for R rows.
 *   float W:  y += W·x with FMA; bf16 -> f32 by a 16-bit shift, f16 by vcvtph2ps.
 *   Q8_0:     sign trick: maddubs(|w|, sign(x, w)) -> madd -> f32, scaled by dw·dx.
 *   Q4_0:     nibbles are unsigned: maddubs(q, x) - 8·Σx (Σx kept with the activations).
 *   Q4_0_X8:  8 rows interleaved (quant.h): 16 rows x 2 tokens, one lane per row, int16
 *             sums over a block against broadcast activation dwords; the decode path.
 *   Q8_0_X8:  the same walk with the Q8_0 sign trick, int32 sums; the decode path.
 *   Q4_K_X8:  the same walk per sub-block, scales unpacked lane-wise and applied by
 *             pmaddwd, int32 super-block sums; the decode path.
 *   Q6_K_X8:  the same walk, 6-bit values from a nibble and two high bits, a scale
 *             per 16 values by pmaddwd, the -32 offset from bsums; the decode path.
 *   Q4_K/Q6_K: maddubs + madd by the integer sub-block scale, summed in int32 over
 *             the super-block; mins (Q4_K) and the -32 offset (Q6_K) come from bsums.
 */
#include "kernels/dispatch.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* ---- helpers ----------------------------------------------------------------- */

/* Keep v in a register at this point: stops the compiler from reassociating
 * a chain of integer adds over an unrolled loop into a tree whose partial
 * products no longer fit the 16 registers (spills in the hot loop). */
#define PIN(v) __asm__("" : "+x"(v))

AI float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* [Σa, Σb, Σc, Σd] */
AI __m128 hsum8x4(__m256 a, __m256 b, __m256 c, __m256 d)
{
    __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
    __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

AI float f16(uint16_t h) { return _cvtsh_ss(h); }

/*
 * Write the R x T results acc[r][t] (+ extra[t][r]) to y[t*ldy + r].
 */
AI void store_tile(int R, int T, __m256 acc[4][2], const float extra[2][4], float *y,
                   size_t ldy, bool accumulate)
{
    int r, t;
#pragma GCC unroll 2
    for (t = 0; t < T; t++) {
        float *yt = y + (size_t)t * ldy;
        if (R == 4) {
            __m128 v = hsum8x4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]);
            v = _mm_add_ps(v, _mm_loadu_ps(extra[t]));
            if (accumulate)
                v = _mm_add_ps(v, _mm_loadu_ps(yt));
            _mm_storeu_ps(yt, v);
        } else {
#pragma GCC unroll 4
            for (r = 0; r < R; r++) {
                float v = hsum8(acc[r][t]) + extra[t][r];
                yt[r] = accumulate ? yt[r] + v : v;
            }
        }
    }
}

static const float no_extra[2][4];

/*
 * Write G groups of 8 rows x T tokens, lane i of acc[g][t] being row 8g+i,
 * to y[t*ldy + 8g + i] (=, +=); rows < 16: only rows [0, rows) are touched.
 */
AI void store_groups(int G, int T, __m256 acc[2][2], int rows, float *y, size_t ldy, bool accumulate)
{
    int gi, t;
#pragma GCC unroll 2
    for (gi = 0; gi < G; gi++) {
        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(rows - 8 * gi), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#pragma GCC unroll 2
        for (t = 0; t < T; t++) {
            float *yt = y + (size_t)t * ldy + 8 * gi;
            __m256 v = acc[gi][t];
            if (rows >= 16) {
                if (accumulate)
                    v = _mm256_add_ps(v, _mm256_loadu_ps(yt));
                _mm256_storeu_ps(yt, v);
            } else {
                if (accumulate)
                    v = _mm256_add_ps(v, _mm256_maskload_ps(yt, m));
                _mm256_maskstore_ps(yt, m, v);
            }
        }
    }
}

/* The standard row/token walk over micro-kernels 4x2, 4x1, 1x2, 1x1. */
#define TILE_WALK(MICRO, ...)                                                              \
    do {                                                                                   \
        int r_ = 0, t_;                                                                    \
        for (; r_ + 4 <= nr; r_ += 4) {                                                    \
            for (t_ = 0; t_ + 2 <= nt; t_ += 2)                                            \
                MICRO(4, 2, r_, t_, __VA_ARGS__);                                          \
            if (t_ < nt)                                                                   \
                MICRO(4, 1, r_, t_, __VA_ARGS__);                                          \
        }                                                                                  \
        for (; r_ < nr; r_++) {                                                            \
            for (t_ = 0; t_ + 2 <= nt; t_ += 2)                                            \
                MICRO(1, 2, r_, t_, __VA_ARGS__);                                          \
            if (t_ < nt)                                                                   \
                MICRO(1, 1, r_, t_, __VA_ARGS__);                                          \
        }                                                                                  \
    } while (0)

#define TILE_ARGS int64_t k, int nr, int nt, const void *w, size_t w_stride, const void *x, \
                  size_t x_stride, float *y, size_t ldy, bool accumulate

/* Pointers of micro-kernel (r, t) inside the tile. */
#define MICRO_CALL(fn, R, T, r, t)                                                         \
    fn(R, T, k, (const uint8_t *)w + (size_t)(r) * w_stride, w_stride,                     \
       (const uint8_t *)x + (size_t)(t) * x_stride, x_stride,                              \
       y + (size_t)(t) * ldy + (size_t)(r), ldy, accumulate, pf)

/*
 * Decode (few tokens) streams W from memory: pf = true adds a software
 * prefetch of the same blocks R rows ahead (the next row group), which keeps
 * enough reads in flight when rows are short (k = 2560 is ~1.4-2.7 KB).
 */
#define PF_TOKENS 4
#define TILE_WALK_PF(MICRO, ...)                                                           \
    do {                                                                                   \
        if (nt <= PF_TOKENS) {                                                             \
            const bool pf = true;                                                          \
            TILE_WALK(MICRO, __VA_ARGS__);                                                 \
        } else {                                                                           \
            const bool pf = false;                                                         \
            TILE_WALK(MICRO, __VA_ARGS__);                                                 \
        }                                                                                  \
    } while (0)

AI void prefetch_next(bool pf, const void *p, size_t ahead, int lines)
{
    int i;
    if (!pf)
        return;
    for (i = 0; i < lines; i++)
        _mm_prefetch((const char *)p + ahead + 64 * (size_t)i, _MM_HINT_T1);
}

/* ---- float weights ---------------------------------------------------------- */

AI __m256 load_w8(pio_dtype dt, const uint8_t *p)
{
    if (dt == PIO_DTYPE_F32)
        return _mm256_loadu_ps((const float *)p);
    if (dt == PIO_DTYPE_F16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

AI float load_w1(pio_dtype dt, const uint8_t *p)
{
    uint16_t h;
    float f;
    if (dt == PIO_DTYPE_F32) {
        memcpy(&f, p, 4);
        return f;
    }
    memcpy(&h, p, 2);
    if (dt == PIO_DTYPE_F16)
        return f16(h);
    {
        uint32_t u = (uint32_t)h << 16;
        memcpy(&f, &u, 4);
        return f;
    }
}

AI void float_micro(pio_dtype dt, int R, int T, int64_t k, const uint8_t *w, size_t ws,
                    const uint8_t *x, size_t xs, float *y, size_t ldy, bool accumulate, bool pf)
{
    const size_t esz = dt == PIO_DTYPE_F32 ? 4 : 2;
    __m256 acc[4][2];
    float tail[2][4] = { { 0 } };
    int64_t i;
    int r, t;

#pragma GCC unroll 4
    for (r = 0; r < R; r++)
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
            acc[r][t] = _mm256_setzero_ps();
    for (i = 0; i + 8 <= k; i += 8) {
        __m256 xv[2];
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
            xv[t] = _mm256_loadu_ps((const float *)(x + (size_t)t * xs) + i);
#pragma GCC unroll 4
        for (r = 0; r < R; r++) {
            __m256 wv = load_w8(dt, w + (size_t)r * ws + (size_t)i * esz);
            prefetch_next(pf && !(i & (esz == 4 ? 15 : 31)), w + (size_t)r * ws + (size_t)i * esz,
                          (size_t)R * ws, 1);
#pragma GCC unroll 2
            for (t = 0; t < T; t++)
                acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
    for (; i < k; i++)
        for (t = 0; t < T; t++)
            for (r = 0; r < R; r++)
                tail[t][r] += load_w1(dt, w + (size_t)r * ws + (size_t)i * esz) *
                              ((const float *)(x + (size_t)t * xs))[i];
    store_tile(R, T, acc, tail, y, ldy, accumulate);
}

#define F32_MICRO(R, T, r, t, dt) MICRO_CALL(float_micro_##dt, R, T, r, t)
#define FLOAT_MICRO_FN(dt, DT)                                                              \
    AI void float_micro_##dt(int R, int T, int64_t k, const uint8_t *w, size_t ws,         \
                             const uint8_t *x, size_t xs, float *y, size_t ldy, bool acc,  \
                             bool pf)                                                      \
    {                                                                                      \
        float_micro(DT, R, T, k, w, ws, x, xs, y, ldy, acc, pf);                           \
    }                                                                                      \
    static void tile_##dt##_avx2(TILE_ARGS) { TILE_WALK_PF(F32_MICRO, dt); }

FLOAT_MICRO_FN(f32, PIO_DTYPE_F32)
FLOAT_MICRO_FN(f16, PIO_DTYPE_F16)
FLOAT_MICRO_FN(bf16, PIO_DTYPE_BF16)

static void to_f32_avx2(float *dst, const void *src, pio_dtype dt, int64_t n)
{
    const uint8_t *s = src;
    int64_t i = 0;
    if (dt == PIO_DTYPE_F16) {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, load_w8(PIO_DTYPE_F16, s + 2 * i));
    } else if (dt == PIO_DTYPE_BF16) {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, load_w8(PIO_DTYPE_BF16, s + 2 * i));
    }
    if (i < n)
        pio_convert_to_f32(dst + i, s + i * (int64_t)pio_dtype_size(dt), dt, n - i);
}

/* ---- prefill: packed f32 panels for F32 / F16 / BF16 weights ------------------------ */

/*
 * Panel layout: rows in groups of 16; group g holds, for each column c of
 * the k block, the 16 rows' values as f32 (pk + (g·k + c)·16 floats). Rows
 * past nr are zero. The micro-kernel is 16 rows x 6 tokens: per column, two
 * panel loads and six broadcast activations feed 12 FMAs into 12
 * accumulators, so it runs at the FMA rate (the 4x2 tile_f32 kernel needs
 * six loads per eight FMAs and sums lanes at the end). Each (row, token)
 * sums its k products in column order.
 */
#define FP_ROWS 16
#define FP_TOKENS 6

static size_t pack_size_float_avx2(int nr, int64_t k)
{
    return (size_t)((nr + FP_ROWS - 1) / FP_ROWS) * FP_ROWS * (size_t)k * sizeof(float);
}

/* The 8x8 transpose of r[0..7] in place. */
AI void transpose8(__m256 r[8])
{
    __m256 a0 = _mm256_unpacklo_ps(r[0], r[1]), a1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 a2 = _mm256_unpacklo_ps(r[2], r[3]), a3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 a4 = _mm256_unpacklo_ps(r[4], r[5]), a5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 a6 = _mm256_unpacklo_ps(r[6], r[7]), a7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 b0 = _mm256_shuffle_ps(a0, a2, 0x44), b1 = _mm256_shuffle_ps(a0, a2, 0xee);
    __m256 b2 = _mm256_shuffle_ps(a1, a3, 0x44), b3 = _mm256_shuffle_ps(a1, a3, 0xee);
    __m256 b4 = _mm256_shuffle_ps(a4, a6, 0x44), b5 = _mm256_shuffle_ps(a4, a6, 0xee);
    __m256 b6 = _mm256_shuffle_ps(a5, a7, 0x44), b7 = _mm256_shuffle_ps(a5, a7, 0xee);
    r[0] = _mm256_permute2f128_ps(b0, b4, 0x20);
    r[1] = _mm256_permute2f128_ps(b1, b5, 0x20);
    r[2] = _mm256_permute2f128_ps(b2, b6, 0x20);
    r[3] = _mm256_permute2f128_ps(b3, b7, 0x20);
    r[4] = _mm256_permute2f128_ps(b0, b4, 0x31);
    r[5] = _mm256_permute2f128_ps(b1, b5, 0x31);
    r[6] = _mm256_permute2f128_ps(b2, b6, 0x31);
    r[7] = _mm256_permute2f128_ps(b3, b7, 0x31);
}

AI void pack_float_avx2(pio_dtype dt, void *dst, const void *w, size_t ws, int nr, int64_t k)
{
    const size_t esz = dt == PIO_DTYPE_F32 ? 4 : 2;
    float *pk = dst;
    int g, h, j, n_groups = (nr + FP_ROWS - 1) / FP_ROWS;
    int64_t c;

    for (g = 0; g < n_groups; g++) {
        float *pg = pk + (size_t)g * FP_ROWS * (size_t)k;
        for (h = 0; h < FP_ROWS / 8; h++) {
            int r0 = g * FP_ROWS + h * 8, live = nr - r0 < 8 ? nr - r0 : 8;
            const uint8_t *wr = (const uint8_t *)w + (size_t)r0 * ws;
            /* 8x8 blocks: load 8 rows, transpose, store 8 columns */
            for (c = 0; live == 8 && c + 8 <= k; c += 8) {
                __m256 v[8];
#pragma GCC unroll 8
                for (j = 0; j < 8; j++)
                    v[j] = load_w8(dt, wr + (size_t)j * ws + (size_t)c * esz);
                transpose8(v);
#pragma GCC unroll 8
                for (j = 0; j < 8; j++)
                    _mm256_store_ps(pg + (size_t)(c + j) * FP_ROWS + h * 8, v[j]);
            }
            for (; c < k; c++)        /* column tail, or a partial (zero-padded) group */
                for (j = 0; j < 8; j++)
                    pg[(size_t)c * FP_ROWS + h * 8 + j] =
                        j < live ? load_w1(dt, wr + (size_t)j * ws + (size_t)c * esz) : 0.0f;
        }
    }
}

static void pack_f32_avx2(void *dst, const void *w, size_t ws, int nr, int64_t k) { pack_float_avx2(PIO_DTYPE_F32, dst, w, ws, nr, k); }
static void pack_f16_avx2(void *dst, const void *w, size_t ws, int nr, int64_t k) { pack_float_avx2(PIO_DTYPE_F16, dst, w, ws, nr, k); }
static void pack_bf16_avx2(void *dst, const void *w, size_t ws, int nr, int64_t k) { pack_float_avx2(PIO_DTYPE_BF16, dst, w, ws, nr, k); }

/* y[t·ldy + r] (=, +=) Σ_c panel[c][r]·x_t[c] for r < rows (<= 16), t < T. */
AI void packed_float_micro(int T, int64_t k, const float *pg, const uint8_t *x, size_t xs, int rows,
                           float *y, size_t ldy, bool accumulate)
{
    __m256 acc[FP_TOKENS][2];
    const float *xt[FP_TOKENS];
    int64_t c;
    int t;

#pragma GCC unroll 6
    for (t = 0; t < T; t++) {
        acc[t][0] = acc[t][1] = _mm256_setzero_ps();
        xt[t] = (const float *)(x + (size_t)t * xs);
    }
#pragma GCC unroll 2
    for (c = 0; c < k; c++) {
        __m256 w0 = _mm256_load_ps(pg + (size_t)c * FP_ROWS);
        __m256 w1 = _mm256_load_ps(pg + (size_t)c * FP_ROWS + 8);
#pragma GCC unroll 6
        for (t = 0; t < T; t++) {
            __m256 xb = _mm256_broadcast_ss(xt[t] + c);
            acc[t][0] = _mm256_fmadd_ps(w0, xb, acc[t][0]);
            acc[t][1] = _mm256_fmadd_ps(w1, xb, acc[t][1]);
        }
    }
#pragma GCC unroll 6
    for (t = 0; t < T; t++) {
        float *yt = y + (size_t)t * ldy;
        if (rows == FP_ROWS) {
            if (accumulate) {
                acc[t][0] = _mm256_add_ps(acc[t][0], _mm256_loadu_ps(yt));
                acc[t][1] = _mm256_add_ps(acc[t][1], _mm256_loadu_ps(yt + 8));
            }
            _mm256_storeu_ps(yt, acc[t][0]);
            _mm256_storeu_ps(yt + 8, acc[t][1]);
        } else {
            float v[FP_ROWS];
            int r;
            _mm256_storeu_ps(v, acc[t][0]);
            _mm256_storeu_ps(v + 8, acc[t][1]);
            for (r = 0; r < rows; r++)
                yt[r] = accumulate ? yt[r] + v[r] : v[r];
        }
    }
}

#define PACKED_FLOAT_CALL(T)                                                                \
    packed_float_micro(T, k, pg, (const uint8_t *)x + (size_t)t0 * x_stride, x_stride, rows, \
                       y + (size_t)t0 * ldy + (size_t)g * FP_ROWS, ldy, accumulate)

/* Tokens in steps of 6 over every 16-row group (the panel stays in L2). */
static void tile_packed_float_avx2(TILE_ARGS)
{
    const float *pk = w;
    int t0, g, n_groups = (nr + FP_ROWS - 1) / FP_ROWS;
    (void)w_stride;
    for (t0 = 0; t0 < nt; t0 += FP_TOKENS) {
        int T = nt - t0 < FP_TOKENS ? nt - t0 : FP_TOKENS;
        for (g = 0; g < n_groups; g++) {
            const float *pg = pk + (size_t)g * FP_ROWS * (size_t)k;
            int rows = nr - g * FP_ROWS < FP_ROWS ? nr - g * FP_ROWS : FP_ROWS;
            switch (T) {
            case 6: PACKED_FLOAT_CALL(6); break;
            case 5: PACKED_FLOAT_CALL(5); break;
            case 4: PACKED_FLOAT_CALL(4); break;
            case 3: PACKED_FLOAT_CALL(3); break;
            case 2: PACKED_FLOAT_CALL(2); break;
            default: PACKED_FLOAT_CALL(1); break;
            }
        }
    }
}

/* ---- SwiGLU activation ----------------------------------------------------------- */

/* e^x for 8 floats: pio_exp_poly (ref/elementwise.c) op for op, the same bits. */
AI __m256 exp_avx2(__m256 x)
{
    const __m256 hi = _mm256_set1_ps(PIO_EXP_POLY_HI), lo = _mm256_set1_ps(PIO_EXP_POLY_LO);
    /* max/min return their second operand for a NaN: x goes second */
    __m256 xc = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), xc);
    __m256 p;
    __m256i e;
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-6f), r);
    p = _mm256_fmadd_ps(_mm256_set1_ps(1.0f / 5040), r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(126)), 23);
    p = _mm256_mul_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), _mm256_set1_ps(2.0f));
    p = _mm256_blendv_ps(p, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
    return _mm256_blendv_ps(p, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
}

/* silu(g)·u in the scalar level's order: g / (1 + e^-g) · u. */
AI __m256 silu_mul8(__m256 g, __m256 u)
{
    __m256 e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

static void silu_mul_avx2(float *g, const float *u, int64_t n)
{
    int64_t i;
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(g + i, silu_mul8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
    if (i < n) {              /* the tail through the same vector code */
        float gt[8] = { 0 }, ut[8] = { 0 };
        memcpy(gt, g + i, (size_t)(n - i) * sizeof(float));
        memcpy(ut, u + i, (size_t)(n - i) * sizeof(float));
        _mm256_storeu_ps(gt, silu_mul8(_mm256_loadu_ps(gt), _mm256_loadu_ps(ut)));
        memcpy(g + i, gt, (size_t)(n - i) * sizeof(float));
    }
}

/* ---- activations ------------------------------------------------------------- */

/* PIO_ACT_Q8 row, bit-identical to the scalar quantizer (RNE via cvtps). */
static void quantize_q8_avx2(const float *x, void *xq, int64_t k)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int64_t nb = k / 32, b;
    int64_t ng = (k + PIO_ACT_Q8_GROUP - 1) / PIO_ACT_Q8_GROUP;
    uint8_t *out = xq;

    memset(out + (size_t)(ng - 1) * PIO_ACT_Q8_GROUP_BYTES, 0, PIO_ACT_Q8_GROUP_BYTES);
    for (b = 0; b < nb; b++) {
        uint8_t *g = out + (size_t)(b / 8) * PIO_ACT_Q8_GROUP_BYTES;
        const float *xb = x + b * 32;
        __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
        __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        float amax, d, id;
        __m256 idv;
        __m256i i0, i1, i2, i3, s;
        int32_t sum;
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        amax = _mm_cvtss_f32(m4);
        d = amax / 127.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        idv = _mm256_set1_ps(id);
        i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, idv));
        i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, idv));
        i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, idv));
        i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, idv));
        s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        {
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
            sum = _mm_cvtsi128_si32(s4);
        }
        i0 = _mm256_packs_epi32(i0, i1);
        i2 = _mm256_packs_epi32(i2, i3);
        i0 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(i0, i2), perm);
        _mm256_storeu_si256((__m256i *)(g + 32 * (b % 8)), i0);
        memcpy(g + 256 + 4 * (b % 8), &d, 4);
        memcpy(g + 288 + 4 * (b % 8), &sum, 4);
    }
}

/* PIO_ACT_Q8_K row (GGML's quantize_row_q8_K), bit-identical to the scalar
 * quantizer: the scale comes from the signed value of the first x with the
 * largest |x| (NaNs never win, as in the scalar loop); RNE via cvtps. */
static void quantize_q8_K_avx2(const float *x, pio_block_q8_K *y, int64_t k)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7), q127 = _mm256_set1_epi32(127);
    int64_t nb = k / PIO_QK_K, i;
    for (i = 0; i < nb; i++, x += PIO_QK_K) {
        __m256 m = _mm256_setzero_ps(), idv;
        __m128 m4;
        float amax, iscale;
        int j;
        for (j = 0; j < PIO_QK_K; j += 8)   /* max_ps returns its second operand for a NaN */
            m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), m);
        m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        amax = _mm_cvtss_f32(m4);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        for (j = 0; j < PIO_QK_K - 1 && fabsf(x[j]) != amax; j++)
            ;
        iscale = -127.0f / x[j];
        idv = _mm256_set1_ps(iscale);
        for (j = 0; j < PIO_QK_K; j += 32) {
            __m256i i0 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j), idv)), q127);
            __m256i i1 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8), idv)), q127);
            __m256i i2 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 16), idv)), q127);
            __m256i i3 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 24), idv)), q127);
            /* the two 16-value sums: lanes of i0+i1 and of i2+i3 */
            __m256i s = _mm256_hadd_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            s4 = _mm_hadd_epi32(s4, s4);
            y[i].bsums[j / 16] = (int16_t)_mm_cvtsi128_si32(s4);
            y[i].bsums[j / 16 + 1] = (int16_t)_mm_extract_epi32(s4, 1);
            i0 = _mm256_packs_epi32(i0, i1);
            i2 = _mm256_packs_epi32(i2, i3);
            _mm256_storeu_si256((__m256i *)(y[i].qs + j),
                                _mm256_permutevar8x32_epi32(_mm256_packs_epi16(i0, i2), perm));
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ---- Q8_0 / Q4_0 ---------------------------------------------------------------- */

/* Block b of a PIO_ACT_Q8 row: quants, scale, sum. */
AI const uint8_t *act_q8_group(const uint8_t *row, int64_t b)
{
    return row + (size_t)(b >> 3) * PIO_ACT_Q8_GROUP_BYTES;
}

AI void q8_0_micro(int R, int T, int64_t k, const uint8_t *w, size_t ws, const uint8_t *x,
                   size_t xs, float *y, size_t ldy, bool accumulate, bool pf)
{
    const __m256i ones = _mm256_set1_epi16(1);
    const int64_t nb = k / 32;
    __m256 acc[4][2];
    int64_t b;
    int r, t;

#pragma GCC unroll 4
    for (r = 0; r < R; r++)
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
            acc[r][t] = _mm256_setzero_ps();
    for (b = 0; b < nb; b++) {
        __m256i xq[2];
        __m256 xd[2];
#pragma GCC unroll 2
        for (t = 0; t < T; t++) {
            const uint8_t *g = act_q8_group(x + (size_t)t * xs, b);
            xq[t] = _mm256_loadu_si256((const __m256i *)(g + 32 * (b & 7)));
            xd[t] = _mm256_broadcast_ss((const float *)(g + 256) + (b & 7));
        }
#pragma GCC unroll 4
        for (r = 0; r < R; r++) {
            const pio_block_q8_0 *blk = (const pio_block_q8_0 *)(w + (size_t)r * ws) + b;
            __m256i wq = _mm256_loadu_si256((const __m256i *)blk->qs);
            prefetch_next(pf, blk, (size_t)R * ws, 1);
            __m256i aw = _mm256_sign_epi8(wq, wq);
            __m256 dw = _mm256_set1_ps(f16(blk->d));
#pragma GCC unroll 2
            for (t = 0; t < T; t++) {
                __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(xq[t], wq));
                p = _mm256_madd_epi16(p, ones);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw, xd[t]), acc[r][t]);
            }
        }
    }
    store_tile(R, T, acc, no_extra, y, ldy, accumulate);
}

AI void q4_0_micro(int R, int T, int64_t k, const uint8_t *w, size_t ws, const uint8_t *x,
                   size_t xs, float *y, size_t ldy, bool accumulate, bool pf)
{
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i m4 = _mm256_set1_epi8(15);
    const int64_t nb = k / 32;
    __m256 acc[4][2];
    int64_t b;
    int r, t;

#pragma GCC unroll 4
    for (r = 0; r < R; r++)
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
            acc[r][t] = _mm256_setzero_ps();
    for (b = 0; b < nb; b++) {
        __m256i xq[2], xsum[2];
        __m256 xd[2];
#pragma GCC unroll 2
        for (t = 0; t < T; t++) {
            const uint8_t *g = act_q8_group(x + (size_t)t * xs, b);
            int32_t s;
            memcpy(&s, g + 288 + 4 * (b & 7), 4);
            xq[t] = _mm256_loadu_si256((const __m256i *)(g + 32 * (b & 7)));
            xd[t] = _mm256_broadcast_ss((const float *)(g + 256) + (b & 7));
            xsum[t] = _mm256_set1_epi32(s);        /* 8 lanes x Σx = 8·Σx */
        }
#pragma GCC unroll 4
        for (r = 0; r < R; r++) {
            const pio_block_q4_0 *blk = (const pio_block_q4_0 *)(w + (size_t)r * ws) + b;
            __m128i q = _mm_loadu_si128((const __m128i *)blk->qs);
            prefetch_next(pf && !(b & 1), blk, (size_t)R * ws, 1);
            __m256i wq = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), m4);
            __m256 dw = _mm256_set1_ps(f16(blk->d));
#pragma GCC unroll 2
            for (t = 0; t < T; t++) {
                __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(wq, xq[t]), ones);
                p = _mm256_sub_epi32(p, xsum[t]);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw, xd[t]), acc[r][t]);
            }
        }
    }
    store_tile(R, T, acc, no_extra, y, ldy, accumulate);
}

/* ---- Q4_K / Q6_K ----------------------------------------------------------------- */

/*
 * Q4_K scales[12] -> u[0..1]: the 8 6-bit scales as bytes, u[2..3]: the 8
 * mins (GGML's utmp unpacking of get_scale_min_k4).
 */
AI void q4k_unpack(const uint8_t *scales, uint32_t u[4])
{
    const uint32_t m1 = 0x3f3f3f3f, m2 = 0x0f0f0f0f, m3 = 0x03030303;
    uint32_t aux;
    memcpy(u, scales, 12);
    u[3] = ((u[2] >> 4) & m2) | (((u[1] >> 6) & m3) << 4);
    aux = u[1] & m1;
    u[1] = (u[2] & m2) | (((u[0] >> 6) & m3) << 4);
    u[2] = aux;
    u[0] &= m1;
}

/* Dword p (0..3, a constant after unrolling) of v in all 8 lanes. */
AI __m256i bcast_dword(__m128i v, int p)
{
    return _mm256_set1_epi32(p == 0 ? _mm_extract_epi32(v, 0) : p == 1 ? _mm_extract_epi32(v, 1)
                             : p == 2 ? _mm_extract_epi32(v, 2) : _mm_extract_epi32(v, 3));
}

/* Row i's entries of a Q4_K panel's scale vectors from its 12 scale bytes
 * (zeros for NULL, a padding row): sc[j][i] = scale j in both int16
 * halves, mn[p][i] = mins 2p (low) and 2p+1 (high). */
AI void q4k_panel_scales(const uint8_t *scales12, int i, int32_t sc[8][8], int32_t mn[4][8])
{
    uint32_t u[4] = { 0, 0, 0, 0 };
    const uint8_t *s8 = (const uint8_t *)u;   /* scales 0..7, mins 8..15 */
    int j;
    if (scales12)
        q4k_unpack(scales12, u);
    for (j = 0; j < 8; j++)
        sc[j][i] = (int32_t)s8[j] * 0x10001;
    for (j = 0; j < 4; j++)
        mn[j][i] = (int32_t)s8[8 + 2 * j] | (int32_t)s8[9 + 2 * j] << 16;
}

/* pshufb controls: bytes (2j, 2j+1) of each 128-bit lane repeated: set1_epi16(lane16[j]) */
#define BCAST16(j) _mm256_set1_epi16((short)(((2 * (j) + 1) << 8) | (2 * (j))))

AI void q4_K_micro(int R, int T, int64_t k, const uint8_t *w, size_t ws, const uint8_t *x,
                   size_t xs, float *y, size_t ldy, bool accumulate, bool pf)
{
    const __m256i m4 = _mm256_set1_epi8(15);
    const int64_t nb = k / PIO_QK_K;
    __m256 acc[4][2];
    int64_t i;
    int r, t, j;

#pragma GCC unroll 4
    for (r = 0; r < R; r++)
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
            acc[r][t] = _mm256_setzero_ps();
    for (i = 0; i < nb; i++) {
        const pio_block_q4_K *wb[4];
        const pio_block_q8_K *xb[2];
        __m256i sc[4], ai[4][2];
        __m128i mins[4], bs8[2];
        float dw[4], dmw[4];
#pragma GCC unroll 4
        for (r = 0; r < R; r++) {
            uint32_t u[4];
            __m256i ms;
            wb[r] = (const pio_block_q4_K *)(w + (size_t)r * ws) + i;
            prefetch_next(pf, wb[r], (size_t)R * ws, 3);
            q4k_unpack(wb[r]->scales, u);
            ms = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)u));  /* 8 scales | 8 mins */
            mins[r] = _mm256_extracti128_si256(ms, 1);
            /* the 8 scales in both lanes; sub-block j's is broadcast from it
             * when used (a register per row, not 8: no spills) */
            sc[r] = _mm256_permute2x128_si256(ms, ms, 0x00);
            dw[r] = f16(wb[r]->d);
            dmw[r] = f16(wb[r]->dmin);
        }
#pragma GCC unroll 2
        for (t = 0; t < T; t++) {
            xb[t] = (const pio_block_q8_K *)(x + (size_t)t * xs) + i;
            bs8[t] = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)xb[t]->bsums),
                                    _mm_loadu_si128((const __m128i *)xb[t]->bsums + 1));
#pragma GCC unroll 4
            for (r = 0; r < R; r++)
                ai[r][t] = _mm256_setzero_si256();
        }
#pragma GCC unroll 8
        for (j = 0; j < 8; j++) {           /* sub-block j: nibbles j&1 of qs[32*(j/2)..] */
            __m256i wq[4];
#pragma GCC unroll 4
            for (r = 0; r < R; r++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(wb[r]->qs + 32 * (j >> 1)));
                wq[r] = _mm256_and_si256(j & 1 ? _mm256_srli_epi16(q, 4) : q, m4);
            }
#pragma GCC unroll 2
            for (t = 0; t < T; t++) {
                __m256i xv = _mm256_loadu_si256((const __m256i *)(xb[t]->qs + 32 * j));
#pragma GCC unroll 4
                for (r = 0; r < R; r++) {
                    ai[r][t] = _mm256_add_epi32(ai[r][t], _mm256_madd_epi16(_mm256_maddubs_epi16(wq[r], xv),
                                                                            _mm256_shuffle_epi8(sc[r], BCAST16(j))));
                    PIN(ai[r][t]);
                }
            }
        }
#pragma GCC unroll 2
        for (t = 0; t < T; t++) {
#pragma GCC unroll 4
            for (r = 0; r < R; r++) {
                __m256 fm = _mm256_cvtepi32_ps(_mm256_zextsi128_si256(_mm_madd_epi16(mins[r], bs8[t])));
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ai[r][t]),
                                            _mm256_set1_ps(dw[r] * xb[t]->d), acc[r][t]);
                acc[r][t] = _mm256_fnmadd_ps(fm, _mm256_set1_ps(dmw[r] * xb[t]->d), acc[r][t]);
            }
        }
    }
    store_tile(R, T, acc, no_extra, y, ldy, accumulate);
}

/*
 * Q6_K scale vectors of chunk c (0..7 = 32 values): i16 lanes 0-7 = scale 2c,
 * lanes 8-15 = scale 2c+1. From the 16 scales as i16 [0..7 | 8..15]: the
 * 128-bit half c/4 broadcast to both lanes, then a pshufb per chunk.
 */
AI __m256i q6k_chunk_scale(__m256i half_bcast, int c)
{
    int e = 2 * (c & 3);
    __m256i ctl = _mm256_setr_epi8(
        2 * e, 2 * e + 1, 2 * e, 2 * e + 1, 2 * e, 2 * e + 1, 2 * e, 2 * e + 1,
        2 * e, 2 * e + 1, 2 * e, 2 * e + 1, 2 * e, 2 * e + 1, 2 * e, 2 * e + 1,
        2 * e + 2, 2 * e + 3, 2 * e + 2, 2 * e + 3, 2 * e + 2, 2 * e + 3, 2 * e + 2, 2 * e + 3,
        2 * e + 2, 2 * e + 3, 2 * e + 2, 2 * e + 3, 2 * e + 2, 2 * e + 3, 2 * e + 2, 2 * e + 3);
    return _mm256_shuffle_epi8(half_bcast, ctl);
}

AI void q6_K_micro(int R, int T, int64_t k, const uint8_t *w, size_t ws, const uint8_t *x,
                   size_t xs, float *y, size_t ldy, bool accumulate, bool pf)
{
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
    const int64_t nb = k / PIO_QK_K;
    __m256 acc[4][2];
    int64_t i;
    int r, t, h, c;

#pragma GCC unroll 4
    for (r = 0; r < R; r++)
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
            acc[r][t] = _mm256_setzero_ps();
    for (i = 0; i < nb; i++) {
        const pio_block_q6_K *wb[4];
        const pio_block_q8_K *xb[2];
        __m256i sc16[4], ai[4][2];
        float dw[4];
#pragma GCC unroll 4
        for (r = 0; r < R; r++) {
            wb[r] = (const pio_block_q6_K *)(w + (size_t)r * ws) + i;
            prefetch_next(pf, wb[r], (size_t)R * ws, 4);
            sc16[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)wb[r]->scales));
            dw[r] = f16(wb[r]->d);
        }
#pragma GCC unroll 2
        for (t = 0; t < T; t++) {
            __m256i bs;
            xb[t] = (const pio_block_q8_K *)(x + (size_t)t * xs) + i;
            bs = _mm256_loadu_si256((const __m256i *)xb[t]->bsums);
#pragma GCC unroll 4
            for (r = 0; r < R; r++)          /* -32·Σ sc_j·bsum_j: the q-32 offset */
                ai[r][t] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                            _mm256_slli_epi32(_mm256_madd_epi16(sc16[r], bs), 5));
        }
        for (h = 0; h < 2; h++) {
            __m256i half[4];      /* scales 8h..8h+7 in both lanes (chunks 4h..4h+3) */
            const __m256i sel = h ? _mm256_setr_epi32(4, 5, 6, 7, 4, 5, 6, 7) : _mm256_setr_epi32(0, 1, 2, 3, 0, 1, 2, 3);
#pragma GCC unroll 4
            for (r = 0; r < R; r++)
                half[r] = _mm256_permutevar8x32_epi32(sc16[r], sel);
            for (c = 0; c < 4; c++) {
                __m256i wq[4];
#pragma GCC unroll 4
                for (r = 0; r < R; r++) {
                    __m256i lo = _mm256_loadu_si256((const __m256i *)(wb[r]->ql + 64 * h + 32 * (c & 1)));
                    __m256i hi = _mm256_loadu_si256((const __m256i *)(wb[r]->qh + 32 * h));
                    lo = _mm256_and_si256(_mm256_srli_epi16(lo, 4 * (c >> 1)), m4);
                    hi = _mm256_and_si256(_mm256_srli_epi16(hi, 2 * c), m2);
                    wq[r] = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
                }
#pragma GCC unroll 2
                for (t = 0; t < T; t++) {
                    __m256i xv = _mm256_loadu_si256((const __m256i *)(xb[t]->qs + 128 * h + 32 * c));
#pragma GCC unroll 4
                    for (r = 0; r < R; r++) {
                        ai[r][t] = _mm256_add_epi32(ai[r][t], _mm256_madd_epi16(_mm256_maddubs_epi16(wq[r], xv),
                                                                                q6k_chunk_scale(half[r], c)));
                        PIN(ai[r][t]);
                    }
                }
            }
        }
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
#pragma GCC unroll 4
            for (r = 0; r < R; r++)
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ai[r][t]),
                                            _mm256_set1_ps(dw[r] * xb[t]->d), acc[r][t]);
    }
    store_tile(R, T, acc, no_extra, y, ldy, accumulate);
}

#define Q_MICRO(R, T, r, t, fn) MICRO_CALL(fn, R, T, r, t)
static void tile_q8_0_avx2(TILE_ARGS) { TILE_WALK_PF(Q_MICRO, q8_0_micro); }
static void tile_q4_0_avx2(TILE_ARGS) { TILE_WALK_PF(Q_MICRO, q4_0_micro); }
static void tile_q4_K_avx2(TILE_ARGS) { TILE_WALK_PF(Q_MICRO, q4_K_micro); }
static void tile_q6_K_avx2(TILE_ARGS) { TILE_WALK_PF(Q_MICRO, q6_K_micro); }

/* ---- Q4_0_X8 / Q8_0_X8: 8 rows interleaved (quant.h) -------------------------------- */

/*
 * G groups of 8 rows (G <= 2) x T tokens (T <= 2), groups gs bytes apart.
 * Per block column and group: one vcvtph2ps for the 8 scales, 4 loads of 32
 * bytes, each split into low and high nibbles (4 bytes = 8 values per row),
 * against 4 activation bytes broadcast to every dword: 8 pmaddubsw summed
 * in int16 (8 x 2·15·127 < 2^15), widened once by pmaddwd, minus 8·Σx for
 * the nibble offset, then one FMA by d_w·d_x. Lane i is row i, so the 8
 * results are stored without a horizontal sum. A row's sum runs over the
 * blocks in order whatever G and T are (batch invariant). pf: prefetch the
 * same columns of the next two groups (the next micro-kernel), as a decode
 * of 2-4 tokens streams W from memory (one token runs one group at a time
 * without it: see X8_TILE).
 */
AI void q4x8_micro(int G, int T, int64_t k, const uint8_t *w, size_t gs, const uint8_t *x,
                   size_t xs, float *y, size_t ldy, bool accumulate, bool pf)
{
    const __m256i m4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    const int64_t nb = k / 32;
    __m256 acc[2][2];
    int64_t b;
    int gi, t, c;

#pragma GCC unroll 2
    for (gi = 0; gi < G; gi++)
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
            acc[gi][t] = _mm256_setzero_ps();
    for (b = 0; b < nb; b++) {
        const uint8_t *xb[2];
        __m256i ai[2][2];
        int j = (int)(b & 7);
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
            xb[t] = x + (size_t)t * xs + (size_t)(b >> 3) * PIO_ACT_Q8_GROUP_BYTES;
#pragma GCC unroll 4
        for (c = 0; c < 4; c++) {
            __m256i lo[2], hi[2];
#pragma GCC unroll 2
            for (gi = 0; gi < G; gi++) {
                const uint8_t *blk = w + (size_t)gi * gs + (size_t)b * sizeof(pio_block_q4_0x8);
                __m256i v = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * c));
                if (c < 3)        /* the next micro-kernel's groups, same column: 3 lines */
                    prefetch_next(pf, blk + 64 * c, 2 * gs, 1);
                lo[gi] = _mm256_and_si256(v, m4);
                hi[gi] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            }
#pragma GCC unroll 2
            for (t = 0; t < T; t++) {
                int32_t xl, xh;
                __m256i vl, vh;
                memcpy(&xl, xb[t] + 32 * j + 4 * c, 4);
                memcpy(&xh, xb[t] + 32 * j + 16 + 4 * c, 4);
                vl = _mm256_set1_epi32(xl);
                vh = _mm256_set1_epi32(xh);
#pragma GCC unroll 2
                for (gi = 0; gi < G; gi++) {
                    __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo[gi], vl),
                                                 _mm256_maddubs_epi16(hi[gi], vh));
                    ai[gi][t] = c == 0 ? p : _mm256_add_epi16(ai[gi][t], p);
                    __asm__("" : "+x"(ai[gi][t]));   /* keep the sum a chain: no tree of live products */
                }
            }
        }
#pragma GCC unroll 2
        for (gi = 0; gi < G; gi++) {
            const uint8_t *blk = w + (size_t)gi * gs + (size_t)b * sizeof(pio_block_q4_0x8);
            __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
#pragma GCC unroll 2
            for (t = 0; t < T; t++) {
                int32_t sx;
                __m256i p;
                memcpy(&sx, xb[t] + 288 + 4 * j, 4);
                p = _mm256_sub_epi32(_mm256_madd_epi16(ai[gi][t], ones), _mm256_set1_epi32(8 * sx));
                acc[gi][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),
                                             _mm256_mul_ps(dw, _mm256_broadcast_ss((const float *)(xb[t] + 256) + j)),
                                             acc[gi][t]);
            }
        }
    }
    store_groups(G, T, acc, 16, y, ldy, accumulate);
}

/*
 * Q8_0_X8: G groups of 8 rows (G <= 2) x T tokens (T <= 2), as q4x8_micro
 * with 8 chunks of signed bytes per block column: per chunk one 32-byte
 * load gives 4 quants of each of the 8 rows; pmaddubsw(|w|, sign(x, w))
 * against 4 activation bytes broadcast to the 8 dwords, widened by pmaddwd
 * at once (2·127·127 leaves no int16 headroom for a second product) and
 * summed in int32 over the block; then one FMA per block by d_w·d_x, lane i
 * = row i. About half the instructions per weight of q8_0_micro: the scale
 * conversion, the activation load and the final sum are shared by 8 rows.
 */
AI void q8x8_micro(int G, int T, int64_t k, const uint8_t *w, size_t gs, const uint8_t *x,
                   size_t xs, float *y, size_t ldy, bool accumulate, bool pf)
{
    const __m256i ones = _mm256_set1_epi16(1);
    const int64_t nb = k / 32;
    __m256 acc[2][2];
    int64_t b;
    int gi, t, c;

#pragma GCC unroll 2
    for (gi = 0; gi < G; gi++)
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
            acc[gi][t] = _mm256_setzero_ps();
    for (b = 0; b < nb; b++) {
        const uint8_t *xb[2];
        __m256i ai[2][2];
        int j = (int)(b & 7);
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
            xb[t] = x + (size_t)t * xs + (size_t)(b >> 3) * PIO_ACT_Q8_GROUP_BYTES + 32 * j;
#pragma GCC unroll 8
        for (c = 0; c < 8; c++) {
            __m256i v[2], aw[2];
#pragma GCC unroll 2
            for (gi = 0; gi < G; gi++) {
                const uint8_t *blk = w + (size_t)gi * gs + (size_t)b * sizeof(pio_block_q8_0x8);
                v[gi] = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * c));
                if (c < 5)        /* the next micro-kernel's groups, same column: 272 B */
                    prefetch_next(pf, blk + 64 * c, 2 * gs, 1);
                aw[gi] = _mm256_sign_epi8(v[gi], v[gi]);
            }
#pragma GCC unroll 2
            for (t = 0; t < T; t++) {
                int32_t x4;
                __m256i xv;
                memcpy(&x4, xb[t] + 4 * c, 4);
                xv = _mm256_set1_epi32(x4);
#pragma GCC unroll 2
                for (gi = 0; gi < G; gi++) {
                    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw[gi], _mm256_sign_epi8(xv, v[gi])),
                                                  ones);
                    ai[gi][t] = c == 0 ? p : _mm256_add_epi32(ai[gi][t], p);
                    PIN(ai[gi][t]);
                }
            }
        }
#pragma GCC unroll 2
        for (gi = 0; gi < G; gi++) {
            const uint8_t *blk = w + (size_t)gi * gs + (size_t)b * sizeof(pio_block_q8_0x8);
            __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
#pragma GCC unroll 2
            for (t = 0; t < T; t++) {
                const float *dx = (const float *)(x + (size_t)t * xs + (size_t)(b >> 3) * PIO_ACT_Q8_GROUP_BYTES + 256) + j;
                acc[gi][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ai[gi][t]),
                                             _mm256_mul_ps(dw, _mm256_broadcast_ss(dx)), acc[gi][t]);
            }
        }
    }
    store_groups(G, T, acc, 16, y, ldy, accumulate);
}

/*
 * Q4_K_X8: G groups of 8 rows (G <= 2) x T tokens (T <= 2). Per super-block
 * column and group, the 8 rows' 12 scale bytes arrive as 3 dword vectors,
 * unpacked lane-wise by GGML's bit operations (q4k_unpack), so sub-block j's
 * 8 scales (and each pair of mins) are one pshufb away. Each 32-byte qs
 * chunk gives 4 bytes of every row: low nibbles for sub-block 2p, high ones
 * for 2p+1, against 4 activation bytes broadcast; a sub-block's 8 chunks sum
 * in int16 (8 x 2·15·128 < 2^15), pmaddwd by the scales widens them, the
 * super-block sums in int32, then one FMA for d and one for the mins.
 */
AI void q4kx8_micro(int G, int T, int64_t k, const uint8_t *w, size_t gs, const uint8_t *x,
                    size_t xs, float *y, size_t ldy, bool accumulate, bool pf)
{
    const __m256i m4 = _mm256_set1_epi8(15);
    const __m256i k1 = _mm256_set1_epi32(0x3f3f3f3f), k2 = _mm256_set1_epi32(0x0f0f0f0f),
                  k3 = _mm256_set1_epi32(0x03030303);
    const int64_t nsb = k / PIO_QK_K;
    __m256 acc[2][2];
    int64_t sb;
    int gi, t, j, c, p;

#pragma GCC unroll 2
    for (gi = 0; gi < G; gi++)
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
            acc[gi][t] = _mm256_setzero_ps();
    for (sb = 0; sb < nsb; sb++) {
        const pio_block_q8_K *xb[2];
        __m256i u[2][4], isum[2][2];
#pragma GCC unroll 2
        for (gi = 0; gi < G; gi++) {
            const pio_block_q4_Kx8 *blk = (const pio_block_q4_Kx8 *)(w + (size_t)gi * gs) + sb;
            __m256i d0 = _mm256_loadu_si256((const __m256i *)blk->scales[0]);
            __m256i d1 = _mm256_loadu_si256((const __m256i *)blk->scales[1]);
            __m256i d2 = _mm256_loadu_si256((const __m256i *)blk->scales[2]);
            /* u[0], u[1]: scales 0-3, 4-7; u[2], u[3]: mins 0-3, 4-7 (bytes of each lane) */
            u[gi][0] = _mm256_and_si256(d0, k1);
            u[gi][1] = _mm256_or_si256(_mm256_and_si256(d2, k2),
                                       _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(d0, 6), k3), 4));
            u[gi][2] = _mm256_and_si256(d1, k1);
            u[gi][3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(d2, 4), k2),
                                       _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(d1, 6), k3), 4));
#pragma GCC unroll 2
            for (t = 0; t < T; t++)
                isum[gi][t] = _mm256_setzero_si256();
        }
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
            xb[t] = (const pio_block_q8_K *)(x + (size_t)t * xs) + sb;
        for (j = 0; j < 8; j++) {
            /* byte j%4 of each dword into both of its int16 halves */
            const int e = j & 3;
            const __m256i ctl = _mm256_setr_epi8(e, -1, e, -1, 4 + e, -1, 4 + e, -1, 8 + e, -1, 8 + e, -1,
                                                 12 + e, -1, 12 + e, -1, e, -1, e, -1, 4 + e, -1, 4 + e, -1,
                                                 8 + e, -1, 8 + e, -1, 12 + e, -1, 12 + e, -1);
            __m256i a16[2][2];
#pragma GCC unroll 8
            for (c = 0; c < 8; c++) {
                __m256i wv[2];
#pragma GCC unroll 2
                for (gi = 0; gi < G; gi++) {
                    const pio_block_q4_Kx8 *blk = (const pio_block_q4_Kx8 *)(w + (size_t)gi * gs) + sb;
                    __m256i v = _mm256_loadu_si256((const __m256i *)blk->qs[8 * (j >> 1) + c]);
                    if (8 * j + c < 18)      /* the next micro-kernel's groups, same column: 1152 B */
                        prefetch_next(pf, (const uint8_t *)blk + 64 * (8 * j + c), 2 * gs, 1);
                    wv[gi] = _mm256_and_si256(j & 1 ? _mm256_srli_epi16(v, 4) : v, m4);
                }
#pragma GCC unroll 2
                for (t = 0; t < T; t++) {
                    int32_t x4;
                    __m256i xv;
                    memcpy(&x4, xb[t]->qs + 32 * j + 4 * c, 4);
                    xv = _mm256_set1_epi32(x4);
#pragma GCC unroll 2
                    for (gi = 0; gi < G; gi++) {
                        __m256i q = _mm256_maddubs_epi16(wv[gi], xv);
                        a16[gi][t] = c == 0 ? q : _mm256_add_epi16(a16[gi][t], q);
                        PIN(a16[gi][t]);
                    }
                }
            }
#pragma GCC unroll 2
            for (gi = 0; gi < G; gi++) {
                __m256i scv = _mm256_shuffle_epi8(u[gi][j >> 2], ctl);
#pragma GCC unroll 2
                for (t = 0; t < T; t++)
                    isum[gi][t] = _mm256_add_epi32(isum[gi][t], _mm256_madd_epi16(a16[gi][t], scv));
            }
        }
#pragma GCC unroll 2
        for (t = 0; t < T; t++) {
            /* the 8 sub-blocks' activation sums as int16 pairs (2p, 2p+1) */
            __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)xb[t]->bsums),
                                        _mm_loadu_si128((const __m128i *)xb[t]->bsums + 1));
            __m256 dx = _mm256_set1_ps(xb[t]->d);
#pragma GCC unroll 2
            for (gi = 0; gi < G; gi++) {
                const pio_block_q4_Kx8 *blk = (const pio_block_q4_Kx8 *)(w + (size_t)gi * gs) + sb;
                __m256i mt = _mm256_setzero_si256();
#pragma GCC unroll 4
                for (p = 0; p < 4; p++) {
                    /* mins 2p, 2p+1: bytes 2(p%2), 2(p%2)+1 of each dword of u[2 + p/2] */
                    const int e = 2 * (p & 1);
                    const __m256i ctl = _mm256_setr_epi8(e, -1, e + 1, -1, 4 + e, -1, 5 + e, -1, 8 + e, -1, 9 + e, -1,
                                                         12 + e, -1, 13 + e, -1, e, -1, e + 1, -1, 4 + e, -1, 5 + e, -1,
                                                         8 + e, -1, 9 + e, -1, 12 + e, -1, 13 + e, -1);
                    __m256i bp = bcast_dword(bs, p);
                    mt = _mm256_add_epi32(mt, _mm256_madd_epi16(_mm256_shuffle_epi8(u[gi][2 + (p >> 1)], ctl), bp));
                }
                acc[gi][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[gi][t]),
                                             _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk->d)), dx),
                                             acc[gi][t]);
                acc[gi][t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mt),
                                              _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk->dmin)), dx),
                                              acc[gi][t]);
            }
        }
    }
    store_groups(G, T, acc, 16, y, ldy, accumulate);
}

/* Per dword lane (row) of v: bytes e0 and e1 of the dword, sign-extended,
 * as its low and high int16. */
AI __m256i lane_bytes_i16(__m256i v, int e0, int e1)
{
    const __m256i ctl = _mm256_setr_epi8(-1, e0, -1, e1, -1, 4 + e0, -1, 4 + e1, -1, 8 + e0, -1, 8 + e1,
                                         -1, 12 + e0, -1, 12 + e1, -1, e0, -1, e1, -1, 4 + e0, -1, 4 + e1,
                                         -1, 8 + e0, -1, 8 + e1, -1, 12 + e0, -1, 12 + e1);
    return _mm256_srai_epi16(_mm256_shuffle_epi8(v, ctl), 8);
}

/*
 * Q6_K_X8: G groups of 8 rows (G <= 2) x T tokens (T <= 2). Values
 * 128n + 32s + 4c .. +3 (half n, quarter s, chunk c) of the 8 rows are the
 * low (s < 2) or high nibbles of ql chunk 16n + 8(s&1) + c, with bits 2s,
 * 2s+1 of qh chunk 8n + c above them (one shift brings them to bits 4-5);
 * pmaddubsw against 4 broadcast activation bytes. Two chunks sum in int16
 * (2 x 2·63·128 < 2^15); pmaddwd by the 16-value group's scale (its byte in
 * both int16 halves of each row's lane) widens them into the int32
 * super-block sum. The -32 offset is 32·Σ_g sc_g·Σx_g per row (the scale
 * pairs against the activation's 16-value sums), so the sum is exact, as
 * GGML's.
 */
AI void q6kx8_micro(int G, int T, int64_t k, const uint8_t *w, size_t gs, const uint8_t *x,
                    size_t xs, float *y, size_t ldy, bool accumulate, bool pf)
{
    const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    const int64_t nsb = k / PIO_QK_K;
    __m256 acc[2][2];
    int64_t sb;
    int gi, t, n, s, c, p;

#pragma GCC unroll 2
    for (gi = 0; gi < G; gi++)
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
            acc[gi][t] = _mm256_setzero_ps();
    for (sb = 0; sb < nsb; sb++) {
        const pio_block_q6_Kx8 *blk[2];
        const pio_block_q8_K *xb[2];
        __m256i isum[2][2];
#pragma GCC unroll 2
        for (gi = 0; gi < G; gi++) {
            blk[gi] = (const pio_block_q6_Kx8 *)(w + (size_t)gi * gs) + sb;
#pragma GCC unroll 2
            for (t = 0; t < T; t++)
                isum[gi][t] = _mm256_setzero_si256();
        }
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
            xb[t] = (const pio_block_q8_K *)(x + (size_t)t * xs) + sb;
        /* fully unrolled: the shifts, scale bytes and prefetches are constants */
#pragma GCC unroll 2
        for (n = 0; n < 2; n++) {
#pragma GCC unroll 4
            for (s = 0; s < 4; s++) {
                __m256i a16[2][2], scv[2];
#pragma GCC unroll 8
                for (c = 0; c < 8; c++) {
                    const int line = 32 * n + 8 * s + c, h = 8 * n + 2 * s + (c >> 2);
                    __m256i wv[2];
#pragma GCC unroll 2
                    for (gi = 0; gi < G; gi++) {
                        __m256i lo = _mm256_loadu_si256((const __m256i *)blk[gi]->ql[16 * n + 8 * (s & 1) + c]);
                        __m256i hi = _mm256_loadu_si256((const __m256i *)blk[gi]->qh[8 * n + c]);
                        if (line < 27)      /* the next micro-kernel's groups, same column: 1680 B */
                            prefetch_next(pf, (const uint8_t *)blk[gi] + 64 * line, 2 * gs, 1);
                        lo = _mm256_and_si256(s >> 1 ? _mm256_srli_epi16(lo, 4) : lo, m4);
                        hi = s == 0 ? _mm256_slli_epi16(hi, 4) : s == 1 ? _mm256_slli_epi16(hi, 2)
                           : s == 2 ? hi : _mm256_srli_epi16(hi, 2);
                        wv[gi] = _mm256_or_si256(lo, _mm256_and_si256(hi, m30));
                        if ((c & 3) == 0)   /* group h's scale, both halves of each row's lane */
                            scv[gi] = lane_bytes_i16(_mm256_loadu_si256((const __m256i *)blk[gi]->scales[h >> 2]),
                                                     h & 3, h & 3);
                    }
#pragma GCC unroll 2
                    for (t = 0; t < T; t++) {
                        int32_t x4;
                        __m256i xv;
                        memcpy(&x4, xb[t]->qs + 128 * n + 32 * s + 4 * c, 4);
                        xv = _mm256_set1_epi32(x4);
#pragma GCC unroll 2
                        for (gi = 0; gi < G; gi++) {
                            __m256i q = _mm256_maddubs_epi16(wv[gi], xv);
                            a16[gi][t] = (c & 1) == 0 ? q : _mm256_add_epi16(a16[gi][t], q);
                            PIN(a16[gi][t]);
                        }
                    }
                    if (c & 1)
#pragma GCC unroll 2
                        for (gi = 0; gi < G; gi++)
#pragma GCC unroll 2
                            for (t = 0; t < T; t++) {
                                isum[gi][t] = _mm256_add_epi32(isum[gi][t], _mm256_madd_epi16(a16[gi][t], scv[gi]));
                                PIN(isum[gi][t]);
                            }
                }
            }
        }
#pragma GCC unroll 2
        for (gi = 0; gi < G; gi++) {
            __m256i off[2] = { _mm256_setzero_si256(), _mm256_setzero_si256() };
            __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk[gi]->d));
#pragma GCC unroll 8
            for (p = 0; p < 8; p++) {
                /* the scales of groups 2p (low) and 2p+1 (high) against their Σx */
                __m256i sp = lane_bytes_i16(_mm256_loadu_si256((const __m256i *)blk[gi]->scales[p >> 1]),
                                            2 * (p & 1), 2 * (p & 1) + 1);
#pragma GCC unroll 2
                for (t = 0; t < T; t++) {
                    int32_t b2;
                    memcpy(&b2, xb[t]->bsums + 2 * p, 4);
                    off[t] = _mm256_add_epi32(off[t], _mm256_madd_epi16(sp, _mm256_set1_epi32(b2)));
                }
            }
#pragma GCC unroll 2
            for (t = 0; t < T; t++)
                acc[gi][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(isum[gi][t], _mm256_slli_epi32(off[t], 5))),
                                             _mm256_mul_ps(dw, _mm256_set1_ps(xb[t]->d)), acc[gi][t]);
        }
    }
    store_groups(G, T, acc, 16, y, ldy, accumulate);
}

/* CALL(T, t, ...) for the nt tokens in pairs, then a single one if nt is odd. */
#define PAIR_TOKENS(CALL, ...)                                                             \
    do {                                                                                   \
        int t_;                                                                            \
        for (t_ = 0; t_ + 2 <= nt; t_ += 2)                                                \
            CALL(2, t_, __VA_ARGS__);                                                      \
        if (t_ < nt)                                                                       \
            CALL(1, t_, __VA_ARGS__);                                                      \
    } while (0)

#define X8_CALL(T, t, fn, G, g)                                                            \
    fn(G, T, k, (const uint8_t *)w + (size_t)(g) * gs, gs,                                 \
       (const uint8_t *)x + (size_t)(t) * x_stride, x_stride,                              \
       y + (size_t)(t) * ldy + (size_t)(g) * 8, ldy, accumulate, pf)

/*
 * nr a multiple of 8: 16 rows x 2 tokens per micro-kernel, with a software
 * prefetch of the next pair of groups up to PF_TOKENS tokens.
 *
 * STREAM1 tiles take one token (decode) one 8-row group at a time, with no
 * software prefetch: the groups of an X8 matrix lie back to back, so a task's
 * rows are then read as one sequential stream, which the hardware
 * prefetchers follow best. Two groups at a time are two streams gs bytes
 * apart, which they follow badly, and the software prefetch recovers only
 * part of that. Measured on a Zen 4 VM, Qwen3-4B decode, in-process roofline
 * share (pio bench --roofline), alternated runs at the same bandwidth:
 *   Q4_0   2 threads 86.4% -> 93.7%, 1 thread 79.2% -> 94.0%;
 *   Q8_0   (PIO_CPU=avx2) 2 threads 88.6% -> 96.7%, and 68-71% -> 92.5%
 *          when the VM's memory ran at ~58 GB/s;
 *   Q4_K_M 86.7% -> 69.3%, so the K-quant tiles keep two groups: they are
 *          compute-bound, and one group per call doubles their scale work.
 */
#define X8_TILE(name, fn, STREAM1)                                                         \
    static void name(TILE_ARGS)                                                            \
    {                                                                                      \
        const size_t gs = 8 * w_stride;                                                    \
        const bool one = STREAM1 && nt == 1, pf = !one && nt <= PF_TOKENS;                \
        int ng = nr / 8, g;                                                                \
        if (one) {                                                                         \
            for (g = 0; g < ng; g++)                                                       \
                X8_CALL(1, 0, fn, 1, g);                                                   \
            return;                                                                        \
        }                                                                                  \
        for (g = 0; g + 2 <= ng; g += 2)                                                   \
            PAIR_TOKENS(X8_CALL, fn, 2, g);                                                \
        if (g < ng)                                                                        \
            PAIR_TOKENS(X8_CALL, fn, 1, g);                                                \
    }

X8_TILE(tile_q4_0_x8_avx2, q4x8_micro, true)
X8_TILE(tile_q8_0_x8_avx2, q8x8_micro, true)
X8_TILE(tile_q4_K_x8_avx2, q4kx8_micro, false)
X8_TILE(tile_q6_K_x8_avx2, q6kx8_micro, false)

/* ---- prefill: packed Q8_0 / Q4_0 panels --------------------------------------------- */

/*
 * Panel layout, per group of 8 rows (the last one zero-padded) and block b
 * of 32 columns, 288 bytes:
 *   q[8][8][4]: chunk c, row i, bytes 4c..4c+3 of the row's block
 *               (Q8_0: the signed quants; Q4_0: the nibbles 0..15);
 *   f32 d[8]:   the rows' block scales (0 for padding rows).
 * Broadcasting 4 activation bytes against a chunk gives 8 rows' partial dot
 * products per instruction pair: Q4_0 sums maddubs in int16 over the whole
 * block (8 x 2·15·127 < 2^15) and widens once; Q8_0 needs the sign trick and
 * widens per chunk (2·127·127 leaves no headroom).
 */
#define PK2_BLOCK 288

static size_t pack_size_q_avx2(int nr, int64_t k)
{
    return (size_t)((nr + 7) / 8) * (size_t)(k / 32) * PK2_BLOCK;
}

AI void pack_q_avx2(bool q4, void *dst, const void *w, size_t ws, int nr, int64_t k)
{
    const int64_t nb = k / 32;
    const size_t bsz = q4 ? sizeof(pio_block_q4_0) : sizeof(pio_block_q8_0);
    int ng = (nr + 7) / 8, g, i, c, j;
    int64_t b;
    for (g = 0; g < ng; g++) {
        for (b = 0; b < nb; b++) {
            uint8_t *o = (uint8_t *)dst + ((size_t)g * (size_t)nb + (size_t)b) * PK2_BLOCK;
            float d[8];
            for (i = 0; i < 8; i++) {
                int r = 8 * g + i;
                uint8_t e[32];
                if (r < nr) {
                    const uint8_t *blk = (const uint8_t *)w + (size_t)r * ws + (size_t)b * bsz;
                    uint16_t h;
                    memcpy(&h, blk, 2);
                    d[i] = f16(h);
                    if (q4) {
                        for (j = 0; j < 16; j++) {
                            e[j] = blk[2 + j] & 15;
                            e[j + 16] = blk[2 + j] >> 4;
                        }
                    } else {
                        memcpy(e, blk + 2, 32);
                    }
                } else {
                    d[i] = 0.0f;
                    memset(e, 0, sizeof e);
                }
                for (c = 0; c < 8; c++)
                    memcpy(o + 32 * c + 4 * i, e + 4 * c, 4);
            }
            memcpy(o + 256, d, sizeof d);
        }
    }
}

/*
 * The same panel from Q4_0_X8 groups (nr a multiple of 8, groups 8·ws apart):
 * chunk c < 4 of the panel is the low nibbles of the group's chunk c, chunk
 * c + 4 its high nibbles; three instructions per 32 bytes.
 */
static void pack_q4_0_x8_avx2(void *dst, const void *w, size_t ws, int nr, int64_t k)
{
    const __m256i m4 = _mm256_set1_epi8(15);
    const int64_t nb = k / 32;
    int ng = nr / 8, g, c;
    int64_t b;
    for (g = 0; g < ng; g++) {
        const uint8_t *src = (const uint8_t *)w + (size_t)g * 8 * ws;
        uint8_t *o = (uint8_t *)dst + (size_t)g * (size_t)nb * PK2_BLOCK;
        for (b = 0; b < nb; b++, src += sizeof(pio_block_q4_0x8), o += PK2_BLOCK) {
            for (c = 0; c < 4; c++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(src + 16 + 32 * c));
                _mm256_store_si256((__m256i *)(o + 32 * c), _mm256_and_si256(v, m4));
                _mm256_store_si256((__m256i *)(o + 32 * (c + 4)),
                                   _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
            }
            _mm256_store_ps((float *)(o + 256), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)src)));
        }
    }
}

/* The same panel from Q8_0_X8 groups: the quants are already in panel
 * order (a 256-byte copy); the scales become f32. */
static void pack_q8_0_x8_avx2(void *dst, const void *w, size_t ws, int nr, int64_t k)
{
    const int64_t nb = k / 32;
    int ng = nr / 8, g, c;
    int64_t b;
    for (g = 0; g < ng; g++) {
        const uint8_t *src = (const uint8_t *)w + (size_t)g * 8 * ws;
        uint8_t *o = (uint8_t *)dst + (size_t)g * (size_t)nb * PK2_BLOCK;
        for (b = 0; b < nb; b++, src += sizeof(pio_block_q8_0x8), o += PK2_BLOCK) {
            for (c = 0; c < 8; c++)
                _mm256_store_si256((__m256i *)(o + 32 * c),
                                   _mm256_loadu_si256((const __m256i *)(src + 16 + 32 * c)));
            _mm256_store_ps((float *)(o + 256), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)src)));
        }
    }
}

static void pack_q8_0_avx2(void *dst, const void *w, size_t ws, int nr, int64_t k) { pack_q_avx2(false, dst, w, ws, nr, k); }
static void pack_q4_0_avx2(void *dst, const void *w, size_t ws, int nr, int64_t k) { pack_q_avx2(true, dst, w, ws, nr, k); }

/* G groups of 8 packed rows (G <= 2, `rows` valid) x T tokens (T <= 2). */
AI void packed_micro(bool q4, int G, int T, int64_t k, const uint8_t *pk, size_t gstride, int rows,
                     const uint8_t *x, size_t xs, float *y, size_t ldy, bool accumulate)
{
    const __m256i ones = _mm256_set1_epi16(1);
    const int64_t nb = k / 32;
    __m256 accf[2][2];
    int64_t b;
    int gi, t, c;

#pragma GCC unroll 2
    for (gi = 0; gi < G; gi++)
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
            accf[gi][t] = _mm256_setzero_ps();
    for (b = 0; b < nb; b++) {
        const uint8_t *xg[2];
        const uint8_t *pb = pk + (size_t)b * PK2_BLOCK;
        __m256i ai[2][2];
        int j = (int)(b & 7);
#pragma GCC unroll 2
        for (t = 0; t < T; t++) {
            xg[t] = x + (size_t)t * xs + (size_t)(b >> 3) * PIO_ACT_Q8_GROUP_BYTES;
#pragma GCC unroll 2
            for (gi = 0; gi < G; gi++)
                ai[gi][t] = _mm256_setzero_si256();
        }
#pragma GCC unroll 8
        for (c = 0; c < 8; c++) {
            __m256i wv[2], aw[2];
#pragma GCC unroll 2
            for (gi = 0; gi < G; gi++) {
                wv[gi] = _mm256_load_si256((const __m256i *)(pb + (size_t)gi * gstride + 32 * c));
                aw[gi] = q4 ? wv[gi] : _mm256_sign_epi8(wv[gi], wv[gi]);
            }
#pragma GCC unroll 2
            for (t = 0; t < T; t++) {
                int32_t q4b;
                __m256i xb;
                memcpy(&q4b, xg[t] + 32 * j + 4 * c, 4);
                xb = _mm256_set1_epi32(q4b);
#pragma GCC unroll 2
                for (gi = 0; gi < G; gi++) {
                    if (q4)            /* int16 sums: widened once per block below */
                        ai[gi][t] = _mm256_add_epi16(ai[gi][t], _mm256_maddubs_epi16(aw[gi], xb));
                    else
                        ai[gi][t] = _mm256_add_epi32(ai[gi][t], _mm256_madd_epi16(
                            _mm256_maddubs_epi16(aw[gi], _mm256_sign_epi8(xb, wv[gi])), ones));
                    PIN(ai[gi][t]);
                }
            }
        }
#pragma GCC unroll 2
        for (gi = 0; gi < G; gi++) {
            __m256 dw = _mm256_load_ps((const float *)(pb + (size_t)gi * gstride + 256));
#pragma GCC unroll 2
            for (t = 0; t < T; t++) {
                __m256i p = ai[gi][t];
                float dx;
                memcpy(&dx, xg[t] + 256 + 4 * j, 4);
                if (q4) {
                    int32_t sx;
                    memcpy(&sx, xg[t] + 288 + 4 * j, 4);
                    p = _mm256_sub_epi32(_mm256_madd_epi16(p, ones), _mm256_set1_epi32(8 * sx));
                }
                accf[gi][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw, _mm256_set1_ps(dx)),
                                              accf[gi][t]);
            }
        }
    }
    store_groups(G, T, accf, rows, y, ldy, accumulate);
}

AI void packed_q8_micro(int G, int T, int64_t k, const uint8_t *pk, size_t gstride, int rows,
                        const uint8_t *x, size_t xs, float *y, size_t ldy, bool accumulate)
{
    packed_micro(false, G, T, k, pk, gstride, rows, x, xs, y, ldy, accumulate);
}

AI void packed_q4_micro(int G, int T, int64_t k, const uint8_t *pk, size_t gstride, int rows,
                        const uint8_t *x, size_t xs, float *y, size_t ldy, bool accumulate)
{
    packed_micro(true, G, T, k, pk, gstride, rows, x, xs, y, ldy, accumulate);
}

/* ---- prefill: packed Q4_K panels ----------------------------------------------------- */

/*
 * Panel layout, per group of 8 rows (the last one zero-padded) and
 * super-block of 256 columns, PK4K_SB bytes:
 *   q[8][8][8][4]: sub-block j, chunk c, row i: values 4c..4c+3 of the
 *                  row's sub-block j as bytes 0..15 (the nibbles spread out);
 *   int32 sc[8][8]: sub-block j, row i: its 6-bit scale in both int16 halves;
 *   int32 mn[4][8]: pair p, row i: mins of sub-blocks 2p (low) and 2p+1 (high);
 *   f32 d[8], dmin[8]: the rows' super-block scales (0 for padding rows).
 * As in the Q4_0 panel, 4 activation bytes broadcast against a chunk give 8
 * rows' partial products; a sub-block's 8 chunks sum in int16 (8 x 2·15·128
 * < 2^15), one pmaddwd by the scale vector widens and scales them, and the
 * super-block sums in int32 (exact, as GGML's). The mins term is 4 pmaddwd
 * of the min pairs against the activation's 32-value sums. Packing spreads
 * the nibbles with an 8x8 dword transpose per 32 bytes of each row.
 */
#define PK4K_Q 2048
#define PK4K_SC 2048
#define PK4K_MN (PK4K_SC + 256)
#define PK4K_D (PK4K_MN + 128)
#define PK4K_DMIN (PK4K_D + 32)
#define PK4K_SB (PK4K_DMIN + 32)

static size_t pack_size_q4_K_avx2(int nr, int64_t k)
{
    return (size_t)((nr + 7) / 8) * (size_t)(k / PIO_QK_K) * PK4K_SB;
}

static void pack_q4_K_avx2(void *dst, const void *w, size_t ws, int nr, int64_t k)
{
    const __m256i m4 = _mm256_set1_epi8(15);
    const int64_t nsb = k / PIO_QK_K;
    int ng = (nr + 7) / 8, g, i, j, c;
    int64_t sb;
    for (g = 0; g < ng; g++) {
        for (sb = 0; sb < nsb; sb++) {
            uint8_t *o = (uint8_t *)dst + ((size_t)g * (size_t)nsb + (size_t)sb) * PK4K_SB;
            int32_t sc[8][8], mn[4][8];
            float d[8], dm[8];
            const pio_block_q4_K *blk[8];
            for (i = 0; i < 8; i++) {
                int r = 8 * g + i;
                blk[i] = r < nr ? (const pio_block_q4_K *)((const uint8_t *)w + (size_t)r * ws) + sb : NULL;
                q4k_panel_scales(blk[i] ? blk[i]->scales : NULL, i, sc, mn);
                d[i] = blk[i] ? f16(blk[i]->d) : 0.0f;
                dm[i] = blk[i] ? f16(blk[i]->dmin) : 0.0f;
            }
            for (j = 0; j < 4; j++) {       /* qs[32j..]: sub-blocks 2j (low nibbles), 2j+1 (high) */
                __m256 lo[8], hi[8];
                for (i = 0; i < 8; i++) {
                    __m256i v = blk[i] ? _mm256_loadu_si256((const __m256i *)(blk[i]->qs + 32 * j))
                                       : _mm256_setzero_si256();
                    lo[i] = _mm256_castsi256_ps(_mm256_and_si256(v, m4));
                    hi[i] = _mm256_castsi256_ps(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
                }
                transpose8(lo);
                transpose8(hi);
                for (c = 0; c < 8; c++) {
                    _mm256_store_ps((float *)(o + 256 * (2 * j) + 32 * c), lo[c]);
                    _mm256_store_ps((float *)(o + 256 * (2 * j + 1) + 32 * c), hi[c]);
                }
            }
            memcpy(o + PK4K_SC, sc, sizeof sc);
            memcpy(o + PK4K_MN, mn, sizeof mn);
            memcpy(o + PK4K_D, d, sizeof d);
            memcpy(o + PK4K_DMIN, dm, sizeof dm);
        }
    }
}

/* The same panel from Q4_K_X8 groups (nr a multiple of 8, groups 8·ws
 * apart): the qs chunks are already in panel order, split into nibbles. */
static void pack_q4_K_x8_avx2(void *dst, const void *w, size_t ws, int nr, int64_t k)
{
    const __m256i m4 = _mm256_set1_epi8(15);
    const int64_t nsb = k / PIO_QK_K;
    int ng = nr / 8, g, i, j, c;
    int64_t sb;
    for (g = 0; g < ng; g++) {
        const pio_block_q4_Kx8 *src = (const pio_block_q4_Kx8 *)((const uint8_t *)w + (size_t)g * 8 * ws);
        for (sb = 0; sb < nsb; sb++) {
            const pio_block_q4_Kx8 *b = &src[sb];
            uint8_t *o = (uint8_t *)dst + ((size_t)g * (size_t)nsb + (size_t)sb) * PK4K_SB;
            int32_t sc[8][8], mn[4][8];
            for (i = 0; i < 8; i++) {
                uint8_t raw[12];
                for (c = 0; c < 3; c++)
                    memcpy(raw + 4 * c, b->scales[c][i], 4);
                q4k_panel_scales(raw, i, sc, mn);
            }
            for (j = 0; j < 4; j++)
                for (c = 0; c < 8; c++) {
                    __m256i v = _mm256_loadu_si256((const __m256i *)b->qs[8 * j + c]);
                    _mm256_store_si256((__m256i *)(o + 256 * (2 * j) + 32 * c), _mm256_and_si256(v, m4));
                    _mm256_store_si256((__m256i *)(o + 256 * (2 * j + 1) + 32 * c),
                                       _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
                }
            memcpy(o + PK4K_SC, sc, sizeof sc);
            memcpy(o + PK4K_MN, mn, sizeof mn);
            _mm256_storeu_ps((float *)(o + PK4K_D), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b->d)));
            _mm256_storeu_ps((float *)(o + PK4K_DMIN), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b->dmin)));
        }
    }
}

/* G groups of 8 packed rows (G <= 2, `rows` valid) x T tokens (T <= 2). */
AI void packed_q4K_micro(int G, int T, int64_t k, const uint8_t *pk, size_t gstride, int rows,
                         const uint8_t *x, size_t xs, float *y, size_t ldy, bool accumulate)
{
    const int64_t nsb = k / PIO_QK_K;
    __m256 accf[2][2];
    int64_t sb;
    int gi, t, j, c, p;

#pragma GCC unroll 2
    for (gi = 0; gi < G; gi++)
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
            accf[gi][t] = _mm256_setzero_ps();
    for (sb = 0; sb < nsb; sb++) {
        const uint8_t *pb = pk + (size_t)sb * PK4K_SB;
        const pio_block_q8_K *xb[2];
        __m256i isum[2][2];
#pragma GCC unroll 2
        for (t = 0; t < T; t++) {
            xb[t] = (const pio_block_q8_K *)(x + (size_t)t * xs) + sb;
#pragma GCC unroll 2
            for (gi = 0; gi < G; gi++)
                isum[gi][t] = _mm256_setzero_si256();
        }
        for (j = 0; j < 8; j++) {
            __m256i a16[2][2];
#pragma GCC unroll 8
            for (c = 0; c < 8; c++) {
                __m256i wv[2];
#pragma GCC unroll 2
                for (gi = 0; gi < G; gi++)
                    wv[gi] = _mm256_load_si256((const __m256i *)(pb + (size_t)gi * gstride + 256 * j + 32 * c));
#pragma GCC unroll 2
                for (t = 0; t < T; t++) {
                    int32_t x4;
                    __m256i xv;
                    memcpy(&x4, xb[t]->qs + 32 * j + 4 * c, 4);
                    xv = _mm256_set1_epi32(x4);
#pragma GCC unroll 2
                    for (gi = 0; gi < G; gi++) {
                        __m256i q = _mm256_maddubs_epi16(wv[gi], xv);
                        a16[gi][t] = c == 0 ? q : _mm256_add_epi16(a16[gi][t], q);
                        PIN(a16[gi][t]);
                    }
                }
            }
#pragma GCC unroll 2
            for (gi = 0; gi < G; gi++) {
                __m256i scv = _mm256_load_si256((const __m256i *)(pb + (size_t)gi * gstride + PK4K_SC + 32 * j));
#pragma GCC unroll 2
                for (t = 0; t < T; t++)
                    isum[gi][t] = _mm256_add_epi32(isum[gi][t], _mm256_madd_epi16(a16[gi][t], scv));
            }
        }
#pragma GCC unroll 2
        for (t = 0; t < T; t++) {
            /* the 8 sub-blocks' activation sums as int16 pairs (2p, 2p+1) */
            __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)xb[t]->bsums),
                                        _mm_loadu_si128((const __m128i *)xb[t]->bsums + 1));
            __m256 dx = _mm256_set1_ps(xb[t]->d);
#pragma GCC unroll 2
            for (gi = 0; gi < G; gi++) {
                const uint8_t *pg = pb + (size_t)gi * gstride;
                __m256i mt = _mm256_setzero_si256();
#pragma GCC unroll 4
                for (p = 0; p < 4; p++) {
                    __m256i bp = bcast_dword(bs, p);
                    mt = _mm256_add_epi32(mt, _mm256_madd_epi16(
                        _mm256_load_si256((const __m256i *)(pg + PK4K_MN + 32 * p)), bp));
                }
                accf[gi][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[gi][t]),
                                              _mm256_mul_ps(_mm256_load_ps((const float *)(pg + PK4K_D)), dx),
                                              accf[gi][t]);
                accf[gi][t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mt),
                                               _mm256_mul_ps(_mm256_load_ps((const float *)(pg + PK4K_DMIN)), dx),
                                               accf[gi][t]);
            }
        }
    }
    store_groups(G, T, accf, rows, y, ldy, accumulate);
}

/* ---- prefill: packed Q6_K panels ----------------------------------------------------- */

/*
 * Panel layout, per group of 8 rows (the last one zero-padded) and
 * super-block of 256 columns, PK6K_SB bytes:
 *   q[8][8][8][4]: sub-block j (32 values), chunk c, row i: values 4c..4c+3
 *                  of the row's sub-block j as bytes 0..63 (q, before -32);
 *   int32 sc[16][8]: group g (16 values), row i: its int8 scale, sign-extended,
 *                  in both int16 halves;
 *   int32 sp[8][8]: pair p, row i: the scales of groups 2p (low) and 2p+1 (high);
 *   f32 d[8]:      the rows' super-block scales (0 for padding rows).
 * Two chunks' pmaddubsw sum in int16 (2 x 2·63·128 < 2^15); pmaddwd by the
 * group's scale vector widens each such pair of chunks. The -32 offset is subtracted in int32
 * as 32·Σ_g sc_g·Σx_g (8 pmaddwd of the scale pairs against the activation's
 * 16-value sums), so a row's super-block sum is exact, as GGML's.
 */
#define PK6K_SC 2048
#define PK6K_SP (PK6K_SC + 512)
#define PK6K_D (PK6K_SP + 256)
#define PK6K_SB (PK6K_D + 32)

static size_t pack_size_q6_K_avx2(int nr, int64_t k)
{
    return (size_t)((nr + 7) / 8) * (size_t)(k / PIO_QK_K) * PK6K_SB;
}

/* The 256 6-bit values of a Q6_K block, unsigned, in order (GGML dequantize_row_q6_K). */
AI void q6k_values(const pio_block_q6_K *b, uint8_t q[PIO_QK_K])
{
    int n, l;
    for (n = 0; n < 2; n++) {
        const uint8_t *ql = b->ql + 64 * n, *qh = b->qh + 32 * n;
        uint8_t *o = q + 128 * n;
        for (l = 0; l < 32; l++) {
            o[l] = (uint8_t)((ql[l] & 0xF) | ((qh[l] & 3) << 4));
            o[l + 32] = (uint8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
            o[l + 64] = (uint8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
            o[l + 96] = (uint8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
        }
    }
}

/* The panel of one group and super-block from the 8 rows' blocks (NULL: a padding row). */
static void pack_q6_K_column(uint8_t *o, const pio_block_q6_K *const blk[8])
{
    uint8_t q[8][PIO_QK_K] __attribute__((aligned(32)));
    int32_t sc[16][8], sp[8][8];
    float d[8];
    int i, j, c;
    for (i = 0; i < 8; i++) {
        const pio_block_q6_K *b = blk[i];
        if (b)
            q6k_values(b, q[i]);
        else
            memset(q[i], 0, sizeof q[i]);
        d[i] = b ? f16(b->d) : 0.0f;
        for (j = 0; j < 16; j++)            /* int16 lanes: the sign-extended scale */
            sc[j][i] = b ? (int32_t)((uint32_t)(uint16_t)b->scales[j] * 0x10001u) : 0;
        for (j = 0; j < 8; j++)
            sp[j][i] = b ? (int32_t)((uint32_t)(uint16_t)b->scales[2 * j] |
                                     (uint32_t)(uint16_t)b->scales[2 * j + 1] << 16) : 0;
    }
    for (j = 0; j < 8; j++) {
        __m256 v[8];
        for (i = 0; i < 8; i++)
            v[i] = _mm256_load_ps((const float *)(q[i] + 32 * j));
        transpose8(v);
        for (c = 0; c < 8; c++)
            _mm256_store_ps((float *)(o + 256 * j + 32 * c), v[c]);
    }
    memcpy(o + PK6K_SC, sc, sizeof sc);
    memcpy(o + PK6K_SP, sp, sizeof sp);
    memcpy(o + PK6K_D, d, sizeof d);
}

static void pack_q6_K_avx2(void *dst, const void *w, size_t ws, int nr, int64_t k)
{
    const int64_t nsb = k / PIO_QK_K;
    int ng = (nr + 7) / 8, g, i;
    int64_t sb;
    for (g = 0; g < ng; g++)
        for (sb = 0; sb < nsb; sb++) {
            const pio_block_q6_K *blk[8];
            for (i = 0; i < 8; i++) {
                int r = 8 * g + i;
                blk[i] = r < nr ? (const pio_block_q6_K *)((const uint8_t *)w + (size_t)r * ws) + sb : NULL;
            }
            pack_q6_K_column((uint8_t *)dst + ((size_t)g * (size_t)nsb + (size_t)sb) * PK6K_SB, blk);
        }
}

/* The same panel from Q6_K_X8 groups (nr a multiple of 8, groups 8·ws
 * apart): each block column gathered back into 8 Q6_K blocks first. */
static void pack_q6_K_x8_avx2(void *dst, const void *w, size_t ws, int nr, int64_t k)
{
    const int64_t nsb = k / PIO_QK_K;
    int ng = nr / 8, g, i;
    int64_t sb;
    for (g = 0; g < ng; g++) {
        const pio_block_q6_Kx8 *src = (const pio_block_q6_Kx8 *)((const uint8_t *)w + (size_t)g * 8 * ws);
        for (sb = 0; sb < nsb; sb++) {
            pio_block_q6_K plain[8];
            const pio_block_q6_K *blk[8];
            pio_x8_unpack(PIO_DTYPE_Q6_K_X8, plain, sizeof plain[0], &src[sb], PIO_QK_K);
            for (i = 0; i < 8; i++)
                blk[i] = &plain[i];
            pack_q6_K_column((uint8_t *)dst + ((size_t)g * (size_t)nsb + (size_t)sb) * PK6K_SB, blk);
        }
    }
}

/* G groups of 8 packed rows (G <= 2, `rows` valid) x T tokens (T <= 2). */
AI void packed_q6K_micro(int G, int T, int64_t k, const uint8_t *pk, size_t gstride, int rows,
                         const uint8_t *x, size_t xs, float *y, size_t ldy, bool accumulate)
{
    const int64_t nsb = k / PIO_QK_K;
    __m256 accf[2][2];
    int64_t sb;
    int gi, t, h, c, p;

#pragma GCC unroll 2
    for (gi = 0; gi < G; gi++)
#pragma GCC unroll 2
        for (t = 0; t < T; t++)
            accf[gi][t] = _mm256_setzero_ps();
    for (sb = 0; sb < nsb; sb++) {
        const uint8_t *pb = pk + (size_t)sb * PK6K_SB;
        const pio_block_q8_K *xb[2];
        __m256i isum[2][2];
#pragma GCC unroll 2
        for (t = 0; t < T; t++) {
            xb[t] = (const pio_block_q8_K *)(x + (size_t)t * xs) + sb;
#pragma GCC unroll 2
            for (gi = 0; gi < G; gi++)
                isum[gi][t] = _mm256_setzero_si256();
        }
        for (h = 0; h < 16; h++) {          /* group h: 16 values, chunks 4h..4h+3 of the super-block */
            __m256i a16[2][2][2];
#pragma GCC unroll 4
            for (c = 0; c < 4; c++) {
                __m256i wv[2];
#pragma GCC unroll 2
                for (gi = 0; gi < G; gi++)
                    wv[gi] = _mm256_load_si256((const __m256i *)(pb + (size_t)gi * gstride + 128 * h + 32 * c));
#pragma GCC unroll 2
                for (t = 0; t < T; t++) {
                    int32_t x4;
                    __m256i xv;
                    memcpy(&x4, xb[t]->qs + 16 * h + 4 * c, 4);
                    xv = _mm256_set1_epi32(x4);
#pragma GCC unroll 2
                    for (gi = 0; gi < G; gi++) {
                        __m256i q = _mm256_maddubs_epi16(wv[gi], xv);
                        a16[gi][t][c >> 1] = (c & 1) == 0 ? q : _mm256_add_epi16(a16[gi][t][c >> 1], q);
                        PIN(a16[gi][t][c >> 1]);
                    }
                }
            }
#pragma GCC unroll 2
            for (gi = 0; gi < G; gi++) {
                __m256i scv = _mm256_load_si256((const __m256i *)(pb + (size_t)gi * gstride + PK6K_SC + 32 * h));
#pragma GCC unroll 2
                for (t = 0; t < T; t++)         /* each int16 pair sum widened on its own */
                    isum[gi][t] = _mm256_add_epi32(_mm256_add_epi32(isum[gi][t], _mm256_madd_epi16(a16[gi][t][0], scv)),
                                                   _mm256_madd_epi16(a16[gi][t][1], scv));
            }
        }
#pragma GCC unroll 2
        for (t = 0; t < T; t++) {
            __m256 dx = _mm256_set1_ps(xb[t]->d);
#pragma GCC unroll 2
            for (gi = 0; gi < G; gi++) {
                const uint8_t *pg = pb + (size_t)gi * gstride;
                __m256i off = _mm256_setzero_si256();
#pragma GCC unroll 8
                for (p = 0; p < 8; p++) {
                    int32_t b2;
                    memcpy(&b2, xb[t]->bsums + 2 * p, 4);          /* Σx of groups 2p, 2p+1 */
                    off = _mm256_add_epi32(off, _mm256_madd_epi16(
                        _mm256_load_si256((const __m256i *)(pg + PK6K_SP + 32 * p)), _mm256_set1_epi32(b2)));
                }
                isum[gi][t] = _mm256_sub_epi32(isum[gi][t], _mm256_slli_epi32(off, 5));
                accf[gi][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[gi][t]),
                                              _mm256_mul_ps(_mm256_load_ps((const float *)(pg + PK6K_D)), dx),
                                              accf[gi][t]);
            }
        }
    }
    store_groups(G, T, accf, rows, y, ldy, accumulate);
}

#define PANEL_CALL(T, t, fn, G, g, rows)                                                   \
    fn(G, T, k, (const uint8_t *)w + (size_t)(g) * gstride, gstride, rows,                 \
       (const uint8_t *)x + (size_t)(t) * x_stride, x_stride,                              \
       y + (size_t)(t) * ldy + (size_t)(g) * 8, ldy, accumulate)

/* w: a panel of groups of 8 rows, BLOCK_BYTES per block of BLOCK columns
 * (pack_q_avx2, pack_q4_K_avx2, pack_q6_K_avx2; w_stride unused); 16 rows
 * x 2 tokens per micro-kernel. */
#define PANEL_TILE(name, fn, BLOCK, BLOCK_BYTES)                                           \
    static void name(TILE_ARGS)                                                            \
    {                                                                                      \
        const size_t gstride = (size_t)(k / (BLOCK)) * (BLOCK_BYTES);                      \
        int ng = (nr + 7) / 8, g;                                                          \
        (void)w_stride;                                                                    \
        for (g = 0; g + 2 <= ng; g += 2) {                                                 \
            int rows = nr - 8 * g < 16 ? nr - 8 * g : 16;                                  \
            PAIR_TOKENS(PANEL_CALL, fn, 2, g, rows);                                       \
        }                                                                                  \
        if (g < ng)                                                                        \
            PAIR_TOKENS(PANEL_CALL, fn, 1, g, nr - 8 * g);                                 \
    }

PANEL_TILE(tile_packed_q8_0_avx2, packed_q8_micro, 32, PK2_BLOCK)
PANEL_TILE(tile_packed_q4_0_avx2, packed_q4_micro, 32, PK2_BLOCK)
PANEL_TILE(tile_packed_q4_K_avx2, packed_q4K_micro, PIO_QK_K, PK4K_SB)
PANEL_TILE(tile_packed_q6_K_avx2, packed_q6K_micro, PIO_QK_K, PK6K_SB)

void pio_kernels_init_avx2(pio_kernels *kt)
{
    kt->pack_size[PIO_DTYPE_Q8_0] = pack_size_q_avx2;
    kt->pack[PIO_DTYPE_Q8_0] = pack_q8_0_avx2;
    kt->tile_packed[PIO_DTYPE_Q8_0] = tile_packed_q8_0_avx2;
    kt->pack_size[PIO_DTYPE_Q4_0] = pack_size_q_avx2;
    kt->pack[PIO_DTYPE_Q4_0] = pack_q4_0_avx2;
    kt->tile_packed[PIO_DTYPE_Q4_0] = tile_packed_q4_0_avx2;
    kt->tile[PIO_DTYPE_Q4_0_X8] = tile_q4_0_x8_avx2;
    kt->pack_size[PIO_DTYPE_Q4_0_X8] = pack_size_q_avx2;
    kt->pack[PIO_DTYPE_Q4_0_X8] = pack_q4_0_x8_avx2;
    kt->tile_packed[PIO_DTYPE_Q4_0_X8] = tile_packed_q4_0_avx2;
    kt->weight_layout[PIO_DTYPE_Q4_0] = PIO_DTYPE_Q4_0_X8;
    kt->tile[PIO_DTYPE_Q8_0_X8] = tile_q8_0_x8_avx2;
    kt->pack_size[PIO_DTYPE_Q8_0_X8] = pack_size_q_avx2;
    kt->pack[PIO_DTYPE_Q8_0_X8] = pack_q8_0_x8_avx2;
    kt->tile_packed[PIO_DTYPE_Q8_0_X8] = tile_packed_q8_0_avx2;
    kt->weight_layout[PIO_DTYPE_Q8_0] = PIO_DTYPE_Q8_0_X8;
    kt->tile[PIO_DTYPE_F32] = tile_f32_avx2;
    kt->pack_size[PIO_DTYPE_F32] = pack_size_float_avx2;
    kt->pack[PIO_DTYPE_F32] = pack_f32_avx2;
    kt->tile_packed[PIO_DTYPE_F32] = tile_packed_float_avx2;
    kt->pack_size[PIO_DTYPE_F16] = pack_size_float_avx2;
    kt->pack[PIO_DTYPE_F16] = pack_f16_avx2;
    kt->tile_packed[PIO_DTYPE_F16] = tile_packed_float_avx2;
    kt->pack_size[PIO_DTYPE_BF16] = pack_size_float_avx2;
    kt->pack[PIO_DTYPE_BF16] = pack_bf16_avx2;
    kt->tile_packed[PIO_DTYPE_BF16] = tile_packed_float_avx2;
    kt->tile[PIO_DTYPE_F16] = tile_f16_avx2;
    kt->tile[PIO_DTYPE_BF16] = tile_bf16_avx2;
    kt->tile[PIO_DTYPE_Q8_0] = tile_q8_0_avx2;
    kt->tile[PIO_DTYPE_Q4_0] = tile_q4_0_avx2;
    kt->tile[PIO_DTYPE_Q4_K] = tile_q4_K_avx2;
    kt->pack_size[PIO_DTYPE_Q4_K] = pack_size_q4_K_avx2;
    kt->pack[PIO_DTYPE_Q4_K] = pack_q4_K_avx2;
    kt->tile_packed[PIO_DTYPE_Q4_K] = tile_packed_q4_K_avx2;
    kt->tile[PIO_DTYPE_Q4_K_X8] = tile_q4_K_x8_avx2;
    kt->pack_size[PIO_DTYPE_Q4_K_X8] = pack_size_q4_K_avx2;
    kt->pack[PIO_DTYPE_Q4_K_X8] = pack_q4_K_x8_avx2;
    kt->tile_packed[PIO_DTYPE_Q4_K_X8] = tile_packed_q4_K_avx2;
    kt->weight_layout[PIO_DTYPE_Q4_K] = PIO_DTYPE_Q4_K_X8;
    kt->pack_size[PIO_DTYPE_Q6_K] = pack_size_q6_K_avx2;
    kt->pack[PIO_DTYPE_Q6_K] = pack_q6_K_avx2;
    kt->tile_packed[PIO_DTYPE_Q6_K] = tile_packed_q6_K_avx2;
    kt->tile[PIO_DTYPE_Q6_K] = tile_q6_K_avx2;
    kt->tile[PIO_DTYPE_Q6_K_X8] = tile_q6_K_x8_avx2;
    kt->pack_size[PIO_DTYPE_Q6_K_X8] = pack_size_q6_K_avx2;
    kt->pack[PIO_DTYPE_Q6_K_X8] = pack_q6_K_x8_avx2;
    kt->tile_packed[PIO_DTYPE_Q6_K_X8] = tile_packed_q6_K_avx2;
    kt->weight_layout[PIO_DTYPE_Q6_K] = PIO_DTYPE_Q6_K_X8;
    kt->quantize_q8 = quantize_q8_avx2;
    kt->quantize_q8_K = quantize_q8_K_avx2;
    kt->to_f32 = to_f32_avx2;
    kt->silu_mul = silu_mul_avx2;
}
