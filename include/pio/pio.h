/*
 * pio.h - Inference-PIO public basics: status codes, error messages, dtypes.
 *
 * Every library function that can fail returns a pio_status. On failure it
 * also leaves a human-readable message (naming the file, tensor, field or
 * request at fault) in a thread-local buffer read by pio_last_error().
 * Only the CLI prints messages and exits.
 */
#ifndef PIO_PIO_H
#define PIO_PIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PIO_VERSION_STRING "0.1.0"

typedef enum pio_status {
    PIO_STATUS_OK = 0,
    PIO_STATUS_ERR_IO,          /* open/read/mmap failed, file missing */
    PIO_STATUS_ERR_FORMAT,      /* malformed file: bad header, bad JSON, bad offsets */
    PIO_STATUS_ERR_SHAPE,       /* tensor shape or dtype not what the model needs */
    PIO_STATUS_ERR_MISSING,     /* a required tensor, field or symbol is absent */
    PIO_STATUS_ERR_UNSUPPORTED, /* valid input we do not handle (architecture, dtype) */
    PIO_STATUS_ERR_INVALID_ARG, /* bad argument from the caller (ids out of range...) */
    PIO_STATUS_ERR_NOMEM,       /* allocation failed */
    PIO_STATUS_ERR_LIMIT,       /* a request exceeds a limit (context length, size) */
    PIO_STATUS_ERR_ABI,         /* plugin ABI version mismatch */
    PIO_STATUS_ERR_UTF8,        /* invalid UTF-8 in text input */
} pio_status;

/* Set the thread-local error message (printf-style) and return `st`. */
pio_status pio_error(pio_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The message of the last failure on this thread ("" if none). */
const char *pio_last_error(void);

/* Clear the thread-local message. */
void pio_clear_error(void);

/* Short name of a status code, e.g. "format error". */
const char *pio_status_name(pio_status st);

/*
 * Element types of tensors. Values are ours (not safetensors' or GGUF's).
 * The block-quantized types store rows as blocks bit-identical to GGML's
 * (src/kernels/quant.h): Q8_0 and Q4_0 blocks of 32 values, Q4_K and Q6_K
 * super-blocks of 256, Q8_K (activations only) of 256.
 */
typedef enum pio_dtype {
    PIO_DTYPE_F32 = 0,
    PIO_DTYPE_F16,
    PIO_DTYPE_BF16,
    PIO_DTYPE_I32,
    PIO_DTYPE_I64,
    PIO_DTYPE_U8,
    PIO_DTYPE_Q8_0,
    PIO_DTYPE_Q4_0,
    PIO_DTYPE_Q4_K,
    PIO_DTYPE_Q6_K,
    PIO_DTYPE_Q8_K,
    PIO_DTYPE_Q4_0_X8,   /* internal: Q4_0 rows repacked 8-interleaved at load for
                            the CPU kernels (src/kernels/quant.h); never in files */
    PIO_DTYPE_Q8_0_X8,   /* internal: the same for Q8_0 rows */
    PIO_DTYPE_Q4_K_X8,   /* internal: the same for Q4_K rows */
    PIO_DTYPE_Q6_K_X8,   /* internal: the same for Q6_K rows */
    PIO_DTYPE_COUNT
} pio_dtype;

/* Bytes per element of a plain type; 0 for block-quantized types. */
size_t pio_dtype_size(pio_dtype dt);

/* Elements per block (1 for plain types, 32 or 256 for quantized ones). */
int pio_dtype_block_elems(pio_dtype dt);

/* Bytes per block (the element size for plain types). */
size_t pio_dtype_block_bytes(pio_dtype dt);

/* Bytes of a row of n elements; n must be a multiple of the block size
 * (0 is returned otherwise). */
size_t pio_dtype_row_bytes(pio_dtype dt, int64_t n);

/* True for the block-quantized types. */
bool pio_dtype_is_quantized(pio_dtype dt);

/* "F32", "F16", "BF16", ... (safetensors spelling), "Q8_0", "Q4_K", ... */
const char *pio_dtype_name(pio_dtype dt);

/* Parse a name as printed by pio_dtype_name, case-insensitive; -1 if unknown. */
int pio_dtype_from_name(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* PIO_PIO_H */
