/*
 * tok_utf8.c - UTF-8 checking, lossy conversion and the GPT-2 byte alphabet.
 */
#include "tok_int.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* True for bytes that stand for themselves in the GPT-2 byte alphabet. */
static bool tok_byte_printable(unsigned b)
{
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

/*
 * GPT-2's bytes_to_unicode(): printable bytes map to the same code point; the
 * 68 others (0x00-0x20, 0x7F-0xA0, 0xAD), in byte order, to U+0100 upwards.
 */
uint32_t tok_byte_to_cp(uint8_t b)
{
    if (tok_byte_printable(b)) return b;
    if (b <= 0x20) return 256u + b;
    if (b <= 0xA0) return 256u + 33u + (b - 0x7Fu);
    return 256u + 67u; /* 0xAD */
}

/* Inverse of tok_byte_to_cp; -1 when cp is not in the alphabet. */
int tok_cp_to_byte(uint32_t cp)
{
    if (cp < 256) return tok_byte_printable(cp) ? (int)cp : -1;
    if (cp > 256 + 67) return -1;
    uint32_t n = cp - 256;
    if (n <= 32) return (int)n;
    if (n <= 66) return (int)(0x7F + (n - 33));
    return 0xAD;
}

/*
 * Length of the well-formed prefix of the sequence starting at s[0] (at
 * most n bytes), following Unicode Table 3-7. *complete is set when that
 * prefix is a whole character. A result of 0 means s[0] cannot start one.
 */
static size_t tok_utf8_prefix(const uint8_t *s, size_t n, bool *complete)
{
    uint8_t b0 = s[0];
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF; /* range of the second byte */
    *complete = false;
    if (b0 < 0x80) { *complete = true; return 1; }
    if (b0 < 0xC2) return 0;
    if (b0 < 0xE0) need = 2;
    else if (b0 < 0xF0) {
        need = 3;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 < 0xF5) {
        need = 4;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    size_t i = 1;
    for (; i < need && i < n; i++) {
        uint8_t c = s[i];
        uint8_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (c < l || c > h) return i;
    }
    *complete = i == need;
    return i;
}

size_t tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    bool complete;
    if (n == 0) return 0;
    size_t k = tok_utf8_prefix(s, n, &complete);
    if (!complete) return 0;
    switch (k) {
    case 1: *cp = s[0]; break;
    case 2: *cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F); break;
    case 3: *cp = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F); break;
    default:
        *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
              ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    }
    return k;
}

size_t tok_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Offset of the first ill-formed sequence; ASCII runs are skipped 8 bytes at a time. */
int64_t pio_utf8_check(const char *str, size_t len)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < len) {
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ull)) { i += 8; continue; }
        }
        if (s[i] < 0x80) { i++; continue; }
        bool complete;
        size_t k = tok_utf8_prefix(s + i, len - i, &complete);
        if (!complete) return (int64_t)i;
        i += k;
    }
    return -1;
}

pio_status tok_buf_reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return PIO_STATUS_OK;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    char *p = realloc(*buf, nc);
    if (!p) return pio_error(PIO_STATUS_ERR_NOMEM, "tokenizer: out of memory (%zu bytes)", nc);
    *buf = p;
    *cap = nc;
    return PIO_STATUS_OK;
}

/* Appends at most 3 bytes per input byte (U+FFFD for a lone bad byte). */
pio_status tok_utf8_lossy(const uint8_t *s, size_t n, bool final, size_t *used,
                          char **buf, size_t *len, size_t *cap)
{
    pio_status st = tok_buf_reserve(buf, cap, *len + 3 * n + 1);
    if (st) return st;
    char *o = *buf + *len;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { *o++ = (char)s[i++]; continue; }
        bool complete;
        size_t k = tok_utf8_prefix(s + i, n - i, &complete);
        if (complete) {
            memcpy(o, s + i, k);
            o += k;
            i += k;
            continue;
        }
        if (k > 0 && i + k == n && !final) break; /* may complete with later bytes */
        memcpy(o, "\xEF\xBF\xBD", 3);
        o += 3;
        i += k ? k : 1;
    }
    *len = (size_t)(o - *buf);
    (*buf)[*len] = '\0';
    *used = i;
    return PIO_STATUS_OK;
}

/* Unicode White_Space (what Rust's \s and char::is_whitespace match). */
bool tok_is_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Rust regex \w: Alphabetic, marks, decimal digits, connector punctuation, joiners. */
bool tok_is_word(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
               cp == '_';
    if (cp == 0x200C || cp == 0x200D) return true;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
        return true;
    default:
        return false;
    }
}
