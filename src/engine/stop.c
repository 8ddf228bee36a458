/*
 * stop.c - stop strings over a streamed text (see include/pio/sampler.h).
 *
 * The matcher keeps `held`: the shortest tail of the stream not yet
 * emitted. Invariant between calls: held is a proper prefix of some stop
 * string (so shorter than the longest one) and contains no stop string.
 * A push appends the chunk to held, looks for the earliest complete stop
 * string, and otherwise emits all but the longest suffix that is still a
 * prefix of a stop string.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "pio/sampler.h"

#include <stdlib.h>
#include <string.h>

struct pio_stop_matcher {
    int n_stops;
    char **stops;         /* [n_stops] owned copies */
    size_t *stop_len;     /* [n_stops] */
    char *held;           /* not yet emitted, see the invariant above */
    size_t held_len, held_cap;
    char *out;            /* what the last call emitted */
    size_t out_cap;
    int hit;              /* index of the stop string hit, -1 while running */
};

/* See sampler.h. */
pio_status pio_stop_matcher_new(const char *const *stops, int n_stops, pio_stop_matcher **out)
{
    pio_stop_matcher *m;

    *out = NULL;
    if (n_stops < 0 || (n_stops > 0 && !stops))
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "stop strings: bad list (%d)", n_stops);
    for (int i = 0; i < n_stops; i++)
        if (!stops[i] || !stops[i][0])
            return pio_error(PIO_STATUS_ERR_INVALID_ARG, "stop strings: entry %d is empty", i);

    m = calloc(1, sizeof *m);
    if (!m)
        goto nomem;
    m->hit = -1;
    if (n_stops > 0) {
        m->stops = calloc((size_t)n_stops, sizeof *m->stops);
        m->stop_len = calloc((size_t)n_stops, sizeof *m->stop_len);
        if (!m->stops || !m->stop_len)
            goto free_matcher;
        m->n_stops = n_stops;
        for (int i = 0; i < n_stops; i++) {
            m->stop_len[i] = strlen(stops[i]);
            if (!(m->stops[i] = strdup(stops[i])))
                goto free_matcher;
        }
    }
    *out = m;
    return PIO_STATUS_OK;

free_matcher:
    pio_stop_matcher_free(m);
nomem:
    return pio_error(PIO_STATUS_ERR_NOMEM, "stop strings: out of memory");
}

/* See sampler.h. */
pio_status pio_stop_matcher_new_list(const char *const *stops, pio_stop_matcher **out)
{
    int n = 0;
    while (stops && stops[n])
        n++;
    return pio_stop_matcher_new(stops, n, out);
}

void pio_stop_matcher_free(pio_stop_matcher *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_stops; i++)
        free(m->stops[i]);
    free(m->stops);
    free(m->stop_len);
    free(m->held);
    free(m->out);
    free(m);
}

void pio_stop_matcher_reset(pio_stop_matcher *m)
{
    m->held_len = 0;
    m->hit = -1;
}

/* Grow *buf to at least `need` bytes; false on allocation failure. */
static bool grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    char *b = realloc(*buf, c);
    if (!b)
        return false;
    *buf = b;
    *cap = c;
    return true;
}

/* Emit held[0, n) through out, and keep held[n, held_len) for later. */
static pio_status emit_head(pio_stop_matcher *m, size_t n, pio_stop_result *out)
{
    if (!grow(&m->out, &m->out_cap, n + 1))
        return pio_error(PIO_STATUS_ERR_NOMEM, "stop strings: out of memory");
    if (n)                                  /* held is NULL before the first text */
        memcpy(m->out, m->held, n);
    m->out[n] = '\0';
    if (m->held_len > n)
        memmove(m->held, m->held + n, m->held_len - n);
    m->held_len -= n;
    out->text = m->out;
    out->len = n;
    out->stop_index = m->hit;
    return PIO_STATUS_OK;
}

/* Length of the longest proper suffix of held that is a prefix of some stop
 * string. O(longest stop * total stop length). */
static size_t held_partial(const pio_stop_matcher *m)
{
    size_t best = 0;
    for (int k = 0; k < m->n_stops; k++) {
        size_t max = m->stop_len[k] - 1;
        if (max > m->held_len)
            max = m->held_len;
        for (size_t h = max; h > best; h--) {
            if (memcmp(m->held + m->held_len - h, m->stops[k], h) == 0) {
                best = h;
                break;
            }
        }
    }
    return best;
}

/* See sampler.h. */
pio_status pio_stop_matcher_push(pio_stop_matcher *m, const char *text, size_t len,
                                 pio_stop_result *out)
{
    size_t old_len = m->held_len, best_pos = 0, best_end = (size_t)-1;
    int best = -1;

    if (m->hit >= 0)
        return emit_head(m, 0, out);
    if (!grow(&m->held, &m->held_cap, m->held_len + len))
        return pio_error(PIO_STATUS_ERR_NOMEM, "stop strings: out of memory");
    if (len)
        memcpy(m->held + m->held_len, text, len);
    m->held_len += len;

    /* The stop string that completes first in the stream (smallest end;
     * then the longer one; then the lower index), so the result does not
     * depend on how the text was chunked. held had no complete stop
     * before, so a match ends in the new bytes: look from stop_len - 1
     * bytes before them. */
    for (int k = 0; k < m->n_stops; k++) {
        size_t sl = m->stop_len[k];
        size_t from = old_len + 1 >= sl ? old_len + 1 - sl : 0;
        if (m->held_len < sl)
            continue;
        const char *hitp = memmem(m->held + from, m->held_len - from, m->stops[k], sl);
        if (!hitp)
            continue;
        size_t pos = (size_t)(hitp - m->held);
        if (pos + sl < best_end || (pos + sl == best_end && pos < best_pos)) {
            best_end = pos + sl;
            best_pos = pos;
            best = k;
        }
    }
    if (best >= 0) {
        m->hit = best;
        pio_status st = emit_head(m, best_pos, out);
        m->held_len = 0;
        return st;
    }
    return emit_head(m, m->held_len - held_partial(m), out);
}

/* See sampler.h. */
pio_status pio_stop_matcher_flush(pio_stop_matcher *m, pio_stop_result *out)
{
    return emit_head(m, m->hit >= 0 ? 0 : m->held_len, out);
}
