/*
 * convert.c - f16/bf16 <-> f32 conversions, rows of any weight dtype to f32
 * (block-quantized ones through quant.c), and the f32 dot product.
 */
#include "kernels/kernels.h"
#include "kernels/quant.h"

#include <string.h>

float pio_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t pio_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)      /* NaN: keep it quiet */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);          /* round to nearest even */
    return (uint16_t)(u >> 16);
}

/* IEEE half -> single, including subnormals, inf and NaN. */
float pio_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    float f;

    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else {                               /* subnormal: normalize */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400u));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    memcpy(&f, &u, 4);
    return f;
}

/*
 * IEEE single -> half, round to nearest even, in integer arithmetic (the
 * result F16C's vcvtps2ph and GGML's software fallback give): overflow to
 * inf, gradual underflow to subnormals, NaN -> quiet NaN 0x7e00 with sign.
 */
uint16_t pio_f32_to_f16(float f)
{
    uint32_t u, a, sign;
    memcpy(&u, &f, 4);
    sign = (u >> 16) & 0x8000u;
    a = u & 0x7fffffffu;
    if (a > 0x7f800000u)                       /* NaN */
        return (uint16_t)(sign | 0x7e00u);
    if (a >= 0x477ff000u)                      /* >= 65520 rounds to inf (inf included) */
        return (uint16_t)(sign | 0x7c00u);
    if (a >= 0x38800000u) {                    /* normal half: |f| >= 2^-14 */
        a -= (uint32_t)(127 - 15) << 23;       /* rebias the exponent */
        a += 0x0fffu + ((a >> 13) & 1u);       /* round the 13 dropped bits, ties to even */
        return (uint16_t)(sign | (a >> 13));   /* a mantissa carry bumps the exponent */
    }
    if (a <= 0x33000000u)                      /* <= 2^-25: rounds to zero (2^-25 is a tie) */
        return (uint16_t)sign;
    {                                          /* subnormal half: units of 2^-24 */
        uint32_t m = (a & 0x7fffffu) | 0x800000u;
        int shift = 126 - (int)(a >> 23);      /* 14..24 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u)))
            q++;
        return (uint16_t)(sign | q);
    }
}

void pio_convert_to_f32(float *dst, const void *src, pio_dtype dt, int64_t n)
{
    int64_t i;
    switch (dt) {
    case PIO_DTYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        break;
    case PIO_DTYPE_BF16: {
        const uint16_t *s = src;
        for (i = 0; i < n; i++) {
            uint32_t u = (uint32_t)s[i] << 16;
            memcpy(&dst[i], &u, 4);
        }
        break;
    }
    case PIO_DTYPE_F16: {
        const uint16_t *s = src;
        for (i = 0; i < n; i++)
            dst[i] = pio_f16_to_f32(s[i]);
        break;
    }
    case PIO_DTYPE_Q8_0:
    case PIO_DTYPE_Q4_0:
    case PIO_DTYPE_Q4_K:
    case PIO_DTYPE_Q6_K:
    case PIO_DTYPE_Q8_K:
        pio_dequantize_row(dt, src, dst, n);
        break;
    default:
        memset(dst, 0, (size_t)n * sizeof(float));   /* callers check dtypes at bind */
        break;
    }
}

void pio_wmat_row_f32(const pio_wmat *w, int64_t r, float *dst)
{
    const char *base = w->data;
    if (pio_dtype_is_x8(w->dtype)) {            /* row r % 8 of group r / 8 */
        size_t group = PIO_X8_ROWS * pio_dtype_row_bytes(w->dtype, w->cols);
        pio_x8_dequantize_row(w->dtype, base + (size_t)(r / PIO_X8_ROWS) * group, (int)(r % PIO_X8_ROWS),
                              dst, w->cols);
        return;
    }
    pio_convert_to_f32(dst, base + (size_t)r * pio_dtype_row_bytes(w->dtype, w->cols), w->dtype,
                       w->cols);
}

float pio_dot_f32(const float *a, const float *b, int64_t n)
{
    float s = 0.0f;
    int64_t i;
#pragma omp simd reduction(+ : s)
    for (i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}
