/*
 * tok_gguf.c - a tokenizer from a GGUF file's tokenizer.ggml.* metadata.
 *
 * llama.cpp's converter stores a byte-level BPE tokenizer as:
 *   tokenizer.ggml.model       "gpt2"
 *   tokenizer.ggml.pre         the pre-tokenizer's name ("qwen2" for Qwen2/3)
 *   tokenizer.ggml.tokens      every id's string (vocab form, "Ġthe")
 *   tokenizer.ggml.token_type  per id: 1 normal, 2 unknown, 3 control,
 *                              4 user-defined, 5 unused, 6 byte
 *   tokenizer.ggml.merges      "a b" strings, by rank
 * The normalizer and the pre-tokenizer's regex are implied by the names.
 * We rebuild the tokenizer.json those came from and load it with the same
 * code as a tokenizer.json (tok_load_json), so both encode identically:
 * normal tokens form model.vocab; control tokens become special added
 * tokens, user-defined ones non-special added tokens (normalized: false,
 * as llama.cpp stores them pre-normalized); unused ids and "[PAD<id>]"
 * fillers (older converters typed them user-defined) are left out.
 */
#include "tok_int.h"

#include "formats/gguf_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Qwen2/Qwen3's Split regex (tokenizer.json pre_tokenizer.pretokenizers[0]). */
static const char tok_qwen2_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* tokenizer.json's "normalizer", "pre_tokenizer" and "decoder" for `pre`;
 * false when we do not know that pre-tokenizer. */
static bool tok_gguf_pipeline(cJSON *root, const char *pre)
{
    cJSON *norm, *seq, *list, *split, *pat, *bl, *dec;
    if (strcmp(pre, "qwen2") != 0)
        return false;
    norm = cJSON_AddObjectToObject(root, "normalizer");
    cJSON_AddStringToObject(norm, "type", "NFC");
    seq = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(seq, "type", "Sequence");
    list = cJSON_AddArrayToObject(seq, "pretokenizers");
    split = cJSON_CreateObject();
    cJSON_AddItemToArray(list, split);
    cJSON_AddStringToObject(split, "type", "Split");
    pat = cJSON_AddObjectToObject(split, "pattern");
    cJSON_AddStringToObject(pat, "Regex", tok_qwen2_regex);
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddBoolToObject(split, "invert", false);
    bl = cJSON_CreateObject();
    cJSON_AddItemToArray(list, bl);
    cJSON_AddStringToObject(bl, "type", "ByteLevel");
    cJSON_AddBoolToObject(bl, "add_prefix_space", false);
    cJSON_AddBoolToObject(bl, "use_regex", false);
    dec = cJSON_AddObjectToObject(root, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    return true;
}

/* A GGUF string as a NUL-terminated malloc'd copy; NULL (error set) when it
 * holds a NUL byte or memory runs out. `what` names it in messages. */
static char *tok_gguf_cstr(const pio_gguf *g, const char *s, size_t n, const char *what, pio_status *st)
{
    char *c;
    if (memchr(s, '\0', n)) {
        *st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: %s contains a NUL byte", pio_gguf_name(g), what);
        return NULL;
    }
    c = malloc(n + 1);
    if (!c) {
        *st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", pio_gguf_name(g));
        return NULL;
    }
    memcpy(c, s, n);
    c[n] = '\0';
    return c;
}

/* The string array `key` (required): its kv index and length. */
static pio_status tok_gguf_str_array(const pio_gguf *g, const char *key, int *kv, uint64_t *n)
{
    *kv = pio_gguf_find_key(g, key);
    if (*kv < 0)
        return pio_error(PIO_STATUS_ERR_MISSING, "%s: key \"%s\" is missing", pio_gguf_name(g), key);
    if (pio_gguf_kv_type(g, *kv) != PIO_GGUF_ARRAY || pio_gguf_kv_elem_type(g, *kv) != PIO_GGUF_STRING)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\" must be an array of strings", pio_gguf_name(g), key);
    *n = pio_gguf_kv_len(g, *kv);
    return PIO_STATUS_OK;
}

/* Add tokens, token types and merges to the tree `root`. */
static pio_status tok_gguf_model(const pio_gguf *g, cJSON *root)
{
    pio_status st = PIO_STATUS_OK;
    const char *file = pio_gguf_name(g);
    int kt, ktype = pio_gguf_find_key(g, "tokenizer.ggml.token_type"), km;
    uint64_t n_tok, n_merges;
    cJSON *model, *vocab, *merges, *added;
    int64_t unk = -1;
    char *c = NULL, what[96];

    if ((st = tok_gguf_str_array(g, "tokenizer.ggml.tokens", &kt, &n_tok)) != PIO_STATUS_OK ||
        (st = tok_gguf_str_array(g, "tokenizer.ggml.merges", &km, &n_merges)) != PIO_STATUS_OK)
        return st;
    if (n_tok > (uint64_t)TOK_MAX_ID)
        return pio_error(PIO_STATUS_ERR_LIMIT, "%s: key \"tokenizer.ggml.tokens\": %llu tokens (at most %d)", file,
                         (unsigned long long)n_tok, (int)TOK_MAX_ID);
    if (ktype >= 0 && (pio_gguf_kv_type(g, ktype) != PIO_GGUF_ARRAY || pio_gguf_kv_len(g, ktype) != n_tok ||
                       !(n_tok == 0 || pio_gguf_arr_int(g, ktype, 0, &unk))))
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: key \"tokenizer.ggml.token_type\" must be an integer array with one entry per token (%llu)",
                         file, (unsigned long long)n_tok);
    unk = -1;
    if (pio_gguf_find_key(g, "tokenizer.ggml.unknown_token_id") >= 0 &&
        (st = pio_gguf_get_int(g, "tokenizer.ggml.unknown_token_id", &unk)) != PIO_STATUS_OK)
        return st;

    model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    vocab = cJSON_AddObjectToObject(model, "vocab");
    merges = cJSON_AddArrayToObject(model, "merges");
    added = cJSON_AddArrayToObject(root, "added_tokens");
    if (!model || !vocab || !merges || !added)
        return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", file);

    for (uint64_t j = 0; j < n_tok; j++) {
        const char *s;
        size_t n;
        int64_t type = PIO_GGUF_TOKEN_NORMAL;
        cJSON *item;
        if (ktype >= 0)
            pio_gguf_arr_int(g, ktype, j, &type);
        pio_gguf_arr_str(g, kt, j, &s, &n);
        if (type == PIO_GGUF_TOKEN_UNUSED || (type == PIO_GGUF_TOKEN_USER_DEFINED && pio_gguf_is_pad_token(s, n, j)))
            continue;
        snprintf(what, sizeof what, "tokenizer.ggml.tokens[%llu]", (unsigned long long)j);
        if (!(c = tok_gguf_cstr(g, s, n, what, &st)))
            return st;
        if (pio_utf8_check(c, n) >= 0) {
            st = pio_error(PIO_STATUS_ERR_UTF8, "%s: %s is not valid UTF-8", file, what);
            goto out_free_c;
        }
        switch (type) {
        case PIO_GGUF_TOKEN_NORMAL:
        case PIO_GGUF_TOKEN_UNKNOWN:
        case PIO_GGUF_TOKEN_BYTE:
            if (!cJSON_AddNumberToObject(vocab, c, (double)j))
                goto nomem;
            break;
        case PIO_GGUF_TOKEN_CONTROL:
        case PIO_GGUF_TOKEN_USER_DEFINED:
            item = cJSON_CreateObject();
            if (!item)
                goto nomem;
            cJSON_AddItemToArray(added, item);
            cJSON_AddNumberToObject(item, "id", (double)j);
            cJSON_AddStringToObject(item, "content", c);
            cJSON_AddBoolToObject(item, "special", type == PIO_GGUF_TOKEN_CONTROL);
            if (!cJSON_AddBoolToObject(item, "normalized", false))
                goto nomem;
            break;
        default:
            st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: tokenizer.ggml.token_type[%llu] = %lld is not a token type (1-6)",
                           file, (unsigned long long)j, (long long)type);
            goto out_free_c;
        }
        if ((int64_t)j == unk)
            cJSON_AddStringToObject(model, "unk_token", c);
        free(c);
        c = NULL;
    }
    for (uint64_t j = 0; j < n_merges; j++) {
        const char *s;
        size_t n;
        pio_gguf_arr_str(g, km, j, &s, &n);
        snprintf(what, sizeof what, "tokenizer.ggml.merges[%llu]", (unsigned long long)j);
        if (!(c = tok_gguf_cstr(g, s, n, what, &st)))
            return st;
        if (!cJSON_AddItemToArray(merges, cJSON_CreateString(c)))
            goto nomem;
        free(c);
        c = NULL;
    }
    return PIO_STATUS_OK;
nomem:
    st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory building the tokenizer", file);
out_free_c:
    free(c);
    return st;
}

pio_status pio_tokenizer_from_gguf(const pio_gguf *g, pio_tokenizer **out)
{
    pio_status st;
    const char *file = pio_gguf_name(g), *s;
    size_t n;
    char model[32], pre[64] = "default";
    cJSON *root;

    *out = NULL;
    if ((st = pio_gguf_get_str(g, "tokenizer.ggml.model", &s, &n)) != PIO_STATUS_OK)
        return st;
    snprintf(model, sizeof model, "%.*s", (int)(n < sizeof model ? n : sizeof model - 1), s);
    if (strlen(model) != n || strcmp(model, "gpt2") != 0)
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED,
                         "%s: tokenizer.ggml.model \"%s\" is not supported (only \"gpt2\", byte-level BPE)", file,
                         model);
    if (pio_gguf_find_key(g, "tokenizer.ggml.pre") >= 0) {
        if ((st = pio_gguf_get_str(g, "tokenizer.ggml.pre", &s, &n)) != PIO_STATUS_OK)
            return st;
        snprintf(pre, sizeof pre, "%.*s", (int)(n < sizeof pre ? n : sizeof pre - 1), s);
    }
    root = cJSON_CreateObject();
    if (!root)
        return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", file);
    if (!tok_gguf_pipeline(root, pre)) {
        st = pio_error(PIO_STATUS_ERR_UNSUPPORTED,
                       "%s: tokenizer.ggml.pre \"%s\" is not supported (known: \"qwen2\")", file, pre);
        goto out_free_root;
    }
    if ((st = tok_gguf_model(g, root)) != PIO_STATUS_OK)
        goto out_free_root;
    st = tok_load_json(root, file, out);
out_free_root:
    cJSON_Delete(root);
    return st;
}
