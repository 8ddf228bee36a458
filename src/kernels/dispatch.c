/*
 * dispatch.c - the kernel tables per CPU level, and the scalar level.
 *
 * The scalar level is plain C (auto-vectorized where the compiler can, with
 * the baseline ISA only). It is the fallback on every CPU and the reference
 * the SIMD levels are diffed against by tests/test_kernels_simd.c, next to
 * the quant module's pio_vec_dot_*_ref functions.
 */
#include "kernels/dispatch.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

/* ---- activation formats --------------------------------------------------- */

int pio_act_kind_of(pio_dtype dt)
{
    switch (dt) {
    case PIO_DTYPE_F32: case PIO_DTYPE_F16: case PIO_DTYPE_BF16: return PIO_ACT_F32;
    case PIO_DTYPE_Q8_0: case PIO_DTYPE_Q4_0:
    case PIO_DTYPE_Q8_0_X8: case PIO_DTYPE_Q4_0_X8: return PIO_ACT_Q8;
    case PIO_DTYPE_Q4_K: case PIO_DTYPE_Q6_K:
    case PIO_DTYPE_Q4_K_X8: case PIO_DTYPE_Q6_K_X8: return PIO_ACT_Q8_K;
    default: return -1;
    }
}

size_t pio_act_row_bytes(pio_act_kind kind, int64_t k)
{
    switch (kind) {
    case PIO_ACT_F32: return (size_t)k * sizeof(float);
    case PIO_ACT_Q8:
        return (size_t)((k + PIO_ACT_Q8_GROUP - 1) / PIO_ACT_Q8_GROUP) * PIO_ACT_Q8_GROUP_BYTES;
    case PIO_ACT_Q8_K: return (size_t)(k / PIO_QK_K) * sizeof(pio_block_q8_K);
    }
    return 0;
}

/* ---- scalar quantizers ---------------------------------------------------- */

/* Round to nearest, ties to even, for |v| < 2^22 (GGML's nearest_int). */
static inline int nearest_int(float v)
{
    float f = v + 12582912.f;
    int32_t i;
    memcpy(&i, &f, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* PIO_ACT_Q8 row: per block of 32, d = amax/127, q = rint(x·(1/d)), s = Σq. */
static void quantize_q8_scalar(const float *x, void *xq, int64_t k)
{
    int64_t nb = k / 32, b;
    uint8_t *out = xq;
    int64_t ng = (k + PIO_ACT_Q8_GROUP - 1) / PIO_ACT_Q8_GROUP;

    memset(out + (size_t)(ng - 1) * PIO_ACT_Q8_GROUP_BYTES, 0, PIO_ACT_Q8_GROUP_BYTES);
    for (b = 0; b < nb; b++) {
        uint8_t *g = out + (size_t)(b / 8) * PIO_ACT_Q8_GROUP_BYTES;
        int8_t *qs = (int8_t *)g + 32 * (b % 8);
        float *dd = (float *)(g + 256);
        int32_t *ss = (int32_t *)(g + 288);
        const float *xb = x + b * 32;
        float amax = 0.0f, d, id;
        int32_t sum = 0;
        int i;
        for (i = 0; i < 32; i++)
            amax = fmaxf(amax, fabsf(xb[i]));
        d = amax / 127.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        for (i = 0; i < 32; i++) {
            int q = nearest_int(xb[i] * id);
            qs[i] = (int8_t)q;
            sum += q;
        }
        dd[b % 8] = d;
        ss[b % 8] = sum;
    }
}

/* GGML quantize_row_q8_K: d from the signed max, q = min(127, rint(-127/max·x)). */
static void quantize_q8_K_scalar(const float *x, pio_block_q8_K *y, int64_t k)
{
    int64_t nb = k / PIO_QK_K, i;
    for (i = 0; i < nb; i++, x += PIO_QK_K) {
        float max = 0.0f, amax = 0.0f, iscale;
        int j;
        for (j = 0; j < PIO_QK_K; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        iscale = -127.0f / max;
        for (j = 0; j < PIO_QK_K; j++) {
            int v = nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (j = 0; j < PIO_QK_K / 16; j++) {
            int sum = 0, l;
            for (l = 0; l < 16; l++)
                sum += y[i].qs[j * 16 + l];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ---- scalar dot products (one weight row · one activation row) ----------- */

static float dot_float_scalar(pio_dtype dt, const void *w, const float *x, int64_t k)
{
    float buf[256];
    float s = 0.0f;
    int64_t c0, c;
    if (dt == PIO_DTYPE_F32)
        return pio_dot_f32(w, x, k);
    for (c0 = 0; c0 < k; c0 += 256) {
        int64_t m = k - c0 < 256 ? k - c0 : 256;
        float part = 0.0f;
        pio_convert_to_f32(buf, (const uint16_t *)w + c0, dt, m);
#pragma omp simd reduction(+ : part)
        for (c = 0; c < m; c++)
            part += buf[c] * x[c0 + c];
        s += part;
    }
    return s;
}

static float dot_q8_0_scalar(const pio_block_q8_0 *w, const uint8_t *xq, int64_t k)
{
    int64_t nb = k / 32, b;
    float s = 0.0f;
    for (b = 0; b < nb; b++) {
        const uint8_t *g = xq + (size_t)(b / 8) * PIO_ACT_Q8_GROUP_BYTES;
        const int8_t *qx = (const int8_t *)g + 32 * (b % 8);
        float dx;
        int32_t sum = 0;
        int i;
        memcpy(&dx, g + 256 + 4 * (b % 8), 4);
        for (i = 0; i < 32; i++)
            sum += w[b].qs[i] * qx[i];
        s += pio_f16_to_f32(w[b].d) * dx * (float)sum;
    }
    return s;
}

static float dot_q4_0_scalar(const pio_block_q4_0 *w, const uint8_t *xq, int64_t k)
{
    int64_t nb = k / 32, b;
    float s = 0.0f;
    for (b = 0; b < nb; b++) {
        const uint8_t *g = xq + (size_t)(b / 8) * PIO_ACT_Q8_GROUP_BYTES;
        const int8_t *qx = (const int8_t *)g + 32 * (b % 8);
        float dx;
        int32_t sum = 0;
        int i;
        memcpy(&dx, g + 256 + 4 * (b % 8), 4);
        for (i = 0; i < 16; i++)
            sum += ((w[b].qs[i] & 15) - 8) * qx[i] + ((w[b].qs[i] >> 4) - 8) * qx[i + 16];
        s += pio_f16_to_f32(w[b].d) * dx * (float)sum;
    }
    return s;
}

/* Row i (0..7) of a Q8_0_X8 / Q4_0_X8 group: the same sums in the same
 * order as dot_q8_0_scalar / dot_q4_0_scalar on the row it was packed from,
 * so the results are equal. */
static float dot_q8_0_x8_scalar(const pio_block_q8_0x8 *g, int i, const uint8_t *xq, int64_t k)
{
    int64_t nb = k / 32, b;
    float s = 0.0f;
    for (b = 0; b < nb; b++) {
        const uint8_t *grp = xq + (size_t)(b / 8) * PIO_ACT_Q8_GROUP_BYTES;
        const int8_t *qx = (const int8_t *)grp + 32 * (b % 8);
        float dx;
        int32_t sum = 0;
        int c, j;
        memcpy(&dx, grp + 256 + 4 * (b % 8), 4);
        for (c = 0; c < 8; c++)
            for (j = 0; j < 4; j++)
                sum += g[b].qs[c][i][j] * qx[4 * c + j];
        s += pio_f16_to_f32(g[b].d[i]) * dx * (float)sum;
    }
    return s;
}

static float dot_q4_0_x8_scalar(const pio_block_q4_0x8 *g, int i, const uint8_t *xq, int64_t k)
{
    int64_t nb = k / 32, b;
    float s = 0.0f;
    for (b = 0; b < nb; b++) {
        const uint8_t *grp = xq + (size_t)(b / 8) * PIO_ACT_Q8_GROUP_BYTES;
        const int8_t *qx = (const int8_t *)grp + 32 * (b % 8);
        float dx;
        int32_t sum = 0;
        int c, j;
        memcpy(&dx, grp + 256 + 4 * (b % 8), 4);
        for (c = 0; c < 4; c++)
            for (j = 0; j < 4; j++) {
                uint8_t q = g[b].qs[c][i][j];
                sum += ((q & 15) - 8) * qx[4 * c + j] + ((q >> 4) - 8) * qx[4 * c + j + 16];
            }
        s += pio_f16_to_f32(g[b].d[i]) * dx * (float)sum;
    }
    return s;
}

/* Q4_K 6-bit scale and min of sub-block j (GGML get_scale_min_k4). */
static inline void q4k_scale_min(int j, const uint8_t *q, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Block i's term of a Q4_K row's dot product (GGML's order within the block). */
static float q4_K_block_term(const void *wb, const pio_block_q8_K *x)
{
    const pio_block_q4_K *w = wb;
    int32_t sumi = 0, summ = 0;
    int j, l;
    for (j = 0; j < 8; j++) {
        const uint8_t *q = w->qs + 32 * (j / 2);
        const int8_t *qx = x->qs + 32 * j;
        int sc, m, shift = 4 * (j & 1);
        int32_t dot = 0;
        q4k_scale_min(j, w->scales, &sc, &m);
        for (l = 0; l < 32; l++)
            dot += ((q[l] >> shift) & 15) * qx[l];
        sumi += sc * dot;
        summ += m * (x->bsums[2 * j] + x->bsums[2 * j + 1]);
    }
    return x->d * (pio_f16_to_f32(w->d) * (float)sumi - pio_f16_to_f32(w->dmin) * (float)summ);
}

static float dot_q4_K_scalar(const pio_block_q4_K *w, const pio_block_q8_K *x, int64_t k)
{
    int64_t nb = k / PIO_QK_K, i;
    float s = 0.0f;
    for (i = 0; i < nb; i++)
        s += q4_K_block_term(&w[i], &x[i]);
    return s;
}

/* Block i's term of a Q6_K row's dot product (GGML's order within the block). */
static float q6_K_block_term(const void *wb, const pio_block_q8_K *x)
{
    const pio_block_q6_K *w = wb;
    int32_t sumi = 0;
    int h, c, l;
    for (h = 0; h < 2; h++) {
        const uint8_t *ql = w->ql + 64 * h, *qh = w->qh + 32 * h;
        for (c = 0; c < 4; c++) {
            const int8_t *qx = x->qs + 128 * h + 32 * c;
            const uint8_t *lo = ql + 32 * (c & 1);
            int32_t d0 = 0, d1 = 0;
            for (l = 0; l < 32; l++) {
                int q = ((lo[l] >> (4 * (c >> 1))) & 15) | (((qh[l] >> (2 * c)) & 3) << 4);
                if (l < 16)
                    d0 += (q - 32) * qx[l];
                else
                    d1 += (q - 32) * qx[l];
            }
            sumi += w->scales[8 * h + 2 * c] * d0 + w->scales[8 * h + 2 * c + 1] * d1;
        }
    }
    return x->d * pio_f16_to_f32(w->d) * (float)sumi;
}

static float dot_q6_K_scalar(const pio_block_q6_K *w, const pio_block_q8_K *x, int64_t k)
{
    int64_t nb = k / PIO_QK_K, i;
    float s = 0.0f;
    for (i = 0; i < nb; i++)
        s += q6_K_block_term(&w[i], &x[i]);
    return s;
}

/* Row r (0..7) of a K-quant X8 group (Q4_K_X8, Q6_K_X8): each block
 * gathered back into the plain format, the same terms in the same order as
 * the plain row's dot product, so the results are equal. */
static float dot_k_x8_scalar(pio_dtype x8, float (*term)(const void *, const pio_block_q8_K *),
                             const uint8_t *g, int r, const uint8_t *xq, int64_t k)
{
    const pio_block_q8_K *x = (const pio_block_q8_K *)(const void *)xq;
    const size_t column = PIO_X8_ROWS * pio_dtype_block_bytes(x8);
    int64_t nb = k / PIO_QK_K, i;
    float s = 0.0f;
    for (i = 0; i < nb; i++) {
        union { pio_block_q4_K q4; pio_block_q6_K q6; } b;
        pio_x8_gather_block(x8, g + (size_t)i * column, r, &b);
        s += term(&b, &x[i]);
    }
    return s;
}

static float dot_q4_K_x8_scalar(const uint8_t *g, int r, const uint8_t *xq, int64_t k)
{
    return dot_k_x8_scalar(PIO_DTYPE_Q4_K_X8, q4_K_block_term, g, r, xq, k);
}

static float dot_q6_K_x8_scalar(const uint8_t *g, int r, const uint8_t *xq, int64_t k)
{
    return dot_k_x8_scalar(PIO_DTYPE_Q6_K_X8, q6_K_block_term, g, r, xq, k);
}

/* ---- scalar tiles ---------------------------------------------------------- */

static inline void put(float *y, float v, bool accumulate)
{
    *y = accumulate ? *y + v : v;
}

#define SCALAR_TILE(name, dot_expr)                                                        \
    static void name(int64_t k, int nr, int nt, const void *w, size_t w_stride,              \
                     const void *x, size_t x_stride, float *y, size_t ldy, bool accumulate)  \
    {                                                                                        \
        int r, t;                                                                            \
        for (t = 0; t < nt; t++) {                                                           \
            const void *xt = (const uint8_t *)x + (size_t)t * x_stride;                      \
            for (r = 0; r < nr; r++) {                                                       \
                const void *wr = (const uint8_t *)w + (size_t)r * w_stride;                  \
                put(&y[(size_t)t * ldy + (size_t)r], (dot_expr), accumulate);                \
            }                                                                                \
        }                                                                                    \
    }

SCALAR_TILE(tile_f32_scalar, dot_float_scalar(PIO_DTYPE_F32, wr, xt, k))
SCALAR_TILE(tile_f16_scalar, dot_float_scalar(PIO_DTYPE_F16, wr, xt, k))
SCALAR_TILE(tile_bf16_scalar, dot_float_scalar(PIO_DTYPE_BF16, wr, xt, k))
SCALAR_TILE(tile_q8_0_scalar, dot_q8_0_scalar(wr, xt, k))
SCALAR_TILE(tile_q4_0_scalar, dot_q4_0_scalar(wr, xt, k))
SCALAR_TILE(tile_q4_K_scalar, dot_q4_K_scalar(wr, xt, k))
SCALAR_TILE(tile_q6_K_scalar, dot_q6_K_scalar(wr, xt, k))

/* X8 layouts: nr a multiple of 8; group g at w + 8·g·w_stride (see dispatch.h). */
#define SCALAR_X8_TILE(name, dot_fn)                                                         \
    static void name(int64_t k, int nr, int nt, const void *w, size_t w_stride,              \
                     const void *x, size_t x_stride, float *y, size_t ldy, bool accumulate)  \
    {                                                                                        \
        int r, t;                                                                            \
        for (t = 0; t < nt; t++) {                                                           \
            const uint8_t *xt = (const uint8_t *)x + (size_t)t * x_stride;                   \
            for (r = 0; r < nr; r++) {                                                       \
                const void *g = (const uint8_t *)w + (size_t)(r / 8) * 8 * w_stride;         \
                put(&y[(size_t)t * ldy + (size_t)r], dot_fn(g, r % 8, xt, k), accumulate);   \
            }                                                                                \
        }                                                                                    \
    }

SCALAR_X8_TILE(tile_q8_0_x8_scalar, dot_q8_0_x8_scalar)
SCALAR_X8_TILE(tile_q4_0_x8_scalar, dot_q4_0_x8_scalar)
SCALAR_X8_TILE(tile_q4_K_x8_scalar, dot_q4_K_x8_scalar)
SCALAR_X8_TILE(tile_q6_K_x8_scalar, dot_q6_K_x8_scalar)

void pio_kernels_init_scalar(pio_kernels *kt)
{
    memset(kt, 0, sizeof *kt);
    kt->level = PIO_CPU_LEVEL_SCALAR;
    kt->tile[PIO_DTYPE_F32] = tile_f32_scalar;
    kt->tile[PIO_DTYPE_F16] = tile_f16_scalar;
    kt->tile[PIO_DTYPE_BF16] = tile_bf16_scalar;
    kt->tile[PIO_DTYPE_Q8_0] = tile_q8_0_scalar;
    kt->tile[PIO_DTYPE_Q4_0] = tile_q4_0_scalar;
    kt->tile[PIO_DTYPE_Q4_K] = tile_q4_K_scalar;
    kt->tile[PIO_DTYPE_Q6_K] = tile_q6_K_scalar;
    kt->tile[PIO_DTYPE_Q8_0_X8] = tile_q8_0_x8_scalar;
    kt->tile[PIO_DTYPE_Q4_0_X8] = tile_q4_0_x8_scalar;
    kt->tile[PIO_DTYPE_Q4_K_X8] = tile_q4_K_x8_scalar;
    kt->tile[PIO_DTYPE_Q6_K_X8] = tile_q6_K_x8_scalar;
    for (int d = 0; d < PIO_DTYPE_COUNT; d++)
        kt->weight_layout[d] = (pio_dtype)d;
    kt->quantize_q8 = quantize_q8_scalar;
    kt->quantize_q8_K = quantize_q8_K_scalar;
    kt->to_f32 = pio_convert_to_f32;
    kt->silu_mul = pio_silu_mul_scalar;
}

/* ---- level tables ------------------------------------------------------------ */

/* Builders of the levels compiled into this binary, in level order. */
typedef void (*init_fn)(pio_kernels *kt);
#if defined(__x86_64__)
static const init_fn level_init[PIO_CPU_LEVEL_COUNT] = {
    [PIO_CPU_LEVEL_SCALAR] = pio_kernels_init_scalar,
    [PIO_CPU_LEVEL_AVX2] = pio_kernels_init_avx2,
    [PIO_CPU_LEVEL_AVX512] = pio_kernels_init_avx512,
    [PIO_CPU_LEVEL_AVX512VNNI] = pio_kernels_init_avx512vnni,
    [PIO_CPU_LEVEL_AVX512BF16] = pio_kernels_init_avx512bf16,
};
#elif defined(__aarch64__)
static const init_fn level_init[PIO_CPU_LEVEL_COUNT] = {
    [PIO_CPU_LEVEL_SCALAR] = pio_kernels_init_scalar,
    [PIO_CPU_LEVEL_NEON] = pio_kernels_init_neon,
};
#else
static const init_fn level_init[PIO_CPU_LEVEL_COUNT] = {
    [PIO_CPU_LEVEL_SCALAR] = pio_kernels_init_scalar,
};
#endif

static pio_kernels tables[PIO_CPU_LEVEL_COUNT];
static bool table_ok[PIO_CPU_LEVEL_COUNT];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/*
 * tables[l] = scalar, then each built-in supported level up to l applied in
 * order, so a level inherits whatever it does not implement itself. (x86
 * levels are never supported on ARM and NEON never on x86, so the chains do
 * not mix.)
 */
static void tables_init(void)
{
    int l, m;
    for (l = 0; l < PIO_CPU_LEVEL_COUNT; l++) {
        if (!level_init[l] || !pio_cpu_level_supported((pio_cpu_level)l))
            continue;
        for (m = 0; m <= l; m++)
            if (level_init[m] && pio_cpu_level_supported((pio_cpu_level)m))
                level_init[m](&tables[l]);
        tables[l].level = (pio_cpu_level)l;
        table_ok[l] = true;
    }
}

const pio_kernels *pio_kernels_for_level(pio_cpu_level level)
{
    pthread_once(&tables_once, tables_init);
    if ((unsigned)level >= PIO_CPU_LEVEL_COUNT || !table_ok[level])
        return NULL;
    return &tables[level];
}

const pio_kernels *pio_kernels_get(void)
{
    const pio_kernels *kt = pio_kernels_for_level(pio_cpu_level_active());
    return kt ? kt : pio_kernels_for_level(PIO_CPU_LEVEL_SCALAR);
}

pio_dtype pio_wmat_layout_for(pio_dtype dt, int64_t rows, int64_t cols)
{
    pio_dtype l;
    if ((unsigned)dt >= PIO_DTYPE_COUNT)
        return dt;
    l = pio_kernels_get()->weight_layout[dt];
    if (pio_dtype_is_x8(l) && (rows <= 0 || rows % PIO_X8_ROWS != 0 || cols % pio_dtype_block_elems(l) != 0))
        return dt;
    return l;
}
