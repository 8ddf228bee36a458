/*
 * attn_simd_impl.h - the attention tile (attn.h) written once over a vector
 * type; attn_avx2.c (8 lanes) and attn_avx512.c (16 lanes) include it after
 * defining
 *   V, VW                       the vector type and its lanes;
 *   vzero vset1 vld vst vfma vmul vsub vmax   (vfma(a, b, c) = a·b + c);
 *   vld_f16 vld_bf16            VW row elements as f32;
 *   vhsum vhmax                 horizontal sum / max;
 *   VHSUM_4X2, vhsum_4x2        optional: the 8 sums of 4 rows x 2 keys at once;
 *   vexp                        e^x for x <= 0 (0 below -87.3), ~1 ulp;
 *   ATTN_ISA                    the suffix of the init function.
 * The steps are those of pio_attn_tile_ref: scores for 4 rows x 2 keys at a
 * time (each key vector loaded and converted once per 4 rows), the online
 * softmax per row, then the values for 4 rows x 2 vectors of head_dim at a
 * time (each value vector loaded once per 4 rows). head_dim must be a
 * multiple of VW; other tiles go to the reference.
 */
#include "kernels/attn.h"

#include <math.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))
#define TK PIO_ATTN_TILE_KEYS

AI V vrow(const void *row, int i, pio_dtype dt)
{
    if (dt == PIO_DTYPE_F16)
        return vld_f16((const uint16_t *)row + i);
    if (dt == PIO_DTYPE_BF16)
        return vld_bf16((const uint16_t *)row + i);
    return vld((const float *)row + i);
}

/* s[r][j] = q[r]·k[j] for rows r0 .. r0+R-1, keys j < nk. */
AI void scores_rows(const pio_attn_tile *t, int r0, const int R, int nk, pio_dtype dt)
{
    int hd = t->head_dim, j, d, i;
    const float *q = t->q + (size_t)r0 * hd;
    float *s = t->s + (size_t)r0 * TK;
    for (j = 0; j + 2 <= nk; j += 2) {
        V a0[4], a1[4];
#pragma GCC unroll 4
        for (i = 0; i < R; i++)
            a0[i] = a1[i] = vzero();
        for (d = 0; d < hd; d += VW) {
            V k0 = vrow(t->k[j], d, dt), k1 = vrow(t->k[j + 1], d, dt);
#pragma GCC unroll 4
            for (i = 0; i < R; i++) {
                V qv = vld(q + (size_t)i * hd + d);
                a0[i] = vfma(qv, k0, a0[i]);
                a1[i] = vfma(qv, k1, a1[i]);
            }
        }
#ifdef VHSUM_4X2
        if (R == 4) {
            vhsum_4x2(a0, a1, s + j, TK);
            continue;
        }
#endif
#pragma GCC unroll 4
        for (i = 0; i < R; i++) {
            s[(size_t)i * TK + j] = vhsum(a0[i]);
            s[(size_t)i * TK + j + 1] = vhsum(a1[i]);
        }
    }
    if (j < nk) {
        V a0[4];
#pragma GCC unroll 4
        for (i = 0; i < R; i++)
            a0[i] = vzero();
        for (d = 0; d < hd; d += VW) {
            V k0 = vrow(t->k[j], d, dt);
#pragma GCC unroll 4
            for (i = 0; i < R; i++)
                a0[i] = vfma(vld(q + (size_t)i * hd + d), k0, a0[i]);
        }
#pragma GCC unroll 4
        for (i = 0; i < R; i++)
            s[(size_t)i * TK + j] = vhsum(a0[i]);
    }
}

/* acc[r] += Σ_{j<nk} p[r][j] v[j] for rows r0 .. r0+R-1 (p in t->s). */
AI void values_rows(const pio_attn_tile *t, int r0, const int R, int nk, pio_dtype dt)
{
    int hd = t->head_dim, j, d, i;
    const float *p = t->s + (size_t)r0 * TK;
    float *acc = t->acc + (size_t)r0 * hd;
    for (d = 0; d + 2 * VW <= hd; d += 2 * VW) {
        V a0[4], a1[4];
#pragma GCC unroll 4
        for (i = 0; i < R; i++) {
            a0[i] = vld(acc + (size_t)i * hd + d);
            a1[i] = vld(acc + (size_t)i * hd + d + VW);
        }
        for (j = 0; j < nk; j++) {
            V v0 = vrow(t->v[j], d, dt), v1 = vrow(t->v[j], d + VW, dt);
#pragma GCC unroll 4
            for (i = 0; i < R; i++) {
                V pv = vset1(p[(size_t)i * TK + j]);
                a0[i] = vfma(pv, v0, a0[i]);
                a1[i] = vfma(pv, v1, a1[i]);
            }
        }
#pragma GCC unroll 4
        for (i = 0; i < R; i++) {
            vst(acc + (size_t)i * hd + d, a0[i]);
            vst(acc + (size_t)i * hd + d + VW, a1[i]);
        }
    }
    if (d < hd) {                       /* head_dim an odd number of vectors */
        V a0[4];
#pragma GCC unroll 4
        for (i = 0; i < R; i++)
            a0[i] = vld(acc + (size_t)i * hd + d);
        for (j = 0; j < nk; j++) {
            V v0 = vrow(t->v[j], d, dt);
#pragma GCC unroll 4
            for (i = 0; i < R; i++)
                a0[i] = vfma(vset1(p[(size_t)i * TK + j]), v0, a0[i]);
        }
#pragma GCC unroll 4
        for (i = 0; i < R; i++)
            vst(acc + (size_t)i * hd + d, a0[i]);
    }
}

/*
 * Online-softmax step of row r over its scores s[r][0..nv): rescale l and
 * acc, turn the scores into e^(s - m') in place, and zero s[r][nv..nk) so
 * values_rows may run every row over the same nk keys.
 */
AI void softmax_row(const pio_attn_tile *t, int r, int nk)
{
    int hd = t->head_dim, nv = t->n_vis[r], j, d;
    float *s = t->s + (size_t)r * TK, *acc = t->acc + (size_t)r * hd;
    float mx, mnew, corr, sum;
    V vm, vs;

    if (nv <= 0) {
        memset(s, 0, (size_t)nk * sizeof(float));
        return;
    }
    vm = vset1(-INFINITY);
    for (j = 0; j + VW <= nv; j += VW)
        vm = vmax(vm, vld(s + j));
    mx = vhmax(vm);
    for (; j < nv; j++)
        mx = fmaxf(mx, s[j]);
    mnew = fmaxf(t->m[r], mx);
    corr = expf(t->m[r] - mnew);         /* 0 on the first tile (m = -inf) */
    vs = vzero();
    for (j = 0; j < nv; j += VW) {       /* s has TK >= round_up(nv, VW) floats */
        V e = vexp(vsub(vld(s + j), vset1(mnew)));
        vst(s + j, e);
    }
    for (j = nv; j < nk || (j % VW) != 0; j++)
        s[j] = 0.0f;
    for (j = 0; j < nv; j += VW)
        vs = vadd(vs, vld(s + j));
    sum = vhsum(vs);
    t->l[r] = t->l[r] * corr + sum;
    if (corr != 1.0f) {
        V vc = vset1(corr);
        for (d = 0; d < hd; d += VW)
            vst(acc + d, vmul(vld(acc + d), vc));
    }
    t->m[r] = mnew;
}

AI void tile_body(const pio_attn_tile *t, pio_dtype dt)
{
    int nq = t->nq, nk = 0, r;
    for (r = 0; r < nq; r++)             /* keys any row sees */
        if (t->n_vis[r] > nk)
            nk = t->n_vis[r];
    if (nk <= 0)
        return;
    for (r = 0; r + 4 <= nq; r += 4)
        scores_rows(t, r, 4, nk, dt);
    switch (nq - r) {
    case 3: scores_rows(t, r, 3, nk, dt); break;
    case 2: scores_rows(t, r, 2, nk, dt); break;
    case 1: scores_rows(t, r, 1, nk, dt); break;
    default: break;
    }
    for (r = 0; r < nq; r++)
        softmax_row(t, r, nk);
    for (r = 0; r + 4 <= nq; r += 4)
        values_rows(t, r, 4, nk, dt);
    switch (nq - r) {
    case 3: values_rows(t, r, 3, nk, dt); break;
    case 2: values_rows(t, r, 2, nk, dt); break;
    case 1: values_rows(t, r, 1, nk, dt); break;
    default: break;
    }
}

static void tile_f32(const pio_attn_tile *t) { tile_body(t, PIO_DTYPE_F32); }
static void tile_f16(const pio_attn_tile *t) { tile_body(t, PIO_DTYPE_F16); }
static void tile_bf16(const pio_attn_tile *t) { tile_body(t, PIO_DTYPE_BF16); }

static void attn_tile(const pio_attn_tile *t)
{
    if (t->head_dim % VW != 0) {
        pio_attn_tile_ref(t);
        return;
    }
    switch (t->dtype) {
    case PIO_DTYPE_F16: tile_f16(t); break;
    case PIO_DTYPE_BF16: tile_bf16(t); break;
    default: tile_f32(t); break;
    }
}

#define ATTN_INIT_NAME2(isa) pio_attn_kernels_init_##isa
#define ATTN_INIT_NAME(isa) ATTN_INIT_NAME2(isa)

void ATTN_INIT_NAME(ATTN_ISA)(pio_attn_kernels *kt)
{
    kt->tile = attn_tile;
    kt->store = attn_store;
}
