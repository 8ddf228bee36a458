/*
 * kv_paged.c - a paged KV cache (pio_kv implementation).
 *
 * Memory is a pool of blocks; a block holds `block_size` consecutive
 * positions of one sequence for every layer:
 *     k_pool[block][layer][block_size][k_dim], v_pool likewise.
 * Each sequence has a block table (position / block_size -> block id).
 * Blocks are taken from a free list on reserve and returned on truncate, so
 * sequences of different lengths share the pool without fragmentation.
 */
#include "pio/kv.h"

#include <stdlib.h>
#include <string.h>

typedef struct kv_paged {
    int block_size;
    int n_blocks;
    int max_blocks_per_seq;     /* ceil(n_ctx / block_size) */
    float *k_pool;              /* [n_blocks][n_layers][block_size][k_dim] */
    float *v_pool;              /* [n_blocks][n_layers][block_size][v_dim] */
    int *free_list;             /* stack of free block ids */
    int n_free;
    int *tables;                /* [n_seqs][max_blocks_per_seq], -1 = none */
    int *n_seq_blocks;          /* [n_seqs] blocks held by each sequence */
} kv_paged;

static kv_paged *impl_of(pio_kv *kv) { return kv->impl; }

static pio_status paged_reserve(pio_kv *kv, int seq, int n_pos)
{
    kv_paged *p = impl_of(kv);
    int need, *table;

    if (seq < 0 || seq >= kv->n_seqs)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "KV cache: sequence %d out of range [0, %d)",
                         seq, kv->n_seqs);
    if (n_pos > kv->n_ctx)
        return pio_error(PIO_STATUS_ERR_LIMIT,
                         "KV cache: sequence %d needs %d positions but the context is %d",
                         seq, n_pos, kv->n_ctx);
    need = (n_pos + p->block_size - 1) / p->block_size;
    table = p->tables + (size_t)seq * (size_t)p->max_blocks_per_seq;
    while (p->n_seq_blocks[seq] < need) {
        if (p->n_free == 0)
            return pio_error(PIO_STATUS_ERR_LIMIT,
                             "KV cache full: %d blocks of %d positions all in use",
                             p->n_blocks, p->block_size);
        table[p->n_seq_blocks[seq]++] = p->free_list[--p->n_free];
    }
    return PIO_STATUS_OK;
}

static float *paged_row(pio_kv *kv, float *pool, int dim, int layer, int seq, int pos)
{
    kv_paged *p = impl_of(kv);
    int blk = p->tables[(size_t)seq * (size_t)p->max_blocks_per_seq + pos / p->block_size];
    size_t idx = (((size_t)blk * (size_t)kv->n_layers + (size_t)layer) * (size_t)p->block_size +
                  (size_t)(pos % p->block_size)) * (size_t)dim;
    return pool + idx;
}

static float *paged_k_row(pio_kv *kv, int layer, int seq, int pos)
{
    return paged_row(kv, impl_of(kv)->k_pool, kv->k_dim, layer, seq, pos);
}

static float *paged_v_row(pio_kv *kv, int layer, int seq, int pos)
{
    return paged_row(kv, impl_of(kv)->v_pool, kv->v_dim, layer, seq, pos);
}

static int paged_contiguous(pio_kv *kv, int seq, int pos)
{
    kv_paged *p = impl_of(kv);
    return p->block_size - pos % p->block_size;
}

static void paged_truncate(pio_kv *kv, int seq, int n_pos)
{
    kv_paged *p = impl_of(kv);
    int keep, *table;
    if (seq < 0 || seq >= kv->n_seqs)
        return;
    if (n_pos < 0)
        n_pos = 0;
    keep = (n_pos + p->block_size - 1) / p->block_size;
    table = p->tables + (size_t)seq * (size_t)p->max_blocks_per_seq;
    while (p->n_seq_blocks[seq] > keep) {
        int blk = table[--p->n_seq_blocks[seq]];
        table[p->n_seq_blocks[seq]] = -1;
        p->free_list[p->n_free++] = blk;
    }
}

static void paged_free(pio_kv *kv)
{
    kv_paged *p = impl_of(kv);
    if (p) {
        free(p->k_pool);
        free(p->v_pool);
        free(p->free_list);
        free(p->tables);
        free(p->n_seq_blocks);
        free(p);
    }
    free(kv);
}

static const pio_kv_ops paged_ops = {
    .reserve = paged_reserve,
    .k_row = paged_k_row,
    .v_row = paged_v_row,
    .contiguous = paged_contiguous,
    .truncate = paged_truncate,
    .free = paged_free,
};

pio_status pio_kv_paged_new(int n_layers, int n_seqs, int n_ctx, int k_dim, int v_dim,
                            int block_size, int n_blocks, pio_kv **out)
{
    pio_kv *kv;
    kv_paged *p;
    size_t per_block_k, per_block_v;
    int i;

    if (n_layers <= 0 || n_seqs <= 0 || n_ctx <= 0 || k_dim <= 0 || v_dim <= 0 || block_size <= 0)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                         "KV cache: bad geometry (layers %d, seqs %d, ctx %d, k %d, v %d, block %d)",
                         n_layers, n_seqs, n_ctx, k_dim, v_dim, block_size);
    kv = calloc(1, sizeof *kv);
    p = calloc(1, sizeof *p);
    if (!kv || !p)
        goto fail;
    kv->ops = &paged_ops;
    kv->impl = p;
    kv->n_layers = n_layers;
    kv->n_seqs = n_seqs;
    kv->n_ctx = n_ctx;
    kv->k_dim = k_dim;
    kv->v_dim = v_dim;
    p->block_size = block_size;
    p->max_blocks_per_seq = (n_ctx + block_size - 1) / block_size;
    p->n_blocks = n_blocks > 0 ? n_blocks : p->max_blocks_per_seq * n_seqs;
    per_block_k = (size_t)n_layers * (size_t)block_size * (size_t)k_dim;
    per_block_v = (size_t)n_layers * (size_t)block_size * (size_t)v_dim;
    /* calloc: untouched pages stay virtual until a sequence reaches them */
    p->k_pool = calloc((size_t)p->n_blocks * per_block_k, sizeof(float));
    p->v_pool = calloc((size_t)p->n_blocks * per_block_v, sizeof(float));
    p->free_list = malloc((size_t)p->n_blocks * sizeof(int));
    p->tables = malloc((size_t)n_seqs * (size_t)p->max_blocks_per_seq * sizeof(int));
    p->n_seq_blocks = calloc((size_t)n_seqs, sizeof(int));
    if (!p->k_pool || !p->v_pool || !p->free_list || !p->tables || !p->n_seq_blocks)
        goto fail;
    for (i = 0; i < p->n_blocks; i++)                 /* pop order: block 0 first */
        p->free_list[i] = p->n_blocks - 1 - i;
    p->n_free = p->n_blocks;
    for (i = 0; i < n_seqs * p->max_blocks_per_seq; i++)
        p->tables[i] = -1;
    *out = kv;
    return PIO_STATUS_OK;

fail:
    if (kv)
        paged_free(kv);
    else
        free(p);
    return pio_error(PIO_STATUS_ERR_NOMEM, "KV cache: cannot allocate %d layers x %d seqs x %d positions",
                     n_layers, n_seqs, n_ctx);
}
