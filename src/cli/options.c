/*
 * options.c - model options and engine loading shared by the subcommands.
 */
#include "cli/options.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int cli_parse_int(const char *opt, const char *val, long lo, long hi, long *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi) {
        fprintf(stderr, "pio: %s expects an integer in [%ld, %ld], got \"%s\"\n", opt, lo, hi, val);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *opt, const char *val, double *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(val, &end);
    if (errno || end == val || *end) {
        fprintf(stderr, "pio: %s expects a number, got \"%s\"\n", opt, val);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_model_opt(cli_model_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    long v;
    if (!strcmp(a, "--preload")) {
        o->preload = true;
        return 1;
    }
    bool takes_value = !strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "-t") ||
                       !strcmp(a, "--threads") || !strcmp(a, "-c") || !strcmp(a, "--ctx") ||
                       !strcmp(a, "--plugin-dir") || !strcmp(a, "--dtype") ||
                       !strcmp(a, "--kv-type");
    if (!takes_value)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "pio: %s needs a value\n", a);
        return -1;
    }
    const char *val = argv[++*i];
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        o->model = val;
    } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        if (cli_parse_int(a, val, 1, 1024, &v))
            return -1;
        o->n_threads = (int)v;
    } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
        if (cli_parse_int(a, val, 1, INT_MAX, &v))
            return -1;
        o->n_ctx = (int)v;
    } else if (!strcmp(a, "--dtype")) {
        if (pio_requant_spec_check(val)) {
            fprintf(stderr, "pio: --dtype: %s\n", pio_last_error());
            return -1;
        }
        o->dtype = val;
    } else if (!strcmp(a, "--kv-type")) {
        int dt = pio_dtype_from_name(val);
        if (dt != PIO_DTYPE_F16 && dt != PIO_DTYPE_F32 && dt != PIO_DTYPE_BF16) {
            fprintf(stderr, "pio: --kv-type expects f16, f32 or bf16, got \"%s\"\n", val);
            return -1;
        }
        o->kv_type = val;
    } else {
        o->plugin_dir = val;
    }
    return 1;
}

static bool is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

const char *cli_default_model_dir(void)
{
    static char found[PATH_MAX];
    static const char *const rel[] = {
        "models/demo",                 /* beside the binary */
        "../models/demo",              /* build tree: build/pio -> models/demo */
        "../share/pio/models/demo",    /* install prefix: bin/pio */
    };
    char exe[PATH_MAX], *slash;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    size_t i;
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    for (i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        char cand[PATH_MAX + 64], cfg[PATH_MAX + 96];
        struct stat sb;
        snprintf(cand, sizeof cand, "%s/%s", exe, rel[i]);
        snprintf(cfg, sizeof cfg, "%s/config.json", cand);
        if (is_dir(cand) && stat(cfg, &sb) == 0) {
            return realpath(cand, found) ? found : NULL;
        }
    }
    return NULL;
}

int cli_load_engine(const cli_model_opts *o, bool progress, int n_seqs, pio_engine **out)
{
    pio_engine_params p;
    const char *dir = o->model;
    pio_status st;

    if (!dir) {
        dir = cli_default_model_dir();
        if (!dir) {
            fprintf(stderr, "pio: no -m given and the bundled demo model (models/demo) was not found\n");
            return 1;
        }
    }
    pio_engine_params_default(&p);
    p.opts.n_threads = o->n_threads;
    p.opts.n_ctx = o->n_ctx;
    p.opts.n_seqs = n_seqs;
    p.plugin_dir = o->plugin_dir;
    p.opts.dtype = o->dtype;
    if (o->kv_type)
        p.kv_dtype = (pio_dtype)pio_dtype_from_name(o->kv_type);
    p.progress = progress;
    p.preload = o->preload;
    st = pio_engine_load(dir, &p, out);
    if (st) {
        fprintf(stderr, "pio: %s\n", pio_last_error());
        return 1;
    }
    return 0;
}

void cli_gen_opts_init(cli_gen_opts *g, long default_max_tokens)
{
    memset(g, 0, sizeof *g);
    g->max_tokens = default_max_tokens;
}

int cli_parse_gen_opt(cli_gen_opts *g, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *val;
    static const char *const valued[] = {
        "-n", "--max-tokens", "--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty",
        "--presence-penalty", "--frequency-penalty", "--seed", "--stop",
    };
    size_t k;
    bool known = false;

    if (!strcmp(a, "--ignore-eos")) {
        g->ignore_eos = true;
        return 1;
    }
    for (k = 0; k < sizeof valued / sizeof valued[0]; k++)
        if (!strcmp(a, valued[k]))
            known = true;
    if (!known)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "pio: %s needs a value\n", a);
        return -1;
    }
    val = argv[++*i];
    if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens"))
        return cli_parse_int(a, val, -1, INT_MAX, &g->max_tokens) ? -1 : 1;
    if (!strcmp(a, "--top-k")) {
        g->set_top_k = true;
        return cli_parse_int(a, val, 0, INT_MAX, &g->top_k) ? -1 : 1;
    }
    if (!strcmp(a, "--seed")) {
        char *end;
        errno = 0;
        g->seed = strtoull(val, &end, 10);
        if (errno || end == val || *end) {
            fprintf(stderr, "pio: --seed expects a non-negative integer, got \"%s\"\n", val);
            return -1;
        }
        g->set_seed = true;
        return 1;
    }
    if (!strcmp(a, "--stop")) {
        if (g->n_stops >= CLI_MAX_STOPS) {
            fprintf(stderr, "pio: at most %d --stop strings\n", CLI_MAX_STOPS);
            return -1;
        }
        g->stops[g->n_stops++] = val;
        g->stops[g->n_stops] = NULL;
        return 1;
    }
    if (!strcmp(a, "--temp")) {
        g->set_temp = true;
        return cli_parse_float(a, val, &g->temperature) ? -1 : 1;
    }
    if (!strcmp(a, "--top-p")) {
        g->set_top_p = true;
        return cli_parse_float(a, val, &g->top_p) ? -1 : 1;
    }
    if (!strcmp(a, "--min-p")) {
        g->set_min_p = true;
        return cli_parse_float(a, val, &g->min_p) ? -1 : 1;
    }
    if (!strcmp(a, "--repeat-penalty")) {
        g->set_rep = true;
        return cli_parse_float(a, val, &g->repetition_penalty) ? -1 : 1;
    }
    if (!strcmp(a, "--presence-penalty"))
        return cli_parse_float(a, val, &g->presence_penalty) ? -1 : 1;
    return cli_parse_float(a, val, &g->frequency_penalty) ? -1 : 1;
}

void cli_gen_params(const cli_gen_opts *g, const pio_engine *e, pio_gen_params *p)
{
    pio_engine_gen_params_default(e, p);
    if (g->set_temp)
        p->sampling.temperature = (float)g->temperature;
    if (g->set_top_k)
        p->sampling.top_k = (int)g->top_k;
    if (g->set_top_p)
        p->sampling.top_p = (float)g->top_p;
    if (g->set_min_p)
        p->sampling.min_p = (float)g->min_p;
    if (g->set_rep)
        p->sampling.repetition_penalty = (float)g->repetition_penalty;
    p->sampling.presence_penalty = (float)g->presence_penalty;
    p->sampling.frequency_penalty = (float)g->frequency_penalty;
    /* without --seed every run samples differently, as llama.cpp does */
    p->sampling.seed = g->set_seed ? g->seed : (unsigned long long)time(NULL) ^ (unsigned long long)getpid();
    p->max_tokens = (int)g->max_tokens;
    p->stop = g->n_stops ? g->stops : NULL;
    p->ignore_eos = g->ignore_eos;
}
