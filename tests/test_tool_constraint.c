/*
 * test_tool_constraint.c - constrained tool calls (src/chat/tool_constraint.h):
 * the byte automaton of each format (accepts the calls the templates write,
 * rejects an invalid text at the first wrong byte, restricts names, JSON
 * edge cases, completion), the shortest-completion count, and token masks:
 * on a small synthetic vocabulary against a brute-force check of every
 * token, random walks under a token budget that must close in time, and,
 * when the shared data is present, the real Qwen3 vocabulary (152k tokens),
 * whose time per mask is printed.
 *
 * Every accepted call is also read back by the output parser
 * (output_parse.h), which must find exactly the calls with their names.
 */
#include "chat/tool_constraint.h"
#include "check.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *TOOLS =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"city\":{\"type\":\"string\"},\"days\":{\"type\":\"integer\"}}}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"parameters\":{\"type\":\"object\"}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"get\"}}]";

static pio_tool_grammar *grammar(pio_tool_format f, const char *name, bool parallel, bool in_think)
{
    pio_tool_grammar_params p = { f, TOOLS, name, parallel, in_think };
    pio_tool_grammar *g = NULL;
    CHECK_OK(pio_tool_grammar_new(&p, &g));
    return g;
}

/* Offset of the first byte of s the grammar rejects, or -1 when all fit. */
static long first_reject(const pio_tool_grammar *g, const char *s, size_t n)
{
    pio_tool_state st;
    size_t i;
    pio_tool_state_init(g, &st);
    for (i = 0; i < n; i++)
        if (!pio_tool_state_feed(g, &st, s + i, 1))
            return (long)i;
    return -1;
}

/* s is accepted whole and is complete (an end token may follow). */
static bool complete(const pio_tool_grammar *g, const char *s)
{
    pio_tool_state st;
    pio_tool_state_init(g, &st);
    return pio_tool_state_feed(g, &st, s, strlen(s)) && pio_tool_state_can_end(g, &st) &&
           pio_tool_state_min_bytes(g, &st) == 0;
}

/* The offset the prefix + bad text is rejected at, relative to the bad part. */
#define REJECT_AT(g, prefix, bad, at) do { \
    char buf_[512]; \
    snprintf(buf_, sizeof buf_, "%s%s", prefix, bad); \
    long r_ = first_reject(g, buf_, strlen(buf_)); \
    CHECK(r_ == (long)strlen(prefix) + (at), "\"%s\" + \"%s\": rejected at %ld, want %ld", prefix, bad, \
          r_ - (long)strlen(prefix), (long)(at)); \
} while (0)

/* The output parser reads s back as n calls, the first named `name`, with object arguments. */
static void parses_as(pio_tool_format f, bool in_think, const char *s, int n, const char *name)
{
    pio_output_parse_params pp;
    char *json = NULL;
    cJSON *o, *calls, *c0;
    pio_output_parse_params_default(&pp);
    pp.format = f;
    pp.tools_json = TOOLS;
    pp.start_in_reasoning = in_think;
    CHECK_OK(pio_output_parse_to_json(&pp, s, strlen(s), &json));
    o = json ? cJSON_Parse(json) : NULL;
    calls = cJSON_GetObjectItem(o, "tool_calls");
    CHECK(cJSON_GetArraySize(calls) == n, "%d calls in %s", cJSON_GetArraySize(calls), json ? json : "");
    c0 = cJSON_GetArrayItem(calls, 0);
    if (c0) {
        const cJSON *fn = cJSON_GetObjectItem(c0, "function");
        const char *args = cJSON_GetStringValue(cJSON_GetObjectItem(fn, "arguments"));
        cJSON *a = args ? cJSON_Parse(args) : NULL;
        CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(fn, "name")), name), "name in %s", json);
        CHECK(cJSON_IsObject(a), "arguments %s", args ? args : "(none)");
        cJSON_Delete(a);
    }
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(o, "warnings")) == 0, "warnings in %s", json ? json : "");
    cJSON_Delete(o);
    free(json);
}

/* ---- Qwen3 JSON ------------------------------------------------------------ */

#define OPEN "<tool_call>\n{\"name\": "
#define ARGS_W OPEN "\"get_weather\", \"arguments\": "

static void test_json_accepts(void)
{
    pio_tool_grammar *g = grammar(PIO_TOOL_FORMAT_QWEN3_JSON, NULL, false, false);
    const char *full = ARGS_W "{\"city\": \"Paris\", \"n\": [1, -2.5e+3, 0.25, 1E9, true, false, null, {}, []],"
                       " \"s\": \"caf\xc3\xa9 \\n\\\"\\\\\\/\\u00e9\\ud83d\\ude00 \xf0\x9f\x98\x80 <tool_cal\","
                       "\"o\":{\"a\":{\"b\":[[\"x\"]]}} }}\n</tool_call>";
    const char *shortest = OPEN "\"get\", \"arguments\": {}}\n</tool_call>";
    pio_tool_state st;
    if (!g)
        return;
    CHECK(complete(g, full), "full call");
    parses_as(PIO_TOOL_FORMAT_QWEN3_JSON, false, full, 1, "get_weather");
    CHECK(complete(g, shortest), "shortest call");
    CHECK(complete(g, "<think>\nlet me see</think>\n\n" OPEN "\"get_time\", \"arguments\": {\"a\": 1}}\n</tool_call>"),
          "think first");
    CHECK(complete(g, "<think></think>" OPEN "\"get\", \"arguments\": {}}\n</tool_call>"), "empty think");
    /* shortest completions */
    pio_tool_state_init(g, &st);
    CHECK(pio_tool_state_min_bytes(g, &st) == (int)strlen(shortest), "min at start %d, want %zu",
          pio_tool_state_min_bytes(g, &st), strlen(shortest));
    CHECK(!pio_tool_state_can_end(g, &st), "cannot end at start");
    CHECK(pio_tool_state_feed(g, &st, ARGS_W, strlen(ARGS_W)), "prefix");
    CHECK(pio_tool_state_min_bytes(g, &st) == 2 + 14, "min before arguments %d", pio_tool_state_min_bytes(g, &st));
    CHECK(pio_tool_state_feed(g, &st, "{\"a\": [{\"b\": \"\\ud83d", 20), "deep");
    /* "\udc00" + "\"" + "}" + "]" + "}" + "}\n</tool_call>" */
    CHECK(pio_tool_state_min_bytes(g, &st) == 6 + 1 + 1 + 1 + 1 + 14, "min in a surrogate pair %d",
          pio_tool_state_min_bytes(g, &st));
    CHECK(!pio_tool_state_can_end(g, &st), "cannot end inside");
    pio_tool_grammar_free(g);

    /* a full vocabulary's worth of nesting, and one more */
    g = grammar(PIO_TOOL_FORMAT_QWEN3_JSON, "get", false, false);
    if (g) {
        char deep[512];
        int i, n = 0;
        n += snprintf(deep + n, sizeof deep - (size_t)n, "%s", OPEN "\"get\", \"arguments\": {\"a\": ");
        for (i = 0; i < PIO_TOOL_JSON_MAX_DEPTH - 1; i++)
            deep[n++] = '[';
        deep[n] = '\0';
        CHECK(first_reject(g, deep, (size_t)n) == -1, "depth %d", PIO_TOOL_JSON_MAX_DEPTH);
        deep[n++] = '[';
        CHECK(first_reject(g, deep, (size_t)n) == n - 1, "depth %d rejected", PIO_TOOL_JSON_MAX_DEPTH + 1);
        pio_tool_grammar_free(g);
    }
}

static void test_json_rejects(void)
{
    pio_tool_grammar *g = grammar(PIO_TOOL_FORMAT_QWEN3_JSON, NULL, false, false), *named;
    if (!g)
        return;
    /* structure and names */
    REJECT_AT(g, "", "Hello", 0);
    REJECT_AT(g, "", "<tool_call>{", 11);
    REJECT_AT(g, "<", "tool_calls", 9);
    REJECT_AT(g, OPEN, "\"get_x", 5);
    REJECT_AT(g, OPEN, "\"getaway\"", 4);
    REJECT_AT(g, OPEN, "\"get_weather\",\"arguments\": {}", 14);   /* the template's spacing */
    REJECT_AT(g, OPEN, "\"get\", \"arguments\": [", 20);
    REJECT_AT(g, OPEN, "\"get\", \"arguments\": {}}\n</tool_call>\n", 36);   /* one call only */
    REJECT_AT(g, "<think>x</think>", "x", 0);
    REJECT_AT(g, "<think>x</think>", "\n\n\n", 2);
    /* JSON */
    REJECT_AT(g, ARGS_W, "{\"a\": 01}", 7);
    REJECT_AT(g, ARGS_W, "{\"a\": 1.}", 8);
    REJECT_AT(g, ARGS_W, "{\"a\": 1.5.}", 9);
    REJECT_AT(g, ARGS_W, "{\"a\": 1e}", 8);
    REJECT_AT(g, ARGS_W, "{\"a\": -}", 7);
    REJECT_AT(g, ARGS_W, "{\"a\": +1}", 6);
    REJECT_AT(g, ARGS_W, "{\"a\": tru}", 9);
    REJECT_AT(g, ARGS_W, "{\"a\": nul1}", 9);
    REJECT_AT(g, ARGS_W, "{\"a\": 1,}", 8);
    REJECT_AT(g, ARGS_W, "{,}", 1);
    REJECT_AT(g, ARGS_W, "{\"a\" 1}", 5);
    REJECT_AT(g, ARGS_W, "{\"a\": [1, ]}", 10);
    REJECT_AT(g, ARGS_W, "{\"a\": [1}", 8);
    REJECT_AT(g, ARGS_W, "{\"a\": {\"b\": 1]}", 13);
    REJECT_AT(g, ARGS_W, "{a: 1}", 1);
    REJECT_AT(g, ARGS_W, "{\"a\": 'x'}", 6);
    REJECT_AT(g, ARGS_W, "{\"a\": \"x\ty\"}", 8);          /* a raw control character */
    REJECT_AT(g, ARGS_W, "{\"a\": \"\\x\"}", 8);
    REJECT_AT(g, ARGS_W, "{\"a\": \"\\u12G4\"}", 11);
    REJECT_AT(g, ARGS_W, "{\"a\": \"\\udc00\"}", 10);      /* a low surrogate alone */
    REJECT_AT(g, ARGS_W, "{\"a\": \"\\ud83dx\"}", 13);     /* a high one without its pair */
    REJECT_AT(g, ARGS_W, "{\"a\": \"\\ud83d\\u0041\"}", 15);
    REJECT_AT(g, ARGS_W, "{\"a\": \"\\u0000\"}", 12);
    REJECT_AT(g, ARGS_W, "{\"a\": \"\xc0\x80\"}", 7);      /* overlong */
    REJECT_AT(g, ARGS_W, "{\"a\": \"\xe0\x80\x80\"}", 8);
    REJECT_AT(g, ARGS_W, "{\"a\": \"\xed\xa0\x80\"}", 8);  /* UTF-8 surrogate */
    REJECT_AT(g, ARGS_W, "{\"a\": \"\xf4\x90\x80\x80\"}", 8);
    REJECT_AT(g, ARGS_W, "{\"a\": \"\xc3\"}", 8);          /* cut character */
    REJECT_AT(g, ARGS_W, "{\"a\": \"\x80\"}", 7);
    REJECT_AT(g, ARGS_W, "{\"a\": \"x</tool_call>\"}", 19);  /* would end the call for the parser */
    REJECT_AT(g, ARGS_W, "{\"</tool_call>\": 1}", 13);
    REJECT_AT(g, ARGS_W, "{\"a\": \"<<tool_call>\"}", 18);
    REJECT_AT(g, ARGS_W, "{\"a\": \"<tool_call>\"}", 17);
    REJECT_AT(g, ARGS_W, "{\"a\": 1}x", 8);
    REJECT_AT(g, ARGS_W, "{\"a\": 1} }", 8);
    pio_tool_grammar_free(g);

    named = grammar(PIO_TOOL_FORMAT_QWEN3_JSON, "get_time", false, false);
    if (named) {
        REJECT_AT(named, OPEN, "\"get_weather\"", 5);
        REJECT_AT(named, OPEN, "\"get\"", 4);
        CHECK(complete(named, OPEN "\"get_time\", \"arguments\": {\"tz\": \"UTC\"}}\n</tool_call>"), "named");
        pio_tool_grammar_free(named);
    }
    {   /* the named function must exist; an unknown format is refused */
        pio_tool_grammar_params p = { PIO_TOOL_FORMAT_QWEN3_JSON, TOOLS, "nope", false, false };
        pio_tool_grammar *x = NULL;
        CHECK(pio_tool_grammar_new(&p, &x) == PIO_STATUS_ERR_INVALID_ARG && !x, "unknown name");
        p.name = NULL;
        p.format = PIO_TOOL_FORMAT_NONE;
        CHECK(pio_tool_grammar_new(&p, &x) == PIO_STATUS_ERR_INVALID_ARG && !x, "format none");
        p.format = PIO_TOOL_FORMAT_QWEN3_JSON;
        p.tools_json = "{}";
        CHECK(pio_tool_grammar_new(&p, &x) == PIO_STATUS_ERR_FORMAT && !x, "tools not an array");
        p.tools_json = "[{\"type\":\"function\",\"function\":{}}]";
        CHECK(pio_tool_grammar_new(&p, &x) == PIO_STATUS_ERR_INVALID_ARG && !x, "no names");
    }
}

static void test_json_parallel_and_think(void)
{
    pio_tool_grammar *g = grammar(PIO_TOOL_FORMAT_QWEN3_JSON, NULL, true, false), *t;
    const char *two = OPEN "\"get\", \"arguments\": {}}\n</tool_call>\n" OPEN
                      "\"get_time\", \"arguments\": {\"x\": [1]}}\n</tool_call>";
    if (g) {
        CHECK(complete(g, OPEN "\"get\", \"arguments\": {}}\n</tool_call>"), "one of many");
        CHECK(complete(g, two), "two calls");
        parses_as(PIO_TOOL_FORMAT_QWEN3_JSON, false, two, 2, "get");
        REJECT_AT(g, OPEN "\"get\", \"arguments\": {}}\n</tool_call>", "\n\n", 1);
        pio_tool_grammar_free(g);
    }
    t = grammar(PIO_TOOL_FORMAT_QWEN3_JSON, NULL, false, true);   /* the prompt opened <think> */
    if (t) {
        const char *s = "I should call it.\n<tool_call> is the tag\xe2\x80\xa6</think>\n\n" OPEN
                        "\"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>";
        CHECK(complete(t, s), "starts in reasoning");
        parses_as(PIO_TOOL_FORMAT_QWEN3_JSON, true, s, 1, "get_weather");
        REJECT_AT(t, "abc", "\xff", 0);                  /* reasoning is UTF-8 too */
        CHECK(complete(t, "</think>" OPEN "\"get\", \"arguments\": {}}\n</tool_call>"), "empty reasoning");
        pio_tool_grammar_free(t);
    }
}

/* ---- Qwen3-Coder XML and GLM-4.7 ---------------------------------------------- */

static void test_xml(void)
{
    pio_tool_grammar *g = grammar(PIO_TOOL_FORMAT_QWEN3_XML, NULL, true, false);
    const char *w = "<tool_call>\n<function=get_weather>\n<parameter=city>\nNew York\n</parameter>\n"
                    "<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>";
    const char *t = "<tool_call>\n<function=get_time>\n<parameter=tz>\nline 1\nline 2 </function> x\n"
                    "</parameter>\n</function>\n</tool_call>";
    if (!g)
        return;
    CHECK(complete(g, w), "xml call");
    parses_as(PIO_TOOL_FORMAT_QWEN3_XML, false, w, 1, "get_weather");
    CHECK(complete(g, t), "xml call, free parameter name");
    parses_as(PIO_TOOL_FORMAT_QWEN3_XML, false, t, 1, "get_time");
    CHECK(complete(g, "<tool_call>\n<function=get>\n</function>\n</tool_call>"), "no parameters");
    CHECK(complete(g, "<tool_call>\n<function=get_weather>\n<parameter=city>\n\n</parameter>\n</function>\n"
                      "</tool_call>"), "empty value");
    {
        char two[1024];
        snprintf(two, sizeof two, "%s\n%s", w, t);
        CHECK(complete(g, two), "two xml calls");
        parses_as(PIO_TOOL_FORMAT_QWEN3_XML, false, two, 2, "get_weather");
    }
    REJECT_AT(g, "<tool_call>\n<function=", "get_weatherx", 11);
    REJECT_AT(g, "<tool_call>\n<function=get_weather>\n", "<parameter=town>", 11);
    REJECT_AT(g, "<tool_call>\n<function=get_weather>\n<parameter=city>\n", "a</parameter>", 12);
    REJECT_AT(g, "<tool_call>\n<function=get_weather>\n<parameter=city>\n", "a\n<parameter=", 12);
    REJECT_AT(g, "<tool_call>\n<function=get_time>\n", "<parameter=>", 11);
    REJECT_AT(g, "<tool_call>\n<function=get_time>\n", "<parameter=a\n", 12);
    REJECT_AT(g, "<tool_call>\n<function=get_time>\n<parameter=a>", "x", 0);
    REJECT_AT(g, "<tool_call>\n<function=get_time>\n", "<parameter=a\x01", 12);   /* names: no controls */
    pio_tool_grammar_free(g);
}

static void test_glm(void)
{
    pio_tool_grammar *g = grammar(PIO_TOOL_FORMAT_GLM47, NULL, true, true);
    const char *w = "thinking</think><tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value>"
                    "<arg_key>days</arg_key><arg_value>2</arg_value></tool_call>";
    const char *t = "</think><tool_call>get_time<arg_key>tz</arg_key><arg_value>UTC</arg_value></tool_call>"
                    "<tool_call>get</tool_call>";
    if (!g)
        return;
    CHECK(complete(g, w), "glm call");
    parses_as(PIO_TOOL_FORMAT_GLM47, true, w, 1, "get_weather");
    CHECK(complete(g, t), "glm calls, free key");
    parses_as(PIO_TOOL_FORMAT_GLM47, true, t, 2, "get_time");
    REJECT_AT(g, "</think><tool_call>", "get_weather<arg_key>town", 20);
    REJECT_AT(g, "</think><tool_call>get_weather<arg_key>city</arg_key><arg_value>", "a<arg_key>", 9);
    REJECT_AT(g, "</think><tool_call>", "nope", 0);
    REJECT_AT(g, "</think><tool_call>get_time<arg_key>", "</arg_key>", 9);          /* an empty key */
    CHECK(complete(g, "</think><tool_call>get_time<arg_key></ax</arg_key><arg_value>v</arg_value></tool_call>"),
          "a key that starts like the terminator");
    {
        pio_tool_state st;
        const char *p = "</think><tool_call>get_time<arg_key></arg_k";
        const char *rest = "x</arg_key><arg_value></arg_value></tool_call>";
        pio_tool_state_init(g, &st);
        CHECK(pio_tool_state_feed(g, &st, p, strlen(p)), "partial terminator as a key");
        CHECK(pio_tool_state_min_bytes(g, &st) == (int)strlen(rest), "min %d, want %zu",
              pio_tool_state_min_bytes(g, &st), strlen(rest));
    }
    pio_tool_grammar_free(g);
}

/* ---- token masks ------------------------------------------------------------- */

typedef struct synth {
    const char *bytes[400];
    size_t lens[400];
    int n;
} synth;

static int synth_add(synth *v, const char *s, size_t n)
{
    v->bytes[v->n] = s;
    v->lens[v->n] = n;
    return v->n++;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The mask agrees with feeding every token on its own (no budget). */
static bool mask_matches_brute(const pio_tool_grammar *g, const pio_tool_state *st, pio_tool_vocab *tv,
                               const synth *v, int n_vocab, const int32_t *ends, int n_end)
{
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    int i, bad = 0, n_ok = 0, count;
    for (i = 0; i < n_vocab; i++)
        logits[i] = 0.0f;
    count = pio_tool_mask(g, st, tv, 0, logits);
    for (i = 0; i < n_vocab; i++) {
        pio_tool_state s2 = *st;
        bool ok, is_end = false;
        int k;
        for (k = 0; k < n_end; k++)
            is_end |= ends[k] == i;
        if (is_end)
            ok = pio_tool_state_can_end(g, st);
        else
            ok = i < v->n && v->bytes[i] && v->lens[i] && pio_tool_state_feed(g, &s2, v->bytes[i], v->lens[i]);
        n_ok += ok;
        if (ok != (logits[i] == 0.0f) && bad++ < 5)
            fprintf(stderr, "token %d (\"%.*s\"): brute %d, mask %d\n", i, (int)(i < v->n ? v->lens[i] : 0),
                    i < v->n && v->bytes[i] ? v->bytes[i] : "", ok, logits[i] == 0.0f);
    }
    free(logits);
    return bad == 0 && (count == n_ok || (count == 0 && n_ok == 0));
}

static void test_mask_synthetic(void)
{
    static char single[256];
    static const char *words[] = {
        "<tool_call>", "</tool_call>", "<think>", "</think>", "\n{\"", "name", "\": \"", "get", "_weather",
        "\", \"", "arguments", "{}", "}}", "}\n", "abc", " Paris", "\xc3\xa9", "\xc3", "\xa9", "\"}", "\",",
        "\\u", "d83d", "\\ud83d", "\\ude00", "true", "null", "12", ".5", "e-3", " [", "],", "\n\n", "\n</",
        "<tool", "_call>", "tool_call>\n{\"name\": \"get", "\"get_time\", \"arguments\": {", "{\"", "\": ",
        "\": [", "\\n", "\\\"", "<|fim_prefix|>", "</think>\n\n<tool_call>", "x</tool_call>", "\t", " ",
        "\"get\", \"arguments\": {}}\n</tool_call>", "\xf0\x9f\x98\x80", "\xf0\x9f", "\x98\x80",
    };
    synth v = { { 0 }, { 0 }, 0 };
    int32_t ends[2];
    int i, im_start, n_vocab, seed;
    pio_tool_vocab *tv = NULL;
    pio_tool_grammar *g[3];
    float *logits;

    for (i = 0; i < 256; i++) {
        single[i] = (char)i;
        synth_add(&v, &single[i], 1);
    }
    for (i = 0; i < (int)(sizeof words / sizeof *words); i++)
        synth_add(&v, words[i], strlen(words[i]));
    im_start = synth_add(&v, NULL, 0);                   /* special: never */
    ends[0] = synth_add(&v, "<|im_end|>", 10);           /* its bytes do not matter */
    ends[1] = synth_add(&v, NULL, 0);
    n_vocab = v.n + 5;                                   /* padded rows */
    CHECK_OK(pio_tool_vocab_new(v.bytes, v.lens, v.n, n_vocab, ends, 2, &tv));
    if (!tv)
        return;
    logits = malloc((size_t)n_vocab * sizeof *logits);
    g[0] = grammar(PIO_TOOL_FORMAT_QWEN3_JSON, NULL, true, false);
    g[1] = grammar(PIO_TOOL_FORMAT_QWEN3_XML, NULL, true, false);
    g[2] = grammar(PIO_TOOL_FORMAT_GLM47, NULL, false, true);

    if (g[0]) {   /* at the start: '<', "<tool_call>", "<think>", "<tool", and "<tool_call>..." spellings */
        pio_tool_state st;
        int count;
        pio_tool_state_init(g[0], &st);
        for (i = 0; i < n_vocab; i++)
            logits[i] = 1.0f;
        count = pio_tool_mask(g[0], &st, tv, 0, logits);
        CHECK(count == 4, "start: %d tokens", count);
        CHECK(logits['<'] == 1.0f && logits[256 + 0] == 1.0f && logits[256 + 2] == 1.0f && logits[256 + 34] == 1.0f,
              "start tokens");
        CHECK(isinf(logits[ends[0]]) && isinf(logits[im_start]) && isinf(logits[n_vocab - 1]), "start masked");
        pio_tool_state_feed(g[0], &st, OPEN "\"get_weather\", \"arguments\": {}}\n</tool_call>",
                            strlen(OPEN "\"get_weather\", \"arguments\": {}}\n</tool_call>"));
        for (i = 0; i < n_vocab; i++)
            logits[i] = 1.0f;
        count = pio_tool_mask(g[0], &st, tv, 0, logits);
        CHECK(count == 3 && logits[ends[0]] == 1.0f && logits[ends[1]] == 1.0f && logits['\n'] == 1.0f,
              "after a call: end or another call (%d)", count);
        CHECK(pio_tool_mask(g[0], &st, tv, 1, logits) == 2 && isinf(logits['\n']), "budget 1: end only");
        CHECK(pio_tool_state_feed_token(g[0], &st, tv, ends[0]), "end token fits");
    }

    /* random walks: every state reached agrees with brute force, and a
     * budget always closes the call in time */
    for (seed = 1; seed <= 300; seed++) {
        int gi = seed % 3, budget, step, n_tok = 0;
        uint64_t r = 0x9E3779B97F4A7C15ull * (uint64_t)seed;
        pio_tool_state st;
        bool ended = false;
        if (!g[gi])
            continue;
        pio_tool_state_init(g[gi], &st);
        budget = pio_tool_state_min_bytes(g[gi], &st) + 1 + (int)(rng_next(&r) % 40);
        for (step = 0; step < budget; step++) {
            int count, pick, k;
            if (seed <= 60 && !mask_matches_brute(g[gi], &st, tv, &v, n_vocab, ends, 2)) {
                CHECK(0, "seed %d step %d: mask differs from brute force", seed, step);
                break;
            }
            for (i = 0; i < n_vocab; i++)
                logits[i] = 0.0f;
            count = pio_tool_mask(g[gi], &st, tv, budget - step, logits);
            if (count <= 0) {
                CHECK(0, "seed %d step %d: no token allowed", seed, step);
                break;
            }
            pick = (int)(rng_next(&r) % (uint64_t)count);
            for (k = 0; k < n_vocab; k++)
                if (logits[k] == 0.0f && pick-- == 0)
                    break;
            n_tok++;
            if (k == ends[0] || k == ends[1]) {
                ended = true;
                break;
            }
            if (!pio_tool_state_feed_token(g[gi], &st, tv, k)) {
                CHECK(0, "seed %d: the allowed token %d does not fit", seed, k);
                break;
            }
        }
        CHECK(ended && n_tok <= budget, "seed %d (format %d): no end within %d tokens", seed, gi, budget);
    }
    for (i = 0; i < 3; i++)
        pio_tool_grammar_free(g[i]);
    free(logits);
    pio_tool_vocab_free(tv);
}

/* ---- the real Qwen3 vocabulary ---------------------------------------------------- */

/* Time one mask (the mean of 20) and print it. */
static void time_mask(const char *what, const pio_tool_grammar *g, const pio_tool_state *st, pio_tool_vocab *tv,
                      float *logits)
{
    int reps = 20, i, count = 0;
    double t0 = now_s(), ms;
    for (i = 0; i < reps; i++)
        count = pio_tool_mask(g, st, tv, 0, logits);
    ms = (now_s() - t0) * 1e3 / reps;
    printf("  mask %-34s %7.3f ms  (%d tokens allowed)\n", what, ms, count);
    CHECK(count > 0, "%s: tokens allowed", what);
}

static void test_mask_qwen3(void)
{
    const char *data = check_shared_data();
    char path[4200];
    pio_tokenizer *tok = NULL;
    pio_tool_vocab *tv = NULL;
    pio_tool_grammar *g = NULL, *gt = NULL;
    int32_t ends[2];
    int n_vocab = 151936, i;
    float *logits;
    double t0;
    if (!data) {
        printf("note: shared data (../shared/data) not found; the Qwen3 vocabulary masks are skipped\n");
        return;
    }
    snprintf(path, sizeof path, "%s/qwen3-tokenizer", data);
    CHECK_OK(pio_tokenizer_load(path, &tok));
    if (!tok)
        return;
    ends[0] = pio_tokenizer_token_to_id(tok, "<|im_end|>");
    ends[1] = pio_tokenizer_token_to_id(tok, "<|endoftext|>");
    t0 = now_s();
    CHECK_OK(pio_tool_vocab_from_tokenizer(tok, n_vocab, pio_tokenizer_n_vocab(tok), ends, 2, &tv));
    printf("  token table for %d ids built in %.1f ms\n", pio_tokenizer_n_vocab(tok), (now_s() - t0) * 1e3);
    g = grammar(PIO_TOOL_FORMAT_QWEN3_JSON, NULL, true, false);
    gt = grammar(PIO_TOOL_FORMAT_QWEN3_JSON, NULL, true, true);
    logits = malloc((size_t)n_vocab * sizeof *logits);
    if (tv && g && gt) {
        pio_tool_state st;
        int32_t tc = pio_tokenizer_token_to_id(tok, "<tool_call>"), think = pio_tokenizer_token_to_id(tok, "<think>");
        uint64_t r = 12345;
        int seed;

        pio_tool_state_init(g, &st);
        for (i = 0; i < n_vocab; i++)
            logits[i] = 0.0f;
        CHECK(pio_tool_mask(g, &st, tv, 0, logits) > 0 && logits[tc] == 0.0f && logits[think] == 0.0f &&
              isinf(logits[ends[0]]) && isinf(logits[pio_tokenizer_token_to_id(tok, "Hello")]),
              "start: <tool_call> and <think> (single tokens) allowed, text and end not");
        time_mask("at the start", g, &st, tv, logits);
        pio_tool_state_feed(g, &st, OPEN "\"get_weather\"", strlen(OPEN "\"get_weather\""));
        time_mask("after the name", g, &st, tv, logits);
        pio_tool_state_feed(g, &st, ", \"arguments\": {\"city\": ", 24);
        time_mask("at a JSON value", g, &st, tv, logits);
        pio_tool_state_feed(g, &st, "\"Par", 4);
        time_mask("inside a JSON string", g, &st, tv, logits);
        pio_tool_state_feed(g, &st, "is\", \"n\": 12", 12);
        time_mask("inside a number", g, &st, tv, logits);
        pio_tool_state_init(gt, &st);
        pio_tool_state_feed(gt, &st, "Let me think", 12);
        time_mask("inside <think> text", gt, &st, tv, logits);

        /* random walks with the real vocabulary: the text reads back as one call */
        for (seed = 0; seed < 3; seed++) {
            pio_tool_grammar *gn = grammar(PIO_TOOL_FORMAT_QWEN3_JSON, "get_weather", false, false);
            char *text = calloc(1, 65536);
            size_t len = 0;
            int budget = 80, step, count, pick, k;
            bool ended = false;
            if (!gn || !text) {
                free(text);
                pio_tool_grammar_free(gn);
                break;
            }
            pio_tool_state_init(gn, &st);
            for (step = 0; step < budget; step++) {
                for (i = 0; i < n_vocab; i++)
                    logits[i] = 0.0f;
                count = pio_tool_mask(gn, &st, tv, budget - step, logits);
                if (count <= 0)
                    break;
                pick = (int)(rng_next(&r) % (uint64_t)count);
                for (k = 0; k < n_vocab; k++)
                    if (logits[k] == 0.0f && pick-- == 0)
                        break;
                if (k == ends[0] || k == ends[1]) {
                    ended = true;
                    break;
                }
                {
                    size_t pl = 0;
                    const char *piece = pio_tokenizer_token_bytes(tok, k, &pl);
                    if (piece && len + pl < 65536) {
                        memcpy(text + len, piece, pl);
                        len += pl;
                    }
                }
                if (!pio_tool_state_feed_token(gn, &st, tv, k))
                    break;
            }
            CHECK(ended, "real vocab walk %d: no end within %d tokens", seed, budget);
            if (ended) {
                CHECK(pio_utf8_check(text, len) < 0, "walk %d: valid UTF-8", seed);
                parses_as(PIO_TOOL_FORMAT_QWEN3_JSON, false, text, 1, "get_weather");
            }
            free(text);
            pio_tool_grammar_free(gn);
        }
    }
    free(logits);
    pio_tool_grammar_free(g);
    pio_tool_grammar_free(gt);
    pio_tool_vocab_free(tv);
    pio_tokenizer_free(tok);
}

int main(void)
{
    test_json_accepts();
    test_json_rejects();
    test_json_parallel_and_think();
    test_xml();
    test_glm();
    test_mask_synthetic();
    test_mask_qwen3();
    return check_report("test_tool_constraint");
}
