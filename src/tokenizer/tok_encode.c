/*
 * tok_encode.c - text to ids: added-token matching, normalization,
 * pre-tokenization (regex splits, byte-level), and the BPE merge loop.
 *
 * Everything streams: each piece found by one stage is handed to the next
 * stage before the following piece is looked for, so memory stays
 * proportional to the longest piece, not to the text.
 */
#include "tok_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- added-token trie ---------------------------------------------------- */

/* Append a childless node for `byte`; *out gets its index. */
static pio_status tok_trie_node_new(tok_trie *t, uint8_t byte, int32_t *out)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        tok_trie_node *p = realloc(t->nodes, cap * sizeof *p);
        if (!p) return pio_error(PIO_STATUS_ERR_NOMEM, "tokenizer: out of memory (added-token trie)");
        t->nodes = p;
        t->cap = cap;
    }
    t->nodes[t->n] = (tok_trie_node){ .child = -1, .sibling = -1, .added = -1, .byte = byte };
    *out = (int32_t)t->n++;
    return PIO_STATUS_OK;
}

/* Add s[0..n) (n > 0) ending in added token `added_index`; a later duplicate wins. */
pio_status tok_trie_add(tok_trie *t, const char *s, size_t n, int32_t added_index)
{
    pio_status st;
    int32_t node, root;
    if (!t->n && (st = tok_trie_node_new(t, 0, &root))) return st;
    node = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        int32_t c = t->nodes[node].child;
        while (c >= 0 && t->nodes[c].byte != b) c = t->nodes[c].sibling;
        if (c < 0) {
            if ((st = tok_trie_node_new(t, b, &c))) return st;
            t->nodes[c].sibling = t->nodes[node].child;
            t->nodes[node].child = c;
        }
        node = c;
    }
    t->nodes[node].added = added_index;
    t->first[(uint8_t)s[0] >> 3] |= (uint8_t)(1u << ((uint8_t)s[0] & 7));
    return PIO_STATUS_OK;
}

void tok_trie_free(tok_trie *t)
{
    free(t->nodes);
    memset(t, 0, sizeof *t);
}

/* Longest content starting at s[0]: its added index (or -1); *len its length. */
static int32_t tok_trie_longest(const tok_trie *t, const uint8_t *s, size_t n, size_t *len)
{
    int32_t node = 0, best = -1;
    for (size_t i = 0; i < n; i++) {
        int32_t c = t->nodes[node].child;
        while (c >= 0 && t->nodes[c].byte != s[i]) c = t->nodes[c].sibling;
        if (c < 0) break;
        node = c;
        if (t->nodes[node].added >= 0) {
            best = t->nodes[node].added;
            *len = i + 1;
        }
    }
    return best;
}

/* ---- encoder state (one per encode call) -------------------------------- */

typedef struct tok_sym {
    int32_t id;             /* -1 once merged into its left neighbour */
    int32_t prev, next;     /* neighbours, -1 at the ends */
    int32_t rank;           /* rank of the merge (this, next); INT32_MAX none */
    int32_t merged;         /* id that merge produces */
} tok_sym;

typedef struct tok_heap_ent {
    int32_t rank, pos, merged;
} tok_heap_ent;

typedef struct tok_enc {
    const pio_tokenizer *tok;
    int32_t *ids;
    size_t n_ids, cap_ids;
    pcre2_match_data *md;
    tok_sym *syms;
    size_t cap_syms;
    tok_heap_ent *heap;
    size_t cap_heap;
    char *lit;              /* a word in vocab form (ignore_merges lookups) */
    size_t cap_lit;
} tok_enc;

/* Append one id to the output (amortized O(1)). */
static pio_status tok_enc_push(tok_enc *e, int32_t id)
{
    if (e->n_ids == e->cap_ids) {
        size_t cap = e->cap_ids ? e->cap_ids * 2 : 256;
        int32_t *p = realloc(e->ids, cap * sizeof *p);
        if (!p) return pio_error(PIO_STATUS_ERR_NOMEM, "tokenizer: out of memory (%zu ids)", cap);
        e->ids = p;
        e->cap_ids = cap;
    }
    e->ids[e->n_ids++] = id;
    return PIO_STATUS_OK;
}

/* ---- BPE ----------------------------------------------------------------- */

/* Room for n symbols in the scratch array (kept across words of one call). */
static pio_status tok_syms_reserve(tok_enc *e, size_t n)
{
    if (n <= e->cap_syms) return PIO_STATUS_OK;
    size_t cap = e->cap_syms ? e->cap_syms : 64;
    while (cap < n) cap *= 2;
    tok_sym *p = realloc(e->syms, cap * sizeof *p);
    if (!p) return pio_error(PIO_STATUS_ERR_NOMEM, "tokenizer: out of memory (%zu symbols)", cap);
    e->syms = p;
    e->cap_syms = cap;
    return PIO_STATUS_OK;
}

/* Rank and result of merging symbol i with its right neighbour. */
static void tok_sym_rank(const pio_tokenizer *tok, tok_sym *s, int32_t i)
{
    if (i < 0) return;
    s[i].rank = INT32_MAX;
    if (s[i].next < 0) return;
    int32_t merged = 0, r = tok_pairmap_get(&tok->merges, s[i].id, s[s[i].next].id, &merged);
    if (r >= 0) {
        s[i].rank = r;
        s[i].merged = merged;
    }
}

/* Merge symbol i with its right neighbour into id `merged`. */
static void tok_sym_merge(tok_sym *s, int32_t i, int32_t merged)
{
    int32_t j = s[i].next;
    s[i].id = merged;
    s[i].next = s[j].next;
    if (s[j].next >= 0) s[s[j].next].prev = i;
    s[j].id = -1;
}

/*
 * Short words: repeatedly merge the pair of lowest rank, leftmost first.
 * O(n^2) comparisons, but only two merge-map lookups per merge.
 */
static void tok_bpe_small(const pio_tokenizer *tok, tok_sym *s, int32_t n)
{
    for (int32_t i = 0; i < n; i++) tok_sym_rank(tok, s, i);
    for (;;) {
        int32_t best = -1, best_rank = INT32_MAX;
        for (int32_t i = 0; i >= 0; i = s[i].next)
            if (s[i].rank < best_rank) { best_rank = s[i].rank; best = i; }
        if (best < 0) break;
        tok_sym_merge(s, best, s[best].merged);
        tok_sym_rank(tok, s, best);
        tok_sym_rank(tok, s, s[best].prev);
    }
}

/* Heap order: lower rank first, then the leftmost position (HF's Merge ordering). */
static bool tok_heap_less(const tok_heap_ent *a, const tok_heap_ent *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

/* Push x on the binary min-heap e->heap holding *n entries. O(log n). */
static pio_status tok_heap_push(tok_enc *e, size_t *n, tok_heap_ent x)
{
    if (*n == e->cap_heap) {
        size_t cap = e->cap_heap ? e->cap_heap * 2 : 256;
        tok_heap_ent *p = realloc(e->heap, cap * sizeof *p);
        if (!p) return pio_error(PIO_STATUS_ERR_NOMEM, "tokenizer: out of memory (merge queue)");
        e->heap = p;
        e->cap_heap = cap;
    }
    tok_heap_ent *h = e->heap;
    size_t i = (*n)++;
    while (i > 0 && tok_heap_less(&x, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = x;
    return PIO_STATUS_OK;
}

/* Remove and return the least entry (*n > 0). O(log n). */
static tok_heap_ent tok_heap_pop(tok_heap_ent *h, size_t *n)
{
    tok_heap_ent top = h[0], x = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && tok_heap_less(&h[c + 1], &h[c])) c++;
        if (!tok_heap_less(&h[c], &x)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = x;
    return top;
}

/*
 * Long words: the same order of merges with a priority queue on (rank,
 * position), as HF's word.merge_all; stale entries are skipped. O(n log n).
 */
static pio_status tok_bpe_large(tok_enc *e, tok_sym *s, int32_t n)
{
    const pio_tokenizer *tok = e->tok;
    pio_status st;
    size_t hn = 0;
    for (int32_t i = 0; i < n; i++) {
        tok_sym_rank(tok, s, i);
        if (s[i].rank != INT32_MAX &&
            (st = tok_heap_push(e, &hn, (tok_heap_ent){ s[i].rank, i, s[i].merged }))) return st;
    }
    while (hn) {
        tok_heap_ent top = tok_heap_pop(e->heap, &hn);
        int32_t i = top.pos;
        if (s[i].id < 0 || s[i].next < 0) continue;
        int32_t merged = 0, r = tok_pairmap_get(&tok->merges, s[i].id, s[s[i].next].id, &merged);
        if (r != top.rank || merged != top.merged) continue; /* stale */
        tok_sym_merge(s, i, merged);
        int32_t p = s[i].prev;
        if (p >= 0) {
            tok_sym_rank(tok, s, p);
            if (s[p].rank != INT32_MAX &&
                (st = tok_heap_push(e, &hn, (tok_heap_ent){ s[p].rank, p, s[p].merged }))) return st;
        }
        tok_sym_rank(tok, s, i);
        if (s[i].rank != INT32_MAX &&
            (st = tok_heap_push(e, &hn, (tok_heap_ent){ s[i].rank, i, s[i].merged }))) return st;
    }
    return PIO_STATUS_OK;
}

/* Append symbol `id` to the word being built. */
static void tok_sym_add(tok_sym *s, int32_t *n, int32_t id)
{
    s[*n] = (tok_sym){ .id = id, .prev = *n - 1, .next = -1, .rank = INT32_MAX };
    if (*n > 0) s[*n - 1].next = *n;
    (*n)++;
}

/*
 * A character (vocab form lit[0..n)) with no token of its own: its
 * "<0xXX>" byte tokens under byte_fallback, else unk (one per run when
 * fuse_unk), else nothing, as HF's BPE does.
 */
static void tok_sym_missing(const pio_tokenizer *tok, tok_sym *s, int32_t *ns, const uint8_t *lit,
                            size_t n, bool *in_unk)
{
    if (tok->byte_fallback) {
        bool all = true;
        for (size_t i = 0; i < n && all; i++) all = tok->fallback_id[lit[i]] >= 0;
        if (all) {
            for (size_t i = 0; i < n; i++) tok_sym_add(s, ns, tok->fallback_id[lit[i]]);
            *in_unk = false;
            return;
        }
    }
    if (tok->unk_id < 0) return;
    if (!(tok->fuse_unk && *in_unk)) tok_sym_add(s, ns, tok->unk_id);
    *in_unk = true;
}

/* Cache slot for word w (n <= TOK_CACHE_WORD bytes) with hash h. */
static tok_cache_slot *tok_cache_slot_of(const pio_tokenizer *tok, uint32_t h)
{
    return &tok->cache[h & (TOK_CACHE_SLOTS - 1)];
}

/*
 * BPE-encode one pre-tokenized word w[0..n) (raw bytes; mapped through the
 * byte alphabet when the tokenizer is byte-level) and append its ids.
 */
static pio_status tok_bpe_word(tok_enc *e, const uint8_t *w, size_t n)
{
    const pio_tokenizer *tok = e->tok;
    pio_status st;
    uint32_t h = 0;
    if (n == 0) return PIO_STATUS_OK;

    if (n <= TOK_CACHE_WORD) {
        int32_t ids[TOK_CACHE_IDS];
        int nids = -1;
        h = tok_hash_bytes(w, n);
        tok_cache_slot *c = tok_cache_slot_of(tok, h);
        pthread_mutex_lock((pthread_mutex_t *)&tok->cache_lock);
        if (c->hash == h && c->wlen == n && !memcmp(c->word, w, n)) {
            nids = c->nids;
            memcpy(ids, c->ids, (size_t)nids * sizeof ids[0]);
        }
        pthread_mutex_unlock((pthread_mutex_t *)&tok->cache_lock);
        for (int i = 0; i < nids; i++)
            if ((st = tok_enc_push(e, ids[i]))) return st;
        if (nids >= 0) return PIO_STATUS_OK;
    }

    if (tok->ignore_merges) {
        const char *lit = (const char *)w;
        size_t ln = n;
        if (tok->byte_level) {
            if ((st = tok_buf_reserve(&e->lit, &e->cap_lit, 2 * n + 1))) return st;
            ln = 0;
            for (size_t i = 0; i < n; i++) ln += tok_utf8_encode(tok_byte_to_cp(w[i]), e->lit + ln);
            lit = e->lit;
        }
        int32_t id = tok_strmap_get(&tok->vocab, &tok->arena, lit, ln);
        if (id >= 0) return tok_enc_push(e, id);
    }

    /*
     * At most one symbol per byte: one per byte (byte-level) or per character,
     * and byte_fallback gives one per byte of the character's vocab form, which
     * in byte-level mode is two bytes for the non-printable bytes.
     */
    if ((st = tok_syms_reserve(e, tok->byte_level && tok->byte_fallback ? 2 * n : n))) return st;
    tok_sym *s = e->syms;
    int32_t ns = 0;
    bool in_unk = false;
    for (size_t i = 0; i < n;) {
        if (tok->byte_level) {
            int32_t id = tok->byte_id[w[i]];
            if (id >= 0) {
                tok_sym_add(s, &ns, id);
                in_unk = false;
            } else {
                char u[4];
                size_t k = tok_utf8_encode(tok_byte_to_cp(w[i]), u);
                tok_sym_missing(tok, s, &ns, (const uint8_t *)u, k, &in_unk);
            }
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = tok_utf8_decode(w + i, n - i, &cp);
        if (!k) k = 1; /* not reached: text was checked */
        int32_t id = tok_strmap_get(&tok->vocab, &tok->arena, w + i, k);
        if (id >= 0) {
            tok_sym_add(s, &ns, id);
            in_unk = false;
        } else {
            tok_sym_missing(tok, s, &ns, w + i, k, &in_unk);
        }
        i += k;
    }
    if (ns > 1) {
        if (ns <= 48) tok_bpe_small(tok, s, ns);
        else if ((st = tok_bpe_large(e, s, ns))) return st;
    }

    size_t first = e->n_ids;
    for (int32_t i = ns ? 0 : -1; i >= 0; i = s[i].next)
        if ((st = tok_enc_push(e, s[i].id))) return st;

    size_t nids = e->n_ids - first;
    if (n <= TOK_CACHE_WORD && nids <= TOK_CACHE_IDS) {
        tok_cache_slot *c = tok_cache_slot_of(tok, h);
        pthread_mutex_lock((pthread_mutex_t *)&tok->cache_lock);
        c->hash = h;
        c->wlen = (uint8_t)n;
        c->nids = (uint8_t)nids;
        memcpy(c->word, w, n);
        if (nids) memcpy(c->ids, e->ids + first, nids * sizeof(int32_t));
        pthread_mutex_unlock((pthread_mutex_t *)&tok->cache_lock);
    }
    return PIO_STATUS_OK;
}

/* ---- pre-tokenization ---------------------------------------------------- */

static pio_status tok_pre_run(tok_enc *e, size_t step, const char *s, size_t n);

/* Hand the sub-piece s[0..n) to the next step (empty pieces vanish, as in HF). */
static pio_status tok_pre_emit(tok_enc *e, size_t step, const char *s, size_t n)
{
    if (n == 0) return PIO_STATUS_OK;
    return tok_pre_run(e, step + 1, s, n);
}

/* The combining state of one Split step over one piece. */
typedef struct tok_split_state {
    size_t pa, pb;          /* the piece waiting to be emitted */
    bool have;              /* there is one */
    bool pm;                /* it is a match (MergedWithNext) */
    bool prev_m;            /* the previous part was a match */
} tok_split_state;

/*
 * Feed part s[a..b) (a match when m) and emit what HF's
 * SplitDelimiterBehavior makes of the parts so far.
 */
static pio_status tok_split_feed(tok_enc *e, size_t step, tok_split_state *z, const char *s, size_t a,
                                 size_t b, bool m)
{
    const tok_pre *p = &e->tok->pre[step];
    pio_status st = PIO_STATUS_OK;
    if (p->invert) m = !m;
    switch (p->behavior) {
    case TOK_SPLIT_REMOVED:
        if (!m) st = tok_pre_emit(e, step, s + a, b - a);
        break;
    case TOK_SPLIT_ISOLATED:
        st = tok_pre_emit(e, step, s + a, b - a);
        break;
    case TOK_SPLIT_MERGED_WITH_PREVIOUS: /* a match joins the part before it, if a gap */
    case TOK_SPLIT_CONTIGUOUS:           /* runs of the same kind join */
        if (z->have && (p->behavior == TOK_SPLIT_CONTIGUOUS ? m == z->prev_m : m && !z->prev_m)) {
            z->pb = b;
        } else {
            if (z->have) st = tok_pre_emit(e, step, s + z->pa, z->pb - z->pa);
            z->pa = a;
            z->pb = b;
            z->have = true;
        }
        break;
    case TOK_SPLIT_MERGED_WITH_NEXT: /* a match joins the part after it, if a gap */
        if (z->have && z->pm && !m) {
            st = tok_pre_emit(e, step, s + z->pa, b - z->pa);
            z->have = false;
        } else {
            if (z->have && (st = tok_pre_emit(e, step, s + z->pa, z->pb - z->pa))) return st;
            z->have = false;
            if (m) {
                z->pa = a;
                z->pb = b;
                z->pm = true;
                z->have = true;
            } else {
                st = tok_pre_emit(e, step, s + a, b - a);
            }
        }
        break;
    }
    z->prev_m = m;
    return st;
}

/*
 * Split s[0..n) at the matches of step `step`'s regex, as HF's
 * NormalizedString::split. Empty matches are skipped.
 */
static pio_status tok_split(tok_enc *e, size_t step, const char *s, size_t n)
{
    const tok_pre *p = &e->tok->pre[step];
    pio_status st;
    tok_split_state z = { 0 };
    size_t pos = 0, prev = 0;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
    for (;;) {
        int rc = PCRE2_ERROR_NOMATCH;
        while (pos <= n) {
            rc = p->jit ? pcre2_jit_match(p->re, (PCRE2_SPTR)s, n, pos, 0, e->md, e->tok->mctx)
                        : pcre2_match(p->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, e->md,
                                      e->tok->mctx);
            if (rc < 0 || (ov[0] >= pos && ov[1] > ov[0])) break;
            /* an empty match (or one reaching back before pos via \K): look again one character further */
            pos = (ov[0] > pos ? ov[0] : pos) + 1;
            while (pos < n && ((uint8_t)s[pos] & 0xC0) == 0x80) pos++;
            rc = PCRE2_ERROR_NOMATCH;
        }
        if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return pio_error(PIO_STATUS_ERR_LIMIT, "%s: pre-tokenizer regex failed: %s", e->tok->name,
                             (const char *)msg);
        }
        if (rc < 0) break;
        size_t ms = ov[0], me = ov[1];
        if (ms > prev && (st = tok_split_feed(e, step, &z, s, prev, ms, false))) return st;
        if ((st = tok_split_feed(e, step, &z, s, ms, me, true))) return st;
        prev = pos = me;
    }
    if (prev < n && (st = tok_split_feed(e, step, &z, s, prev, n, false))) return st;
    if (z.have && (st = tok_pre_emit(e, step, s + z.pa, z.pb - z.pa))) return st;
    return PIO_STATUS_OK;
}

/* Run pre-tokenizer step `step` (and the ones after it) on s[0..n); past the last, BPE. */
static pio_status tok_pre_run(tok_enc *e, size_t step, const char *s, size_t n)
{
    const pio_tokenizer *tok = e->tok;
    if (step == tok->n_pre) return tok_bpe_word(e, (const uint8_t *)s, n);
    const tok_pre *p = &tok->pre[step];
    if (p->kind == TOK_PRE_SPLIT) return tok_split(e, step, s, n);

    /* ByteLevel: optional prefix space, optional GPT-2 split; the byte mapping happens in BPE */
    if (p->add_prefix_space && s[0] != ' ') {
        char *sp = malloc(n + 1);
        if (!sp) return pio_error(PIO_STATUS_ERR_NOMEM, "tokenizer: out of memory");
        sp[0] = ' ';
        memcpy(sp + 1, s, n);
        pio_status st = p->re ? tok_split(e, step, sp, n + 1) : tok_pre_emit(e, step, sp, n + 1);
        free(sp);
        return st;
    }
    return p->re ? tok_split(e, step, s, n) : tok_pre_emit(e, step, s, n);
}

/* ---- added tokens -------------------------------------------------------- */

/* Code point ending just before s[i] (s valid UTF-8, i > 0). */
static uint32_t tok_cp_before(const uint8_t *s, size_t i)
{
    size_t j = i - 1;
    while (j > 0 && i - j < 4 && (s[j] & 0xC0) == 0x80) j--;
    uint32_t cp = 0;
    tok_utf8_decode(s + j, i - j, &cp);
    return cp;
}

typedef pio_status (*tok_text_fn)(tok_enc *e, const char *s, size_t n);

/*
 * Find added tokens of trie t in s[0..n) leftmost-longest, as HF's
 * AddedVocabulary::find_matches: single_word matches need non-word
 * characters around them; lstrip/rstrip take the whitespace beside the
 * token into it. Text between tokens goes to `text`, token ids to the output.
 */
static pio_status tok_added_split(tok_enc *e, const tok_trie *t, const char *str, size_t n,
                                  tok_text_fn text)
{
    const pio_tokenizer *tok = e->tok;
    const uint8_t *s = (const uint8_t *)str;
    pio_status st;
    size_t start_offset = 0, pos = 0;
    if (t->n == 0) return text(e, str, n);
    while (pos < n) {
        if (!(t->first[s[pos] >> 3] & (1u << (s[pos] & 7)))) { pos++; continue; }
        size_t len = 0;
        int32_t ai = tok_trie_longest(t, s + pos, n - pos, &len);
        if (ai < 0) { pos++; continue; }
        size_t start = pos, stop = pos + len;
        const tok_added *a = &tok->added[ai];
        pos = stop;
        if (a->single_word) {
            uint32_t cp;
            if (start > 0 && tok_is_word(tok_cp_before(s, start))) continue;
            if (stop < n && tok_utf8_decode(s + stop, n - stop, &cp) && tok_is_word(cp)) continue;
        }
        if (a->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t j = ns - 1;
                while (j > 0 && (s[j] & 0xC0) == 0x80) j--;
                uint32_t cp = 0;
                tok_utf8_decode(s + j, ns - j, &cp);
                if (!tok_is_space(cp)) break;
                ns = j;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip) {
            uint32_t cp;
            size_t k;
            while (stop < n && (k = tok_utf8_decode(s + stop, n - stop, &cp)) && tok_is_space(cp)) stop += k;
        }
        if (start_offset < start && (st = text(e, str + start_offset, start - start_offset))) return st;
        if ((st = tok_enc_push(e, a->id))) return st;
        if (stop > start_offset) start_offset = stop;
    }
    if (start_offset < n) return text(e, str + start_offset, n - start_offset);
    return PIO_STATUS_OK;
}

/* Normalized text between added tokens: pre-tokenize and BPE. */
static pio_status tok_text_normalized(tok_enc *e, const char *s, size_t n)
{
    return n ? tok_pre_run(e, 0, s, n) : PIO_STATUS_OK;
}

/* Raw text between non-normalized added tokens: normalize, then find normalized added tokens. */
static pio_status tok_text_raw(tok_enc *e, const char *s, size_t n)
{
    char *norm = NULL;
    size_t nn = 0;
    pio_status st = tok_normalize(e->tok, s, n, &norm, &nn);
    if (st) return st;
    st = tok_added_split(e, &e->tok->trie_norm, norm ? norm : s, norm ? nn : n, tok_text_normalized);
    free(norm);
    return st;
}

pio_status pio_tokenizer_encode(const pio_tokenizer *tok, const char *text, size_t len,
                                int32_t **ids, size_t *n_ids)
{
    pio_status st;
    *ids = NULL;
    *n_ids = 0;
    int64_t bad = pio_utf8_check(text, len);
    if (bad >= 0)
        return pio_error(PIO_STATUS_ERR_UTF8, "input text: invalid UTF-8 at byte offset %lld (byte 0x%02X)",
                         (long long)bad, (unsigned)(uint8_t)text[bad]);
    tok_enc e = { .tok = tok };
    e.md = pcre2_match_data_create(1, NULL);
    if (!e.md) return pio_error(PIO_STATUS_ERR_NOMEM, "tokenizer: out of memory");
    st = tok_added_split(&e, &tok->trie_raw, text, len, tok_text_raw);
    if (st) goto out_free;
    if (!e.ids && (st = tok_enc_push(&e, 0)) == PIO_STATUS_OK) e.n_ids = 0; /* never hand back NULL */
    if (st) goto out_free;
    *ids = e.ids;
    *n_ids = e.n_ids;
    e.ids = NULL;
out_free:
    free(e.ids);
    free(e.lit);
    free(e.heap);
    free(e.syms);
    pcre2_match_data_free(e.md);
    return st;
}
