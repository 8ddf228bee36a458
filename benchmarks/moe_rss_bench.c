/*
 * moe_rss_bench.c - how the resident set of a mixture-of-experts model
 * follows the experts actually used (issue #5: "with mmap'd weights,
 * experts never selected are never paged in").
 *
 *   build/benchmarks/moe_rss_bench MODEL_DIR [N_TOKENS] [--prompt N] [--dtype SPEC]
 *
 * Loads the model (no page-in pass), then prefills a fixed prompt of
 * --prompt N tokens (default 32) and generates up to N_TOKENS greedily
 * (default 64), printing after each stage:
 * VmRSS, RssAnon, RssFile (/proc/self/status) and the resident bytes of the
 * model file's mappings (sum of Rss over /proc/self/smaps entries whose path
 * ends in .safetensors or .gguf), against the weight bytes the plugin reports,
 * and how much of that is private (Anonymous: pages written in place, as the
 * MoE layer does when it repacks an expert for the kernels the first time it
 * is routed to; such a page replaces the file's page, it does not add to it).
 * Make a test model with benchmarks/make_moe_rss_model.py.
 */
#include "pio/engine.h"
#include "common/cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A "Key:   123 kB" line of /proc/self/status, in bytes; -1 if absent. */
static long long status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long v = -1;
    size_t kl = strlen(key);
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = atoll(line + kl + 1) * 1024;
            break;
        }
    fclose(f);
    return v;
}

/* Resident bytes of the mappings of *.safetensors / *.gguf files; *anon =
 * those of them that are private copies (written in place). */
static long long model_file_rss(long long *anon)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[4096];
    bool in_model = false;
    long long sum = 0;
    *anon = 0;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == ' '))
            line[--n] = '\0';
        if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) {
            /* a mapping's header: "start-end perms offset dev inode [path]"
             * (the other lines are "Key: value", keys capitalized) */
            in_model = (n > 12 && strcmp(line + n - 12, ".safetensors") == 0) ||
                       (n > 5 && strcmp(line + n - 5, ".gguf") == 0);
        } else if (in_model && strncmp(line, "Rss:", 4) == 0) {
            sum += atoll(line + 4) * 1024;
        } else if (in_model && strncmp(line, "Anonymous:", 10) == 0) {
            *anon += atoll(line + 10) * 1024;
        }
    }
    fclose(f);
    return sum;
}

static void report(const char *stage, double weight_bytes)
{
    long long anon, file = model_file_rss(&anon);
    printf("%-28s VmRSS %8.1f MB  RssAnon %7.1f MB  RssFile %8.1f MB  model file resident %8.1f MB (%5.1f%% of %.1f MB; private %.2f MB)\n",
           stage, status_bytes("VmRSS") / 1e6, status_bytes("RssAnon") / 1e6, status_bytes("RssFile") / 1e6,
           file / 1e6, 100.0 * (double)file / weight_bytes, weight_bytes / 1e6, anon / 1e6);
}

static bool count_tokens(void *user, int32_t token, const char *text, size_t len)
{
    (void)text;
    (void)len;
    if (token >= 0)
        ++*(int *)user;
    return true;
}

int main(int argc, char **argv)
{
    pio_engine_params ep;
    pio_engine *e = NULL;
    pio_gen_params gp;
    pio_gen_result res;
    int32_t prompt[256];
    int n_tok = 64, n_prompt = 32, got = 0, i;
    const char *dtype = NULL, *dir = NULL;
    double wb;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dtype") && i + 1 < argc)
            dtype = argv[++i];
        else if (!strcmp(argv[i], "--prompt") && i + 1 < argc)
            n_prompt = atoi(argv[++i]);
        else if (!dir)
            dir = argv[i];
        else
            n_tok = atoi(argv[i]);
    }
    if (!dir) {
        fprintf(stderr, "usage: moe_rss_bench MODEL_DIR [N_TOKENS] [--prompt N] [--dtype SPEC]\n");
        return 2;
    }
    if (n_prompt < 1 || n_prompt > 256)
        n_prompt = 32;
    pio_engine_params_default(&ep);
    ep.opts.n_threads = 2;
    ep.opts.n_ctx = 512;
    ep.opts.dtype = dtype;
    ep.progress = false;
    report("before load", 1);
    if (pio_engine_load(dir, &ep, &e)) {
        fprintf(stderr, "moe_rss_bench: %s\n", pio_last_error());
        return 1;
    }
    wb = (double)pio_engine_model_info(e)->weight_bytes;
    printf("model: %s, %s, %.1f MB of weights; kernels %s\n", pio_engine_model_info(e)->architecture,
           pio_engine_model_info(e)->dtypes, wb / 1e6, pio_cpu_level_name(pio_cpu_level_active()));
    report("after load", wb);
    for (i = 0; i < n_prompt; i++)
        prompt[i] = (int32_t)((i * 37 + 11) % 400);
    pio_engine_gen_params_default(e, &gp);
    pio_sampler_params_default(&gp.sampling);    /* greedy */
    gp.ignore_eos = true;
    gp.max_tokens = 1;
    if (pio_engine_generate(e, 0, prompt, n_prompt, &gp, count_tokens, &got, &res)) {
        fprintf(stderr, "moe_rss_bench: %s\n", pio_last_error());
        pio_engine_free(e);
        return 1;
    }
    {
        char label[64];
        snprintf(label, sizeof label, "after %d-token prefill", n_prompt);
        report(label, wb);
    }
    {
        int steps[] = { 1, 4, 16, 64, 256 };
        /* the same prompt each time (its cache rows are reused); greedy, so
         * each call decodes the previous call's tokens and more */
        pio_engine_seq_reset(e, 0);
        for (i = 0; i < (int)(sizeof steps / sizeof steps[0]) && steps[i] <= n_tok; i++) {
            char label[64];
            gp.max_tokens = steps[i];
            got = 0;
            if (pio_engine_generate(e, 0, prompt, n_prompt, &gp, count_tokens, &got, &res)) {
                fprintf(stderr, "moe_rss_bench: %s\n", pio_last_error());
                break;
            }
            snprintf(label, sizeof label, "after %d decoded tokens", got);
            report(label, wb);
        }
    }
    printf("peak: VmHWM %.1f MB\n", status_bytes("VmHWM") / 1e6);
    pio_engine_free(e);
    return 0;
}
