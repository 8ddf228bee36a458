/*
 * test_output_parse.c - the incremental model-output parser
 * (src/chat/output_parse.h): reasoning, Qwen3 JSON, Qwen3-Coder XML and
 * GLM-4.7 tool calls, streaming, malformed and partial output.
 *
 * Every input is parsed whole and in many chunkings (1, 2, 3 and 7 bytes at
 * a time, every split into two pieces, random splits): the events, merged
 * per kind, and the result must be identical. Each parse also checks the
 * stream invariants: deltas of a kind add up to the result, a call's
 * argument deltas add up to its arguments, start comes before its deltas
 * and end.
 *
 * tests/fixtures/output_parse/renderings.json holds assistant turns
 * rendered by the official Qwen3-Coder, GLM-4.7, Qwen3 and Qwen3-2507
 * templates with Python jinja2 (tools/gen_output_parse_fixtures.py): each
 * must parse back to the message it was rendered from.
 */
#include "chat/output_parse.h"
#include "check.h"

#include <cjson/cJSON.h>
#include <stdint.h>

/* ---- a recorder of events: merged transcript + invariant checks ---------- */

typedef struct rec {
    char *log;                   /* merged transcript */
    size_t len;
    int last_type;               /* type of the last merged line, -1 none */
    int last_index;
    char *content, *reasoning;   /* concatenated deltas */
    size_t content_len, reasoning_len;
    char *args[64];              /* per call: concatenated argument deltas */
    int started[64], ended[64];
    int bad;                     /* invariant violations seen */
} rec;

static void app(char **s, size_t *len, const char *t, size_t n)
{
    *s = realloc(*s, *len + n + 1);
    memcpy(*s + *len, t, n);
    *len += n;
    (*s)[*len] = '\0';
}

static void logf_(rec *r, const char *t, size_t n)
{
    app(&r->log, &r->len, t, n);
}

static void on_event(void *user, const pio_output_event *ev)
{
    rec *r = user;
    static const char *names[] = { "C", "R", "S", "A", "E", "W" };
    char head[64];
    bool merge = (ev->type == PIO_OUTPUT_EVENT_CONTENT || ev->type == PIO_OUTPUT_EVENT_REASONING ||
                  ev->type == PIO_OUTPUT_EVENT_TOOL_CALL_ARGS) &&
                 r->last_type == (int)ev->type && r->last_index == ev->index;
    if (ev->len == 0 && ev->type != PIO_OUTPUT_EVENT_TOOL_CALL_START && ev->type != PIO_OUTPUT_EVENT_TOOL_CALL_END)
        r->bad++;               /* empty deltas are not sent */
    if (!merge) {
        snprintf(head, sizeof head, "\n%s%d%s%s:", names[ev->type], ev->index,
                 ev->name ? " " : "", ev->name ? ev->name : "");
        logf_(r, head, strlen(head));
        if (ev->id && ev->type == PIO_OUTPUT_EVENT_TOOL_CALL_START)
            logf_(r, ev->id, strlen(ev->id));
    }
    if (ev->type != PIO_OUTPUT_EVENT_TOOL_CALL_START)
        logf_(r, ev->text, ev->len);
    r->last_type = (int)ev->type;
    r->last_index = ev->index;
    switch (ev->type) {
    case PIO_OUTPUT_EVENT_CONTENT: app(&r->content, &r->content_len, ev->text, ev->len); break;
    case PIO_OUTPUT_EVENT_REASONING: app(&r->reasoning, &r->reasoning_len, ev->text, ev->len); break;
    case PIO_OUTPUT_EVENT_TOOL_CALL_START:
        if (ev->index < 0 || ev->index >= 64 || r->started[ev->index] || !ev->name || !ev->id) {
            r->bad++;
            break;
        }
        r->started[ev->index] = 1;
        break;
    case PIO_OUTPUT_EVENT_TOOL_CALL_ARGS:
        if (ev->index < 0 || ev->index >= 64 || !r->started[ev->index] || r->ended[ev->index]) {
            r->bad++;
            break;
        }
        {
            size_t l = r->args[ev->index] ? strlen(r->args[ev->index]) : 0;
            app(&r->args[ev->index], &l, ev->text, ev->len);
        }
        break;
    case PIO_OUTPUT_EVENT_TOOL_CALL_END:
        if (ev->index < 0 || ev->index >= 64 || !r->started[ev->index] || r->ended[ev->index] ||
            !r->args[ev->index] || strlen(r->args[ev->index]) != ev->len ||
            memcmp(r->args[ev->index], ev->text, ev->len)) {
            r->bad++;
            break;
        }
        r->ended[ev->index] = 1;
        break;
    case PIO_OUTPUT_EVENT_WARNING: break;
    }
}

static void rec_free(rec *r)
{
    free(r->log);
    free(r->content);
    free(r->reasoning);
    for (int i = 0; i < 64; i++)
        free(r->args[i]);
}

/* Append the result to the transcript, checking it against the deltas. */
static void rec_result(rec *r, const pio_output_result *res)
{
    char head[64];
    CHECK(res->content_len == strlen(res->content) && res->content_len == r->content_len &&
          (!r->content_len || !memcmp(res->content, r->content, r->content_len)),
          "content deltas add up to the result");
    CHECK(res->reasoning_len == r->reasoning_len &&
          (!r->reasoning_len || !memcmp(res->reasoning, r->reasoning, r->reasoning_len)),
          "reasoning deltas add up to the result");
    logf_(r, "\n==content:", 11);
    logf_(r, res->content, res->content_len);
    logf_(r, "\n==reasoning:", 13);
    logf_(r, res->reasoning, res->reasoning_len);
    for (int i = 0; i < res->n_calls; i++) {
        const pio_tool_call *c = &res->calls[i];
        CHECK(i < 64 && r->ended[i] && r->args[i] && !strcmp(r->args[i], c->arguments),
              "call %d: argument deltas add up to the arguments", i);
        cJSON *a = cJSON_Parse(c->arguments);
        CHECK(cJSON_IsObject(a), "call %d: arguments are a JSON object: %s", i, c->arguments);
        cJSON_Delete(a);
        snprintf(head, sizeof head, "\n==call %d ", i);
        logf_(r, head, strlen(head));
        logf_(r, c->id, strlen(c->id));
        logf_(r, " ", 1);
        logf_(r, c->name, strlen(c->name));
        logf_(r, " ", 1);
        logf_(r, c->arguments, strlen(c->arguments));
    }
    for (int i = 0; i < 64; i++)
        CHECK(r->started[i] == r->ended[i] && (i >= res->n_calls || r->ended[i]) &&
              (i < res->n_calls || !r->started[i]), "call %d started and ended once", i);
    for (int i = 0; i < res->n_warnings; i++) {
        logf_(r, "\n==warning ", 11);
        logf_(r, res->warnings[i], strlen(res->warnings[i]));
    }
    CHECK(r->bad == 0, "%d stream invariant violations", r->bad);
}

/* ---- parsing with a chunking --------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/*
 * Parse text[0..n) fed in chunks: mode 0 whole; mode k>0 k bytes at a time;
 * mode -1 random splits; mode -2 - s: split once at s. Returns the
 * transcript (malloc'ed): merged events, then the result.
 */
static char *parse_with(const pio_output_parse_params *pp, const char *text, size_t n, long mode)
{
    pio_output_parser *p = NULL;
    rec r;
    memset(&r, 0, sizeof r);
    r.last_type = -1;
    CHECK_OK(pio_output_parser_new(pp, &p));
    if (!p)
        return strdup("");
    size_t at = 0;
    while (at < n) {
        size_t k;
        if (mode == 0)
            k = n;
        else if (mode > 0)
            k = (size_t)mode;
        else if (mode == -1)
            k = 1 + next_rand() % 9;
        else
            k = at == 0 ? (size_t)(-2 - mode) : n;
        if (k > n - at)
            k = n - at;
        CHECK_OK(pio_output_parser_feed(p, text + at, k, on_event, &r));
        at += k;
    }
    CHECK_OK(pio_output_parser_finish(p, on_event, &r));
    rec_result(&r, pio_output_parser_result(p));
    pio_output_parser_free(p);
    char *log = r.log ? r.log : strdup("");
    r.log = NULL;
    rec_free(&r);
    return log;
}

/* Parse in every chunking; all transcripts must equal the whole parse.
 * Returns the whole-parse transcript (malloc'ed). */
static char *parse_all_ways(const pio_output_parse_params *pp, const char *text, const char *what)
{
    size_t n = strlen(text);
    char *ref = parse_with(pp, text, n, 0);
    static const long modes[] = { 1, 2, 3, 7, -1, -1, -1, -1 };
    int diffs = 0;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char *t = parse_with(pp, text, n, modes[i]);
        if (strcmp(t, ref) && diffs++ == 0)
            fprintf(stderr, "%s: chunking %ld differs:\n--- whole:%s\n--- chunked:%s\n", what, modes[i], ref, t);
        free(t);
    }
    for (size_t s = 1; s < n; s++) {
        char *t = parse_with(pp, text, n, -2 - (long)s);
        if (strcmp(t, ref) && diffs++ == 0)
            fprintf(stderr, "%s: split at %zu differs:\n--- whole:%s\n--- split:%s\n", what, s, ref, t);
        free(t);
    }
    CHECK(diffs == 0, "%s: %d chunkings differ from the whole parse", what, diffs);
    return ref;
}

/* Whole-parse result, checked against every chunking. */
typedef struct parsed {
    pio_output_parser *p;
    const pio_output_result *r;
} parsed;

static parsed parse(pio_tool_format f, bool in_reasoning, const char *tools, const char *text)
{
    pio_output_parse_params pp;
    parsed out = { 0 };
    pio_output_parse_params_default(&pp);
    pp.format = f;
    pp.start_in_reasoning = in_reasoning;
    pp.tools_json = tools;
    free(parse_all_ways(&pp, text, text));
    CHECK_OK(pio_output_parser_new(&pp, &out.p));
    CHECK_OK(pio_output_parser_feed(out.p, text, strlen(text), NULL, NULL));
    CHECK_OK(pio_output_parser_finish(out.p, NULL, NULL));
    out.r = pio_output_parser_result(out.p);
    return out;
}

/* Arguments of call i equal the JSON `want` (as values). */
static bool args_are(const parsed *x, int i, const char *want)
{
    cJSON *a, *b;
    bool eq;
    if (i >= x->r->n_calls)
        return false;
    a = cJSON_Parse(x->r->calls[i].arguments);
    b = cJSON_Parse(want);
    eq = a && b && cJSON_Compare(a, b, true);
    if (!eq)
        fprintf(stderr, "  call %d arguments: got %s want %s\n", i, x->r->calls[i].arguments, want);
    cJSON_Delete(a);
    cJSON_Delete(b);
    return eq;
}

static bool warned(const parsed *x, const char *needle)
{
    for (int i = 0; i < x->r->n_warnings; i++)
        if (strstr(x->r->warnings[i], needle))
            return true;
    fprintf(stderr, "  no warning with \"%s\" among %d\n", needle, x->r->n_warnings);
    return false;
}

#define EXPECT_TEXT(x, field, want) \
    CHECK(!strcmp((x).r->field, (want)), #field ": got \"%s\" want \"%s\"", (x).r->field, (want))

/* ---- cases --------------------------------------------------------------- */

static const char *tools_json =
    "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":{"
    "\"s\":{\"type\":\"string\"},\"i\":{\"type\":\"integer\"},\"n\":{\"type\":\"number\"},"
    "\"b\":{\"type\":\"boolean\"},\"o\":{\"type\":\"object\"},\"a\":{\"type\":\"array\"},"
    "\"z\":{\"type\":[\"null\",\"integer\"]},\"u\":{\"description\":\"untyped\"}}}}}]";

static void test_reasoning(void)
{
    parsed x = parse(PIO_TOOL_FORMAT_NONE, false, NULL, "<think>\nstep 1\nstep 2\n</think>\n\nThe answer is 4.");
    EXPECT_TEXT(x, reasoning, "step 1\nstep 2");
    EXPECT_TEXT(x, content, "The answer is 4.");
    CHECK(x.r->n_calls == 0 && x.r->n_warnings == 0, "plain reasoning");
    pio_output_parser_free(x.p);

    /* the prompt ended with <think>: output starts inside the reasoning */
    x = parse(PIO_TOOL_FORMAT_GLM47, true, NULL, "\nhmm, 2+2\n</think>4");
    EXPECT_TEXT(x, reasoning, "hmm, 2+2");
    EXPECT_TEXT(x, content, "4");
    pio_output_parser_free(x.p);

    /* cut off while thinking: all reasoning, no content */
    x = parse(PIO_TOOL_FORMAT_QWEN3_JSON, false, NULL, "<think>\nstill thinking <tool_call> about");
    EXPECT_TEXT(x, reasoning, "still thinking <tool_call> about");
    EXPECT_TEXT(x, content, "");
    CHECK(x.r->n_calls == 0, "no call inside reasoning");
    pio_output_parser_free(x.p);

    /* reasoning off: tags are content */
    pio_output_parse_params pp;
    pio_output_parse_params_default(&pp);
    pp.parse_reasoning = false;
    char *t = parse_all_ways(&pp, "<think>x</think>y", "reasoning off");
    CHECK(strstr(t, "==content:<think>x</think>y") != NULL, "reasoning off keeps tags: %s", t);
    free(t);

    /* held-back tails that never became tags come out at the end */
    x = parse(PIO_TOOL_FORMAT_QWEN3_XML, false, NULL, "a < b, x <tool_ca");
    EXPECT_TEXT(x, content, "a < b, x <tool_ca");
    pio_output_parser_free(x.p);
    x = parse(PIO_TOOL_FORMAT_NONE, false, NULL, "line\n\n<thin");
    EXPECT_TEXT(x, content, "line\n\n<thin");
    pio_output_parser_free(x.p);
    x = parse(PIO_TOOL_FORMAT_QWEN3_JSON, false, NULL, "end with newlines\n\n");
    EXPECT_TEXT(x, content, "end with newlines\n\n");
    pio_output_parser_free(x.p);
    /* UTF-8 passes through untouched, split anywhere */
    x = parse(PIO_TOOL_FORMAT_QWEN3_JSON, false, NULL, "<think>\xE6\x80\x9D\xE8\x80\x83</think>\xF0\x9F\x98\x80 caf\xC3\xA9");
    EXPECT_TEXT(x, reasoning, "\xE6\x80\x9D\xE8\x80\x83");
    EXPECT_TEXT(x, content, "\xF0\x9F\x98\x80 caf\xC3\xA9");
    pio_output_parser_free(x.p);
}

static void test_qwen3_json(void)
{
    parsed x = parse(PIO_TOOL_FORMAT_QWEN3_JSON, false, tools_json,
                     "<think>\nneed f\n</think>\n\nCalling.\n<tool_call>\n{\"name\": \"f\", \"arguments\": "
                     "{\"s\": \"a<b\", \"i\": 1}}\n</tool_call>\n<tool_call>\n{\"name\": \"f\", "
                     "\"arguments\": \"{\\\"i\\\": 2}\"}\n</tool_call>");
    EXPECT_TEXT(x, reasoning, "need f");
    EXPECT_TEXT(x, content, "Calling.");
    CHECK(x.r->n_calls == 2 && args_are(&x, 0, "{\"s\":\"a<b\",\"i\":1}"), "calls: %d", x.r->n_calls);
    CHECK(args_are(&x, 1, "{\"i\":2}"), "arguments given as a JSON string");
    pio_output_parser_free(x.p);

    x = parse(PIO_TOOL_FORMAT_QWEN3_JSON, false, tools_json,
              "A<tool_call>\n{\"name\": \"f\", \"arguments\": {\"s\": \"x\", \"o\": {\"k\": [1, 2.5, null]}}}\n"
              "</tool_call>\nB\n<tool_call>{\"name\":\"g\",\"parameters\":{}}</tool_call>");
    EXPECT_TEXT(x, content, "AB");
    CHECK(x.r->n_calls == 2 && !strcmp(x.r->calls[0].name, "f") && !strcmp(x.r->calls[1].name, "g") &&
          !strcmp(x.r->calls[0].id, "call_0") && !strcmp(x.r->calls[1].id, "call_1"), "two calls");
    CHECK(args_are(&x, 0, "{\"s\":\"x\",\"o\":{\"k\":[1,2.5,null]}}"), "nested arguments");
    CHECK(args_are(&x, 1, "{}"), "\"parameters\" alias");
    CHECK(warned(&x, "\"g\" is not in the tools list"), "unknown function warned");
    pio_output_parser_free(x.p);

    /* malformed: the block goes to content with a warning */
    x = parse(PIO_TOOL_FORMAT_QWEN3_JSON, false, NULL, "x<tool_call>\n{\"name\": \"f\", \"arguments\": {oops}}\n</tool_call>y");
    CHECK(x.r->n_calls == 0, "bad JSON gives no call");
    EXPECT_TEXT(x, content, "x<tool_call>\n{\"name\": \"f\", \"arguments\": {oops}}\n</tool_call>y");
    CHECK(warned(&x, "is not valid JSON"), "bad JSON warned");
    pio_output_parser_free(x.p);
    x = parse(PIO_TOOL_FORMAT_QWEN3_JSON, false, NULL, "<tool_call>[1, 2]</tool_call><tool_call>{\"name\": 3}</tool_call>"
              "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>");
    CHECK(x.r->n_calls == 0 && x.r->n_warnings == 3, "three bad blocks: %d calls %d warnings", x.r->n_calls,
          x.r->n_warnings);
    pio_output_parser_free(x.p);

    /* partial: unterminated but valid JSON is kept; truncated JSON is content */
    x = parse(PIO_TOOL_FORMAT_QWEN3_JSON, false, NULL, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"i\": 1}}\n");
    CHECK(x.r->n_calls == 1 && args_are(&x, 0, "{\"i\":1}") && warned(&x, "no </tool_call>"), "unterminated kept");
    pio_output_parser_free(x.p);
    x = parse(PIO_TOOL_FORMAT_QWEN3_JSON, false, NULL, "ok <tool_call>\n{\"name\": \"f\", \"argu");
    CHECK(x.r->n_calls == 0 && warned(&x, "not closed"), "truncated JSON");
    EXPECT_TEXT(x, content, "ok <tool_call>\n{\"name\": \"f\", \"argu");
    pio_output_parser_free(x.p);
    /* a new <tool_call> before </tool_call> closes the first block */
    x = parse(PIO_TOOL_FORMAT_QWEN3_JSON, false, NULL, "<tool_call>{\"name\": \"f\"}\n<tool_call>{\"name\": \"h\"}</tool_call>");
    CHECK(x.r->n_calls == 2 && args_are(&x, 0, "{}") && args_are(&x, 1, "{}"), "missing </tool_call> between");
    pio_output_parser_free(x.p);
}

static void test_qwen3_xml(void)
{
    parsed x = parse(PIO_TOOL_FORMAT_QWEN3_XML, false, tools_json,
                     "I'll call f.\n\n<tool_call>\n<function=f>\n<parameter=s>\n  two\nlines  \n</parameter>\n"
                     "<parameter=i>\n-12\n</parameter>\n<parameter=n>\n1e3\n</parameter>\n<parameter=b>\nFalse\n"
                     "</parameter>\n<parameter=o>\n{\"k\": [1, {\"x\": null}]}\n</parameter>\n<parameter=a>\n[]\n"
                     "</parameter>\n<parameter=z>\nnull\n</parameter>\n<parameter=u>\n7\n</parameter>\n"
                     "<parameter=extra>\nplain text\n</parameter>\n</function>\n</tool_call>");
    EXPECT_TEXT(x, content, "I'll call f.");
    CHECK(x.r->n_calls == 1 && !strcmp(x.r->calls[0].name, "f"), "one call");
    CHECK(args_are(&x, 0, "{\"s\":\"  two\\nlines  \",\"i\":-12,\"n\":1e3,\"b\":false,\"o\":{\"k\":[1,{\"x\":null}]},"
                          "\"a\":[],\"z\":null,\"u\":7,\"extra\":\"plain text\"}"), "typed values");
    CHECK(x.r->n_warnings == 0, "no warnings: %d", x.r->n_warnings);
    /* the argument text is streamed one parameter at a time, compactly */
    CHECK(!strncmp(x.r->calls[0].arguments, "{\"s\":\"  two\\nlines  \",\"i\":-12,", 30), "%s", x.r->calls[0].arguments);
    pio_output_parser_free(x.p);

    /* values that do not fit their types stay strings, with warnings */
    x = parse(PIO_TOOL_FORMAT_QWEN3_XML, false, tools_json,
              "<tool_call>\n<function=f>\n<parameter=i>\nabc\n</parameter>\n<parameter=b>\nyes\n</parameter>\n"
              "<parameter=o>\n{bad\n</parameter>\n<parameter=n>\n+7\n</parameter>\n</function>\n</tool_call>");
    CHECK(args_are(&x, 0, "{\"i\":\"abc\",\"b\":\"yes\",\"o\":\"{bad\",\"n\":7}"), "fallback strings");
    CHECK(x.r->n_warnings == 3 && warned(&x, "not an integer") && warned(&x, "not true or false") &&
          warned(&x, "not valid JSON"), "type warnings");
    pio_output_parser_free(x.p);

    /* missing </parameter>: the value ends at the next tag that starts a line */
    x = parse(PIO_TOOL_FORMAT_QWEN3_XML, false, NULL,
              "<tool_call>\n<function=g>\n<parameter=a>\n1 <parameter=q> x\n<parameter=b>\nx\n</function>\n</tool_call>");
    CHECK(args_are(&x, 0, "{\"a\":\"1 <parameter=q> x\",\"b\":\"x\"}"), "missing </parameter>");
    CHECK(x.r->n_warnings == 2 && warned(&x, "has no </parameter>"), "warned twice: %d", x.r->n_warnings);
    pio_output_parser_free(x.p);

    /* several calls, one block with two functions, missing </function> */
    x = parse(PIO_TOOL_FORMAT_QWEN3_XML, false, NULL,
              "<tool_call>\n<function=a>\n</function>\n<function=b>\n<parameter=k>\nv\n</parameter>\n</function>\n"
              "</tool_call>\n<tool_call>\n<function=c>\n<parameter=k>\n[1,\n2]\n</parameter>\n</tool_call>");
    CHECK(x.r->n_calls == 3 && args_are(&x, 0, "{}") && args_are(&x, 1, "{\"k\":\"v\"}") &&
          args_are(&x, 2, "{\"k\":[1,2]}"), "three calls");
    CHECK(warned(&x, "no </function>"), "missing </function>");
    EXPECT_TEXT(x, content, "");
    pio_output_parser_free(x.p);

    /* no function / malformed function name: raw block to content */
    x = parse(PIO_TOOL_FORMAT_QWEN3_XML, false, NULL, "a<tool_call>\nnothing here\n</tool_call>b");
    EXPECT_TEXT(x, content, "a<tool_call>\nnothing here\n</tool_call>b");
    CHECK(x.r->n_calls == 0 && warned(&x, "no <function"), "no function");
    pio_output_parser_free(x.p);
    x = parse(PIO_TOOL_FORMAT_QWEN3_XML, false, NULL, "<tool_call>\n<function=bad\nname>\n</function>\n</tool_call>z");
    EXPECT_TEXT(x, content, "<tool_call>\n<function=bad\nname>\n</function>\n</tool_call>z");
    CHECK(x.r->n_calls == 0 && warned(&x, "malformed function name"), "bad name");
    pio_output_parser_free(x.p);
    x = parse(PIO_TOOL_FORMAT_QWEN3_XML, false, NULL, "<tool_call>\n<function=f>\n<parameter=a b\n>\nv\n</parameter>\n</function>\n</tool_call>");
    CHECK(x.r->n_calls == 1 && args_are(&x, 0, "{}") && warned(&x, "malformed parameter name"), "bad param name");
    pio_output_parser_free(x.p);
    x = parse(PIO_TOOL_FORMAT_QWEN3_XML, false, tools_json, "<tool_call>\n<function=nope>\n</function>\n</tool_call>");
    CHECK(x.r->n_calls == 1 && warned(&x, "not in the tools list"), "unknown function kept");
    pio_output_parser_free(x.p);

    /* JSON written in the XML format is accepted, with a warning */
    x = parse(PIO_TOOL_FORMAT_QWEN3_XML, false, tools_json,
              "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"i\": 3}}\n</tool_call><tool_call>{\"name\": \"f\"}");
    CHECK(x.r->n_calls == 2 && args_are(&x, 0, "{\"i\":3}") && args_are(&x, 1, "{}") && warned(&x, "written as JSON"),
          "JSON in XML blocks");
    pio_output_parser_free(x.p);
    x = parse(PIO_TOOL_FORMAT_QWEN3_XML, false, NULL, "<tool_call>\n{\"name\": oops}\n</tool_call>");
    CHECK(x.r->n_calls == 0 && warned(&x, "is not valid JSON"), "bad JSON in an XML block");
    EXPECT_TEXT(x, content, "<tool_call>\n{\"name\": oops}\n</tool_call>");
    pio_output_parser_free(x.p);

    /* the stream ends at each stage of a call */
    x = parse(PIO_TOOL_FORMAT_QWEN3_XML, false, NULL, "<tool_call>\n<function=f>\n<parameter=a>\nhel");
    CHECK(x.r->n_calls == 1 && args_are(&x, 0, "{\"a\":\"hel\"}") && warned(&x, "ended inside the call"), "cut in value");
    pio_output_parser_free(x.p);
    x = parse(PIO_TOOL_FORMAT_QWEN3_XML, false, NULL, "<tool_call>\n<function=f>\n<parameter=a");
    CHECK(x.r->n_calls == 1 && args_are(&x, 0, "{}"), "cut in parameter name");
    pio_output_parser_free(x.p);
    x = parse(PIO_TOOL_FORMAT_QWEN3_XML, false, NULL, "hi<tool_call>\n<function=f");
    CHECK(x.r->n_calls == 0 && warned(&x, "before a function name"), "cut in function name");
    EXPECT_TEXT(x, content, "hi<tool_call>\n<function=f");
    pio_output_parser_free(x.p);
    x = parse(PIO_TOOL_FORMAT_QWEN3_XML, false, NULL, "<tool_call>\n<function=f>\n</function>\n");
    CHECK(x.r->n_calls == 1 && warned(&x, "before </tool_call>"), "cut before </tool_call>");
    pio_output_parser_free(x.p);
}

static void test_glm(void)
{
    parsed x = parse(PIO_TOOL_FORMAT_GLM47, true, tools_json,
                     "Plan: call f.</think>Sure.<tool_call>f<arg_key>s</arg_key><arg_value> 12 </arg_value>"
                     "<arg_key>i</arg_key><arg_value>12</arg_value><arg_key>o</arg_key><arg_value>{\"a\": true}"
                     "</arg_value></tool_call><tool_call>g\n<arg_key>k</arg_key>\n<arg_value>[1]</arg_value>\n</tool_call>");
    EXPECT_TEXT(x, reasoning, "Plan: call f.");
    EXPECT_TEXT(x, content, "Sure.");
    CHECK(x.r->n_calls == 2 && !strcmp(x.r->calls[1].name, "g"), "two calls");
    CHECK(args_are(&x, 0, "{\"s\":\" 12 \",\"i\":12,\"o\":{\"a\":true}}"), "typed GLM values");
    CHECK(args_are(&x, 1, "{\"k\":[1]}"), "GLM-4.5 layout with newlines");
    pio_output_parser_free(x.p);

    x = parse(PIO_TOOL_FORMAT_GLM47, false, NULL, "<tool_call>now</tool_call>");
    CHECK(x.r->n_calls == 1 && !strcmp(x.r->calls[0].name, "now") && args_are(&x, 0, "{}") && x.r->n_warnings == 0,
          "no-argument call");
    pio_output_parser_free(x.p);

    x = parse(PIO_TOOL_FORMAT_GLM47, false, NULL,
              "<tool_call>f<arg_key>a</arg_key><arg_value>1<arg_key>b<arg_value>2</arg_value><arg_key>c</arg_key>"
              "<arg_key>d</arg_key><arg_value>x</arg_value></tool_call>");
    CHECK(args_are(&x, 0, "{\"a\":1,\"b\":2,\"d\":\"x\"}"), "missing </arg_value>, </arg_key> and a value");
    CHECK(warned(&x, "no </arg_value>") && warned(&x, "no </arg_key>") && warned(&x, "has no value"), "GLM warnings");
    pio_output_parser_free(x.p);

    x = parse(PIO_TOOL_FORMAT_GLM47, false, NULL, "a<tool_call><arg_key>k</arg_key><arg_value>v</arg_value></tool_call>b");
    EXPECT_TEXT(x, content, "a<tool_call><arg_key>k</arg_key><arg_value>v</arg_value></tool_call>b");
    CHECK(x.r->n_calls == 0 && warned(&x, "no function name"), "GLM without a name");
    pio_output_parser_free(x.p);
    x = parse(PIO_TOOL_FORMAT_GLM47, false, NULL, "<tool_call>f<arg_key>a</arg_key><arg_value>tru");
    CHECK(x.r->n_calls == 1 && args_are(&x, 0, "{\"a\":\"tru\"}") && warned(&x, "ended inside the call"), "GLM cut");
    pio_output_parser_free(x.p);
    x = parse(PIO_TOOL_FORMAT_GLM47, false, NULL, "<tool_call>f");
    CHECK(x.r->n_calls == 1 && args_are(&x, 0, "{}"), "GLM cut after the name");
    pio_output_parser_free(x.p);
    x = parse(PIO_TOOL_FORMAT_GLM47, false, NULL, "<tool_call>");
    CHECK(x.r->n_calls == 0, "GLM cut after <tool_call>");
    EXPECT_TEXT(x, content, "<tool_call>");
    pio_output_parser_free(x.p);
}

/* String values stream while they are written; other types come whole. */
static void test_streaming(void)
{
    static const char *const tools =
        "[{\"type\":\"function\",\"function\":{\"name\":\"w\",\"parameters\":{\"type\":\"object\","
        "\"properties\":{\"path\":{\"type\":\"string\"},\"n\":{\"type\":\"integer\"}}}}}]";
    static const struct { pio_tool_format f; const char *part1, *want1, *part2, *want2; } cases[] = {
        { PIO_TOOL_FORMAT_QWEN3_XML, "<tool_call>\n<function=w>\n<parameter=n>\n4", "",
          "2\n</parameter>\n<parameter=path>\nsrc/\"a\"\n</para", "{\"n\":42,\"path\":\"src/\\\"a\\\"" },
        { PIO_TOOL_FORMAT_GLM47, "<tool_call>w<arg_key>path</arg_key><arg_value>line1\nli", "{\"path\":\"line1\\nli",
          "ne2</arg_value><arg_key>n</arg_key><arg_value>7", "{\"path\":\"line1\\nline2\"" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pio_output_parse_params pp;
        pio_output_parser *p = NULL;
        rec r;
        memset(&r, 0, sizeof r);
        r.last_type = -1;
        pio_output_parse_params_default(&pp);
        pp.format = cases[i].f;
        pp.tools_json = tools;
        CHECK_OK(pio_output_parser_new(&pp, &p));
        CHECK_OK(pio_output_parser_feed(p, cases[i].part1, strlen(cases[i].part1), on_event, &r));
        CHECK(!strcmp(r.args[0] ? r.args[0] : "", cases[i].want1), "case %zu: streamed \"%s\", want \"%s\"", i,
              r.args[0] ? r.args[0] : "", cases[i].want1);
        CHECK_OK(pio_output_parser_feed(p, cases[i].part2, strlen(cases[i].part2), on_event, &r));
        CHECK(r.args[0] && !strcmp(r.args[0], cases[i].want2), "case %zu: streamed \"%s\", want \"%s\"", i,
              r.args[0] ? r.args[0] : "", cases[i].want2);
        CHECK(pio_output_parser_result(p)->n_calls == 0, "an open call is not in the result yet");
        pio_output_parser_free(p);
        rec_free(&r);
    }
}

static void test_names(void)
{
    CHECK(pio_tool_format_from_name("Qwen3MoeForCausalLM") == PIO_TOOL_FORMAT_QWEN3_JSON, "arch");
    CHECK(pio_tool_format_from_name("qwen3_coder") == PIO_TOOL_FORMAT_QWEN3_XML, "coder");
    CHECK(pio_tool_format_from_name("glm4_moe_lite") == PIO_TOOL_FORMAT_GLM47, "glm");
    CHECK(pio_tool_format_from_name("none") == PIO_TOOL_FORMAT_NONE, "none");
    CHECK(pio_tool_format_from_name("llama") == -1, "unknown");
    CHECK(pio_tool_format_from_template("x <function=example_function_name> <tool_call>") == PIO_TOOL_FORMAT_QWEN3_XML, "t");
    CHECK(pio_tool_format_from_template("<tool_call>{function-name}<arg_key>") == PIO_TOOL_FORMAT_GLM47, "t");
    CHECK(pio_tool_format_from_template("<tool_call>\n{\"name\"") == PIO_TOOL_FORMAT_QWEN3_JSON, "t");
    CHECK(pio_tool_format_from_template("{{ messages }}") == -1, "t");
    CHECK(pio_output_prompt_opens_reasoning("<|assistant|><think>"), "GLM thinking prompt");
    CHECK(pio_output_prompt_opens_reasoning("<|im_start|>assistant\n<think>\n"), "thinking prompt");
    CHECK(!pio_output_prompt_opens_reasoning("<|assistant|></think>"), "GLM no-think prompt");
    CHECK(!pio_output_prompt_opens_reasoning("assistant\n<think>\n\n</think>\n\n"), "hybrid no-think prompt");
    CHECK(!pio_output_prompt_opens_reasoning(""), "empty");

    pio_output_parser *p = NULL;
    pio_output_parse_params pp;
    pio_output_parse_params_default(&pp);
    pp.tools_json = "{\"not\": \"an array\"}";
    CHECK(pio_output_parser_new(&pp, &p) == PIO_STATUS_ERR_FORMAT && !p, "tools must be an array");
    pp.tools_json = NULL;
    pp.format = (pio_tool_format)42;
    CHECK(pio_output_parser_new(&pp, &p) == PIO_STATUS_ERR_INVALID_ARG && !p, "unknown format");

    char *json = NULL;
    pio_output_parse_params_default(&pp);
    pp.format = PIO_TOOL_FORMAT_GLM47;
    pp.id_prefix = "chatcmpl-x-";
    const char *glm = "<think>r</think>c<tool_call>f<arg_key>a</arg_key><arg_value>1</arg_value></tool_call>";
    CHECK_OK(pio_output_parse_to_json(&pp, glm, strlen(glm), &json));
    CHECK(json && !strcmp(json, "{\"content\":\"c\",\"reasoning_content\":\"r\",\"tool_calls\":[{\"id\":\"chatcmpl-x-0\","
                                "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}],"
                                "\"warnings\":[]}"), "to_json: %s", json ? json : "(null)");
    free(json);
}

/* Assistant turns rendered by the official templates parse back exactly. */
static void test_renderings(void)
{
    FILE *f = fopen("tests/fixtures/output_parse/renderings.json", "rb");
    char *buf;
    long n;
    cJSON *doc, *c, *tools;
    char *tools_text;
    int count = 0;
    CHECK(f != NULL, "tests/fixtures/output_parse/renderings.json (run from the repository root)");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    CHECK(fread(buf, 1, (size_t)n, f) == (size_t)n, "read");
    buf[n] = '\0';
    fclose(f);
    doc = cJSON_Parse(buf);
    free(buf);
    tools = cJSON_GetObjectItem(doc, "tools");
    tools_text = cJSON_PrintUnformatted(tools);
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(doc, "cases")) {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        int fmt = pio_tool_format_from_name(cJSON_GetObjectItem(c, "format")->valuestring);
        parsed x = parse((pio_tool_format)fmt, cJSON_IsTrue(cJSON_GetObjectItem(c, "start_in_reasoning")), tools_text,
                         cJSON_GetObjectItem(c, "input")->valuestring);
        const cJSON *calls = cJSON_GetObjectItem(c, "tool_calls"), *call;
        int i = 0;
        CHECK(!strcmp(x.r->content, cJSON_GetObjectItem(c, "content")->valuestring), "%s: content \"%s\"", name,
              x.r->content);
        CHECK(!strcmp(x.r->reasoning, cJSON_GetObjectItem(c, "reasoning")->valuestring), "%s: reasoning \"%s\"",
              name, x.r->reasoning);
        CHECK(x.r->n_calls == cJSON_GetArraySize(calls), "%s: %d calls", name, x.r->n_calls);
        CHECK(x.r->n_warnings == 0, "%s: %d warnings (%s)", name, x.r->n_warnings,
              x.r->n_warnings ? x.r->warnings[0] : "");
        cJSON_ArrayForEach(call, calls) {
            char *want = cJSON_PrintUnformatted(cJSON_GetObjectItem(call, "arguments"));
            CHECK(i < x.r->n_calls && !strcmp(x.r->calls[i].name, cJSON_GetObjectItem(call, "name")->valuestring),
                  "%s: call %d name", name, i);
            CHECK(args_are(&x, i, want), "%s: call %d arguments", name, i);
            free(want);
            i++;
        }
        pio_output_parser_free(x.p);
        count++;
    }
    CHECK(count >= 20, "renderings: %d cases", count);
    free(tools_text);
    cJSON_Delete(doc);
}

/* Random mixes of tag pieces and text: chunking never changes the parse,
 * and the stream invariants hold (checked inside parse_with). */
static void test_random_mixes(void)
{
    static const char *const pieces[] = {
        "<think>", "</think>", "<tool_call>", "</tool_call>", "<function=f>", "</function>", "<parameter=a>",
        "</parameter>", "<arg_key>", "k", "</arg_key>", "<arg_value>", "</arg_value>", "\n", "\n\n", "<", "</",
        "<tool", "x", "{\"name\": \"f\", \"arguments\": {}}", "{", "}", " ", "1", "\xC3\xA9", "<parameter=",
        "<function=", ">",
    };
    char text[512];
    for (int fmt = PIO_TOOL_FORMAT_NONE; fmt <= PIO_TOOL_FORMAT_GLM47; fmt++)
        for (int round = 0; round < 60; round++) {
            size_t n = 0;
            int k = 1 + (int)(next_rand() % 24);
            for (int i = 0; i < k; i++) {
                const char *s = pieces[next_rand() % (sizeof pieces / sizeof pieces[0])];
                size_t l = strlen(s);
                if (n + l >= sizeof text)
                    break;
                memcpy(text + n, s, l);
                n += l;
            }
            text[n] = '\0';
            pio_output_parse_params pp;
            pio_output_parse_params_default(&pp);
            pp.format = (pio_tool_format)fmt;
            pp.start_in_reasoning = round & 1;
            pp.tools_json = round & 2 ? tools_json : NULL;
            free(parse_all_ways(&pp, text, "random mix"));
        }
}

int main(void)
{
    test_reasoning();
    test_qwen3_json();
    test_qwen3_xml();
    test_glm();
    test_streaming();
    test_names();
    test_renderings();
    test_random_mixes();
    return check_report("test_output_parse");
}
