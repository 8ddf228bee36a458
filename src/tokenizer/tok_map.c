/*
 * tok_map.c - the string arena and the two hash maps of the tokenizer:
 * vocabulary string -> id, and merge pair -> (rank, merged id).
 * Both use open addressing with linear probing at load factor <= 1/2.
 */
#include "tok_int.h"

#include <stdlib.h>
#include <string.h>

pio_status tok_arena_push(tok_arena *a, const void *p, size_t n, uint32_t *off)
{
    if (a->len + n + 1 > UINT32_MAX)
        return pio_error(PIO_STATUS_ERR_LIMIT, "tokenizer: strings exceed 4 GiB");
    pio_status st = tok_buf_reserve(&a->data, &a->cap, a->len + n + 1);
    if (st) return st;
    if (n) memcpy(a->data + a->len, p, n);
    a->data[a->len + n] = '\0';
    *off = (uint32_t)a->len;
    a->len += n + 1;
    return PIO_STATUS_OK;
}

/* A 64-bit multiply-mix over 8-byte words; never returns 0 (0 marks empty slots). */
uint32_t tok_hash_bytes(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = 0x243F6A8885A308D3ull ^ (n * 0x9E3779B97F4A7C15ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, s, n);
        h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    }
    h ^= h >> 29;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    uint32_t r = (uint32_t)h;
    return r ? r : 1;
}

/* A power-of-two capacity keeping the load factor at most 1/2. */
static uint32_t tok_map_cap(size_t expected)
{
    uint32_t cap = 16;
    while (cap < 2 * expected + 2 && cap < (1u << 30)) cap *= 2;
    return cap;
}

/* Empty map sized for `expected` keys (it grows beyond). */
pio_status tok_strmap_init(tok_strmap *m, size_t expected)
{
    m->cap = tok_map_cap(expected);
    m->n = 0;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) return pio_error(PIO_STATUS_ERR_NOMEM, "tokenizer: out of memory (string map)");
    return PIO_STATUS_OK;
}

void tok_strmap_free(tok_strmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

/* Doubles the table; keys stay in the arena. */
static pio_status tok_strmap_grow(tok_strmap *m)
{
    tok_strmap_slot *old = m->slots;
    uint32_t oldcap = m->cap;
    tok_strmap_slot *slots = calloc((size_t)oldcap * 2, sizeof *slots);
    if (!slots) return pio_error(PIO_STATUS_ERR_NOMEM, "tokenizer: out of memory (string map)");
    m->slots = slots;
    m->cap = oldcap * 2;
    for (uint32_t i = 0; i < oldcap; i++) {
        if (!old[i].hash) continue;
        uint32_t j = old[i].hash & (m->cap - 1);
        while (slots[j].hash) j = (j + 1) & (m->cap - 1);
        slots[j] = old[i];
    }
    free(old);
    return PIO_STATUS_OK;
}

pio_status tok_strmap_put(tok_strmap *m, const tok_arena *a, uint32_t off, uint32_t len, int32_t id)
{
    if (2 * (m->n + 1) > m->cap) {
        pio_status st = tok_strmap_grow(m);
        if (st) return st;
    }
    uint32_t h = tok_hash_bytes(a->data + off, len), mask = m->cap - 1, i = h & mask;
    for (;; i = (i + 1) & mask) {
        tok_strmap_slot *s = &m->slots[i];
        if (!s->hash) {
            *s = (tok_strmap_slot){ .hash = h, .id = id, .off = off, .len = len };
            m->n++;
            return PIO_STATUS_OK;
        }
        if (s->hash == h && s->len == len && !memcmp(a->data + s->off, a->data + off, len)) {
            s->id = id;
            return PIO_STATUS_OK;
        }
    }
}

int32_t tok_strmap_get(const tok_strmap *m, const tok_arena *a, const void *key, size_t n)
{
    if (!m->cap) return -1;
    uint32_t h = tok_hash_bytes(key, n), mask = m->cap - 1, i = h & mask;
    for (;; i = (i + 1) & mask) {
        const tok_strmap_slot *s = &m->slots[i];
        if (!s->hash) return -1;
        if (s->hash == h && s->len == n && !memcmp(a->data + s->off, key, n)) return s->id;
    }
}

/* Empty merge map sized for `expected` pairs; it never grows (see tok_pairmap_put). */
pio_status tok_pairmap_init(tok_pairmap *m, size_t expected)
{
    m->cap = tok_map_cap(expected);
    m->n = 0;
    m->slots = malloc((size_t)m->cap * sizeof *m->slots);
    if (!m->slots) return pio_error(PIO_STATUS_ERR_NOMEM, "tokenizer: out of memory (merge map)");
    for (uint32_t i = 0; i < m->cap; i++) m->slots[i].key = UINT64_MAX;
    return PIO_STATUS_OK;
}

void tok_pairmap_free(tok_pairmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

/*
 * Insert or overwrite. The table is sized for all merges at init (the count
 * is known), so it never grows; a later duplicate pair wins as in HF, whose
 * merge map is collected from the list in order.
 */
void tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    uint32_t mask = m->cap - 1, i = (uint32_t)(h >> 32) & mask;
    for (;; i = (i + 1) & mask) {
        tok_pairmap_slot *s = &m->slots[i];
        if (s->key == UINT64_MAX) {
            *s = (tok_pairmap_slot){ .key = key, .rank = rank, .id = id };
            m->n++;
            return;
        }
        if (s->key == key) {
            s->rank = rank;
            s->id = id;
            return;
        }
    }
}
