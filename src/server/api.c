/*
 * api.c - the OpenAI wire format: request bodies in (validated, rendered
 * with the chat template, tokenized), SSE chunks and JSON bodies out. Runs
 * on HTTP threads only; touches the engine just to render chat prompts
 * (serialized by srv->chat_mu) and reads the tokenizer (immutable).
 */
#include "server/server_int.h"

#include "chat/output_parse.h"
#include "chat/tool_constraint.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- errors ------------------------------------------------------------------ */

static void set_err(srv_error *err, int status, const char *type, const char *code, const char *param,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Fill *err: HTTP status, OpenAI error type/code/param and a message. */
static void set_err(srv_error *err, int status, const char *type, const char *code, const char *param,
                    const char *fmt, ...)
{
    va_list ap;
    err->status = status;
    err->type = type;
    err->code = code;
    err->param = param;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

#define BAD(param, ...) set_err(err, 400, "invalid_request_error", NULL, param, __VA_ARGS__)

/* {"error":{"message","type","param","code"}} (malloc'ed). */
char *srv_error_json(const srv_error *err)
{
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    char *out;
    cJSON_AddStringToObject(e, "message", err->message);
    cJSON_AddStringToObject(e, "type", err->type ? err->type : "invalid_request_error");
    if (err->param)
        cJSON_AddStringToObject(e, "param", err->param);
    else
        cJSON_AddNullToObject(e, "param");
    if (err->code)
        cJSON_AddStringToObject(e, "code", err->code);
    else
        cJSON_AddNullToObject(e, "code");
    out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

/* ---- request life cycle ---------------------------------------------------------- */

static void request_free(srv_request *r)
{
    srv_event *ev;
    int i;
    while ((ev = r->ev_head)) {
        r->ev_head = ev->next;
        free(ev->text);
        free(ev);
    }
    for (i = 0; i < SRV_MAX_STOPS && r->stops[i]; i++)
        free(r->stops[i]);
    if (r->choices)
        for (i = 0; i < r->n; i++) {
            free(r->choices[i].text);
            pio_output_parser_free(r->choices[i].parser);
            cJSON_Delete(r->choices[i].lp_json);
        }
    free(r->choices);
    pio_tool_grammar_free(r->tool_grammar);
    free(r->prompt);
    free(r->out);
    pthread_cond_destroy(&r->cv);
    free(r);
}

void srv_request_release_locked(srv_request *r)
{
    if (--r->refs == 0)
        request_free(r);
}

void srv_request_release(pio_server *s, srv_request *r)
{
    pthread_mutex_lock(&s->mu);
    srv_request_release_locked(r);
    pthread_mutex_unlock(&s->mu);
}

/* ---- parsing helpers ------------------------------------------------------------- */

static const cJSON *field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNull(v) ? NULL : v;
}

/* Optional number in [lo, hi]; false (error set) when present and bad. */
static bool get_num(const cJSON *o, const char *name, double lo, double hi, double *out, srv_error *err)
{
    const cJSON *v = field(o, name);
    if (!v)
        return true;
    if (!cJSON_IsNumber(v) || isnan(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi) {
        BAD(name, "'%s' must be a number in [%g, %g]", name, lo, hi);
        return false;
    }
    *out = v->valuedouble;
    return true;
}

/* Optional integer in [lo, hi]; false (error set) when present and bad. */
static bool get_int(const cJSON *o, const char *name, double lo, double hi, int64_t *out, srv_error *err)
{
    const cJSON *v = field(o, name);
    if (!v)
        return true;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi) {
        BAD(name, "'%s' must be an integer in [%.0f, %.0f]", name, lo, hi);
        return false;
    }
    *out = (int64_t)v->valuedouble;
    return true;
}

/* Optional boolean; false (error set) when present and not a boolean. */
static bool get_bool(const cJSON *o, const char *name, bool *out, srv_error *err)
{
    const cJSON *v = field(o, name);
    if (!v)
        return true;
    if (!cJSON_IsBool(v)) {
        BAD(name, "'%s' must be a boolean", name);
        return false;
    }
    *out = cJSON_IsTrue(v);
    return true;
}

/* Text of a message content: a string, or an array of {"type":"text","text":...} parts. */
static char *content_text(const cJSON *c, srv_error *err)
{
    const cJSON *part;
    size_t len = 0;
    char *out;
    if (!c)
        return strdup("");
    if (cJSON_IsString(c))
        return strdup(c->valuestring);
    if (!cJSON_IsArray(c)) {
        BAD("messages", "message content must be a string or an array of text parts");
        return NULL;
    }
    cJSON_ArrayForEach(part, c) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0 || !cJSON_IsString(text)) {
            BAD("messages", "only text content parts are supported (type \"text\")");
            return NULL;
        }
        len += strlen(text->valuestring);
    }
    out = malloc(len + 1);
    if (!out)
        return NULL;
    len = 0;
    cJSON_ArrayForEach(part, c) {
        const char *t = cJSON_GetObjectItemCaseSensitive(part, "text")->valuestring;
        memcpy(out + len, t, strlen(t));
        len += strlen(t);
    }
    out[len] = '\0';
    return out;
}

/* Normalized copy of the messages for the template: content parts joined to a string. */
static cJSON *normalize_messages(const cJSON *msgs, srv_error *err)
{
    cJSON *out = cJSON_CreateArray();
    const cJSON *m;
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        BAD("messages", "'messages' must be a non-empty array");
        goto fail;
    }
    cJSON_ArrayForEach(m, msgs) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        cJSON *copy;
        char *text;
        if (!cJSON_IsObject(m) || !cJSON_IsString(role)) {
            BAD("messages", "each message must be an object with a string 'role'");
            goto fail;
        }
        text = content_text(field(m, "content"), err);
        if (!text)
            goto fail;
        copy = cJSON_Duplicate(m, true);
        cJSON_DeleteItemFromObjectCaseSensitive(copy, "content");
        cJSON_AddStringToObject(copy, "content", text);
        free(text);
        cJSON_AddItemToArray(out, copy);
    }
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

/*
 * Render the chat prompt: the render context {"messages", "tools",
 * "add_generation_prompt": true, plus the request's chat_template_kwargs
 * (e.g. enable_thinking)} through the model's chat template. tool_choice
 * "none" leaves the tools out. Returns a malloc'ed prompt or NULL (error set).
 */
static char *render_chat(pio_server *s, const cJSON *root, bool with_tools, srv_error *err)
{
    cJSON *msgs = normalize_messages(field(root, "messages"), err), *ctx, *kw;
    const cJSON *tools = field(root, "tools"), *item;
    char *json = NULL, *prompt = NULL;
    pio_status st;
    if (!msgs)
        return NULL;
    ctx = cJSON_CreateObject();
    kw = (cJSON *)field(root, "chat_template_kwargs");
    if (kw && !cJSON_IsObject(kw)) {
        BAD("chat_template_kwargs", "'chat_template_kwargs' must be an object");
        cJSON_Delete(msgs);
        cJSON_Delete(ctx);
        return NULL;
    }
    cJSON_ArrayForEach(item, kw)
        cJSON_AddItemToObject(ctx, item->string, cJSON_Duplicate(item, true));
    cJSON_DeleteItemFromObjectCaseSensitive(ctx, "messages");
    cJSON_AddItemToObject(ctx, "messages", msgs);
    if (tools && with_tools && cJSON_GetArraySize(tools) > 0)
        cJSON_AddItemToObject(ctx, "tools", cJSON_Duplicate(tools, true));
    cJSON_DeleteItemFromObjectCaseSensitive(ctx, "add_generation_prompt");
    cJSON_AddBoolToObject(ctx, "add_generation_prompt", true);
    json = cJSON_PrintUnformatted(ctx);
    cJSON_Delete(ctx);
    if (!json) {
        set_err(err, 500, "server_error", NULL, NULL, "out of memory");
        return NULL;
    }
    pthread_mutex_lock(&s->chat_mu);
    st = pio_engine_format_chat(s->engine, json, &prompt);
    if (st)
        set_err(err, 400, "invalid_request_error", NULL, "messages", "cannot render the chat template: %s",
                pio_last_error());
    pthread_mutex_unlock(&s->chat_mu);
    free(json);
    return st ? NULL : prompt;
}

/* Encode the prompt text into r->prompt (400 naming `param` on failure). */
static bool tokenize(pio_server *s, const char *text, srv_request *r, srv_error *err, const char *param)
{
    size_t n = 0;
    if (!s->tok) {
        set_err(err, 400, "invalid_request_error", NULL, param, "the model has no tokenizer: send token ids");
        return false;
    }
    if (pio_tokenizer_encode(s->tok, text, strlen(text), &r->prompt, &n)) {
        BAD(param, "cannot tokenize: %s", pio_last_error());
        return false;
    }
    r->n_prompt = (int)n;
    return true;
}

/* /v1/completions "prompt": a string, [string], or [int] token ids. */
static bool parse_prompt(pio_server *s, const cJSON *p, srv_request *r, srv_error *err)
{
    if (cJSON_IsString(p))
        return tokenize(s, p->valuestring, r, err, "prompt");
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(cJSON_GetArrayItem(p, 0)))
        return tokenize(s, cJSON_GetArrayItem(p, 0)->valuestring, r, err, "prompt");
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) > 0 && cJSON_IsNumber(cJSON_GetArrayItem(p, 0))) {
        const cJSON *v;
        int i = 0;
        r->prompt = malloc((size_t)cJSON_GetArraySize(p) * sizeof(int32_t));
        if (!r->prompt)
            return false;
        cJSON_ArrayForEach(v, p) {
            if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= s->n_valid ||
                v->valuedouble != floor(v->valuedouble)) {
                BAD("prompt", "token ids must be integers in [0, %d)", s->n_valid);
                return false;
            }
            r->prompt[i++] = (int32_t)v->valuedouble;
        }
        r->n_prompt = i;
        return true;
    }
    BAD("prompt", "'prompt' must be a string, a list of one string, or a list of token ids");
    return false;
}

/* "stop": a string or a list of up to SRV_MAX_STOPS strings (empty ones ignored). */
static bool parse_stop(const cJSON *stop, srv_request *r, srv_error *err)
{
    const cJSON *v;
    int n = 0;
    if (!stop)
        return true;
    if (cJSON_IsString(stop)) {
        if (!stop->valuestring[0])
            return true;
        r->stops[0] = strdup(stop->valuestring);
        return r->stops[0] != NULL;
    }
    if (!cJSON_IsArray(stop) || cJSON_GetArraySize(stop) > SRV_MAX_STOPS) {
        BAD("stop", "'stop' must be a string or a list of at most %d strings", SRV_MAX_STOPS);
        return false;
    }
    cJSON_ArrayForEach(v, stop) {
        if (!cJSON_IsString(v)) {
            BAD("stop", "'stop' must be a string or a list of strings");
            return false;
        }
        if (v->valuestring[0] && !(r->stops[n++] = strdup(v->valuestring)))
            return false;
    }
    return true;
}

/* See server_int.h. Cost: the JSON, the template render and the tokenization. */
srv_request *srv_parse_request(pio_server *s, srv_kind kind, const char *body, size_t len,
                               srv_error *err)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *v;
    srv_request *r = NULL;
    char *prompt_text = NULL, *tools_json = NULL;
    bool with_tools = false;
    double d;
    int64_t k;
    int max_limit;

    memset(err, 0, sizeof *err);
    if (!cJSON_IsObject(root)) {
        BAD(NULL, "the request body is not a valid JSON object");
        goto fail;
    }
    r = calloc(1, sizeof *r);
    if (!r) {
        set_err(err, 500, "server_error", NULL, NULL, "out of memory");
        goto fail;
    }
    pthread_cond_init(&r->cv, NULL);
    r->refs = 1;
    r->kind = kind;
    r->n = 1;
    r->srv = s;
    r->model_name = s->model_name;
    r->conn_fd = -1;
    r->created = (int64_t)time(NULL);
    r->sp = s->default_sampling;

    v = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v)) {
            BAD("model", "'model' must be a string");
            goto fail;
        }
        if (strcmp(v->valuestring, s->model_name) != 0) {
            set_err(err, 404, "invalid_request_error", "model_not_found", "model",
                    "The model '%.200s' does not exist (this server has '%.200s')", v->valuestring,
                    s->model_name);
            goto fail;
        }
    }
    if (!get_bool(root, "stream", &r->stream, err))
        goto fail;
    v = field(root, "stream_options");
    if (v) {
        if (!cJSON_IsObject(v) || !get_bool(v, "include_usage", &r->include_usage, err)) {
            if (!err->status)
                BAD("stream_options", "'stream_options' must be an object");
            goto fail;
        }
    }
    k = 1;
    if (!get_int(root, "n", 1, SRV_MAX_N, &k, err))
        goto fail;
    r->n = (int)k;

    max_limit = s->cfg.max_tokens_limit > 0 ? s->cfg.max_tokens_limit : s->n_ctx;
    k = -1;
    if (!get_int(root, "max_tokens", 1, 1e9, &k, err) ||
        !get_int(root, "max_completion_tokens", 1, 1e9, &k, err))
        goto fail;
    if (k > max_limit) {
        BAD(field(root, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens",
            "max_tokens is %lld but this server allows at most %d", (long long)k, max_limit);
        goto fail;
    }
    r->max_tokens = (int)k;

    d = r->sp.temperature;
    if (!get_num(root, "temperature", 0, 2, &d, err))
        goto fail;
    r->sp.temperature = (float)d;
    d = r->sp.top_p;
    if (!get_num(root, "top_p", 1e-9, 1, &d, err))
        goto fail;
    r->sp.top_p = (float)d;
    k = r->sp.top_k;
    if (!get_int(root, "top_k", -1, 1e9, &k, err))
        goto fail;
    r->sp.top_k = (int)k;
    d = r->sp.min_p;
    if (!get_num(root, "min_p", 0, 1, &d, err))
        goto fail;
    r->sp.min_p = (float)d;
    d = r->sp.presence_penalty;
    if (!get_num(root, "presence_penalty", -2, 2, &d, err))
        goto fail;
    r->sp.presence_penalty = (float)d;
    d = r->sp.frequency_penalty;
    if (!get_num(root, "frequency_penalty", -2, 2, &d, err))
        goto fail;
    r->sp.frequency_penalty = (float)d;
    d = r->sp.repetition_penalty;
    if (!get_num(root, "repetition_penalty", 1e-6, 100, &d, err))
        goto fail;
    r->sp.repetition_penalty = (float)d;
    k = -1;
    if (!get_int(root, "seed", -9.2e18, 9.2e18, &k, err))
        goto fail;
    if (field(root, "seed"))
        r->sp.seed = (uint64_t)k;
    else
        r->sp.seed = (uint64_t)time(NULL) * 6364136223846793005ull + (uint64_t)(uintptr_t)r;
    if (!get_bool(root, "ignore_eos", &r->ignore_eos, err))
        goto fail;
    if (!parse_stop(field(root, "stop"), r, err)) {
        if (!err->status)
            set_err(err, 500, "server_error", NULL, NULL, "out of memory");
        goto fail;
    }

    v = field(root, "logprobs");
    if (kind == SRV_KIND_CHAT) {
        if (!get_bool(root, "logprobs", &r->logprobs, err))
            goto fail;
        k = 0;
        if (!get_int(root, "top_logprobs", 0, SRV_MAX_TOP_LOGPROBS, &k, err))
            goto fail;
        if (k > 0 && !r->logprobs) {
            BAD("top_logprobs", "'top_logprobs' needs 'logprobs': true");
            goto fail;
        }
        r->top_logprobs = (int)k;
    } else if (v) {
        k = 0;
        if (!get_int(root, "logprobs", 0, 5, &k, err))
            goto fail;
        r->logprobs = true;
        r->top_logprobs = (int)k;
    }

    if (kind == SRV_KIND_CHAT) {
        const cJSON *tc = field(root, "tool_choice");
        const char *forced_name = NULL;
        bool required, parallel = true;
        v = field(root, "tools");
        if (v && !cJSON_IsArray(v)) {
            BAD("tools", "'tools' must be an array");
            goto fail;
        }
        if (tc && !(cJSON_IsString(tc) && (!strcmp(tc->valuestring, "auto") || !strcmp(tc->valuestring, "none") ||
                                           !strcmp(tc->valuestring, "required"))) &&
            !(cJSON_IsObject(tc) && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(tc, "function")))) {
            BAD("tool_choice", "'tool_choice' must be \"auto\", \"none\", \"required\" or "
                "{\"type\":\"function\",\"function\":{\"name\":...}}");
            goto fail;
        }
        if (cJSON_IsObject(tc)) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tc, "function"),
                                                               "name");
            if (!cJSON_IsString(nm) || !nm->valuestring[0]) {
                BAD("tool_choice", "'tool_choice' must name its function: {\"type\":\"function\","
                    "\"function\":{\"name\":...}}");
                goto fail;
            }
            forced_name = nm->valuestring;
        }
        required = cJSON_IsString(tc) && !strcmp(tc->valuestring, "required");
        if (!get_bool(root, "parallel_tool_calls", &parallel, err))
            goto fail;
        with_tools = v && cJSON_GetArraySize(v) > 0 && !(cJSON_IsString(tc) && !strcmp(tc->valuestring, "none"));
        if ((required || forced_name) && !with_tools) {
            BAD("tool_choice", "'tool_choice' %s needs a non-empty 'tools' list", required ? "\"required\"" : "naming a function");
            goto fail;
        }
        if (with_tools) {
            tools_json = cJSON_PrintUnformatted(v);
            if (!tools_json)
                goto fail;
        }
        prompt_text = render_chat(s, root, with_tools, err);
        if (!prompt_text)
            goto fail;
        if (required || forced_name) {
            /* enforced by constrained decoding (sched.c): the reply is a call to
             * forced_name, or to any tool ("required"; several when parallel) */
            pio_tool_grammar_params gp;
            memset(&gp, 0, sizeof gp);
            gp.format = (pio_tool_format)s->tool_format;
            gp.tools_json = tools_json;
            gp.name = forced_name;
            gp.parallel = required && parallel;
            gp.start_in_reasoning = pio_output_prompt_opens_reasoning(prompt_text);
            if (pio_tool_grammar_new(&gp, &r->tool_grammar)) {
                if (!r->tool_grammar && strstr(pio_last_error(), "out of memory"))
                    set_err(err, 500, "server_error", NULL, NULL, "out of memory");
                else
                    BAD("tool_choice", "%s", pio_last_error());
                goto fail;
            }
        }
        if (!tokenize(s, prompt_text, r, err, "messages"))
            goto fail;
    } else {
        v = field(root, "prompt");
        if (!v) {
            BAD("prompt", "'prompt' is required");
            goto fail;
        }
        if (!parse_prompt(s, v, r, err))
            goto fail;
    }
    if (r->n_prompt == 0) {
        BAD(kind == SRV_KIND_CHAT ? "messages" : "prompt", "the prompt is empty");
        goto fail;
    }
    if (r->n_prompt >= s->n_ctx) {
        set_err(err, 400, "invalid_request_error", "context_length_exceeded",
                kind == SRV_KIND_CHAT ? "messages" : "prompt",
                "This model's maximum context length is %d tokens; the prompt has %d", s->n_ctx,
                r->n_prompt);
        goto fail;
    }
    r->usage_prompt = r->n_prompt;
    if (r->max_tokens < 0 || r->max_tokens > s->n_ctx - r->n_prompt)
        r->max_tokens = s->n_ctx - r->n_prompt;

    r->choices = calloc((size_t)r->n, sizeof *r->choices);
    if (!r->choices) {
        set_err(err, 500, "server_error", NULL, NULL, "out of memory");
        goto fail;
    }
    if (kind == SRV_KIND_CHAT) {
        /* the reply's reasoning and tool calls, parsed as it streams */
        pio_output_parse_params pp;
        char prefix[64];
        int c;
        pio_output_parse_params_default(&pp);
        pp.format = with_tools ? (pio_tool_format)s->tool_format : PIO_TOOL_FORMAT_NONE;
        pp.parse_reasoning = true;
        pp.start_in_reasoning = pio_output_prompt_opens_reasoning(prompt_text);
        pp.tools_json = tools_json;
        pthread_mutex_lock(&s->mu);
        snprintf(prefix, sizeof prefix, "call_%llx_", (unsigned long long)++s->next_call_id);
        pthread_mutex_unlock(&s->mu);
        pp.id_prefix = prefix;
        for (c = 0; c < r->n; c++)
            if (pio_output_parser_new(&pp, &r->choices[c].parser)) {
                set_err(err, 500, "server_error", NULL, NULL, "output parser: %s", pio_last_error());
                goto fail;
            }
    }
    free(prompt_text);
    free(tools_json);
    cJSON_Delete(root);
    return r;

fail:
    if (!err->status)
        set_err(err, 500, "server_error", NULL, NULL, "out of memory");
    free(prompt_text);
    free(tools_json);
    cJSON_Delete(root);
    if (r)
        request_free(r);
    return NULL;
}

/* ---- output -------------------------------------------------------------------- */

static void out_append(srv_request *r, const char *p, size_t n)
{
    if (r->out_len + n + 1 > r->out_cap) {
        size_t cap = (r->out_len + n + 1) * 2;
        char *np = realloc(r->out, cap);
        if (!np)
            return;
        r->out = np;
        r->out_cap = cap;
    }
    memcpy(r->out + r->out_len, p, n);
    r->out_len += n;
    r->out[r->out_len] = '\0';
}

/* One SSE event: "data: <json>\n\n". */
static void out_sse(srv_request *r, cJSON *obj)
{
    char *json = cJSON_PrintUnformatted(obj);
    if (json) {
        out_append(r, "data: ", 6);
        out_append(r, json, strlen(json));
        out_append(r, "\n\n", 2);
        free(json);
    }
}

/* Append to a growable string (kept NUL-terminated). */
static void buf_append(char **p, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = (*len + n + 1) * 2;
        char *np = realloc(*p, c);
        if (!np)
            return;
        *p = np;
        *cap = c;
    }
    memcpy(*p + *len, s, n);
    *len += n;
    (*p)[*len] = '\0';
}

/* OpenAI finish_reason of an ending (timeouts report "length"). */
static const char *finish_name(srv_finish f)
{
    switch (f) {
    case SRV_FINISH_STOP: return "stop";
    case SRV_FINISH_LENGTH:
    case SRV_FINISH_TIMEOUT: return "length";
    case SRV_FINISH_CANCELLED: return "abort";
    case SRV_FINISH_ERROR: return "error";
    default: return NULL;
    }
}

/* Text of one token as the client should see it (may be a partial character). */
static cJSON *token_entry(pio_server *s, int32_t id, float lp, bool with_top, const srv_logprob *l)
{
    cJSON *o = cJSON_CreateObject(), *bytes;
    char *text = NULL;
    size_t len = 0, i;
    if (!s->tok || pio_tokenizer_decode(s->tok, &id, 1, false, &text, &len)) {
        char buf[32];
        snprintf(buf, sizeof buf, "<%d>", id);
        text = strdup(buf);
        len = strlen(buf);
    }
    cJSON_AddStringToObject(o, "token", text ? text : "");
    cJSON_AddNumberToObject(o, "logprob", isfinite(lp) ? lp : -9999.0);
    bytes = cJSON_AddArrayToObject(o, "bytes");
    for (i = 0; text && i < len; i++)
        cJSON_AddItemToArray(bytes, cJSON_CreateNumber((unsigned char)text[i]));
    free(text);
    if (with_top) {
        cJSON *top = cJSON_AddArrayToObject(o, "top_logprobs");
        int j;
        for (j = 0; j < l->n_top; j++)
            cJSON_AddItemToArray(top, token_entry(s, l->top_ids[j], l->top_lp[j], false, NULL));
    }
    return o;
}

/* Completions-API logprobs object {tokens, token_logprobs, top_logprobs, text_offset}. */
static void completion_lp_add(pio_server *s, cJSON *obj, const srv_logprob *l, int offset)
{
    cJSON *e = token_entry(s, l->token, l->logprob, false, NULL), *top;
    int j;
    cJSON_AddItemToArray(cJSON_GetObjectItem(obj, "tokens"),
                         cJSON_CreateString(cJSON_GetObjectItem(e, "token")->valuestring));
    cJSON_AddItemToArray(cJSON_GetObjectItem(obj, "token_logprobs"), cJSON_CreateNumber(l->logprob));
    top = cJSON_CreateObject();
    for (j = 0; j < l->n_top; j++) {
        cJSON *t = token_entry(s, l->top_ids[j], l->top_lp[j], false, NULL);
        if (!cJSON_GetObjectItem(top, cJSON_GetObjectItem(t, "token")->valuestring))
            cJSON_AddNumberToObject(top, cJSON_GetObjectItem(t, "token")->valuestring, l->top_lp[j]);
        cJSON_Delete(t);
    }
    cJSON_AddItemToArray(cJSON_GetObjectItem(obj, "top_logprobs"), top);
    cJSON_AddItemToArray(cJSON_GetObjectItem(obj, "text_offset"), cJSON_CreateNumber(offset));
    cJSON_Delete(e);
}

/* An empty completions-API logprobs object. */
static cJSON *completion_lp_new(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddArrayToObject(o, "tokens");
    cJSON_AddArrayToObject(o, "token_logprobs");
    cJSON_AddArrayToObject(o, "top_logprobs");
    cJSON_AddArrayToObject(o, "text_offset");
    return o;
}

/* The envelope every streamed chunk shares (id, object, created, model). */
static cJSON *chunk_new(srv_request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id_str);
    cJSON_AddStringToObject(o, "object", r->kind == SRV_KIND_CHAT ? "chat.completion.chunk" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)r->created);
    cJSON_AddStringToObject(o, "model", r->model_name);
    return o;
}

/* What one event adds to a chat choice: content, reasoning, tool-call deltas. */
typedef struct delta_acc {
    char *content, *reasoning;
    size_t clen, ccap, rlen, rcap;
    cJSON *tool_calls;         /* OpenAI delta.tool_calls items, or NULL */
} delta_acc;

/* Output-parser callback: collect deltas for the chunk being built. */
static void on_parse_event(void *user, const pio_output_event *ev)
{
    delta_acc *d = user;
    cJSON *tc, *fn;
    char *t;
    switch (ev->type) {
    case PIO_OUTPUT_EVENT_CONTENT:
        buf_append(&d->content, &d->clen, &d->ccap, ev->text, ev->len);
        return;
    case PIO_OUTPUT_EVENT_REASONING:
        buf_append(&d->reasoning, &d->rlen, &d->rcap, ev->text, ev->len);
        return;
    case PIO_OUTPUT_EVENT_TOOL_CALL_START:
    case PIO_OUTPUT_EVENT_TOOL_CALL_ARGS:
        if (!d->tool_calls)
            d->tool_calls = cJSON_CreateArray();
        tc = cJSON_CreateObject();
        cJSON_AddNumberToObject(tc, "index", ev->index);
        if (ev->type == PIO_OUTPUT_EVENT_TOOL_CALL_START) {
            cJSON_AddStringToObject(tc, "id", ev->id ? ev->id : "");
            cJSON_AddStringToObject(tc, "type", "function");
        }
        fn = cJSON_AddObjectToObject(tc, "function");
        if (ev->type == PIO_OUTPUT_EVENT_TOOL_CALL_START) {
            cJSON_AddStringToObject(fn, "name", ev->name ? ev->name : "");
            cJSON_AddStringToObject(fn, "arguments", "");
        } else {
            t = strndup(ev->text ? ev->text : "", ev->len);
            cJSON_AddStringToObject(fn, "arguments", t ? t : "");
            free(t);
        }
        cJSON_AddItemToArray(d->tool_calls, tc);
        return;
    default:
        return;
    }
}

/* finish_reason of a choice: "tool_calls" when the parser found calls. */
static const char *choice_finish(const srv_request *r, const srv_choice_out *c)
{
    if (c->finish == SRV_FINISH_STOP && c->parser && pio_output_parser_result(c->parser)->n_calls > 0)
        return "tool_calls";
    return finish_name(c->finish);
}

/* One streamed chunk for choice `i`. */
static void stream_chunk(pio_server *s, srv_request *r, int i, delta_acc *d, const srv_event *ev, bool role)
{
    cJSON *o = chunk_new(r), *choices = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    const char *fin = ev && ev->finish != SRV_FINISH_NONE ? choice_finish(r, &r->choices[i]) : NULL;
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", i);
    if (r->kind == SRV_KIND_CHAT) {
        cJSON *delta = cJSON_AddObjectToObject(c, "delta");
        if (role) {
            cJSON_AddStringToObject(delta, "role", "assistant");
            cJSON_AddStringToObject(delta, "content", "");
        }
        if (d && d->rlen)
            cJSON_AddStringToObject(delta, "reasoning_content", d->reasoning);
        if (d && d->clen)
            cJSON_AddStringToObject(delta, "content", d->content);
        if (d && d->tool_calls) {
            cJSON_AddItemToObject(delta, "tool_calls", d->tool_calls);
            d->tool_calls = NULL;
        }
        if (ev && ev->has_lp) {
            cJSON *lp = cJSON_AddObjectToObject(c, "logprobs"), *arr = cJSON_AddArrayToObject(lp, "content");
            cJSON_AddItemToArray(arr, token_entry(s, ev->lp.token, ev->lp.logprob, true, &ev->lp));
        } else {
            cJSON_AddNullToObject(c, "logprobs");
        }
    } else {
        cJSON_AddStringToObject(c, "text", d && d->content ? d->content : "");
        if (ev && ev->has_lp) {
            cJSON *lp = completion_lp_new();
            completion_lp_add(s, lp, &ev->lp, 0);
            cJSON_AddItemToObject(c, "logprobs", lp);
        } else {
            cJSON_AddNullToObject(c, "logprobs");
        }
    }
    if (fin)
        cJSON_AddStringToObject(c, "finish_reason", fin);
    else
        cJSON_AddNullToObject(c, "finish_reason");
    out_sse(r, o);
    cJSON_Delete(o);
}

/* See server_int.h. Chat text goes through the choice's output parser. */
void srv_serialize_events(pio_server *s, srv_request *r, srv_event *events)
{
    int i;
    if (r->stream && !r->sent_head) {
        if (r->kind == SRV_KIND_CHAT)
            for (i = 0; i < r->n; i++)
                stream_chunk(s, r, i, NULL, NULL, true);
        r->sent_head = true;
    }
    while (events) {
        srv_event *ev = events;
        srv_choice_out *c = &r->choices[ev->choice];
        delta_acc d;
        bool last = ev->finish != SRV_FINISH_NONE;
        memset(&d, 0, sizeof d);
        events = ev->next;
        if (c->parser) {
            if (ev->len)
                pio_output_parser_feed(c->parser, ev->text, ev->len, r->stream ? on_parse_event : NULL, &d);
            if (last)
                pio_output_parser_finish(c->parser, r->stream ? on_parse_event : NULL, &d);
        } else if (ev->len) {
            buf_append(&d.content, &d.clen, &d.ccap, ev->text, ev->len);
        }
        if (ev->has_lp)
            c->n_tokens++;
        if (last)
            c->finish = ev->finish;
        if (r->stream) {
            if (d.clen || d.rlen || d.tool_calls || ev->has_lp || last)
                stream_chunk(s, r, ev->choice, &d, ev, false);
        } else {
            if (d.clen)
                buf_append(&c->text, &c->len, &c->cap, d.content, d.clen);
            if (ev->has_lp) {
                if (!c->lp_json)
                    c->lp_json = r->kind == SRV_KIND_CHAT ? cJSON_CreateArray() : completion_lp_new();
                if (r->kind == SRV_KIND_CHAT)
                    cJSON_AddItemToArray(c->lp_json, token_entry(s, ev->lp.token, ev->lp.logprob, true, &ev->lp));
                else
                    completion_lp_add(s, c->lp_json, &ev->lp, (int)c->len);
            }
        }
        free(d.content);
        free(d.reasoning);
        cJSON_Delete(d.tool_calls);
        free(ev->text);
        free(ev);
    }
}

/* {"prompt_tokens", "completion_tokens", "total_tokens", prompt_tokens_details.cached_tokens}. */
static cJSON *usage_json(srv_request *r)
{
    cJSON *u = cJSON_CreateObject(), *d;
    cJSON_AddNumberToObject(u, "prompt_tokens", r->usage_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", r->usage_completion);
    cJSON_AddNumberToObject(u, "total_tokens", r->usage_prompt + r->usage_completion);
    d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", r->usage_cached);
    return u;
}

/* See server_int.h. */
void srv_serialize_final(pio_server *s, srv_request *r)
{
    int i;
    (void)s;
    if (r->stream) {
        if (r->include_usage) {
            cJSON *o = chunk_new(r);
            cJSON_AddArrayToObject(o, "choices");
            cJSON_AddItemToObject(o, "usage", usage_json(r));
            out_sse(r, o);
            cJSON_Delete(o);
        }
        out_append(r, "data: [DONE]\n\n", 14);
        return;
    }
    {
        cJSON *o = cJSON_CreateObject(), *choices;
        char *json;
        cJSON_AddStringToObject(o, "id", r->id_str);
        cJSON_AddStringToObject(o, "object", r->kind == SRV_KIND_CHAT ? "chat.completion" : "text_completion");
        cJSON_AddNumberToObject(o, "created", (double)r->created);
        cJSON_AddStringToObject(o, "model", r->model_name);
        choices = cJSON_AddArrayToObject(o, "choices");
        for (i = 0; i < r->n; i++) {
            srv_choice_out *c = &r->choices[i];
            cJSON *ch = cJSON_CreateObject();
            const char *fin = choice_finish(r, c);
            cJSON_AddItemToArray(choices, ch);
            cJSON_AddNumberToObject(ch, "index", i);
            if (r->kind == SRV_KIND_CHAT) {
                cJSON *msg = cJSON_AddObjectToObject(ch, "message");
                const pio_output_result *res = c->parser ? pio_output_parser_result(c->parser) : NULL;
                cJSON_AddStringToObject(msg, "role", "assistant");
                if (res && res->n_calls > 0 && res->content_len == 0)
                    cJSON_AddNullToObject(msg, "content");
                else
                    cJSON_AddStringToObject(msg, "content", res ? res->content : c->text ? c->text : "");
                if (res && res->reasoning_len > 0)
                    cJSON_AddStringToObject(msg, "reasoning_content", res->reasoning);
                if (res && res->n_calls > 0) {
                    cJSON *calls = cJSON_AddArrayToObject(msg, "tool_calls");
                    int k;
                    for (k = 0; k < res->n_calls; k++) {
                        cJSON *tc = cJSON_CreateObject(), *fn;
                        cJSON_AddStringToObject(tc, "id", res->calls[k].id);
                        cJSON_AddStringToObject(tc, "type", "function");
                        fn = cJSON_AddObjectToObject(tc, "function");
                        cJSON_AddStringToObject(fn, "name", res->calls[k].name);
                        cJSON_AddStringToObject(fn, "arguments", res->calls[k].arguments);
                        cJSON_AddItemToArray(calls, tc);
                    }
                }
                if (c->lp_json) {
                    cJSON *lp = cJSON_AddObjectToObject(ch, "logprobs");
                    cJSON_AddItemToObject(lp, "content", c->lp_json);
                    c->lp_json = NULL;
                } else {
                    cJSON_AddNullToObject(ch, "logprobs");
                }
            } else {
                cJSON_AddStringToObject(ch, "text", c->text ? c->text : "");
                if (c->lp_json) {
                    cJSON_AddItemToObject(ch, "logprobs", c->lp_json);
                    c->lp_json = NULL;
                } else {
                    cJSON_AddNullToObject(ch, "logprobs");
                }
            }
            if (fin)
                cJSON_AddStringToObject(ch, "finish_reason", fin);
            else
                cJSON_AddNullToObject(ch, "finish_reason");
        }
        cJSON_AddItemToObject(o, "usage", usage_json(r));
        json = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (json) {
            out_append(r, json, strlen(json));
            free(json);
        }
    }
}

/* The /v1/models list body (malloc'ed). */
char *srv_models_json(pio_server *s)
{
    cJSON *o = cJSON_CreateObject(), *data = cJSON_AddArrayToObject(o, "data"), *m = cJSON_CreateObject();
    char *out;
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddItemToArray(data, m);
    cJSON_AddStringToObject(m, "id", s->model_name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)s->started);
    cJSON_AddStringToObject(m, "owned_by", "pio");
    cJSON_AddNumberToObject(m, "max_model_len", s->n_ctx);
    out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}
