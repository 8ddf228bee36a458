/*
 * neon.c - the NEON level: every AArch64 CPU (Advanced SIMD is part of
 * ARMv8-A). Float and Q8_0/Q4_0 tiles from neon_impl.h; the Q8_0/Q4_0 tiles
 * of neon_dotprod.c replace these where the CPU has sdot (ARMv8.2 DotProd:
 * Cortex-A55/A76 and later, Neoverse, Apple M). Everything else (Q4_K,
 * Q6_K, the X8 layouts, the quantizers) is the scalar level's.
 */
#define PIO_NEON_DOTPROD 0
#define PIO_NEON_NAME neon
#include "neon_impl.h"

#include "common/cpu.h"

void pio_kernels_init_neon(pio_kernels *kt)
{
    kt->tile[PIO_DTYPE_F32] = tile_f32_neon;
    kt->tile[PIO_DTYPE_F16] = tile_f16_neon;
    kt->tile[PIO_DTYPE_BF16] = tile_bf16_neon;
    kt->tile[PIO_DTYPE_Q8_0] = tile_q8_0_neon;
    kt->tile[PIO_DTYPE_Q4_0] = tile_q4_0_neon;
    kt->tile[PIO_DTYPE_Q4_K] = tile_q4_K_neon;
    kt->tile[PIO_DTYPE_Q6_K] = tile_q6_K_neon;
    if (pio_cpu_features_get()->dotprod)
        pio_kernels_init_neon_dotprod(kt);
}
