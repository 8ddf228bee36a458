/*
 * neon_dotprod.c - the Q8_0/Q4_0 tiles of neon_impl.h with sdot (ARMv8.2
 * DotProd). Compiled with -march=armv8.2-a+dotprod; pio_kernels_init_neon
 * installs them only when the CPU reports the feature (HWCAP_ASIMDDP).
 */
#define PIO_NEON_DOTPROD 1
#define PIO_NEON_NAME neon_dotprod
#include "neon_impl.h"

void pio_kernels_init_neon_dotprod(pio_kernels *kt)
{
    kt->tile[PIO_DTYPE_Q8_0] = tile_q8_0_neon_dotprod;
    kt->tile[PIO_DTYPE_Q4_0] = tile_q4_0_neon_dotprod;
    kt->tile[PIO_DTYPE_Q4_K] = tile_q4_K_neon_dotprod;
    kt->tile[PIO_DTYPE_Q6_K] = tile_q6_K_neon_dotprod;
}
