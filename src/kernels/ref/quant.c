/*
 * quant.c - scalar reference code for the GGML block formats (quant.h).
 *
 * Every function here reproduces GGML's reference C code (ggml-quants.c:
 * quantize_row_*_ref, dequantize_row_*; ggml-cpu/quants.c: the *_generic
 * dot products) operation for operation, so the blocks we write are the
 * bytes llama.cpp writes for the same input, and the dot products are the
 * same floats. That means: the same f32 operations in the same order, the
 * same integer conversions (truncation to int8/uint8 included) and the same
 * rounding helpers (roundf, nearest_int's magic-number trick, IEEE f16 with
 * round-to-nearest-even). Do not "simplify" an expression here without
 * re-running tests/test_quant.c: a reordered sum changes the output bits.
 *
 * The fast kernels (src/kernels/x86/...) are diffed against these.
 */
#include "kernels/kernels.h"
#include "kernels/quant.h"

#include <math.h>
#include <string.h>

/*
 * Bit-exactness needs each a*b+c rounded twice, as GGML's reference build
 * does (it is compiled without FMA). Only matters when this file is built
 * for a target that has FMA (-march=native on a recent x86).
 */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__) && defined(__FP_FAST_FMAF)
#pragma GCC optimize("fp-contract=off")
#endif

#define Q_GROUP_MAX_EPS 1e-15f

/*
 * The lane-parallel scale searches below also get an AVX2 clone, picked at
 * load time (ifunc): 8 lanes per register instead of SSE2's 4. AVX2 alone
 * brings no FMA, so the arithmetic (and the output bits) stay the same.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define Q_LANES_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define Q_LANES_CLONES
#endif

static inline int q_min(int a, int b) { return a < b ? a : b; }
static inline int q_max(int a, int b) { return a > b ? a : b; }

/*
 * Round to the nearest integer, ties to even, for |f| <= 2^22: adding
 * 1.5*2^23 puts the integer part in the low mantissa bits. Out of that range
 * the result is garbage, as in GGML (which only asserts in debug builds).
 */
static inline int q_nearest_int(float f)
{
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* Sub-block scale j and min of a Q4_K block's packed 12 bytes (6 bits each). */
static inline void q_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

/* ---- Q8_0 ---------------------------------------------------------------- */

void pio_quantize_row_q8_0(const float *x, void *vy, int64_t k)
{
    pio_block_q8_0 *y = vy;
    int64_t nb = k / PIO_QK8_0;

    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * PIO_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < PIO_QK8_0; j++) {
            float a = fabsf(xb[j]);
            amax = amax > a ? amax : a;
        }
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = pio_f32_to_f16(d);
        for (int j = 0; j < PIO_QK8_0; j++)
            y[i].qs[j] = (int8_t)roundf(xb[j] * id);
    }
}

static void q_dequantize_q8_0(const pio_block_q8_0 *x, float *y, int64_t k)
{
    int64_t nb = k / PIO_QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = pio_f16_to_f32(x[i].d);
        for (int j = 0; j < PIO_QK8_0; j++)
            y[i * PIO_QK8_0 + j] = x[i].qs[j] * d;
    }
}

/* ---- Q4_0 ---------------------------------------------------------------- */

void pio_quantize_row_q4_0(const float *x, void *vy, int64_t k)
{
    pio_block_q4_0 *y = vy;
    int64_t nb = k / PIO_QK4_0;

    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * PIO_QK4_0;
        float amax = 0.0f, max = 0.0f;        /* max: the signed value of largest magnitude */
        for (int j = 0; j < PIO_QK4_0; j++) {
            if (amax < fabsf(xb[j])) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = pio_f32_to_f16(d);
        for (int j = 0; j < PIO_QK4_0 / 2; j++) {
            const float x0 = xb[j] * id;
            const float x1 = xb[PIO_QK4_0 / 2 + j] * id;
            const uint8_t q0 = (uint8_t)q_min(15, (int8_t)(x0 + 8.5f));
            const uint8_t q1 = (uint8_t)q_min(15, (int8_t)(x1 + 8.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void q_dequantize_q4_0(const pio_block_q4_0 *x, float *y, int64_t k)
{
    int64_t nb = k / PIO_QK4_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = pio_f16_to_f32(x[i].d);
        for (int j = 0; j < PIO_QK4_0 / 2; j++) {
            const int x0 = (x[i].qs[j] & 0x0F) - 8;
            const int x1 = (x[i].qs[j] >> 4) - 8;
            y[i * PIO_QK4_0 + j] = x0 * d;
            y[i * PIO_QK4_0 + j + PIO_QK4_0 / 2] = x1 * d;
        }
    }
}

/* ---- X8 layouts: 8 rows interleaved (layout in quant.h) -------------------- */

/* The plain block of an X8 layout: values, bytes, and where its f16 fields
 * (each stored as 8 values, first in the block column) and the rest (in
 * 4-byte chunks, after them) lie in the plain block. */
typedef struct x8_shape {
    int64_t elems;
    size_t bytes;
    int halves, half_off;
    int chunks, chunk_off;
} x8_shape;

static x8_shape x8_shape_of(pio_dtype x8)
{
    pio_dtype base = pio_x8_base(x8);
    x8_shape sh;
    sh.elems = pio_dtype_block_elems(base);
    sh.bytes = pio_dtype_block_bytes(base);
    sh.halves = base == PIO_DTYPE_Q4_K ? 2 : 1;
    sh.chunks = (int)(sh.bytes - 2 * (size_t)sh.halves) / 4;
    /* Q6_K's d closes the block; the others' f16 fields open it */
    sh.half_off = base == PIO_DTYPE_Q6_K ? 4 * sh.chunks : 0;
    sh.chunk_off = base == PIO_DTYPE_Q6_K ? 0 : 2 * sh.halves;
    return sh;
}

/* Block b of row i from the group's block column gc <-> the plain block blk. */
static void x8_gather(const x8_shape *sh, const uint8_t *gc, int i, uint8_t *blk)
{
    for (int h = 0; h < sh->halves; h++)
        memcpy(blk + sh->half_off + 2 * h, gc + 16 * h + 2 * i, 2);
    for (int c = 0; c < sh->chunks; c++)
        memcpy(blk + sh->chunk_off + 4 * c, gc + 16 * sh->halves + 32 * c + 4 * i, 4);
}

static void x8_scatter(const x8_shape *sh, uint8_t *gc, int i, const uint8_t *blk)
{
    for (int h = 0; h < sh->halves; h++)
        memcpy(gc + 16 * h + 2 * i, blk + sh->half_off + 2 * h, 2);
    for (int c = 0; c < sh->chunks; c++)
        memcpy(gc + 16 * sh->halves + 32 * c + 4 * i, blk + sh->chunk_off + 4 * c, 4);
}

void pio_x8_pack(pio_dtype x8, void *dst, const void *src, size_t src_stride, int64_t k)
{
    const x8_shape sh = x8_shape_of(x8);
    uint8_t *o = dst;

    for (int64_t b = 0; b < k / sh.elems; b++, o += PIO_X8_ROWS * sh.bytes)
        for (int i = 0; i < PIO_X8_ROWS; i++)
            x8_scatter(&sh, o, i, (const uint8_t *)src + (size_t)i * src_stride + (size_t)b * sh.bytes);
}

void pio_x8_unpack(pio_dtype x8, void *dst, size_t dst_stride, const void *src, int64_t k)
{
    const x8_shape sh = x8_shape_of(x8);
    const uint8_t *g = src;

    for (int64_t b = 0; b < k / sh.elems; b++, g += PIO_X8_ROWS * sh.bytes)
        for (int i = 0; i < PIO_X8_ROWS; i++)
            x8_gather(&sh, g, i, (uint8_t *)dst + (size_t)i * dst_stride + (size_t)b * sh.bytes);
}

void pio_x8_gather_block(pio_dtype x8, const void *column, int i, void *blk)
{
    const x8_shape sh = x8_shape_of(x8);
    x8_gather(&sh, column, i, blk);
}

void pio_x8_dequantize_row(pio_dtype x8, const void *group, int i, float *y, int64_t k)
{
    const x8_shape sh = x8_shape_of(x8);
    const uint8_t *g = group;
    uint8_t blk[256];                           /* one plain block (<= 210 bytes) */

    for (int64_t b = 0; b < k / sh.elems; b++, g += PIO_X8_ROWS * sh.bytes, y += sh.elems) {
        x8_gather(&sh, g, i, blk);
        pio_dequantize_row(pio_x8_base(x8), blk, y, sh.elems);
    }
}

/* ---- Q4_K ---------------------------------------------------------------- */

/*
 * GGML's make_qkx2_quants(32, nmax 15, weights av_x + |x|, rmin -1, rdelta
 * 0.1, nstep 20) for the 8 sub-blocks of a Q4_K super-block at once: fit
 * x[i] ~ scale·L[i] - the_min, L in [0, 15], minimizing the weighted squared
 * error over 21 trial scales (each one refit by least squares).
 *
 * The 8 sub-blocks are independent, so they run in lockstep as 8 lanes
 * ([i][lane] arrays, inner loops over lanes): every lane does exactly GGML's
 * operations in GGML's order, so the results are bit-identical, but the
 * compiler can use vector registers across lanes (4-8x faster than one
 * sub-block at a time, whose sums are serial chains). Branches become
 * per-lane selects; lanes where GGML returns early compute garbage that is
 * discarded at the end. tests/test_quant.c diffs this against a direct
 * transliteration of GGML and against blocks made by ggml itself.
 */
#define Q4K_LANES 8
#define Q4K_N 32

Q_LANES_CLONES static void q4k_scales_mins(const float *x, float *scales, float *the_min, uint8_t *L)
{
    const int nmax = 15, nstep = 20;
    const float rmin = -1.f, rdelta = 0.1f;
    float xt[Q4K_N][Q4K_LANES], wt[Q4K_N][Q4K_LANES], xm[Q4K_N][Q4K_LANES];
    int32_t Lt[Q4K_N][Q4K_LANES], Lc[Q4K_N][Q4K_LANES];
    float mn[Q4K_LANES], mx[Q4K_LANES], sum_w[Q4K_LANES], sum_x[Q4K_LANES], scale[Q4K_LANES];
    float best[Q4K_LANES], range[Q4K_LANES], isc[Q4K_LANES], sx2[Q4K_LANES];
    float sl[Q4K_LANES], sl2[Q4K_LANES], sxl[Q4K_LANES], ts[Q4K_LANES], tm[Q4K_LANES], ce[Q4K_LANES];
    float dd[Q4K_LANES], mn0[Q4K_LANES];
    bool flat[Q4K_LANES];     /* max == min: GGML returns scale 0, L = 0 at once */
    int i, b;

    /* weights: av_x + |x|, av_x = sqrt(mean x²) of the sub-block */
    for (i = 0; i < Q4K_N; i++)
        for (b = 0; b < Q4K_LANES; b++)
            xt[i][b] = x[Q4K_N * b + i];
    for (b = 0; b < Q4K_LANES; b++)
        sx2[b] = 0;
    for (i = 0; i < Q4K_N; i++)
#pragma omp simd
        for (b = 0; b < Q4K_LANES; b++)
            sx2[b] += xt[i][b] * xt[i][b];
    for (b = 0; b < Q4K_LANES; b++)
        sx2[b] = sqrtf(sx2[b] / 32);
    for (i = 0; i < Q4K_N; i++)
#pragma omp simd
        for (b = 0; b < Q4K_LANES; b++)
            wt[i][b] = sx2[b] + fabsf(xt[i][b]);

    /* min (<= 0), max, Σw, Σw·x */
    for (b = 0; b < Q4K_LANES; b++) {
        mn[b] = mx[b] = xt[0][b];
        sum_w[b] = wt[0][b];
        sum_x[b] = sum_w[b] * xt[0][b];
    }
    for (i = 1; i < Q4K_N; i++)
#pragma omp simd
        for (b = 0; b < Q4K_LANES; b++) {
            float xi = xt[i][b], w = wt[i][b];
            mn[b] = xi < mn[b] ? xi : mn[b];
            mx[b] = xi > mx[b] ? xi : mx[b];
            sum_w[b] += w;
            sum_x[b] += w * xi;
        }
#pragma omp simd
    for (b = 0; b < Q4K_LANES; b++) {
        mn[b] = mn[b] > 0 ? 0 : mn[b];
        mn0[b] = mn[b];
        flat[b] = mx[b] == mn[b];
        range[b] = mx[b] - mn[b];
        isc[b] = nmax / range[b];
        scale[b] = 1 / isc[b];
        best[b] = 0;
    }

    /* the plain scale nmax/(max-min) and its error */
    for (i = 0; i < Q4K_N; i++)
#pragma omp simd
        for (b = 0; b < Q4K_LANES; b++) {
            int l;
            float diff;
            xm[i][b] = xt[i][b] - mn[b];
            l = q_nearest_int(isc[b] * xm[i][b]);
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            Lt[i][b] = l;
            diff = scale[b] * l + mn[b] - xt[i][b];
            diff = diff * diff;
            best[b] += wt[i][b] * diff;
        }

    for (int is = 0; is <= nstep; is++) {
        const float num = rmin + rdelta * is + nmax;
        int improved = 0;
#pragma omp simd
        for (b = 0; b < Q4K_LANES; b++) {
            isc[b] = num / range[b];
            sl[b] = sl2[b] = sxl[b] = 0;
        }
        for (i = 0; i < Q4K_N; i++)
#pragma omp simd
            for (b = 0; b < Q4K_LANES; b++) {
                int l = q_nearest_int(isc[b] * xm[i][b]);
                float w = wt[i][b];
                l = l < 0 ? 0 : l > nmax ? nmax : l;
                Lc[i][b] = l;
                sl[b] += w * l;
                sl2[b] += w * l * l;
                sxl[b] += w * l * xt[i][b];
            }
#pragma omp simd
        for (b = 0; b < Q4K_LANES; b++) {
            float D = sum_w[b] * sl2[b] - sl[b] * sl[b];
            float s = (sum_w[b] * sxl[b] - sum_x[b] * sl[b]) / D;
            float m = (sl2[b] * sum_x[b] - sl[b] * sxl[b]) / D;
            float s0 = sxl[b] / sl2[b];       /* the fit with the min pinned at 0 */
            ts[b] = m > 0 ? s0 : s;
            tm[b] = m > 0 ? 0 : m;
            ce[b] = 0;
            dd[b] = D;
        }
        for (i = 0; i < Q4K_N; i++)
#pragma omp simd
            for (b = 0; b < Q4K_LANES; b++) {
                float diff = ts[b] * Lc[i][b] + tm[b] - xt[i][b];
                diff = diff * diff;
                ce[b] += wt[i][b] * diff;
            }
        for (b = 0; b < Q4K_LANES; b++) {
            if (dd[b] > 0 && ce[b] < best[b]) {
                best[b] = ce[b];
                scale[b] = ts[b];
                mn[b] = tm[b];
                range[b] = mx[b] - mn[b];
                for (i = 0; i < Q4K_N; i++)
                    Lt[i][b] = Lc[i][b];
                improved = 1;
            }
        }
        if (improved)           /* x - min for the lanes whose min moved */
            for (i = 0; i < Q4K_N; i++)
#pragma omp simd
                for (b = 0; b < Q4K_LANES; b++)
                    xm[i][b] = xt[i][b] - mn[b];
    }

    for (b = 0; b < Q4K_LANES; b++) {
        for (i = 0; i < Q4K_N; i++)
            L[Q4K_N * b + i] = flat[b] ? 0 : (uint8_t)Lt[i][b];
        scales[b] = flat[b] ? 0.f : scale[b];
        the_min[b] = flat[b] ? -mn0[b] : -mn[b];
    }
}

void pio_quantize_row_q4_K(const float *x, void *vy, int64_t k)
{
    pio_block_q4_K *y = vy;
    int64_t nb = k / PIO_QK_K;
    uint8_t L[PIO_QK_K];
    float mins[PIO_QK_K / 32];
    float scales[PIO_QK_K / 32];

    for (int64_t i = 0; i < nb; i++) {
        float max_scale = 0, max_min = 0;   /* scales and mins are >= 0 */
        q4k_scales_mins(x, scales, mins, L);
        for (int j = 0; j < PIO_QK_K / 32; j++) {
            if (scales[j] > max_scale)
                max_scale = scales[j];
            if (mins[j] > max_min)
                max_min = mins[j];
        }

        /* 6-bit scales and mins relative to the two f16 super-block scales */
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < PIO_QK_K / 32; j++) {
            uint8_t ls = (uint8_t)q_nearest_int(inv_scale * scales[j]);
            uint8_t lm = (uint8_t)q_nearest_int(inv_min * mins[j]);
            ls = (uint8_t)q_min(63, ls);
            lm = (uint8_t)q_min(63, lm);
            if (j < 4) {
                y[i].scales[j] = ls;
                y[i].scales[j + 4] = lm;
            } else {
                y[i].scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                y[i].scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
                y[i].scales[j - 0] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        y[i].d = pio_f32_to_f16(max_scale / 63.f);
        y[i].dmin = pio_f32_to_f16(max_min / 63.f);

        /* requantize against the scales as stored */
        for (int j = 0; j < PIO_QK_K / 32; j++) {
            uint8_t sc, m;
            q_scale_min_k4(j, y[i].scales, &sc, &m);
            const float d = pio_f16_to_f32(y[i].d) * sc;
            if (!d)
                continue;
            const float dm = pio_f16_to_f32(y[i].dmin) * m;
            for (int ii = 0; ii < 32; ii++) {
                int l = q_nearest_int((x[32 * j + ii] + dm) / d);
                L[32 * j + ii] = (uint8_t)q_max(0, q_min(15, l));
            }
        }

        uint8_t *q = y[i].qs;
        for (int j = 0; j < PIO_QK_K; j += 64) {
            for (int l = 0; l < 32; l++)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
            q += 32;
        }
        x += PIO_QK_K;
    }
}

static void q_dequantize_q4_K(const pio_block_q4_K *x, float *y, int64_t k)
{
    int64_t nb = k / PIO_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q = x[i].qs;
        const float d = pio_f16_to_f32(x[i].d);
        const float min = pio_f16_to_f32(x[i].dmin);
        int is = 0;
        for (int j = 0; j < PIO_QK_K; j += 64) {
            uint8_t sc, m;
            q_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            q_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (q[l] >> 4) - m2;
            q += 32;
            is += 2;
        }
    }
}

/* ---- Q6_K ---------------------------------------------------------------- */

/*
 * GGML's make_qx_quants(16, nmax 32, rmse_type 1, no importance weights) for
 * the 16 sub-blocks of a Q6_K super-block, in lockstep as 16 lanes (see
 * q4k_scales_mins): signed levels L-32 in [-32, 31], weights x², the plain
 * scale -nmax/max and 18 trial scales around it, each refit by least
 * squares; a trial replaces the best when Σlx²/Σl² is larger. Returns the
 * scales (negative where the largest-magnitude value is positive) and L.
 */
#define Q6K_LANES 16
#define Q6K_N 16

Q_LANES_CLONES static void q6k_scales(const float *x, float *scales, int8_t *L)
{
    const int nmax = 32;
    float xt[Q6K_N][Q6K_LANES], wt[Q6K_N][Q6K_LANES];
    int32_t Lt[Q6K_N][Q6K_LANES], Lc[Q6K_N][Q6K_LANES];
    float mx[Q6K_LANES], amax[Q6K_LANES], isc[Q6K_LANES], slx[Q6K_LANES], sl2[Q6K_LANES];
    float scale[Q6K_LANES], best[Q6K_LANES];
    int i, b;

    for (i = 0; i < Q6K_N; i++)
        for (b = 0; b < Q6K_LANES; b++)
            xt[i][b] = x[Q6K_N * b + i];
#pragma omp simd
    for (b = 0; b < Q6K_LANES; b++)
        mx[b] = amax[b] = 0;
    for (i = 0; i < Q6K_N; i++)
#pragma omp simd
        for (b = 0; b < Q6K_LANES; b++) {
            float ax = fabsf(xt[i][b]);
            bool gt = ax > amax[b];
            mx[b] = gt ? xt[i][b] : mx[b];
            amax[b] = gt ? ax : amax[b];
            wt[i][b] = xt[i][b] * xt[i][b];
        }

    /* the plain scale */
#pragma omp simd
    for (b = 0; b < Q6K_LANES; b++) {
        isc[b] = -nmax / mx[b];
        slx[b] = sl2[b] = 0;
    }
    for (i = 0; i < Q6K_N; i++)
#pragma omp simd
        for (b = 0; b < Q6K_LANES; b++) {
            int l = q_nearest_int(isc[b] * xt[i][b]);
            float w = wt[i][b];
            l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
            Lt[i][b] = l + nmax;
            slx[b] += w * xt[i][b] * l;
            sl2[b] += w * l * l;
        }
#pragma omp simd
    for (b = 0; b < Q6K_LANES; b++) {
        scale[b] = sl2[b] ? slx[b] / sl2[b] : 0.0f;
        best[b] = scale[b] * slx[b];
    }

    for (int is = -9; is <= 9; is++) {
        const float num = -(nmax + 0.1f * is);
        if (is == 0)
            continue;
#pragma omp simd
        for (b = 0; b < Q6K_LANES; b++) {
            isc[b] = num / mx[b];
            slx[b] = sl2[b] = 0;
        }
        for (i = 0; i < Q6K_N; i++)
#pragma omp simd
            for (b = 0; b < Q6K_LANES; b++) {
                int l = q_nearest_int(isc[b] * xt[i][b]);
                float w = wt[i][b];
                l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
                Lc[i][b] = l + nmax;
                slx[b] += w * xt[i][b] * l;
                sl2[b] += w * l * l;
            }
        for (b = 0; b < Q6K_LANES; b++) {
            if (sl2[b] > 0 && slx[b] * slx[b] > best[b] * sl2[b]) {
                for (i = 0; i < Q6K_N; i++)
                    Lt[i][b] = Lc[i][b];
                scale[b] = slx[b] / sl2[b];
                best[b] = scale[b] * slx[b];
            }
        }
    }

    /* all-but-zero sub-blocks: GGML returns scale 0, L = 0 */
    for (b = 0; b < Q6K_LANES; b++) {
        bool zero = amax[b] < Q_GROUP_MAX_EPS;
        for (i = 0; i < Q6K_N; i++)
            L[Q6K_N * b + i] = zero ? 0 : (int8_t)Lt[i][b];
        scales[b] = zero ? 0.f : scale[b];
    }
}

void pio_quantize_row_q6_K(const float *x, void *vy, int64_t k)
{
    pio_block_q6_K *y = vy;
    int64_t nb = k / PIO_QK_K;
    int8_t L[PIO_QK_K];
    float scales[PIO_QK_K / 16];

    for (int64_t i = 0; i < nb; i++) {
        float max_scale = 0, max_abs_scale = 0;
        q6k_scales(x, scales, L);
        for (int ib = 0; ib < PIO_QK_K / 16; ib++) {
            const float scale = scales[ib];
            const float abs_scale = fabsf(scale);
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scale;
            }
        }
        if (max_abs_scale < Q_GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            x += PIO_QK_K;
            continue;
        }

        float iscale = -128.f / max_scale;
        y[i].d = pio_f32_to_f16(1 / iscale);
        for (int ib = 0; ib < PIO_QK_K / 16; ib++)
            y[i].scales[ib] = (int8_t)q_min(127, q_nearest_int(iscale * scales[ib]));

        for (int j = 0; j < PIO_QK_K / 16; j++) {
            float d = pio_f16_to_f32(y[i].d) * y[i].scales[j];
            if (!d)
                continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = q_nearest_int(x[16 * j + ii] / d);
                l = q_max(-32, q_min(31, l));
                L[16 * j + ii] = (int8_t)(l + 32);
            }
        }

        uint8_t *ql = y[i].ql;
        uint8_t *qh = y[i].qh;
        for (int j = 0; j < PIO_QK_K; j += 128) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l + 0] & 0xF;
                const uint8_t q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF;
                const uint8_t q4 = L[j + l + 96] & 0xF;
                ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
        x += PIO_QK_K;
    }
}

static void q_dequantize_q6_K(const pio_block_q6_K *x, float *y, int64_t k)
{
    int64_t nb = k / PIO_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d = pio_f16_to_f32(x[i].d);
        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int n = 0; n < PIO_QK_K; n += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                const int8_t q1 = (int8_t)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int8_t q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int8_t q3 = (int8_t)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

/* ---- Q8_K (activations) ---------------------------------------------------- */

void pio_quantize_row_q8_K(const float *x, void *vy, int64_t k)
{
    pio_block_q8_K *y = vy;
    int64_t nb = k / PIO_QK_K;

    for (int64_t i = 0; i < nb; i++) {
        float max = 0, amax = 0;
        for (int j = 0; j < PIO_QK_K; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (!amax) {
            /* GGML leaves bsums unset here; we zero them */
            memset(&y[i], 0, sizeof y[i]);
            x += PIO_QK_K;
            continue;
        }
        /* -127 rather than -128: GGML's choice, kept for identical blocks */
        const float iscale = -127.f / max;
        for (int j = 0; j < PIO_QK_K; j++) {
            int v = q_nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)q_min(127, v);
        }
        for (int j = 0; j < PIO_QK_K / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++)
                sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
        x += PIO_QK_K;
    }
}

static void q_dequantize_q8_K(const pio_block_q8_K *x, float *y, int64_t k)
{
    int64_t nb = k / PIO_QK_K;
    for (int64_t i = 0; i < nb; i++)
        for (int j = 0; j < PIO_QK_K; j++)
            *y++ = x[i].d * x[i].qs[j];
}

/* ---- dispatch -------------------------------------------------------------- */

void pio_dequantize_row(pio_dtype dt, const void *x, float *y, int64_t k)
{
    switch (dt) {
    case PIO_DTYPE_Q8_0: q_dequantize_q8_0(x, y, k); break;
    case PIO_DTYPE_Q4_0: q_dequantize_q4_0(x, y, k); break;
    case PIO_DTYPE_Q4_K: q_dequantize_q4_K(x, y, k); break;
    case PIO_DTYPE_Q6_K: q_dequantize_q6_K(x, y, k); break;
    case PIO_DTYPE_Q8_K: q_dequantize_q8_K(x, y, k); break;
    default: pio_convert_to_f32(y, x, dt, k); break;
    }
}

bool pio_dtype_can_quantize(pio_dtype dt)
{
    switch (dt) {
    case PIO_DTYPE_F32: case PIO_DTYPE_F16: case PIO_DTYPE_BF16:
    case PIO_DTYPE_Q8_0: case PIO_DTYPE_Q4_0: case PIO_DTYPE_Q4_K: case PIO_DTYPE_Q6_K:
    case PIO_DTYPE_Q8_K:
        return true;
    default:
        return false;
    }
}

void pio_quantize_row(pio_dtype dt, const float *x, void *y, int64_t k)
{
    int64_t i;
    switch (dt) {
    case PIO_DTYPE_Q8_0: pio_quantize_row_q8_0(x, y, k); break;
    case PIO_DTYPE_Q4_0: pio_quantize_row_q4_0(x, y, k); break;
    case PIO_DTYPE_Q4_K: pio_quantize_row_q4_K(x, y, k); break;
    case PIO_DTYPE_Q6_K: pio_quantize_row_q6_K(x, y, k); break;
    case PIO_DTYPE_Q8_K: pio_quantize_row_q8_K(x, y, k); break;
    case PIO_DTYPE_F32: memcpy(y, x, (size_t)k * sizeof(float)); break;
    case PIO_DTYPE_F16:
        for (i = 0; i < k; i++)
            ((uint16_t *)y)[i] = pio_f32_to_f16(x[i]);
        break;
    case PIO_DTYPE_BF16:
        for (i = 0; i < k; i++)
            ((uint16_t *)y)[i] = pio_f32_to_bf16(x[i]);
        break;
    default:
        break;
    }
}

pio_status pio_quantize_rows(pio_dtype dt, const float *x, void *y, int64_t rows, int64_t cols)
{
    size_t row_bytes;
    int be;

    if (!pio_dtype_can_quantize(dt))
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "cannot convert f32 rows to %s", pio_dtype_name(dt));
    be = pio_dtype_block_elems(dt);
    if (rows < 0 || cols < 0 || cols % be != 0)
        return pio_error(PIO_STATUS_ERR_SHAPE,
                         "cannot convert [%lld, %lld] to %s: the row length must be a multiple of %d",
                         (long long)rows, (long long)cols, pio_dtype_name(dt), be);
    row_bytes = pio_dtype_row_bytes(dt, cols);
    for (int64_t r = 0; r < rows; r++)
        pio_quantize_row(dt, x + r * cols, (char *)y + (size_t)r * row_bytes, cols);
    return PIO_STATUS_OK;
}

pio_dtype pio_dtype_vec_dot_type(pio_dtype w)
{
    switch (w) {
    case PIO_DTYPE_Q8_0: case PIO_DTYPE_Q4_0: return PIO_DTYPE_Q8_0;
    case PIO_DTYPE_Q4_K: case PIO_DTYPE_Q6_K: return PIO_DTYPE_Q8_K;
    default: return PIO_DTYPE_F32;
    }
}

/* ---- dot products (GGML's generic versions) -------------------------------- */

float pio_vec_dot_q8_0_q8_0_ref(int64_t n, const void *vw, const void *va)
{
    const pio_block_q8_0 *x = vw, *y = va;
    int64_t nb = n / PIO_QK8_0;
    float sumf = 0;
    for (int64_t ib = 0; ib < nb; ib++) {
        int sumi = 0;
        for (int j = 0; j < PIO_QK8_0; j++)
            sumi += x[ib].qs[j] * y[ib].qs[j];
        sumf += sumi * (pio_f16_to_f32(x[ib].d) * pio_f16_to_f32(y[ib].d));
    }
    return sumf;
}

float pio_vec_dot_q4_0_q8_0_ref(int64_t n, const void *vw, const void *va)
{
    const pio_block_q4_0 *x = vw;
    const pio_block_q8_0 *y = va;
    int64_t nb = n / PIO_QK8_0;
    float sumf = 0;
    for (int64_t ib = 0; ib < nb; ib++) {
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < PIO_QK8_0 / 2; j++) {
            const int v0 = (x[ib].qs[j] & 0x0F) - 8;
            const int v1 = (x[ib].qs[j] >> 4) - 8;
            sumi0 += v0 * y[ib].qs[j];
            sumi1 += v1 * y[ib].qs[j + PIO_QK8_0 / 2];
        }
        int sumi = sumi0 + sumi1;
        sumf += sumi * pio_f16_to_f32(x[ib].d) * pio_f16_to_f32(y[ib].d);
    }
    return sumf;
}

/*
 * Q4_K · Q8_K: per super-block, integer sums of q4·q8 per sub-block times
 * the 6-bit scale, in 8 lanes as GGML's generic code keeps them (the lane
 * split decides the float rounding), minus dmin · Σ bsums·min.
 */
float pio_vec_dot_q4_K_q8_K_ref(int64_t n, const void *vw, const void *va)
{
    const pio_block_q4_K *x = vw;
    const pio_block_q8_K *y = va;
    int64_t nb = n / PIO_QK_K;
    int8_t aux8[PIO_QK_K];
    int16_t aux16[8];
    int32_t aux32[8];
    float sums[8] = { 0 };
    float sumf = 0;

    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int8_t *a = aux8;
        uint8_t scales[8], mins[8];

        memset(aux32, 0, sizeof aux32);
        for (int j = 0; j < PIO_QK_K / 64; j++) {
            for (int l = 0; l < 32; l++)
                a[l] = (int8_t)(q4[l] & 0xF);
            a += 32;
            for (int l = 0; l < 32; l++)
                a[l] = (int8_t)(q4[l] >> 4);
            a += 32;
            q4 += 32;
        }
        for (int j = 0; j < 8; j++)
            q_scale_min_k4(j, x[i].scales, &scales[j], &mins[j]);

        int sumi = 0;
        for (int j = 0; j < PIO_QK_K / 16; j++)
            sumi += y[i].bsums[j] * mins[j / 2];
        a = aux8;
        for (int j = 0; j < PIO_QK_K / 32; j++) {
            int32_t scale = scales[j];
            for (int g = 0; g < 4; g++) {
                for (int l = 0; l < 8; l++)
                    aux16[l] = (int16_t)(q8[l] * a[l]);
                for (int l = 0; l < 8; l++)
                    aux32[l] += scale * aux16[l];
                q8 += 8;
                a += 8;
            }
        }
        const float d = pio_f16_to_f32(x[i].d) * y[i].d;
        for (int l = 0; l < 8; l++)
            sums[l] += d * aux32[l];
        const float dmin = pio_f16_to_f32(x[i].dmin) * y[i].d;
        sumf -= dmin * sumi;
    }
    for (int l = 0; l < 8; l++)
        sumf += sums[l];
    return sumf;
}

float pio_vec_dot_q6_K_q8_K_ref(int64_t n, const void *vw, const void *va)
{
    const pio_block_q6_K *x = vw;
    const pio_block_q8_K *y = va;
    int64_t nb = n / PIO_QK_K;
    int8_t aux8[PIO_QK_K];
    int16_t aux16[8];
    int32_t aux32[8];
    float sums[8] = { 0 };
    float sumf = 0;

    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q4 = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        int8_t *a = aux8;

        memset(aux32, 0, sizeof aux32);
        for (int j = 0; j < PIO_QK_K; j += 128) {
            for (int l = 0; l < 32; l++) {
                a[l + 0] = (int8_t)((q4[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                a[l + 32] = (int8_t)((q4[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                a[l + 64] = (int8_t)((q4[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                a[l + 96] = (int8_t)((q4[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            }
            a += 128;
            q4 += 64;
            qh += 32;
        }
        a = aux8;
        for (int j = 0; j < PIO_QK_K / 16; j++) {
            int scale = x[i].scales[j];
            for (int g = 0; g < 2; g++) {
                for (int l = 0; l < 8; l++)
                    aux16[l] = (int16_t)(q8[l] * a[l]);
                for (int l = 0; l < 8; l++)
                    aux32[l] += scale * aux16[l];
                q8 += 8;
                a += 8;
            }
        }
        const float d = pio_f16_to_f32(x[i].d) * y[i].d;
        for (int l = 0; l < 8; l++)
            sums[l] += d * aux32[l];
    }
    for (int l = 0; l < 8; l++)
        sumf += sums[l];
    return sumf;
}

float pio_vec_dot_ref(pio_dtype w_dtype, int64_t n, const void *w, const void *a)
{
    switch (w_dtype) {
    case PIO_DTYPE_Q8_0: return pio_vec_dot_q8_0_q8_0_ref(n, w, a);
    case PIO_DTYPE_Q4_0: return pio_vec_dot_q4_0_q8_0_ref(n, w, a);
    case PIO_DTYPE_Q4_K: return pio_vec_dot_q4_K_q8_K_ref(n, w, a);
    case PIO_DTYPE_Q6_K: return pio_vec_dot_q6_K_q8_K_ref(n, w, a);
    default: {
        /* plain weights against f32 activations */
        float s = 0.0f, buf[256];
        const float *af = a;
        size_t esz = pio_dtype_size(w_dtype);
        for (int64_t i = 0; i < n; i += 256) {
            int64_t m = n - i < 256 ? n - i : 256;
            pio_convert_to_f32(buf, (const char *)w + (size_t)i * esz, w_dtype, m);
            for (int64_t j = 0; j < m; j++)
                s += buf[j] * af[i + j];
        }
        return s;
    }
    }
}
