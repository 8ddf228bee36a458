/*
 * tok_load.c - read a Hugging Face tokenizer.json into a pio_tokenizer.
 *
 * Supported: model BPE (merges as "a b" strings or ["a", "b"] pairs,
 * unk_token, fuse_unk, byte_fallback, ignore_merges); added_tokens with
 * their single_word/lstrip/rstrip/normalized/special flags; normalizer NFC,
 * NFD, NFKC, NFKD, Sequence, null; pre-tokenizer Split (Regex or String
 * pattern, any behavior, invert), ByteLevel, Sequence, null; decoder
 * ByteLevel or null. Anything else is refused with PIO_STATUS_ERR_UNSUPPORTED
 * naming the field, so a tokenizer never silently encodes differently.
 */
#include "tok_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <utf8proc.h>

#include "pio/formats.h"

/* The GPT-2 pre-tokenizer regex, used by ByteLevel when use_regex is true. */
static const char tok_gpt2_regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* Regex match limits: a pattern from a tokenizer.json must not hang encode. */
#define TOK_MATCH_LIMIT 10000000u
#define TOK_DEPTH_LIMIT 100000u

/* ---- JSON field helpers: each names the file and field on error --------- */

/* Boolean field `key` of obj: absent or null gives `dflt`. */
static pio_status tok_json_bool(const pio_tokenizer *tok, const cJSON *obj, const char *where,
                                const char *key, bool dflt, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) { *out = dflt; return PIO_STATUS_OK; }
    if (!cJSON_IsBool(v))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: %s.%s: expected true or false", tok->name,
                         where, key);
    *out = cJSON_IsTrue(v);
    return PIO_STATUS_OK;
}

/* String field `key` of obj: absent or null gives NULL (an error when `required`). */
static pio_status tok_json_str(const pio_tokenizer *tok, const cJSON *obj, const char *where,
                               const char *key, bool required, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return pio_error(PIO_STATUS_ERR_MISSING, "%s: %s.%s: missing", tok->name, where, key);
        return PIO_STATUS_OK;
    }
    if (!cJSON_IsString(v))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: %s.%s: expected a string", tok->name, where,
                         key);
    *out = v->valuestring;
    return PIO_STATUS_OK;
}

/* An id: an integer in [0, TOK_MAX_ID). */
static pio_status tok_json_id(const pio_tokenizer *tok, const cJSON *v, const char *where,
                              const char *what, int32_t *out)
{
    if (!cJSON_IsNumber(v))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: %s: id of '%.64s' is not a number", tok->name,
                         where, what);
    double d = v->valuedouble;
    if (!(d >= 0 && d < (double)TOK_MAX_ID) || d != (double)(int32_t)d)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: %s: id of '%.64s' is %g, not an integer in [0, %d)", tok->name,
                         where, what, d, (int)TOK_MAX_ID);
    *out = (int32_t)d;
    return PIO_STATUS_OK;
}

/* ---- model --------------------------------------------------------------- */

/* Grow the per-id table to hold id. */
static pio_status tok_entries_fit(pio_tokenizer *tok, int32_t id)
{
    if (id < tok->n_vocab) return PIO_STATUS_OK;
    tok_entry *e = realloc(tok->entries, ((size_t)id + 1) * sizeof *e);
    if (!e) return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory (%d ids)", tok->name, id + 1);
    memset(e + tok->n_vocab, 0, ((size_t)id + 1 - (size_t)tok->n_vocab) * sizeof *e);
    tok->entries = e;
    tok->n_vocab = id + 1;
    return PIO_STATUS_OK;
}

/* model.vocab: {"token": id, ...}. */
static pio_status tok_load_vocab(pio_tokenizer *tok, const cJSON *vocab)
{
    pio_status st;
    if (!cJSON_IsObject(vocab))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: model.vocab: expected an object of token: id",
                         tok->name);
    size_t count = (size_t)cJSON_GetArraySize(vocab);
    int32_t max_id = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        int32_t id;
        st = tok_json_id(tok, it, "model.vocab", it->string, &id);
        if (st) return st;
        if (id > max_id) max_id = id;
    }
    if (max_id >= 0 && (st = tok_entries_fit(tok, max_id))) return st;
    if ((st = tok_strmap_init(&tok->vocab, count))) return st;
    cJSON_ArrayForEach(it, vocab) {
        int32_t id = (int32_t)it->valuedouble;
        size_t n = strlen(it->string);
        uint32_t off;
        if ((st = tok_arena_push(&tok->arena, it->string, n, &off))) return st;
        if ((st = tok_strmap_put(&tok->vocab, &tok->arena, off, (uint32_t)n, id))) return st;
        tok->entries[id] = (tok_entry){ .off = off, .len = (uint32_t)n, .flags = TOK_ENTRY_PRESENT };
    }
    return PIO_STATUS_OK;
}

/* Id of vocab token s[0..n), or an error naming merge `i`. */
static pio_status tok_merge_part(pio_tokenizer *tok, size_t i, const char *s, size_t n, int32_t *id)
{
    *id = tok_strmap_get(&tok->vocab, &tok->arena, s, n);
    if (*id < 0)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: model.merges[%zu]: '%.*s' is not in the vocabulary",
                         tok->name, i, (int)(n > 64 ? 64 : n), s);
    return PIO_STATUS_OK;
}

/*
 * model.merges: rank = position in the list. Each side and their
 * concatenation must be vocabulary tokens (HF refuses the file otherwise).
 */
static pio_status tok_load_merges(pio_tokenizer *tok, const cJSON *merges)
{
    pio_status st = PIO_STATUS_OK;
    char *cat = NULL;
    size_t cat_cap = 0;
    if (!merges || cJSON_IsNull(merges)) merges = NULL;
    else if (!cJSON_IsArray(merges))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: model.merges: expected an array", tok->name);
    size_t count = merges ? (size_t)cJSON_GetArraySize(merges) : 0;
    if ((st = tok_pairmap_init(&tok->merges, count))) return st;
    if (count > (size_t)INT32_MAX)
        return pio_error(PIO_STATUS_ERR_LIMIT, "%s: model.merges: too many merges", tok->name);
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, merges) {
        const char *a, *b;
        size_t na, nb;
        if (cJSON_IsString(it)) {
            a = it->valuestring;
            const char *sp = strchr(a, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                st = pio_error(PIO_STATUS_ERR_FORMAT,
                               "%s: model.merges[%zu]: '%.64s' is not two tokens separated by one space",
                               tok->name, i, a);
                goto out_free_cat;
            }
            na = (size_t)(sp - a);
            b = sp + 1;
            nb = strlen(b);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            a = cJSON_GetArrayItem(it, 0)->valuestring;
            b = cJSON_GetArrayItem(it, 1)->valuestring;
            na = strlen(a);
            nb = strlen(b);
        } else {
            st = pio_error(PIO_STATUS_ERR_FORMAT,
                           "%s: model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", tok->name, i);
            goto out_free_cat;
        }
        int32_t ia, ib, im;
        if ((st = tok_merge_part(tok, i, a, na, &ia))) goto out_free_cat;
        if ((st = tok_merge_part(tok, i, b, nb, &ib))) goto out_free_cat;
        if ((st = tok_buf_reserve(&cat, &cat_cap, na + nb + 1))) goto out_free_cat;
        memcpy(cat, a, na);
        memcpy(cat + na, b, nb);
        if ((st = tok_merge_part(tok, i, cat, na + nb, &im))) goto out_free_cat;
        tok_pairmap_put(&tok->merges, ia, ib, (int32_t)i, im);
        i++;
    }
out_free_cat:
    free(cat);
    return st;
}

static pio_status tok_load_model(pio_tokenizer *tok, const cJSON *model)
{
    pio_status st;
    const char *type, *unk, *s;
    bool b;
    if (!model || cJSON_IsNull(model))
        return pio_error(PIO_STATUS_ERR_MISSING, "%s: no \"model\" object", tok->name);
    if (!cJSON_IsObject(model))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: model: expected an object", tok->name);
    if ((st = tok_json_str(tok, model, "model", "type", false, &type))) return st;
    if (type && strcmp(type, "BPE"))
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: model.type '%.64s' is not supported (only BPE)",
                         tok->name, type);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!vocab)
        return pio_error(PIO_STATUS_ERR_MISSING, "%s: model.vocab: missing", tok->name);
    if ((st = tok_load_vocab(tok, vocab))) return st;
    if ((st = tok_load_merges(tok, cJSON_GetObjectItemCaseSensitive(model, "merges")))) return st;

    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: model.dropout: BPE dropout is not supported",
                         tok->name);
    const char *affix[] = { "continuing_subword_prefix", "end_of_word_suffix" };
    for (size_t i = 0; i < 2; i++) {
        if ((st = tok_json_str(tok, model, "model", affix[i], false, &s))) return st;
        if (s && *s)
            return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: model.%s '%.32s' is not supported",
                             tok->name, affix[i], s);
    }
    if ((st = tok_json_bool(tok, model, "model", "fuse_unk", false, &b))) return st;
    tok->fuse_unk = b;
    if ((st = tok_json_bool(tok, model, "model", "byte_fallback", false, &b))) return st;
    tok->byte_fallback = b;
    if ((st = tok_json_bool(tok, model, "model", "ignore_merges", false, &b))) return st;
    tok->ignore_merges = b;
    if ((st = tok_json_str(tok, model, "model", "unk_token", false, &unk))) return st;
    tok->unk_id = -1;
    if (unk) {
        tok->unk_id = tok_strmap_get(&tok->vocab, &tok->arena, unk, strlen(unk));
        if (tok->unk_id < 0)
            return pio_error(PIO_STATUS_ERR_FORMAT, "%s: model.unk_token '%.64s' is not in the vocabulary",
                             tok->name, unk);
    }
    return PIO_STATUS_OK;
}

/* ---- normalizer ---------------------------------------------------------- */

static pio_status tok_load_normalizer(pio_tokenizer *tok, const cJSON *n, const char *where, int depth)
{
    pio_status st;
    const char *type;
    if (!n || cJSON_IsNull(n)) return PIO_STATUS_OK;
    if (depth > 8)
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: %s: Sequence nested too deep", tok->name, where);
    if (!cJSON_IsObject(n))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: %s: expected an object or null", tok->name, where);
    if ((st = tok_json_str(tok, n, where, "type", true, &type))) return st;
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        if (!cJSON_IsArray(list))
            return pio_error(PIO_STATUS_ERR_FORMAT, "%s: %s.normalizers: expected an array", tok->name, where);
        const cJSON *it;
        int i = 0;
        cJSON_ArrayForEach(it, list) {
            char sub[128];
            snprintf(sub, sizeof sub, "%s.normalizers[%d]", where, i++);
            if ((st = tok_load_normalizer(tok, it, sub, depth + 1))) return st;
        }
        return PIO_STATUS_OK;
    }
    static const struct { const char *name; tok_norm norm; } kinds[] = {
        { "NFC", TOK_NORM_NFC }, { "NFD", TOK_NORM_NFD },
        { "NFKC", TOK_NORM_NFKC }, { "NFKD", TOK_NORM_NFKD },
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(type, kinds[i].name)) continue;
        tok_norm *p = realloc(tok->norms, (tok->n_norms + 1) * sizeof *p);
        if (!p) return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", tok->name);
        tok->norms = p;
        tok->norms[tok->n_norms++] = kinds[i].norm;
        return PIO_STATUS_OK;
    }
    return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: %s: normalizer type '%.64s' is not supported",
                     tok->name, where, type);
}

/*
 * NFC leaves a string alone when every code point is a starter (combining
 * class 0) with no canonical decomposition that cannot be the second half
 * of a canonical composition. Code points below U+0300 all qualify.
 */
static bool tok_nfc_quick(const char *str, size_t n)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0xCC) { /* lead bytes below 0xCC encode code points below U+0300 */
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = tok_utf8_decode(s + i, n - i, &cp);
        if (!k) return false;
        i += k;
        if (cp >= 0x1100 && cp <= 0x11FF) return false; /* Hangul jamo compose algorithmically */
        const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
        if (p->combining_class != 0) return false;
        if (p->decomp_seqindex != UINT16_MAX && p->decomp_type == 0) return false;
        if (p->comb_index != UINT16_MAX && p->comb_index >= 0x8000) return false;
    }
    return true;
}

pio_status tok_normalize(const pio_tokenizer *tok, const char *s, size_t n, char **out, size_t *out_len)
{
    char *cur = NULL;
    size_t cur_len = n;
    *out = NULL;
    *out_len = 0;
    for (size_t k = 0; k < tok->n_norms; k++) {
        const char *in = cur ? cur : s;
        if (tok->norms[k] == TOK_NORM_NFC && tok_nfc_quick(in, cur_len)) continue;
        if (tok->norms[k] != TOK_NORM_NFC) { /* ASCII is invariant under all four forms */
            bool ascii = true;
            for (size_t i = 0; i < cur_len && ascii; i++) ascii = !((uint8_t)in[i] & 0x80);
            if (ascii) continue;
        }
        int opt = UTF8PROC_STABLE;
        switch (tok->norms[k]) {
        case TOK_NORM_NFC: opt |= UTF8PROC_COMPOSE; break;
        case TOK_NORM_NFD: opt |= UTF8PROC_DECOMPOSE; break;
        case TOK_NORM_NFKC: opt |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
        case TOK_NORM_NFKD: opt |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
        }
        utf8proc_uint8_t *res = NULL;
        utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)in, (utf8proc_ssize_t)cur_len,
                                          &res, (utf8proc_option_t)opt);
        if (r < 0) {
            free(cur);
            return pio_error(r == UTF8PROC_ERROR_NOMEM ? PIO_STATUS_ERR_NOMEM : PIO_STATUS_ERR_UTF8,
                             "%s: normalizer: %s", tok->name, utf8proc_errmsg(r));
        }
        free(cur);
        cur = (char *)res;
        cur_len = (size_t)r;
    }
    *out = cur;
    *out_len = cur ? cur_len : 0;
    return PIO_STATUS_OK;
}

/* ---- added tokens -------------------------------------------------------- */

/*
 * added_tokens: [{id, content, single_word, lstrip, rstrip, normalized,
 * special}]. Contents of normalized tokens are matched in their normalized
 * form (as HF builds its normalized trie). Needs the normalizer loaded.
 */
static pio_status tok_load_added(pio_tokenizer *tok, const cJSON *list)
{
    pio_status st;
    if (!list || cJSON_IsNull(list)) return PIO_STATUS_OK;
    if (!cJSON_IsArray(list))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: added_tokens: expected an array", tok->name);
    size_t count = (size_t)cJSON_GetArraySize(list);
    tok->added = calloc(count ? count : 1, sizeof *tok->added);
    if (!tok->added) return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", tok->name);
    if ((st = tok_strmap_init(&tok->added_map, count))) return st;
    const cJSON *it;
    size_t i = 0;
    cJSON_ArrayForEach(it, list) {
        char where[64];
        snprintf(where, sizeof where, "added_tokens[%zu]", i++);
        if (!cJSON_IsObject(it))
            return pio_error(PIO_STATUS_ERR_FORMAT, "%s: %s: expected an object", tok->name, where);
        const char *content;
        tok_added a = { 0 };
        if ((st = tok_json_str(tok, it, where, "content", true, &content))) return st;
        const cJSON *idv = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!idv) return pio_error(PIO_STATUS_ERR_MISSING, "%s: %s.id: missing", tok->name, where);
        if ((st = tok_json_id(tok, idv, where, content, &a.id))) return st;
        if ((st = tok_json_bool(tok, it, where, "single_word", false, &a.single_word))) return st;
        if ((st = tok_json_bool(tok, it, where, "lstrip", false, &a.lstrip))) return st;
        if ((st = tok_json_bool(tok, it, where, "rstrip", false, &a.rstrip))) return st;
        if ((st = tok_json_bool(tok, it, where, "special", false, &a.special))) return st;
        if ((st = tok_json_bool(tok, it, where, "normalized", !a.special, &a.normalized))) return st;
        size_t n = strlen(content);
        if (n == 0) continue; /* HF ignores empty added tokens */
        if (pio_utf8_check(content, n) >= 0)
            return pio_error(PIO_STATUS_ERR_UTF8, "%s: %s.content: invalid UTF-8", tok->name, where);

        /* the token's own string, for id_to_token and decoding */
        uint32_t off;
        if ((st = tok_entries_fit(tok, a.id))) return st;
        if ((st = tok_arena_push(&tok->arena, content, n, &off))) return st;
        if ((st = tok_strmap_put(&tok->added_map, &tok->arena, off, (uint32_t)n, a.id))) return st;
        tok_entry *e = &tok->entries[a.id];
        e->off = off;
        e->len = (uint32_t)n;
        e->flags = TOK_ENTRY_PRESENT | TOK_ENTRY_ADDED | (a.special ? TOK_ENTRY_SPECIAL : 0);

        /* the string matched in text */
        a.off = off;
        a.len = (uint32_t)n;
        if (a.normalized && tok->n_norms) {
            char *norm;
            size_t nn;
            if ((st = tok_normalize(tok, content, n, &norm, &nn))) return st;
            if (norm) {
                st = tok_arena_push(&tok->arena, norm, nn, &a.off);
                a.len = (uint32_t)nn;
                free(norm);
                if (st) return st;
            }
        }
        if (a.len == 0) continue;
        /* HF gives a normalized token's normalized content back from id_to_token and decode */
        e = &tok->entries[a.id];
        e->off = a.off;
        e->len = a.len;
        size_t idx = tok->n_added++;
        tok->added[idx] = a;
        tok_trie *t = a.normalized ? &tok->trie_norm : &tok->trie_raw;
        if ((st = tok_trie_add(t, tok->arena.data + a.off, a.len, (int32_t)idx))) return st;
    }
    return PIO_STATUS_OK;
}

/* ---- pre-tokenizer ------------------------------------------------------- */

/*
 * Unicode White_Space, which \s means in Oniguruma (HF's regex engine).
 * PCRE2's \s with UCP also takes U+180E (MONGOLIAN VOWEL SEPARATOR, no longer
 * a space since Unicode 6.3), so "\u180e's" would split differently.
 */
#define TOK_SPACE_SET \
    "\\t\\n\\x0B\\f\\r\\x20\\x85\\xA0\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

/*
 * Copy of `pat` (malloc'ed) with \s spelled out as TOK_SPACE_SET, and \S
 * as its complement outside character classes (inside one, \S stays).
 * Escapes and [...] classes (with a leading ] or ^], and [:posix:] names)
 * are tracked so only real \s / \S escapes change. \Q...\E is copied as is.
 */
static char *tok_regex_spaces(const char *pat)
{
    size_t n = strlen(pat), cap = n * 8 + 64, o = 0;
    size_t set = sizeof TOK_SPACE_SET - 1;
    char *out = malloc(cap + (n + 1) * set);
    if (!out) return NULL;
    bool in_class = false, quoted = false;
    for (size_t i = 0; i < n;) {
        char c = pat[i];
        if (quoted) {
            if (c == '\\' && pat[i + 1] == 'E') { quoted = false; out[o++] = pat[i++]; }
            out[o++] = pat[i++];
            continue;
        }
        if (c == '\\' && i + 1 < n) {
            char e = pat[i + 1];
            if (e == 'Q') quoted = true;
            if (e == 's') {
                if (!in_class) out[o++] = '[';
                memcpy(out + o, TOK_SPACE_SET, set);
                o += set;
                if (!in_class) out[o++] = ']';
            } else if (e == 'S' && !in_class) {
                memcpy(out + o, "[^", 2);
                o += 2;
                memcpy(out + o, TOK_SPACE_SET, set);
                o += set;
                out[o++] = ']';
            } else {
                out[o++] = c;
                out[o++] = e;
            }
            i += 2;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            out[o++] = pat[i++];
            if (pat[i] == '^') out[o++] = pat[i++];
            if (pat[i] == ']') out[o++] = pat[i++]; /* a literal ] first in the class */
            continue;
        }
        if (in_class && c == '[' && pat[i + 1] == ':') { /* [:alpha:] */
            const char *end = strstr(pat + i + 2, ":]");
            if (end) {
                size_t k = (size_t)(end + 2 - (pat + i));
                memcpy(out + o, pat + i, k);
                o += k;
                i += k;
                continue;
            }
        }
        if (in_class && c == ']') in_class = false;
        out[o++] = pat[i++];
    }
    out[o] = '\0';
    return out;
}

static pio_status tok_compile(pio_tokenizer *tok, const char *where, const char *pattern,
                              bool literal, tok_pre *p)
{
    pcre2_code **out = &p->re;
    int err;
    PCRE2_SIZE erroff;
    uint32_t opt = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP;
    char *rewritten = literal ? NULL : tok_regex_spaces(pattern);
    if (!literal && !rewritten) return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", tok->name);
    *out = pcre2_compile((PCRE2_SPTR)(literal ? pattern : rewritten), PCRE2_ZERO_TERMINATED, opt, &err,
                         &erroff, NULL);
    free(rewritten);
    if (!*out && !literal) { /* report the error at its offset in the pattern as written */
        pcre2_code *orig = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opt, &err, &erroff, NULL);
        if (orig) {
            pcre2_code_free(orig);
            return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: %s: regex cannot be adapted to Oniguruma's \\s",
                             tok->name, where);
        }
    }
    if (!*out) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: %s: regex does not compile at offset %zu: %s",
                         tok->name, where, (size_t)erroff, (const char *)msg);
    }
    /* without JIT (unsupported CPU, SELinux) pcre2_match interprets */
    p->jit = pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE) == 0;
    return PIO_STATUS_OK;
}

/* Append a step; the caller fills it. */
static pio_status tok_pre_push(pio_tokenizer *tok, tok_pre **out)
{
    tok_pre *p = realloc(tok->pre, (tok->n_pre + 1) * sizeof *p);
    if (!p) return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", tok->name);
    tok->pre = p;
    *out = &p[tok->n_pre++];
    memset(*out, 0, sizeof **out);
    return PIO_STATUS_OK;
}

static pio_status tok_load_split(pio_tokenizer *tok, const cJSON *n, const char *where)
{
    pio_status st;
    const char *behavior, *pattern = NULL;
    bool literal = false, invert;
    char sub[160];
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(n, "pattern");
    if (!cJSON_IsObject(pat))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: %s.pattern: expected {\"Regex\": ...} or {\"String\": ...}",
                         tok->name, where);
    snprintf(sub, sizeof sub, "%s.pattern", where);
    if (cJSON_GetObjectItemCaseSensitive(pat, "Regex")) {
        if ((st = tok_json_str(tok, pat, sub, "Regex", true, &pattern))) return st;
        snprintf(sub, sizeof sub, "%s.pattern.Regex", where);
    } else {
        if ((st = tok_json_str(tok, pat, sub, "String", true, &pattern))) return st;
        snprintf(sub, sizeof sub, "%s.pattern.String", where);
        literal = true;
    }
    if ((st = tok_json_str(tok, n, where, "behavior", true, &behavior))) return st;
    if ((st = tok_json_bool(tok, n, where, "invert", false, &invert))) return st;
    static const struct { const char *name; tok_split_behavior b; } kinds[] = {
        { "Removed", TOK_SPLIT_REMOVED }, { "Isolated", TOK_SPLIT_ISOLATED },
        { "MergedWithPrevious", TOK_SPLIT_MERGED_WITH_PREVIOUS },
        { "MergedWithNext", TOK_SPLIT_MERGED_WITH_NEXT }, { "Contiguous", TOK_SPLIT_CONTIGUOUS },
    };
    size_t k = 0;
    while (k < sizeof kinds / sizeof kinds[0] && strcmp(behavior, kinds[k].name)) k++;
    if (k == sizeof kinds / sizeof kinds[0])
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: %s.behavior: unknown behavior '%.64s'", tok->name,
                         where, behavior);
    tok_pre *p;
    if ((st = tok_pre_push(tok, &p))) return st;
    p->kind = TOK_PRE_SPLIT;
    p->behavior = kinds[k].b;
    p->invert = invert;
    return tok_compile(tok, sub, pattern, literal, p);
}

static pio_status tok_load_pretok(pio_tokenizer *tok, const cJSON *n, const char *where, int depth)
{
    pio_status st;
    const char *type;
    if (!n || cJSON_IsNull(n)) return PIO_STATUS_OK;
    if (depth > 8)
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: %s: Sequence nested too deep", tok->name, where);
    if (!cJSON_IsObject(n))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: %s: expected an object or null", tok->name, where);
    if (tok->byte_level)
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED,
                         "%s: %s: pre-tokenizers after ByteLevel are not supported", tok->name, where);
    if ((st = tok_json_str(tok, n, where, "type", true, &type))) return st;
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "pretokenizers");
        if (!cJSON_IsArray(list))
            return pio_error(PIO_STATUS_ERR_FORMAT, "%s: %s.pretokenizers: expected an array", tok->name,
                             where);
        const cJSON *it;
        int i = 0;
        cJSON_ArrayForEach(it, list) {
            char sub[128];
            snprintf(sub, sizeof sub, "%s.pretokenizers[%d]", where, i++);
            if ((st = tok_load_pretok(tok, it, sub, depth + 1))) return st;
        }
        return PIO_STATUS_OK;
    }
    if (!strcmp(type, "Split")) return tok_load_split(tok, n, where);
    if (!strcmp(type, "ByteLevel")) {
        bool prefix, use_regex;
        if ((st = tok_json_bool(tok, n, where, "add_prefix_space", true, &prefix))) return st;
        if ((st = tok_json_bool(tok, n, where, "use_regex", true, &use_regex))) return st;
        tok_pre *p;
        if ((st = tok_pre_push(tok, &p))) return st;
        p->kind = TOK_PRE_BYTELEVEL;
        p->add_prefix_space = prefix;
        p->behavior = TOK_SPLIT_ISOLATED;
        tok->byte_level = true;
        if (use_regex) return tok_compile(tok, where, tok_gpt2_regex, false, p);
        return PIO_STATUS_OK;
    }
    return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: %s: pre-tokenizer type '%.64s' is not supported",
                     tok->name, where, type);
}

static pio_status tok_load_decoder(pio_tokenizer *tok, const cJSON *n)
{
    pio_status st;
    const char *type;
    if (!n || cJSON_IsNull(n)) { tok->decoder = TOK_DEC_NONE; return PIO_STATUS_OK; }
    if (!cJSON_IsObject(n))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: decoder: expected an object or null", tok->name);
    if ((st = tok_json_str(tok, n, "decoder", "type", true, &type))) return st;
    if (strcmp(type, "ByteLevel"))
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: decoder: type '%.64s' is not supported",
                         tok->name, type);
    tok->decoder = TOK_DEC_BYTELEVEL;
    return PIO_STATUS_OK;
}

/* ---- after parsing ------------------------------------------------------- */

/*
 * Fill what encode/decode need: the one-byte tokens of the byte alphabet,
 * each id's decoded bytes, and the special flag on vocabulary ids whose
 * string equals a special added token (HF skips by content).
 */
static pio_status tok_finish(pio_tokenizer *tok)
{
    pio_status st;
    for (int b = 0; b < 256; b++) {
        char u[4];
        size_t n = tok_utf8_encode(tok_byte_to_cp((uint8_t)b), u);
        tok->byte_id[b] = tok_strmap_get(&tok->vocab, &tok->arena, u, n);
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        tok->fallback_id[b] = tok->byte_fallback ? tok_strmap_get(&tok->vocab, &tok->arena, name, 6) : -1;
    }
    char *tmp = NULL;
    size_t tmp_cap = 0;
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        tok_entry *e = &tok->entries[id];
        if (!(e->flags & TOK_ENTRY_PRESENT)) continue;
        e->doff = e->off;
        e->dlen = e->len;
        if (tok->decoder != TOK_DEC_BYTELEVEL) continue;
        if ((st = tok_buf_reserve(&tmp, &tmp_cap, e->len + 1))) goto out_free_tmp;
        const uint8_t *s = (const uint8_t *)tok->arena.data + e->off;
        size_t i = 0, o = 0;
        bool all = true;
        while (i < e->len && all) {
            uint32_t cp;
            size_t k = tok_utf8_decode(s + i, e->len - i, &cp);
            int byte = k ? tok_cp_to_byte(cp) : -1;
            if (byte < 0) all = false;
            else { tmp[o++] = (char)byte; i += k; }
        }
        if (!all || (o == e->len && !memcmp(tmp, s, o))) continue; /* raw bytes, or identical */
        if ((st = tok_arena_push(&tok->arena, tmp, o, &e->doff))) goto out_free_tmp;
        e->dlen = (uint32_t)o;
    }
    for (size_t i = 0; i < tok->n_added; i++) {
        const tok_entry *e = &tok->entries[tok->added[i].id];
        if (!tok->added[i].special) continue;
        int32_t v = tok_strmap_get(&tok->vocab, &tok->arena, tok->arena.data + e->off, e->len);
        if (v >= 0) tok->entries[v].flags |= TOK_ENTRY_SPECIAL;
    }
    st = PIO_STATUS_OK;
out_free_tmp:
    free(tmp);
    return st;
}

/* ---- public -------------------------------------------------------------- */

pio_status pio_tokenizer_load_from_memory(const char *json, size_t len, const char *name,
                                          pio_tokenizer **out)
{
    pio_status st;
    const char *end = NULL;
    *out = NULL;
    if (!name) name = "tokenizer.json";
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t off = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        size_t line = 1, col = 1;
        for (size_t i = 0; i < off; i++) {
            if (json[i] == '\n') { line++; col = 1; } else col++;
        }
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: invalid JSON near byte %zu (line %zu, column %zu)",
                         name, off, line, col);
    }
    st = tok_load_json(root, name, out);
    cJSON_Delete(root);
    return st;
}

pio_status tok_load_json(const cJSON *root, const char *name, pio_tokenizer **out)
{
    pio_status st;
    *out = NULL;
    pio_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", name);
    tok->unk_id = -1;
    tok->name = strdup(name);
    if (!tok->name) { st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", name); goto out_free_tok; }
    if (!cJSON_IsObject(root)) {
        st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: top level is not a JSON object", name);
        goto out_free_tok;
    }
    if ((st = tok_load_model(tok, cJSON_GetObjectItemCaseSensitive(root, "model")))) goto out_free_tok;
    if ((st = tok_load_normalizer(tok, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), "normalizer", 0)))
        goto out_free_tok;
    if ((st = tok_load_added(tok, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")))) goto out_free_tok;
    if ((st = tok_load_pretok(tok, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), "pre_tokenizer", 0)))
        goto out_free_tok;
    if ((st = tok_load_decoder(tok, cJSON_GetObjectItemCaseSensitive(root, "decoder")))) goto out_free_tok;
    if ((st = tok_finish(tok))) goto out_free_tok;

    tok->mctx = pcre2_match_context_create(NULL);
    if (!tok->mctx) { st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", name); goto out_free_tok; }
    pcre2_set_match_limit(tok->mctx, TOK_MATCH_LIMIT);
    pcre2_set_depth_limit(tok->mctx, TOK_DEPTH_LIMIT);
    tok->cache = calloc(TOK_CACHE_SLOTS, sizeof *tok->cache);
    if (!tok->cache) { st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", name); goto out_free_tok; }
    if (pthread_mutex_init(&tok->cache_lock, NULL)) {
        st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: cannot create a mutex", name);
        goto out_free_tok;
    }
    tok->cache_lock_ok = true;
    *out = tok;
    return PIO_STATUS_OK;

out_free_tok:
    pio_tokenizer_free(tok);
    return st;
}

/* Reads `path` (a file, or a directory holding tokenizer.json) into memory. */
pio_status pio_tokenizer_load(const char *path, pio_tokenizer **out)
{
    pio_status st;
    struct stat sb;
    char *file = NULL, *buf = NULL;
    FILE *f = NULL;
    *out = NULL;
    if (stat(path, &sb) != 0)
        return pio_error(PIO_STATUS_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        size_t n = strlen(path) + sizeof "/tokenizer.json";
        file = malloc(n);
        if (!file) return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", path);
        snprintf(file, n, "%s/tokenizer.json", path);
    } else {
        file = strdup(path);
        if (!file) return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", path);
    }
    f = fopen(file, "rb");
    if (!f) { st = pio_error(PIO_STATUS_ERR_IO, "%s: %s", file, strerror(errno)); goto out_free_file; }
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = pio_error(PIO_STATUS_ERR_IO, "%s: not a regular file", file);
        goto out_close;
    }
    if (pio_file_is_gguf(file)) { /* a GGUF model: its tokenizer.ggml.* metadata */
        pio_gguf *g;
        if ((st = pio_gguf_open(file, &g)) == PIO_STATUS_OK) {
            st = pio_tokenizer_from_gguf(g, out);
            pio_gguf_free(g);
        }
        goto out_close;
    }
    size_t len = (size_t)sb.st_size;
    buf = malloc(len + 1);
    if (!buf) { st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory (%zu bytes)", file, len); goto out_close; }
    if (fread(buf, 1, len, f) != len) {
        st = pio_error(PIO_STATUS_ERR_IO, "%s: read failed", file);
        goto out_free_buf;
    }
    buf[len] = '\0';
    st = pio_tokenizer_load_from_memory(buf, len, file, out);
out_free_buf:
    free(buf);
out_close:
    fclose(f);
out_free_file:
    free(file);
    return st;
}

void pio_tokenizer_free(pio_tokenizer *tok)
{
    if (!tok) return;
    if (tok->cache_lock_ok) pthread_mutex_destroy(&tok->cache_lock);
    free(tok->cache);
    if (tok->mctx) pcre2_match_context_free(tok->mctx);
    for (size_t i = 0; i < tok->n_pre; i++) pcre2_code_free(tok->pre[i].re);
    free(tok->pre);
    free(tok->norms);
    tok_trie_free(&tok->trie_raw);
    tok_trie_free(&tok->trie_norm);
    tok_strmap_free(&tok->added_map);
    free(tok->added);
    free(tok->entries);
    tok_pairmap_free(&tok->merges);
    tok_strmap_free(&tok->vocab);
    free(tok->arena.data);
    free(tok->name);
    free(tok);
}
