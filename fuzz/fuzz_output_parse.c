/*
 * fuzz_output_parse.c - libFuzzer target for the model-output parser
 * (src/chat/output_parse.h). The first byte picks the tool format, whether
 * the output starts inside <think>, and whether a tools schema is given;
 * the rest is the generated text. It is parsed whole and again in chunks
 * whose sizes come from the text itself: both parses must give the same
 * content, reasoning, calls and warnings, every call's arguments must be a
 * JSON object, and nothing may crash, hang, leak or overread.
 * Seeds: fuzz/seeds/output_parse/ (model outputs of the three formats).
 */
#include "chat/output_parse.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const fuzz_tools =
    "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":{"
    "\"s\":{\"type\":\"string\"},\"i\":{\"type\":\"integer\"},\"n\":{\"type\":\"number\"},"
    "\"b\":{\"type\":\"boolean\"},\"o\":{\"type\":\"object\"},\"a\":{\"type\":[\"array\",\"null\"]}}}}}]";

static pio_output_parser *parse(const pio_output_parse_params *pp, const char *text, size_t n, bool chunked)
{
    pio_output_parser *p = NULL;
    size_t at = 0;
    if (pio_output_parser_new(pp, &p) != PIO_STATUS_OK)
        abort();
    while (at < n) {
        size_t k = chunked ? 1 + (unsigned char)text[at] % 7 : n - at;
        if (k > n - at)
            k = n - at;
        if (pio_output_parser_feed(p, text + at, k, NULL, NULL) != PIO_STATUS_OK)
            abort();
        at += k;
    }
    if (pio_output_parser_finish(p, NULL, NULL) != PIO_STATUS_OK)
        abort();
    return p;
}

static void same(const pio_output_result *a, const pio_output_result *b)
{
    if (a->content_len != b->content_len || memcmp(a->content, b->content, a->content_len) ||
        a->reasoning_len != b->reasoning_len || memcmp(a->reasoning, b->reasoning, a->reasoning_len) ||
        a->n_calls != b->n_calls || a->n_warnings != b->n_warnings)
        abort();
    for (int i = 0; i < a->n_calls; i++) {
        cJSON *j;
        if (strcmp(a->calls[i].name, b->calls[i].name) || strcmp(a->calls[i].arguments, b->calls[i].arguments) ||
            strcmp(a->calls[i].id, b->calls[i].id))
            abort();
        j = cJSON_Parse(a->calls[i].arguments);
        if (!cJSON_IsObject(j))
            abort();
        cJSON_Delete(j);
    }
    for (int i = 0; i < a->n_warnings; i++)
        if (strcmp(a->warnings[i], b->warnings[i]))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pio_output_parse_params pp;
    pio_output_parser *whole, *chunked;
    char *text;
    if (size < 1)
        return 0;
    pio_output_parse_params_default(&pp);
    pp.format = (pio_tool_format)(data[0] % 4);
    pp.start_in_reasoning = data[0] & 4;
    pp.parse_reasoning = !(data[0] & 8);
    pp.tools_json = data[0] & 16 ? fuzz_tools : NULL;
    /* own exact-size copy (no NUL after it): ASan sees any overread */
    text = malloc(size - 1 ? size - 1 : 1);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    whole = parse(&pp, text, size - 1, false);
    chunked = parse(&pp, text, size - 1, true);
    same(pio_output_parser_result(whole), pio_output_parser_result(chunked));
    pio_output_parser_free(whole);
    pio_output_parser_free(chunked);
    free(text);
    return 0;
}
