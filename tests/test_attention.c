/*
 * test_attention.c - the attention kernels (kernels/attn.h) of every level
 * this CPU can run, diffed against the references on awkward shapes.
 *
 *  1. KV row conversion: every level's `store` bit-identical to
 *     pio_f32_to_f16 / pio_f32_to_bf16 (odd lengths, subnormals, overflow);
 *  2. one tile: each level's tile against pio_attn_tile_ref for head_dim
 *     40/64/128, 1..37 query rows, 1..64 keys, causal / partial / empty rows,
 *     starting from a state left by an earlier tile, F32/F16/BF16 rows;
 *  3. pio_attention_run end to end through a paged cache (blocks of 16, so
 *     key tiles cross blocks) against pio_attention_head (key by key): a
 *     batch mixing a prefill run, decode tokens and two-token runs of several
 *     sequences with odd lengths, GQA ratios 1/2/4/8, head_dim 64/128, every
 *     row dtype, 1 and 3 threads, automatic and forced split-K (per-head
 *     tasks and whole-row tasks);
 *  4. long-context decode (automatic split-K) and bad geometry.
 * Built a second time as test_attention_emu (PIO_KERNELS_EMU), it tests the
 * AVX-512 level under SIMDe emulation instead (tests/emu/).
 * Errors are relative to the largest |value| (outputs are convex
 * combinations of value rows).
 */
#include "check.h"
#include "common/cpu.h"
#include "kernels/attn.h"
#ifdef PIO_KERNELS_EMU
#include "emu/kernels_emu.h"
#endif

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x2545f4914f6cdd1dull;
static float frand(void) { return check_frand(&rng); }   /* uniform in [-1, 1) */

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static const pio_attn_kernels *levels[PIO_CPU_LEVEL_COUNT];
static int n_levels;
static const pio_dtype row_types[] = { PIO_DTYPE_F32, PIO_DTYPE_F16, PIO_DTYPE_BF16 };

/* ---- 1. row conversion -------------------------------------------------------- */

static void test_store(void)
{
    enum { N = 1003 };
    float *x = xmalloc(N * sizeof(float));
    uint16_t *got = xmalloc(N * sizeof(uint16_t)), *want = xmalloc(N * sizeof(uint16_t));
    int i, l, d;
    for (i = 0; i < N; i++)
        x[i] = frand() * (i % 7 == 0 ? 70000.0f : i % 5 == 0 ? 1e-6f : 3.0f);
    x[0] = 65520.0f;         /* rounds to f16 inf */
    x[1] = 65519.0f;         /* rounds to 65504 */
    x[2] = -0.0f;
    x[3] = 5.96e-8f;         /* the smallest f16 subnormal */
    for (d = 1; d < 3; d++) {
        pio_dtype dt = row_types[d];
        for (i = 0; i < N; i++)
            want[i] = dt == PIO_DTYPE_F16 ? pio_f32_to_f16(x[i]) : pio_f32_to_bf16(x[i]);
        for (l = 0; l < n_levels; l++) {
            int n;
            for (n = 1; n <= N; n += n < 40 ? 1 : 97) {
                memset(got, 0xab, N * sizeof(uint16_t));
                levels[l]->store(got, dt, x, n);
                CHECK(memcmp(got, want, (size_t)n * sizeof(uint16_t)) == 0,
                      "store %s level %s n %d", pio_dtype_name(dt),
                      pio_cpu_level_name(levels[l]->level), n);
                CHECK(got[n - 1 + (n < N)] == (n < N ? 0xabab : want[N - 1]),
                      "store wrote past n = %d", n);
            }
        }
    }
    free(x); free(got); free(want);
}

/* ---- 2. one tile ---------------------------------------------------------------- */

static void *make_rows(pio_dtype dt, int n, int hd, float mag)
{
    size_t es = pio_dtype_size(dt);
    uint8_t *p = xmalloc((size_t)n * (size_t)hd * es);
    float *tmp = xmalloc((size_t)hd * sizeof(float));
    int j, d;
    for (j = 0; j < n; j++) {
        for (d = 0; d < hd; d++)
            tmp[d] = frand() * mag;
        pio_attn_store_ref(p + (size_t)j * hd * es, dt, tmp, hd);
    }
    free(tmp);
    return p;
}

typedef struct tile_state {
    float *m, *l, *acc, *s;
} tile_state;

static void state_init(tile_state *st, int nq, int hd, int warm)
{
    int r, d;
    st->m = xmalloc((size_t)nq * sizeof(float));
    st->l = xmalloc((size_t)nq * sizeof(float));
    st->acc = xmalloc((size_t)nq * (size_t)hd * sizeof(float));
    st->s = xmalloc((size_t)nq * PIO_ATTN_TILE_KEYS * sizeof(float));
    for (r = 0; r < nq; r++) {
        /* a state an earlier tile left (some rows fresh) */
        st->m[r] = warm && r % 3 ? frand() * 2.0f : -INFINITY;
        st->l[r] = st->m[r] == -INFINITY ? 0.0f : 1.0f + frand() * 0.5f;
        for (d = 0; d < hd; d++)
            st->acc[(size_t)r * hd + d] = st->m[r] == -INFINITY ? 0.0f : frand();
    }
}

static void state_copy(tile_state *dst, const tile_state *src, int nq, int hd)
{
    memcpy(dst->m, src->m, (size_t)nq * sizeof(float));
    memcpy(dst->l, src->l, (size_t)nq * sizeof(float));
    memcpy(dst->acc, src->acc, (size_t)nq * (size_t)hd * sizeof(float));
}

static void state_free(tile_state *st)
{
    free(st->m); free(st->l); free(st->acc); free(st->s);
}

static void test_tiles(void)
{
    static const int hds[] = { 40, 64, 128 };
    static const int nqs[] = { 1, 2, 3, 4, 5, 8, 13, 32, 37 };
    static const int nks[] = { 1, 2, 7, 16, 33, 64 };
    double worst = 0.0;
    int ih, iq, ik, id, l, r, d, warm, mode;

    for (ih = 0; ih < 3; ih++)
        for (id = 0; id < 3; id++)
            for (iq = 0; iq < (int)(sizeof nqs / sizeof nqs[0]); iq++)
                for (ik = 0; ik < (int)(sizeof nks / sizeof nks[0]); ik++)
                    for (mode = 0; mode < 3; mode++) {
                        int hd = hds[ih], nq = nqs[iq], nk = nks[ik];
                        pio_dtype dt = row_types[id];
                        size_t es = pio_dtype_size(dt);
                        uint8_t *k = make_rows(dt, nk, hd, 1.0f), *v = make_rows(dt, nk, hd, 1.0f);
                        const void *kp[PIO_ATTN_TILE_KEYS], *vp[PIO_ATTN_TILE_KEYS];
                        float *q = xmalloc((size_t)nq * (size_t)hd * sizeof(float));
                        int *n_vis = xmalloc((size_t)nq * sizeof(int));
                        tile_state ref, got, start;
                        pio_attn_tile t;
                        int j;

                        warm = (iq + ik) % 2;
                        for (j = 0; j < nk; j++) {
                            /* reversed order: rows need not be adjacent */
                            kp[j] = k + (size_t)(nk - 1 - j) * hd * es;
                            vp[j] = v + (size_t)(nk - 1 - j) * hd * es;
                        }
                        for (r = 0; r < nq * hd; r++)
                            q[r] = frand() * 0.6f;
                        for (r = 0; r < nq; r++)       /* 0: all, 1: causal, 2: some rows empty */
                            n_vis[r] = mode == 0 ? nk : mode == 1 ? 1 + (r * 5) % nk
                                                                  : (r % 4 == 1 ? 0 : nk - r % nk);
                        state_init(&start, nq, hd, warm);
                        state_init(&ref, nq, hd, 0);
                        state_init(&got, nq, hd, 0);
                        state_copy(&ref, &start, nq, hd);
                        t.head_dim = hd; t.nq = nq; t.nk = nk; t.dtype = dt; t.q = q;
                        t.k = kp; t.v = vp; t.n_vis = n_vis;
                        t.m = ref.m; t.l = ref.l; t.acc = ref.acc; t.s = ref.s;
                        pio_attn_tile_ref(&t);
                        for (l = 0; l < n_levels; l++) {
                            double err = 0.0;
                            state_copy(&got, &start, nq, hd);
                            t.m = got.m; t.l = got.l; t.acc = got.acc; t.s = got.s;
                            levels[l]->tile(&t);
                            for (r = 0; r < nq; r++) {
                                /* compare normalized outputs and the (m, l) pair */
                                double scale = ref.l[r] > 0 ? 1.0 / ref.l[r] : 0.0;
                                if (n_vis[r] == 0) {
                                    CHECK(got.m[r] == ref.m[r] || (isinf(got.m[r]) && isinf(ref.m[r])),
                                          "empty row %d changed m", r);
                                    CHECK(got.l[r] == ref.l[r], "empty row %d changed l", r);
                                }
                                if (!isinf(ref.m[r]))
                                    err = fmax(err, fabs(got.m[r] - ref.m[r]));
                                err = fmax(err, fabs(got.l[r] - ref.l[r]) * scale);
                                for (d = 0; d < hd; d++)
                                    err = fmax(err, fabs(got.acc[(size_t)r * hd + d] -
                                                         ref.acc[(size_t)r * hd + d]) * scale);
                            }
                            CHECK(err < 2e-5, "tile %s hd %d nq %d nk %d mode %d %s: err %.3g",
                                  pio_cpu_level_name(levels[l]->level), hd, nq, nk, mode,
                                  pio_dtype_name(dt), err);
                            if (err > worst)
                                worst = err;
                        }
                        state_free(&start); state_free(&ref); state_free(&got);
                        free(k); free(v); free(q); free(n_vis);
                    }
    printf("  tiles: levels vs reference, max error %.2e\n", worst);
}

/* ---- 3. through the paged cache --------------------------------------------------- */

/*
 * A batch of several sequences: seq 0 prefills positions [base0, base0+n0),
 * seq 1 decodes one token, seq 2 two adjacent tokens, seq 3 a token then
 * seq 1 again (not adjacent). Keys/values of every position up to each
 * token's own are random. Compares every level (1 and 3 threads, splits of
 * split_keys) against pio_attention_head.
 */
static void check_run(pio_threadpool *tp1, pio_threadpool *tp3, int n_heads, int n_kv_heads,
                      int hd, pio_dtype dt, int base0, int n0, int ctx1, int split_keys, double *worst)
{
    enum { SEQS = 4 };
    int kdim = n_kv_heads * hd, qdim = n_heads * hd, G = n_heads / n_kv_heads;
    int lens[SEQS], n = 0, i, s, p, l, th, h;
    int32_t *pos, *seq;
    float *q, *out, *ref, *row;
    pio_batch b;
    pio_kv *kv = NULL;
    int ctx = base0 + n0 + ctx1 + 8;

    lens[0] = base0 + n0;
    lens[1] = ctx1 + 2;
    lens[2] = 21;
    lens[3] = 1;
    pos = xmalloc((size_t)(n0 + 6) * sizeof(int32_t));
    seq = xmalloc((size_t)(n0 + 6) * sizeof(int32_t));
    for (i = 0; i < n0; i++) { seq[n] = 0; pos[n++] = base0 + i; }
    seq[n] = 1; pos[n++] = ctx1;
    seq[n] = 2; pos[n++] = 19;
    seq[n] = 2; pos[n++] = 20;
    seq[n] = 3; pos[n++] = 0;
    seq[n] = 1; pos[n++] = ctx1 + 1;
    memset(&b, 0, sizeof b);
    b.n_tokens = n;
    b.pos = pos;
    b.seq_id = seq;

    CHECK_OK(pio_kv_paged_new(2, SEQS, ctx, kdim, kdim, dt, 16, 0, &kv));
    if (!kv)
        return;
    row = xmalloc((size_t)kdim * 2 * sizeof(float));
    for (s = 0; s < SEQS; s++) {
        CHECK_OK(kv->ops->reserve(kv, s, lens[s]));
        for (l = 0; l < 2; l++)
            for (p = 0; p < lens[s]; p++) {
                for (i = 0; i < 2 * kdim; i++)
                    row[i] = frand() * (i < kdim ? 1.5f : 1.0f);
                pio_kv_store(kv, l, s, p, row, row + kdim);
            }
    }
    q = xmalloc((size_t)n * (size_t)qdim * sizeof(float));
    out = xmalloc((size_t)n * (size_t)qdim * sizeof(float));
    ref = xmalloc((size_t)n * (size_t)qdim * sizeof(float));
    for (i = 0; i < n * qdim; i++)
        q[i] = frand();
    for (i = 0; i < n; i++)
        for (h = 0; h < n_heads; h++)
            pio_attention_head(ref + ((size_t)i * n_heads + h) * hd, q + ((size_t)i * n_heads + h) * hd,
                               kv, 1, seq[i], pos[i] + 1, (h / G) * hd, hd, 0.125f);
    for (l = 0; l < n_levels; l++)
        for (th = 0; th < 2; th++) {
            double err = 0.0;
            for (i = 0; i < n * qdim; i++)
                out[i] = NAN;
            CHECK_OK(pio_attention_run(levels[l], th ? tp3 : tp1, out, q, &b, kv, 1, n_heads,
                                       n_kv_heads, hd, 0.125f, split_keys));
            for (i = 0; i < n * qdim; i++)
                err = fmax(err, isnan(out[i]) ? INFINITY : fabs(out[i] - ref[i]));
            CHECK(err < 3e-5, "run %s %d threads heads %d/%d hd %d %s prefill %d+%d ctx %d split %d: err %.3g",
                  pio_cpu_level_name(levels[l]->level), th ? 3 : 1, n_heads, n_kv_heads, hd,
                  pio_dtype_name(dt), base0, n0, ctx1, split_keys, err);
            if (err > *worst)
                *worst = err;
        }
    pio_kv_free(kv);
    free(row); free(q); free(out); free(ref); free(pos); free(seq);
}

static void test_runs(pio_threadpool *tp1, pio_threadpool *tp3)
{
    static const int ratios[] = { 1, 2, 4, 8 };
    double worst = 0.0;
    int ir, id, hd;
    for (ir = 0; ir < 4; ir++)
        for (id = 0; id < 3; id++)
            for (hd = 64; hd <= 128; hd += 64) {
                int nkvh = ratios[ir] == 8 ? 1 : 2;
                /* prefill from 0, a second chunk after a cached prefix, forced splits */
                check_run(tp1, tp3, nkvh * ratios[ir], nkvh, hd, row_types[id], 0, 45, 77, 0, &worst);
                check_run(tp1, tp3, nkvh * ratios[ir], nkvh, hd, row_types[id], 37, 19, 130, 64, &worst);
                check_run(tp1, tp3, nkvh * ratios[ir], nkvh, hd, row_types[id], 5, 3, 201, 100, &worst);
                check_run(tp1, tp3, nkvh * ratios[ir], nkvh, hd, row_types[id], 5, 3, 201, -100, &worst);
            }
    printf("  runs: levels vs key-by-key reference, max error %.2e\n", worst);
}

/* ---- 4. long decode, errors ---------------------------------------------------------- */

static void test_long_decode(pio_threadpool *tp1, pio_threadpool *tp3)
{
    double worst = 0.0;
    /* one or two tokens per sequence, 2100 keys: automatic split-K with
     * whole-row tasks */
    check_run(tp1, tp3, 8, 2, 128, PIO_DTYPE_F16, 0, 1, 2100, 0, &worst);
    check_run(tp1, tp3, 4, 1, 64, PIO_DTYPE_F32, 0, 1, 1500, 0, &worst);
    printf("  long decode (split-K): max error %.2e\n", worst);
}

static void test_errors(void)
{
    pio_kv *kv = NULL;
    int32_t pos = 0, seq = 0;
    float q[64] = { 0 }, out[64];
    pio_batch b = { 1, NULL, &pos, &seq, NULL };
    CHECK(pio_kv_paged_new(1, 1, 16, 16, 16, PIO_DTYPE_Q8_0, 16, 0, &kv) == PIO_STATUS_ERR_UNSUPPORTED,
          "Q8_0 cache rows refused");
    CHECK_OK(pio_kv_paged_new(1, 1, 16, 16, 16, PIO_DTYPE_F16, 16, 0, &kv));
    if (!kv)
        return;
    CHECK(kv->dtype == PIO_DTYPE_F16, "dtype recorded");
    CHECK_OK(kv->ops->reserve(kv, 0, 1));
    CHECK(pio_attention_run(pio_attn_kernels_get(), NULL, out, q, &b, kv, 0, 3, 2, 8, 1.0f, 0) ==
          PIO_STATUS_ERR_INVALID_ARG, "3 heads over 2 KV heads refused");
    CHECK(pio_attention_run(pio_attn_kernels_get(), NULL, out, q, &b, kv, 0, 4, 2, 16, 1.0f, 0) ==
          PIO_STATUS_ERR_INVALID_ARG, "rows too short refused");
    pio_kv_free(kv);
}

int main(void)
{
    pio_threadpool *tp1 = NULL, *tp3 = NULL;
    int l;
#ifdef PIO_KERNELS_EMU
    /* The scalar level and the AVX-512 level under emulation (tests/emu/). */
    static pio_attn_kernels emu;
    if (!pio_cpu_level_supported(PIO_CPU_LEVEL_AVX2)) {
        printf("skip: the emulated AVX-512 kernels need an AVX2 CPU\n");
        return 77;
    }
    emu = *pio_attn_kernels_for_level(PIO_CPU_LEVEL_AVX2);
    pio_attn_kernels_init_avx512_emu(&emu);
    emu.level = PIO_CPU_LEVEL_AVX512;
    levels[n_levels++] = pio_attn_kernels_for_level(PIO_CPU_LEVEL_SCALAR);
    levels[n_levels++] = &emu;
    printf("emulated (SIMDe) ");
#else
    for (l = 0; l < PIO_CPU_LEVEL_COUNT; l++) {
        const pio_attn_kernels *kt = pio_attn_kernels_for_level((pio_cpu_level)l);
        if (kt)
            levels[n_levels++] = kt;
    }
#endif
    printf("attention levels:");
    for (l = 0; l < n_levels; l++)
        printf(" %s", pio_cpu_level_name(levels[l]->level));
    printf("\n");
    CHECK(n_levels >= 1 && levels[0]->level == PIO_CPU_LEVEL_SCALAR, "scalar level present");
    CHECK_OK(pio_threadpool_new(1, &tp1));
    CHECK_OK(pio_threadpool_new(3, &tp3));
    test_store();
    test_tiles();
    test_runs(tp1, tp3);
    test_long_decode(tp1, tp3);
    test_errors();
    pio_threadpool_free(tp1);
    pio_threadpool_free(tp3);
    return check_report("test_attention");
}
