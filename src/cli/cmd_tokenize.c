/*
 * cmd_tokenize.c - `pio tokenize`: text on stdin to token ids (JSON), or
 * back with --decode; --jsonl does one text (or id list) per line.
 */
#include "cli/cli.h"
#include "pio/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static void tokenize_usage(FILE *f)
{
    fprintf(f, "usage: pio tokenize --tokenizer PATH [--decode [--skip-special]] [--jsonl]\n\n"
               "Encode UTF-8 text from stdin and print its token ids as one JSON array, e.g.\n"
               "[9707,1879]. Added tokens (<|im_start|>, ...) in the text are matched; no\n"
               "BOS/EOS tokens are added (as transformers' add_special_tokens=False).\n\n"
               "options:\n"
               "      --tokenizer PATH  tokenizer.json, or a model directory holding one\n"
               "      --decode          read a JSON array of ids instead and print its text\n"
               "      --skip-special    with --decode: drop special tokens (<|im_end|>, ...)\n"
               "      --jsonl           one input per line: a JSON string (or {\"text\": ...});\n"
               "                        with --decode a JSON array; prints one JSON result per line\n"
               "  -h, --help            this help\n");
}

/* Read all of stdin; *len excludes the NUL added at the end. NULL on failure. */
static char *tokenize_read_stdin(size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            char *p = realloc(buf, cap * 2);
            if (!p) { free(buf); return NULL; }
            buf = p;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, stdin);
        n += r;
        if (r == 0) break;
    }
    if (ferror(stdin)) { free(buf); return NULL; }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Print "pio: tokenize: <msg>" from the library's last error; returns 1. */
static int tokenize_fail(const char *what)
{
    char msg[2300];
    snprintf(msg, sizeof msg, "tokenize: %s%s%s", what ? what : "", what ? ": " : "", pio_last_error());
    return pio_cli_fail(msg);
}

/* Encode text[0..len) and print the ids as a JSON array line. */
static int tokenize_encode_one(const pio_tokenizer *tok, const char *text, size_t len)
{
    int32_t *ids;
    size_t n;
    if (pio_tokenizer_encode(tok, text, len, &ids, &n)) return tokenize_fail(NULL);
    putchar('[');
    for (size_t i = 0; i < n; i++) printf(i ? ",%d" : "%d", (int)ids[i]);
    fputs("]\n", stdout);
    free(ids);
    return 0;
}

/*
 * Decode the JSON array `arr` of ids. The text is written as is, or as a
 * JSON string line when `as_json`.
 */
static int tokenize_decode_one(const pio_tokenizer *tok, const cJSON *arr, bool skip_special, bool as_json)
{
    int rc = 1;
    if (!cJSON_IsArray(arr)) return pio_cli_fail("tokenize: --decode expects a JSON array of token ids");
    size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return pio_cli_fail("tokenize: out of memory");
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsNumber(it) || it->valuedouble != (double)(int32_t)it->valuedouble) {
            char msg[96];
            snprintf(msg, sizeof msg, "tokenize: element %zu of the id array is not an integer", i);
            rc = pio_cli_fail(msg);
            goto out_free_ids;
        }
        ids[i++] = (int32_t)it->valuedouble;
    }
    char *text;
    size_t len;
    if (pio_tokenizer_decode(tok, ids, n, skip_special, &text, &len)) {
        rc = tokenize_fail(NULL);
        goto out_free_ids;
    }
    if (as_json) {
        cJSON *s = cJSON_CreateString(text);
        char *js = s ? cJSON_PrintUnformatted(s) : NULL;
        if (js) printf("%s\n", js);
        free(js);
        cJSON_Delete(s);
        if (!js) { free(text); rc = pio_cli_fail("tokenize: out of memory"); goto out_free_ids; }
    } else {
        fwrite(text, 1, len, stdout);
    }
    free(text);
    rc = 0;
out_free_ids:
    free(ids);
    return rc;
}

/* --jsonl: each non-empty line of buf is one input. */
static int tokenize_lines(const pio_tokenizer *tok, char *buf, size_t len, bool decode, bool skip_special)
{
    size_t lineno = 0;
    char *p = buf, *end = buf + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lineno++;
        if (n == 0 || (n == 1 && p[0] == '\r')) { p += n + 1; continue; }
        cJSON *j = cJSON_ParseWithLength(p, n);
        const cJSON *v = j;
        if (j && cJSON_IsObject(j)) v = cJSON_GetObjectItemCaseSensitive(j, decode ? "ids" : "text");
        int rc;
        if (!v || (decode ? !cJSON_IsArray(v) : !cJSON_IsString(v))) {
            char msg[160];
            snprintf(msg, sizeof msg, "tokenize: stdin line %zu: expected %s", lineno,
                     decode ? "a JSON array of ids" : "a JSON string or {\"text\": ...}");
            rc = pio_cli_fail(msg);
        } else if (decode) {
            rc = tokenize_decode_one(tok, v, skip_special, true);
        } else {
            rc = tokenize_encode_one(tok, v->valuestring, strlen(v->valuestring));
        }
        cJSON_Delete(j);
        if (rc) return rc;
        p += n + 1;
    }
    return 0;
}

int pio_cmd_tokenize(int argc, char **argv)
{
    const char *path = NULL;
    bool decode = false, skip_special = false, jsonl = false;
    pio_tokenizer *tok;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            tokenize_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) {
            path = argv[++i];
        } else if (!strncmp(argv[i], "--tokenizer=", 12)) {
            path = argv[i] + 12;
        } else if (!strcmp(argv[i], "--decode")) {
            decode = true;
        } else if (!strcmp(argv[i], "--skip-special")) {
            skip_special = true;
        } else if (!strcmp(argv[i], "--jsonl")) {
            jsonl = true;
        } else {
            fprintf(stderr, "pio tokenize: unknown option or missing value \"%s\"\n", argv[i]);
            tokenize_usage(stderr);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "pio tokenize: --tokenizer PATH is required\n");
        tokenize_usage(stderr);
        return 2;
    }
    if (pio_tokenizer_load(path, &tok)) return tokenize_fail(NULL);
    size_t len;
    char *buf = tokenize_read_stdin(&len);
    if (!buf) {
        rc = pio_cli_fail("tokenize: cannot read stdin");
        goto out_free_tok;
    }
    if (jsonl) {
        rc = tokenize_lines(tok, buf, len, decode, skip_special);
    } else if (decode) {
        cJSON *j = cJSON_ParseWithLength(buf, len);
        rc = j ? tokenize_decode_one(tok, j, skip_special, false)
               : pio_cli_fail("tokenize: --decode expects a JSON array of token ids on stdin");
        cJSON_Delete(j);
    } else {
        rc = tokenize_encode_one(tok, buf, len);
    }
    free(buf);
    if (fflush(stdout) != 0 && !rc) rc = pio_cli_fail("tokenize: cannot write stdout");
out_free_tok:
    pio_tokenizer_free(tok);
    return rc;
}
