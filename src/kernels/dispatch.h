/*
 * dispatch.h - the table of matmul kernels, chosen at run time by CPU level.
 *
 * pio_matmul() (kernels.h) is the only entry point the models use. It
 * quantizes the activations once per call into the format the weight dtype
 * pairs with, then runs `tile` kernels over (rows x tokens) tiles on the
 * thread pool. Each CPU level (scalar, AVX2, AVX-512, AVX-512 VNNI, ...) has
 * its own table; a level starts from the table of the level below it and
 * replaces the entries it implements, so every entry is always set.
 *
 * Activation formats, by weight dtype:
 *   F32, F16, BF16 -> f32 rows (as given)
 *   Q8_0, Q4_0,
 *   Q8_0_X8,
 *   Q4_0_X8        -> PIO_ACT_Q8: rows of k values in groups of 256:
 *                     { int8 qs[256]; float d[8]; int32 s[8]; } = 320 bytes,
 *                     one (d, s) per block of 32: x ≈ d·qs, s = Σ qs. The
 *                     last group is zero-padded. Groups let a k-range that
 *                     starts at a multiple of 256 be addressed by offset.
 *   Q4_K, Q6_K,
 *   Q4_K_X8, Q6_K_X8 -> PIO_ACT_Q8_K: GGML block_q8_K (d, qs[256], bsums[16]).
 * Quantization (all levels bit-identical): Q8: d = amax/127, q = rint(x/d);
 * Q8_K: GGML's quantize_row_q8_K (d = -max/127 for the signed max).
 */
#ifndef PIO_KERNELS_DISPATCH_H
#define PIO_KERNELS_DISPATCH_H

#include "common/cpu.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"

typedef enum pio_act_kind {
    PIO_ACT_F32 = 0,
    PIO_ACT_Q8,
    PIO_ACT_Q8_K,
} pio_act_kind;

#define PIO_ACT_Q8_GROUP 256            /* values per PIO_ACT_Q8 group */
#define PIO_ACT_Q8_GROUP_BYTES 320      /* qs[256] + d[8] + s[8] */

/*
 * Tile kernel: for r < nr, t < nt
 *   y[t*ldy + r] (= or +=) Σ_{c<k} W[r][c] · X[t][c]
 * w:  row 0 of the tile in the weight dtype, rows w_stride bytes apart;
 * x:  activation row 0 in the dtype's activation format, x_stride bytes apart;
 * k:  columns, a multiple of the dtype's block (any k for float weights;
 *     for PIO_ACT_Q8, a range that starts at a group boundary);
 * accumulate: add to y instead of storing.
 * Any nr >= 1, nt >= 1. Cost: nr·nt·k multiply-adds; each weight block is
 * loaded and decoded once per group of tokens of the micro-kernel.
 * X8 layouts (quant.h): nr a multiple of 8; w is the tile's first 8-row group
 * (at column 0 of the k range) and groups are 8·w_stride bytes apart, where
 * w_stride is pio_dtype_row_bytes of the whole matrix row; the k range
 * starting at column c of a group begins 8·pio_dtype_row_bytes(c) in.
 */
typedef void (*pio_tile_fn)(int64_t k, int nr, int nt, const void *w, size_t w_stride,
                            const void *x, size_t x_stride, float *y, size_t ldy,
                            bool accumulate);

/*
 * Optional prefill path: pack a panel of W (nr rows x k columns starting at
 * w, rows w_stride bytes apart) into dst (pack_size(nr, k) bytes, 64-byte
 * aligned) once per task and k block; tile_packed then reads the panel
 * instead of W (its w_stride argument is unused). Lets a level use a layout
 * built for its instructions (e.g. dword-interleaved rows for vpdpbusd).
 */
typedef size_t (*pio_pack_size_fn)(int nr, int64_t k);
typedef void (*pio_pack_fn)(void *dst, const void *w, size_t w_stride, int nr, int64_t k);

typedef struct pio_kernels {
    pio_cpu_level level;
    pio_tile_fn tile[PIO_DTYPE_COUNT];        /* by weight dtype; NULL: not a weight type */
    pio_pack_size_fn pack_size[PIO_DTYPE_COUNT];  /* NULL: no packed path for the dtype */
    pio_pack_fn pack[PIO_DTYPE_COUNT];
    pio_tile_fn tile_packed[PIO_DTYPE_COUNT];
    /* Rows per prefill task the packed path of dtype d prefers (a multiple
     * of 32; 0: the default 32). pack_size/pack/tile_packed must take any nr
     * up to it. */
    int pack_rows[PIO_DTYPE_COUNT];
    /* The layout weights of dtype d run fastest in at this level (d itself,
     * or its X8 layout for Q8_0 / Q4_0 / Q4_K / Q6_K): what the loader repacks them to
     * (pio_wmat_layout_for). Every level still runs every layout. */
    pio_dtype weight_layout[PIO_DTYPE_COUNT];
    /* Quantize one row of k f32 values (k a multiple of 32 / 256). */
    void (*quantize_q8)(const float *x, void *xq, int64_t k);           /* PIO_ACT_Q8 */
    void (*quantize_q8_K)(const float *x, pio_block_q8_K *xq, int64_t k);
    /* dst[n] = src[n] of dtype F32/F16/BF16 as f32 (weight panels for GEMM). */
    void (*to_f32)(float *dst, const void *src, pio_dtype dt, int64_t n);
    /* g[i] = silu(g[i]) · u[i] (the SwiGLU activation), g / (1 + e^-g) · u
     * with e^x of pio_exp_poly: the same bits at every level. A value's result
     * must not depend on its index or on n: SIMD levels run a tail through
     * the same vector code as the body. */
    void (*silu_mul)(float *g, const float *u, int64_t n);
    /* The packed prefill path of BF16 weights (tile_packed) multiplies the
     * f32 activations rounded to bf16 (nearest even, subnormals to zero), as
     * vdpbf16ps needs: the AVX512BF16 level. Its tile keeps f32 ones. */
    bool bf16_act;
} pio_kernels;

/* The table of the active level (pio_cpu_level_active()); never NULL. */
const pio_kernels *pio_kernels_get(void);

/* The table of `level`, or NULL when it is not built in or the CPU lacks it. */
const pio_kernels *pio_kernels_for_level(pio_cpu_level level);

/* Activation format that weights of dtype `dt` multiply; -1 if not a weight type. */
int pio_act_kind_of(pio_dtype dt);

/* Bytes of one activation row of k values in format `kind` (k a valid multiple). */
size_t pio_act_row_bytes(pio_act_kind kind, int64_t k);

/* pio_matmul with an explicit kernel table (tests and benchmarks compare levels). */
pio_status pio_matmul_kernels(const pio_kernels *kt, pio_threadpool *tp, float *y,
                              const float *x, int n, const pio_wmat *w);

/* pio_matmul_multi with an explicit kernel table. */
pio_status pio_matmul_multi_kernels(const pio_kernels *kt, pio_threadpool *tp, int count,
                                    float *const *ys, const float *x, int n,
                                    const pio_wmat *const *ws);

/*
 * Per-level table builders: each fills in the entries its ISA implements on
 * top of the lower level's table (defined in src/kernels/x86/<isa>.c and
 * src/kernels/arm/neon*.c).
 */
void pio_kernels_init_scalar(pio_kernels *kt);
void pio_silu_mul_scalar(float *g, const float *u, int64_t n);   /* ref/elementwise.c */

/* e^x of SwiGLU at every level (ref/elementwise.c); the SIMD levels repeat its
 * operations in vector form, with the same clamps. */
float pio_exp_poly(float x);
#define PIO_EXP_POLY_HI 88.7228394f   /* above: +inf */
#define PIO_EXP_POLY_LO (-86.6f)      /* below: 0 */
void pio_kernels_init_avx2(pio_kernels *kt);
void pio_kernels_init_avx512(pio_kernels *kt);
void pio_kernels_init_avx512vnni(pio_kernels *kt);
void pio_kernels_init_avx512bf16(pio_kernels *kt);
void pio_kernels_init_neon(pio_kernels *kt);
void pio_kernels_init_neon_dotprod(pio_kernels *kt);   /* called by init_neon on sdot CPUs */

#endif
