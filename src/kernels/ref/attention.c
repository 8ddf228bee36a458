/*
 * attention.c - causal attention over the KV cache: the scalar reference
 * kernels and the tiled, split-K driver that every CPU level shares.
 *
 * Design (flash-style attention on the CPU):
 *
 *   KV cache. Rows are F16 by default (F32 or BF16 on request), written by
 *   pio_kv_store from f32. Decode at long context is bound by reading the
 *   cache, so halving the row size is most of the speed-up there.
 *
 *   Tiles. A task owns one KV head g and a "query tile": up to
 *   max(1, PIO_ATTN_TILE_ROWS / group) tokens of one sequence that are
 *   adjacent in the batch, times the `group` query heads that share g. Its
 *   nq = tokens·group query rows walk the keys in tiles of
 *   PIO_ATTN_TILE_KEYS positions (tiles cross paged-block boundaries: the
 *   task collects one row pointer per key from the block table). For each
 *   key tile the level's `tile` kernel computes the scores of all nq rows,
 *   updates the online softmax (running max m, sum l, un-normalized output
 *   acc) and accumulates the values. K and V are thus read once per
 *   (query tile, KV head) instead of once per (token, query head): 4x fewer
 *   reads in decode with Qwen3-4B's GQA ratio 4, ~32x in prefill.
 *   Causality is a per-row count of visible keys in the tile (n_vis), so a
 *   prefill tile's diagonal needs no -inf scores.
 *
 *   Split-K. Decode has one query tile per sequence. When all tiles have
 *   at most 2 tokens, there are fewer than ATTN_TASKS_PER_THREAD tiles per
 *   thread and the context is long (>= 2·ATTN_ROW_SPLIT_MIN keys), a task
 *   takes every KV head of a key range instead of one head: the cache
 *   holds a position's heads side by side, so the task streams whole rows
 *   contiguously (a per-head task reads 1/n_kv_heads of every row, a
 *   stride that ran at ~1/3 of the hot-cache speed at 8K context). The
 *   keys are cut into n_split ranges (whole key tiles) so every thread has
 *   its own part of the cache; with more tiles (batches of sequences) the
 *   per-head tasks are split the same way. Each range leaves (m, l, acc)
 *   per row in a partial buffer and the caller combines them:
 *       M = max_s m_s,  out = Σ_s e^(m_s-M) acc_s / Σ_s e^(m_s-M) l_s.
 *
 *   Levels. pio_attn_tile_ref below is the reference (plain loops, expf);
 *   src/kernels/x86/attn_{avx2,avx512}.c vectorize the same steps (F16C
 *   conversion, FMA dot products over 4 rows x 2 keys, a polynomial exp)
 *   and are diffed against it by tests/test_attention.c.
 */
#include "kernels/attn.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define TK PIO_ATTN_TILE_KEYS
#define ATTN_SPLIT_MIN 512          /* keys per split range, at least */
#define ATTN_ROW_SPLIT_MIN 256      /* the same when a task takes whole rows */
#define ATTN_TASKS_PER_THREAD 8     /* split while there are fewer tasks per thread */

/* Element i of a row of dtype dt as f32. */
static inline float row_elem(const void *row, pio_dtype dt, int i)
{
    switch (dt) {
    case PIO_DTYPE_F16: return pio_f16_to_f32(((const uint16_t *)row)[i]);
    case PIO_DTYPE_BF16: return pio_bf16_to_f32(((const uint16_t *)row)[i]);
    default: return ((const float *)row)[i];
    }
}

void pio_attn_store_ref(void *dst, pio_dtype dt, const float *src, int64_t n)
{
    int64_t i;
    switch (dt) {
    case PIO_DTYPE_F16:
        for (i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = pio_f32_to_f16(src[i]);
        break;
    case PIO_DTYPE_BF16:
        for (i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = pio_f32_to_bf16(src[i]);
        break;
    default:
        memcpy(dst, src, (size_t)n * sizeof(float));
        break;
    }
}

void pio_attn_tile_ref(const pio_attn_tile *t)
{
    int hd = t->head_dim, r, j, d;
    for (r = 0; r < t->nq; r++) {
        const float *qr = t->q + (size_t)r * hd;
        float *sr = t->s + (size_t)r * TK, *ar = t->acc + (size_t)r * hd;
        int nv = t->n_vis[r];
        float mx = -INFINITY, mnew, corr;
        if (nv <= 0)
            continue;
        for (j = 0; j < nv; j++) {
            float acc = 0.0f;
            for (d = 0; d < hd; d++)
                acc += qr[d] * row_elem(t->k[j], t->dtype, d);
            sr[j] = acc;
            mx = fmaxf(mx, acc);
        }
        mnew = fmaxf(t->m[r], mx);
        corr = expf(t->m[r] - mnew);          /* 0 on the first tile (m = -inf) */
        t->l[r] *= corr;
        for (d = 0; d < hd; d++)
            ar[d] *= corr;
        for (j = 0; j < nv; j++) {
            float p = expf(sr[j] - mnew);
            t->l[r] += p;
            for (d = 0; d < hd; d++)
                ar[d] += p * row_elem(t->v[j], t->dtype, d);
        }
        t->m[r] = mnew;
    }
}

/*
 * One query head over n_kv positions, key by key (the plain definition the
 * tiled kernels are checked against): out[head_dim] = Σ_p softmax_p(scale ·
 * q·k_p) v_p, k_p/v_p the head's slice at kv_offset in the rows.
 */
void pio_attention_head(float *out, const float *q, pio_kv *kv, int layer, int seq, int n_kv,
                        int kv_offset, int head_dim, float scale)
{
    size_t elem = pio_dtype_size(kv->dtype);
    float m = -INFINITY, l = 0.0f;
    int p, d;

    memset(out, 0, (size_t)head_dim * sizeof(float));
    for (p = 0; p < n_kv; p++) {
        const uint8_t *k = (const uint8_t *)kv->ops->k_row(kv, layer, seq, p) + (size_t)kv_offset * elem;
        const uint8_t *v = (const uint8_t *)kv->ops->v_row(kv, layer, seq, p) + (size_t)kv_offset * elem;
        float s = 0.0f, e;
        for (d = 0; d < head_dim; d++)
            s += q[d] * row_elem(k, kv->dtype, d);
        s *= scale;
        if (s > m) {
            float corr = expf(m - s);
            l *= corr;
            for (d = 0; d < head_dim; d++)
                out[d] *= corr;
            m = s;
        }
        e = expf(s - m);
        l += e;
        for (d = 0; d < head_dim; d++)
            out[d] += e * row_elem(v, kv->dtype, d);
    }
    if (l > 0.0f)
        for (d = 0; d < head_dim; d++)
            out[d] /= l;
}

/* ---- the driver -------------------------------------------------------------- */

/* Tokens [t0, t0+nt) of the batch: one sequence, adjacent in the batch. */
typedef struct q_tile {
    int t0, nt, seq;
    int n_keys;              /* max pos + 1 over the tokens: keys to read */
} q_tile;

typedef struct attn_run {
    const pio_attn_kernels *kt;
    const pio_batch *b;
    pio_kv *kv;
    int layer, n_heads, n_kv_heads, group, hd;
    float scale;
    const float *q;          /* [n_tokens][n_heads*hd] */
    float *out;              /* [n_tokens][n_heads*hd] */
    const q_tile *tiles;
    int n_split, split_len;  /* key ranges per (tile, KV head), keys per range */
    int rows_max;            /* query rows per (task, KV head), at most */
    int hpt;                 /* KV heads per task: 1 or n_kv_heads */
    size_t thread_bytes;     /* per-thread scratch */
    uint8_t *scratch;        /* [threads][thread_bytes] */
    float *part;             /* [tile][kv head][split][rows_max][hd + 2], n_split > 1 */
} attn_run;

/* Per-thread scratch layout (all pieces 64-byte aligned). */
typedef struct attn_scratch {
    float *q, *acc, *s, *m, *l;
    int *n_vis;
    const void **kp, **vp;   /* [TK] the head's slices */
    const void **kb, **vb;   /* [TK] the rows at the task's first head */
} attn_scratch;

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static size_t scratch_layout(const attn_run *r, uint8_t *base, attn_scratch *sc)
{
    size_t off = 0, rows = (size_t)r->rows_max, hd = (size_t)r->hd;
#define TAKE(field, type, count) \
    do { if (sc) sc->field = (type)(void *)(base + off); off += align64((count)); } while (0)
    size_t hrows = rows * (size_t)r->hpt;          /* one state per KV head of the task */
    TAKE(q, float *, hrows * hd * sizeof(float));
    TAKE(acc, float *, hrows * hd * sizeof(float));
    TAKE(s, float *, rows * TK * sizeof(float));
    TAKE(m, float *, hrows * sizeof(float));
    TAKE(l, float *, hrows * sizeof(float));
    TAKE(n_vis, int *, rows * sizeof(int));
    TAKE(kp, const void **, TK * sizeof(void *));
    TAKE(vp, const void **, TK * sizeof(void *));
    TAKE(kb, const void **, TK * sizeof(void *));
    TAKE(vb, const void **, TK * sizeof(void *));
#undef TAKE
    return off;
}

/*
 * Ask for `bytes` at k_off of the rows of keys/values [kp, min(kp + TK,
 * k1)) ahead of use. A per-head task reads head_dim elements out of every
 * k_dim-element row, a stride the hardware prefetchers follow poorly once
 * the cache is larger than the last-level cache; one tile ahead keeps
 * enough loads in flight.
 */
static void prefetch_tile(const attn_run *r, int seq, int kp, int k1, size_t k_off, size_t bytes)
{
    pio_kv *kv = r->kv;
    size_t elem = pio_dtype_size(kv->dtype), off;
    size_t k_stride = (size_t)kv->k_dim * elem, v_stride = (size_t)kv->v_dim * elem;
    int end = kp + TK < k1 ? kp + TK : k1, p = kp;
    while (p < end) {
        int run = kv->ops->contiguous(kv, seq, p), u;
        const uint8_t *kr = (const uint8_t *)kv->ops->k_row(kv, r->layer, seq, p) + k_off;
        const uint8_t *vr = (const uint8_t *)kv->ops->v_row(kv, r->layer, seq, p) + k_off;
        if (run > end - p)
            run = end - p;
        for (u = 0; u < run; u++)
            for (off = 0; off < bytes; off += 64) {
                __builtin_prefetch(kr + (size_t)u * k_stride + off);
                __builtin_prefetch(vr + (size_t)u * v_stride + off);
            }
        p += run;
    }
}

/*
 * Whole-row walk (hpt > 1), before head gi's tile: prefetch the key and
 * value slices of head gi + 1 (and head 0's values at gi = 0) into L2, so
 * they arrive while head gi computes. Without it the tile waited on every
 * key's first value line (perf: 47% of decode at 8K context on the first
 * FMA after that load). attn_bench, decode at 8192, one layer, alternated
 * (Zen 4), ms on 1 / 2 threads: none 6.3-6.9 / 3.1-3.6; into L1 (T0)
 * 5.0-5.6 / 2.3-2.7; into L2 (T1) 3.2-3.6 / 1.6-2.0: the 512 lines of a
 * head would overrun L1's miss buffers. (A burst of the whole next tile,
 * 4096 lines, had been slower than none.)
 */
static void prefetch_heads(const attn_scratch *sc, int nk, int gi, int hpt, size_t head_bytes)
{
    size_t off;
    int j;
    for (j = 0; j < nk; j++)
        for (off = 0; off < head_bytes; off += 64) {
            if (gi == 0)
                __builtin_prefetch((const uint8_t *)sc->vp[j] + off, 0, 2);
            if (gi + 1 < hpt) {
                __builtin_prefetch((const uint8_t *)sc->kp[j] + head_bytes + off, 0, 2);
                __builtin_prefetch((const uint8_t *)sc->vp[j] + head_bytes + off, 0, 2);
            }
        }
}

/*
 * Task = (query tile, `hpt` consecutive KV heads, key range). With hpt = 1
 * (prefill) a task streams one head's slices; with hpt = n_kv_heads (long
 * decode, see pio_attention_run) it walks whole rows, which the cache holds
 * contiguously, and keeps one softmax state per head.
 */
static void attn_task(void *ctx, int task, int thread)
{
    const attn_run *r = ctx;
    int n_hg = r->n_kv_heads / r->hpt;
    int sp = task % r->n_split, hg = (task / r->n_split) % n_hg;
    int ti = task / r->n_split / n_hg;
    const q_tile *qt = &r->tiles[ti];
    pio_kv *kv = r->kv;
    int G = r->group, hd = r->hd, nq = qt->nt * G, i, h, row, d, gi;
    int k0 = sp * r->split_len, k1 = k0 + r->split_len, kp;
    size_t elem = pio_dtype_size(kv->dtype), head_bytes = (size_t)hd * elem;
    size_t k_stride = (size_t)kv->k_dim * elem, v_stride = (size_t)kv->v_dim * elem;
    size_t k_off0 = (size_t)(hg * r->hpt) * head_bytes, st_rows = (size_t)r->rows_max;
    attn_scratch sc;
    pio_attn_tile tile;

    scratch_layout(r, r->scratch + (size_t)thread * r->thread_bytes, &sc);
    if (k1 > qt->n_keys)
        k1 = qt->n_keys;
    for (gi = 0; gi < r->hpt; gi++) {
        int g = hg * r->hpt + gi;
        for (i = 0; i < qt->nt; i++)
            for (h = 0; h < G; h++) {
                const float *src = r->q + ((size_t)(qt->t0 + i) * (size_t)r->n_heads +
                                           (size_t)(g * G + h)) * (size_t)hd;
                row = gi * (int)st_rows + i * G + h;
                for (d = 0; d < hd; d++)
                    sc.q[(size_t)row * hd + d] = src[d] * r->scale;
                sc.m[row] = -INFINITY;
                sc.l[row] = 0.0f;
            }
        memset(sc.acc + (size_t)gi * st_rows * hd, 0, (size_t)nq * (size_t)hd * sizeof(float));
    }

    tile.head_dim = hd;
    tile.nq = nq;
    tile.dtype = kv->dtype;
    tile.k = sc.kp;
    tile.v = sc.vp;
    tile.n_vis = sc.n_vis;
    tile.s = sc.s;
    for (kp = k0; kp < k1; kp += TK) {
        int nk = k1 - kp < TK ? k1 - kp : TK, j = 0;
        /* per-head slices are a stride the hardware prefetchers miss; whole
         * rows (hpt = n_kv_heads) are runs of contiguous rows, which they
         * follow, and a software burst of the next tile (4096 lines at
         * Qwen3-4B's shape) only got in their way: decode at 8K context ran
         * 5-10% faster without it (attn_bench, alternated runs) */
        if (kp + TK < k1 && r->hpt < r->n_kv_heads)
            prefetch_tile(r, qt->seq, kp + TK, k1, k_off0, (size_t)r->hpt * head_bytes);
        while (j < nk) {                     /* row pointers, one block run at a time */
            int run = kv->ops->contiguous(kv, qt->seq, kp + j), u;
            const uint8_t *kr = (const uint8_t *)kv->ops->k_row(kv, r->layer, qt->seq, kp + j) + k_off0;
            const uint8_t *vr = (const uint8_t *)kv->ops->v_row(kv, r->layer, qt->seq, kp + j) + k_off0;
            if (run > nk - j)
                run = nk - j;
            for (u = 0; u < run; u++) {
                sc.kb[j + u] = kr + (size_t)u * k_stride;
                sc.vb[j + u] = vr + (size_t)u * v_stride;
            }
            j += run;
        }
        for (i = 0; i < qt->nt; i++) {
            int nv = r->b->pos[qt->t0 + i] + 1 - kp;
            nv = nv < 0 ? 0 : nv > nk ? nk : nv;
            for (h = 0; h < G; h++)
                sc.n_vis[i * G + h] = nv;
        }
        tile.nk = nk;
        for (gi = 0; gi < r->hpt; gi++) {
            size_t off = (size_t)gi * head_bytes;
            for (j = 0; j < nk; j++) {
                sc.kp[j] = (const uint8_t *)sc.kb[j] + off;
                sc.vp[j] = (const uint8_t *)sc.vb[j] + off;
            }
            if (r->hpt > 1)
                prefetch_heads(&sc, nk, gi, r->hpt, head_bytes);
            tile.q = sc.q + (size_t)gi * st_rows * hd;
            tile.m = sc.m + (size_t)gi * st_rows;
            tile.l = sc.l + (size_t)gi * st_rows;
            tile.acc = sc.acc + (size_t)gi * st_rows * hd;
            r->kt->tile(&tile);
        }
    }

    for (gi = 0; gi < r->hpt; gi++) {
        int g = hg * r->hpt + gi;
        const float *m = sc.m + (size_t)gi * st_rows, *l = sc.l + (size_t)gi * st_rows;
        const float *acc = sc.acc + (size_t)gi * st_rows * hd;
        if (r->n_split == 1) {
            for (i = 0; i < qt->nt; i++)
                for (h = 0; h < G; h++) {
                    float *dst = r->out + ((size_t)(qt->t0 + i) * (size_t)r->n_heads +
                                           (size_t)(g * G + h)) * (size_t)hd;
                    float inv;
                    row = i * G + h;
                    inv = l[row] > 0.0f ? 1.0f / l[row] : 0.0f;
                    for (d = 0; d < hd; d++)
                        dst[d] = acc[(size_t)row * hd + d] * inv;
                }
        } else {
            size_t pt = ((size_t)ti * (size_t)r->n_kv_heads + (size_t)g) * (size_t)r->n_split + (size_t)sp;
            float *part = r->part + pt * st_rows * (size_t)(hd + 2);
            for (row = 0; row < nq; row++) {
                float *pr = part + (size_t)row * (size_t)(hd + 2);
                pr[0] = m[row];
                pr[1] = l[row];
                memcpy(pr + 2, acc + (size_t)row * hd, (size_t)hd * sizeof(float));
            }
        }
    }
}

/* Merge the n_split partial (m, l, acc) of every (tile, KV head) row into out. */
static void attn_combine(const attn_run *r, int n_tiles)
{
    int hd = r->hd, G = r->group, ti, g, i, h, sp, d;
    size_t row_floats = (size_t)hd + 2;
    for (ti = 0; ti < n_tiles; ti++)
        for (g = 0; g < r->n_kv_heads; g++) {
            const q_tile *qt = &r->tiles[ti];
            size_t task0 = ((size_t)ti * (size_t)r->n_kv_heads + (size_t)g) * (size_t)r->n_split;
            for (i = 0; i < qt->nt; i++)
                for (h = 0; h < G; h++) {
                    int row = i * G + h;
                    float *dst = r->out + ((size_t)(qt->t0 + i) * (size_t)r->n_heads +
                                           (size_t)(g * G + h)) * (size_t)hd;
                    float M = -INFINITY, L = 0.0f;
                    for (sp = 0; sp < r->n_split; sp++) {
                        const float *pr = r->part + ((task0 + (size_t)sp) * (size_t)r->rows_max +
                                                     (size_t)row) * row_floats;
                        M = fmaxf(M, pr[0]);
                    }
                    memset(dst, 0, (size_t)hd * sizeof(float));
                    if (M == -INFINITY)
                        continue;
                    for (sp = 0; sp < r->n_split; sp++) {
                        const float *pr = r->part + ((task0 + (size_t)sp) * (size_t)r->rows_max +
                                                     (size_t)row) * row_floats;
                        float w;
                        if (pr[0] == -INFINITY)
                            continue;
                        w = expf(pr[0] - M);
                        L += w * pr[1];
                        for (d = 0; d < hd; d++)
                            dst[d] += w * pr[2 + d];
                    }
                    if (L > 0.0f)
                        for (d = 0; d < hd; d++)
                            dst[d] /= L;
                }
        }
}

pio_status pio_attention_run(const pio_attn_kernels *kt, pio_threadpool *tp, float *out,
                             const float *q, const pio_batch *b, pio_kv *kv, int layer,
                             int n_heads, int n_kv_heads, int head_dim, float scale,
                             int split_keys)
{
    attn_run r;
    q_tile *tiles = NULL;
    int n = b->n_tokens, n_threads = tp ? pio_threadpool_size(tp) : 1;
    int per_tile, n_tiles = 0, max_keys = 0, max_nt = 0, t, n_tasks;
    pio_status st = PIO_STATUS_OK;

    if (n <= 0)
        return PIO_STATUS_OK;
    if (n_kv_heads <= 0 || n_heads % n_kv_heads != 0 || head_dim <= 0 ||
        kv->k_dim < n_kv_heads * head_dim || kv->v_dim < n_kv_heads * head_dim)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                         "attention: %d heads / %d KV heads of %d do not fit cache rows of %d/%d",
                         n_heads, n_kv_heads, head_dim, kv->k_dim, kv->v_dim);
    memset(&r, 0, sizeof r);
    r.kt = kt;
    r.b = b;
    r.kv = kv;
    r.layer = layer;
    r.n_heads = n_heads;
    r.n_kv_heads = n_kv_heads;
    r.group = n_heads / n_kv_heads;
    r.hd = head_dim;
    r.scale = scale;
    r.q = q;
    r.out = out;
    per_tile = PIO_ATTN_TILE_ROWS / r.group > 1 ? PIO_ATTN_TILE_ROWS / r.group : 1;

    tiles = malloc((size_t)n * sizeof *tiles);
    if (!tiles)
        goto nomem;
    for (t = 0; t < n; t++) {
        q_tile *last = n_tiles ? &tiles[n_tiles - 1] : NULL;
        if (last && last->seq == b->seq_id[t] && last->nt < per_tile) {
            last->nt++;
        } else {
            last = &tiles[n_tiles++];
            last->t0 = t;
            last->nt = 1;
            last->seq = b->seq_id[t];
            last->n_keys = 0;
        }
        if (b->pos[t] + 1 > last->n_keys)
            last->n_keys = b->pos[t] + 1;
        if (last->n_keys > max_keys)
            max_keys = last->n_keys;
        if (last->nt > max_nt)
            max_nt = last->nt;
    }
    r.tiles = tiles;
    r.rows_max = per_tile * r.group;

    /* split-K: see the top of the file */
    r.n_split = 1;
    r.split_len = max_keys;
    r.hpt = 1;
    if (split_keys != 0) {
        int len = split_keys < 0 ? -split_keys : split_keys;
        r.split_len = (len + TK - 1) / TK * TK;
        r.hpt = split_keys < 0 ? n_kv_heads : 1;
    } else if (max_nt <= 2 && n_tiles < ATTN_TASKS_PER_THREAD * n_threads &&
               max_keys >= 2 * ATTN_ROW_SPLIT_MIN) {
        /* decode at long context: whole rows per task, keys split */
        int want = (ATTN_TASKS_PER_THREAD * n_threads + n_tiles - 1) / n_tiles;
        int by_len = max_keys / ATTN_ROW_SPLIT_MIN;
        int ns = want < by_len ? want : by_len, len = (max_keys + ns - 1) / ns;
        r.split_len = (len + TK - 1) / TK * TK;
        r.hpt = n_kv_heads;
    } else if (n_tiles * n_kv_heads < ATTN_TASKS_PER_THREAD * n_threads &&
               max_keys >= 2 * ATTN_SPLIT_MIN) {
        int base = n_tiles * n_kv_heads;
        int want = (ATTN_TASKS_PER_THREAD * n_threads + base - 1) / base;
        int by_len = max_keys / ATTN_SPLIT_MIN;
        int ns = want < by_len ? want : by_len, len = (max_keys + ns - 1) / ns;
        r.split_len = (len + TK - 1) / TK * TK;
    }
    if (r.split_len < 1)
        r.split_len = 1;
    r.n_split = (max_keys + r.split_len - 1) / r.split_len;
    n_tasks = n_tiles * (n_kv_heads / r.hpt) * r.n_split;

    r.thread_bytes = scratch_layout(&r, NULL, NULL);
    r.scratch = aligned_alloc(64, (size_t)n_threads * r.thread_bytes);
    if (!r.scratch)
        goto nomem;
    /* the tile kernels may read score rows up to a vector past n_vis */
    memset(r.scratch, 0, (size_t)n_threads * r.thread_bytes);
    if (r.n_split > 1) {
        r.part = malloc((size_t)n_tiles * (size_t)n_kv_heads * (size_t)r.n_split *
                        (size_t)r.rows_max * (size_t)(head_dim + 2) * sizeof(float));
        if (!r.part)
            goto nomem;
    }
    pio_threadpool_run(tp, n_tasks, attn_task, &r);
    if (r.n_split > 1)
        attn_combine(&r, n_tiles);
    goto out;

nomem:
    st = pio_error(PIO_STATUS_ERR_NOMEM, "attention: out of memory for %d tokens", n);
out:
    free(r.part);
    free(r.scratch);
    free(tiles);
    return st;
}

/* ---- level tables ------------------------------------------------------------ */

static void init_scalar(pio_attn_kernels *kt)
{
    kt->level = PIO_CPU_LEVEL_SCALAR;
    kt->tile = pio_attn_tile_ref;
    kt->store = pio_attn_store_ref;
}

typedef void (*attn_init_fn)(pio_attn_kernels *kt);
#if defined(__x86_64__)
static const attn_init_fn level_init[PIO_CPU_LEVEL_COUNT] = {
    [PIO_CPU_LEVEL_SCALAR] = init_scalar,
    [PIO_CPU_LEVEL_AVX2] = pio_attn_kernels_init_avx2,
    [PIO_CPU_LEVEL_AVX512] = pio_attn_kernels_init_avx512,
};
#else
static const attn_init_fn level_init[PIO_CPU_LEVEL_COUNT] = {
    [PIO_CPU_LEVEL_SCALAR] = init_scalar,
};
#endif

static pio_attn_kernels tables[PIO_CPU_LEVEL_COUNT];
static bool table_ok[PIO_CPU_LEVEL_COUNT];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* tables[l]: the levels up to l that are built in and supported, in order
 * (a level inherits what it does not implement; AVX512VNNI and AVX512BF16
 * = AVX512 here). */
static void tables_init(void)
{
    int l, m;
    for (l = 0; l < PIO_CPU_LEVEL_COUNT; l++) {
        if (!pio_cpu_level_supported((pio_cpu_level)l))
            continue;
        for (m = 0; m <= l; m++)
            if (level_init[m] && pio_cpu_level_supported((pio_cpu_level)m))
                level_init[m](&tables[l]);
        tables[l].level = (pio_cpu_level)l;
        table_ok[l] = true;
    }
}

const pio_attn_kernels *pio_attn_kernels_for_level(pio_cpu_level level)
{
    pthread_once(&tables_once, tables_init);
    if ((unsigned)level >= PIO_CPU_LEVEL_COUNT || !table_ok[level])
        return NULL;
    return &tables[level];
}

const pio_attn_kernels *pio_attn_kernels_get(void)
{
    const pio_attn_kernels *kt = pio_attn_kernels_for_level(pio_cpu_level_active());
    return kt ? kt : pio_attn_kernels_for_level(PIO_CPU_LEVEL_SCALAR);
}
