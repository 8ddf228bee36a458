/*
 * kernels.h - the math the model plugins are built from (f32 compute).
 *
 * Weights may be F32, F16 or BF16 (used straight from the mmap); activations
 * are f32. Each op here is the reference implementation; faster variants
 * (SIMD, CUDA) are added beside it and diffed against it by the tests.
 */
#ifndef PIO_KERNELS_H
#define PIO_KERNELS_H

#include "pio/pio.h"
#include "pio/formats.h"
#include "common/threadpool.h"

/* A weight matrix W[rows][cols] (rows = out features, cols = in features). */
typedef struct pio_wmat {
    pio_dtype dtype;     /* F32, F16, BF16 or block-quantized (quant.h) */
    const void *data;    /* rows of pio_dtype_row_bytes(dtype, cols) bytes; the X8
                            layouts: groups of 8 rows interleaved in the same bytes */
    int64_t rows;
    int64_t cols;
} pio_wmat;

/* View a 2-D tensor as a weight matrix. */
static inline pio_wmat pio_wmat_from_tensor(const pio_tensor *t)
{
    pio_wmat w = { t->dtype, t->data, t->shape[0], t->n_dims > 1 ? t->shape[1] : 1 };
    return w;
}

/* bf16/f16 scalar conversions (round-to-nearest-even for f32 -> bf16). */
float pio_bf16_to_f32(uint16_t h);
uint16_t pio_f32_to_bf16(float f);
float pio_f16_to_f32(uint16_t h);
/* IEEE f32 -> f16, round-to-nearest-even (as GGML_FP32_TO_FP16 / F16C);
 * overflow gives inf, NaN a quiet NaN with the sign kept. */
uint16_t pio_f32_to_f16(float f);

/* dst[0..n) = src[0..n) converted from `dt`: F32, F16, BF16, or a
 * block-quantized type (n a multiple of its block; see quant.h). */
void pio_convert_to_f32(float *dst, const void *src, pio_dtype dt, int64_t n);

/* Row `r` of `w` converted (dequantized) to f32 into dst[w->cols] (any
 * layout, the X8 ones included: an embedding table may be tied to lm_head). */
void pio_wmat_row_f32(const pio_wmat *w, int64_t r, float *dst);

/*
 * The dtype/layout the active kernel level runs a rows x cols matrix of
 * dtype `dt` fastest in: its X8 layout (PIO_DTYPE_Q8_0_X8 for Q8_0, ...)
 * for Q8_0 / Q4_0 / Q4_K / Q6_K with rows % 8 == 0 at AVX2 (same bytes, rows
 * interleaved; see quant.h), else dt itself. The
 * loader repacks weights to it once (pio_weights_repack).
 */
pio_dtype pio_wmat_layout_for(pio_dtype dt, int64_t rows, int64_t cols);

/* Dot product of two f32 vectors of length n. */
float pio_dot_f32(const float *a, const float *b, int64_t n);

/*
 * y[n][w->rows] = x[n][w->cols] · Wᵀ, split over output rows on the pool.
 * Cost: n·rows·cols multiply-adds; W is read once per call.
 */
pio_status pio_matmul(pio_threadpool *tp, float *y, const float *x, int n, const pio_wmat *w);

#define PIO_MATMUL_MULTI_MAX 4

/*
 * ys[j][n][ws[j]->rows] = x · ws[j]ᵀ for count (1..PIO_MATMUL_MULTI_MAX)
 * matrices of the same x (q/k/v, gate/up). Results equal count pio_matmul
 * calls bit for bit. The matrices share one activation conversion, and in
 * decode one pool round (no barrier between them).
 */
pio_status pio_matmul_multi(pio_threadpool *tp, int count, float *const *ys, const float *x, int n,
                            const pio_wmat *const *ws);

/* y[n] = w ⊙ x / sqrt(mean(x²) + eps); y may alias x. */
void pio_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);

/*
 * g[i] = silu(g[i]) · u[i], silu(z) = z·sigmoid(z), for i < n, with the
 * active level's kernel; split over the pool when n is large (tp may be NULL).
 * A value's result depends only on g[i] and u[i] (not on i, n or the pool).
 */
void pio_silu_mul(pio_threadpool *tp, float *g, const float *u, int64_t n);

/* inv_freq[i] = theta^(-2i/head_dim), i < head_dim/2, computed in f32 as transformers does. */
void pio_rope_inv_freq(float *inv_freq, int head_dim, double theta);

/* cos/sin tables for one position: cs[0..half) = cos, cs[half..2half) = sin. */
void pio_rope_cos_sin(float *cs, const float *inv_freq, int half, float pos);

/*
 * Rotate-half ("NeoX") RoPE on n_heads vectors of head_dim, in place:
 * pairs (i, i+head_dim/2) rotated by the angle whose cos/sin are in cs.
 */
void pio_rope_neox(float *x, int n_heads, int head_dim, const float *cs);

/*
 * Causal attention of one query head over n_kv cached positions with online
 * (streaming) softmax: out[head_dim] = Σ softmax(q·k_p·scale) v_p.
 * k_rows(p)/v_rows(p) come through the KV interface; see attention.c.
 */
typedef struct pio_kv pio_kv;
void pio_attention_head(float *out, const float *q, pio_kv *kv, int layer, int seq, int n_kv,
                        int kv_offset, int head_dim, float scale);

#endif
