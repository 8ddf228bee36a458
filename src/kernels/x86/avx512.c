/*
 * avx512.c - AVX-512 F/BW/VL/DQ kernels without VNNI (Skylake-X class).
 * Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq (plus AVX2/FMA/
 * F16C); used only after dispatch.c has checked the CPU. The kernels are in
 * avx512_impl.h, shared with avx512vnni.c.
 */
#define PIO_VNNI 0
#define PIO_ISA_NAME avx512
#include "avx512_impl.h"
