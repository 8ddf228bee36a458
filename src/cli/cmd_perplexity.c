/*
 * cmd_perplexity.c - `pio perplexity`: mean NLL and PPL of a model on a text
 * file, the way transformers' perplexity recipe computes it.
 *
 * The file is tokenized once (no special tokens). Windows of --ctx tokens
 * start every --stride tokens (default: stride = ctx, non-overlapping). In
 * each window only the tokens not scored by an earlier window are targets;
 * token j of a window is predicted from the logits at j-1, so a window
 * never scores its own first token. PPL = exp(Σ NLL / #targets).
 *
 * With --kl-base, each scored position's distribution is also compared with
 * a reference run's (another model directory, run side by side, or a file
 * written by --save-logits): mean KL(base || this) and top-1 agreement.
 * That is how weight or cache formats report their quality cost.
 *
 * Logits file (--save-logits): "PIOLOGP1", u32 n_vocab, u32 ctx, u32 stride,
 * u64 n_ids, i32 ids[n_ids], then for every scored position its
 * log-softmax as n_vocab f16 values, in order. Little-endian.
 */
#include "cli/cli.h"
#include "cli/options.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/kernels.h"

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
               "      --kl-base PATH    compare with a reference: a model directory (run side by side)\n"
               "                        or a file from --save-logits; prints mean KL and top-1 agreement\n"
               "      --save-logits FILE  write this run's log-probabilities for later --kl-base use\n"
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

/* out[i] = x[i] - log Σ exp(x); returns the argmax. */
static int64_t log_softmax(float *out, const float *x, int64_t n)
{
    double lse = log_sum_exp(x, n);
    int64_t i, best = 0;
    for (i = 0; i < n; i++) {
        out[i] = (float)((double)x[i] - lse);
        if (x[i] > x[best])
            best = i;
    }
    return best;
}

static const char logits_magic[8] = { 'P', 'I', 'O', 'L', 'O', 'G', 'P', '1' };

typedef struct logits_header {
    uint32_t n_vocab, ctx, stride;
    uint64_t n_ids;
} logits_header;

static int write_header(FILE *f, const logits_header *h, const int32_t *ids)
{
    return fwrite(logits_magic, 8, 1, f) == 1 && fwrite(&h->n_vocab, 4, 1, f) == 1 &&
                   fwrite(&h->ctx, 4, 1, f) == 1 && fwrite(&h->stride, 4, 1, f) == 1 &&
                   fwrite(&h->n_ids, 8, 1, f) == 1 &&
                   fwrite(ids, sizeof(int32_t), (size_t)h->n_ids, f) == (size_t)h->n_ids
               ? 0 : -1;
}

/* Read and check a logits file's header against this run. */
static int read_header(FILE *f, const char *path, const logits_header *want, const int32_t *ids)
{
    char magic[8];
    logits_header h;
    uint64_t i;
    int32_t id;
    if (fread(magic, 8, 1, f) != 1 || memcmp(magic, logits_magic, 8) ||
        fread(&h.n_vocab, 4, 1, f) != 1 || fread(&h.ctx, 4, 1, f) != 1 ||
        fread(&h.stride, 4, 1, f) != 1 || fread(&h.n_ids, 8, 1, f) != 1) {
        fprintf(stderr, "pio perplexity: %s: not a --save-logits file\n", path);
        return -1;
    }
    if (h.n_vocab != want->n_vocab || h.ctx != want->ctx || h.stride != want->stride ||
        h.n_ids != want->n_ids) {
        fprintf(stderr, "pio perplexity: %s: made with n_vocab %u, ctx %u, stride %u, %llu tokens; "
                "this run has %u, %u, %u, %llu\n", path, h.n_vocab, h.ctx, h.stride,
                (unsigned long long)h.n_ids, want->n_vocab, want->ctx, want->stride,
                (unsigned long long)want->n_ids);
        return -1;
    }
    for (i = 0; i < h.n_ids; i++)
        if (fread(&id, 4, 1, f) != 1 || id != ids[i]) {
            fprintf(stderr, "pio perplexity: %s: token %llu differs (another text or tokenizer)\n",
                    path, (unsigned long long)i);
            return -1;
        }
    return 0;
}

/* f16 with round-to-nearest, for log-probabilities (normal range and -inf). */
static uint16_t f32_to_f16(float f)
{
    uint32_t u, sign, man;
    int exp;
    memcpy(&u, &f, 4);
    sign = (u >> 16) & 0x8000u;
    exp = (int)((u >> 23) & 0xff) - 127 + 15;
    man = u & 0x7fffffu;
    if (exp >= 31)
        return (uint16_t)(sign | 0x7c00u);          /* overflow and -inf -> inf */
    if (exp <= 0)
        return (uint16_t)sign;                      /* tiny -> 0 (probabilities ~1) */
    man += 0x0fffu + ((man >> 13) & 1u);
    if (man & 0x800000u) {
        man = 0;
        if (++exp >= 31)
            return (uint16_t)(sign | 0x7c00u);
    }
    return (uint16_t)(sign | ((uint32_t)exp << 10) | (man >> 13));
}

int pio_cmd_perplexity(int argc, char **argv)
{
    cli_model_opts mo = { 0 };
    const char *file = NULL, *kl_base = NULL, *save_path = NULL;
    long stride = 0;
    pio_engine *base = NULL;
    FILE *base_file = NULL, *save_file = NULL;
    float *lp = NULL, *lp_base = NULL, *base_logits = NULL;
    uint16_t *h16 = NULL;
    double kl_sum = 0.0, kl_max = 0.0;
    int64_t n_top1 = 0;
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
        } else if (!strcmp(a, "--kl-base") && i + 1 < argc) {
            kl_base = argv[++i];
        } else if (!strcmp(a, "--save-logits") && i + 1 < argc) {
            save_path = argv[++i];
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
    {
        logits_header h = { (uint32_t)V, (uint32_t)ctx, (uint32_t)stride, (uint64_t)n_ids };
        struct stat sb;
        if (kl_base && stat(kl_base, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            cli_model_opts bo = mo;
            bo.model = kl_base;
            bo.dtype = NULL;          /* the reference runs as stored, not quantized */
            bo.n_ctx = ctx;
            if (cli_load_engine(&bo, true, 1, &base))
                goto out;
            if (pio_engine_model_info(base)->n_vocab != V) {
                fprintf(stderr, "pio perplexity: --kl-base %s has %lld logits per row, this model %lld\n",
                        kl_base, (long long)pio_engine_model_info(base)->n_vocab, (long long)V);
                goto out;
            }
        } else if (kl_base) {
            base_file = fopen(kl_base, "rb");
            if (!base_file) {
                fprintf(stderr, "pio perplexity: --kl-base %s: no such directory or file\n", kl_base);
                goto out;
            }
            if (read_header(base_file, kl_base, &h, ids))
                goto out;
        }
        if (save_path) {
            save_file = fopen(save_path, "wb");
            if (!save_file || write_header(save_file, &h, ids)) {
                fprintf(stderr, "pio perplexity: cannot write %s\n", save_path);
                goto out;
            }
        }
        lp = malloc((size_t)V * sizeof(float));
        lp_base = malloc((size_t)V * sizeof(float));
        h16 = malloc((size_t)V * sizeof(uint16_t));
        if (!lp || !lp_base || !h16) {
            pio_cli_fail("out of memory");
            goto out;
        }
    }
    for (begin = 0; begin < (int64_t)n_ids; begin += stride) {
        int64_t end = begin + ctx < (int64_t)n_ids ? begin + ctx : (int64_t)n_ids;
        int64_t wlen = end - begin, first_target = prev_end - begin, j;
        if (first_target < 1)
            first_target = 1;          /* a window cannot score its first token */
        if (pio_engine_logits(e, ids + begin, (int)wlen, &logits)) {
            fprintf(stderr, "pio perplexity: %s\n", pio_last_error());
            goto out;
        }
        if (base && pio_engine_logits(base, ids + begin, (int)wlen, &base_logits)) {
            fprintf(stderr, "pio perplexity: --kl-base: %s\n", pio_last_error());
            goto out;
        }
        for (j = first_target; j < wlen; j++) {
            const float *row = logits + (j - 1) * V;
            int64_t top = log_softmax(lp, row, V), top_base = -1, k;
            nll -= (double)lp[ids[begin + j]];
            n_scored++;
            if (save_file) {
                for (k = 0; k < V; k++)
                    h16[k] = f32_to_f16(lp[k]);
                if (fwrite(h16, sizeof(uint16_t), (size_t)V, save_file) != (size_t)V) {
                    fprintf(stderr, "pio perplexity: writing %s failed\n", save_path);
                    goto out;
                }
            }
            if (base) {
                top_base = log_softmax(lp_base, base_logits + (j - 1) * V, V);
            } else if (base_file) {
                if (fread(h16, sizeof(uint16_t), (size_t)V, base_file) != (size_t)V) {
                    fprintf(stderr, "pio perplexity: %s is truncated\n", kl_base);
                    goto out;
                }
                for (k = 0; k < V; k++) {
                    lp_base[k] = pio_f16_to_f32(h16[k]);
                    if (top_base < 0 || lp_base[k] > lp_base[top_base])
                        top_base = k;
                }
            }
            if (top_base >= 0) {
                double kl = 0.0;
                for (k = 0; k < V; k++)
                    if (isfinite(lp_base[k]))
                        kl += exp((double)lp_base[k]) * ((double)lp_base[k] - (double)lp[k]);
                kl_sum += kl;
                if (kl > kl_max)
                    kl_max = kl;
                n_top1 += top == top_base;
            }
        }
        free(logits);
        logits = NULL;
        free(base_logits);
        base_logits = NULL;
        prev_end = end;
        if (tty)
            fprintf(stderr, "\rperplexity: %lld/%zu tokens, running PPL %.4f", (long long)end, n_ids,
                    exp(nll / (double)(n_scored ? n_scored : 1)));
        if (end == (int64_t)n_ids)
            break;
    }
    if (tty)
        fprintf(stderr, "\n");
    if (json) {
        printf("{\"nll_mean\": %.9g, \"ppl\": %.9g, \"n_tokens\": %lld, \"ctx\": %d, \"stride\": %ld",
               nll / (double)n_scored, exp(nll / (double)n_scored), (long long)n_scored, ctx, stride);
        if (kl_base)
            printf(", \"kl_mean\": %.9g, \"kl_max\": %.9g, \"top1_agreement\": %.9g",
                   kl_sum / (double)n_scored, kl_max, (double)n_top1 / (double)n_scored);
        printf("}\n");
    } else {
        printf("mean NLL %.6f  PPL %.4f  over %lld tokens (ctx %d, stride %ld)\n",
               nll / (double)n_scored, exp(nll / (double)n_scored), (long long)n_scored, ctx, stride);
        if (kl_base)
            printf("vs %s: mean KL %.6g  max KL %.6g  top-1 agreement %.4f%%\n", kl_base,
                   kl_sum / (double)n_scored, kl_max, 100.0 * (double)n_top1 / (double)n_scored);
    }
    rc = 0;
out:
    if (save_file && fclose(save_file) && rc == 0) {
        fprintf(stderr, "pio perplexity: writing %s failed\n", save_path);
        rc = 1;
    }
    if (base_file)
        fclose(base_file);
    pio_engine_free(base);
    free(base_logits);
    free(lp);
    free(lp_base);
    free(h16);
    free(logits);
    free(ids);
    free(text);
    pio_engine_free(e);
    return rc;
}
