/*
 * test_quant.c - the GGML block formats (src/kernels/ref/quant.c) and
 * quantize on load (src/formats/requantize.c).
 *
 *   - f32 -> f16 rounds to nearest even: every half round-trips, ties go to
 *     even, overflow/underflow/NaN as F16C (and against F16C itself when the
 *     CPU has it);
 *   - bit-exactness with GGML: tests/fixtures/quant/ (q8_0.bin ... q8_k.bin, written by
 *     tools/quant_reference.py from the gguf package, and from ggml's own
 *     quantize_row_*_ref where it was given one) hold inputs, the blocks
 *     GGML makes of them and their dequantized values; ours must be equal
 *     byte for byte and bit for bit;
 *   - dequantize(quantize(x)) stays within each format's error bound;
 *   - the reference dot products equal dot(dequantize(w), dequantize(a))
 *     up to f32 rounding on awkward lengths;
 *   - quantized weight matrices work through pio_wmat_row_f32/pio_matmul;
 *   - pio_weights_requantize: spec parsing, overrides, fallbacks, owned
 *     buffers, lookups, and an engine loaded with --dtype against f32.
 */
#include "check.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "pio/engine.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_uniform(void) { return (float)((rng_next() >> 40) * (1.0 / 16777216.0)); }

static float rng_normal(void)
{
    double u1 = ((rng_next() >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (rng_next() >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Equal bits, or both NaN. */
static bool same_float(float a, float b) { return f32_bits(a) == f32_bits(b) || (isnan(a) && isnan(b)); }

static const pio_dtype quant_types[] = { PIO_DTYPE_Q8_0, PIO_DTYPE_Q4_0, PIO_DTYPE_Q4_K, PIO_DTYPE_Q6_K };

/* ---- f32 -> f16 ---------------------------------------------------------------- */

#if HAVE_X86
__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f)
{
    return (uint16_t)_cvtss_sh(f, 0);   /* round to nearest even */
}

static bool hw_has_f16c(void) { return __builtin_cpu_supports("f16c"); }
#else
static uint16_t hw_f32_to_f16(float f) { return pio_f32_to_f16(f); }
static bool hw_has_f16c(void) { return false; }
#endif

static void test_f16(void)
{
    int bad = 0, n_hw = 0;

    /* every non-NaN half round-trips */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = pio_f16_to_f32((uint16_t)h);
        if (isnan(f))
            continue;
        if (pio_f32_to_f16(f) != h && bad++ < 5)
            CHECK(0, "half 0x%04x -> %g -> 0x%04x", h, f, pio_f32_to_f16(f));
    }
    CHECK(bad == 0, "%d halves do not round-trip", bad);

    /* midpoints between neighbours go to the even one; just off them, to the near one */
    bad = 0;
    for (uint32_t h = 0; h < 0x7bff; h++) {
        for (int sgn = 0; sgn < 2; sgn++) {
            uint16_t s = (uint16_t)(sgn ? 0x8000 : 0);
            float lo = pio_f16_to_f32((uint16_t)(h | s)), hi = pio_f16_to_f32((uint16_t)((h + 1) | s));
            float mid = (lo + hi) / 2;                  /* exact: 12 significant bits */
            uint16_t even = (uint16_t)(((h & 1) ? h + 1 : h) | s);
            if (pio_f32_to_f16(mid) != even)
                bad++;
            if (pio_f32_to_f16(nextafterf(mid, lo)) != (uint16_t)(h | s))
                bad++;
            if (pio_f32_to_f16(nextafterf(mid, hi)) != (uint16_t)((h + 1) | s))
                bad++;
        }
    }
    CHECK(bad == 0, "%d midpoint roundings wrong", bad);

    CHECK(pio_f32_to_f16(65504.0f) == 0x7bff, "max half");
    CHECK(pio_f32_to_f16(65519.996f) == 0x7bff, "just below the overflow tie");
    CHECK(pio_f32_to_f16(65520.0f) == 0x7c00, "65520 rounds to inf");
    CHECK(pio_f32_to_f16(1e30f) == 0x7c00 && pio_f32_to_f16(-1e30f) == 0xfc00, "overflow -> inf");
    CHECK(pio_f32_to_f16(INFINITY) == 0x7c00 && pio_f32_to_f16(-INFINITY) == 0xfc00, "inf");
    CHECK(pio_f32_to_f16(NAN) == 0x7e00, "NaN -> 0x%04x", pio_f32_to_f16(NAN));
    CHECK(pio_f32_to_f16(-NAN) == 0xfe00, "-NaN -> 0x%04x", pio_f32_to_f16(-NAN));
    CHECK(pio_f32_to_f16(ldexpf(1, -25)) == 0, "2^-25 (tie) -> 0");
    CHECK(pio_f32_to_f16(nextafterf(ldexpf(1, -25), 1)) == 1, "just above 2^-25 -> smallest subnormal");
    CHECK(pio_f32_to_f16(ldexpf(1.5f, -24)) == 2, "1.5 units -> 2 (even)");
    CHECK(pio_f32_to_f16(ldexpf(2.5f, -24)) == 2, "2.5 units -> 2 (even)");
    CHECK(pio_f32_to_f16(-0.0f) == 0x8000, "-0");
    CHECK(pio_f32_to_f16(1e-40f) == 0, "f32 subnormal -> 0");

    /* against the hardware on a spread of bit patterns */
    if (hw_has_f16c()) {
        bad = 0;
        for (uint64_t u = 0; u < 0x100000000ull; u += 4093) {
            float f = bits_f32((uint32_t)u);
            uint16_t a = pio_f32_to_f16(f), b = hw_f32_to_f16(f);
            n_hw++;
            if (a != b && !(isnan(f) && (a & 0x7e00) == 0x7e00 && (b & 0x7c00) == 0x7c00 && (a ^ b) < 0x8000 + 0x200))
                if (bad++ < 5)
                    CHECK(0, "f32 0x%08x: ours 0x%04x, F16C 0x%04x", (uint32_t)u, a, b);
        }
        CHECK(bad == 0, "%d of %d conversions differ from F16C", bad, n_hw);
        printf("f16: %d conversions equal to F16C\n", n_hw);
    } else {
        printf("f16: no F16C on this CPU, hardware comparison skipped\n");
    }
}

/* ---- GGML reference vectors ----------------------------------------------------- */

typedef struct qref_reader {
    const uint8_t *p, *end;
} qref_reader;

static bool qr_take(qref_reader *r, void *dst, size_t n)
{
    if ((size_t)(r->end - r->p) < n)
        return false;
    memcpy(dst, r->p, n);
    r->p += n;
    return true;
}

static uint8_t *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

/* Check one reference case; returns false when the file is malformed. */
static bool check_ref_case(qref_reader *r, const char *file, int *n_quant, int *n_dequant)
{
    char dt_name[9] = { 0 }, label[25] = { 0 };
    uint32_t kind, rows, cols;
    int dt;
    size_t rb, nel;
    float *x = NULL, *y = NULL, *ours = NULL;
    uint8_t *blocks = NULL, *qours = NULL;
    bool ok = false;

    if (!qr_take(r, dt_name, 8) || !qr_take(r, &kind, 4) || !qr_take(r, &rows, 4) || !qr_take(r, &cols, 4) ||
        !qr_take(r, label, 24))
        return false;
    dt = pio_dtype_from_name(dt_name);
    if (dt < 0 || kind > 1 || rows == 0 || rows > 4096 || cols == 0 || cols > (1u << 20))
        return false;
    rb = pio_dtype_row_bytes((pio_dtype)dt, cols);
    nel = (size_t)rows * cols;
    if (rb == 0)
        return false;
    x = malloc(nel * sizeof(float));
    y = malloc(nel * sizeof(float));
    ours = malloc(nel * sizeof(float));
    blocks = malloc(rows * rb);
    qours = malloc(rows * rb);
    if (!x || !y || !ours || !blocks || !qours)
        goto out;
    if ((kind == 0 && !qr_take(r, x, nel * sizeof(float))) || !qr_take(r, blocks, rows * rb) ||
        !qr_take(r, y, nel * sizeof(float)))
        goto out;
    ok = true;

    if (kind == 0) {
        CHECK_OK(pio_quantize_rows((pio_dtype)dt, x, qours, rows, cols));
        for (size_t i = 0; i < rows * rb; i++) {
            if (qours[i] != blocks[i]) {
                size_t bb = pio_dtype_block_bytes((pio_dtype)dt);
                CHECK(0, "%s %s \"%s\": block %zu byte %zu: ours 0x%02x, GGML 0x%02x", file, dt_name, label,
                      i / bb, i % bb, qours[i], blocks[i]);
                break;
            }
        }
        (*n_quant)++;
    }
    for (uint32_t row = 0; row < rows; row++)
        pio_dequantize_row((pio_dtype)dt, blocks + row * rb, ours + (size_t)row * cols, cols);
    for (size_t i = 0; i < nel; i++) {
        if (!same_float(ours[i], y[i])) {
            CHECK(0, "%s %s \"%s\": dequantized[%zu] = %a, GGML %a", file, dt_name, label, i, ours[i], y[i]);
            break;
        }
    }
    (*n_dequant)++;
out:
    free(x);
    free(y);
    free(ours);
    free(blocks);
    free(qours);
    return ok;
}

static void test_reference_vectors(void)
{
    static const char *const files[] = { "q8_0.bin", "q4_0.bin", "q4_k.bin", "q6_k.bin", "q8_k.bin" };
    const char *src = getenv("PIO_SOURCE_DIR");
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[1024];
        size_t len = 0;
        uint8_t *buf;
        uint32_t n_cases;
        int n_quant = 0, n_dequant = 0;
        qref_reader r;

        snprintf(path, sizeof path, "%s/tests/fixtures/quant/%s", src ? src : ".", files[f]);
        buf = read_whole(path, &len);
        CHECK(buf != NULL, "cannot read %s (regenerate with tools/quant_reference.py)", path);
        if (!buf)
            continue;
        r.p = buf;
        r.end = buf + len;
        CHECK(len >= 12 && memcmp(buf, "PIOQREF1", 8) == 0, "%s: bad magic", path);
        r.p += 8;
        if (!qr_take(&r, &n_cases, 4))
            n_cases = 0;
        for (uint32_t c = 0; c < n_cases; c++) {
            bool ok = check_ref_case(&r, files[f], &n_quant, &n_dequant);
            CHECK(ok, "%s: case %u is malformed", path, c);
            if (!ok)
                break;
        }
        CHECK(r.p == r.end, "%s: %zu trailing bytes", path, (size_t)(r.end - r.p));
        printf("%s: %d quantize cases bit-exact, %d dequantize cases bit-exact%s\n", files[f], n_quant,
               n_dequant, n_quant ? "" : " (no GGML quantize reference in the file)");
        free(buf);
    }
}

/* ---- K-quant scale searches: lane-parallel library vs GGML transliteration --- */

/*
 * The library runs GGML's make_qkx2_quants / make_qx_quants for all
 * sub-blocks of a super-block in lockstep (vectorizable). Below is the
 * straightforward one-sub-block-at-a-time transliteration of GGML's
 * quantize_row_q4_K_ref / quantize_row_q6_K_ref; the two must agree byte
 * for byte on any input.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__FP_FAST_FMAF)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")     /* GGML's reference rounds a*b+c twice */
#endif
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
static inline int slow_min(int a, int b) { return a < b ? a : b; }
static inline int slow_max(int a, int b) { return a > b ? a : b; }

static inline int slow_nearest_int(float f)
{
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static inline void slow_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

static float slow_make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                                float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep)
{
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++)
            L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = slow_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)slow_max(0, slow_min(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = slow_nearest_int(iscale * (x[i] - min));
            l = slow_max(0, slow_min(nmax, l));
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; i++)
                    L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

static void slow_quantize_q4_K(const float *x, void *vy, int64_t k)
{
    pio_block_q4_K *y = vy;
    int64_t nb = k / PIO_QK_K;
    uint8_t L[PIO_QK_K];
    uint8_t Laux[32];
    float weights[32];
    float mins[PIO_QK_K / 32];
    float scales[PIO_QK_K / 32];

    for (int64_t i = 0; i < nb; i++) {
        float max_scale = 0, max_min = 0;   /* scales and mins are >= 0 */
        for (int j = 0; j < PIO_QK_K / 32; j++) {
            const float *xs = x + 32 * j;
            float sum_x2 = 0;
            for (int l = 0; l < 32; l++)
                sum_x2 += xs[l] * xs[l];
            float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; l++)
                weights[l] = av_x + fabsf(xs[l]);
            scales[j] = slow_make_qkx2_quants(32, 15, xs, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20);
            if (scales[j] > max_scale)
                max_scale = scales[j];
            if (mins[j] > max_min)
                max_min = mins[j];
        }

        /* 6-bit scales and mins relative to the two f16 super-block scales */
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < PIO_QK_K / 32; j++) {
            uint8_t ls = (uint8_t)slow_nearest_int(inv_scale * scales[j]);
            uint8_t lm = (uint8_t)slow_nearest_int(inv_min * mins[j]);
            ls = (uint8_t)slow_min(63, ls);
            lm = (uint8_t)slow_min(63, lm);
            if (j < 4) {
                y[i].scales[j] = ls;
                y[i].scales[j + 4] = lm;
            } else {
                y[i].scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                y[i].scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
                y[i].scales[j - 0] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        y[i].d = pio_f32_to_f16(max_scale / 63.f);
        y[i].dmin = pio_f32_to_f16(max_min / 63.f);

        /* requantize against the scales as stored */
        for (int j = 0; j < PIO_QK_K / 32; j++) {
            uint8_t sc, m;
            slow_scale_min_k4(j, y[i].scales, &sc, &m);
            const float d = pio_f16_to_f32(y[i].d) * sc;
            if (!d)
                continue;
            const float dm = pio_f16_to_f32(y[i].dmin) * m;
            for (int ii = 0; ii < 32; ii++) {
                int l = slow_nearest_int((x[32 * j + ii] + dm) / d);
                L[32 * j + ii] = (uint8_t)slow_max(0, slow_min(15, l));
            }
        }

        uint8_t *q = y[i].qs;
        for (int j = 0; j < PIO_QK_K; j += 64) {
            for (int l = 0; l < 32; l++)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
            q += 32;
        }
        x += PIO_QK_K;
    }
}

static float slow_make_qx_quants(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < 1e-15f) {
        for (int i = 0; i < n; i++)
            L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = slow_nearest_int(iscale * x[i]);
        l = slow_max(-nmax, slow_min(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = slow_nearest_int(iscale * x[i]);
            l = slow_max(-nmax, slow_min(nmax - 1, l));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = slow_nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + slow_max(-nmax, slow_min(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

static void slow_quantize_q6_K(const float *x, void *vy, int64_t k)
{
    pio_block_q6_K *y = vy;
    int64_t nb = k / PIO_QK_K;
    int8_t L[PIO_QK_K];
    float scales[PIO_QK_K / 16];

    for (int64_t i = 0; i < nb; i++) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < PIO_QK_K / 16; ib++) {
            const float scale = slow_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            const float abs_scale = fabsf(scale);
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scale;
            }
        }
        if (max_abs_scale < 1e-15f) {
            memset(&y[i], 0, sizeof y[i]);
            x += PIO_QK_K;
            continue;
        }

        float iscale = -128.f / max_scale;
        y[i].d = pio_f32_to_f16(1 / iscale);
        for (int ib = 0; ib < PIO_QK_K / 16; ib++)
            y[i].scales[ib] = (int8_t)slow_min(127, slow_nearest_int(iscale * scales[ib]));

        for (int j = 0; j < PIO_QK_K / 16; j++) {
            float d = pio_f16_to_f32(y[i].d) * y[i].scales[j];
            if (!d)
                continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = slow_nearest_int(x[16 * j + ii] / d);
                l = slow_max(-32, slow_min(31, l));
                L[16 * j + ii] = (int8_t)(l + 32);
            }
        }

        uint8_t *ql = y[i].ql;
        uint8_t *qh = y[i].qh;
        for (int j = 0; j < PIO_QK_K; j += 128) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l + 0] & 0xF;
                const uint8_t q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF;
                const uint8_t q4 = L[j + l + 96] & 0xF;
                ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
        x += PIO_QK_K;
    }
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__FP_FAST_FMAF)
#pragma GCC pop_options
#endif

/* Super-blocks whose sub-blocks (of 16) mix every awkward kind. */
static void fill_kquant_awkward(float *x, int n_super)
{
    int kind = 0;
    float sc = 1;
    for (int sb = 0; sb < n_super; sb++)
        for (int j = 0; j < 16; j++) {
            float *xs = x + sb * 256 + j * 16;
            if (j % 2 == 0 || rng_next() % 2) {   /* else a Q4_K sub-block of one kind */
                kind = (int)(rng_next() % 10);
                sc = ldexpf(1, (int)(rng_next() % 40) - 20);
            }
            for (int i = 0; i < 16; i++) {
                float v = rng_normal();
                switch (kind) {
                case 0: xs[i] = v; break;
                case 1: xs[i] = v * sc; break;
                case 2: xs[i] = -sc; break;                     /* constant negative: flat */
                case 3: xs[i] = sc; break;                      /* constant positive */
                case 4: xs[i] = 0; break;
                case 5: xs[i] = fabsf(v) * sc + sc; break;      /* all positive */
                case 6: xs[i] = -fabsf(v) * sc; break;          /* negatives only */
                case 7: xs[i] = i == 3 ? 40 * sc : v * sc * 0.01f; break;
                case 8: xs[i] = (float)(int)(v * 8) * sc; break; /* few distinct values: ties */
                default: xs[i] = v * 1e-17f; break;             /* below GGML's group epsilon */
                }
            }
        }
}

static void test_kquant_lanes(void)
{
    enum { NS = 300 };
    float *x = malloc(sizeof(float) * NS * 256);
    uint8_t *a = malloc(NS * sizeof(pio_block_q6_K)), *b = malloc(NS * sizeof(pio_block_q6_K));
    int bad4 = 0, bad6 = 0;

    fill_kquant_awkward(x, NS);
    pio_quantize_row_q4_K(x, a, NS * 256);
    slow_quantize_q4_K(x, b, NS * 256);
    for (int i = 0; i < NS; i++)
        bad4 += memcmp(a + i * sizeof(pio_block_q4_K), b + i * sizeof(pio_block_q4_K), sizeof(pio_block_q4_K)) != 0;
    pio_quantize_row_q6_K(x, a, NS * 256);
    slow_quantize_q6_K(x, b, NS * 256);
    for (int i = 0; i < NS; i++)
        bad6 += memcmp(a + i * sizeof(pio_block_q6_K), b + i * sizeof(pio_block_q6_K), sizeof(pio_block_q6_K)) != 0;
    CHECK(bad4 == 0, "Q4_K: %d of %d super-blocks differ from the GGML transliteration", bad4, NS);
    CHECK(bad6 == 0, "Q6_K: %d of %d super-blocks differ from the GGML transliteration", bad6, NS);
    printf("K-quant lanes: %d awkward super-blocks equal to the GGML transliteration (Q4_K, Q6_K)\n", NS);
    free(x);
    free(a);
    free(b);
}

/* ---- round-trip error bounds ----------------------------------------------------- */

/* rows of x: normal(0, 1) with per-row scale, plus awkward rows */
static void fill_awkward(float *x, int rows, int cols, int row)
{
    for (int r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * cols;
        int kind = (row + r) % 6;
        for (int i = 0; i < cols; i++) {
            switch (kind) {
            case 0: xr[i] = rng_normal(); break;
            case 1: xr[i] = rng_normal() * 0.02f; break;
            case 2: xr[i] = -0.01f - 2 * rng_uniform(); break;               /* negatives only */
            case 3: xr[i] = rng_normal() * ldexpf(1, (i / 32) % 24 - 12); break; /* block scales */
            case 4: xr[i] = (i % 64 == 7) ? 3.0f : rng_normal() * 0.01f; break;  /* outliers */
            default: xr[i] = 0.25f; break;                                  /* constant */
            }
        }
    }
}

/*
 * Q8_0: |x - x'| <= d/2 + 127·|d - f16(d)|, d = amax/127; Q4_0: the value
 * opposite the largest magnitude may clamp one level early, so <= |d| plus
 * the scale rounding; Q8_K (f32 scale): <= d/2. Q4_K/Q6_K: relative RMS
 * error on N(0,1) rows (their scales are searched, not closed-form).
 */
static void test_round_trip(void)
{
    enum { ROWS = 12, COLS = 1024 };
    float *x = malloc(sizeof(float) * ROWS * COLS), *y = malloc(sizeof(float) * ROWS * COLS);
    uint8_t *q = malloc(pio_dtype_row_bytes(PIO_DTYPE_Q8_K, COLS) * ROWS);
    pio_dtype types[] = { PIO_DTYPE_Q8_0, PIO_DTYPE_Q4_0, PIO_DTYPE_Q8_K, PIO_DTYPE_Q4_K, PIO_DTYPE_Q6_K };
    double rms_rel[PIO_DTYPE_COUNT] = { 0 };

    fill_awkward(x, ROWS, COLS, 0);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        pio_dtype dt = types[ti];
        int be = pio_dtype_block_elems(dt), bad = 0;
        size_t rb = pio_dtype_row_bytes(dt, COLS);
        CHECK_OK(pio_quantize_rows(dt, x, q, ROWS, COLS));
        for (int r = 0; r < ROWS; r++)
            pio_dequantize_row(dt, q + r * rb, y + (size_t)r * COLS, COLS);
        if (dt == PIO_DTYPE_Q8_0 || dt == PIO_DTYPE_Q4_0 || dt == PIO_DTYPE_Q8_K) {
            for (int b = 0; b < ROWS * COLS / be; b++) {
                const float *xb = x + (size_t)b * be, *yb = y + (size_t)b * be;
                float amax = 0, bound;
                for (int i = 0; i < be; i++)
                    amax = fmaxf(amax, fabsf(xb[i]));
                /* the f16 scale's own rounding, which is coarse where d is subnormal */
                float d = dt == PIO_DTYPE_Q4_0 ? amax / 8 : amax / 127;
                float dd = fabsf(d - pio_f16_to_f32(pio_f32_to_f16(d)));
                if (dt == PIO_DTYPE_Q8_0)
                    bound = (d / 2 + 127 * dd) * 1.0001f;
                else if (dt == PIO_DTYPE_Q4_0)
                    bound = (d + 8 * dd) * 1.0001f;
                else
                    bound = d * 0.5001f;
                for (int i = 0; i < be; i++)
                    if (fabsf(xb[i] - yb[i]) > bound + 1e-30f && bad++ < 3)
                        CHECK(0, "%s block %d [%d]: x %g -> %g, bound %g", pio_dtype_name(dt), b, i, xb[i],
                              yb[i], bound);
            }
            CHECK(bad == 0, "%s: %d values beyond the bound", pio_dtype_name(dt), bad);
        }
        if (dt == PIO_DTYPE_Q8_K) {
            const pio_block_q8_K *k8 = (const pio_block_q8_K *)(const void *)q;
            bad = 0;
            for (int b = 0; b < ROWS * COLS / PIO_QK_K; b++)
                for (int j = 0; j < PIO_QK_K / 16; j++) {
                    int s = 0;
                    for (int i = 0; i < 16; i++)
                        s += k8[b].qs[16 * j + i];
                    bad += s != k8[b].bsums[j];
                }
            CHECK(bad == 0, "Q8_K: %d bsums wrong", bad);
        }
        /* relative RMS error on the N(0,1) rows (kind 0: rows 0, 6) */
        {
            double se = 0, sx = 0;
            for (int r = 0; r < ROWS; r += 6)
                for (int i = 0; i < COLS; i++) {
                    double d = (double)x[(size_t)r * COLS + i] - y[(size_t)r * COLS + i];
                    se += d * d;
                    sx += (double)x[(size_t)r * COLS + i] * x[(size_t)r * COLS + i];
                }
            rms_rel[dt] = sqrt(se / sx);
        }
        /* the constant row comes back (nearly) exactly */
        for (int i = 0; i < COLS; i++)
            if (fabsf(y[5 * COLS + i] - 0.25f) > 0.25f * 2e-3f) {
                CHECK(0, "%s: constant 0.25 -> %g", pio_dtype_name(dt), y[5 * COLS + i]);
                break;
            }
    }
    printf("relative RMS error on N(0,1): Q8_0 %.4f  Q4_0 %.4f  Q4_K %.4f  Q6_K %.4f  Q8_K %.4f\n",
           rms_rel[PIO_DTYPE_Q8_0], rms_rel[PIO_DTYPE_Q4_0], rms_rel[PIO_DTYPE_Q4_K], rms_rel[PIO_DTYPE_Q6_K],
           rms_rel[PIO_DTYPE_Q8_K]);
    /* typical values: Q8_0 0.0035, Q4_0 0.09, Q4_K 0.075, Q6_K 0.018, Q8_K 0.0035 */
    CHECK(rms_rel[PIO_DTYPE_Q8_0] < 0.006, "Q8_0 error %g", rms_rel[PIO_DTYPE_Q8_0]);
    CHECK(rms_rel[PIO_DTYPE_Q6_K] < 0.03, "Q6_K error %g", rms_rel[PIO_DTYPE_Q6_K]);
    CHECK(rms_rel[PIO_DTYPE_Q4_K] < 0.1, "Q4_K error %g", rms_rel[PIO_DTYPE_Q4_K]);
    CHECK(rms_rel[PIO_DTYPE_Q4_K] < rms_rel[PIO_DTYPE_Q4_0], "Q4_K (%g) not better than Q4_0 (%g)",
          rms_rel[PIO_DTYPE_Q4_K], rms_rel[PIO_DTYPE_Q4_0]);

    /* zeros stay zeros, with zero scales */
    memset(x, 0, sizeof(float) * COLS);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        pio_dtype dt = types[ti];
        pio_quantize_row(dt, x, q, COLS);
        pio_dequantize_row(dt, q, y, COLS);
        for (int i = 0; i < COLS; i++)
            if (y[i] != 0.0f) {
                CHECK(0, "%s: zeros -> %g", pio_dtype_name(dt), y[i]);
                break;
            }
    }

    /* bad arguments */
    CHECK(pio_quantize_rows(PIO_DTYPE_Q4_K, x, q, 1, 96) == PIO_STATUS_ERR_SHAPE, "Q4_K of 96 columns");
    CHECK(strstr(pio_last_error(), "multiple of 256") != NULL, "message: %s", pio_last_error());
    CHECK(pio_quantize_rows(PIO_DTYPE_Q8_0, x, q, 1, 48) == PIO_STATUS_ERR_SHAPE, "Q8_0 of 48 columns");
    CHECK(pio_quantize_rows(PIO_DTYPE_I32, x, q, 1, 32) == PIO_STATUS_ERR_UNSUPPORTED, "I32");
    free(x);
    free(y);
    free(q);
}

/* ---- dot products ------------------------------------------------------------------ */

static void test_vec_dot(void)
{
    static const int lengths[] = { 32, 64, 96, 160, 256, 512, 768, 1024, 4096 };
    enum { NMAX = 4096 };
    float *w = malloc(NMAX * sizeof(float)), *a = malloc(NMAX * sizeof(float));
    float *wd = malloc(NMAX * sizeof(float)), *ad = malloc(NMAX * sizeof(float));
    uint8_t *wq = malloc(pio_dtype_row_bytes(PIO_DTYPE_Q8_K, NMAX)), *aq = malloc(pio_dtype_row_bytes(PIO_DTYPE_Q8_K, NMAX));
    int n_checked = 0;

    for (size_t ti = 0; ti < sizeof quant_types / sizeof quant_types[0]; ti++) {
        pio_dtype wt = quant_types[ti], at = pio_dtype_vec_dot_type(wt);
        for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
            int n = lengths[li];
            if (n % pio_dtype_block_elems(wt) != 0)
                continue;
            for (int trial = 0; trial < 3; trial++) {
                double ref = 0, mag = 0;
                float got;
                fill_awkward(w, 1, n, trial);
                for (int i = 0; i < n; i++)
                    a[i] = trial == 2 ? -fabsf(rng_normal()) * 30.0f : rng_normal();
                pio_quantize_row(wt, w, wq, n);
                pio_quantize_row(at, a, aq, n);
                pio_dequantize_row(wt, wq, wd, n);
                pio_dequantize_row(at, aq, ad, n);
                for (int i = 0; i < n; i++) {
                    ref += (double)wd[i] * ad[i];
                    mag += fabs((double)wd[i] * ad[i]);
                }
                got = pio_vec_dot_ref(wt, n, wq, aq);
                CHECK(fabs(got - ref) <= 2e-6 * mag + 1e-30, "%s.%s n=%d trial %d: %.9g vs %.9g (mag %g)",
                      pio_dtype_name(wt), pio_dtype_name(at), n, trial, got, ref, mag);
                n_checked++;
            }
        }
    }
    /* random raw K-quant blocks (extreme scales and codes) against Q8_K */
    for (int trial = 0; trial < 4; trial++) {
        int n = 512;
        for (size_t ti = 2; ti < 4; ti++) {
            pio_dtype wt = quant_types[ti];
            size_t rb = pio_dtype_row_bytes(wt, n);
            double ref = 0, mag = 0;
            float got;
            for (size_t i = 0; i < rb; i++)
                wq[i] = (uint8_t)rng_next();
            for (int b = 0; b < n / PIO_QK_K; b++) {
                if (wt == PIO_DTYPE_Q4_K) {
                    pio_block_q4_K *k4 = (pio_block_q4_K *)(void *)wq + b;
                    k4->d = pio_f32_to_f16(rng_uniform() * 0.01f);
                    k4->dmin = pio_f32_to_f16(rng_uniform() * 0.01f);
                } else {
                    pio_block_q6_K *k6 = (pio_block_q6_K *)(void *)wq + b;
                    k6->d = pio_f32_to_f16(rng_normal() * 0.01f);
                }
            }
            for (int i = 0; i < n; i++)
                a[i] = rng_normal();
            pio_quantize_row(PIO_DTYPE_Q8_K, a, aq, n);
            pio_dequantize_row(wt, wq, wd, n);
            pio_dequantize_row(PIO_DTYPE_Q8_K, aq, ad, n);
            for (int i = 0; i < n; i++) {
                ref += (double)wd[i] * ad[i];
                mag += fabs((double)wd[i] * ad[i]);
            }
            got = pio_vec_dot_ref(wt, n, wq, aq);
            CHECK(fabs(got - ref) <= 2e-6 * mag, "random %s blocks: %.9g vs %.9g", pio_dtype_name(wt), got, ref);
            n_checked++;
        }
    }
    /* plain weights through the dispatcher */
    {
        int n = 100;
        uint16_t h[100];
        double ref = 0;
        for (int i = 0; i < n; i++) {
            w[i] = rng_normal();
            a[i] = rng_normal();
            h[i] = pio_f32_to_bf16(w[i]);
            ref += (double)pio_bf16_to_f32(h[i]) * a[i];
        }
        CHECK(fabs(pio_vec_dot_ref(PIO_DTYPE_BF16, n, h, a) - ref) < 1e-4, "bf16 dot");
        for (int i = 0; i < n; i++)
            h[i] = pio_f32_to_f16(w[i]);
        ref = 0;
        for (int i = 0; i < n; i++)
            ref += (double)pio_f16_to_f32(h[i]) * a[i];
        CHECK(fabs(pio_vec_dot_ref(PIO_DTYPE_F16, n, h, a) - ref) < 1e-4, "f16 dot");
    }
    CHECK(pio_dtype_vec_dot_type(PIO_DTYPE_Q4_0) == PIO_DTYPE_Q8_0 &&
              pio_dtype_vec_dot_type(PIO_DTYPE_Q8_0) == PIO_DTYPE_Q8_0 &&
              pio_dtype_vec_dot_type(PIO_DTYPE_Q4_K) == PIO_DTYPE_Q8_K &&
              pio_dtype_vec_dot_type(PIO_DTYPE_Q6_K) == PIO_DTYPE_Q8_K &&
              pio_dtype_vec_dot_type(PIO_DTYPE_BF16) == PIO_DTYPE_F32,
          "vec_dot types");
    printf("vec_dot: %d products equal to dot(dequantize) within f32 rounding\n", n_checked);
    free(w);
    free(a);
    free(wd);
    free(ad);
    free(wq);
    free(aq);
}

/* ---- quantized weight matrices in the f32 kernels ------------------------------------ */

static void test_wmat(void)
{
    enum { ROWS = 37, COLS = 512, N = 3 };
    float *w = malloc(sizeof(float) * ROWS * COLS), *x = malloc(sizeof(float) * N * COLS);
    float *row = malloc(sizeof(float) * COLS), *deq = malloc(sizeof(float) * ROWS * COLS);
    float *y = malloc(sizeof(float) * N * ROWS);
    uint8_t *q = malloc(pio_dtype_row_bytes(PIO_DTYPE_Q8_K, COLS) * ROWS);
    pio_threadpool *tp = NULL;

    CHECK_OK(pio_threadpool_new(2, &tp));
    fill_awkward(w, ROWS, COLS, 1);
    for (int i = 0; i < N * COLS; i++)
        x[i] = rng_normal();
    for (size_t ti = 0; ti < sizeof quant_types / sizeof quant_types[0]; ti++) {
        pio_dtype dt = quant_types[ti];
        size_t rb = pio_dtype_row_bytes(dt, COLS);
        pio_wmat m = { dt, q, ROWS, COLS };
        double worst = 0;
        CHECK_OK(pio_quantize_rows(dt, w, q, ROWS, COLS));
        for (int r = 0; r < ROWS; r++) {
            pio_dequantize_row(dt, q + r * rb, deq + (size_t)r * COLS, COLS);
            pio_wmat_row_f32(&m, r, row);
            CHECK(memcmp(row, deq + (size_t)r * COLS, sizeof(float) * COLS) == 0, "%s row %d",
                  pio_dtype_name(dt), r);
        }
        pio_convert_to_f32(row, q + 5 * rb, dt, COLS);
        CHECK(memcmp(row, deq + 5 * COLS, sizeof(float) * COLS) == 0, "%s convert_to_f32", pio_dtype_name(dt));

        /* matmul: may quantize the activations (fast kernels), so compare
         * against the f32 product of the dequantized weights loosely */
        CHECK_OK(pio_matmul(tp, y, x, N, &m));
        for (int t = 0; t < N; t++)
            for (int r = 0; r < ROWS; r++) {
                double ref = 0, mag = 0;
                for (int i = 0; i < COLS; i++) {
                    ref += (double)x[t * COLS + i] * deq[(size_t)r * COLS + i];
                    mag += fabs((double)x[t * COLS + i] * deq[(size_t)r * COLS + i]);
                }
                if (fabs(y[t * ROWS + r] - ref) / (mag + 1e-30) > worst)
                    worst = fabs(y[t * ROWS + r] - ref) / (mag + 1e-30);
            }
        CHECK(worst < 2e-2, "%s matmul: worst error %.3g of the magnitude", pio_dtype_name(dt), worst);
    }
    pio_threadpool_free(tp);
    free(w);
    free(x);
    free(row);
    free(deq);
    free(y);
    free(q);
}

/* ---- quantize on load ------------------------------------------------------------------- */

static const char *fixture_dir(const char *name)
{
    static char buf[1024];
    const char *src = getenv("PIO_SOURCE_DIR");
    snprintf(buf, sizeof buf, "%s/tests/fixtures/qwen3/%s", src ? src : ".", name);
    return buf;
}

/* Every 2-D ".weight" of `w` has dtype `dt` (or `fallback` where the row
 * length is not a multiple of dt's block) and equals pio_quantize_row of the
 * same tensor in `orig`. */
static void check_all_converted(const pio_weights *orig, const pio_weights *w, pio_dtype dt, const char *what)
{
    float *row = NULL;
    uint8_t *q = NULL;
    int n_mats = 0;
    for (int i = 0; i < pio_weights_count(w); i++) {
        const pio_tensor *t = pio_weights_at(w, i), *o = pio_weights_find(orig, t->name);
        size_t orb, rb;
        pio_dtype want = dt;
        if (!o) {
            CHECK(0, "%s: %s missing from the original", what, t->name);
            continue;
        }
        if (o->n_dims != 2) {
            CHECK(t->dtype == o->dtype && t->nbytes == o->nbytes && !memcmp(t->data, o->data, o->nbytes),
                  "%s: 1-D %s was touched", what, t->name);
            continue;
        }
        n_mats++;
        if (o->shape[1] % pio_dtype_block_elems(dt) != 0)
            want = dt == PIO_DTYPE_Q4_K ? PIO_DTYPE_Q4_0 : PIO_DTYPE_Q8_0;
        if (want == o->dtype) {
            CHECK(t->dtype == o->dtype && !memcmp(t->data, o->data, o->nbytes), "%s: %s already %s but changed",
                  what, t->name, pio_dtype_name(want));
            continue;
        }
        CHECK(t->dtype == want, "%s: %s is %s, want %s", what, t->name, pio_dtype_name(t->dtype),
              pio_dtype_name(want));
        rb = pio_dtype_row_bytes(want, t->shape[1]);
        orb = pio_dtype_row_bytes(o->dtype, o->shape[1]);
        CHECK(t->nbytes == rb * (size_t)t->shape[0], "%s: %s nbytes %zu", what, t->name, t->nbytes);
        CHECK(t->n_dims == 2 && t->shape[0] == o->shape[0] && t->shape[1] == o->shape[1] &&
                  t->n_elements == o->n_elements && !strcmp(t->name, o->name),
              "%s: %s shape", what, t->name);
        CHECK(((uintptr_t)t->data & 63) == 0, "%s: %s not 64-byte aligned", what, t->name);
        row = realloc(row, sizeof(float) * (size_t)o->shape[1]);
        q = realloc(q, rb);
        for (int64_t r = 0; r < o->shape[0] && t->dtype == want; r++) {
            pio_convert_to_f32(row, (const char *)o->data + (size_t)r * orb, o->dtype, o->shape[1]);
            pio_quantize_row(want, row, q, o->shape[1]);
            if (memcmp(q, (const char *)t->data + (size_t)r * rb, rb) != 0) {
                CHECK(0, "%s: %s row %lld differs from pio_quantize_row", what, t->name, (long long)r);
                break;
            }
        }
    }
    CHECK(n_mats > 0, "%s: no matrices", what);
    free(row);
    free(q);
}

static void test_requantize(void)
{
    static const char *const types[] = { "q8_0", "q4_0", "q4_k", "Q6_K", "bf16", "f16" };
    static const pio_dtype dts[] = { PIO_DTYPE_Q8_0, PIO_DTYPE_Q4_0, PIO_DTYPE_Q4_K, PIO_DTYPE_Q6_K,
                                     PIO_DTYPE_BF16, PIO_DTYPE_F16 };
    static const char *const fixtures[] = { "tied_gqa2_f32", "untied_gqa4_bf16_sharded" };
    pio_weights *orig = NULL, *w = NULL;
    pio_requant_stats stats;
    const pio_tensor *t;

    for (size_t f = 0; f < 2; f++) {
        CHECK_OK(pio_weights_open_dir(fixture_dir(fixtures[f]), &orig));
        if (!orig)
            return;
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
            char what[128];
            snprintf(what, sizeof what, "%s --dtype %s", fixtures[f], types[k]);
            CHECK_OK(pio_weights_open_dir(fixture_dir(fixtures[f]), &w));
            if (!w)
                continue;
            CHECK_OK(pio_weights_requantize(w, types[k], 2, &stats));
            check_all_converted(orig, w, dts[k], what);
            CHECK(stats.n_converted + stats.n_kept > 0, "%s: nothing selected", what);
            CHECK(dts[k] != PIO_DTYPE_Q4_K || stats.n_fallback > 0, "%s: no fallback counted", what);
            if (pio_dtype_is_quantized(dts[k]))   /* 8.5 or fewer bits from 16 or 32 */
                CHECK(stats.bytes_after <= stats.bytes_before * 17 / 32, "%s: %lld -> %lld bytes", what,
                      (long long)stats.bytes_before, (long long)stats.bytes_after);
            pio_weights_free(w);
            w = NULL;
        }
        pio_weights_free(orig);
        orig = NULL;
    }

    /* overrides: the last matching item wins; keep; get() accepts the new dtype */
    CHECK_OK(pio_weights_open_dir(fixture_dir("tied_gqa2_f32"), &w));
    if (!w)
        return;
    CHECK_OK(pio_weights_requantize(w, " q4_0 , *.embed_tokens.weight = Q8_0,model.layers.0.*=keep,"
                                       "model.layers.0.mlp.down_proj.weight=f16", 1, &stats));
    t = pio_weights_find(w, "model.embed_tokens.weight");
    CHECK(t && t->dtype == PIO_DTYPE_Q8_0, "embed_tokens: %s", t ? pio_dtype_name(t->dtype) : "missing");
    t = pio_weights_find(w, "model.layers.0.self_attn.q_proj.weight");
    CHECK(t && t->dtype == PIO_DTYPE_F32, "layer 0 kept: %s", t ? pio_dtype_name(t->dtype) : "missing");
    t = pio_weights_find(w, "model.layers.0.mlp.down_proj.weight");
    CHECK(t && t->dtype == PIO_DTYPE_F16, "down_proj 0: %s", t ? pio_dtype_name(t->dtype) : "missing");
    t = pio_weights_find(w, "model.layers.1.self_attn.q_proj.weight");
    CHECK(t && t->dtype == PIO_DTYPE_Q4_0, "layer 1: %s", t ? pio_dtype_name(t->dtype) : "missing");
    t = pio_weights_find(w, "model.layers.1.input_layernorm.weight");
    CHECK(t && t->dtype == PIO_DTYPE_F32, "norms stay");
    {
        int64_t shape[2] = { 96, 64 };
        CHECK_OK(pio_weights_get(w, "model.layers.1.self_attn.q_proj.weight", 2, shape, &t));
        CHECK(t && t->dtype == PIO_DTYPE_Q4_0, "get returns the converted tensor");
        shape[1] = 65;
        CHECK(pio_weights_get(w, "model.layers.1.self_attn.q_proj.weight", 2, shape, &t) == PIO_STATUS_ERR_SHAPE,
              "shape still checked in elements");
        CHECK(pio_weights_get(w, "model.layers.1.self_attn.q_proj.weight", 1, shape, &t) == PIO_STATUS_ERR_SHAPE,
              "quantized tensor as 1-D");
    }
    /* converting again replaces (and frees) the first conversion */
    CHECK_OK(pio_weights_requantize(w, "q8_0", 0, &stats));
    t = pio_weights_find(w, "model.layers.1.self_attn.q_proj.weight");
    CHECK(t && t->dtype == PIO_DTYPE_Q8_0, "requantized twice: %s", t ? pio_dtype_name(t->dtype) : "missing");
    CHECK(stats.n_kept == 1, "the Q8_0 embedding is kept (%d kept)", stats.n_kept);
    pio_weights_free(w);

    /* bad specs: errors name the item; nothing converted */
    {
        static const char *const bad[] = { "", "q9", "q8_0,", ",q8_0", "=q4_0", "lm_head.weight=",
                                           "q8_k", "i32", "q4_0,,q8_0" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            pio_status st = pio_requant_spec_check(bad[i]);
            CHECK(st == PIO_STATUS_ERR_INVALID_ARG, "spec \"%s\" accepted", bad[i]);
        }
        CHECK(pio_requant_spec_check("q9") && strstr(pio_last_error(), "\"q9\"") != NULL, "message: %s",
              pio_last_error());
        CHECK_OK(pio_requant_spec_check("Q4_K,lm_head.weight=q6_k,x=keep"));
        CHECK(pio_weights_requantize(NULL, "q8_0", 1, NULL) == PIO_STATUS_ERR_INVALID_ARG, "NULL weights");
    }
}

/*
 * An engine loaded with opts.dtype: smaller weights, logits close to f32.
 * This tiny random model is very sensitive to weight noise: transformers run
 * with the same weights quantized and dequantized by the gguf package (a
 * one-off check) gives max|dlogit| 0.243 (Q8_0) and 3.49 (Q4_0) against
 * max|logit| 6.84 on these ids, and top-1 agreement 12/12 and 6/12, which is
 * what we get; the bounds below leave room for quantized activations.
 */
static void test_engine_dtype(void)
{
    static const char *const specs[] = { "q8_0", "q4_0" };
    static const double max_rel[] = { 0.06, 0.8 };
    static const int min_agree[] = { 11, 3 };
    char plugin_dir[1024];
    const char *build = getenv("PIO_BUILD_DIR");
    pio_engine_params ep;
    pio_engine *base = NULL;
    int32_t ids[12] = { 1, 17, 42, 99, 3, 250, 7, 311, 18, 64, 5, 400 };
    float *ref = NULL;
    int64_t V, base_bytes;

    snprintf(plugin_dir, sizeof plugin_dir, "%s/plugins", build ? build : "build");
    pio_engine_params_default(&ep);
    ep.opts.n_threads = 2;
    ep.plugin_dir = plugin_dir;
    ep.progress = false;
    CHECK_OK(pio_engine_load(fixture_dir("tied_gqa2_f32"), &ep, &base));
    if (!base)
        return;
    V = pio_engine_model_info(base)->n_vocab;
    base_bytes = pio_engine_model_info(base)->weight_bytes;
    CHECK_OK(pio_engine_logits(base, ids, 12, &ref));
    for (size_t s = 0; s < sizeof specs / sizeof specs[0] && ref; s++) {
        pio_engine *e = NULL;
        float *lg = NULL;
        double md = 0, mr = 0;
        int agree = 0;
        ep.opts.dtype = specs[s];
        CHECK_OK(pio_engine_load(fixture_dir("tied_gqa2_f32"), &ep, &e));
        if (!e)
            continue;
        CHECK(pio_engine_model_info(e)->weight_bytes < base_bytes / 3, "%s: weight_bytes %lld vs f32 %lld",
              specs[s], (long long)pio_engine_model_info(e)->weight_bytes, (long long)base_bytes);
        CHECK(strstr(pio_engine_model_info(e)->dtypes, specs[s][1] == '8' ? "Q8_0" : "Q4_0") != NULL,
              "%s: dtypes \"%s\"", specs[s], pio_engine_model_info(e)->dtypes);
        CHECK_OK(pio_engine_logits(e, ids, 12, &lg));
        for (int t = 0; lg && t < 12; t++) {
            int am = 0, bm = 0;
            for (int64_t v = 0; v < V; v++) {
                double d = fabs((double)lg[t * V + v] - ref[t * V + v]);
                md = d > md ? d : md;
                mr = fabs(ref[t * V + v]) > mr ? fabs(ref[t * V + v]) : mr;
                if (lg[t * V + v] > lg[t * V + am])
                    am = (int)v;
                if (ref[t * V + v] > ref[t * V + bm])
                    bm = (int)v;
            }
            agree += am == bm;
        }
        printf("engine --dtype %s: weights %lld -> %lld bytes, max|dlogit| %.3g (max|logit| %.3g), "
               "top-1 agreement %d/12\n", specs[s], (long long)base_bytes,
               (long long)pio_engine_model_info(e)->weight_bytes, md, mr, agree);
        CHECK(md <= max_rel[s] * mr, "%s: max|dlogit| %.3g > %.2g * %.3g", specs[s], md, max_rel[s], mr);
        CHECK(agree >= min_agree[s], "%s: top-1 agreement %d/12", specs[s], agree);
        free(lg);
        pio_engine_free(e);
    }
    ep.opts.dtype = "q8_0,nonsense=q3";
    {
        pio_engine *e = NULL;
        pio_status st = pio_engine_load(fixture_dir("tied_gqa2_f32"), &ep, &e);
        CHECK(st == PIO_STATUS_ERR_INVALID_ARG && !e, "bad --dtype: %s", pio_status_name(st));
    }
    free(ref);
    pio_engine_free(base);
    pio_plugins_reset();
}

int main(void)
{
    test_f16();
    test_reference_vectors();
    test_kquant_lanes();
    test_round_trip();
    test_vec_dot();
    test_wmat();
    test_requantize();
    test_engine_dtype();
    return check_report("test_quant");
}
