/*
 * prefix_cache.c - full KV blocks found by the tokens they hold.
 *
 * A full block of PIO_ENGINE_KV_BLOCK tokens is named by a hash chain:
 *     h(block i) = mix(h(block i-1), tokens of block i),  h(-1) = 0,
 * so one hash names the whole prefix up to the end of the block. The cache
 * maps hashes to block ids and holds one reference on each block (kv.h
 * pio_kv_paged_retain); sequences that share the prefix add theirs through
 * their block tables. A block only the cache holds is unused and is evicted
 * in least-recently-used order when the pool runs short. Entries keep their
 * parent hash and tokens, so a hash collision is a miss, never wrong K/V.
 * Owned by the inference thread (no locking).
 */
#include "server/server_int.h"

#include "pio/kv.h"

#include <stdlib.h>
#include <string.h>

struct srv_pcache_entry {
    uint64_t hash, parent;
    int32_t tokens[PIO_ENGINE_KV_BLOCK];
    int block;
    int next;                  /* bucket chain, -1 = end */
    uint64_t last_used;
    bool live;
};

/* 64-bit hash of (parent, tokens): FNV-1a over the bytes, then a splitmix64 finalizer. */
uint64_t srv_pcache_hash(uint64_t parent, const int32_t *tokens)
{
    uint64_t h = 1469598103934665603ull;
    int i, b;
    for (b = 0; b < 8; b++) {
        h ^= (parent >> (8 * b)) & 0xff;
        h *= 1099511628211ull;
    }
    for (i = 0; i < PIO_ENGINE_KV_BLOCK; i++)
        for (b = 0; b < 4; b++) {
            h ^= ((uint32_t)tokens[i] >> (8 * b)) & 0xff;
            h *= 1099511628211ull;
        }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h ? h : 1;
}

pio_status srv_pcache_init(srv_pcache *pc, pio_kv *kv)
{
    int i;
    memset(pc, 0, sizeof *pc);
    pc->kv = kv;
    pc->cap = pio_kv_paged_n_blocks(kv);
    for (pc->n_buckets = 16; pc->n_buckets < 2 * pc->cap; pc->n_buckets *= 2)
        ;
    pc->e = calloc((size_t)(pc->cap > 0 ? pc->cap : 1), sizeof *pc->e);
    pc->buckets = malloc((size_t)pc->n_buckets * sizeof(int));
    pc->free_idx = malloc((size_t)(pc->cap > 0 ? pc->cap : 1) * sizeof(int));
    if (!pc->e || !pc->buckets || !pc->free_idx)
        return pio_error(PIO_STATUS_ERR_NOMEM, "serve: out of memory for the prefix cache");
    for (i = 0; i < pc->n_buckets; i++)
        pc->buckets[i] = -1;
    for (i = 0; i < pc->cap; i++)
        pc->free_idx[i] = pc->cap - 1 - i;
    pc->n_free_idx = pc->cap;
    return PIO_STATUS_OK;
}

static void entry_remove(srv_pcache *pc, int idx)
{
    struct srv_pcache_entry *e = &pc->e[idx];
    int *pp = &pc->buckets[e->hash & (uint64_t)(pc->n_buckets - 1)];
    while (*pp != idx)
        pp = &pc->e[*pp].next;
    *pp = e->next;
    pio_kv_paged_release(pc->kv, e->block);
    e->live = false;
    pc->free_idx[pc->n_free_idx++] = idx;
    pc->n_entries--;
}

void srv_pcache_free(srv_pcache *pc)
{
    int i;
    if (pc->e)
        for (i = 0; i < pc->cap; i++)
            if (pc->e[i].live)
                entry_remove(pc, i);
    free(pc->e);
    free(pc->buckets);
    free(pc->free_idx);
    memset(pc, 0, sizeof *pc);
}

static int find(const srv_pcache *pc, uint64_t hash, uint64_t parent, const int32_t *tokens)
{
    int i = pc->buckets[hash & (uint64_t)(pc->n_buckets - 1)];
    for (; i >= 0; i = pc->e[i].next) {
        const struct srv_pcache_entry *e = &pc->e[i];
        if (e->hash == hash && e->parent == parent &&
            !memcmp(e->tokens, tokens, sizeof e->tokens))
            return i;
    }
    return -1;
}

int srv_pcache_lookup(srv_pcache *pc, uint64_t hash, uint64_t parent, const int32_t *tokens)
{
    int i = find(pc, hash, parent, tokens);
    if (i < 0)
        return -1;
    pc->e[i].last_used = ++pc->clock;
    return pc->e[i].block;
}

void srv_pcache_insert(srv_pcache *pc, uint64_t hash, uint64_t parent, const int32_t *tokens, int block)
{
    struct srv_pcache_entry *e;
    int idx;
    if (block < 0 || find(pc, hash, parent, tokens) >= 0 || pc->n_free_idx == 0)
        return;
    idx = pc->free_idx[--pc->n_free_idx];
    e = &pc->e[idx];
    e->hash = hash;
    e->parent = parent;
    memcpy(e->tokens, tokens, sizeof e->tokens);
    e->block = block;
    e->last_used = ++pc->clock;
    e->live = true;
    e->next = pc->buckets[hash & (uint64_t)(pc->n_buckets - 1)];
    pc->buckets[hash & (uint64_t)(pc->n_buckets - 1)] = idx;
    pio_kv_paged_retain(pc->kv, block);
    pc->n_entries++;
}

/* Evict the least recently used block nobody but the cache holds. O(cap). */
bool srv_pcache_evict_one(srv_pcache *pc)
{
    int i, victim = -1;
    for (i = 0; i < pc->cap; i++) {
        const struct srv_pcache_entry *e = &pc->e[i];
        if (e->live && pio_kv_paged_refs(pc->kv, e->block) == 1 &&
            (victim < 0 || e->last_used < pc->e[victim].last_used))
            victim = i;
    }
    if (victim < 0)
        return false;
    entry_remove(pc, victim);
    return true;
}

/* Blocks held by the cache alone (evictable). O(cap). */
int srv_pcache_n_idle(const srv_pcache *pc)
{
    int i, n = 0;
    for (i = 0; i < pc->cap; i++)
        if (pc->e[i].live && pio_kv_paged_refs(pc->kv, pc->e[i].block) == 1)
            n++;
    return n;
}
