/* fuzz_stop.c — the stop-string matcher against a naive search.  Input: a
 * header byte (bits 0-1: 1-4 stop strings, bits 2-7: the seed of the piece
 * sizes), then each stop string as a length byte (1 + b % 8) and its bytes
 * (any bytes: invalid UTF-8 must be INVALID_UTF8), then the text (any bytes,
 * fed in pieces of 0-15 bytes).  Properties after every feed: released +
 * held = the input so far, held = the longest tail that is a proper prefix
 * of a stop string; at the end: the cut = the first stop string by a naive
 * search (earliest end, then longest), or all the text after a flush. */
#include <string.h>

#include "fuzz_common.h"

#define MAX_STOPS 4

typedef struct stops {
    const uint8_t *s[MAX_STOPS];
    size_t len[MAX_STOPS], n;
} stops;

static size_t naive_cut(const uint8_t *t, size_t n, const stops *st)
{
    for (size_t e = 1; e <= n; e++) {
        size_t best = 0;
        for (size_t i = 0; i < st->n; i++)
            if (st->len[i] <= e && memcmp(t + e - st->len[i], st->s[i], st->len[i]) == 0 &&
                st->len[i] > best)
                best = st->len[i];
        if (best)
            return e - best;
    }
    return SIZE_MAX;
}

static size_t naive_held(const uint8_t *t, size_t n, const stops *st)
{
    size_t best = 0;
    for (size_t i = 0; i < st->n; i++)
        for (size_t l = st->len[i] - 1; l > best; l--)
            if (l <= n && memcmp(t + n - l, st->s[i], l) == 0) {
                best = l;
                break;
            }
    return best;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    stops st = {.n = 1 + (data[0] & 3u)};
    uint32_t seed = data[0] >> 2;
    size_t at = 1;
    int valid = 1;
    for (size_t i = 0; i < st.n; i++) {
        if (at >= size)
            return 0;
        st.len[i] = 1 + data[at++] % 8;
        if (at + st.len[i] > size)
            return 0;
        st.s[i] = data + at;
        at += st.len[i];
        valid &= fuzz_utf8_valid((const char *)st.s[i], st.len[i]);
    }
    const char *ptrs[MAX_STOPS];
    for (size_t i = 0; i < st.n; i++)
        ptrs[i] = (const char *)st.s[i];
    gemfa_stop_matcher *m = NULL;
    gemfa_status s = gemfa_stop_matcher_new(ptrs, st.len, st.n, &m);
    fuzz_check_status(s, "gemfa_stop_matcher_new");
    if (!valid) {
        FUZZ_CHECK(s == GEMFA_ERR_INVALID_UTF8 && !m, "invalid stop string gave %s",
                   gemfa_status_name(s));
        return 0;
    }
    FUZZ_CHECK(s == GEMFA_OK, "valid stop strings gave %s", gemfa_status_name(s));

    const uint8_t *text = data + at;
    size_t n = size - at, pos = 0, released = 0;
    size_t cut = naive_cut(text, n, &st);
    uint8_t *got = malloc(n ? n : 1);
    int hit = 0;
    while (pos < n && !hit) {
        seed = seed * 1103515245u + 12345u;
        size_t piece = (seed >> 16) % 16;
        piece = piece > n - pos ? n - pos : piece;
        const char *out;
        size_t len;
        s = gemfa_stop_matcher_feed(m, (const char *)text + pos, piece, &out, &len, &hit);
        FUZZ_CHECK(s == GEMFA_OK, "feed gave %s", gemfa_status_name(s));
        FUZZ_CHECK(released + len <= n, "released more than fed");
        memcpy(got + released, out, len);
        released += len;
        pos += piece;
        if (!hit) {
            size_t held = gemfa_stop_matcher_held(m);
            FUZZ_CHECK(released + held == pos, "released %zu + held %zu != fed %zu", released,
                       held, pos);
            FUZZ_CHECK(held == naive_held(text, pos, &st), "held %zu bytes, naive %zu", held,
                       naive_held(text, pos, &st));
        }
    }
    if (hit) {
        FUZZ_CHECK(released == cut, "cut at %zu, naive %zu", released, cut);
    } else {
        FUZZ_CHECK(cut == SIZE_MAX, "missed the stop string at %zu", cut);
        const char *out;
        size_t len;
        s = gemfa_stop_matcher_flush(m, &out, &len);
        FUZZ_CHECK(s == GEMFA_OK && released + len == n, "flush");
        memcpy(got + released, out, len);
        released += len;
    }
    FUZZ_CHECK(memcmp(got, text, released) == 0, "released text differs from the input");
    free(got);
    gemfa_stop_matcher_free(m);
    return 0;
}
