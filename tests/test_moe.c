/*
 * test_moe.c - the shared mixture-of-experts blocks (src/layers/moe.c):
 *   - pio_moe_route_softmax against a plain reference (softmax over all
 *     experts, k largest, ties to the lower index, renormalization);
 *   - pio_moe_forward (tokens grouped by expert, one matmul per expert,
 *     weighted scatter-add; and the fused single-token decode path) against
 *     running every token through its experts one at a time with
 *     pio_swiglu_mlp, for F32, BF16, Q8_0, Q4_0 and Q4_K experts, awkward
 *     sizes, and a batch in which some experts get no token;
 *   - an expert index out of range is an error, not a crash.
 */
#include "check.h"
#include "layers/layers.h"
#include "kernels/quant.h"

#include <stdlib.h>
#include <string.h>

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / (float)(1u << 24)) * 2.0f - 1.0f;
}

/* Reference routing for one token. */
static void route_ref(const float *l, int ne, int k, bool renorm, int32_t *idx, float *w)
{
    double mx = l[0], sum = 0;
    float p[256];
    bool used[256] = { false };
    int e, j;
    for (e = 1; e < ne; e++)
        mx = l[e] > mx ? l[e] : mx;
    for (e = 0; e < ne; e++)
        sum += exp(l[e] - mx);
    for (e = 0; e < ne; e++)
        p[e] = (float)(exp(l[e] - mx) / sum);
    for (j = 0; j < k; j++) {
        int best = -1;
        for (e = 0; e < ne; e++)
            if (!used[e] && (best < 0 || p[e] > p[best]))
                best = e;
        used[best] = true;
        idx[j] = best;
        w[j] = p[best];
    }
    if (renorm) {
        float s = 0;
        for (j = 0; j < k; j++)
            s += w[j];
        for (j = 0; j < k; j++)
            w[j] /= s;
    }
}

static void test_route(void)
{
    unsigned seed = 7;
    int n = 13, ne = 37, k = 5, t, j, bad_idx = 0;
    float logits[13 * 37], w[13 * 5], wr[5];
    int32_t idx[13 * 5], ir[5];
    double max_dw = 0;

    for (t = 0; t < n * ne; t++)
        logits[t] = 3.0f * frand(&seed);
    /* ties: token 0 has experts 3, 9 and 20 equal and largest */
    logits[3] = logits[9] = logits[20] = 10.0f;
    for (int renorm = 0; renorm < 2; renorm++) {
        pio_moe_route_softmax(logits, n, ne, k, renorm, idx, w);
        for (t = 0; t < n; t++) {
            route_ref(logits + t * ne, ne, k, renorm, ir, wr);
            for (j = 0; j < k; j++) {
                bad_idx += idx[t * k + j] != ir[j];
                if (fabs(w[t * k + j] - wr[j]) > max_dw)
                    max_dw = fabs(w[t * k + j] - wr[j]);
            }
        }
        CHECK(bad_idx == 0, "renorm %d: %d selections differ from the reference", renorm, bad_idx);
        CHECK(max_dw < 1e-6, "renorm %d: weights differ by %g", renorm, max_dw);
        CHECK(idx[0] == 3 && idx[1] == 9 && idx[2] == 20, "ties: %d %d %d", idx[0], idx[1], idx[2]);
        if (renorm) {
            float s = 0;
            for (j = 0; j < k; j++)
                s += w[k + j];
            CHECK(fabs(s - 1.0f) < 1e-6, "renormalized weights sum to %g", s);
        }
    }
    /* k = n_experts: every expert, in descending order */
    pio_moe_route_softmax(logits + ne, 1, ne, ne, true, idx, w);
    for (j = 1; j < ne; j++)
        CHECK(w[j] <= w[j - 1], "k = n_experts: not descending at %d", j);
}

/* n tokens of width H through ne experts of ff, top-k, with weights in dt. */
static void test_forward(pio_dtype dt, int n, int H, int ff, int ne, int k)
{
    unsigned seed = 11u + (unsigned)dt;
    pio_threadpool *tp = NULL;
    pio_moe_expert *ex = calloc((size_t)ne, sizeof *ex);
    void **bufs = calloc((size_t)ne * 3, sizeof *bufs);
    float *x = malloc((size_t)n * H * sizeof(float)), *out = malloc((size_t)n * H * sizeof(float));
    float *ref = calloc((size_t)n * H, sizeof(float)), *y = malloc((size_t)H * sizeof(float));
    float *logits = malloc((size_t)n * ne * sizeof(float)), *w = malloc((size_t)n * k * sizeof(float));
    float *tmp = malloc((size_t)(H > ff ? H : ff) * (H > ff ? H : ff) * sizeof(float));
    int32_t *idx = malloc((size_t)n * k * sizeof(int32_t));
    pio_moe_scratch s = { 0 };
    pio_mlp_scratch ms = { 0 };
    double max_d = 0, max_r = 0;
    int e, m, t, j, c, touched = 0;

    CHECK_OK(pio_threadpool_new(2, &tp));
    for (e = 0; e < ne; e++) {
        pio_wmat *mats[3] = { &ex[e].gate, &ex[e].up, &ex[e].down };
        for (m = 0; m < 3; m++) {
            int64_t rows = m == 2 ? H : ff, cols = m == 2 ? ff : H;
            size_t rb = pio_dtype_row_bytes(dt, cols);
            for (c = 0; c < rows * cols; c++)
                tmp[c] = 0.3f * frand(&seed);
            bufs[e * 3 + m] = malloc((size_t)rows * rb);
            if (dt == PIO_DTYPE_F32)
                memcpy(bufs[e * 3 + m], tmp, (size_t)rows * cols * sizeof(float));
            else
                for (c = 0; c < rows; c++)
                    pio_quantize_row(dt, tmp + (size_t)c * cols, (char *)bufs[e * 3 + m] + (size_t)c * rb, cols);
            mats[m]->dtype = dt;
            mats[m]->data = bufs[e * 3 + m];
            mats[m]->rows = rows;
            mats[m]->cols = cols;
        }
    }
    for (c = 0; c < n * H; c++)
        x[c] = frand(&seed);
    /* route only to the first half of the experts: the rest get no token */
    for (c = 0; c < n * ne; c++)
        logits[c] = (c % ne) < (ne + 1) / 2 ? 2.0f * frand(&seed) : -30.0f;
    pio_moe_route_softmax(logits, n, ne, k, true, idx, w);

    CHECK_OK(pio_moe_forward(tp, ex, ne, k, idx, w, x, n, H, out, &s));
    for (t = 0; t < n; t++) {
        for (j = 0; j < k; j++) {
            e = idx[t * k + j];
            touched |= e >= (ne + 1) / 2;
            CHECK_OK(pio_swiglu_mlp(tp, &ex[e].gate, &ex[e].up, &ex[e].down, x + (size_t)t * H, 1, y, &ms));
            for (c = 0; c < H; c++)
                ref[(size_t)t * H + c] += w[t * k + j] * y[c];
        }
    }
    if (k <= (ne + 1) / 2)
        CHECK(!touched, "a token was routed to an expert with a -30 logit");
    for (c = 0; c < n * H; c++) {
        double d = fabs((double)out[c] - ref[c]);
        max_d = d > max_d ? d : max_d;
        max_r = fabs(ref[c]) > max_r ? fabs(ref[c]) : max_r;
    }
    printf("moe_forward %s n=%d H=%d ff=%d experts=%d top-%d: max|d| %.3g (max %.3g)\n", pio_dtype_name(dt), n,
           H, ff, ne, k, max_d, max_r);
    CHECK(max_d <= 1e-5 * (max_r > 1 ? max_r : 1), "%s: grouped != per-token: %g", pio_dtype_name(dt), max_d);

    /* decode-sized batch: one token (the same path with m = 1 per expert) */
    CHECK_OK(pio_moe_forward(tp, ex, ne, k, idx, w, x, 1, H, out, &s));
    for (c = 0; c < H; c++)
        CHECK(fabs(out[c] - ref[c]) <= 1e-5 * (max_r > 1 ? max_r : 1), "n=1: column %d differs", c);

    idx[0] = ne;   /* out of range, in a batch and in a single token */
    CHECK(pio_moe_forward(tp, ex, ne, k, idx, w, x, 1, H, out, &s) == PIO_STATUS_ERR_INVALID_ARG,
          "n=1: expert index %d accepted", ne);
    CHECK(pio_moe_forward(tp, ex, ne, k, idx, w, x, n, H, out, &s) == PIO_STATUS_ERR_INVALID_ARG,
          "expert index %d accepted", ne);
    idx[0] = -1;
    CHECK(pio_moe_forward(tp, ex, ne, k, idx, w, x, n, H, out, &s) == PIO_STATUS_ERR_INVALID_ARG,
          "expert index -1 accepted");
    pio_clear_error();

    for (e = 0; e < ne * 3; e++)
        free(bufs[e]);
    free(bufs); free(ex); free(x); free(out); free(ref); free(y); free(logits); free(w); free(tmp); free(idx);
    pio_moe_scratch_free(&s);
    pio_mlp_scratch_free(&ms);
    pio_threadpool_free(tp);
}

int main(void)
{
    test_route();
    test_forward(PIO_DTYPE_F32, 19, 40, 24, 9, 3);
    test_forward(PIO_DTYPE_F32, 3, 8, 5, 4, 4);
    test_forward(PIO_DTYPE_Q8_0, 17, 64, 32, 12, 2);
    test_forward(PIO_DTYPE_BF16, 5, 48, 40, 6, 2);
    test_forward(PIO_DTYPE_Q4_0, 4, 96, 64, 5, 3);
    test_forward(PIO_DTYPE_Q4_K, 3, 256, 256, 4, 2);
    return check_report("test_moe");
}
