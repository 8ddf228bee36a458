/*
 * kv.h - the KV cache interface that model plugins write to and attend over.
 *
 * The engine owns the cache (allocation, which sequences exist); a model
 * plugin only reads and writes rows. A row is the key (or value) vector of
 * one token in one layer: k_dim (v_dim) floats, all KV heads concatenated.
 * Rows are reached through `ops`, so a paged cache (blocks of positions
 * shared through a block table) implements the same interface as a flat one.
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
    /* Row of (layer, seq, pos): float[k_dim] / float[v_dim]. The position
     * must have been reserved. */
    float *(*k_row)(pio_kv *kv, int layer, int seq, int pos);
    float *(*v_row)(pio_kv *kv, int layer, int seq, int pos);
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
    int k_dim;        /* floats per key row   (n_kv_heads * head_dim) */
    int v_dim;        /* floats per value row */
    void *impl;
};

/*
 * A paged cache: blocks of `block_size` positions (all layers) taken from a
 * pool of n_blocks, with one block table per sequence. n_blocks = 0 sizes the
 * pool so every sequence can reach n_ctx.
 */
pio_status pio_kv_paged_new(int n_layers, int n_seqs, int n_ctx, int k_dim, int v_dim,
                            int block_size, int n_blocks, pio_kv **out);

static inline void pio_kv_free(pio_kv *kv) { if (kv) kv->ops->free(kv); }

#ifdef __cplusplus
}
#endif

#endif /* PIO_KV_H */
