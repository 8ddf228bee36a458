/*
 * parse_output.c - the incremental parser of model output described in
 * output_parse.h: a state machine over the unconsumed tail of the text.
 *
 * Each state looks for a small set of tags. The earliest tag found in the
 * pending text ends the state's text; when none is found, everything but
 * the longest tail that could still grow into a tag (and, in content and
 * reasoning, the newlines before it, which a following tag would drop) is
 * consumed, so a decision is never taken on a chunk boundary.
 */
#include "chat/output_parse_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NAME_MAX_BYTES 256       /* function and parameter names */

enum {
    ST_CONTENT = 0,
    ST_REASONING,
    ST_JSON_BODY,        /* Qwen3: after <tool_call>, the JSON up to </tool_call> */
    ST_XML_EXPECT_FUNC,  /* Qwen3-Coder: after <tool_call> or </function> */
    ST_XML_FUNC_NAME,    /* after <function=, up to '>' */
    ST_XML_IN_FUNC,      /* between parameters */
    ST_XML_PARAM_NAME,   /* after <parameter=, up to '>' */
    ST_XML_PARAM_VALUE,  /* up to </parameter> */
    ST_GLM_NAME,         /* GLM: after <tool_call>, the name up to <arg_key> */
    ST_GLM_IN_CALL,      /* between arguments */
    ST_GLM_KEY,          /* up to </arg_key> */
    ST_GLM_AFTER_KEY,    /* expecting <arg_value> */
    ST_GLM_VALUE,        /* up to </arg_value> */
    ST_SKIP_BLOCK,       /* a malformed block: raw text up to </tool_call> becomes content */
};

/* Tags: each state's set is a list of these ids. */
enum {
    T_THINK, T_THINK_END, T_CALL, T_CALL_END, T_FUNC, T_FUNC_END, T_PARAM, T_PARAM_END,
    T_KEY, T_KEY_END, T_VALUE, T_VALUE_END,
    /* inside a Qwen3-Coder value, the tags that end it when </parameter> is
     * missing count only at the start of a line: code in a value may hold
     * "<parameter=" or "</function>" mid-line */
    T_NL_PARAM, T_NL_FUNC_END, T_NL_CALL_END, T_COUNT
};
static const char *const tag_text[T_COUNT] = {
    "<think>", "</think>", "<tool_call>", "</tool_call>", "<function=", "</function>",
    "<parameter=", "</parameter>", "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>",
    "\n<parameter=", "\n</function>", "\n</tool_call>",
};

struct pio_output_parser {
    pio_tool_format format;
    bool parse_reasoning;
    char *id_prefix;
    cJSON *tools;                /* the tools array, or NULL */
    int state;
    bool skip_nl;                /* drop newlines at the start of the next text */
    bool finished;
    pio_status err;              /* sticky (out of memory) */
    pio_output_event_fn cb;
    void *user;

    pio_sb buf;                  /* unconsumed input */
    pio_sb raw;                  /* raw text of the tool block since <tool_call> or the last call */
    pio_sb field;                /* text of the current name / key / value / JSON body */
    pio_sb key;                  /* the current parameter name */
    bool calls_in_block;         /* a call of the current block was emitted */

    /* the call being streamed */
    bool call_open;
    int n_args;
    pio_sb args;
    const cJSON *props;          /* its parameters.properties, or NULL */
    bool streaming;              /* the current value is a string streamed as it comes */
    bool value_started;          /* a byte of the streamed value was seen */

    /* the result */
    pio_sb content, reasoning;
    pio_tool_call *calls;
    int n_calls, cap_calls;
    char **warnings;
    int n_warnings, cap_warnings;
    pio_output_result res;
};

/* ---- names and detection ------------------------------------------------- */

int pio_tool_format_from_name(const char *name)
{
    static const struct { const char *name; pio_tool_format f; } names[] = {
        { "none", PIO_TOOL_FORMAT_NONE },
        { "qwen3", PIO_TOOL_FORMAT_QWEN3_JSON },
        { "qwen3_json", PIO_TOOL_FORMAT_QWEN3_JSON },
        { "json", PIO_TOOL_FORMAT_QWEN3_JSON },
        { "hermes", PIO_TOOL_FORMAT_QWEN3_JSON },
        { "qwen2", PIO_TOOL_FORMAT_QWEN3_JSON },
        { "qwen3_moe", PIO_TOOL_FORMAT_QWEN3_JSON },
        { "qwen3_vl", PIO_TOOL_FORMAT_QWEN3_JSON },
        { "qwen3_vl_moe", PIO_TOOL_FORMAT_QWEN3_JSON },
        { "qwen3forcausallm", PIO_TOOL_FORMAT_QWEN3_JSON },
        { "qwen3moeforcausallm", PIO_TOOL_FORMAT_QWEN3_JSON },
        { "qwen3vlforconditionalgeneration", PIO_TOOL_FORMAT_QWEN3_JSON },
        { "qwen3_coder", PIO_TOOL_FORMAT_QWEN3_XML },
        { "qwen3-coder", PIO_TOOL_FORMAT_QWEN3_XML },
        { "qwen3_xml", PIO_TOOL_FORMAT_QWEN3_XML },
        { "xml", PIO_TOOL_FORMAT_QWEN3_XML },
        { "glm", PIO_TOOL_FORMAT_GLM47 },
        { "glm45", PIO_TOOL_FORMAT_GLM47 },
        { "glm47", PIO_TOOL_FORMAT_GLM47 },
        { "glm4_moe", PIO_TOOL_FORMAT_GLM47 },
        { "glm4_moe_lite", PIO_TOOL_FORMAT_GLM47 },
        { "glm4moeforcausallm", PIO_TOOL_FORMAT_GLM47 },
        { "glm4moeliteforcausallm", PIO_TOOL_FORMAT_GLM47 },
    };
    size_t i;
    if (!name)
        return -1;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(name, names[i].name))
            return (int)names[i].f;
    return -1;
}

int pio_tool_format_from_template(const char *t)
{
    if (!t)
        return -1;
    if (strstr(t, "<function="))
        return PIO_TOOL_FORMAT_QWEN3_XML;
    if (strstr(t, "<arg_key>"))
        return PIO_TOOL_FORMAT_GLM47;
    if (strstr(t, "<tool_call>"))
        return PIO_TOOL_FORMAT_QWEN3_JSON;
    return -1;
}

const char *pio_tool_format_name(pio_tool_format f)
{
    switch (f) {
    case PIO_TOOL_FORMAT_NONE: return "none";
    case PIO_TOOL_FORMAT_QWEN3_JSON: return "qwen3_json";
    case PIO_TOOL_FORMAT_QWEN3_XML: return "qwen3_xml";
    case PIO_TOOL_FORMAT_GLM47: return "glm47";
    }
    return "?";
}

bool pio_output_prompt_opens_reasoning(const char *prompt)
{
    size_t n = prompt ? strlen(prompt) : 0;
    while (n > 0 && isspace((unsigned char)prompt[n - 1]))
        n--;
    return n >= 7 && !memcmp(prompt + n - 7, "<think>", 7);
}

void pio_output_parse_params_default(pio_output_parse_params *p)
{
    memset(p, 0, sizeof *p);
    p->format = PIO_TOOL_FORMAT_NONE;
    p->parse_reasoning = true;
    p->id_prefix = "call_";
}

/* ---- events and the result ----------------------------------------------- */

static void oom(pio_output_parser *p)
{
    if (!p->err)
        p->err = pio_error(PIO_STATUS_ERR_NOMEM, "output parser: out of memory");
}

static void emit(pio_output_parser *p, pio_output_event_type type, int index, const char *text,
                 size_t len)
{
    pio_output_event ev;
    if (p->err)
        return;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.index = index;
    ev.text = text;
    ev.len = len;
    if (index >= 0) {
        ev.id = p->calls[index].id;
        ev.name = p->calls[index].name;
    }
    if (p->cb)
        p->cb(p->user, &ev);
}

static void warn(pio_output_parser *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void warn(pio_output_parser *p, const char *fmt, ...)
{
    char msg[512], **nw;
    va_list ap;
    if (p->err)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->n_warnings == p->cap_warnings) {
        int cap = p->cap_warnings ? p->cap_warnings * 2 : 4;
        nw = realloc(p->warnings, (size_t)cap * sizeof *nw);
        if (!nw)
            return oom(p);
        p->warnings = nw;
        p->cap_warnings = cap;
    }
    if (!(p->warnings[p->n_warnings] = strdup(msg)))
        return oom(p);
    p->n_warnings++;
    emit(p, PIO_OUTPUT_EVENT_WARNING, -1, msg, strlen(msg));
}

static void out_text(pio_output_parser *p, bool reasoning, const char *s, size_t n)
{
    if (!n || p->err)
        return;
    if (!pio_sb_add(reasoning ? &p->reasoning : &p->content, s, n))
        return oom(p);
    emit(p, reasoning ? PIO_OUTPUT_EVENT_REASONING : PIO_OUTPUT_EVENT_CONTENT, -1, s, n);
}

/* A short, printable excerpt of s[0..n) for warnings. */
static const char *excerpt(const char *s, size_t n, char *out, size_t cap)
{
    size_t i, o = 0;
    for (i = 0; i < n && o + 4 < cap; i++)
        out[o++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];   /* one printable line */
    if (i < n && o + 4 <= cap) {
        while (o > 0 && ((unsigned char)out[o - 1] & 0x80))   /* no half characters */
            o--;
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

static bool is_blank(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return false;
    return true;
}

/* Trim ASCII whitespace in place; returns the new start, *n the length. */
static const char *trim(const char *s, size_t *n)
{
    size_t len = *n;
    while (len > 0 && isspace((unsigned char)s[0]))
        s++, len--;
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    *n = len;
    return s;
}

/* ---- tool calls ---------------------------------------------------------- */

/* The function object named `name` in the tools list, or NULL. */
static const cJSON *find_tool(const pio_output_parser *p, const char *name)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, p->tools) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "function"), *nm;
        if (!cJSON_IsObject(f))
            f = t;
        nm = cJSON_GetObjectItemCaseSensitive(f, "name");
        if (cJSON_IsString(nm) && !strcmp(nm->valuestring, name))
            return f;
    }
    return NULL;
}

/* Open call number n_calls named name[0..n): emits the start event. */
static void call_start(pio_output_parser *p, const char *name, size_t n)
{
    pio_tool_call *c;
    const cJSON *f;
    char id[64];
    if (p->err)
        return;
    if (p->n_calls == p->cap_calls) {
        int cap = p->cap_calls ? p->cap_calls * 2 : 4;
        pio_tool_call *nc = realloc(p->calls, (size_t)cap * sizeof *nc);
        if (!nc)
            return oom(p);
        p->calls = nc;
        p->cap_calls = cap;
    }
    c = &p->calls[p->n_calls];
    memset(c, 0, sizeof *c);
    snprintf(id, sizeof id, "%.40s%d", p->id_prefix, p->n_calls);
    c->id = strdup(id);
    c->name = malloc(n + 1);
    if (!c->id || !c->name) {
        free(c->id);
        free(c->name);
        return oom(p);
    }
    memcpy(c->name, name, n);
    c->name[n] = '\0';
    p->n_calls++;
    p->call_open = true;
    p->calls_in_block = true;
    p->n_args = 0;
    pio_sb_clear(&p->args);
    f = p->tools ? find_tool(p, c->name) : NULL;
    p->props = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(f, "parameters"),
                                                "properties");
    if (!cJSON_IsObject(p->props))
        p->props = NULL;
    emit(p, PIO_OUTPUT_EVENT_TOOL_CALL_START, p->n_calls - 1, NULL, 0);
    if (p->tools && !f) {
        char ex[80];
        warn(p, "tool call %d: function \"%s\" is not in the tools list; kept as it is",
             p->n_calls - 1, excerpt(c->name, n, ex, sizeof ex));
    }
}

/* Append `key` = val[0..n) to the open call's arguments and emit the delta. */
static void call_arg(pio_output_parser *p, const char *key, size_t key_len, const char *val, size_t n)
{
    size_t at = p->args.len;
    char why[160], ex[80], *k;
    if (p->err || !p->call_open)
        return;
    key = trim(key, &key_len);
    if (key_len == 0) {
        warn(p, "tool call %d: an argument with an empty name was dropped", p->n_calls - 1);
        return;
    }
    if (!(k = malloc(key_len + 1)))
        return oom(p);
    memcpy(k, key, key_len);
    k[key_len] = '\0';
    if (!pio_sb_add(&p->args, p->n_args ? "," : "{", 1) || !pio_sb_add_json_string(&p->args, k, key_len) ||
        !pio_sb_add(&p->args, ":", 1) || !pio_value_to_json(p->props, k, val, n, &p->args, why, sizeof why)) {
        free(k);
        return oom(p);
    }
    p->n_args++;
    emit(p, PIO_OUTPUT_EVENT_TOOL_CALL_ARGS, p->n_calls - 1, p->args.s + at, p->args.len - at);
    if (why[0])
        warn(p, "tool call %d: argument \"%s\" %s", p->n_calls - 1, excerpt(k, key_len, ex, sizeof ex), why);
    free(k);
}

/* Close the open call: the last argument delta, then the end event. */
static void call_end(pio_output_parser *p)
{
    size_t at = p->args.len;
    pio_tool_call *c;
    if (p->err || !p->call_open)
        return;
    if (!pio_sb_adds(&p->args, p->n_args ? "}" : "{}"))
        return oom(p);
    c = &p->calls[p->n_calls - 1];
    if (!(c->arguments = strdup(p->args.s)))
        return oom(p);
    p->call_open = false;
    emit(p, PIO_OUTPUT_EVENT_TOOL_CALL_ARGS, p->n_calls - 1, p->args.s + at, p->args.len - at);
    emit(p, PIO_OUTPUT_EVENT_TOOL_CALL_END, p->n_calls - 1, c->arguments, strlen(c->arguments));
    pio_sb_clear(&p->raw);
}

/*
 * String-typed values stream as they come: the opening `"key":"` goes out
 * when the value starts, escaped text with each chunk, `"` when it ends.
 * Values of other types wait for their end (they are parsed whole).
 */
static void stream_open(pio_output_parser *p)
{
    size_t at = p->args.len, n = p->key.len;
    const char *k = trim(p->key.s ? p->key.s : "", &n);
    char *key;
    if (p->err || !p->call_open || n == 0)
        return;
    if (!(key = malloc(n + 1)))
        return oom(p);
    memcpy(key, k, n);
    key[n] = '\0';
    if (pio_schema_is_string(p->props, key)) {
        if (!pio_sb_add(&p->args, p->n_args ? "," : "{", 1) || !pio_sb_add_json_string(&p->args, key, n) ||
            !pio_sb_add(&p->args, ":", 1) || !pio_sb_add(&p->args, "\"", 1)) {
            free(key);
            return oom(p);
        }
        p->n_args++;
        p->streaming = true;
        p->value_started = false;
        emit(p, PIO_OUTPUT_EVENT_TOOL_CALL_ARGS, p->n_calls - 1, p->args.s + at, p->args.len - at);
    }
    free(key);
}

static void stream_text(pio_output_parser *p, const char *s, size_t n)
{
    size_t at = p->args.len;
    if (!p->value_started && n) {
        if (p->state == ST_XML_PARAM_VALUE && s[0] == '\n')
            s++, n--;            /* layout newline after <parameter=K> */
        p->value_started = true;
    }
    if (!n || p->err)
        return;
    /* escape as a JSON string body: the quotes come from open and close */
    if (!pio_sb_add_json_string(&p->args, s, n))
        return oom(p);
    memmove(p->args.s + at, p->args.s + at + 1, p->args.len - at - 2);
    p->args.len -= 2;
    p->args.s[p->args.len] = '\0';
    emit(p, PIO_OUTPUT_EVENT_TOOL_CALL_ARGS, p->n_calls - 1, p->args.s + at, p->args.len - at);
}

static void stream_close(pio_output_parser *p)
{
    p->streaming = false;
    if (p->err)
        return;
    if (!pio_sb_add(&p->args, "\"", 1))
        return oom(p);
    emit(p, PIO_OUTPUT_EVENT_TOOL_CALL_ARGS, p->n_calls - 1, p->args.s + p->args.len - 1, 1);
}

/* A malformed block: its raw text becomes content. */
static void block_to_content(pio_output_parser *p)
{
    out_text(p, false, p->raw.s, p->raw.len);
    pio_sb_clear(&p->raw);
}

/* Qwen3 JSON body in `field`: emit the call, or fall back to content.
 * `closed`: the block ended with </tool_call>. */
static void json_block(pio_output_parser *p, bool closed)
{
    const char *body, *end = NULL, *problem = NULL;
    size_t n = p->field.len;
    cJSON *v = NULL, *args = NULL, *name, *a;
    char *txt = NULL, ex[80];

    body = trim(p->field.s ? p->field.s : "", &n);
    v = n ? cJSON_ParseWithLengthOpts(body, n, &end, false) : NULL;
    if (!v || (end && !is_blank(end, n - (size_t)(end - body)))) {
        problem = "is not valid JSON";
        goto fallback;
    }
    name = cJSON_GetObjectItemCaseSensitive(v, "name");
    a = cJSON_GetObjectItemCaseSensitive(v, "arguments");
    if (!a)
        a = cJSON_GetObjectItemCaseSensitive(v, "parameters");
    if (!cJSON_IsObject(v) || !cJSON_IsString(name) || !name->valuestring[0]) {
        problem = "has no string \"name\"";
        goto fallback;
    }
    if (cJSON_IsString(a))
        args = cJSON_Parse(a->valuestring);
    else if (a)
        args = cJSON_Duplicate(a, true);
    else
        args = cJSON_CreateObject();
    if (!cJSON_IsObject(args)) {
        problem = "has \"arguments\" that are not a JSON object";
        goto fallback;
    }
    if (!(txt = cJSON_PrintUnformatted(args))) {
        oom(p);
        goto out;
    }
    call_start(p, name->valuestring, strlen(name->valuestring));
    if (!p->err && !pio_sb_adds(&p->args, txt))
        oom(p);
    if (!p->err) {
        p->calls[p->n_calls - 1].arguments = strdup(txt);
        if (!p->calls[p->n_calls - 1].arguments) {
            oom(p);
            goto out;
        }
        p->call_open = false;
        emit(p, PIO_OUTPUT_EVENT_TOOL_CALL_ARGS, p->n_calls - 1, txt, strlen(txt));
        emit(p, PIO_OUTPUT_EVENT_TOOL_CALL_END, p->n_calls - 1, txt, strlen(txt));
        pio_sb_clear(&p->raw);
    }
    if (!closed)
        warn(p, "tool call %d: no </tool_call> after the JSON; the call was kept", p->n_calls - 1);
    goto out;
fallback:
    warn(p, "a <tool_call> block %s%s (\"%s\"); its text was kept as content", problem,
         closed ? "" : " and was not closed", excerpt(body, n, ex, sizeof ex));
    block_to_content(p);
out:
    free(txt);
    cJSON_Delete(args);
    cJSON_Delete(v);
    pio_sb_clear(&p->field);
}

/* ---- the state machine --------------------------------------------------- */

/* A Qwen3-Coder block holding a Qwen3 JSON call instead of XML (models
 * drift between the two): parse it as JSON. False when `field` does not
 * start like a JSON object. */
static bool json_in_xml(pio_output_parser *p, bool closed)
{
    size_t n = p->field.len;
    const char *t = trim(p->field.s ? p->field.s : "", &n);
    int before = p->n_calls;
    if (n == 0 || t[0] != '{')
        return false;
    json_block(p, closed);
    if (p->n_calls > before)
        warn(p, "tool call %d: written as JSON, not in the <function=...> form; accepted", p->n_calls - 1);
    return true;
}

static bool is_text_state(int st)
{
    return st == ST_CONTENT || st == ST_REASONING;
}

/* The tags state `st` looks for (ids into tag_text); returns the count. */
static int state_tags(const pio_output_parser *p, int st, int *tags)
{
    int n = 0;
    switch (st) {
    case ST_CONTENT:
        if (p->parse_reasoning)
            tags[n++] = T_THINK;
        if (p->format != PIO_TOOL_FORMAT_NONE)
            tags[n++] = T_CALL;
        break;
    case ST_REASONING: tags[n++] = T_THINK_END; break;
    case ST_JSON_BODY: tags[n++] = T_CALL_END; tags[n++] = T_CALL; break;
    case ST_XML_EXPECT_FUNC: tags[n++] = T_FUNC; tags[n++] = T_CALL_END; break;
    case ST_XML_IN_FUNC:
        tags[n++] = T_PARAM; tags[n++] = T_PARAM_END; tags[n++] = T_FUNC_END; tags[n++] = T_CALL_END;
        break;
    case ST_XML_PARAM_VALUE:
        tags[n++] = T_PARAM_END; tags[n++] = T_NL_PARAM; tags[n++] = T_NL_FUNC_END; tags[n++] = T_NL_CALL_END;
        break;
    case ST_GLM_NAME: case ST_GLM_IN_CALL: tags[n++] = T_KEY; tags[n++] = T_CALL_END; break;
    case ST_GLM_KEY: tags[n++] = T_KEY_END; tags[n++] = T_VALUE; tags[n++] = T_CALL_END; break;
    case ST_GLM_AFTER_KEY: tags[n++] = T_VALUE; tags[n++] = T_KEY; tags[n++] = T_CALL_END; break;
    case ST_GLM_VALUE: tags[n++] = T_VALUE_END; tags[n++] = T_KEY; tags[n++] = T_CALL_END; break;
    case ST_SKIP_BLOCK: tags[n++] = T_CALL_END; break;
    }
    return n;
}

/* Earliest tag of `tags` in s[0..n): its id, and *at its offset; -1 if
 * none. Every tag starts with '<' or '\n', so only those bytes are tried:
 * the cost is the distance to the first tag, not the length of the text. */
static int find_tag(const char *s, size_t n, const int *tags, int nt, size_t *at)
{
    size_t i;
    int k;
    for (i = 0; i < n; i++) {
        if (s[i] != '<' && s[i] != '\n')
            continue;
        for (k = 0; k < nt; k++) {
            const char *t = tag_text[tags[k]];
            size_t tl = strlen(t);
            if (t[0] == s[i] && tl <= n - i && !memcmp(s + i, t, tl)) {
                *at = i;
                return tags[k];
            }
        }
    }
    *at = n;
    return -1;
}

/* Length of the longest tail of s[0..n) that is a proper prefix of a tag. */
static size_t partial_tag(const char *s, size_t n, const int *tags, int nt)
{
    size_t best = 0;
    int i;
    for (i = 0; i < nt; i++) {
        size_t tl = strlen(tag_text[tags[i]]), k;
        for (k = tl - 1 < n ? tl - 1 : n; k > best; k--)
            if (!memcmp(s + n - k, tag_text[tags[i]], k)) {
                best = k;
                break;
            }
    }
    return best;
}

/* Text s[0..n) read in the current state, before a tag or the hold-back point. */
static void state_text(pio_output_parser *p, const char *s, size_t n)
{
    switch (p->state) {
    case ST_CONTENT: out_text(p, false, s, n); break;
    case ST_REASONING: out_text(p, true, s, n); break;
    case ST_SKIP_BLOCK: break;   /* already in raw */
    case ST_XML_PARAM_VALUE:
    case ST_GLM_VALUE:
        if (p->streaming) {
            stream_text(p, s, n);
            break;
        }
        /* fall through */
    default:
        if (!pio_sb_add(&p->field, s, n))
            oom(p);
    }
}

/* Text between the parts of a call must be blank: warn once per stretch. */
static void check_gap(pio_output_parser *p)
{
    char ex[80];
    if (p->field.len && !is_blank(p->field.s, p->field.len))
        warn(p, "text inside a tool call was ignored: \"%s\"",
             excerpt(p->field.s, p->field.len, ex, sizeof ex));
    pio_sb_clear(&p->field);
}

/* Finish the Qwen3-Coder parameter whose value is in `field` (or was
 * streamed); one newline on each side of the value is layout: run() drops
 * the one before the closing tag, the one after <parameter=K> goes here. */
static void xml_param(pio_output_parser *p, bool closed)
{
    const char *v = p->field.s ? p->field.s : "";
    size_t n = p->field.len;
    char ex[80];
    if (!closed)
        warn(p, "tool call %d: parameter \"%s\" has no </parameter>; its value ends at the next tag",
             p->n_calls - 1, excerpt(p->key.s, p->key.len, ex, sizeof ex));
    if (p->streaming) {
        stream_close(p);
    } else {
        if (n && v[0] == '\n')
            v++, n--;
        call_arg(p, p->key.s, p->key.len, v, n);
    }
    pio_sb_clear(&p->field);
    pio_sb_clear(&p->key);
}

static void glm_value(pio_output_parser *p, bool closed)
{
    char ex[80];
    if (!closed)
        warn(p, "tool call %d: argument \"%s\" has no </arg_value>; its value ends at the next tag",
             p->n_calls - 1, excerpt(p->key.s, p->key.len, ex, sizeof ex));
    if (p->streaming)
        stream_close(p);
    else
        call_arg(p, p->key.s, p->key.len, p->field.s ? p->field.s : "", p->field.len);
    pio_sb_clear(&p->field);
    pio_sb_clear(&p->key);
}

static void missing_close(pio_output_parser *p, const char *what)
{
    warn(p, "tool call %d: no %s before the end of the call", p->n_calls - 1, what);
}

/* Take the GLM function name from `field`; false (nothing started) if empty
 * or not one line of at most NAME_MAX_BYTES. */
static bool glm_start(pio_output_parser *p)
{
    size_t n = p->field.len;
    const char *s = trim(p->field.s ? p->field.s : "", &n);
    bool ok = n > 0 && n <= NAME_MAX_BYTES && !memchr(s, '\n', n) && !memchr(s, '<', n);
    if (ok)
        call_start(p, s, n);
    pio_sb_clear(&p->field);
    return ok;
}

static void begin_block(pio_output_parser *p)
{
    pio_sb_clear(&p->raw);
    pio_sb_clear(&p->field);
    pio_sb_clear(&p->key);
    if (!pio_sb_adds(&p->raw, tag_text[T_CALL]))
        oom(p);
    p->calls_in_block = false;
    p->state = p->format == PIO_TOOL_FORMAT_QWEN3_JSON ? ST_JSON_BODY
             : p->format == PIO_TOOL_FORMAT_QWEN3_XML ? ST_XML_EXPECT_FUNC : ST_GLM_NAME;
}

static void end_block(pio_output_parser *p)
{
    pio_sb_clear(&p->raw);
    p->state = ST_CONTENT;
    p->skip_nl = true;
}

/* The tag `tag` ended the current state's text: move on. */
static void state_tag(pio_output_parser *p, int tag)
{
    char ex[80];
    switch (p->state) {
    case ST_CONTENT:
        if (tag == T_THINK) {
            p->state = ST_REASONING;
            p->skip_nl = true;
        } else {
            begin_block(p);
        }
        break;
    case ST_REASONING:
        p->state = ST_CONTENT;
        p->skip_nl = true;
        break;
    case ST_JSON_BODY:
        if (tag == T_CALL_END) {
            json_block(p, true);
            end_block(p);
        } else {                 /* a new <tool_call> before </tool_call> */
            p->raw.len -= strlen(tag_text[T_CALL]);
            p->raw.s[p->raw.len] = '\0';
            json_block(p, false);
            begin_block(p);
        }
        break;
    case ST_XML_EXPECT_FUNC:
        if (tag == T_CALL_END && !p->calls_in_block && json_in_xml(p, true)) {
            end_block(p);
            break;
        }
        check_gap(p);
        if (tag == T_FUNC) {
            p->state = ST_XML_FUNC_NAME;
        } else {
            if (!p->calls_in_block) {
                warn(p, "a <tool_call> block has no <function=...>; its text was kept as content");
                block_to_content(p);
            }
            end_block(p);
        }
        break;
    case ST_XML_IN_FUNC:
        check_gap(p);
        if (tag == T_PARAM) {
            p->state = ST_XML_PARAM_NAME;
        } else if (tag == T_FUNC_END) {
            call_end(p);
            p->state = ST_XML_EXPECT_FUNC;
        } else if (tag == T_CALL_END) {
            missing_close(p, "</function>");
            call_end(p);
            end_block(p);
        }                        /* a stray </parameter> is dropped */
        break;
    case ST_XML_PARAM_VALUE:
        xml_param(p, tag == T_PARAM_END);
        if (tag == T_PARAM_END) {
            p->state = ST_XML_IN_FUNC;
        } else if (tag == T_NL_PARAM) {
            p->state = ST_XML_PARAM_NAME;
        } else if (tag == T_NL_FUNC_END) {
            call_end(p);
            p->state = ST_XML_EXPECT_FUNC;
        } else {
            missing_close(p, "</function>");
            call_end(p);
            end_block(p);
        }
        break;
    case ST_GLM_NAME:
        if (!glm_start(p)) {
            warn(p, "a <tool_call> block has no function name; its text was kept as content");
            if (tag == T_CALL_END) {
                block_to_content(p);
                end_block(p);
            } else {
                p->state = ST_SKIP_BLOCK;
            }
        } else if (tag == T_KEY) {
            p->state = ST_GLM_KEY;
        } else {
            call_end(p);
            end_block(p);
        }
        break;
    case ST_GLM_IN_CALL:
        check_gap(p);
        if (tag == T_KEY) {
            p->state = ST_GLM_KEY;
        } else {
            call_end(p);
            end_block(p);
        }
        break;
    case ST_GLM_KEY:
        pio_sb_clear(&p->key);
        if (!pio_sb_add(&p->key, p->field.s ? p->field.s : "", p->field.len))
            oom(p);
        pio_sb_clear(&p->field);
        if (tag == T_KEY_END) {
            p->state = ST_GLM_AFTER_KEY;
        } else if (tag == T_VALUE) {
            missing_close(p, "</arg_key>");
            p->state = ST_GLM_VALUE;
            stream_open(p);
        } else {
            warn(p, "tool call %d: argument \"%s\" has no value and was dropped", p->n_calls - 1,
                 excerpt(p->key.s, p->key.len, ex, sizeof ex));
            call_end(p);
            end_block(p);
        }
        break;
    case ST_GLM_AFTER_KEY:
        check_gap(p);
        if (tag == T_VALUE) {
            p->state = ST_GLM_VALUE;
            stream_open(p);
            break;
        }
        warn(p, "tool call %d: argument \"%s\" has no value and was dropped", p->n_calls - 1,
             excerpt(p->key.s, p->key.len, ex, sizeof ex));
        if (tag == T_KEY) {
            p->state = ST_GLM_KEY;
        } else {
            call_end(p);
            end_block(p);
        }
        break;
    case ST_GLM_VALUE:
        glm_value(p, tag == T_VALUE_END);
        if (tag == T_VALUE_END) {
            p->state = ST_GLM_IN_CALL;
        } else if (tag == T_KEY) {
            p->state = ST_GLM_KEY;
        } else {
            call_end(p);
            end_block(p);
        }
        break;
    case ST_SKIP_BLOCK:
        block_to_content(p);
        end_block(p);
        break;
    }
}

/*
 * A name state (function or parameter name up to '>'): consume from s[0..n)
 * and return the bytes used. A name with '<' or a newline, or longer than
 * NAME_MAX_BYTES, is malformed: a function name sends the block to content,
 * a parameter name drops that parameter.
 */
static size_t name_state(pio_output_parser *p, const char *s, size_t n)
{
    size_t i, room = NAME_MAX_BYTES + 1 - p->field.len;
    bool func = p->state == ST_XML_FUNC_NAME;
    char ex[80];
    for (i = 0; i < n && i < room; i++)
        if (s[i] == '>' || s[i] == '<' || s[i] == '\n')
            break;
    if (!pio_sb_add(&p->field, s, i) || !pio_sb_add(&p->raw, s, i)) {
        oom(p);
        return n;
    }
    if (i < n && s[i] == '>' && p->field.len > 0 && p->field.len <= NAME_MAX_BYTES) {
        if (!pio_sb_add(&p->raw, ">", 1))
            oom(p);
        if (func) {
            call_start(p, p->field.s, p->field.len);
            p->state = ST_XML_IN_FUNC;
        } else {
            pio_sb_clear(&p->key);
            if (!pio_sb_add(&p->key, p->field.s, p->field.len))
                oom(p);
            p->state = ST_XML_PARAM_VALUE;
            stream_open(p);
        }
        pio_sb_clear(&p->field);
        return i + 1;
    }
    if (i == n)
        return n;                /* the name may go on (at the end, close_open decides) */
    if (func) {
        warn(p, "a <tool_call> block has a malformed function name \"%s\"; its text was kept as content",
             excerpt(p->field.s ? p->field.s : "", p->field.len, ex, sizeof ex));
        p->state = ST_SKIP_BLOCK;
    } else {
        warn(p, "tool call %d: malformed parameter name \"%s\"; the parameter was dropped",
             p->n_calls - 1, excerpt(p->field.s ? p->field.s : "", p->field.len, ex, sizeof ex));
        p->state = ST_XML_IN_FUNC;
    }
    pio_sb_clear(&p->field);
    return i;
}

/* Consume what can be decided of the pending input; at_end: all of it. */
static void run(pio_output_parser *p, bool at_end)
{
    size_t off = 0;
    if (!p->buf.s)
        return;                  /* nothing was fed */
    while (!p->err) {
        const char *s = p->buf.s + off;
        size_t n = p->buf.len - off, at, keep;
        int tags[4], nt, tag;

        if (p->state == ST_XML_FUNC_NAME || p->state == ST_XML_PARAM_NAME) {
            if (n == 0)
                break;
            off += name_state(p, s, n);
            continue;
        }
        if (is_text_state(p->state) && p->skip_nl) {
            while (n > 0 && s[0] == '\n')
                s++, n--, off++;
            if (n == 0)
                break;
            p->skip_nl = false;
        }
        if (n == 0)
            break;
        nt = state_tags(p, p->state, tags);
        tag = find_tag(s, n, tags, nt, &at);
        if (tag >= 0) {
            size_t tl = strlen(tag_text[tag]), tn = at;
            if (!is_text_state(p->state) && !pio_sb_add(&p->raw, s, at + tl)) {
                oom(p);
                break;
            }
            if (is_text_state(p->state))
                while (tn > 0 && s[tn - 1] == '\n')
                    tn--;
            if (p->state == ST_XML_PARAM_VALUE && tn > 0 && s[tn - 1] == '\n')
                tn--;            /* layout newline before </parameter> */
            state_text(p, s, tn);
            off += at + tl;
            state_tag(p, tag);
            continue;
        }
        keep = at_end ? 0 : partial_tag(s, n, tags, nt);
        if (is_text_state(p->state) && !at_end)
            while (keep < n && s[n - keep - 1] == '\n')
                keep++;
        if (p->state == ST_XML_PARAM_VALUE && !at_end && keep < n && s[n - keep - 1] == '\n')
            keep++;              /* it is layout if a </parameter> follows */
        if (!is_text_state(p->state) && !pio_sb_add(&p->raw, s, n - keep)) {
            oom(p);
            break;
        }
        /* at the end a value's last newline is layout too (a trailing
         * newline otherwise stays held: it may start "\n</function>") */
        state_text(p, s, n - keep - (at_end && p->state == ST_XML_PARAM_VALUE && n && s[n - 1] == '\n'));
        off += n - keep;
        break;
    }
    if (off > p->buf.len)
        off = p->buf.len;
    memmove(p->buf.s, p->buf.s + off, p->buf.len - off);
    p->buf.len -= off;
    if (p->buf.s)
        p->buf.s[p->buf.len] = '\0';
}

/* End of stream in a tool-call state: close or fall back (output_parse.h). */
static void close_open(pio_output_parser *p)
{
    switch (p->state) {
    case ST_CONTENT:
    case ST_REASONING:
        return;
    case ST_JSON_BODY:
        json_block(p, false);
        break;
    case ST_XML_EXPECT_FUNC:
        if (!p->calls_in_block && json_in_xml(p, false))
            break;
        check_gap(p);
        if (!p->calls_in_block) {
            warn(p, "the output ended inside a <tool_call> block with no function; its text was kept as content");
            block_to_content(p);
        } else {
            warn(p, "the output ended before </tool_call>");
        }
        break;
    case ST_XML_FUNC_NAME:
    case ST_GLM_NAME:
        if (p->state == ST_GLM_NAME && glm_start(p)) {
            missing_close(p, "</tool_call>");
            call_end(p);
            break;
        }
        warn(p, "the output ended inside a <tool_call> block before a function name; its text was kept as content");
        block_to_content(p);
        break;
    case ST_SKIP_BLOCK:
        block_to_content(p);
        break;
    case ST_XML_PARAM_VALUE:
        xml_param(p, false);
        /* fall through */
    default:
        if (p->state == ST_GLM_VALUE)
            glm_value(p, false);
        else if (p->state == ST_XML_IN_FUNC || p->state == ST_GLM_IN_CALL || p->state == ST_GLM_AFTER_KEY)
            check_gap(p);
        if (p->call_open)
            warn(p, "tool call %d: the output ended inside the call; it was closed with the arguments read",
                 p->n_calls - 1);
        call_end(p);
        break;
    }
    p->state = ST_CONTENT;
}

static void refresh_result(pio_output_parser *p)
{
    p->res.content = p->content.s ? p->content.s : "";
    p->res.content_len = p->content.len;
    p->res.reasoning = p->reasoning.s ? p->reasoning.s : "";
    p->res.reasoning_len = p->reasoning.len;
    p->res.calls = p->calls;
    p->res.n_calls = p->n_calls;
    /* an open call is not listed until it ends */
    if (p->call_open)
        p->res.n_calls--;
    p->res.warnings = (const char *const *)p->warnings;
    p->res.n_warnings = p->n_warnings;
}

/* ---- public API ---------------------------------------------------------- */

pio_status pio_output_parser_new(const pio_output_parse_params *params, pio_output_parser **out)
{
    pio_output_parser *p;
    pio_output_parse_params def;
    *out = NULL;
    if (!params) {
        pio_output_parse_params_default(&def);
        params = &def;
    }
    if ((int)params->format < PIO_TOOL_FORMAT_NONE || params->format > PIO_TOOL_FORMAT_GLM47)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "output parser: unknown tool format %d",
                         (int)params->format);
    p = calloc(1, sizeof *p);
    if (!p)
        return pio_error(PIO_STATUS_ERR_NOMEM, "output parser: out of memory");
    p->format = params->format;
    p->parse_reasoning = params->parse_reasoning;
    p->id_prefix = strdup(params->id_prefix ? params->id_prefix : "call_");
    if (!p->id_prefix) {
        free(p);
        return pio_error(PIO_STATUS_ERR_NOMEM, "output parser: out of memory");
    }
    if (params->tools_json) {
        p->tools = cJSON_Parse(params->tools_json);
        if (!cJSON_IsArray(p->tools)) {
            pio_output_parser_free(p);
            return pio_error(PIO_STATUS_ERR_FORMAT, "output parser: tools must be a JSON array");
        }
    }
    if (params->start_in_reasoning && params->parse_reasoning) {
        p->state = ST_REASONING;
        p->skip_nl = true;
    }
    refresh_result(p);
    *out = p;
    return PIO_STATUS_OK;
}

void pio_output_parser_free(pio_output_parser *p)
{
    int i;
    if (!p)
        return;
    for (i = 0; i < p->n_calls; i++) {
        free(p->calls[i].id);
        free(p->calls[i].name);
        free(p->calls[i].arguments);
    }
    free(p->calls);
    for (i = 0; i < p->n_warnings; i++)
        free(p->warnings[i]);
    free(p->warnings);
    pio_sb_free(&p->buf);
    pio_sb_free(&p->raw);
    pio_sb_free(&p->field);
    pio_sb_free(&p->key);
    pio_sb_free(&p->args);
    pio_sb_free(&p->content);
    pio_sb_free(&p->reasoning);
    cJSON_Delete(p->tools);
    free(p->id_prefix);
    free(p);
}

pio_status pio_output_parser_feed(pio_output_parser *p, const char *text, size_t len,
                                  pio_output_event_fn cb, void *user)
{
    if (p->err)
        return p->err;
    if (p->finished)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "output parser: fed after finish");
    if (!pio_sb_add(&p->buf, text, len))
        return pio_error(PIO_STATUS_ERR_NOMEM, "output parser: out of memory");
    p->cb = cb;
    p->user = user;
    run(p, false);
    refresh_result(p);
    p->cb = NULL;
    return p->err;
}

pio_status pio_output_parser_finish(pio_output_parser *p, pio_output_event_fn cb, void *user)
{
    if (p->err || p->finished)
        return p->err;
    p->cb = cb;
    p->user = user;
    run(p, true);
    close_open(p);
    p->finished = true;
    refresh_result(p);
    p->cb = NULL;
    return p->err;
}

const pio_output_result *pio_output_parser_result(const pio_output_parser *p)
{
    return &p->res;
}

pio_status pio_output_parse_to_json(const pio_output_parse_params *params, const char *text,
                                    size_t len, char **json)
{
    pio_output_parser *p = NULL;
    const pio_output_result *r;
    cJSON *o = NULL, *calls, *warns;
    pio_status st;
    int i;

    *json = NULL;
    if ((st = pio_output_parser_new(params, &p)))
        return st;
    if ((st = pio_output_parser_feed(p, text, len, NULL, NULL)) || (st = pio_output_parser_finish(p, NULL, NULL)))
        goto out;
    r = pio_output_parser_result(p);
    st = pio_error(PIO_STATUS_ERR_NOMEM, "output parser: out of memory");
    if (!(o = cJSON_CreateObject()) || !cJSON_AddStringToObject(o, "content", r->content) ||
        !cJSON_AddStringToObject(o, "reasoning_content", r->reasoning) ||
        !(calls = cJSON_AddArrayToObject(o, "tool_calls")) || !(warns = cJSON_AddArrayToObject(o, "warnings")))
        goto out;
    for (i = 0; i < r->n_calls; i++) {
        cJSON *c = cJSON_CreateObject(), *f;
        if (!c)
            goto out;
        cJSON_AddItemToArray(calls, c);
        if (!cJSON_AddStringToObject(c, "id", r->calls[i].id) || !cJSON_AddStringToObject(c, "type", "function") ||
            !(f = cJSON_AddObjectToObject(c, "function")) || !cJSON_AddStringToObject(f, "name", r->calls[i].name) ||
            !cJSON_AddStringToObject(f, "arguments", r->calls[i].arguments))
            goto out;
    }
    for (i = 0; i < r->n_warnings; i++) {
        cJSON *w = cJSON_CreateString(r->warnings[i]);
        if (!w)
            goto out;
        cJSON_AddItemToArray(warns, w);
    }
    *json = cJSON_PrintUnformatted(o);
    st = *json ? PIO_STATUS_OK : st;
    if (!st)
        pio_clear_error();
out:
    cJSON_Delete(o);
    pio_output_parser_free(p);
    return st;
}
