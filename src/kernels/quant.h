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

/*
 * Q4_0_X8, Q8_0_X8, Q4_K_X8 and Q6_K_X8 (PIO_DTYPE_*_X8): internal layouts
 * of Q4_0, Q8_0, Q4_K and Q6_K, never in files. A matrix of R rows (R a
 * multiple of 8) x K columns is R/8 groups of 8 rows; group g holds rows
 * 8g..8g+7 in exactly the bytes those 8 rows occupy in the plain format
 * (8·(K/B)·block bytes for blocks of B values, from byte 8g·row_bytes), so
 * a tensor can be repacked in place. A group is K/B block columns, block
 * column b holding block b of each of the 8 rows: the block's f16 fields (d;
 * Q4_K: d and dmin), each as 8 values, then the rest of the block in its
 * order, in chunks of 4 bytes per row (4 chunks for Q4_0's 16 bytes, 8 for
 * Q8_0's 32, 35 for Q4_K's 12 scale bytes and 128 quant bytes, 52 for Q6_K's
 * 128 low-nibble, 64 high-bit and 16 scale bytes; Q6_K's d closes its plain
 * block but opens the block column). For Q4_0 / Q8_0:
 *
 *   offset  0: d[8]          f16 scale of block b of row 0..7     (16 B)
 *   offset 16: qs[C][8][4]   chunk c = 0..C-1, row i = 0..7:      (32·C B)
 *                            bytes qs[4c..4c+3] of row i's block
 *
 *        16 B          32 B (chunk 0)                   32 B (chunk C-1)
 *   +-----------+-------+-------+-----+-------+     +-------+-----+-------+
 *   | d0 ... d7 | r0 qs | r1 qs | ... | r7 qs | ... | r0 qs | ... | r7 qs |
 *   |           | 0..3  | 0..3  |     | 0..3  |     |       |     |       |
 *   +-----------+-------+-------+-----+-------+     +-------+-----+-------+
 *
 * One 32-byte load of a chunk gives 4 bytes of every row, and against 4
 * activation bytes broadcast to the 8 dwords one pmaddubsw computes partial
 * dot products of all 8 rows, one row per lane. Q8_0: chunk c is values
 * 4c..4c+3 of the block. Q4_0: as in Q4_0, byte qs[j] holds q[j] (low
 * nibble) and q[j+16] (high nibble), x = d·(q - 8), so the low nibbles of
 * chunk c are values 4c..4c+3 and the high nibbles 16+4c..16+4c+3.
 */
#define PIO_X8_ROWS 8

typedef struct pio_block_q4_0x8 {
    uint16_t d[8];                   /* f16 scales of rows 0..7 */
    uint8_t qs[4][8][4];             /* [chunk][row][byte] */
} pio_block_q4_0x8;

typedef struct pio_block_q8_0x8 {
    uint16_t d[8];                   /* f16 scales of rows 0..7 */
    int8_t qs[8][8][4];              /* [chunk][row][byte] */
} pio_block_q8_0x8;

/* Q4_K_X8: chunk k < 3 of the scales, chunk c < 32 of qs (qs bytes 4c..4c+3;
 * qs[32p..32p+31] hold sub-blocks 2p (low nibbles) and 2p+1 (high)). */
typedef struct pio_block_q4_Kx8 {
    uint16_t d[8];                   /* f16 super-block scales of rows 0..7 */
    uint16_t dmin[8];                /* f16 super-block mins */
    uint8_t scales[3][8][4];         /* [chunk][row][byte] of the 12 scale bytes */
    uint8_t qs[32][8][4];            /* [chunk][row][byte] */
} pio_block_q4_Kx8;

/* Q6_K_X8: chunk c of ql, of qh and of the int8 scales (bytes 4c..4c+3 of
 * each; GGML's bit order within them, dequantize_row_q6_K). */
typedef struct pio_block_q6_Kx8 {
    uint16_t d[8];                   /* f16 super-block scales of rows 0..7 */
    uint8_t ql[32][8][4];            /* [chunk][row][byte] */
    uint8_t qh[16][8][4];            /* [chunk][row][byte] */
    int8_t scales[4][8][4];          /* [chunk][row][byte] */
} pio_block_q6_Kx8;

/* The plain format an interleaved layout holds (Q4_0 for Q4_0_X8, ...);
 * PIO_DTYPE_COUNT for any other dtype. */
static inline pio_dtype pio_x8_base(pio_dtype dt)
{
    return dt == PIO_DTYPE_Q4_0_X8 ? PIO_DTYPE_Q4_0
         : dt == PIO_DTYPE_Q8_0_X8 ? PIO_DTYPE_Q8_0
         : dt == PIO_DTYPE_Q4_K_X8 ? PIO_DTYPE_Q4_K
         : dt == PIO_DTYPE_Q6_K_X8 ? PIO_DTYPE_Q6_K
                                   : PIO_DTYPE_COUNT;
}

static inline bool pio_dtype_is_x8(pio_dtype dt)
{
    return pio_x8_base(dt) != PIO_DTYPE_COUNT;
}

_Static_assert(sizeof(pio_block_q8_0) == 34, "Q8_0 block layout");
_Static_assert(sizeof(pio_block_q4_0x8) == 8 * 18, "Q4_0_X8 block column = 8 Q4_0 blocks");
_Static_assert(sizeof(pio_block_q8_0x8) == 8 * 34, "Q8_0_X8 block column = 8 Q8_0 blocks");
_Static_assert(sizeof(pio_block_q4_Kx8) == 8 * 144, "Q4_K_X8 block column = 8 Q4_K blocks");
_Static_assert(sizeof(pio_block_q6_Kx8) == 8 * 210, "Q6_K_X8 block column = 8 Q6_K blocks");
_Static_assert(sizeof(pio_block_q4_0) == 18, "Q4_0 block layout");
_Static_assert(sizeof(pio_block_q4_K) == 144, "Q4_K block layout");
_Static_assert(sizeof(pio_block_q6_K) == 210, "Q6_K block layout");
_Static_assert(sizeof(pio_block_q8_K) == 292, "Q8_K block layout");

/* ---- reference code (src/kernels/ref/quant.c) ----------------------------
 *
 * Scalar C, bit-identical to GGML's reference (ggml-quants.c *_ref) and its
 * generic dot products (ggml-cpu/quants.c *_generic): the same input gives
 * the same blocks and the same float results. k and n are element counts,
 * multiples of the block size (32 or 256; not checked here).
 */

/* Quantize k floats into k/block blocks at y (GGML quantize_row_*_ref). */
void pio_quantize_row_q8_0(const float *x, void *y, int64_t k);
void pio_quantize_row_q4_0(const float *x, void *y, int64_t k);
void pio_quantize_row_q4_K(const float *x, void *y, int64_t k);
void pio_quantize_row_q6_K(const float *x, void *y, int64_t k);
void pio_quantize_row_q8_K(const float *x, void *y, int64_t k);

/* True for the dtypes pio_quantize_row can produce: F32, F16, BF16 (rounded
 * to nearest even), Q8_0, Q4_0, Q4_K, Q6_K, Q8_K. */
bool pio_dtype_can_quantize(pio_dtype dt);

/* Quantize (or convert) k floats into dt; dt must pass pio_dtype_can_quantize. */
void pio_quantize_row(pio_dtype dt, const float *x, void *y, int64_t k);

/*
 * Quantize x[rows][cols] into rows of pio_dtype_row_bytes(dt, cols) bytes.
 * ERR_UNSUPPORTED for a dtype we cannot produce, ERR_SHAPE when cols is not
 * a multiple of the block size. Single-threaded; cost O(rows·cols): ~30
 * instructions per value for Q8_0/Q4_0, ~170 for Q4_K and ~130 for Q6_K
 * (their scale searches; with the AVX2 clone, about 4x that without).
 */
pio_status pio_quantize_rows(pio_dtype dt, const float *x, void *y, int64_t rows, int64_t cols);

/* y[0..k) = the values of k elements of type dt at x: Q8_0, Q4_0, Q4_K,
 * Q6_K, Q8_K (GGML dequantize_row_*), or F32/F16/BF16. (A row of an X8
 * layout is not contiguous: pio_x8_dequantize_row or pio_wmat_row_f32.) */
void pio_dequantize_row(pio_dtype dt, const void *x, float *y, int64_t k);

/*
 * The block type the activations are quantized to for a dot product with
 * weights of type w: Q8_0 for Q8_0 and Q4_0, Q8_K for Q4_K and Q6_K
 * (GGML's vec_dot_type); F32 for plain types.
 */
pio_dtype pio_dtype_vec_dot_type(pio_dtype w);

/*
 * Dot product of n elements: weights w (blocks of the first type) with
 * activations a (blocks of pio_dtype_vec_dot_type), as GGML's generic
 * ggml_vec_dot_<w>_<a>: integer block sums, scaled and summed in f32.
 */
float pio_vec_dot_q8_0_q8_0_ref(int64_t n, const void *w, const void *a);
float pio_vec_dot_q4_0_q8_0_ref(int64_t n, const void *w, const void *a);
float pio_vec_dot_q4_K_q8_K_ref(int64_t n, const void *w, const void *a);
float pio_vec_dot_q6_K_q8_K_ref(int64_t n, const void *w, const void *a);

/*
 * Plain <-> X8 layout (x8: an X8 dtype), one group of 8 rows of k values
 * (k a multiple of the block): pack reads 8 rows of the
 * plain format at src, src_stride bytes apart, into the group at dst (the
 * 8 rows' bytes); unpack is the inverse. dst and src must not overlap.
 * Cost: a byte copy of the group.
 */
void pio_x8_pack(pio_dtype x8, void *dst, const void *src, size_t src_stride, int64_t k);
void pio_x8_unpack(pio_dtype x8, void *dst, size_t dst_stride, const void *src, int64_t k);

/* Row i's (0..7) block from one block column of an X8 group (the 8 rows'
 * block b, 8·block bytes at `column`), back in the plain format at blk. */
void pio_x8_gather_block(pio_dtype x8, const void *column, int i, void *blk);

/* y[0..k) = the values of row i (0..7) of the group at `group` (layout x8). */
void pio_x8_dequantize_row(pio_dtype x8, const void *group, int i, float *y, int64_t k);

/* Dispatch on the weight type; for F32/F16/BF16 weights `a` is f32. */
float pio_vec_dot_ref(pio_dtype w_dtype, int64_t n, const void *w, const void *a);

#endif
