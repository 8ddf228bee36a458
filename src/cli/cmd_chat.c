/*
 * cmd_chat.c - `pio chat`: an interactive multi-turn conversation.
 *
 * Each turn renders the whole conversation with the model's chat format and
 * hands it to the engine, which reuses the KV cache for the prefix it already
 * holds, so only the new user turn (and the reply) are computed.
 *
 * The reply streams through the output parser (src/chat/output_parse.h):
 * reasoning is shown apart ("[reasoning] ...", dimmed on a terminal), tool
 * calls as `[tool call] name({...})`, and the assistant message kept in the
 * history carries content, reasoning_content and tool_calls, as the chat
 * templates expect them. The CLI does not run tools: `/tool TEXT` adds a
 * tool result typed by the user and lets the model go on.
 */
#include "cli/cli.h"
#include "cli/options.h"
#include "chat/output_parse.h"
#include "pio/chat_template.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void chat_usage(FILE *f)
{
    fprintf(f, "usage: pio chat [options]\n\n"
               "Chat with a model: type a message and press enter; the reply streams back.\n"
               "Reasoning (<think>...</think>) is printed after \"[reasoning]\" (dimmed on a\n"
               "terminal) and tool calls as \"[tool call] name({arguments})\". Tools are not run:\n"
               "answer a call with /tool TEXT.\n"
               "Commands: /tool TEXT gives the result of the next tool call; the model goes on\n"
               "          once each call of its last turn has one,\n"
               "          /reset starts over, /exit (or end of input) quits.\n\n"
               "options:\n"
               "  -s, --system TEXT     system message\n"
               "      --think           enable_thinking=true in the chat template\n"
               "      --no-think        enable_thinking=false (templates that read it skip reasoning)\n"
               "      --tools FILE      OpenAI-style tools array (JSON) offered to the model\n"
               "      --tool-format F   how the model writes tool calls: qwen3 (JSON), qwen3_coder\n"
               "                        (XML), glm47 or none (default: from the chat template, else\n"
               "                        the architecture)\n"
               "  -v, --verbose         print prompt reuse and speed after each reply (stderr)\n"
               CLI_MODEL_OPTS_HELP CLI_GEN_OPTS_HELP
               "  -h, --help            this help\n");
}

/* ---- printing a reply ---------------------------------------------------- */

enum { SHOWN_NONE, SHOWN_CONTENT, SHOWN_REASONING, SHOWN_CALL };

typedef struct chat_reply {
    pio_output_parser *parser;
    bool color;                  /* stdout is a terminal */
    int shown;                   /* what was printed last */
    char last;                   /* last byte printed */
} chat_reply;

static void put(chat_reply *r, const char *s, size_t n)
{
    if (n) {
        fwrite(s, 1, n, stdout);
        r->last = s[n - 1];
    }
}

static void end_reasoning(chat_reply *r)
{
    if (r->shown != SHOWN_REASONING)
        return;
    if (r->color)
        fputs("\033[0m", stdout);
    if (r->last != '\n')
        put(r, "\n", 1);
}

static void on_event(void *user, const pio_output_event *ev)
{
    chat_reply *r = user;
    switch (ev->type) {
    case PIO_OUTPUT_EVENT_CONTENT:
        end_reasoning(r);
        r->shown = SHOWN_CONTENT;
        put(r, ev->text, ev->len);
        break;
    case PIO_OUTPUT_EVENT_REASONING:
        if (r->shown != SHOWN_REASONING) {
            if (r->shown != SHOWN_NONE && r->last != '\n')
                put(r, "\n", 1);
            if (r->color)
                fputs("\033[2m", stdout);
            put(r, "[reasoning] ", 12);
            r->shown = SHOWN_REASONING;
        }
        put(r, ev->text, ev->len);
        break;
    case PIO_OUTPUT_EVENT_TOOL_CALL_END:
        end_reasoning(r);
        if (r->shown != SHOWN_NONE && r->last != '\n')
            put(r, "\n", 1);
        printf("%s[tool call] %s(%.*s)%s\n", r->color ? "\033[1m" : "", ev->name, (int)ev->len, ev->text,
               r->color ? "\033[0m" : "");
        r->last = '\n';
        r->shown = SHOWN_CALL;
        break;
    case PIO_OUTPUT_EVENT_WARNING:
        fflush(stdout);
        fprintf(stderr, "[warning] %.*s\n", (int)ev->len, ev->text);
        break;
    default:
        break;
    }
    fflush(stdout);
}

static bool on_token(void *user, int32_t token, const char *text, size_t len)
{
    chat_reply *r = user;
    (void)token;
    return pio_output_parser_feed(r->parser, text, len, on_event, r) == PIO_STATUS_OK;
}

/* ---- the conversation ---------------------------------------------------- */

static void add_message(cJSON *msgs, const char *role, const char *content)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", role);
    cJSON_AddStringToObject(m, "content", content);
    cJSON_AddItemToArray(msgs, m);
}

/* The assistant message of a parsed reply: content, reasoning_content and
 * tool_calls with arguments as objects (the templates iterate them). */
static void add_reply(cJSON *msgs, const pio_output_result *res)
{
    cJSON *m = cJSON_CreateObject(), *calls;
    int i;
    cJSON_AddStringToObject(m, "role", "assistant");
    cJSON_AddStringToObject(m, "content", res->content);
    if (res->reasoning_len)
        cJSON_AddStringToObject(m, "reasoning_content", res->reasoning);
    if (res->n_calls) {
        calls = cJSON_AddArrayToObject(m, "tool_calls");
        for (i = 0; i < res->n_calls; i++) {
            cJSON *c = cJSON_CreateObject(), *f = cJSON_CreateObject();
            cJSON *args = cJSON_Parse(res->calls[i].arguments);
            cJSON_AddStringToObject(c, "id", res->calls[i].id);
            cJSON_AddStringToObject(c, "type", "function");
            cJSON_AddStringToObject(f, "name", res->calls[i].name);
            cJSON_AddItemToObject(f, "arguments", args ? args : cJSON_CreateObject());
            cJSON_AddItemToObject(c, "function", f);
            cJSON_AddItemToArray(calls, c);
        }
    }
    cJSON_AddItemToArray(msgs, m);
}

/*
 * Render the chat context {"messages", "tools", "add_generation_prompt",
 * "enable_thinking"} to a prompt with the model's own chat template.
 */
static pio_status render(pio_engine *e, const cJSON *ctx, char **prompt)
{
    char *json = cJSON_PrintUnformatted(ctx);
    pio_status st;
    if (!json)
        return pio_error(PIO_STATUS_ERR_NOMEM, "out of memory");
    st = pio_engine_format_chat(e, json, prompt);
    free(json);
    return st;
}

/* Read a whole file (malloc'ed, NUL-terminated), or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/*
 * The tool-call format of the model: what its chat template teaches, else
 * what its architecture or model_type implies, else none.
 */
static pio_tool_format model_tool_format(const char *dir, const pio_engine *e)
{
    const pio_hf_config *cfg = pio_engine_config(e);
    pio_chat_template *t = NULL;
    struct stat sb;
    int f = -1;
    if (dir && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if (pio_chat_template_load(dir, &t) == PIO_STATUS_OK)
            f = pio_tool_format_from_template(pio_chat_template_source(t));
        pio_chat_template_free(t);
        pio_clear_error();
    }
    if (f < 0 && cfg)
        f = pio_tool_format_from_name(cfg->architecture);
    if (f < 0 && cfg)
        f = pio_tool_format_from_name(cfg->model_type);
    return f < 0 ? PIO_TOOL_FORMAT_NONE : (pio_tool_format)f;
}

/* The tools array of a --tools file; prints the error itself. */
static cJSON *load_tools(const char *path)
{
    char *text = slurp(path);
    cJSON *tools;
    if (!text) {
        fprintf(stderr, "pio chat: cannot read --tools file %s\n", path);
        return NULL;
    }
    tools = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsArray(tools)) {
        fprintf(stderr, "pio chat: --tools file %s is not a JSON array of tools\n", path);
        cJSON_Delete(tools);
        return NULL;
    }
    return tools;
}

/* Generate the next assistant turn of `ctx`; 0, 1 (error: stop) or 2
 * (context full: the caller drops the turn and goes on). */
static int reply(pio_engine *e, cJSON *ctx, const pio_gen_params *gp, const pio_output_parse_params *pp_in,
                 bool verbose)
{
    pio_output_parse_params pp = *pp_in;
    chat_reply r = { 0 };
    char *prompt = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    pio_gen_result res;
    pio_status st;
    int rc = 1;

    r.color = isatty(STDOUT_FILENO);
    st = render(e, ctx, &prompt);
    if (!st) {
        pp.start_in_reasoning = pio_output_prompt_opens_reasoning(prompt);
        st = pio_output_parser_new(&pp, &r.parser);
    }
    if (!st)
        st = pio_tokenizer_encode(pio_engine_tokenizer(e), prompt, strlen(prompt), &ids, &n_ids);
    if (!st)
        st = pio_engine_generate(e, 0, ids, (int)n_ids, gp, on_token, &r, &res);
    if (!st)
        st = pio_output_parser_finish(r.parser, on_event, &r);
    end_reasoning(&r);
    printf("\n");
    fflush(stdout);
    if (st) {
        fprintf(stderr, "pio chat: %s\n", pio_last_error());
        rc = st == PIO_STATUS_ERR_LIMIT ? 2 : 1;
        goto out;
    }
    add_reply(cJSON_GetObjectItemCaseSensitive(ctx, "messages"), pio_output_parser_result(r.parser));
    if (verbose)
        fprintf(stderr, "[prompt %d tokens (%d reused from cache) | %d tokens, %.1f tok/s]\n",
                res.n_prompt, res.n_reused, res.n_generated,
                res.gen_seconds > 0 ? res.n_generated / res.gen_seconds : 0.0);
    rc = 0;
out:
    pio_output_parser_free(r.parser);
    free(ids);
    free(prompt);
    return rc;
}

/* A fresh context: system message, tools, thinking switch. */
static cJSON *new_context(const char *system, const cJSON *tools, int think)
{
    cJSON *ctx = cJSON_CreateObject(), *msgs = cJSON_AddArrayToObject(ctx, "messages");
    if (system)
        add_message(msgs, "system", system);
    if (tools)
        cJSON_AddItemToObject(ctx, "tools", cJSON_Duplicate(tools, true));
    cJSON_AddBoolToObject(ctx, "add_generation_prompt", true);
    if (think >= 0)
        cJSON_AddBoolToObject(ctx, "enable_thinking", think);
    return ctx;
}

int pio_cmd_chat(int argc, char **argv)
{
    cli_model_opts mo = { 0 };
    cli_gen_opts go;
    const char *system = NULL, *tools_path = NULL, *tool_format = NULL;
    bool verbose = false, tty = isatty(STDIN_FILENO);
    int think = -1;              /* -1: the template's default */
    pio_engine *e = NULL;
    cJSON *ctx = NULL, *tools = NULL;
    char *line = NULL, *tools_text = NULL;
    size_t line_cap = 0;
    pio_gen_params gp;
    pio_output_parse_params pp;
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
        } else if (!strcmp(a, "--tools") && i + 1 < argc) {
            tools_path = argv[++i];
        } else if (!strcmp(a, "--tool-format") && i + 1 < argc) {
            tool_format = argv[++i];
        } else if (!strcmp(a, "--think") || !strcmp(a, "--no-think")) {
            think = !strcmp(a, "--think");
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose = true;
        } else {
            fprintf(stderr, "pio chat: unknown or incomplete option \"%s\"\n", a);
            chat_usage(stderr);
            return 2;
        }
    }
    pio_output_parse_params_default(&pp);
    if (tool_format) {
        int f = pio_tool_format_from_name(tool_format);
        if (f < 0) {
            fprintf(stderr, "pio chat: unknown --tool-format \"%s\" (qwen3, qwen3_coder, glm47, none)\n",
                    tool_format);
            return 2;
        }
        pp.format = (pio_tool_format)f;
    }
    if (tools_path) {
        if (!(tools = load_tools(tools_path)))
            return 2;
        tools_text = cJSON_PrintUnformatted(tools);
        pp.tools_json = tools_text;
    }
    if (cli_load_engine(&mo, true, 1, &e))
        goto out;
    if (!pio_engine_tokenizer(e)) {
        fprintf(stderr, "pio chat: the model directory has no tokenizer.json\n");
        goto out;
    }
    if (!tool_format)
        pp.format = model_tool_format(mo.model ? mo.model : cli_default_model_dir(), e);
    if (verbose)
        fprintf(stderr, "[tool-call format: %s]\n", pio_tool_format_name(pp.format));
    cli_gen_params(&go, e, &gp);
    ctx = new_context(system, tools, think);
    if (!ctx)
        goto out;

    for (;;) {
        ssize_t n;
        cJSON *msgs = cJSON_GetObjectItemCaseSensitive(ctx, "messages");
        int before;

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
            cJSON_Delete(ctx);
            ctx = new_context(system, tools, think);
            pio_engine_seq_reset(e, 0);
            continue;
        }
        before = cJSON_GetArraySize(msgs);
        if (!strncmp(line, "/tool ", 6) || !strcmp(line, "/tool")) {
            /* the result of the next unanswered call of the last assistant
             * turn; the model goes on once every call has its result */
            cJSON *m = cJSON_CreateObject(), *it, *calls = NULL, *id;
            int answered = 0, n_calls;
            cJSON_ArrayForEach(it, msgs) {
                const cJSON *role = cJSON_GetObjectItemCaseSensitive(it, "role");
                if (cJSON_IsString(role) && !strcmp(role->valuestring, "assistant")) {
                    calls = cJSON_GetObjectItemCaseSensitive(it, "tool_calls");
                    answered = 0;
                } else if (cJSON_IsString(role) && !strcmp(role->valuestring, "tool")) {
                    answered++;
                }
            }
            n_calls = cJSON_GetArraySize(calls);
            cJSON_AddStringToObject(m, "role", "tool");
            cJSON_AddStringToObject(m, "content", line[5] ? line + 6 : "");
            id = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(calls, answered), "id");
            if (cJSON_IsString(id))
                cJSON_AddStringToObject(m, "tool_call_id", id->valuestring);
            cJSON_AddItemToArray(msgs, m);
            if (answered + 1 < n_calls) {
                printf("[tool result %d of %d]\n", answered + 1, n_calls);
                continue;
            }
        } else {
            add_message(msgs, "user", line);
        }
        r = reply(e, ctx, &gp, &pp, verbose);
        if (r == 2) {            /* context full: drop the turn, keep chatting */
            while (cJSON_GetArraySize(msgs) > before)
                cJSON_DeleteItemFromArray(msgs, cJSON_GetArraySize(msgs) - 1);
            continue;
        }
        if (r)
            goto out;
    }
    rc = 0;
out:
    free(line);
    free(tools_text);
    cJSON_Delete(tools);
    cJSON_Delete(ctx);
    pio_engine_free(e);
    return rc;
}
