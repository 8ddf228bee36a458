/*
 * neon_impl.h - the NEON tile kernels (AArch64 Advanced SIMD), included by
 * neon.c (every ARMv8-A CPU) and neon_dotprod.c (ARMv8.2 DotProd, sdot).
 *
 * The includer defines PIO_NEON_DOTPROD (0 or 1) and PIO_NEON_NAME, the
 * suffix of the tile functions. What the kernels do:
 *   float W (F32, F16, BF16): y += W·x with FMA on 4 lanes, two accumulators
 *     per (row, token) over steps of 8 columns; f16 -> f32 by fcvtl, bf16 by
 *     a 16-bit shift (exact). The three dtypes share one micro-kernel, so
 *     F16/BF16 rows sum exactly as the f32 panel of prefill does.
 *   Q8_0, Q4_0 W with PIO_ACT_Q8 activations: per block of 32, the int32 sum
 *     of 32 int8 products (sdot with DotProd; else smull/smlal into int16
 *     pairs, |w·x| <= 128·127 so a pair fits, then sadalp), converted to f32
 *     and added by one FMA with d_w·d_x into a 4-lane accumulator.
 *   Q4_K, Q6_K W with Q8_K activations: the sub-block dot products with the
 *     same instructions, weighted by the 6/8-bit scales in int32; the scalar
 *     level's exact integer sums and its float expression per super-block,
 *     so the results equal the scalar level's bit for bit.
 * Micro-kernels are 4 rows x 2 tokens (then 4x1, 1x2, 1x1 at the edges);
 * every (row, token) runs the same operations in the same order whatever
 * the micro-kernel shape, so a token's row is the same alone or in a batch.
 * Weights stay in their plain layouts: no repacking (the X8 layouts are
 * built for x86 shuffles), and no prefetch (the hardware prefetchers of
 * AArch64 cores follow the row streams).
 */
#ifndef PIO_NEON_IMPL_H
#define PIO_NEON_IMPL_H

#include <arm_neon.h>
#include <string.h>

#include "kernels/dispatch.h"

#define AI static inline __attribute__((always_inline))
#define NEON_CAT2(a, b) a##_##b
#define NEON_CAT(a, b) NEON_CAT2(a, b)
#define NEON_FN(name) NEON_CAT(name, PIO_NEON_NAME)

/*
 * Every micro-kernel is micro(variant, R, T, k, w, w_stride, x, x_stride, y,
 * ldy, accumulate) for R rows (4 or 1) x T tokens (2 or 1), variant being a
 * constant that picks the weight format. NEON_TILE defines the tile kernel
 * `name` that walks an nr x nt tile over micro-kernels 4x2, 4x1, 1x2, 1x1.
 */
#define NEON_MICRO_AT(micro, v, R, T, r, t)                                                \
    micro(v, R, T, k, (const uint8_t *)w + (size_t)(r) * w_stride, w_stride,               \
          (const uint8_t *)x + (size_t)(t) * x_stride, x_stride,                           \
          y + (size_t)(t) * ldy + (size_t)(r), ldy, accumulate)
#define NEON_TILE(name, micro, v)                                                          \
    static void NEON_FN(name)(int64_t k, int nr, int nt, const void *w, size_t w_stride,  \
                              const void *x, size_t x_stride, float *y, size_t ldy,        \
                              bool accumulate)                                             \
    {                                                                                      \
        int r_ = 0, t_;                                                                    \
        for (; r_ + 4 <= nr; r_ += 4) {                                                    \
            for (t_ = 0; t_ + 2 <= nt; t_ += 2)                                            \
                NEON_MICRO_AT(micro, v, 4, 2, r_, t_);                                     \
            if (t_ < nt)                                                                   \
                NEON_MICRO_AT(micro, v, 4, 1, r_, t_);                                     \
        }                                                                                  \
        for (; r_ < nr; r_++) {                                                            \
            for (t_ = 0; t_ + 2 <= nt; t_ += 2)                                            \
                NEON_MICRO_AT(micro, v, 1, 2, r_, t_);                                     \
            if (t_ < nt)                                                                   \
                NEON_MICRO_AT(micro, v, 1, 1, r_, t_);                                     \
        }                                                                                  \
    }

/* y[t·ldy + r] (=, +=) v */
AI void neon_store(float *y, size_t ldy, int r, int t, float v, bool accumulate)
{
    float *p = y + (size_t)t * ldy + (size_t)r;
    *p = accumulate ? *p + v : v;
}

/* ---- float weights (neon.c only: sdot does not change them) ------------------ */
#if !PIO_NEON_DOTPROD

/* 8 weights of dtype dt at p as two f32x4 (columns 0-3, 4-7). */
AI void neon_load_w8(pio_dtype dt, const uint8_t *p, float32x4_t *lo, float32x4_t *hi)
{
    if (dt == PIO_DTYPE_F32) {
        *lo = vreinterpretq_f32_u8(vld1q_u8(p));
        *hi = vreinterpretq_f32_u8(vld1q_u8(p + 16));
    } else {
        uint16x8_t h = vreinterpretq_u16_u8(vld1q_u8(p));   /* byte loads: any alignment */
        if (dt == PIO_DTYPE_F16) {
            float16x8_t f = vreinterpretq_f16_u16(h);
            *lo = vcvt_f32_f16(vget_low_f16(f));
            *hi = vcvt_high_f32_f16(f);
        } else {
            *lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
            *hi = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
        }
    }
}

AI void neon_float_micro(pio_dtype dt, int R, int T, int64_t k, const uint8_t *w, size_t ws,
                         const uint8_t *xb, size_t xs, float *y, size_t ldy, bool accumulate)
{
    const size_t esz = dt == PIO_DTYPE_F32 ? 4 : 2;
    const size_t xf = xs / sizeof(float);
    const float *x = (const float *)xb;
    float32x4_t acc[4][2][2];
    int64_t i, c;
    int r, t;

    for (r = 0; r < R; r++)
        for (t = 0; t < T; t++)
            acc[r][t][0] = acc[r][t][1] = vdupq_n_f32(0.0f);
    for (i = 0; i + 8 <= k; i += 8) {
        float32x4_t x0[2], x1[2];
        for (t = 0; t < T; t++) {
            x0[t] = vld1q_f32(x + (size_t)t * xf + i);
            x1[t] = vld1q_f32(x + (size_t)t * xf + i + 4);
        }
        for (r = 0; r < R; r++) {
            float32x4_t w0, w1;
            neon_load_w8(dt, w + (size_t)r * ws + (size_t)i * esz, &w0, &w1);
            for (t = 0; t < T; t++) {
                acc[r][t][0] = vfmaq_f32(acc[r][t][0], w0, x0[t]);
                acc[r][t][1] = vfmaq_f32(acc[r][t][1], w1, x1[t]);
            }
        }
    }
    for (r = 0; r < R; r++)
        for (t = 0; t < T; t++) {
            float s = vaddvq_f32(vaddq_f32(acc[r][t][0], acc[r][t][1])), tw[8];
            pio_convert_to_f32(tw, w + (size_t)r * ws + (size_t)i * esz, dt, k - i);
            for (c = i; c < k; c++)
                s += tw[c - i] * x[(size_t)t * xf + c];
            neon_store(y, ldy, r, t, s, accumulate);
        }
}

NEON_TILE(tile_f32, neon_float_micro, PIO_DTYPE_F32)
NEON_TILE(tile_f16, neon_float_micro, PIO_DTYPE_F16)
NEON_TILE(tile_bf16, neon_float_micro, PIO_DTYPE_BF16)
#endif

/* ---- Q8_0 / Q4_0 against PIO_ACT_Q8 activations ------------------------------ */

/* Σ_{i<16} a[i]·b[i] + acc, in int32 lanes (any lane split of the sum);
 * |a[i]·b[i]| <= 128·127, so a pair of products fits int16. */
AI int32x4_t neon_dot16(int32x4_t acc, int8x16_t a, int8x16_t b)
{
#if PIO_NEON_DOTPROD
    return vdotq_s32(acc, a, b);
#else
    return vpadalq_s16(acc, vmlal_high_s8(vmull_s8(vget_low_s8(a), vget_low_s8(b)), a, b));
#endif
}

/* Σ_{i<16} a[i]·b[i] + Σ c[i]·d[i] in int32 lanes. */
AI int32x4_t neon_dot32(int8x16_t a, int8x16_t b, int8x16_t c, int8x16_t d)
{
    return neon_dot16(neon_dot16(vdupq_n_s32(0), a, b), c, d);
}

/* The 32 quants of block b of a Q8_0 (q4 = false) or Q4_0 row, as signed bytes. */
AI void neon_load_wq(bool q4, const uint8_t *row, int64_t b, int8x16_t *lo, int8x16_t *hi,
                     float *d)
{
    uint16_t h;
    if (q4) {
        const uint8_t *blk = row + (size_t)b * sizeof(pio_block_q4_0);
        uint8x16_t v = vld1q_u8(blk + 2);
        const int8x16_t eight = vdupq_n_s8(8);
        *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15))), eight);
        *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);
        memcpy(&h, blk, 2);
    } else {
        const uint8_t *blk = row + (size_t)b * sizeof(pio_block_q8_0);
        *lo = vld1q_s8((const int8_t *)(blk + 2));
        *hi = vld1q_s8((const int8_t *)(blk + 18));
        memcpy(&h, blk, 2);
    }
    *d = pio_f16_to_f32(h);
}

AI void neon_q_micro(bool q4, int R, int T, int64_t k, const uint8_t *w, size_t ws,
                     const uint8_t *x, size_t xs, float *y, size_t ldy, bool accumulate)
{
    const int64_t nb = k / 32;
    float32x4_t acc[4][2];
    int64_t b;
    int r, t;

    for (r = 0; r < R; r++)
        for (t = 0; t < T; t++)
            acc[r][t] = vdupq_n_f32(0.0f);
    for (b = 0; b < nb; b++) {
        int8x16_t x0[2], x1[2];
        float dx[2];
        for (t = 0; t < T; t++) {
            const uint8_t *g = x + (size_t)t * xs + (size_t)(b / 8) * PIO_ACT_Q8_GROUP_BYTES;
            x0[t] = vld1q_s8((const int8_t *)g + 32 * (b % 8));
            x1[t] = vld1q_s8((const int8_t *)g + 32 * (b % 8) + 16);
            memcpy(&dx[t], g + 256 + 4 * (b % 8), 4);
        }
        for (r = 0; r < R; r++) {
            int8x16_t w0, w1;
            float dw;
            neon_load_wq(q4, w + (size_t)r * ws, b, &w0, &w1, &dw);
            for (t = 0; t < T; t++)
                acc[r][t] = vfmaq_n_f32(acc[r][t], vcvtq_f32_s32(neon_dot32(w0, x0[t], w1, x1[t])),
                                        dw * dx[t]);
        }
    }
    for (r = 0; r < R; r++)
        for (t = 0; t < T; t++)
            neon_store(y, ldy, r, t, vaddvq_f32(acc[r][t]), accumulate);
}

NEON_TILE(tile_q8_0, neon_q_micro, false)
NEON_TILE(tile_q4_0, neon_q_micro, true)

/* ---- Q4_K / Q6_K against Q8_K activations -------------------------------------- */

/*
 * One super-block's term of a row's dot product, with the scalar level's
 * integer sums (exact) and its float expression, so the tiles give the
 * scalar level's results bit for bit.
 */
AI float neon_q4_K_term(const pio_block_q4_K *w, const pio_block_q8_K *x)
{
    const uint8x16_t m4 = vdupq_n_u8(15);
    int32x4_t isum = vdupq_n_s32(0);
    int32_t summ = 0;
    int p, j;
    for (j = 0; j < 8; j++) {           /* GGML get_scale_min_k4 */
        const uint8_t *q = w->scales;
        int m = j < 4 ? q[j + 4] & 63 : (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        summ += m * (x->bsums[2 * j] + x->bsums[2 * j + 1]);
    }
    for (p = 0; p < 4; p++) {           /* sub-blocks 2p (low nibbles), 2p+1 (high) */
        const uint8_t *q = w->scales;
        int e = 2 * p, o = 2 * p + 1;
        int sc0 = e < 4 ? q[e] & 63 : (q[e + 4] & 0xF) | ((q[e - 4] >> 6) << 4);
        int sc1 = o < 4 ? q[o] & 63 : (q[o + 4] & 0xF) | ((q[o - 4] >> 6) << 4);
        uint8x16_t v0 = vld1q_u8(w->qs + 32 * p), v1 = vld1q_u8(w->qs + 32 * p + 16);
        const int8_t *qx = x->qs + 64 * p;
        int32x4_t lo = neon_dot32(vreinterpretq_s8_u8(vandq_u8(v0, m4)), vld1q_s8(qx),
                                  vreinterpretq_s8_u8(vandq_u8(v1, m4)), vld1q_s8(qx + 16));
        int32x4_t hi = neon_dot32(vreinterpretq_s8_u8(vshrq_n_u8(v0, 4)), vld1q_s8(qx + 32),
                                  vreinterpretq_s8_u8(vshrq_n_u8(v1, 4)), vld1q_s8(qx + 48));
        isum = vmlaq_n_s32(vmlaq_n_s32(isum, lo, sc0), hi, sc1);
    }
    return x->d * (pio_f16_to_f32(w->d) * (float)vaddvq_s32(isum) -
                   pio_f16_to_f32(w->dmin) * (float)summ);
}

AI float neon_q6_K_term(const pio_block_q6_K *w, const pio_block_q8_K *x)
{
    const uint8x16_t m4 = vdupq_n_u8(15), m3 = vdupq_n_u8(3);
    const int8x16_t off = vdupq_n_s8(32);
    int32x4_t isum = vdupq_n_s32(0);
    int h, c;
    for (h = 0; h < 2; h++) {
        const uint8_t *qh = w->qh + 32 * h;
        uint8x16_t h0 = vld1q_u8(qh), h1 = vld1q_u8(qh + 16);
        for (c = 0; c < 4; c++) {
            const uint8_t *lo = w->ql + 64 * h + 32 * (c & 1);
            const int8_t *qx = x->qs + 128 * h + 32 * c;
            uint8x16_t l0 = vld1q_u8(lo), l1 = vld1q_u8(lo + 16);
            int8x16_t q0, q1;
            if (c >> 1) {
                l0 = vshrq_n_u8(l0, 4);
                l1 = vshrq_n_u8(l1, 4);
            } else {
                l0 = vandq_u8(l0, m4);
                l1 = vandq_u8(l1, m4);
            }
            /* | ((qh >> 2c) & 3) << 4, then - 32: the signed 6-bit quant */
            q0 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(l0, vshlq_n_u8(vandq_u8(
                     vshlq_u8(h0, vdupq_n_s8((int8_t)(-2 * c))), m3), 4))), off);
            q1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(l1, vshlq_n_u8(vandq_u8(
                     vshlq_u8(h1, vdupq_n_s8((int8_t)(-2 * c))), m3), 4))), off);
            isum = vmlaq_n_s32(isum, neon_dot16(vdupq_n_s32(0), q0, vld1q_s8(qx)),
                               w->scales[8 * h + 2 * c]);
            isum = vmlaq_n_s32(isum, neon_dot16(vdupq_n_s32(0), q1, vld1q_s8(qx + 16)),
                               w->scales[8 * h + 2 * c + 1]);
        }
    }
    return x->d * pio_f16_to_f32(w->d) * (float)vaddvq_s32(isum);
}

/* R rows x T tokens of super-block terms (Q6_K when q6, else Q4_K), summed
 * per (row, token) in block order. */
AI void neon_k_micro(bool q6, int R, int T, int64_t k, const uint8_t *w, size_t ws,
                     const uint8_t *x, size_t xs, float *y, size_t ldy, bool accumulate)
{
    float s[4][2] = { { 0 } };
    int64_t b;
    int r, t;
    for (b = 0; b < k / PIO_QK_K; b++)
        for (r = 0; r < R; r++)
            for (t = 0; t < T; t++) {
                const uint8_t *wr = w + (size_t)r * ws;
                const pio_block_q8_K *xt = (const pio_block_q8_K *)(x + (size_t)t * xs) + b;
                s[r][t] += q6 ? neon_q6_K_term((const pio_block_q6_K *)wr + b, xt)
                              : neon_q4_K_term((const pio_block_q4_K *)wr + b, xt);
            }
    for (r = 0; r < R; r++)
        for (t = 0; t < T; t++)
            neon_store(y, ldy, r, t, s[r][t], accumulate);
}

NEON_TILE(tile_q4_K, neon_k_micro, false)
NEON_TILE(tile_q6_K, neon_k_micro, true)

#endif
