/*
 * status.c - thread-local error messages and dtype tables.
 */
#include "pio/pio.h"

#include <stdarg.h>
#include <stdio.h>

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

size_t pio_dtype_size(pio_dtype dt)
{
    static const size_t sizes[PIO_DTYPE_COUNT] = {
        [PIO_DTYPE_F32] = 4, [PIO_DTYPE_F16] = 2, [PIO_DTYPE_BF16] = 2,
        [PIO_DTYPE_I32] = 4, [PIO_DTYPE_I64] = 8, [PIO_DTYPE_U8] = 1,
    };
    return (unsigned)dt < PIO_DTYPE_COUNT ? sizes[dt] : 0;
}

const char *pio_dtype_name(pio_dtype dt)
{
    static const char *const names[PIO_DTYPE_COUNT] = {
        [PIO_DTYPE_F32] = "F32", [PIO_DTYPE_F16] = "F16", [PIO_DTYPE_BF16] = "BF16",
        [PIO_DTYPE_I32] = "I32", [PIO_DTYPE_I64] = "I64", [PIO_DTYPE_U8] = "U8",
    };
    return (unsigned)dt < PIO_DTYPE_COUNT ? names[dt] : "?";
}
