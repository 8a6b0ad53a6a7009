/* stop.c — the stop-string matcher (gemfa.h, "Stop strings").
 *
 * One KMP automaton per stop string: state q_s is the length of the longest
 * tail of the text seen so far that is a proper prefix of stop s.  The held
 * tail is then exactly max_s q_s bytes, and a hit is the first byte at which
 * some q_s reaches the full length.  Work per byte is amortized O(number of
 * stop strings), so a hostile long piece costs linear time.
 *
 * The matcher keeps held text at the front of `buf`; a feed appends the
 * piece, scans the new bytes, and hands out buf[0..cut).  The held tail is
 * moved to the front at the start of the next call (the pointer handed out
 * stays valid until then). */
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"
#include "text/text_buf.h"
#include "text/utf8.h"

typedef struct stop_pattern {
    unsigned char *bytes;
    size_t len;
    size_t *fail; /* fail[i]: longest proper border of bytes[0..i] (KMP) */
    size_t state;
} stop_pattern;

struct gemfa_stop_matcher {
    stop_pattern *stops;
    size_t n;
    gf_bytes buf;     /* held tail at [start, start + held) */
    size_t start;     /* where the held tail begins (after the last release) */
    size_t held;
    int hit;
};

static void free_patterns(stop_pattern *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        gf_free(p[i].bytes);
        gf_free(p[i].fail);
    }
    gf_free(p);
}

GEMFA_API void gemfa_stop_matcher_free(gemfa_stop_matcher *m)
{
    if (!m)
        return;
    free_patterns(m->stops, m->n);
    gf_bytes_free(&m->buf);
    gf_free(m);
}

static void build_fail(const unsigned char *p, size_t len, size_t *fail)
{
    fail[0] = 0;
    for (size_t i = 1, k = 0; i < len; i++) {
        while (k > 0 && p[i] != p[k])
            k = fail[k - 1];
        if (p[i] == p[k])
            k++;
        fail[i] = k;
    }
}

GEMFA_API gemfa_status gemfa_stop_matcher_new(const char *const *stops, const size_t *lens,
                                              size_t n, gemfa_stop_matcher **out)
{
    if (!out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_stop_matcher_new: out is NULL");
    if (n > 0 && !stops)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_stop_matcher_new: stops is NULL with n = %zu", n);
    for (size_t i = 0; i < n; i++) {
        if (!stops[i])
            return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                            "gemfa_stop_matcher_new: stop string %zu is NULL", i);
        size_t len = !lens || lens[i] == GEMFA_NUL_TERMINATED ? strlen(stops[i]) : lens[i];
        if (len == 0)
            return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                            "gemfa_stop_matcher_new: stop string %zu is empty", i);
        size_t bad = 0;
        if (!gf_utf8_valid(stops[i], len, &bad))
            return gf_error(GEMFA_ERR_INVALID_UTF8,
                            "gemfa_stop_matcher_new: stop string %zu is not valid UTF-8 "
                            "(byte %zu)", i, bad);
    }
    gemfa_stop_matcher *m = gf_calloc(1, sizeof *m);
    stop_pattern *p = n ? gf_calloc(n, sizeof *p) : NULL;
    if (!m || (n && !p))
        goto oom;
    m->stops = p;
    for (size_t i = 0; i < n; i++) {
        size_t len = !lens || lens[i] == GEMFA_NUL_TERMINATED ? strlen(stops[i]) : lens[i];
        p[i].bytes = gf_malloc(len);
        p[i].fail = gf_malloc(gf_mul_size(len, sizeof *p[i].fail));
        m->n = i + 1; /* so that the cleanup frees this one too */
        if (!p[i].bytes || !p[i].fail)
            goto oom;
        memcpy(p[i].bytes, stops[i], len);
        p[i].len = len;
        build_fail(p[i].bytes, len, p[i].fail);
    }
    *out = m;
    return GEMFA_OK;
oom:
    if (m)
        gemfa_stop_matcher_free(m);
    else
        gf_free(p);
    return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_stop_matcher_new: out of memory");
}

GEMFA_API void gemfa_stop_matcher_reset(gemfa_stop_matcher *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        m->stops[i].state = 0;
    m->buf.len = 0;
    m->start = 0;
    m->held = 0;
    m->hit = 0;
}

GEMFA_API size_t gemfa_stop_matcher_held(const gemfa_stop_matcher *m)
{
    return m ? m->held : 0;
}

/* Moves the held tail to the front of buf (the previous output is done). */
static void compact(gemfa_stop_matcher *m)
{
    if (m->start > 0 && m->held > 0)
        memmove(m->buf.data, m->buf.data + m->start, m->held);
    m->buf.len = m->held;
    m->start = 0;
}

/* Advances stop s over byte c; returns 1 when it is complete. */
static int step(stop_pattern *s, unsigned char c)
{
    size_t q = s->state;
    while (q > 0 && s->bytes[q] != c)
        q = s->fail[q - 1];
    if (s->bytes[q] == c)
        q++;
    s->state = q;
    return q == s->len;
}

GEMFA_API gemfa_status gemfa_stop_matcher_feed(gemfa_stop_matcher *m, const char *text,
                                               size_t len, const char **out, size_t *out_len,
                                               int *hit)
{
    if (!m || !out || !out_len || !hit)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_stop_matcher_feed: %s is NULL",
                        !m ? "matcher" : !out ? "out" : !out_len ? "out_len" : "hit");
    if (len == GEMFA_NUL_TERMINATED)
        len = text ? strlen(text) : 0;
    if (!text && len > 0)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_stop_matcher_feed: text is NULL with len %zu", len);
    if (m->hit) {
        *out = "";
        *out_len = 0;
        *hit = 1;
        return GEMFA_OK;
    }
    /* the previous output is over; the only allocation comes next, before
     * any state changes, so a failure leaves the matcher as it was */
    compact(m);
    if (gf_bytes_reserve(&m->buf, len) != 0)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_stop_matcher_feed: out of memory");
    if (len)
        memcpy(m->buf.data + m->buf.len, text, len);
    m->buf.len += len;
    const unsigned char *b = (const unsigned char *)m->buf.data;
    for (size_t i = m->held; i < m->buf.len; i++) {
        size_t best = 0; /* longest stop string complete at byte i */
        for (size_t s = 0; s < m->n; s++)
            if (step(&m->stops[s], b[i]) && m->stops[s].len > best)
                best = m->stops[s].len;
        if (best) {
            m->hit = 1;
            m->held = 0;
            m->start = 0;
            m->buf.len = 0; /* the next call releases nothing and keeps no text */
            *out = m->buf.data;
            *out_len = i + 1 - best;
            *hit = 1;
            return GEMFA_OK;
        }
    }
    size_t keep = 0;
    for (size_t s = 0; s < m->n; s++)
        keep = m->stops[s].state > keep ? m->stops[s].state : keep;
    m->held = keep;
    m->start = m->buf.len - keep;
    *out = m->buf.data ? m->buf.data : "";
    *out_len = m->start;
    *hit = 0;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_stop_matcher_flush(gemfa_stop_matcher *m, const char **out,
                                                size_t *out_len)
{
    if (!m || !out || !out_len)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_stop_matcher_flush: %s is NULL",
                        !m ? "matcher" : !out ? "out" : "out_len");
    if (m->hit || m->held == 0) {
        gemfa_stop_matcher_reset(m);
        *out = "";
        *out_len = 0;
        return GEMFA_OK;
    }
    /* hand out the held tail in place; it stays until the next call */
    *out = m->buf.data + m->start;
    *out_len = m->held;
    for (size_t i = 0; i < m->n; i++)
        m->stops[i].state = 0;
    m->start += m->held;
    m->held = 0;
    m->hit = 0;
    return GEMFA_OK;
}
