/*
 * cpu.c - CPU feature detection (cpuid/xgetbv on x86-64, getauxval on
 * AArch64 Linux) and the PIO_CPU override of the kernel level.
 */
#include "common/cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* XCR0: the register state the OS saves on context switches. */
static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/*
 * AVX needs OSXSAVE and the OS saving XMM+YMM (XCR0 bits 1, 2); AVX-512
 * additionally needs opmask, ZMM_Hi256 and Hi16_ZMM (bits 5, 6, 7).
 */
static void detect(pio_cpu_features *f)
{
    unsigned a, b, c, d, max_leaf;
    bool os_avx = false, os_avx512 = false;
    bool fma, f16c, avx2;

    if (!__get_cpuid(0, &max_leaf, &b, &c, &d))
        return;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    fma = c & (1u << 12);
    f16c = c & (1u << 29);
    if ((c & (1u << 27)) && (c & (1u << 28))) {         /* OSXSAVE, AVX */
        uint64_t xcr0 = read_xcr0();
        os_avx = (xcr0 & 0x6) == 0x6;
        os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
    }
    if (max_leaf < 7 || !os_avx)
        return;
    __cpuid_count(7, 0, a, b, c, d);
    avx2 = b & (1u << 5);
    f->avx2 = avx2 && fma && f16c;
    f->avx512 = f->avx2 && os_avx512 && (b & (1u << 16)) && (b & (1u << 17)) &&
                (b & (1u << 30)) && (b & (1u << 31));       /* F, DQ, BW, VL */
    f->avx512vnni = f->avx512 && (c & (1u << 11));
    if (a >= 1) {                                         /* sub-leaf 1 exists */
        unsigned a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        f->avxvnni = f->avx2 && (a1 & (1u << 4));
        f->avx512bf16 = f->avx512 && (a1 & (1u << 5));
    }
}

#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#include <asm/hwcap.h>

static void detect(pio_cpu_features *f)
{
    unsigned long hw = getauxval(AT_HWCAP);
    f->neon = hw & HWCAP_ASIMD;
    f->dotprod = hw & HWCAP_ASIMDDP;
}

#else
static void detect(pio_cpu_features *f) { (void)f; }
#endif

static pio_cpu_features features;
static pio_cpu_level level_detected;
static pio_cpu_level level_active;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const char *const level_names[PIO_CPU_LEVEL_COUNT] = {
    [PIO_CPU_LEVEL_SCALAR] = "scalar",
    [PIO_CPU_LEVEL_AVX2] = "avx2",
    [PIO_CPU_LEVEL_AVX512] = "avx512",
    [PIO_CPU_LEVEL_AVX512VNNI] = "avx512vnni",
    [PIO_CPU_LEVEL_AVX512BF16] = "avx512bf16",
    [PIO_CPU_LEVEL_NEON] = "neon",
};

static bool level_ok(const pio_cpu_features *f, pio_cpu_level level)
{
    switch (level) {
    case PIO_CPU_LEVEL_SCALAR: return true;
    case PIO_CPU_LEVEL_AVX2: return f->avx2;
    case PIO_CPU_LEVEL_AVX512: return f->avx512;
    case PIO_CPU_LEVEL_AVX512VNNI: return f->avx512vnni;
    case PIO_CPU_LEVEL_AVX512BF16: return f->avx512vnni && f->avx512bf16;
    case PIO_CPU_LEVEL_NEON: return f->neon;
    default: return false;
    }
}

static void init_once(void)
{
    const char *env = getenv("PIO_CPU");
    int l;

    detect(&features);
    level_detected = PIO_CPU_LEVEL_SCALAR;
    for (l = 0; l < PIO_CPU_LEVEL_COUNT; l++)
        if (level_ok(&features, (pio_cpu_level)l))
            level_detected = (pio_cpu_level)l;
    level_active = level_detected;
    if (env && *env) {
        l = pio_cpu_level_from_name(env);
        /* A supported level at or below the detected one. */
        if (l >= 0 && level_ok(&features, (pio_cpu_level)l) && l <= (int)level_detected)
            level_active = (pio_cpu_level)l;
    }
}

const pio_cpu_features *pio_cpu_features_get(void)
{
    pthread_once(&once, init_once);
    return &features;
}

bool pio_cpu_level_supported(pio_cpu_level level)
{
    return level_ok(pio_cpu_features_get(), level);
}

pio_cpu_level pio_cpu_level_detected(void)
{
    pthread_once(&once, init_once);
    return level_detected;
}

pio_cpu_level pio_cpu_level_active(void)
{
    pthread_once(&once, init_once);
    return level_active;
}

const char *pio_cpu_level_name(pio_cpu_level level)
{
    return (unsigned)level < PIO_CPU_LEVEL_COUNT ? level_names[level] : "?";
}

int pio_cpu_level_from_name(const char *name)
{
    int l;
    if (!name)
        return -1;
    for (l = 0; l < PIO_CPU_LEVEL_COUNT; l++)
        if (strcasecmp(name, level_names[l]) == 0)
            return l;
    return -1;
}

const char *pio_cpu_features_string(void)
{
    static char buf[128];
    const pio_cpu_features *f = pio_cpu_features_get();
    snprintf(buf, sizeof buf, "%s%s%s%s%s%s%s",
             f->avx2 ? "avx2+fma+f16c " : "", f->avx512 ? "avx512f/bw/vl/dq " : "",
             f->avx512vnni ? "avx512vnni " : "", f->avx512bf16 ? "avx512bf16 " : "",
             f->avxvnni ? "avxvnni " : "", f->neon ? "neon " : "", f->dotprod ? "dotprod " : "");
    return buf;
}
