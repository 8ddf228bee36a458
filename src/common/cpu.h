/*
 * cpu.h - CPU feature detection and the kernel level the process runs at.
 *
 * Features are read once (cpuid + xgetbv on x86, getauxval on ARM). The
 * kernel level is the best level the CPU (and the OS, for the AVX/AVX-512
 * register state) supports, optionally changed by the environment variable
 *   PIO_CPU=scalar|avx2|avx512|avx512vnni|avx512bf16|neon
 * which forces a lower level for testing and for comparing kernels, or opts
 * in to avx512bf16 (below). A level the CPU cannot run is never chosen.
 */
#ifndef PIO_COMMON_CPU_H
#define PIO_COMMON_CPU_H

#include "pio/pio.h"

/* What the CPU and the OS allow; every flag already includes the OS check. */
typedef struct pio_cpu_features {
    bool avx2;         /* AVX2 with FMA and F16C */
    bool avx512;       /* AVX-512 F, BW, VL and DQ */
    bool avx512vnni;   /* AVX512_VNNI: vpdpbusd/vpdpwssd */
    bool avx512bf16;   /* AVX512_BF16: vdpbf16ps */
    bool avxvnni;      /* AVX-VNNI (VEX-encoded vpdpbusd), informational */
    bool neon;         /* AArch64 Advanced SIMD */
    bool dotprod;      /* AArch64 sdot/udot */
} pio_cpu_features;

/*
 * Kernel levels in the order of preference. On x86 each level implies the
 * ones below it; NEON is the one ARM level (with sdot tiles where the CPU has
 * DotProd).
 * AVX512BF16 (VNNI and AVX512_BF16) multiplies BF16 weights with vdpbf16ps,
 * which takes the activations rounded to bf16, as llama.cpp does on such
 * CPUs: the one level whose results differ from the scalar level's by more
 * than summation order. That moves a tiny model's logits by ~2% of their
 * scale, outside the transformers golden tests' 1e-4, so the level is never
 * chosen by detection: only PIO_CPU=avx512bf16 selects it.
 */
typedef enum pio_cpu_level {
    PIO_CPU_LEVEL_SCALAR = 0,
    PIO_CPU_LEVEL_AVX2,
    PIO_CPU_LEVEL_AVX512,
    PIO_CPU_LEVEL_AVX512VNNI,
    PIO_CPU_LEVEL_AVX512BF16,
    PIO_CPU_LEVEL_NEON,
    PIO_CPU_LEVEL_COUNT
} pio_cpu_level;

/* The detected features (read once, thread-safe). */
const pio_cpu_features *pio_cpu_features_get(void);

/* True when this CPU can run kernels of `level`. */
bool pio_cpu_level_supported(pio_cpu_level level);

/* The best level the CPU supports, ignoring PIO_CPU. */
pio_cpu_level pio_cpu_level_detected(void);

/*
 * The level kernels run at: the detected level, lowered to PIO_CPU when that
 * names a supported level. Read once per process.
 */
pio_cpu_level pio_cpu_level_active(void);

/* "scalar", "avx2", "avx512", "avx512vnni", "avx512bf16", "neon". */
const char *pio_cpu_level_name(pio_cpu_level level);

/* Parse a level name (case-insensitive); -1 if unknown. */
int pio_cpu_level_from_name(const char *name);

/* One line naming the detected features, e.g. "avx2 fma f16c" (static buffer). */
const char *pio_cpu_features_string(void);

#endif
