/*
 * tok_decode.c - ids to text (one-shot and streaming) and id/token lookups.
 *
 * The ByteLevel decoder maps each token back to bytes (tokens with a
 * character outside the byte alphabet keep their own UTF-8), concatenates,
 * and converts to UTF-8 lossily: these bytes are precomputed per id at load
 * (tok_entry.doff/dlen). Without a decoder, HF joins tokens with spaces.
 */
#include "tok_int.h"

#include <stdlib.h>
#include <string.h>

int32_t pio_tokenizer_n_vocab(const pio_tokenizer *tok) { return tok->n_vocab; }

int32_t pio_tokenizer_token_to_id(const pio_tokenizer *tok, const char *token)
{
    size_t n = strlen(token);
    int32_t id = tok_strmap_get(&tok->added_map, &tok->arena, token, n);
    return id >= 0 ? id : tok_strmap_get(&tok->vocab, &tok->arena, token, n);
}

const char *pio_tokenizer_id_to_token(const pio_tokenizer *tok, int32_t id)
{
    if (id < 0 || id >= tok->n_vocab || !(tok->entries[id].flags & TOK_ENTRY_PRESENT)) return NULL;
    return tok->arena.data + tok->entries[id].off;
}

bool pio_tokenizer_is_special(const pio_tokenizer *tok, int32_t id)
{
    return id >= 0 && id < tok->n_vocab && (tok->entries[id].flags & TOK_ENTRY_SPECIAL);
}

const char *pio_tokenizer_token_bytes(const pio_tokenizer *tok, int32_t id, size_t *len)
{
    *len = 0;
    if (id < 0 || id >= tok->n_vocab || !(tok->entries[id].flags & TOK_ENTRY_PRESENT)) return NULL;
    *len = tok->entries[id].dlen;
    return tok->arena.data + tok->entries[id].doff;
}

/* The entry of id, or an error naming it. */
static pio_status tok_entry_of(const pio_tokenizer *tok, int32_t id, const tok_entry **out)
{
    if (id < 0 || id >= tok->n_vocab || !(tok->entries[id].flags & TOK_ENTRY_PRESENT))
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "%s: token id %d is not in the vocabulary (0..%d)",
                         tok->name, (int)id, (int)tok->n_vocab - 1);
    *out = &tok->entries[id];
    return PIO_STATUS_OK;
}

pio_status pio_tokenizer_decode(const pio_tokenizer *tok, const int32_t *ids, size_t n_ids,
                                bool skip_special, char **text, size_t *len)
{
    pio_status st;
    char *raw = NULL, *out = NULL;
    size_t raw_len = 0, raw_cap = 0, out_len = 0, out_cap = 0, used;
    bool first = true;
    *text = NULL;
    *len = 0;
    for (size_t i = 0; i < n_ids; i++) {
        const tok_entry *e;
        if ((st = tok_entry_of(tok, ids[i], &e))) goto out_free;
        if (skip_special && (e->flags & TOK_ENTRY_SPECIAL)) continue;
        bool space = tok->decoder == TOK_DEC_NONE && !first;
        if ((st = tok_buf_reserve(&raw, &raw_cap, raw_len + e->dlen + 2))) goto out_free;
        if (space) raw[raw_len++] = ' ';
        memcpy(raw + raw_len, tok->arena.data + e->doff, e->dlen);
        raw_len += e->dlen;
        first = false;
    }
    if ((st = tok_buf_reserve(&out, &out_cap, 1))) goto out_free;
    out[0] = '\0';
    if ((st = tok_utf8_lossy((const uint8_t *)raw, raw_len, true, &used, &out, &out_len, &out_cap)))
        goto out_free;
    *text = out;
    *len = out_len;
    out = NULL;
out_free:
    free(out);
    free(raw);
    return st;
}

/* ---- streaming ----------------------------------------------------------- */

struct pio_detok {
    const pio_tokenizer *tok;
    bool skip_special;
    bool first;             /* no token emitted yet (decoder none: no leading space) */
    uint8_t pending[8];     /* bytes of an incomplete character */
    size_t n_pending;
    char *out;              /* what the last push/flush returned */
    size_t out_len, out_cap;
    uint8_t *in;            /* pending bytes + this token's bytes */
    size_t in_cap;
};

pio_status pio_detok_new(const pio_tokenizer *tok, bool skip_special, pio_detok **out)
{
    pio_detok *d = calloc(1, sizeof *d);
    *out = NULL;
    if (!d) return pio_error(PIO_STATUS_ERR_NOMEM, "tokenizer: out of memory (stream decoder)");
    d->tok = tok;
    d->skip_special = skip_special;
    d->first = true;
    *out = d;
    return PIO_STATUS_OK;
}

void pio_detok_free(pio_detok *d)
{
    if (!d) return;
    free(d->out);
    free(d->in);
    free(d);
}

void pio_detok_reset(pio_detok *d)
{
    d->n_pending = 0;
    d->first = true;
    d->out_len = 0;
}

/*
 * Convert pending bytes plus s[0..n) to UTF-8 in d->out; an incomplete
 * trailing character stays pending unless `final`. Lossy conversion is
 * prefix-stable, so the concatenated outputs equal one-shot decoding.
 */
static pio_status tok_detok_convert(pio_detok *d, const char *s, size_t n, bool final,
                                    const char **text, size_t *len)
{
    pio_status st;
    size_t total = d->n_pending + n, used;
    if ((st = tok_buf_reserve((char **)&d->in, &d->in_cap, total + 1))) return st;
    memcpy(d->in, d->pending, d->n_pending);
    if (n) memcpy(d->in + d->n_pending, s, n);
    d->out_len = 0;
    if ((st = tok_buf_reserve(&d->out, &d->out_cap, 1))) return st;
    d->out[0] = '\0';
    if ((st = tok_utf8_lossy(d->in, total, final, &used, &d->out, &d->out_len, &d->out_cap))) return st;
    d->n_pending = total - used; /* at most 3: a well-formed but incomplete prefix */
    memcpy(d->pending, d->in + used, d->n_pending);
    *text = d->out;
    *len = d->out_len;
    return PIO_STATUS_OK;
}

pio_status pio_detok_push(pio_detok *d, int32_t id, const char **text, size_t *len)
{
    const pio_tokenizer *tok = d->tok;
    const tok_entry *e;
    pio_status st;
    *text = "";
    *len = 0;
    if ((st = tok_entry_of(tok, id, &e))) return st;
    if (d->skip_special && (e->flags & TOK_ENTRY_SPECIAL)) return PIO_STATUS_OK;
    const char *s = tok->arena.data + e->doff;
    if (tok->decoder == TOK_DEC_NONE && !d->first) {
        /* the joining space, then the token */
        char *tmp = malloc(e->dlen + 1);
        if (!tmp) return pio_error(PIO_STATUS_ERR_NOMEM, "tokenizer: out of memory");
        tmp[0] = ' ';
        memcpy(tmp + 1, s, e->dlen);
        st = tok_detok_convert(d, tmp, e->dlen + 1, false, text, len);
        free(tmp);
    } else {
        st = tok_detok_convert(d, s, e->dlen, false, text, len);
    }
    d->first = false;
    return st;
}

pio_status pio_detok_flush(pio_detok *d, const char **text, size_t *len)
{
    *text = "";
    *len = 0;
    pio_status st = tok_detok_convert(d, NULL, 0, true, text, len);
    d->first = true;
    return st;
}
