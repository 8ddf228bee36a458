/*
 * quant.h - GGML-compatible block-quantized formats.
 *
 * The block structs are bit-identical to GGML's (ggml-common.h), so tensors
 * of a GGUF file are used in place, and files we write load in llama.cpp.
 * All multi-byte fields are little-endian; `d`/`dmin` are IEEE f16 bits.
 *
 *   Q8_0: x[i] = d * qs[i]                                  (32 values)
 *   Q4_0: x[j] = d * ((qs[j] & 15) - 8), x[j+16] = d * ((qs[j] >> 4) - 8)
 *   Q4_K: 8 sub-blocks of 32 with 6-bit scales/mins packed in scales[12];
 *         x = d*sc*q - dmin*m, q in [0,15]
 *   Q6_K: 16 sub-blocks of 16 with int8 scales; x = d*sc*(q - 32), q in [0,63]
 *   Q8_K: activations for K-quant dot products: f32 d, int8 qs, bsums[16]
 *         (sums of each 16 qs, used for the Q4_K min term)
 */
#ifndef PIO_KERNELS_QUANT_H
#define PIO_KERNELS_QUANT_H

#include "pio/pio.h"

#define PIO_QK8_0 32
#define PIO_QK4_0 32
#define PIO_QK_K 256
#define PIO_K_SCALE_SIZE 12

typedef struct pio_block_q8_0 {
    uint16_t d;                      /* f16 scale */
    int8_t qs[PIO_QK8_0];
} pio_block_q8_0;

typedef struct pio_block_q4_0 {
    uint16_t d;                      /* f16 scale */
    uint8_t qs[PIO_QK4_0 / 2];       /* low nibble: x[j], high nibble: x[j+16] */
} pio_block_q4_0;

typedef struct pio_block_q4_K {
    uint16_t d;                      /* f16 super-block scale for the scales */
    uint16_t dmin;                   /* f16 super-block scale for the mins */
    uint8_t scales[PIO_K_SCALE_SIZE];/* 8 scales and 8 mins, 6 bits each */
    uint8_t qs[PIO_QK_K / 2];        /* 4-bit quants */
} pio_block_q4_K;

typedef struct pio_block_q6_K {
    uint8_t ql[PIO_QK_K / 2];        /* low 4 bits */
    uint8_t qh[PIO_QK_K / 4];        /* high 2 bits */
    int8_t scales[PIO_QK_K / 16];    /* 8-bit sub-block scales */
    uint16_t d;                      /* f16 super-block scale */
} pio_block_q6_K;

typedef struct pio_block_q8_K {
    float d;
    int8_t qs[PIO_QK_K];
    int16_t bsums[PIO_QK_K / 16];
} pio_block_q8_K;

_Static_assert(sizeof(pio_block_q8_0) == 34, "Q8_0 block layout");
_Static_assert(sizeof(pio_block_q4_0) == 18, "Q4_0 block layout");
_Static_assert(sizeof(pio_block_q4_K) == 144, "Q4_K block layout");
_Static_assert(sizeof(pio_block_q6_K) == 210, "Q6_K block layout");
_Static_assert(sizeof(pio_block_q8_K) == 292, "Q8_K block layout");

#endif
