/*
 * jinja_mem.c - the arena, byte buffers and error sink of the Jinja engine.
 */
#include "chat/jinja_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jn_chunk {
    jn_chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

#define JN_CHUNK_MIN ((size_t)64 << 10)

_Noreturn void jn_fail(jn_err *err, pio_status st, int line, int col, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(err->msg, sizeof err->msg, "%s:%d:%d: %s", err->name ? err->name : "template", line, col, msg);
    else
        snprintf(err->msg, sizeof err->msg, "%s: %s", err->name ? err->name : "template", msg);
    err->st = st;
    longjmp(err->jb, 1);
}

void jn_arena_init(jn_arena *a, size_t cap, jn_err *err)
{
    a->head = NULL;
    a->total = 0;
    a->cap = cap;
    a->err = err;
}

void jn_arena_free(jn_arena *a)
{
    jn_chunk *c = a->head;
    while (c) {
        jn_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

/* Bump allocation from the head chunk; a new chunk (at least 64 KiB, or the
 * request) when it is full. Large requests get their own chunk behind the
 * head so the head's free space is not wasted. */
void *jn_alloc(jn_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    jn_chunk *c = a->head;
    if (c && c->size - c->used >= n) {
        void *p = c->data + c->used;
        c->used += n;
        return p;
    }
    size_t size = n > JN_CHUNK_MIN ? n : JN_CHUNK_MIN;
    if (n > a->cap || a->total + size + sizeof(jn_chunk) > a->cap)
        jn_fail(a->err, PIO_STATUS_ERR_LIMIT, 0, 0, "memory limit of %zu bytes exceeded", a->cap);
    jn_chunk *nc = calloc(1, sizeof(jn_chunk) + size);
    if (!nc)
        jn_fail(a->err, PIO_STATUS_ERR_NOMEM, 0, 0, "out of memory");
    a->total += size + sizeof(jn_chunk);
    nc->size = size;
    nc->used = n;
    if (c && n >= JN_CHUNK_MIN && c->size - c->used > 1024) {
        nc->next = c->next;     /* keep the roomier head */
        c->next = nc;
    } else {
        nc->next = c;
        a->head = nc;
    }
    return nc->data;
}

char *jn_strndup(jn_arena *a, const char *s, size_t n)
{
    char *p = jn_alloc(a, n + 1);
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void jn_buf_init(jn_buf *b, jn_arena *ar, size_t max)
{
    b->p = NULL;
    b->n = b->cap = 0;
    b->max = max;
    b->ar = ar;
}

void jn_buf_put(jn_buf *b, const char *s, size_t n)
{
    if (n == 0) return;
    if (n > b->max || b->n > b->max - n)
        jn_fail(b->ar->err, PIO_STATUS_ERR_LIMIT, 0, 0, "output limit of %zu bytes exceeded", b->max);
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = jn_alloc(b->ar, cap);
        if (b->n) memcpy(p, b->p, b->n);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void jn_buf_puts(jn_buf *b, const char *s) { jn_buf_put(b, s, strlen(s)); }

void jn_buf_putc(jn_buf *b, char c) { jn_buf_put(b, &c, 1); }
