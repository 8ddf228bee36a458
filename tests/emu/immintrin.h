/*
 * tests/emu/immintrin.h - stands in for <immintrin.h> when the AVX-512
 * kernel sources are compiled for test_kernels_simd_emu and
 * test_attention_emu (tests/CMakeLists.txt). SIMDe (Debian's libsimde-dev)
 * implements the AVX-512 F/BW/VL/DQ, VNNI and BF16 intrinsics in portable
 * C, so the AVX-512 kernels run, slowly, on a CPU without AVX-512 and are
 * diffed against the scalar level like any native level.
 *
 * SIMDe 0.7.4 lacks a few intrinsics the kernels use; they are written
 * below, element by element, from Intel's definitions. Only the compiler's
 * own conversions are used for f16 (_Float16) so their rounding is the
 * hardware's: to nearest, ties to even.
 */
#ifndef PIO_TESTS_EMU_IMMINTRIN_H
#define PIO_TESTS_EMU_IMMINTRIN_H

/* The compiler's own header first: SIMDe includes <immintrin.h>, which is
 * this file, when AVX is native, and it keeps GCC's __m512 types as its own. */
#include_next <immintrin.h>

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/fma.h>
#include <simde/x86/f16c.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#define __mmask16 simde__mmask16
#define __mmask64 simde__mmask64
#ifndef _MM_FROUND_NO_EXC
#define _MM_FROUND_NO_EXC SIMDE_MM_FROUND_NO_EXC
#endif
/* SIMDe 0.7.4 declares this alias with the masked form's four arguments. */
#undef _mm512_madd_epi16
#define _mm512_madd_epi16(a, b) simde_mm512_madd_epi16(a, b)

/* A vector's bytes as lanes of one type, and back. */
#define EMU_LANES(type, n, v) type v##_l[n]; memcpy(v##_l, &(v), sizeof v##_l)

static inline float emu_cvtsh_ss(unsigned short h)
{
    _Float16 f;
    memcpy(&f, &h, 2);
    return (float)f;
}

/* Lane-wise conversions of 16 values: out lane i = EXPR(x) of in lane i. */
#define EMU_MAP16(name, in_vec, in_t, out_vec, out_t, EXPR)                              \
    static inline out_vec name(in_vec a)                                                 \
    {                                                                                    \
        EMU_LANES(in_t, 16, a);                                                          \
        out_t r[16];                                                                     \
        out_vec o;                                                                       \
        for (int i = 0; i < 16; i++) {                                                   \
            in_t x = a_l[i];                                                             \
            r[i] = (EXPR);                                                               \
        }                                                                                \
        memcpy(&o, r, sizeof r);                                                         \
        return o;                                                                        \
    }

/* MXCSR's default rounding (nearest even); out of range gives INT32_MIN. */
static inline int32_t emu_cvt_i32(float x)
{
    float v = nearbyintf(x);
    return (v >= -2147483648.0f && v < 2147483648.0f) ? (int32_t)v : INT32_MIN;
}

EMU_MAP16(emu_mm512_cvtph_ps, simde__m256i, uint16_t, simde__m512, float, emu_cvtsh_ss(x))
/* Rounding is to nearest even: the kernels pass no other mode. */
EMU_MAP16(emu_mm512_cvtps_ph, simde__m512, float, simde__m256i, _Float16, (_Float16)x)
EMU_MAP16(emu_mm512_cvtepi32_ps, simde__m512i, int32_t, simde__m512, float, (float)x)
EMU_MAP16(emu_mm512_cvtps_epi32, simde__m512, float, simde__m512i, int32_t, emu_cvt_i32(x))
EMU_MAP16(emu_mm512_cvtepu16_epi32, simde__m256i, uint16_t, simde__m512i, int32_t, (int32_t)x)

/*
 * Round to M = imm[7:4] fraction bits by imm[1:0] (imm[2]: MXCSR's mode,
 * nearest even by default). SIMDe 0.7.4 gets the fraction bits wrong
 * (floor of -5.6 with imm 0x09 gives -4.5).
 */
static inline simde__m512 emu_mm512_roundscale_ps(simde__m512 a, int imm)
{
    EMU_LANES(float, 16, a);
    float scale = (float)(1 << (imm >> 4 & 15)), r[16];
    simde__m512 o;
    for (int i = 0; i < 16; i++) {
        float x = a_l[i] * scale;
        switch ((imm & 4) ? 0 : imm & 3) {
        case 0: x = nearbyintf(x); break;
        case 1: x = floorf(x); break;
        case 2: x = ceilf(x); break;
        default: x = truncf(x); break;
        }
        r[i] = x / scale;
    }
    memcpy(&o, r, 64);
    return o;
}

/*
 * vcvtne2ps2bf16: b's 16 values into the low half, a's into the high half;
 * nearest even, NaN kept quiet, subnormals to signed zero (Intel's
 * convert_fp32_to_bfloat16).
 */
static inline uint16_t emu_bf16_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0)
        return (uint16_t)(u >> 16 & 0x8000u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)(u >> 16 | 0x40u);
    if ((u & 0x7fffffffu) == 0x7f800000u)
        return (uint16_t)(u >> 16);
    return (uint16_t)((u + 0x7fffu + (u >> 16 & 1u)) >> 16);
}

static inline simde__m512bh emu_mm512_cvtne2ps_pbh(simde__m512 a, simde__m512 b)
{
    EMU_LANES(float, 16, a);
    EMU_LANES(float, 16, b);
    uint16_t r[32];
    simde__m512bh o;
    for (int i = 0; i < 16; i++) {
        r[i] = emu_bf16_of(b_l[i]);
        r[16 + i] = emu_bf16_of(a_l[i]);
    }
    memcpy(&o, r, 64);
    return o;
}

/* Masked loads and stores touch only the selected elements' memory. */
#define EMU_MASKZ_LOAD(name, mask_t, n, elem_t, out_vec)                                  \
    static inline out_vec name(mask_t m, const void *p)                                  \
    {                                                                                    \
        elem_t r[n];                                                                     \
        out_vec o;                                                                       \
        for (int i = 0; i < n; i++)                                                      \
            r[i] = (m >> i & 1) ? ((const elem_t *)p)[i] : (elem_t)0;                    \
        memcpy(&o, r, sizeof r);                                                         \
        return o;                                                                        \
    }

EMU_MASKZ_LOAD(emu_mm512_maskz_loadu_ps, simde__mmask16, 16, float, simde__m512)
EMU_MASKZ_LOAD(emu_mm256_maskz_loadu_epi16, simde__mmask16, 16, int16_t, simde__m256i)
EMU_MASKZ_LOAD(emu_mm512_maskz_loadu_epi16, simde__mmask32, 32, int16_t, simde__m512i)

static inline void emu_mm512_mask_storeu_ps(void *p, simde__mmask16 m, simde__m512 a)
{
    EMU_LANES(float, 16, a);
    for (int i = 0; i < 16; i++)
        if (m >> i & 1)
            ((float *)p)[i] = a_l[i];
}

/* Tree order as GCC's: halves of 256, then 128 bits, then pairs. */
static inline float emu_mm512_reduce_add_ps(simde__m512 a)
{
    EMU_LANES(float, 16, a);
    for (int w = 8; w >= 1; w /= 2)
        for (int i = 0; i < w; i++)
            a_l[i] += a_l[i + w];
    return a_l[0];
}

static inline float emu_mm512_reduce_max_ps(simde__m512 a)
{
    EMU_LANES(float, 16, a);
    for (int w = 8; w >= 1; w /= 2)
        for (int i = 0; i < w; i++)
            a_l[i] = a_l[i] > a_l[i + w] ? a_l[i] : a_l[i + w];
    return a_l[0];
}

/* 128-bit lanes 0,1 from a and 2,3 from b, each picked by two bits of imm. */
static inline simde__m512i emu_mm512_shuffle_i64x2(simde__m512i a, simde__m512i b, int imm)
{
    uint8_t x[64], y[64], r[64];
    simde__m512i o;
    memcpy(x, &a, 64);
    memcpy(y, &b, 64);
    for (int lane = 0; lane < 4; lane++)
        memcpy(r + 16 * lane, (lane < 2 ? x : y) + 16 * (imm >> (2 * lane) & 3), 16);
    memcpy(&o, r, 64);
    return o;
}

static inline simde__m512i emu_mm512_zextsi128_si512(simde__m128i a)
{
    simde__m512i o = simde_mm512_setzero_si512();
    memcpy(&o, &a, 16);
    return o;
}

static inline simde__m512i emu_mm512_zextsi256_si512(simde__m256i a)
{
    simde__m512i o = simde_mm512_setzero_si512();
    memcpy(&o, &a, 32);
    return o;
}

#define _cvtsh_ss emu_cvtsh_ss
#define _mm512_cvtph_ps emu_mm512_cvtph_ps
#define _mm512_cvtps_ph(a, imm) emu_mm512_cvtps_ph(a)
#define _mm512_cvtepi32_ps emu_mm512_cvtepi32_ps
#define _mm512_cvtps_epi32 emu_mm512_cvtps_epi32
#define _mm512_cvtepu16_epi32 emu_mm512_cvtepu16_epi32
#define _mm256_maskz_loadu_epi16 emu_mm256_maskz_loadu_epi16
#undef _mm512_roundscale_ps
#define _mm512_roundscale_ps emu_mm512_roundscale_ps
#define _mm512_cvtne2ps_pbh emu_mm512_cvtne2ps_pbh
#define _mm512_maskz_loadu_epi16 emu_mm512_maskz_loadu_epi16
#define _mm512_maskz_loadu_ps emu_mm512_maskz_loadu_ps
#define _mm512_mask_storeu_ps emu_mm512_mask_storeu_ps
#define _mm512_reduce_add_ps emu_mm512_reduce_add_ps
#define _mm512_reduce_max_ps emu_mm512_reduce_max_ps
#define _mm512_shuffle_i64x2 emu_mm512_shuffle_i64x2
#define _mm512_zextsi128_si512 emu_mm512_zextsi128_si512
#define _mm512_zextsi256_si512 emu_mm512_zextsi256_si512

#endif
