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
 * Only the packed prefill path, where compute bounds the speed, rounds.
 * Decode (and prefill too short to pack) keeps the avx512vnni level's f32
 * tile: it is bound by memory, measured 3-15% faster than a vdpbf16ps GEMV
 * tile (kernels_bench, Zen 4), and its f32 activations are exact.
 *
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

/* ---- prefill: packed panels ------------------------------------------------------ */

#define PK_ROWS 16          /* rows per group: one zmm of dwords */
#define PK_TOKENS 6         /* tokens per micro-kernel */
#define PK_CHUNK 512        /* columns of activations rounded at a time */

static int64_t pairs_of(int64_t k) { return (k + 1) / 2; }

static size_t pack_size_bf16(int nr, int64_t k)
{
    return (size_t)((nr + PK_ROWS - 1) / PK_ROWS) * (size_t)pairs_of(k) * PK_ROWS * 4;
}

/*
 * out[j] = dword j of every row: the 16 x 16 dword transpose of r[0..15],
 * in three steps. (1)+(2) interleave dwords, then qwords, within 128-bit
 * lanes: u[4a+b] lane L holds dword 4L+b of rows 4a..4a+3. (3) gathers, for
 * each output dword 4L+b, lane L of u[b], u[4+b], u[8+b], u[12+b] with two
 * rounds of 128-bit lane shuffles.
 */
AI void transpose16x16(__m512i r[16], __m512i out[16])
{
    __m512i t[16], u[16];
    int i, b;
#pragma GCC unroll 8
    for (i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
#pragma GCC unroll 4
    for (i = 0; i < 16; i += 4) {
        u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
#pragma GCC unroll 4
    for (b = 0; b < 4; b++) {
        __m512i xl = _mm512_shuffle_i32x4(u[b], u[4 + b], 0x88);      /* lanes 0, 2 */
        __m512i xh = _mm512_shuffle_i32x4(u[b], u[4 + b], 0xdd);      /* lanes 1, 3 */
        __m512i yl = _mm512_shuffle_i32x4(u[8 + b], u[12 + b], 0x88);
        __m512i yh = _mm512_shuffle_i32x4(u[8 + b], u[12 + b], 0xdd);
        out[b] = _mm512_shuffle_i32x4(xl, yl, 0x88);                  /* L = 0 */
        out[4 + b] = _mm512_shuffle_i32x4(xh, yh, 0x88);              /* L = 1 */
        out[8 + b] = _mm512_shuffle_i32x4(xl, yl, 0xdd);              /* L = 2 */
        out[12 + b] = _mm512_shuffle_i32x4(xh, yh, 0xdd);             /* L = 3 */
    }
}

/*
 * Rows past nr and the missing half of an odd k's last pair are zero. Per
 * 32 columns: one (masked) 64-byte load per row, a dword transpose, and up
 * to 16 aligned panel stores.
 */
static void pack_bf16(void *dst, const void *w, size_t ws, int nr, int64_t k)
{
    int64_t np = pairs_of(k), c;
    uint32_t *out = dst;
    int g, r, j;
    for (g = 0; g * PK_ROWS < nr; g++, out += (size_t)np * PK_ROWS) {
        int rows = nr - g * PK_ROWS < PK_ROWS ? nr - g * PK_ROWS : PK_ROWS;
        const uint8_t *wg = (const uint8_t *)w + (size_t)g * PK_ROWS * ws;
        for (c = 0; c < k; c += 32) {
            int64_t n = k - c < 32 ? k - c : 32;
            __mmask32 m = n == 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << n) - 1);
            __m512i rv[16], tv[16];
            for (r = 0; r < PK_ROWS; r++)
                rv[r] = r < rows ? _mm512_maskz_loadu_epi16(m, (const uint16_t *)(wg + (size_t)r * ws) + c)
                                 : _mm512_setzero_si512();
            transpose16x16(rv, tv);
            for (j = 0; j < (n + 1) / 2; j++)
                _mm512_store_si512(out + (size_t)(c / 2 + j) * PK_ROWS, tv[j]);
        }
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
    kt->pack_size[PIO_DTYPE_BF16] = pack_size_bf16;
    kt->pack[PIO_DTYPE_BF16] = pack_bf16;
    kt->tile_packed[PIO_DTYPE_BF16] = tile_packed_bf16;
    kt->pack_rows[PIO_DTYPE_BF16] = 128;   /* see matmul_prefill */
    kt->bf16_act = true;
}
