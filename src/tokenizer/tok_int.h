/*
 * tok_int.h - private structures of the tokenizer (src/tokenizer/).
 *
 * Pipeline of pio_tokenizer_encode, as Hugging Face `tokenizers` runs it:
 *
 *   text --(added tokens, raw)--> pieces --normalizer--> --(added tokens,
 *   normalized)--> pieces --pre-tokenizer steps--> words --BPE--> ids
 *
 * Every string the tokenizer owns (vocabulary strings, their decoded bytes,
 * added-token contents) lives in one arena; tables refer to it by offset.
 */
#ifndef PIO_TOK_INT_H
#define PIO_TOK_INT_H

#include "pio/tokenizer.h"

#include <pthread.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Ids above this are refused at load: per-id tables are sized max id + 1. */
#define TOK_MAX_ID ((int32_t)1 << 24)

/* ---- arena: all strings, addressed by offset ----------------------------- */

typedef struct tok_arena {
    char *data;
    size_t len, cap;
} tok_arena;

/* Append n bytes plus a NUL; *off receives the offset of the first byte. */
pio_status tok_arena_push(tok_arena *a, const void *p, size_t n, uint32_t *off);

/* ---- string -> id map (open addressing, keys in the arena) --------------- */

typedef struct tok_strmap_slot {
    uint32_t hash;   /* 0 = empty (real hashes are forced non-zero) */
    int32_t id;
    uint32_t off, len;
} tok_strmap_slot;

typedef struct tok_strmap {
    tok_strmap_slot *slots;
    uint32_t cap;    /* power of two */
    uint32_t n;
} tok_strmap;

uint32_t tok_hash_bytes(const void *p, size_t n);
pio_status tok_strmap_init(tok_strmap *m, size_t expected);
void tok_strmap_free(tok_strmap *m);
/* Insert or overwrite the id of the arena string (off, len). */
pio_status tok_strmap_put(tok_strmap *m, const tok_arena *a, uint32_t off, uint32_t len, int32_t id);
/* Id of the string s[0..n), or -1. */
int32_t tok_strmap_get(const tok_strmap *m, const tok_arena *a, const void *s, size_t n);

/* ---- (left id, right id) -> (rank, merged id) ---------------------------- */

typedef struct tok_pairmap_slot {
    uint64_t key;    /* UINT64_MAX = empty */
    int32_t rank;
    int32_t id;
} tok_pairmap_slot;

typedef struct tok_pairmap {
    tok_pairmap_slot *slots;
    uint32_t cap;    /* power of two */
    uint32_t n;
} tok_pairmap;

pio_status tok_pairmap_init(tok_pairmap *m, size_t expected);
void tok_pairmap_free(tok_pairmap *m);
void tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id);

/* The merge of (a, b): its rank, or -1 when there is none; *id gets the result. */
static inline int32_t tok_pairmap_get(const tok_pairmap *m, int32_t a, int32_t b, int32_t *id)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    uint32_t mask = m->cap - 1, i = (uint32_t)(h >> 32) & mask;
    for (;;) {
        const tok_pairmap_slot *s = &m->slots[i];
        if (s->key == key) { *id = s->id; return s->rank; }
        if (s->key == UINT64_MAX) return -1;
        i = (i + 1) & mask;
    }
}

/* ---- per-id table -------------------------------------------------------- */

enum {
    TOK_ENTRY_PRESENT = 1,  /* some token has this id */
    TOK_ENTRY_ADDED = 2,    /* an added token (added_tokens[]) */
    TOK_ENTRY_SPECIAL = 4,  /* dropped by decode(skip_special) */
};

typedef struct tok_entry {
    uint32_t off, len;      /* the token string (vocab form, e.g. "Ġthe") */
    uint32_t doff, dlen;    /* its bytes after the decoder (e.g. " the") */
    uint8_t flags;
} tok_entry;

/* ---- added tokens -------------------------------------------------------- */

typedef struct tok_added {
    int32_t id;
    uint32_t off, len;      /* content as matched: normalized when `normalized` */
    bool single_word, lstrip, rstrip, normalized, special;
} tok_added;

/* A byte trie over added-token contents: leftmost-longest matching. */
typedef struct tok_trie_node {
    int32_t child;          /* first child, -1 none */
    int32_t sibling;        /* next sibling, -1 none */
    int32_t added;          /* index into tok->added when a content ends here, else -1 */
    uint8_t byte;
} tok_trie_node;

typedef struct tok_trie {
    tok_trie_node *nodes;   /* nodes[0] is the root */
    size_t n, cap;
    uint8_t first[32];      /* bitmap of first bytes, a quick reject */
} tok_trie;

/* ---- normalizer ---------------------------------------------------------- */

typedef enum tok_norm {
    TOK_NORM_NFC = 0,
    TOK_NORM_NFD,
    TOK_NORM_NFKC,
    TOK_NORM_NFKD,
} tok_norm;

/* ---- pre-tokenizer steps ------------------------------------------------- */

typedef enum tok_pre_kind {
    TOK_PRE_SPLIT = 0,      /* Split: regex or literal pattern */
    TOK_PRE_BYTELEVEL,      /* ByteLevel: prefix space, GPT-2 regex, byte alphabet */
} tok_pre_kind;

typedef enum tok_split_behavior {
    TOK_SPLIT_REMOVED = 0,
    TOK_SPLIT_ISOLATED,
    TOK_SPLIT_MERGED_WITH_PREVIOUS,
    TOK_SPLIT_MERGED_WITH_NEXT,
    TOK_SPLIT_CONTIGUOUS,
} tok_split_behavior;

typedef struct tok_pre {
    tok_pre_kind kind;
    pcre2_code *re;         /* SPLIT: the pattern; BYTELEVEL: GPT-2 regex or NULL */
    bool jit;               /* re was JIT-compiled: use pcre2_jit_match */
    tok_split_behavior behavior;
    bool invert;
    bool add_prefix_space;  /* BYTELEVEL */
} tok_pre;

typedef enum tok_decoder {
    TOK_DEC_NONE = 0,       /* no decoder: tokens joined with " " (as HF does) */
    TOK_DEC_BYTELEVEL,
} tok_decoder;

/* ---- BPE word cache (shared, locked) ------------------------------------ */

#define TOK_CACHE_SLOTS 16384
#define TOK_CACHE_WORD 24   /* longest word (bytes) kept */
#define TOK_CACHE_IDS 12    /* most ids per cached word */

typedef struct tok_cache_slot {
    uint32_t hash;          /* 0 = empty */
    uint8_t wlen, nids;
    char word[TOK_CACHE_WORD];
    int32_t ids[TOK_CACHE_IDS];
} tok_cache_slot;

struct pio_tokenizer {
    char *name;             /* file name for messages */
    tok_arena arena;

    /* model (BPE) */
    tok_strmap vocab;       /* vocab strings -> id */
    tok_pairmap merges;     /* (a, b) -> (rank, a+b) */
    tok_entry *entries;     /* [n_vocab] */
    int32_t n_vocab;        /* max id + 1 */
    int32_t unk_id;         /* -1 none */
    bool fuse_unk, byte_fallback, ignore_merges;
    int32_t byte_id[256];   /* byte-level: id of the one-byte token of each byte, -1 none */
    int32_t fallback_id[256]; /* byte_fallback: id of "<0xXX>", -1 none */

    /* added tokens */
    tok_added *added;
    size_t n_added;
    tok_strmap added_map;   /* content -> id (checked before the vocab) */
    tok_trie trie_raw;      /* normalized == false: matched on the raw text */
    tok_trie trie_norm;     /* normalized == true: matched on normalized pieces */

    /* normalizer: a sequence of steps, none = identity */
    tok_norm *norms;
    size_t n_norms;

    /* pre-tokenizer */
    tok_pre *pre;
    size_t n_pre;
    bool byte_level;        /* words are mapped through the GPT-2 byte alphabet */
    pcre2_match_context *mctx;

    tok_decoder decoder;

    /* word cache, shared by threads */
    pthread_mutex_t cache_lock;
    bool cache_lock_ok;
    tok_cache_slot *cache;
};

/* ---- UTF-8 and the GPT-2 byte alphabet (tok_utf8.c) ---------------------- */

/* Code point of the GPT-2 byte-level character standing for byte b. */
uint32_t tok_byte_to_cp(uint8_t b);
/* Byte stood for by code point cp, or -1 when cp is not in the alphabet. */
int tok_cp_to_byte(uint32_t cp);

/* Decode one UTF-8 character at s[0..n): its length (1..4) or 0 if ill-formed. */
size_t tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
/* Encode cp; returns the length written to out (1..4). */
size_t tok_utf8_encode(uint32_t cp, char *out);

/*
 * Lossy UTF-8 conversion as Rust's String::from_utf8_lossy: each maximal
 * ill-formed subpart becomes U+FFFD. When !final, a trailing incomplete (but
 * so far well-formed) sequence is not converted; *used tells how many input
 * bytes were consumed. Appends to the growable buffer (buf, len, cap).
 */
pio_status tok_utf8_lossy(const uint8_t *s, size_t n, bool final, size_t *used,
                          char **buf, size_t *len, size_t *cap);

/* Grow (buf, cap) to hold at least need bytes. */
pio_status tok_buf_reserve(char **buf, size_t *cap, size_t need);

/* Unicode White_Space and the regex \w class, as Rust's regex crate has them. */
bool tok_is_space(uint32_t cp);
bool tok_is_word(uint32_t cp);

/* ---- loader helpers (tok_load.c) ----------------------------------------- */

/* Normalize s[0..n) with tok's normalizer; *out is malloc'ed (NULL,0 if unchanged). */
pio_status tok_normalize(const pio_tokenizer *tok, const char *s, size_t n, char **out,
                         size_t *out_len);

/*
 * Build a tokenizer from a parsed tokenizer.json tree (`root`, a cJSON
 * object; not consumed). pio_tokenizer_load_from_memory parses and calls
 * this; tok_gguf.c builds the same tree from GGUF metadata. `name` is used
 * in messages.
 */
struct cJSON;
pio_status tok_load_json(const struct cJSON *root, const char *name, pio_tokenizer **out);

/* Trie building (tok_encode.c). */
pio_status tok_trie_add(tok_trie *t, const char *s, size_t n, int32_t added_index);
void tok_trie_free(tok_trie *t);

#endif /* PIO_TOK_INT_H */
