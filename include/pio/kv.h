/*
 * kv.h - the KV cache interface that model plugins write to and attend over.
 *
 * The engine owns the cache (allocation, which sequences exist); a model
 * plugin only reads and writes rows. A row is the key (or value) vector of
 * one token in one layer: k_dim (v_dim) elements of the cache's `dtype`
 * (F16 by default, F32 or BF16 on request), all KV heads concatenated.
 * Rows are reached through `ops`, so a paged cache (blocks of positions
 * shared through a block table) implements the same interface as a flat one.
 * pio_kv_store() writes a position's rows from f32, whatever the dtype.
 */
#ifndef PIO_KV_H
#define PIO_KV_H

#include "pio/pio.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pio_kv pio_kv;

typedef struct pio_kv_ops {
    /* Make positions [0, n_pos) of `seq` writable. Fails with
     * PIO_STATUS_ERR_LIMIT when the cache is full or n_pos > n_ctx. */
    pio_status (*reserve)(pio_kv *kv, int seq, int n_pos);
    /* Row of (layer, seq, pos): k_dim / v_dim elements of kv->dtype. The
     * position must have been reserved. */
    void *(*k_row)(pio_kv *kv, int layer, int seq, int pos);
    void *(*v_row)(pio_kv *kv, int layer, int seq, int pos);
    /* Number of consecutive positions from `pos` that are stored contiguously
     * (rows k_row(pos)..k_row(pos+n-1) are adjacent in memory), >= 1. */
    int (*contiguous)(pio_kv *kv, int seq, int pos);
    /* Drop positions >= n_pos of `seq` (n_pos = 0 frees the sequence). */
    void (*truncate)(pio_kv *kv, int seq, int n_pos);
    void (*free)(pio_kv *kv);
} pio_kv_ops;

struct pio_kv {
    const pio_kv_ops *ops;
    int n_layers;
    int n_seqs;       /* sequence ids are 0 .. n_seqs-1 */
    int n_ctx;        /* max positions per sequence */
    int k_dim;        /* elements per key row   (n_kv_heads * head_dim) */
    int v_dim;        /* elements per value row */
    pio_dtype dtype;  /* element type of the rows: F32, F16 or BF16 */
    void *impl;
};

/*
 * A paged cache: blocks of `block_size` positions (all layers) taken from a
 * pool of n_blocks, with one block table per sequence. n_blocks = 0 sizes the
 * pool so every sequence can reach n_ctx. Rows hold `dtype` elements (F32,
 * F16 or BF16; anything else is PIO_STATUS_ERR_UNSUPPORTED).
 */
pio_status pio_kv_paged_new(int n_layers, int n_seqs, int n_ctx, int k_dim, int v_dim,
                            pio_dtype dtype, int block_size, int n_blocks, pio_kv **out);

/*
 * Write the key k[k_dim] and value v[v_dim] (f32) of (layer, seq, pos),
 * converted to kv->dtype (round to nearest even; f16 overflow gives inf).
 * The position must have been reserved. Cost: k_dim + v_dim conversions.
 */
void pio_kv_store(pio_kv *kv, int layer, int seq, int pos, const float *k, const float *v);

/*
 * Block sharing in a paged cache (prefix caching). Blocks carry reference
 * counts: one per block-table entry plus one per retain; a block returns to
 * the free list when its count reaches 0 (truncate drops table entries).
 * A shared block must never be written again: share only full blocks, and
 * write a sequence only past them. All are O(1) except share (O(n)); on a
 * cache that is not paged they fail (-1 / 0 / an error).
 */
int pio_kv_paged_block(pio_kv *kv, int seq, int index);   /* table entry `index` of seq, or -1 */
/* Make blocks[0..n) the first n table entries of `seq`, which must hold none. */
pio_status pio_kv_paged_share(pio_kv *kv, int seq, const int *blocks, int n);
void pio_kv_paged_retain(pio_kv *kv, int block);          /* +1 reference (block in use) */
void pio_kv_paged_release(pio_kv *kv, int block);         /* -1 reference; at 0 it is free */
int pio_kv_paged_refs(pio_kv *kv, int block);
int pio_kv_paged_n_free(pio_kv *kv);                      /* blocks on the free list */
int pio_kv_paged_n_blocks(pio_kv *kv);                    /* blocks in the pool */

static inline void pio_kv_free(pio_kv *kv) { if (kv) kv->ops->free(kv); }

#ifdef __cplusplus
}
#endif

#endif /* PIO_KV_H */
