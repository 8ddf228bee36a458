/*
 * avx512bf16.c - BF16 weights with vdpbf16ps (AVX512_BF16: Cooper Lake,
 * Sapphire Rapids, Zen 4 class). Compiled with the avx512vnni.c flags plus
 * -mavx512bf16; used only after dispatch.c has checked the CPU. Everything
 * else comes from the AVX-512 VNNI level below.
 *
 * vdpbf16ps adds the products of 16 pairs of bf16 values into 16 f32 lanes:
 * 32 multiply-adds per instruction, twice an f32 FMA. The f32 activations
 * are rounded to bf16 first (vcvtne2ps2bf16: nearest even), as llama.cpp
 * does for BF16 weights; the results then equal the scalar level's on the
 * rounded activations up to summation order (tests/test_kernels_simd.c
 * checks exactly that, on this CPU or under SIMDe emulation).
 *
 *   tile:   R <= 4 rows x T <= 4 tokens (the walk and the stores of
 *           avx512_tile.h); per 32 columns each token's activations are
 *           rounded once and each row is loaded once.
 *   packed: prefill panels of 16-row groups with the column pairs of a row
 *           in one dword: panel[g][p][r] = (w[16g+r][2p], w[16g+r][2p+1]).
 *           A 32 x 6 micro-kernel does 2 panel loads, 6 dword broadcasts
 *           (one token's pair) and 12 vdpbf16ps per column pair. The
 *           activations are rounded per 6 tokens and chunk of columns into a
 *           small buffer, shared by every row group.
 */
#include "avx512_tile.h"

/* 32 f32 values (n <= 32 of them read) rounded to bf16, in order. */
AI __m512bh round_x32(const float *x, int64_t n)
{
    __mmask16 lo = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
    __mmask16 hi = n >= 32 ? (__mmask16)0xffff : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;
    return _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + 16), _mm512_maskz_loadu_ps(lo, x));
}

/* y[t][r] (+)= Σ_c W[r][c]·bf16(X[t][c]) for R rows, T tokens. */
AI void bf16_micro(int R, int T, int64_t k, const uint8_t *w, size_t ws, const uint8_t *x,
                   size_t xs, float *y, size_t ldy, bool accumulate, bool pf)
{
    __m512 acc[4][4];
    int64_t i;
    int r, t;

    zero_acc(R, T, acc);
    for (i = 0; i < k; i += 32) {
        int64_t n = k - i < 32 ? k - i : 32;
        __mmask32 m = n == 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << n) - 1);
        __m512bh xb[4];
#pragma GCC unroll 4
        for (t = 0; t < T; t++)
            xb[t] = round_x32((const float *)(x + (size_t)t * xs) + i, n);
#pragma GCC unroll 4
        for (r = 0; r < R; r++) {
            const uint16_t *wr = (const uint16_t *)(w + (size_t)r * ws) + i;
            __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, wr);
            prefetch_next(pf && n == 32, wr, (size_t)R * ws, 1);
#pragma GCC unroll 4
            for (t = 0; t < T; t++)
                acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv, xb[t]);
        }
    }
    store_tile(R, T, acc, no_extra, y, ldy, accumulate);
}

static void tile_bf16(TILE_ARGS) { TILE_WALK_PF(bf16_micro); }

/* ---- prefill: packed panels ------------------------------------------------------ */

#define PK_ROWS 16          /* rows per group: one zmm of dwords */
#define PK_TOKENS 6         /* tokens per micro-kernel */
#define PK_CHUNK 512        /* columns of activations rounded at a time */

static int64_t pairs_of(int64_t k) { return (k + 1) / 2; }

static size_t pack_size_bf16(int nr, int64_t k)
{
    return (size_t)((nr + PK_ROWS - 1) / PK_ROWS) * (size_t)pairs_of(k) * PK_ROWS * 4;
}

/* Rows past nr and the missing half of an odd k's last pair are zero. */
static void pack_bf16(void *dst, const void *w, size_t ws, int nr, int64_t k)
{
    int64_t np = pairs_of(k), p;
    uint32_t *out = dst;
    int g, r;
    for (g = 0; g * PK_ROWS < nr; g++)
        for (p = 0; p < np; p++, out += PK_ROWS)
            for (r = 0; r < PK_ROWS; r++) {
                int row = g * PK_ROWS + r;
                const uint16_t *wr = (const uint16_t *)((const uint8_t *)w + (size_t)row * ws);
                uint32_t lo = 0, hi = 0;
                if (row < nr) {
                    lo = wr[2 * p];
                    hi = 2 * p + 1 < k ? wr[2 * p + 1] : 0;
                }
                out[r] = lo | hi << 16;
            }
}

/*
 * G row groups (1 or 2) x T tokens over np column pairs: panel g at
 * pg[g], token t's rounded pairs at xb + t·PK_CHUNK/2. rows: valid rows of
 * the last group (1..16).
 */
AI void packed_micro(int G, int T, int64_t np, const uint32_t *pg0, const uint32_t *pg1,
                     const uint32_t *xb, float *y, size_t ldy, int rows, bool accumulate)
{
    __m512 acc[2][PK_TOKENS];
    int64_t p;
    int g, t;
    __mmask16 last = rows >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rows) - 1);

#pragma GCC unroll 2
    for (g = 0; g < G; g++)
#pragma GCC unroll 6
        for (t = 0; t < T; t++)
            acc[g][t] = _mm512_setzero_ps();
    for (p = 0; p < np; p++) {
        __m512bh w0 = (__m512bh)_mm512_load_si512(pg0 + p * PK_ROWS), w1 = w0;
        if (G == 2)
            w1 = (__m512bh)_mm512_load_si512(pg1 + p * PK_ROWS);
#pragma GCC unroll 6
        for (t = 0; t < T; t++) {
            __m512bh xt = (__m512bh)_mm512_set1_epi32((int)xb[(size_t)t * (PK_CHUNK / 2) + p]);
            acc[0][t] = _mm512_dpbf16_ps(acc[0][t], w0, xt);
            if (G == 2)
                acc[1][t] = _mm512_dpbf16_ps(acc[1][t], w1, xt);
        }
    }
#pragma GCC unroll 6
    for (t = 0; t < T; t++)
#pragma GCC unroll 2
        for (g = 0; g < G; g++) {
            float *yt = y + (size_t)t * ldy + (size_t)g * PK_ROWS;
            __mmask16 m = g == G - 1 ? last : (__mmask16)0xffff;
            __m512 v = acc[g][t];
            if (accumulate)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, yt));
            _mm512_mask_storeu_ps(yt, m, v);
        }
}

#define PACKED_CALL(G, T)                                                                   \
    packed_micro(G, T, np, pg0, pg1, xb, yc, ldy, rows, acc)

/* Every row group of the panel for T tokens (xb rounded), one column chunk. */
AI void packed_rows(int T, int nr, int64_t np, int64_t np_all, int64_t p0, const uint32_t *panel,
                    const uint32_t *xb, float *y, size_t ldy, bool acc)
{
    int g = 0, n_groups = (nr + PK_ROWS - 1) / PK_ROWS;
    for (; g < n_groups; g += 2) {
        const uint32_t *pg0 = panel + ((size_t)g * np_all + p0) * PK_ROWS;
        const uint32_t *pg1 = pg0 + (size_t)np_all * PK_ROWS;
        float *yc = y + (size_t)g * PK_ROWS;
        int two = g + 1 < n_groups, rows = nr - (g + two) * PK_ROWS;
        if (rows > PK_ROWS)
            rows = PK_ROWS;
        if (two)
            PACKED_CALL(2, T);
        else
            PACKED_CALL(1, T);
    }
}

static void tile_packed_bf16(int64_t k, int nr, int nt, const void *w, size_t w_stride,
                             const void *x, size_t x_stride, float *y, size_t ldy, bool accumulate)
{
    uint32_t xb[PK_TOKENS * PK_CHUNK / 2] __attribute__((aligned(64)));
    int64_t np_all = pairs_of(k), c;
    int t0;
    (void)w_stride;
    for (t0 = 0; t0 < nt; t0 += PK_TOKENS) {
        int T = nt - t0 < PK_TOKENS ? nt - t0 : PK_TOKENS, t;
        for (c = 0; c < k; c += PK_CHUNK) {
            int64_t n = k - c < PK_CHUNK ? k - c : PK_CHUNK, np = pairs_of(n), i;
            bool acc = accumulate || c > 0;
            for (t = 0; t < T; t++) {
                const float *xt = (const float *)((const uint8_t *)x + (size_t)(t0 + t) * x_stride) + c;
                for (i = 0; i < n; i += 32)
                    _mm512_store_si512(xb + (size_t)t * (PK_CHUNK / 2) + i / 2,
                                       (__m512i)round_x32(xt + i, n - i < 32 ? n - i : 32));
            }
            switch (T) {
            case 6: packed_rows(6, nr, np, np_all, c / 2, w, xb, y + (size_t)t0 * ldy, ldy, acc); break;
            case 5: packed_rows(5, nr, np, np_all, c / 2, w, xb, y + (size_t)t0 * ldy, ldy, acc); break;
            case 4: packed_rows(4, nr, np, np_all, c / 2, w, xb, y + (size_t)t0 * ldy, ldy, acc); break;
            case 3: packed_rows(3, nr, np, np_all, c / 2, w, xb, y + (size_t)t0 * ldy, ldy, acc); break;
            case 2: packed_rows(2, nr, np, np_all, c / 2, w, xb, y + (size_t)t0 * ldy, ldy, acc); break;
            default: packed_rows(1, nr, np, np_all, c / 2, w, xb, y + (size_t)t0 * ldy, ldy, acc); break;
            }
        }
    }
}

void pio_kernels_init_avx512bf16(pio_kernels *kt)
{
    kt->tile[PIO_DTYPE_BF16] = tile_bf16;
    kt->pack_size[PIO_DTYPE_BF16] = pack_size_bf16;
    kt->pack[PIO_DTYPE_BF16] = pack_bf16;
    kt->tile_packed[PIO_DTYPE_BF16] = tile_packed_bf16;
    kt->bf16_act = true;
}
