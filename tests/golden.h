/*
 * golden.h - parity checks of a model plugin against transformers, shared by
 * the plugins' golden tests (src/models/<family>/tests/). A fixture is a tiny
 * checkpoint made by tools/make_tiny_<family>.py with transformers' own
 * classes, plus golden.json (prompt ids, logits at every position, the greedy
 * 20-token continuation, a second chat turn). golden_check_fixture checks:
 *   - logits at every prompt position: max|Δ| <= 1e-4 · max|logit|;
 *   - the greedy 20-token continuation is identical (padding rows masked);
 *   - two sequences in one batch give each sequence's own logits;
 *   - a chat-style second turn that extends the cached prompt gives the same
 *     logits as a fresh run (KV prefix reuse);
 *   - a prompt longer than the context fails with a clear error.
 */
#ifndef PIO_TESTS_GOLDEN_H
#define PIO_TESTS_GOLDEN_H

#include "check.h"
#include "pio/engine.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n;
    char *buf;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

static int json_ids(const cJSON *arr, int32_t *out, int cap)
{
    const cJSON *it;
    int n = 0;
    cJSON_ArrayForEach(it, arr) {
        if (n < cap)
            out[n] = (int32_t)it->valuedouble;
        n++;
    }
    return n;
}

/* max |a - ref| over one row, and max |ref| */
static void row_diff(const float *a, const cJSON *ref, double *max_diff, double *max_ref)
{
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, ref) {
        double d = fabs((double)a[i] - it->valuedouble);
        if (d > *max_diff)
            *max_diff = d;
        if (fabs(it->valuedouble) > *max_ref)
            *max_ref = fabs(it->valuedouble);
        i++;
    }
}

typedef struct collect { int32_t ids[64]; int n; } collect;

static bool collect_tokens(void *user, int32_t token, const char *text, size_t len)
{
    collect *c = user;
    (void)text;
    (void)len;
    if (token >= 0 && c->n < 64)
        c->ids[c->n++] = token;
    return true;
}

/*
 * Check the fixture tests/fixtures/FAMILY/NAME (its golden.json) against the
 * plugin FAMILY loaded from plugin_dir; see the list at the top.
 */
static void golden_check_fixture(const char *family, const char *name, const char *plugin_dir)
{
    char dir[512], path[600];
    char *json;
    cJSON *g;
    pio_engine *e = NULL;
    pio_engine_params ep;
    int32_t prompt[256], prompt2[256], greedy[64];
    int n, n2, n_greedy, t;
    int64_t V;
    float *logits = NULL;
    double max_diff = 0, max_ref = 0;

    snprintf(dir, sizeof dir, "tests/fixtures/%s/%s", family, name);
    snprintf(path, sizeof path, "%s/golden.json", dir);
    json = read_file(path);
    CHECK(json != NULL, "cannot read %s", path);
    if (!json)
        return;
    g = cJSON_Parse(json);
    free(json);
    CHECK(g != NULL, "%s: bad JSON", path);
    if (!g)
        return;
    n = json_ids(cJSON_GetObjectItem(g, "prompt_ids"), prompt, 256);
    n2 = json_ids(cJSON_GetObjectItem(cJSON_GetObjectItem(g, "golden_second_prompt"), "prompt_ids"), prompt2, 256);
    n_greedy = json_ids(cJSON_GetObjectItem(g, "greedy_ids"), greedy, 64);

    pio_engine_params_default(&ep);
    ep.opts.n_threads = 2;
    ep.opts.n_seqs = 2;
    ep.plugin_dir = plugin_dir;
    /* f32 parity with transformers: an f16 cache (the default) rounds k and v
     * to 11 bits, ~1e-3 relative on the logits, beyond this test's 1e-4;
     * f16's own cost is measured by pio perplexity --kl-base */
    ep.kv_dtype = PIO_DTYPE_F32;
    CHECK_OK(pio_engine_load(dir, &ep, &e));
    if (!e)
        goto out;
    CHECK(strcmp(pio_engine_model_info(e)->name, family) == 0, "%s: plugin %s", name,
          pio_engine_model_info(e)->name);
    V = pio_engine_model_info(e)->n_vocab;
    CHECK(V == cJSON_GetObjectItem(g, "vocab_size")->valueint, "%s: n_vocab %lld", name, (long long)V);

    /* 1. logits at every position */
    CHECK_OK(pio_engine_logits(e, prompt, n, &logits));
    if (logits) {
        const cJSON *row;
        t = 0;
        cJSON_ArrayForEach(row, cJSON_GetObjectItem(g, "logits")) {
            row_diff(logits + (size_t)t * V, row, &max_diff, &max_ref);
            t++;
        }
        CHECK(t == n, "%s: %d golden rows for %d prompt tokens", name, t, n);
        printf("%s: %d positions, max|dlogit| = %.3g, max|logit| = %.3g, ratio %.3g\n", name, n,
               max_diff, max_ref, max_diff / max_ref);
        CHECK(max_diff <= 1e-4 * max_ref, "%s: max|dlogit| %.3g > 1e-4 * %.3g", name, max_diff, max_ref);
        free(logits);
        logits = NULL;
    }

    /* 2. greedy continuation (eos ignored), padding rows masked by the sampler */
    {
        pio_gen_params gp;
        pio_gen_result res;
        collect c = { .n = 0 };
        pio_engine_gen_params_default(e, &gp);
        pio_sampler_params_default(&gp.sampling);
        gp.max_tokens = n_greedy;
        gp.ignore_eos = true;
        CHECK_OK(pio_engine_generate(e, 0, prompt, n, &gp, collect_tokens, &c, &res));
        CHECK(c.n == n_greedy, "%s: generated %d tokens, want %d", name, c.n, n_greedy);
        CHECK(memcmp(c.ids, greedy, (size_t)n_greedy * sizeof(int32_t)) == 0,
              "%s: greedy continuation differs from transformers", name);
        for (t = 0; t < c.n && t < n_greedy; t++)
            if (c.ids[t] != greedy[t]) {
                printf("  first difference at step %d: %d vs %d\n", t, c.ids[t], greedy[t]);
                break;
            }
        CHECK(res.n_reused == 0 || res.n_reused == n - 1, "%s: reused %d", name, res.n_reused);

        /* 3. generating again from prompt + continuation reuses the cache and
         *    must equal a fresh run's continuation of the same tokens */
        {
            int32_t longer[256];
            collect c2 = { .n = 0 }, c3 = { .n = 0 };
            memcpy(longer, prompt, (size_t)n * sizeof(int32_t));
            memcpy(longer + n, greedy, 10 * sizeof(int32_t));
            gp.max_tokens = 10;
            CHECK_OK(pio_engine_generate(e, 0, longer, n + 10, &gp, collect_tokens, &c2, &res));
            CHECK(res.n_reused >= n + 9, "%s: second turn reused only %d of %d tokens", name,
                  res.n_reused, n + 10);
            CHECK(c2.n == 10 && memcmp(c2.ids, greedy + 10, 10 * sizeof(int32_t)) == 0,
                  "%s: continuation after cache reuse differs", name);
            pio_engine_seq_reset(e, 0);
            CHECK_OK(pio_engine_generate(e, 0, longer, n + 10, &gp, collect_tokens, &c3, &res));
            CHECK(res.n_reused == 0, "%s: reset did not clear the cache", name);
            CHECK(c3.n == 10 && memcmp(c3.ids, c2.ids, 10 * sizeof(int32_t)) == 0,
                  "%s: fresh and cached continuations differ", name);
        }
    }

    /* 4. two sequences in one batch, tokens interleaved */
    {
        int total = n + n2, i1 = 0, i2 = 0, k = 0;
        int32_t *tok = malloc((size_t)total * sizeof(int32_t));
        int32_t *pos = malloc((size_t)total * sizeof(int32_t));
        int32_t *seq = malloc((size_t)total * sizeof(int32_t));
        uint8_t *want = calloc((size_t)total, 1);
        float *out = malloc(2 * (size_t)V * sizeof(float));
        int row_of_seq[2] = { -1, -1 }, rows = 0;
        pio_engine_seq_reset(e, 0);
        pio_engine_seq_reset(e, 1);
        while (k < total) {                 /* alternate between the sequences */
            if (i1 < n && (k % 2 == 0 || i2 >= n2)) {
                tok[k] = prompt[i1]; pos[k] = i1; seq[k] = 0; want[k] = (i1 == n - 1); i1++;
            } else {
                tok[k] = prompt2[i2]; pos[k] = i2; seq[k] = 1; want[k] = (i2 == n2 - 1); i2++;
            }
            if (want[k])
                row_of_seq[seq[k]] = rows++;
            k++;
        }
        {
            pio_batch b = { total, tok, pos, seq, want };
            CHECK_OK(pio_engine_forward(e, &b, out));
        }
        max_diff = max_ref = 0;
        row_diff(out + (size_t)row_of_seq[0] * V, cJSON_GetArrayItem(cJSON_GetObjectItem(g, "logits"), n - 1),
                 &max_diff, &max_ref);
        row_diff(out + (size_t)row_of_seq[1] * V,
                 cJSON_GetObjectItem(cJSON_GetObjectItem(g, "golden_second_prompt"), "last_logits"),
                 &max_diff, &max_ref);
        printf("%s: batch of 2 sequences (%d tokens): max|dlogit| = %.3g\n", name, total, max_diff);
        CHECK(max_diff <= 1e-4 * max_ref, "%s: batched logits differ: %.3g", name, max_diff);
        free(tok); free(pos); free(seq); free(want); free(out);
    }

    /* 5. a prompt longer than the context */
    {
        int ctx = pio_engine_n_ctx(e), i;
        int32_t *big = malloc((size_t)(ctx + 1) * sizeof(int32_t));
        pio_gen_params gp;
        pio_gen_result res;
        pio_status st;
        for (i = 0; i <= ctx; i++)
            big[i] = prompt[i % n];
        pio_engine_gen_params_default(e, &gp);
        st = pio_engine_generate(e, 0, big, ctx + 1, &gp, NULL, NULL, &res);
        CHECK(st == PIO_STATUS_ERR_LIMIT, "%s: overlong prompt gave %s", name, pio_status_name(st));
        CHECK(strstr(pio_last_error(), "context") != NULL, "message: %s", pio_last_error());
        free(big);
    }
out:
    pio_engine_free(e);
    cJSON_Delete(g);
}


#endif
