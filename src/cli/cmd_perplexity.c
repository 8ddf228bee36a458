/*
 * cmd_perplexity.c - `pio perplexity`: mean NLL and PPL of a model on a text
 * file, the way transformers' perplexity recipe computes it.
 *
 * The file is tokenized once (no special tokens). Windows of --ctx tokens
 * start every --stride tokens (default: stride = ctx, non-overlapping). In
 * each window only the tokens not scored by an earlier window are targets;
 * token j of a window is predicted from the logits at j-1, so a window
 * never scores its own first token. PPL = exp(Σ NLL / #targets).
 */
#include "cli/cli.h"
#include "cli/options.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void ppl_usage(FILE *f)
{
    fprintf(f, "usage: pio perplexity -m DIR -f FILE [--ctx N] [--stride N] [options]\n\n"
               "Perplexity of the model on FILE with windows of --ctx tokens (default: the model's\n"
               "context, at most 4096) every --stride tokens (default: --ctx, non-overlapping).\n"
               "Prints the mean NLL, the PPL and the number of scored tokens.\n\n"
               "options:\n"
               "  -f, --file PATH       the text to score\n"
               "      --stride N        window step in tokens\n"
               "      --json            print the result as one JSON object\n"
               CLI_MODEL_OPTS_HELP
               "  -h, --help            this help\n");
}

/* log Σ exp(x) over x[0..n), stable. */
static double log_sum_exp(const float *x, int64_t n)
{
    float m = -INFINITY;
    double s = 0.0;
    int64_t i;
    for (i = 0; i < n; i++)
        if (x[i] > m)
            m = x[i];
    for (i = 0; i < n; i++)
        s += exp((double)(x[i] - m));
    return (double)m + log(s);
}

int pio_cmd_perplexity(int argc, char **argv)
{
    cli_model_opts mo = { 0 };
    const char *file = NULL;
    long stride = 0;
    bool json = false, tty = isatty(STDERR_FILENO);
    pio_engine *e = NULL;
    FILE *f = NULL;
    char *text = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0, len = 0, cap = 1 << 16, r;
    float *logits = NULL;
    double nll = 0.0;
    int64_t n_scored = 0, V, begin, prev_end = 0;
    int i, rc = 1, ctx;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        int pr = cli_parse_model_opt(&mo, argc, argv, &i);
        if (pr) {
            if (pr < 0)
                return 2;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            ppl_usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && i + 1 < argc) {
            file = argv[++i];
        } else if (!strcmp(a, "--stride") && i + 1 < argc) {
            if (cli_parse_int(a, argv[++i], 1, 1 << 30, &stride))
                return 2;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else {
            fprintf(stderr, "pio perplexity: unknown or incomplete option \"%s\"\n", a);
            ppl_usage(stderr);
            return 2;
        }
    }
    if (!file) {
        fprintf(stderr, "pio perplexity: -f FILE is required\n");
        return 2;
    }
    f = fopen(file, "rb");
    if (!f) {
        fprintf(stderr, "pio perplexity: cannot open %s\n", file);
        return 1;
    }
    text = malloc(cap);
    while (text && (r = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += r;
        if (len + 1 == cap) {
            char *nb = realloc(text, cap *= 2);
            if (!nb) {
                free(text);
                text = NULL;
            }
            text = nb;
        }
    }
    fclose(f);
    if (!text)
        return pio_cli_fail("out of memory reading the text");
    text[len] = '\0';

    if (cli_load_engine(&mo, true, 1, &e))
        goto out;
    if (!pio_engine_tokenizer(e)) {
        fprintf(stderr, "pio perplexity: the model directory has no tokenizer.json\n");
        goto out;
    }
    if (pio_tokenizer_encode(pio_engine_tokenizer(e), text, len, &ids, &n_ids)) {
        fprintf(stderr, "pio perplexity: %s: %s\n", file, pio_last_error());
        goto out;
    }
    ctx = pio_engine_n_ctx(e);
    if (stride <= 0 || stride > ctx)
        stride = ctx;
    if (n_ids < 2) {
        fprintf(stderr, "pio perplexity: %s has fewer than 2 tokens\n", file);
        goto out;
    }
    V = pio_engine_model_info(e)->n_vocab;
    for (begin = 0; begin < (int64_t)n_ids; begin += stride) {
        int64_t end = begin + ctx < (int64_t)n_ids ? begin + ctx : (int64_t)n_ids;
        int64_t wlen = end - begin, first_target = prev_end - begin, j;
        if (first_target < 1)
            first_target = 1;          /* a window cannot score its first token */
        if (pio_engine_logits(e, ids + begin, (int)wlen, &logits)) {
            fprintf(stderr, "pio perplexity: %s\n", pio_last_error());
            goto out;
        }
        for (j = first_target; j < wlen; j++) {
            const float *row = logits + (j - 1) * V;
            nll += log_sum_exp(row, V) - (double)row[ids[begin + j]];
            n_scored++;
        }
        free(logits);
        logits = NULL;
        prev_end = end;
        if (tty)
            fprintf(stderr, "\rperplexity: %lld/%zu tokens, running PPL %.4f", (long long)end, n_ids,
                    exp(nll / (double)(n_scored ? n_scored : 1)));
        if (end == (int64_t)n_ids)
            break;
    }
    if (tty)
        fprintf(stderr, "\n");
    if (json)
        printf("{\"nll_mean\": %.9g, \"ppl\": %.9g, \"n_tokens\": %lld, \"ctx\": %d, \"stride\": %ld}\n",
               nll / (double)n_scored, exp(nll / (double)n_scored), (long long)n_scored, ctx, stride);
    else
        printf("mean NLL %.6f  PPL %.4f  over %lld tokens (ctx %d, stride %ld)\n",
               nll / (double)n_scored, exp(nll / (double)n_scored), (long long)n_scored, ctx, stride);
    rc = 0;
out:
    free(logits);
    free(ids);
    free(text);
    pio_engine_free(e);
    return rc;
}
