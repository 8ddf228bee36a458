/*
 * avx512vnni.c - AVX-512 kernels with VNNI (vpdpbusd, vpdpwssd): Ice Lake,
 * Sapphire Rapids, Zen 4 class. Compiled with the avx512.c flags plus
 * -mavx512vnni; used only after dispatch.c has checked the CPU. The kernels
 * are in avx512_impl.h.
 */
#define PIO_VNNI 1
#define PIO_ISA_NAME avx512vnni
#include "avx512_impl.h"
