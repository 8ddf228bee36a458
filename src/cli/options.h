/*
 * options.h - options shared by the subcommands that load a model.
 */
#ifndef PIO_CLI_OPTIONS_H
#define PIO_CLI_OPTIONS_H

#include "pio/engine.h"

typedef struct cli_model_opts {
    const char *model;        /* -m DIR; NULL = the bundled demo model */
    int n_threads;            /* -t N */
    int n_ctx;                /* -c/--ctx N */
    const char *plugin_dir;   /* --plugin-dir DIR */
    const char *dtype;        /* --dtype SPEC: quantize on load; NULL = as stored */
    const char *kv_type;      /* --kv-type f16|f32|bf16; NULL = f16 */
    bool preload;             /* --preload: MoE experts read and repacked at load too */
} cli_model_opts;

#define CLI_MODEL_OPTS_HELP \
    "  -m, --model DIR       Hugging Face model directory (default: the bundled demo model)\n" \
    "  -t, --threads N       worker threads (default: all cores)\n" \
    "  -c, --ctx N           context length in tokens (default: the model's, at most 4096)\n" \
    "      --plugin-dir DIR  also load model plugins from DIR\n" \
    "      --dtype SPEC      convert weight matrices on load: f32, f16, bf16, q8_0, q4_0,\n" \
    "                        q4_k or q6_k, with per-tensor overrides PATTERN=TYPE\n" \
    "                        (e.g. q4_0,lm_head.weight=q8_0; default: as stored)\n" \
    "      --kv-type TYPE    KV cache rows: f16 (default), f32 or bf16\n" \
    "      --preload         read (and repack) MoE experts at load as well: the whole\n" \
    "                        model resident, no first-use cost (default: an expert is\n" \
    "                        paged in the first time the router selects it)\n"

/* If argv[*i] is a model option, consume it (and its value) and return 1;
 * return 0 if it is not one, -1 (message printed) if its value is bad. */
int cli_parse_model_opt(cli_model_opts *o, int argc, char **argv, int *i);

/* Parse a non-negative integer option value; -1 (message printed) if bad. */
int cli_parse_int(const char *opt, const char *val, long lo, long hi, long *out);
int cli_parse_float(const char *opt, const char *val, double *out);

/* The bundled demo model directory (beside the executable or in the install
 * prefix), or NULL when there is none. */
const char *cli_default_model_dir(void);

/* Load the model named by `o` (or the demo model); prints the error itself. */
int cli_load_engine(const cli_model_opts *o, bool progress, int n_seqs, pio_engine **out);

#endif

/* Sampling/generation options shared by run and chat. */
#define CLI_MAX_STOPS 16
typedef struct cli_gen_opts {
    bool set_temp, set_top_k, set_top_p, set_min_p, set_rep, set_seed;
    double temperature, top_p, min_p, repetition_penalty, presence_penalty, frequency_penalty;
    long top_k, max_tokens;
    unsigned long long seed;
    const char *stops[CLI_MAX_STOPS + 1];
    int n_stops;
    bool ignore_eos;
} cli_gen_opts;

#define CLI_GEN_OPTS_HELP \
    "  -n, --max-tokens N    tokens to generate (default: 256 for run, -1 = until the context is full)\n" \
    "      --temp X          temperature; 0 = greedy (default: generation_config.json)\n" \
    "      --top-k N         keep the N most likely tokens (0 = off)\n" \
    "      --top-p X         nucleus sampling threshold (1 = off)\n" \
    "      --min-p X         drop tokens below X times the top probability (0 = off)\n" \
    "      --repeat-penalty X    transformers' repetition penalty (1 = off)\n" \
    "      --presence-penalty X  OpenAI presence penalty (0 = off)\n" \
    "      --frequency-penalty X OpenAI frequency penalty (0 = off)\n" \
    "      --seed N          random seed (same seed, same output)\n" \
    "      --stop STR        stop when STR is generated (repeatable)\n" \
    "      --ignore-eos      do not stop at end-of-sequence tokens\n"

void cli_gen_opts_init(cli_gen_opts *g, long default_max_tokens);
int cli_parse_gen_opt(cli_gen_opts *g, int argc, char **argv, int *i);
/* Engine defaults (generation_config.json) overridden by the options given. */
void cli_gen_params(const cli_gen_opts *g, const pio_engine *e, pio_gen_params *p);
