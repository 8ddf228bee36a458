/*
 * attn.h - the attention kernels: tiled online-softmax ("flash") attention
 * over a KV cache whose rows are F32, F16 or BF16, chosen at run time by CPU
 * level like the matmul kernels (dispatch.h). The design is described at the
 * top of ref/attention.c.
 *
 * pio_attention_run() (the driver, ref/attention.c) is the entry point the
 * layers use; the per-level parts are
 *   tile      one tile of queries against one tile of keys (the inner loop);
 *   store     f32 -> row dtype conversion for writing keys and values.
 */
#ifndef PIO_KERNELS_ATTN_H
#define PIO_KERNELS_ATTN_H

#include "common/cpu.h"
#include "common/threadpool.h"
#include "kernels/kernels.h"
#include "pio/kv.h"
#include "pio/plugin.h"

/* Keys per tile: the unit of the online-softmax update. */
#define PIO_ATTN_TILE_KEYS 64
/* Query rows per task aim: query tokens per tile = max(1, this / group). */
#define PIO_ATTN_TILE_ROWS 32

/*
 * One tile: nq query rows (the query heads of one KV-head group, for one or
 * more tokens of one sequence) against nk keys of that KV head.
 *
 * For r < nq, j < n_vis[r] (keys j >= n_vis[r] are masked: causal):
 *     s_rj = q[r] · k[j]             (q already multiplied by the softmax scale)
 *     m'   = max(m[r], max_j s_rj)
 *     l[r] = l[r]·e^(m[r]-m') + Σ_j e^(s_rj-m')
 *     acc[r] = acc[r]·e^(m[r]-m') + Σ_j e^(s_rj-m') v[j]
 *     m[r] = m'
 * Rows with n_vis[r] == 0 are left as they are. Start with m = -inf, l = 0,
 * acc = 0; the output is acc[r] / l[r] after the last tile.
 * Cost: 2·nq·nk·head_dim multiply-adds; each key and value row is read from
 * the cache once per tile (not once per query row).
 */
typedef struct pio_attn_tile {
    int head_dim;
    int nq;                  /* query rows, >= 1 */
    int nk;                  /* keys, 1 .. PIO_ATTN_TILE_KEYS */
    pio_dtype dtype;         /* of the key/value rows: F32, F16 or BF16 */
    const float *q;          /* [nq][head_dim], pre-scaled */
    const void *const *k;    /* [nk] -> head_dim elements of dtype */
    const void *const *v;    /* [nk] -> head_dim elements of dtype */
    const int *n_vis;        /* [nq]: row r sees keys j < n_vis[r] (0 .. nk) */
    float *m;                /* [nq] running max */
    float *l;                /* [nq] running sum of e^(s - m) */
    float *acc;              /* [nq][head_dim] running un-normalized output */
    float *s;                /* scratch [nq][PIO_ATTN_TILE_KEYS] */
} pio_attn_tile;

typedef void (*pio_attn_tile_fn)(const pio_attn_tile *t);

typedef struct pio_attn_kernels {
    pio_cpu_level level;
    pio_attn_tile_fn tile;
    /* dst[n] (F32, F16 or BF16) = src[n] rounded to nearest even */
    void (*store)(void *dst, pio_dtype dt, const float *src, int64_t n);
} pio_attn_kernels;

/* The table of the active level (pio_cpu_level_active()); never NULL. */
const pio_attn_kernels *pio_attn_kernels_get(void);

/* The table of `level`, or NULL when it is not built in or the CPU lacks it. */
const pio_attn_kernels *pio_attn_kernels_for_level(pio_cpu_level level);

/* The scalar reference tile and row conversion (ref/attention.c). */
void pio_attn_tile_ref(const pio_attn_tile *t);
void pio_attn_store_ref(void *dst, pio_dtype dt, const float *src, int64_t n);

/*
 * Causal attention for a batch: out[t][n_heads*head_dim] for every token t
 * of b, from the rotated queries q[t][n_heads*head_dim] and the keys/values
 * of positions <= pos[t] of sequence seq_id[t] in `layer` of the cache
 * (already stored). Query head h reads KV head h / (n_heads / n_kv_heads).
 * Tokens of the same sequence that are adjacent in the batch share tiles;
 * when there are few tiles and long contexts the keys are split across
 * tasks (split-K) and the partial results combined. split_keys > 0 forces
 * splits of that many keys (rounded up to a tile) with one KV head per
 * task, < 0 splits of -split_keys keys with all KV heads per task (tests);
 * 0 = automatic.
 * Cost: 2·n_heads·head_dim multiply-adds per (token, visible key); the
 * cache is read once per (tile of tokens, KV head).
 */
pio_status pio_attention_run(const pio_attn_kernels *kt, pio_threadpool *tp, float *out,
                             const float *q, const pio_batch *b, pio_kv *kv, int layer,
                             int n_heads, int n_kv_heads, int head_dim, float scale,
                             int split_keys);

/* Per-level table builders (src/kernels/x86/attn_<isa>.c). */
void pio_attn_kernels_init_avx2(pio_attn_kernels *kt);
void pio_attn_kernels_init_avx512(pio_attn_kernels *kt);

#endif
