/*
 * cmd_run.c - `pio run`: generate from a prompt, streaming to stdout.
 */
#include "cli/cli.h"
#include "cli/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static void run_usage(FILE *f)
{
    fprintf(f, "usage: pio run [options] -p PROMPT\n"
               "       pio run [options] --fim-prefix TEXT --fim-suffix TEXT\n\n"
               "Generate text that continues PROMPT and stream it to stdout. Timings go to stderr.\n\n"
               "options:\n"
               "  -p, --prompt TEXT     the prompt (default: read stdin)\n"
               "  -f, --file PATH       read the prompt from a file\n"
               "      --chat            wrap the prompt as one user turn in the model's chat format\n"
               "  -s, --system TEXT     system message (with --chat)\n"
               "      --fim-prefix TEXT fill in the middle: generate the code between PREFIX and\n"
               "      --fim-suffix TEXT SUFFIX, from <|fim_prefix|>PREFIX<|fim_suffix|>SUFFIX<|fim_middle|>\n"
               "                        (the tokenizer must have these tokens; no -p, -f or --chat)\n"
               "      --dry-run         print the prompt's token ids as a JSON array and exit\n"
               "  -q, --quiet           no timings on stderr\n"
               CLI_MODEL_OPTS_HELP CLI_GEN_OPTS_HELP
               "  -h, --help            this help\n");
}

/* Read a whole stream into a NUL-terminated buffer. */
static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0, r;
    char *buf = malloc(cap), *nb;
    if (!buf)
        return NULL;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static bool stream_text(void *user, int32_t token, const char *text, size_t len)
{
    (void)user;
    (void)token;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}

/*
 * The fill-in-the-middle prompt <|fim_prefix|>PREFIX<|fim_suffix|>SUFFIX
 * <|fim_middle|> as ids: the three special tokens by id, the texts encoded
 * on their own (so text that spells a special token stays text). Qwen2.5-
 * and Qwen3-Coder use this prefix-suffix-middle order.
 */
static int fim_prompt(const pio_tokenizer *tok, const char *prefix, const char *suffix,
                      int32_t **ids, size_t *n_ids)
{
    static const char *const names[3] = { "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>" };
    const char *texts[2] = { prefix, suffix };
    int32_t special[3], *out = NULL, *part = NULL, *nb;
    size_t n = 0, np = 0;
    int k;
    for (k = 0; k < 3; k++) {
        special[k] = pio_tokenizer_token_to_id(tok, names[k]);
        if (special[k] < 0) {
            fprintf(stderr, "pio run: the tokenizer has no %s token: this model does not support "
                            "fill-in-the-middle (--fim-prefix/--fim-suffix)\n", names[k]);
            return 1;
        }
    }
    for (k = 0; k < 3; k++) {
        np = 0;
        part = NULL;
        if (k < 2 && pio_tokenizer_encode(tok, texts[k], strlen(texts[k]), &part, &np)) {
            fprintf(stderr, "pio run: --fim-%s: %s\n", k ? "suffix" : "prefix", pio_last_error());
            free(out);
            return 1;
        }
        nb = realloc(out, (n + np + 1) * sizeof *out);
        if (!nb) {
            free(part);
            free(out);
            return pio_cli_fail("out of memory");
        }
        out = nb;
        out[n++] = special[k];
        if (np)
            memcpy(out + n, part, np * sizeof *out);
        n += np;
        free(part);
    }
    *ids = out;
    *n_ids = n;
    return 0;
}

/* Build a one-turn chat prompt with the model's chat format. */
static int chat_prompt(pio_engine *e, const char *system, const char *user, char **out)
{
    cJSON *msgs = cJSON_CreateArray(), *m, *ctx;
    char *json;
    pio_status st;
    if (!msgs)
        return pio_cli_fail("out of memory");
    if (system) {
        m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", system);
        cJSON_AddItemToArray(msgs, m);
    }
    m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", user);
    cJSON_AddItemToArray(msgs, m);
    ctx = cJSON_CreateObject();
    if (!ctx) {
        cJSON_Delete(msgs);
        return pio_cli_fail("out of memory");
    }
    cJSON_AddItemToObject(ctx, "messages", msgs);
    cJSON_AddBoolToObject(ctx, "add_generation_prompt", true);
    json = cJSON_PrintUnformatted(ctx);
    cJSON_Delete(ctx);
    if (!json)
        return pio_cli_fail("out of memory");
    st = pio_engine_format_chat(e, json, out);
    free(json);
    return st ? pio_cli_fail(pio_last_error()) : 0;
}

int pio_cmd_run(int argc, char **argv)
{
    cli_model_opts mo = { 0 };
    cli_gen_opts go;
    const char *prompt = NULL, *file = NULL, *system = NULL, *fim_prefix = NULL, *fim_suffix = NULL;
    bool chat = false, quiet = false, dry_run = false;
    char *owned = NULL, *formatted = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0, len = 0;
    pio_engine *e = NULL;
    pio_gen_params gp;
    pio_gen_result res;
    pio_status st;
    int i, r, rc = 1;

    cli_gen_opts_init(&go, 256);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((r = cli_parse_model_opt(&mo, argc, argv, &i)) || (r = cli_parse_gen_opt(&go, argc, argv, &i))) {
            if (r < 0)
                return 2;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            run_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--chat")) {
            chat = true;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "--dry-run")) {
            dry_run = true;
        } else if (!strcmp(a, "--fim-prefix") && i + 1 < argc) {
            fim_prefix = argv[++i];
        } else if (!strcmp(a, "--fim-suffix") && i + 1 < argc) {
            fim_suffix = argv[++i];
        } else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt") || !strcmp(a, "-f") ||
                    !strcmp(a, "--file") || !strcmp(a, "-s") || !strcmp(a, "--system")) && i + 1 < argc) {
            if (a[1] == 'p' || !strcmp(a, "--prompt"))
                prompt = argv[++i];
            else if (a[1] == 'f' || !strcmp(a, "--file"))
                file = argv[++i];
            else
                system = argv[++i];
        } else {
            fprintf(stderr, "pio run: unknown or incomplete option \"%s\"\n", a);
            run_usage(stderr);
            return 2;
        }
    }
    if ((fim_prefix || fim_suffix) && (prompt || file || chat)) {
        fprintf(stderr, "pio run: --fim-prefix/--fim-suffix build the prompt: no -p, -f or --chat with them\n");
        return 2;
    }
    if (!prompt && !fim_prefix && !fim_suffix) {
        FILE *f = file ? fopen(file, "rb") : stdin;
        if (!f) {
            fprintf(stderr, "pio run: cannot open %s\n", file);
            return 1;
        }
        owned = read_all(f, &len);
        if (file)
            fclose(f);
        if (!owned)
            return pio_cli_fail("out of memory reading the prompt");
        prompt = owned;
    }

    if (cli_load_engine(&mo, true, 1, &e))
        goto out;
    if (!pio_engine_tokenizer(e)) {
        fprintf(stderr, "pio run: the model directory has no tokenizer.json\n");
        goto out;
    }
    if (chat) {
        if (chat_prompt(e, system, prompt, &formatted))
            goto out;
        prompt = formatted;
    }
    if (fim_prefix || fim_suffix) {
        if (fim_prompt(pio_engine_tokenizer(e), fim_prefix ? fim_prefix : "", fim_suffix ? fim_suffix : "",
                       &ids, &n_ids))
            goto out;
    } else if ((st = pio_tokenizer_encode(pio_engine_tokenizer(e), prompt, strlen(prompt), &ids, &n_ids))) {
        fprintf(stderr, "pio run: prompt: %s\n", pio_last_error());
        goto out;
    }
    if (n_ids == 0) {
        fprintf(stderr, "pio run: the prompt is empty\n");
        goto out;
    }
    if (dry_run) {
        for (size_t k = 0; k < n_ids; k++)
            printf("%s%d", k ? ", " : "[", ids[k]);
        printf("]\n");
        rc = 0;
        goto out;
    }
    cli_gen_params(&go, e, &gp);
    st = pio_engine_generate(e, 0, ids, (int)n_ids, &gp, stream_text, NULL, &res);
    if (st) {
        fprintf(stderr, "\npio run: %s\n", pio_last_error());
        goto out;
    }
    printf("\n");
    if (!quiet)
        fprintf(stderr, "[prompt %d tokens, %.1f tok/s | generated %d tokens, %.1f tok/s]\n",
                res.n_prompt, res.prompt_seconds > 0 ? (res.n_prompt - res.n_reused) / res.prompt_seconds : 0.0,
                res.n_generated, res.gen_seconds > 0 ? res.n_generated / res.gen_seconds : 0.0);
    rc = 0;
out:
    free(ids);
    free(formatted);
    free(owned);
    pio_engine_free(e);
    return rc;
}
