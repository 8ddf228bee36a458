/*
 * cmd_chat.c - `pio chat`: an interactive multi-turn conversation.
 *
 * Each turn renders the whole conversation with the model's chat format and
 * hands it to the engine, which reuses the KV cache for the prefix it already
 * holds, so only the new user turn (and the reply) are computed.
 */
#include "cli/cli.h"
#include "cli/options.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void chat_usage(FILE *f)
{
    fprintf(f, "usage: pio chat [options]\n\n"
               "Chat with a model: type a message and press enter; the reply streams back.\n"
               "Commands: /reset starts over, /exit (or end of input) quits.\n\n"
               "options:\n"
               "  -s, --system TEXT     system message\n"
               "  -v, --verbose         print prompt reuse and speed after each reply (stderr)\n"
               CLI_MODEL_OPTS_HELP CLI_GEN_OPTS_HELP
               "  -h, --help            this help\n");
}

typedef struct reply_buf {
    char *text;
    size_t len, cap;
} reply_buf;

static bool on_token(void *user, int32_t token, const char *text, size_t len)
{
    reply_buf *r = user;
    (void)token;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    if (r->len + len + 1 > r->cap) {
        size_t cap = (r->len + len + 1) * 2;
        char *nb = realloc(r->text, cap);
        if (!nb)
            return false;
        r->text = nb;
        r->cap = cap;
    }
    memcpy(r->text + r->len, text, len);
    r->len += len;
    r->text[r->len] = '\0';
    return true;
}

static void add_message(cJSON *msgs, const char *role, const char *content)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", role);
    cJSON_AddStringToObject(m, "content", content);
    cJSON_AddItemToArray(msgs, m);
}

int pio_cmd_chat(int argc, char **argv)
{
    cli_model_opts mo = { 0 };
    cli_gen_opts go;
    const char *system = NULL;
    bool verbose = false, tty = isatty(STDIN_FILENO);
    pio_engine *e = NULL;
    cJSON *msgs = NULL;
    char *line = NULL;
    size_t line_cap = 0;
    pio_gen_params gp;
    int i, r, rc = 1;

    cli_gen_opts_init(&go, -1);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((r = cli_parse_model_opt(&mo, argc, argv, &i)) || (r = cli_parse_gen_opt(&go, argc, argv, &i))) {
            if (r < 0)
                return 2;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            chat_usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-s") || !strcmp(a, "--system")) && i + 1 < argc) {
            system = argv[++i];
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose = true;
        } else {
            fprintf(stderr, "pio chat: unknown or incomplete option \"%s\"\n", a);
            chat_usage(stderr);
            return 2;
        }
    }
    if (cli_load_engine(&mo, true, 1, &e))
        return 1;
    if (!pio_engine_tokenizer(e)) {
        fprintf(stderr, "pio chat: the model directory has no tokenizer.json\n");
        goto out;
    }
    cli_gen_params(&go, e, &gp);
    msgs = cJSON_CreateArray();
    if (!msgs)
        goto out;
    if (system)
        add_message(msgs, "system", system);

    for (;;) {
        ssize_t n;
        char *json = NULL, *prompt = NULL;
        int32_t *ids = NULL;
        size_t n_ids = 0;
        reply_buf reply = { 0 };
        pio_gen_result res;
        pio_status st;

        if (tty) {
            printf("> ");
            fflush(stdout);
        }
        n = getline(&line, &line_cap, stdin);
        if (n < 0)
            break;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit"))
            break;
        if (!strcmp(line, "/reset")) {
            cJSON_Delete(msgs);
            msgs = cJSON_CreateArray();
            if (system)
                add_message(msgs, "system", system);
            pio_engine_seq_reset(e, 0);
            continue;
        }
        add_message(msgs, "user", line);
        json = cJSON_PrintUnformatted(msgs);
        st = json ? pio_engine_format_chat(e, json, true, &prompt) : PIO_STATUS_ERR_NOMEM;
        if (!st)
            st = pio_tokenizer_encode(pio_engine_tokenizer(e), prompt, strlen(prompt), &ids, &n_ids);
        if (!st)
            st = pio_engine_generate(e, 0, ids, (int)n_ids, &gp, on_token, &reply, &res);
        free(json);
        free(prompt);
        free(ids);
        printf("\n");
        if (st) {
            fprintf(stderr, "pio chat: %s\n", pio_last_error());
            free(reply.text);
            if (st == PIO_STATUS_ERR_LIMIT) {      /* context full: drop the turn, keep chatting */
                cJSON_DeleteItemFromArray(msgs, cJSON_GetArraySize(msgs) - 1);
                continue;
            }
            goto out;
        }
        add_message(msgs, "assistant", reply.text ? reply.text : "");
        free(reply.text);
        if (verbose)
            fprintf(stderr, "[prompt %d tokens (%d reused from cache) | %d tokens, %.1f tok/s]\n",
                    res.n_prompt, res.n_reused, res.n_generated,
                    res.gen_seconds > 0 ? res.n_generated / res.gen_seconds : 0.0);
    }
    rc = 0;
out:
    free(line);
    cJSON_Delete(msgs);
    pio_engine_free(e);
    return rc;
}
