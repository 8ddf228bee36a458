/*
 * tests/emu/kernels_emu.h - the AVX-512 levels built from the same sources
 * as the library's, with intrinsics from SIMDe (tests/emu/immintrin.h), for
 * test_kernels_simd_emu and test_attention_emu (tests/CMakeLists.txt renames
 * the init functions so both copies link into one program).
 */
#ifndef PIO_TESTS_KERNELS_EMU_H
#define PIO_TESTS_KERNELS_EMU_H

#include "kernels/attn.h"
#include "kernels/dispatch.h"

void pio_kernels_init_avx512_emu(pio_kernels *kt);
void pio_kernels_init_avx512vnni_emu(pio_kernels *kt);
void pio_kernels_init_avx512bf16_emu(pio_kernels *kt);
void pio_attn_kernels_init_avx512_emu(pio_attn_kernels *kt);

#endif
