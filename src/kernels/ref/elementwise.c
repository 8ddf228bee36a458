/*
 * elementwise.c - RMSNorm, SwiGLU activation and rotate-half RoPE.
 * Semantics follow transformers' Qwen3 modules (MODELS.md §1).
 */
#include "kernels/kernels.h"

#include <math.h>

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

void pio_silu_mul(float *g, const float *u, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
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
