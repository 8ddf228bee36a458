/*
 * elementwise.c - RMSNorm, SwiGLU activation and rotate-half RoPE.
 * Semantics follow transformers' Qwen3 modules (MODELS.md §1).
 */
#include "kernels/dispatch.h"

#include <math.h>
#include <string.h>

void pio_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps)
{
    float ss = 0.0f, inv;
    int64_t i;
#pragma omp simd reduction(+ : ss)
    for (i = 0; i < n; i++)
        ss += x[i] * x[i];
    inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (i = 0; i < n; i++)
        y[i] = w[i] * (x[i] * inv);
}

/*
 * e^x as every SIMD level computes it, op for op, so that SwiGLU is the same
 * bits at every level (and so are the int8 activations quantized from it):
 * x = n·ln2 + r with |r| <= ln2/2 (ln2 in two parts, Cody-Waite: n·ln2hi is
 * exact), e^r by its Taylor series to r^7 in Horner form with fused
 * multiply-adds (truncation < 6e-9 relative), then times 2^n built in the
 * exponent field. About 1 ulp from libm's expf over the normal range; x >
 * 88.72 gives +inf, x < -86.6 gives 0 (the subnormal results, below 2^-125,
 * are flushed) and NaN stays NaN.
 */
float pio_exp_poly(float x)
{
    float n, r, p, s;
    int32_t e;

    if (x != x)
        return x;
    if (x > PIO_EXP_POLY_HI)
        return INFINITY;
    if (x < PIO_EXP_POLY_LO)
        return 0.0f;
    n = rintf(x * 1.44269504f);                 /* nearest, ties to even */
    r = fmaf(-n, 0.693145751953125f, x);
    r = fmaf(-n, 1.428606765330187e-6f, r);
    p = fmaf(1.0f / 5040, r, 1.0f / 720);
    p = fmaf(p, r, 1.0f / 120);
    p = fmaf(p, r, 1.0f / 24);
    p = fmaf(p, r, 1.0f / 6);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    /* n is in [-125, 128]: scale by 2^(n-1), a normal float, then by 2 */
    e = ((int32_t)n + 126) * (1 << 23);
    memcpy(&s, &e, sizeof s);
    return p * s * 2.0f;
}

void pio_silu_mul_scalar(float *g, const float *u, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + pio_exp_poly(0.0f - g[i])) * u[i];
}

#define SILU_CHUNK 16384   /* values per pool task (a multiple of every level's vector width) */

typedef struct silu_job { const pio_kernels *kt; float *g; const float *u; int64_t n; } silu_job;

static void silu_task(void *p, int task, int thread)
{
    const silu_job *j = p;
    int64_t i0 = (int64_t)task * SILU_CHUNK, len = j->n - i0 < SILU_CHUNK ? j->n - i0 : SILU_CHUNK;
    (void)thread;
    j->kt->silu_mul(j->g + i0, j->u + i0, len);
}

/* Prefill's gate is n x n_ff values (5 M for Qwen3-4B at 512 tokens): one
 * thread would leave the others idle for a few % of the forward pass. */
void pio_silu_mul(pio_threadpool *tp, float *g, const float *u, int64_t n)
{
    silu_job job = { pio_kernels_get(), g, u, n };
    int64_t n_tasks = (n + SILU_CHUNK - 1) / SILU_CHUNK;
    if (!tp || pio_threadpool_size(tp) < 2 || n_tasks < 2 || n_tasks > INT32_MAX)
        job.kt->silu_mul(g, u, n);
    else
        pio_threadpool_run(tp, (int)n_tasks, silu_task, &job);
}

/* transformers: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), in f32. */
void pio_rope_inv_freq(float *inv_freq, int head_dim, double theta)
{
    int i;
    for (i = 0; i < head_dim / 2; i++) {
        float expo = (float)(2 * i) / (float)head_dim;
        inv_freq[i] = 1.0f / (float)pow((double)(float)theta, (double)expo);
    }
}

void pio_rope_cos_sin(float *cs, const float *inv_freq, int half, float pos)
{
    int i;
    for (i = 0; i < half; i++) {
        float angle = pos * inv_freq[i];       /* f32 product, as torch does */
        cs[i] = (float)cos((double)angle);
        cs[half + i] = (float)sin((double)angle);
    }
}

void pio_rope_neox(float *x, int n_heads, int head_dim, const float *cs)
{
    int half = head_dim / 2, h, i;
    for (h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * (size_t)head_dim;
        for (i = 0; i < half; i++) {
            float c = cs[i], s = cs[half + i];
            float a = v[i], b = v[i + half];
            v[i] = a * c - b * s;
            v[i + half] = b * c + a * s;
        }
    }
}
