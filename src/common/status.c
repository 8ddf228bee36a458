/*
 * status.c - thread-local error messages and dtype tables.
 */
#include "pio/pio.h"

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

static _Thread_local char pio_errbuf[2048];

pio_status pio_error(pio_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pio_errbuf, sizeof pio_errbuf, fmt, ap);
    va_end(ap);
    return st;
}

const char *pio_last_error(void) { return pio_errbuf; }

void pio_clear_error(void) { pio_errbuf[0] = '\0'; }

const char *pio_status_name(pio_status st)
{
    static const char *const names[] = {
        [PIO_STATUS_OK] = "ok",
        [PIO_STATUS_ERR_IO] = "I/O error",
        [PIO_STATUS_ERR_FORMAT] = "format error",
        [PIO_STATUS_ERR_SHAPE] = "shape error",
        [PIO_STATUS_ERR_MISSING] = "missing",
        [PIO_STATUS_ERR_UNSUPPORTED] = "unsupported",
        [PIO_STATUS_ERR_INVALID_ARG] = "invalid argument",
        [PIO_STATUS_ERR_NOMEM] = "out of memory",
        [PIO_STATUS_ERR_LIMIT] = "limit exceeded",
        [PIO_STATUS_ERR_ABI] = "ABI mismatch",
        [PIO_STATUS_ERR_UTF8] = "invalid UTF-8",
    };
    if ((unsigned)st < sizeof names / sizeof names[0] && names[st])
        return names[st];
    return "unknown status";
}

/* Block geometry of each dtype; quantized sizes are GGML's (ggml-common.h). */
static const struct dtype_desc {
    const char *name;
    int block_elems;
    size_t block_bytes;
} dtype_table[PIO_DTYPE_COUNT] = {
    [PIO_DTYPE_F32] = { "F32", 1, 4 },
    [PIO_DTYPE_F16] = { "F16", 1, 2 },
    [PIO_DTYPE_BF16] = { "BF16", 1, 2 },
    [PIO_DTYPE_I32] = { "I32", 1, 4 },
    [PIO_DTYPE_I64] = { "I64", 1, 8 },
    [PIO_DTYPE_U8] = { "U8", 1, 1 },
    [PIO_DTYPE_Q8_0] = { "Q8_0", 32, 2 + 32 },            /* f16 d, int8 qs[32] */
    [PIO_DTYPE_Q4_0] = { "Q4_0", 32, 2 + 16 },            /* f16 d, nibbles qs[16] */
    [PIO_DTYPE_Q4_K] = { "Q4_K", 256, 2 + 2 + 12 + 128 }, /* f16 d, dmin, scales[12], qs[128] */
    [PIO_DTYPE_Q6_K] = { "Q6_K", 256, 128 + 64 + 16 + 2 },/* ql, qh, scales, f16 d */
    [PIO_DTYPE_Q8_K] = { "Q8_K", 256, 4 + 256 + 32 },     /* f32 d, qs[256], int16 bsums[16] */
    [PIO_DTYPE_Q4_0_X8] = { "Q4_0_X8", 32, 2 + 16 },      /* Q4_0 bytes, 8 rows interleaved */
    [PIO_DTYPE_Q8_0_X8] = { "Q8_0_X8", 32, 2 + 32 },      /* Q8_0 bytes, 8 rows interleaved */
    [PIO_DTYPE_Q4_K_X8] = { "Q4_K_X8", 256, 144 },        /* Q4_K bytes, 8 rows interleaved */
    [PIO_DTYPE_Q6_K_X8] = { "Q6_K_X8", 256, 210 },        /* Q6_K bytes, 8 rows interleaved */
};

size_t pio_dtype_size(pio_dtype dt)
{
    if ((unsigned)dt >= PIO_DTYPE_COUNT || dtype_table[dt].block_elems != 1)
        return 0;
    return dtype_table[dt].block_bytes;
}

int pio_dtype_block_elems(pio_dtype dt)
{
    return (unsigned)dt < PIO_DTYPE_COUNT ? dtype_table[dt].block_elems : 0;
}

size_t pio_dtype_block_bytes(pio_dtype dt)
{
    return (unsigned)dt < PIO_DTYPE_COUNT ? dtype_table[dt].block_bytes : 0;
}

size_t pio_dtype_row_bytes(pio_dtype dt, int64_t n)
{
    int be = pio_dtype_block_elems(dt);
    if (be <= 0 || n < 0 || n % be != 0)
        return 0;
    return (size_t)(n / be) * dtype_table[dt].block_bytes;
}

bool pio_dtype_is_quantized(pio_dtype dt)
{
    return pio_dtype_block_elems(dt) > 1;
}

const char *pio_dtype_name(pio_dtype dt)
{
    return (unsigned)dt < PIO_DTYPE_COUNT ? dtype_table[dt].name : "?";
}

int pio_dtype_from_name(const char *name)
{
    int i;
    for (i = 0; i < PIO_DTYPE_COUNT; i++)
        if (!strcasecmp(name, dtype_table[i].name))
            return i;
    return -1;
}
