/*
 * test_kernels.c - kernels against plain double-precision formulas on random,
 * awkward shapes, single- and multi-threaded; dtype conversions; the paged
 * KV cache.
 */
#include "check.h"
#include "kernels/kernels.h"
#include "pio/kv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ull;
static float frand(void) { return check_frand(&rng); }   /* uniform in [-1, 1) */

static uint16_t f32_to_f16(float f)   /* test-only, normal range, truncating */
{
    uint32_t u; memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    int exp = (int)((u >> 23) & 0xff) - 127 + 15;
    if (exp <= 0) return (uint16_t)sign;
    return (uint16_t)(sign | ((uint32_t)exp << 10) | ((u >> 13) & 0x3ffu));
}

static void test_conversions(void)
{
    float vals[] = { 0.0f, 1.0f, -2.5f, 3.14159f, 1e-3f, -65504.0f, 1e30f };
    size_t i;
    for (i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        float b = pio_bf16_to_f32(pio_f32_to_bf16(vals[i]));
        CHECK(fabsf(b - vals[i]) <= fabsf(vals[i]) * (1.0f / 128), "bf16 round trip %g -> %g", vals[i], b);
    }
    CHECK(pio_f32_to_bf16(1.00390625f) == 0x3f80, "round to nearest even (tie down)");
    CHECK(pio_f32_to_bf16(1.01171875f) == 0x3f82, "round to nearest even (tie up)");
    CHECK(pio_f16_to_f32(0x3c00) == 1.0f, "f16 1.0");
    CHECK(pio_f16_to_f32(0xc000) == -2.0f, "f16 -2.0");
    CHECK(pio_f16_to_f32(0x0001) == 5.9604644775390625e-08f, "f16 smallest subnormal");
    CHECK(pio_f16_to_f32(0x7bff) == 65504.0f, "f16 max");
    CHECK(isinf(pio_f16_to_f32(0x7c00)), "f16 inf");
    CHECK(isnan(pio_f16_to_f32(0x7e00)), "f16 nan");
}

/* y = x·Wᵀ for every weight dtype vs a double reference on odd shapes. */
static void test_matmul(pio_threadpool *tp)
{
    static const int shapes[][3] = { { 1, 1, 1 }, { 1, 7, 33 }, { 3, 17, 65 }, { 5, 100, 31 },
                                     { 2, 257, 129 }, { 9, 48, 200 } };  /* n, rows, cols */
    size_t s;
    int d;
    for (s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int n = shapes[s][0], rows = shapes[s][1], cols = shapes[s][2];
        float *x = malloc(sizeof(float) * (size_t)n * cols);
        float *wf = malloc(sizeof(float) * (size_t)rows * cols);
        uint16_t *wh = malloc(2 * (size_t)rows * cols);
        float *y = malloc(sizeof(float) * (size_t)n * rows);
        int i, r, t;
        for (i = 0; i < n * cols; i++) x[i] = frand();
        for (i = 0; i < rows * cols; i++) wf[i] = frand();
        for (d = 0; d < 3; d++) {
            pio_dtype dt = d == 0 ? PIO_DTYPE_F32 : d == 1 ? PIO_DTYPE_BF16 : PIO_DTYPE_F16;
            pio_wmat w = { dt, dt == PIO_DTYPE_F32 ? (const void *)wf : (const void *)wh, rows, cols };
            double max_err = 0;
            for (i = 0; i < rows * cols; i++)
                wh[i] = dt == PIO_DTYPE_BF16 ? pio_f32_to_bf16(wf[i]) : f32_to_f16(wf[i]);
            CHECK_OK(pio_matmul(tp, y, x, n, &w));
            for (t = 0; t < n; t++)
                for (r = 0; r < rows; r++) {
                    double ref = 0;
                    for (i = 0; i < cols; i++) {
                        double wv = dt == PIO_DTYPE_F32 ? wf[r * cols + i]
                                  : dt == PIO_DTYPE_BF16 ? pio_bf16_to_f32(wh[r * cols + i])
                                  : pio_f16_to_f32(wh[r * cols + i]);
                        ref += (double)x[t * cols + i] * wv;
                    }
                    if (fabs(ref - y[t * rows + r]) > max_err) max_err = fabs(ref - y[t * rows + r]);
                }
            CHECK(max_err < 1e-4 * cols, "matmul %s n=%d rows=%d cols=%d: max err %g",
                  pio_dtype_name(dt), n, rows, cols, max_err);
        }
        free(x); free(wf); free(wh); free(y);
    }
}

static void test_norm_rope_silu(void)
{
    float x[37], w[37], y[37], cs[64], inv[32], v[64], v0[64];
    double ss = 0;
    int i;
    for (i = 0; i < 37; i++) { x[i] = frand() * 3; w[i] = 1 + frand() * 0.1f; ss += (double)x[i] * x[i]; }
    pio_rmsnorm(y, x, w, 37, 1e-6f);
    for (i = 0; i < 37; i++) {
        double ref = w[i] * x[i] / sqrt(ss / 37 + 1e-6);
        CHECK(fabs(ref - y[i]) < 1e-5, "rmsnorm[%d] %g vs %g", i, y[i], ref);
    }
    /* RoPE keeps norms, is the identity at position 0, and matches the formula */
    pio_rope_inv_freq(inv, 64, 10000.0);
    CHECK(inv[0] == 1.0f && fabsf(inv[1] - powf(10000.0f, -2.0f / 64)) < 1e-7f, "inv_freq");
    for (i = 0; i < 64; i++) v[i] = v0[i] = frand();
    pio_rope_cos_sin(cs, inv, 32, 0.0f);
    pio_rope_neox(v, 1, 64, cs);
    CHECK(memcmp(v, v0, sizeof v) == 0, "rope at position 0 is the identity");
    pio_rope_cos_sin(cs, inv, 32, 7.0f);
    pio_rope_neox(v, 1, 64, cs);
    for (i = 0; i < 32; i++) {
        double a = 7.0 * inv[i];
        double r0 = v0[i] * cos(a) - v0[i + 32] * sin(a), r1 = v0[i + 32] * cos(a) + v0[i] * sin(a);
        CHECK(fabs(v[i] - r0) < 1e-5 && fabs(v[i + 32] - r1) < 1e-5, "rope pair %d", i);
    }
    for (i = 0; i < 37; i++) { x[i] = frand() * 6; y[i] = frand(); }
    memcpy(w, x, sizeof x);
    pio_silu_mul(NULL, x, y, 37);
    for (i = 0; i < 37; i++)
        CHECK(fabs(x[i] - w[i] / (1 + exp(-w[i])) * y[i]) < 1e-5, "silu_mul[%d]", i);
}

/* Attention through the paged cache vs a direct softmax over a flat copy. */
static void test_kv_attention(void)
{
    pio_kv *kv;
    int layers = 2, seqs = 3, ctx = 70, hd = 12, nkv = 2, kdim = nkv * hd;
    int s, p, l, h;
    CHECK_OK(pio_kv_paged_new(layers, seqs, ctx, kdim, kdim, PIO_DTYPE_F32, 16, 0, &kv));
    if (!kv) return;
    for (s = 0; s < seqs; s++) {
        int n = 20 + s * 23;
        CHECK_OK(kv->ops->reserve(kv, s, n));
        for (l = 0; l < layers; l++)
            for (p = 0; p < n; p++) {
                float *k = kv->ops->k_row(kv, l, s, p), *v = kv->ops->v_row(kv, l, s, p);  /* F32 rows */
                int i;
                for (i = 0; i < kdim; i++) { k[i] = frand(); v[i] = frand(); }
            }
    }
    for (s = 0; s < seqs; s++) {
        int n = 20 + s * 23;
        for (l = 0; l < layers; l++)
            for (h = 0; h < nkv; h++) {
                float q[12], out[12];
                double sc[70], m = -1e30, z = 0, ref[12] = { 0 };
                int i;
                for (i = 0; i < hd; i++) q[i] = frand();
                pio_attention_head(out, q, kv, l, s, n, h * hd, hd, 0.3f);
                for (p = 0; p < n; p++) {
                    const float *k = (const float *)kv->ops->k_row(kv, l, s, p) + h * hd;
                    sc[p] = 0;
                    for (i = 0; i < hd; i++) sc[p] += (double)q[i] * k[i];
                    sc[p] *= 0.3;
                    if (sc[p] > m) m = sc[p];
                }
                for (p = 0; p < n; p++) {
                    const float *v = (const float *)kv->ops->v_row(kv, l, s, p) + h * hd;
                    double e = exp(sc[p] - m);
                    z += e;
                    for (i = 0; i < hd; i++) ref[i] += e * v[i];
                }
                for (i = 0; i < hd; i++)
                    CHECK(fabs(ref[i] / z - out[i]) < 1e-5, "attention seq %d layer %d head %d dim %d", s, l, h, i);
            }
    }
    /* limits: beyond the context, and a full pool */
    CHECK(kv->ops->reserve(kv, 0, ctx + 1) == PIO_STATUS_ERR_LIMIT, "reserve past n_ctx");
    CHECK(kv->ops->reserve(kv, seqs, 1) == PIO_STATUS_ERR_INVALID_ARG, "bad sequence id");
    kv->ops->truncate(kv, 2, 0);
    CHECK_OK(kv->ops->reserve(kv, 2, ctx));
    pio_kv_free(kv);

    CHECK_OK(pio_kv_paged_new(1, 2, 64, 4, 4, PIO_DTYPE_F16, 16, 5, &kv));   /* 5 blocks for 2 x 64 */
    CHECK_OK(kv->ops->reserve(kv, 0, 64));
    CHECK(kv->ops->reserve(kv, 1, 32) == PIO_STATUS_ERR_LIMIT, "pool exhausted: %s", pio_last_error());
    kv->ops->truncate(kv, 0, 16);                              /* gives back 3 blocks */
    CHECK_OK(kv->ops->reserve(kv, 1, 48));
    pio_kv_free(kv);
}

static void count_task(void *ctx, int task, int thread)
{
    int *hits = ctx;
    (void)thread;
    __atomic_add_fetch(&hits[task], 1, __ATOMIC_RELAXED);
}

static void test_threadpool(void)
{
    pio_threadpool *tp;
    int hits[1000] = { 0 }, i, round, bad = 0;
    CHECK_OK(pio_threadpool_new(4, &tp));
    for (round = 0; round < 50; round++)
        pio_threadpool_run(tp, 1000, count_task, hits);
    for (i = 0; i < 1000; i++) bad += hits[i] != 50;
    CHECK(bad == 0, "%d tasks not run exactly once per round", bad);
    pio_threadpool_free(tp);
}

int main(void)
{
    pio_threadpool *tp;
    test_conversions();
    test_matmul(NULL);
    CHECK_OK(pio_threadpool_new(3, &tp));
    test_matmul(tp);
    pio_threadpool_free(tp);
    test_norm_rope_silu();
    test_kv_attention();
    test_threadpool();
    return check_report("test_kernels");
}
