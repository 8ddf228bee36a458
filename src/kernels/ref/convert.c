/*
 * convert.c - f16/bf16 <-> f32 conversions and the f32 dot product.
 */
#include "kernels/kernels.h"

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
    default:
        memset(dst, 0, (size_t)n * sizeof(float));   /* callers check dtypes at bind */
        break;
    }
}

void pio_wmat_row_f32(const pio_wmat *w, int64_t r, float *dst)
{
    const char *base = w->data;
    pio_convert_to_f32(dst, base + (size_t)r * (size_t)w->cols * pio_dtype_size(w->dtype),
                       w->dtype, w->cols);
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
