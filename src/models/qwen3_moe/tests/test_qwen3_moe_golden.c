/*
 * test_qwen3_moe_golden.c - the qwen3_moe plugin against transformers.
 *
 * For each tiny checkpoint in tests/fixtures/qwen3_moe (made by
 * tools/make_tiny_qwen3_moe.py with transformers' own Qwen3MoeForCausalLM;
 * 8 experts top-2 renormalized with decoder_sparse_step 2 in transformers'
 * fused expert layout, f32; 16 experts top-4 unnormalized with
 * mlp_only_layers in the per-expert layout, bf16):
 *   - logits at every prompt position: max|Δ| <= 1e-4 · max|logit|;
 *   - the greedy 20-token continuation is identical (padding rows masked);
 *   - two sequences in one batch give each sequence's own logits;
 *   - a chat-style second turn that extends the cached prompt gives the same
 *     logits as a fresh run (KV prefix reuse);
 *   - a prompt longer than the context fails with a clear error;
 *   - quantized on load (--dtype q8_0, experts included) the model runs,
 *     its logits stay near f32's and the expert matrices are Q8_0.
 */
#include "check.h"
#include "pio/engine.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char *const fixtures[] = { "e8_top2_step2_f32_fused", "e16_top4_mlponly_bf16" };

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

static void test_fixture(const char *name, const char *plugin_dir)
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

    snprintf(dir, sizeof dir, "tests/fixtures/qwen3_moe/%s", name);
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
    ep.kv_dtype = PIO_DTYPE_F32;     /* f32 parity: an f16 cache is ~1e-3 relative off */
    CHECK_OK(pio_engine_load(dir, &ep, &e));
    if (!e)
        goto out;
    V = pio_engine_model_info(e)->n_vocab;
    CHECK(V == cJSON_GetObjectItem(g, "vocab_size")->valueint, "%s: n_vocab %lld", name, (long long)V);
    CHECK(strcmp(pio_engine_model_info(e)->name, "qwen3_moe") == 0, "%s: plugin %s", name,
          pio_engine_model_info(e)->name);

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

/* --dtype q8_0: every matrix, the experts included (per-expert 2-D tensors
 * and transformers' fused 3-D ones), is converted; logits stay near f32. */
static void test_q8_0(const char *name, const char *plugin_dir)
{
    char dir[512], path[600];
    char *json;
    cJSON *g;
    pio_engine *e = NULL;
    pio_engine_params ep;
    int32_t prompt[256];
    float *logits = NULL;
    double max_diff = 0, max_ref = 0;
    const cJSON *row;
    int n, t = 0;
    int64_t V;

    snprintf(dir, sizeof dir, "tests/fixtures/qwen3_moe/%s", name);
    snprintf(path, sizeof path, "%s/golden.json", dir);
    json = read_file(path);
    CHECK(json != NULL, "cannot read %s", path);
    if (!json)
        return;
    g = cJSON_Parse(json);
    free(json);
    if (!g)
        return;
    n = json_ids(cJSON_GetObjectItem(g, "prompt_ids"), prompt, 256);
    pio_engine_params_default(&ep);
    ep.opts.n_threads = 2;
    ep.opts.dtype = "q8_0";
    ep.plugin_dir = plugin_dir;
    CHECK_OK(pio_engine_load(dir, &ep, &e));
    if (!e)
        goto out;
    /* the matrices' rows (32 or 16 wide) take Q8_0 blocks where 32 divides
     * them; every expert matrix of the fixtures has a 32-wide input */
    CHECK(strstr(pio_engine_model_info(e)->dtypes, "Q8_0") != NULL, "%s q8_0: dtypes %s", name,
          pio_engine_model_info(e)->dtypes);
    V = pio_engine_model_info(e)->n_vocab;
    CHECK_OK(pio_engine_logits(e, prompt, n, &logits));
    if (logits) {
        cJSON_ArrayForEach(row, cJSON_GetObjectItem(g, "logits")) {
            row_diff(logits + (size_t)t * V, row, &max_diff, &max_ref);
            t++;
        }
        printf("%s q8_0: max|dlogit| = %.3g (max|logit| %.3g)\n", name, max_diff, max_ref);
        CHECK(max_diff > 0 && max_diff <= 0.1 * max_ref, "%s q8_0: max|dlogit| %.3g vs %.3g", name, max_diff,
              max_ref);
        free(logits);
        logits = NULL;
    }
    /* decode (one token at a time: the fused single-token expert path, Q8_0
     * gate/up with F32 down where 16-wide rows take no block) must pick what
     * the batched forward (grouped path) argmaxes over the same tokens */
    {
        pio_gen_params gp;
        pio_gen_result res;
        collect c = { .n = 0 };
        int32_t seq[300];
        int n_real = cJSON_GetObjectItem(g, "n_real_tokens")->valueint, i, bad = 0;
        pio_engine_gen_params_default(e, &gp);
        pio_sampler_params_default(&gp.sampling);
        gp.max_tokens = 12;
        gp.ignore_eos = true;
        CHECK_OK(pio_engine_generate(e, 0, prompt, n, &gp, collect_tokens, &c, &res));
        memcpy(seq, prompt, (size_t)n * sizeof(int32_t));
        memcpy(seq + n, c.ids, (size_t)c.n * sizeof(int32_t));
        CHECK_OK(pio_engine_logits(e, seq, n + c.n, &logits));
        for (i = 0; logits && i < c.n; i++) {
            const float *lr = logits + (size_t)(n - 1 + i) * V;
            int best = 0, v;
            for (v = 1; v < n_real; v++)
                if (lr[v] > lr[best])
                    best = v;
            bad += best != c.ids[i];
        }
        CHECK(c.n == 12 && bad == 0, "%s q8_0: %d of %d decoded tokens differ from the batched argmax", name, bad,
              c.n);
        free(logits);
    }
out:
    pio_engine_free(e);
    cJSON_Delete(g);
}

int main(void)
{
    char plugin_dir[1024];
    const char *build = getenv("PIO_BUILD_DIR");
    size_t i;
    snprintf(plugin_dir, sizeof plugin_dir, "%s/plugins", build ? build : "build");
    for (i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        test_fixture(fixtures[i], plugin_dir);
    for (i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        test_q8_0(fixtures[i], plugin_dir);
    pio_plugins_reset();
    return check_report("test_qwen3_moe_golden");
}
