/*
 * kv_paged.c - a paged KV cache (pio_kv implementation).
 *
 * Memory is a pool of blocks; a block holds `block_size` consecutive
 * positions of one sequence for every layer:
 *     k_pool[block][layer][block_size][k_dim], v_pool likewise,
 * in elements of kv->dtype (F32, F16 or BF16).
 * Each sequence has a block table (position / block_size -> block id).
 * Blocks are taken from a free list on reserve and returned on truncate, so
 * sequences of different lengths share the pool without fragmentation.
 * Each block has a reference count (its table entries plus holds taken with
 * pio_kv_paged_retain): a prefix cache shares full blocks between sequences
 * and keeps unused ones; a block goes back to the free list at count 0.
 */
#include "pio/kv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct kv_paged {
    int block_size;
    int n_blocks;
    int max_blocks_per_seq;     /* ceil(n_ctx / block_size) */
    size_t elem;                /* bytes per element of kv->dtype */
    uint8_t *k_pool;            /* [n_blocks][n_layers][block_size][k_dim] elements */
    uint8_t *v_pool;            /* [n_blocks][n_layers][block_size][v_dim] elements */
    int *free_list;             /* stack of free block ids */
    int n_free;
    int *tables;                /* [n_seqs][max_blocks_per_seq], -1 = none */
    int *n_seq_blocks;          /* [n_seqs] blocks held by each sequence */
    int *refs;                  /* [n_blocks] references: table entries + retains */
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
        int blk = p->free_list[--p->n_free];
        p->refs[blk] = 1;
        table[p->n_seq_blocks[seq]++] = blk;
    }
    return PIO_STATUS_OK;
}

static void *paged_row(pio_kv *kv, uint8_t *pool, int dim, int layer, int seq, int pos)
{
    kv_paged *p = impl_of(kv);
    int blk = p->tables[(size_t)seq * (size_t)p->max_blocks_per_seq + pos / p->block_size];
    size_t idx = (((size_t)blk * (size_t)kv->n_layers + (size_t)layer) * (size_t)p->block_size +
                  (size_t)(pos % p->block_size)) * (size_t)dim;
    return pool + idx * p->elem;
}

static void *paged_k_row(pio_kv *kv, int layer, int seq, int pos)
{
    return paged_row(kv, impl_of(kv)->k_pool, kv->k_dim, layer, seq, pos);
}

static void *paged_v_row(pio_kv *kv, int layer, int seq, int pos)
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
        if (--p->refs[blk] == 0)
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
        free(p->refs);
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
                            pio_dtype dtype, int block_size, int n_blocks, pio_kv **out)
{
    pio_kv *kv;
    kv_paged *p;
    size_t per_block_k, per_block_v;
    int i;

    if (n_layers <= 0 || n_seqs <= 0 || n_ctx <= 0 || k_dim <= 0 || v_dim <= 0 || block_size <= 0)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                         "KV cache: bad geometry (layers %d, seqs %d, ctx %d, k %d, v %d, block %d)",
                         n_layers, n_seqs, n_ctx, k_dim, v_dim, block_size);
    if (dtype != PIO_DTYPE_F32 && dtype != PIO_DTYPE_F16 && dtype != PIO_DTYPE_BF16)
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "KV cache: rows of %s are not supported "
                         "(f32, f16 or bf16)", pio_dtype_name(dtype));
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
    kv->dtype = dtype;
    p->elem = pio_dtype_size(dtype);
    p->block_size = block_size;
    p->max_blocks_per_seq = (n_ctx + block_size - 1) / block_size;
    p->n_blocks = n_blocks > 0 ? n_blocks : p->max_blocks_per_seq * n_seqs;
    per_block_k = (size_t)n_layers * (size_t)block_size * (size_t)k_dim;
    per_block_v = (size_t)n_layers * (size_t)block_size * (size_t)v_dim;
    /* calloc: untouched pages stay virtual until a sequence reaches them */
    p->k_pool = calloc((size_t)p->n_blocks * per_block_k, p->elem);
    p->v_pool = calloc((size_t)p->n_blocks * per_block_v, p->elem);
    p->free_list = malloc((size_t)p->n_blocks * sizeof(int));
    p->tables = malloc((size_t)n_seqs * (size_t)p->max_blocks_per_seq * sizeof(int));
    p->n_seq_blocks = calloc((size_t)n_seqs, sizeof(int));
    p->refs = calloc((size_t)p->n_blocks, sizeof(int));
    if (!p->k_pool || !p->v_pool || !p->free_list || !p->tables || !p->n_seq_blocks || !p->refs)
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

/* ---- block sharing (prefix cache) ------------------------------------------- */

static bool is_paged(const pio_kv *kv) { return kv && kv->ops == &paged_ops; }

int pio_kv_paged_block(pio_kv *kv, int seq, int index)
{
    kv_paged *p;
    if (!is_paged(kv) || seq < 0 || seq >= kv->n_seqs)
        return -1;
    p = impl_of(kv);
    if (index < 0 || index >= p->n_seq_blocks[seq])
        return -1;
    return p->tables[(size_t)seq * (size_t)p->max_blocks_per_seq + (size_t)index];
}

pio_status pio_kv_paged_share(pio_kv *kv, int seq, const int *blocks, int n)
{
    kv_paged *p;
    int i, *table;
    if (!is_paged(kv) || seq < 0 || seq >= kv->n_seqs)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "KV cache: cannot share blocks into sequence %d", seq);
    p = impl_of(kv);
    if (p->n_seq_blocks[seq] != 0 || n < 0 || n > p->max_blocks_per_seq)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "KV cache: sharing %d blocks into sequence %d "
                         "that holds %d", n, seq, p->n_seq_blocks[seq]);
    for (i = 0; i < n; i++)
        if (blocks[i] < 0 || blocks[i] >= p->n_blocks || p->refs[blocks[i]] <= 0)
            return pio_error(PIO_STATUS_ERR_INVALID_ARG, "KV cache: block %d is not in use", blocks[i]);
    table = p->tables + (size_t)seq * (size_t)p->max_blocks_per_seq;
    for (i = 0; i < n; i++) {
        table[i] = blocks[i];
        p->refs[blocks[i]]++;
    }
    p->n_seq_blocks[seq] = n;
    return PIO_STATUS_OK;
}

void pio_kv_paged_retain(pio_kv *kv, int block)
{
    if (is_paged(kv) && block >= 0 && block < impl_of(kv)->n_blocks && impl_of(kv)->refs[block] > 0)
        impl_of(kv)->refs[block]++;
}

void pio_kv_paged_release(pio_kv *kv, int block)
{
    kv_paged *p;
    if (!is_paged(kv) || block < 0 || block >= impl_of(kv)->n_blocks)
        return;
    p = impl_of(kv);
    if (p->refs[block] > 0 && --p->refs[block] == 0)
        p->free_list[p->n_free++] = block;
}

int pio_kv_paged_refs(pio_kv *kv, int block)
{
    if (!is_paged(kv) || block < 0 || block >= impl_of(kv)->n_blocks)
        return 0;
    return impl_of(kv)->refs[block];
}

int pio_kv_paged_n_free(pio_kv *kv)
{
    return is_paged(kv) ? impl_of(kv)->n_free : 0;
}

int pio_kv_paged_n_blocks(pio_kv *kv)
{
    return is_paged(kv) ? impl_of(kv)->n_blocks : 0;
}
