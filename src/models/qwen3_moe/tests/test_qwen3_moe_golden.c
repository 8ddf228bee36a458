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
 * The parity checks themselves are in tests/golden.h.
 */
#include "golden.h"

static const char *const fixtures[] = { "e8_top2_step2_f32_fused", "e16_top4_mlponly_bf16" };

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
        golden_check_fixture("qwen3_moe", fixtures[i], plugin_dir);
    for (i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        test_q8_0(fixtures[i], plugin_dir);
    pio_plugins_reset();
    return check_report("test_qwen3_moe_golden");
}
