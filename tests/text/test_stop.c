/* test_stop.c — the stop-string matcher (gemfa_stop_matcher_*): fixed
 * cases, a property test against a naive search over random texts and
 * random splits, and generation-like streams of the tiny tokenizer's ids
 * (byte-fallback tokens, Persian) through the streaming detokenizer. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "gemfa.h"
#include "sampling/rng.h"
#include "text/utf8.h"
#include "text_helper.h"

static gemfa_stop_matcher *make(const char *const *stops, size_t n)
{
    gemfa_stop_matcher *m = NULL;
    cr_assert_eq(gemfa_stop_matcher_new(stops, NULL, n, &m), GEMFA_OK, "%s",
                 gemfa_last_error());
    return m;
}

/* Collected output of a sequence of feeds. */
typedef struct sink {
    char buf[4096];
    size_t len;
    int hit;
} sink;

static void feed(gemfa_stop_matcher *m, sink *k, const char *text, size_t len)
{
    const char *out = NULL;
    size_t n = 99;
    int hit = -1;
    cr_assert_eq(gemfa_stop_matcher_feed(m, text, len, &out, &n, &hit), GEMFA_OK, "%s",
                 gemfa_last_error());
    cr_assert_not_null(out);
    cr_assert(hit == 0 || hit == 1);
    cr_assert(k->len + n < sizeof k->buf);
    memcpy(k->buf + k->len, out, n);
    k->len += n;
    k->buf[k->len] = 0;
    if (k->hit)
        cr_assert(hit == 1 && n == 0, "after a hit nothing more is released");
    k->hit = hit;
}

static void flush(gemfa_stop_matcher *m, sink *k)
{
    const char *out = NULL;
    size_t n = 99;
    cr_assert_eq(gemfa_stop_matcher_flush(m, &out, &n), GEMFA_OK);
    cr_assert_not_null(out);
    memcpy(k->buf + k->len, out, n);
    k->len += n;
    k->buf[k->len] = 0;
}

/* ---- fixed cases ------------------------------------------------------- */

Test(stop, holds_exactly_a_possible_prefix)
{
    const char *stops[] = {"</answer>"};
    gemfa_stop_matcher *m = make(stops, 1);
    sink k = {0};
    feed(m, &k, "The answer is 42<", GEMFA_NUL_TERMINATED);
    cr_expect_str_eq(k.buf, "The answer is 42");
    cr_expect_eq(gemfa_stop_matcher_held(m), 1);
    feed(m, &k, "/ans", GEMFA_NUL_TERMINATED);
    cr_expect_eq(gemfa_stop_matcher_held(m), 5);
    feed(m, &k, "x", 1); /* "</ansx" cannot become the stop string: all of it is released */
    cr_expect_str_eq(k.buf, "The answer is 42</ansx");
    cr_expect_eq(gemfa_stop_matcher_held(m), 0);
    feed(m, &k, " </ans", GEMFA_NUL_TERMINATED);
    feed(m, &k, "wer> tail", GEMFA_NUL_TERMINATED);
    cr_expect(k.hit);
    cr_expect_str_eq(k.buf, "The answer is 42</ansx ");
    cr_expect_eq(gemfa_stop_matcher_held(m), 0);
    feed(m, &k, "more", 4); /* sticky */
    flush(m, &k);           /* nothing after a hit; resets */
    cr_expect_str_eq(k.buf, "The answer is 42</ansx ");
    sink k2 = {0};
    feed(m, &k2, "again</answer", GEMFA_NUL_TERMINATED);
    cr_expect_not(k2.hit);
    flush(m, &k2);
    cr_expect_str_eq(k2.buf, "again</answer");
    gemfa_stop_matcher_free(m);
}

Test(stop, self_overlapping_stop_keeps_the_right_tail)
{
    /* "aab" after "aaa": KMP falls back to "aa", not to nothing */
    const char *stops[] = {"aab"};
    gemfa_stop_matcher *m = make(stops, 1);
    sink k = {0};
    feed(m, &k, "xaaa", 4);
    cr_expect_str_eq(k.buf, "xa");
    cr_expect_eq(gemfa_stop_matcher_held(m), 2);
    feed(m, &k, "b", 1);
    cr_expect(k.hit);
    cr_expect_str_eq(k.buf, "xa");
    gemfa_stop_matcher_free(m);
}

Test(stop, earliest_end_then_longest)
{
    /* "b" completes before "abc" could: the run stops at once */
    const char *s1[] = {"abc", "b"};
    gemfa_stop_matcher *m = make(s1, 2);
    sink k = {0};
    feed(m, &k, "xab", 3);
    cr_expect(k.hit);
    cr_expect_str_eq(k.buf, "xa");
    gemfa_stop_matcher_free(m);
    /* both end at the same byte: the longer one (earlier start) wins */
    const char *s2[] = {"b", "ab"};
    m = make(s2, 2);
    k = (sink){0};
    feed(m, &k, "x", 1);
    feed(m, &k, "a", 1);
    cr_expect_eq(gemfa_stop_matcher_held(m), 1);
    feed(m, &k, "b", 1);
    cr_expect(k.hit);
    cr_expect_str_eq(k.buf, "x");
    gemfa_stop_matcher_free(m);
    /* a stop string that is a prefix of another: the shorter one completes first */
    const char *s3[] = {"\n\nUser:", "\n\n"};
    m = make(s3, 2);
    k = (sink){0};
    feed(m, &k, "hi\n", 3);
    cr_expect_str_eq(k.buf, "hi");
    feed(m, &k, "\nUser:", GEMFA_NUL_TERMINATED);
    cr_expect(k.hit);
    cr_expect_str_eq(k.buf, "hi");
    gemfa_stop_matcher_free(m);
}

Test(stop, no_stops_and_lengths)
{
    gemfa_stop_matcher *m = make(NULL, 0);
    sink k = {0};
    feed(m, &k, "anything", 8);
    feed(m, &k, NULL, 0);
    cr_expect_str_eq(k.buf, "anything");
    cr_expect_not(k.hit);
    gemfa_stop_matcher_free(m);
    /* explicit lengths: a stop string holding U+0000, mixed with a NUL-terminated one */
    const char *stops[] = {"a\0b", "zz"};
    size_t lens[] = {3, GEMFA_NUL_TERMINATED};
    cr_assert_eq(gemfa_stop_matcher_new(stops, lens, 2, &m), GEMFA_OK);
    k = (sink){0};
    feed(m, &k, "ab a", 4);
    feed(m, &k, "\0", 1);
    cr_expect_eq(gemfa_stop_matcher_held(m), 2);
    feed(m, &k, "bc", 2);
    cr_expect(k.hit);
    cr_expect_eq(k.len, 3);
    cr_expect_eq(memcmp(k.buf, "ab ", 3), 0);
    gemfa_stop_matcher_free(m);
}

Test(stop, reset_forgets_everything)
{
    const char *stops[] = {"END"};
    gemfa_stop_matcher *m = make(stops, 1);
    sink k = {0};
    feed(m, &k, "xxEN", 4);
    gemfa_stop_matcher_reset(m);
    cr_expect_eq(gemfa_stop_matcher_held(m), 0);
    k = (sink){0};
    feed(m, &k, "D", 1); /* "EN" was forgotten */
    cr_expect_not(k.hit);
    cr_expect_str_eq(k.buf, "D");
    gemfa_stop_matcher_free(m);
}

Test(stop, hostile_arguments)
{
    gemfa_stop_matcher *m = NULL, *keep = (gemfa_stop_matcher *)0x1;
    const char *ok[] = {"a"}, *empty[] = {"x", ""}, *nul[] = {"x", NULL};
    const char *bad_utf8[] = {"ok", "\xC3("}, *surrogate[] = {"\xED\xA0\x80"};
    cr_expect_eq(gemfa_stop_matcher_new(ok, NULL, 1, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_stop_matcher_new(NULL, NULL, 1, &m), GEMFA_ERR_INVALID_ARGUMENT);
    m = keep;
    cr_expect_eq(gemfa_stop_matcher_new(empty, NULL, 2, &m), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(gemfa_last_error(), "stop string 1 is empty"), "%s", gemfa_last_error());
    cr_expect_eq(gemfa_stop_matcher_new(nul, NULL, 2, &m), GEMFA_ERR_INVALID_ARGUMENT);
    size_t zero[] = {0};
    cr_expect_eq(gemfa_stop_matcher_new(ok, zero, 1, &m), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_stop_matcher_new(bad_utf8, NULL, 2, &m), GEMFA_ERR_INVALID_UTF8);
    cr_expect(strstr(gemfa_last_error(), "stop string 1"), "%s", gemfa_last_error());
    cr_expect_eq(gemfa_stop_matcher_new(surrogate, NULL, 1, &m), GEMFA_ERR_INVALID_UTF8);
    cr_expect_eq(m, keep, "a failed call leaves *out untouched");

    m = make(ok, 1);
    const char *out;
    size_t n;
    int hit;
    cr_expect_eq(gemfa_stop_matcher_feed(NULL, "x", 1, &out, &n, &hit),
                 GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_stop_matcher_feed(m, NULL, 1, &out, &n, &hit),
                 GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_stop_matcher_feed(m, "x", 1, NULL, &n, &hit), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_stop_matcher_feed(m, "x", 1, &out, NULL, &hit),
                 GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_stop_matcher_feed(m, "x", 1, &out, &n, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_stop_matcher_flush(NULL, &out, &n), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_stop_matcher_flush(m, NULL, &n), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_stop_matcher_flush(m, &out, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_stop_matcher_held(NULL), 0);
    gemfa_stop_matcher_reset(NULL);
    gemfa_stop_matcher_free(NULL);
    /* NUL_TERMINATED with NULL text is an empty piece */
    cr_expect_eq(gemfa_stop_matcher_feed(m, NULL, GEMFA_NUL_TERMINATED, &out, &n, &hit),
                 GEMFA_OK);
    cr_expect_eq(n, 0);
    gemfa_stop_matcher_free(m);
}

Test(stop, out_of_memory_changes_nothing)
{
    const char *stops[] = {"needle", "ne"};
    /* creation: every allocation site fails in turn, nothing leaks (ASan) */
    for (long fail = 0; fail < 8; fail++) {
        gemfa_stop_matcher *m = NULL;
        gf_alloc_fail_after(fail);
        gemfa_status st = gemfa_stop_matcher_new(stops, NULL, 2, &m);
        gf_alloc_fail_after(-1);
        if (st == GEMFA_OK) {
            gemfa_stop_matcher_free(m);
            break;
        }
        cr_expect_eq(st, GEMFA_ERR_OUT_OF_MEMORY);
        cr_expect_null(m);
    }
    gemfa_stop_matcher *m = make(stops, 2);
    sink k = {0};
    feed(m, &k, "hay n", 5);
    char big[1000];
    memset(big, 'x', sizeof big);
    memcpy(big + 500, "needle", 6);
    const char *out;
    size_t n;
    int hit;
    gf_alloc_fail_after(0);
    cr_expect_eq(gemfa_stop_matcher_feed(m, big, sizeof big, &out, &n, &hit),
                 GEMFA_ERR_OUT_OF_MEMORY);
    gf_alloc_fail_after(-1);
    cr_expect_eq(gemfa_stop_matcher_held(m), 1);
    feed(m, &k, "ee", 2); /* the held "n" is still there: "ne" completes */
    cr_expect(k.hit);
    cr_expect_str_eq(k.buf, "hay ");
    gemfa_stop_matcher_free(m);
}

/* ---- property test against a naive search ------------------------------ */

/* The first stop: smallest end, then longest.  Returns the cut (length of
 * the text before the stop string) or SIZE_MAX when none. */
static size_t naive_cut(const char *t, size_t n, char stops[][16], const size_t *lens,
                        size_t n_stops)
{
    for (size_t e = 1; e <= n; e++) {
        size_t best = 0;
        for (size_t s = 0; s < n_stops; s++)
            if (lens[s] <= e && memcmp(t + e - lens[s], stops[s], lens[s]) == 0 &&
                lens[s] > best)
                best = lens[s];
        if (best)
            return e - best;
    }
    return SIZE_MAX;
}

/* Longest tail of t[0..n) that is a proper prefix of some stop string. */
static size_t naive_held(const char *t, size_t n, char stops[][16], const size_t *lens,
                         size_t n_stops)
{
    size_t best = 0;
    for (size_t s = 0; s < n_stops; s++)
        for (size_t l = lens[s] - 1; l > best; l--)
            if (l <= n && memcmp(t + n - l, stops[s], l) == 0) {
                best = l;
                break;
            }
    return best;
}

/* Pieces: single letters that repeat a lot (so stop strings overlap and
 * occur often) and Persian letters (two bytes each). */
static const char *const ALPHABET[] = {"a", "b", "a", "b", "c", "\n", "س", "ل", "ا", "م"};
#define N_ALPHA (sizeof ALPHABET / sizeof *ALPHABET)

static size_t random_text(gf_rng *r, char *out, size_t max_chars)
{
    size_t n = 0, chars = gf_rng_next(r) % max_chars;
    for (size_t i = 0; i < chars; i++) {
        const char *c = ALPHABET[gf_rng_next(r) % N_ALPHA];
        memcpy(out + n, c, strlen(c));
        n += strlen(c);
    }
    return n;
}

Test(stop, property_random_texts_and_splits)
{
    gf_rng r;
    gf_rng_seed(&r, 20261203);
    size_t hits = 0, held_seen = 0;
    for (int trial = 0; trial < 20000; trial++) {
        char text[512];
        size_t n = random_text(&r, text, 120);
        char stops[4][16];
        size_t lens[4];
        const char *ptrs[4];
        size_t n_stops = 1 + gf_rng_next(&r) % 4;
        for (size_t s = 0; s < n_stops; s++) {
            lens[s] = random_text(&r, stops[s], 5);
            if (lens[s] == 0)
                lens[s] = (size_t)sprintf(stops[s], "a");
            ptrs[s] = stops[s];
        }
        gemfa_stop_matcher *m = NULL;
        cr_assert_eq(gemfa_stop_matcher_new(ptrs, lens, n_stops, &m), GEMFA_OK);
        size_t cut = naive_cut(text, n, stops, lens, n_stops);
        sink k = {0};
        size_t pos = 0;
        /* random byte splits, empty pieces and splits inside characters included */
        while (pos < n && !k.hit) {
            size_t piece = gf_rng_next(&r) % 8;
            piece = piece > n - pos ? n - pos : piece;
            feed(m, &k, text + pos, piece);
            pos += piece;
            if (!k.hit) {
                size_t held = gemfa_stop_matcher_held(m);
                cr_assert_eq(held, naive_held(text, pos, stops, lens, n_stops),
                             "trial %d: held %zu bytes after %zu", trial, held, pos);
                cr_assert_eq(k.len + held, pos, "released + held == input");
                cr_assert_eq(memcmp(k.buf, text, k.len), 0);
                held_seen += held > 0;
            }
        }
        if (k.hit) {
            hits++;
            cr_assert_eq(k.len, cut, "trial %d: cut at %zu, naive %zu", trial, k.len, cut);
            /* the stop string completes within the bytes fed so far */
            cr_assert(pos >= cut);
        } else {
            cr_assert_eq(cut, SIZE_MAX, "trial %d: missed a stop", trial);
            flush(m, &k);
            cr_assert_eq(k.len, n);
        }
        cr_assert_eq(memcmp(k.buf, text, k.len), 0);
        gemfa_stop_matcher_free(m);
    }
    cr_expect_gt(hits, 5000, "the test must exercise hits (%zu)", hits);
    cr_expect_gt(held_seen, 5000);
}

/* ---- generation-like streams of real token ids ------------------------- */

/* Tokenizes `text` with the tiny tokenizer, feeds the ids one at a time
 * through a detokenizer stream into a matcher, and checks the released
 * text against the naive cut.  Returns how many stop-string occurrences
 * straddled a token boundary. */
static int stream_case(gemfa_model *model, const char *text, const char *const *stops,
                       size_t n_stops)
{
    int32_t ids[1024];
    size_t n_ids;
    cr_assert_eq(gemfa_tokenize(model, text, GEMFA_NUL_TERMINATED, 0, ids, 1024, &n_ids),
                 GEMFA_OK, "%s", gemfa_last_error());
    /* where each token's text ends, to see whether the stop spans tokens */
    size_t ends[1024], at = 0;
    gemfa_detok_stream *ds = NULL;
    cr_assert_eq(gemfa_detok_stream_new(model, 0, &ds), GEMFA_OK);
    gemfa_stop_matcher *m = NULL;
    cr_assert_eq(gemfa_stop_matcher_new(stops, NULL, n_stops, &m), GEMFA_OK);
    sink k = {0};
    size_t i = 0;
    for (; i < n_ids && !k.hit; i++) {
        const char *chunk;
        size_t len;
        cr_assert_eq(gemfa_detok_stream_feed(ds, ids[i], &chunk, &len), GEMFA_OK);
        cr_assert_eq(memcmp(chunk, text + at, len), 0);
        at += len;
        ends[i] = at;
        feed(m, &k, chunk, len);
        size_t bad;
        cr_assert(gf_utf8_valid(k.buf, k.len, &bad), "what is shown is valid UTF-8");
    }
    char sstops[8][16];
    size_t lens[8];
    for (size_t s = 0; s < n_stops; s++) {
        lens[s] = strlen(stops[s]);
        memcpy(sstops[s], stops[s], lens[s]);
    }
    size_t cut = naive_cut(text, strlen(text), sstops, lens, n_stops);
    cr_assert(k.hit, "no stop found in \"%s\"", text);
    cr_assert_eq(k.len, cut, "\"%s\": released %zu bytes, naive cut %zu", text, k.len, cut);
    /* the stop ended inside token i-1's text; did it start in an earlier token? */
    size_t stop_end = 0;
    for (size_t s = 0; s < n_stops; s++)
        if (cut + lens[s] <= strlen(text) && memcmp(text + cut, stops[s], lens[s]) == 0 &&
            cut + lens[s] > stop_end)
            stop_end = cut + lens[s];
    int spans = 0;
    for (size_t t = 0; t < i; t++)
        spans |= ends[t] > cut && ends[t] < stop_end;
    gemfa_stop_matcher_free(m);
    gemfa_detok_stream_free(ds);
    return spans;
}

Test(stop, tiny_tokenizer_streams)
{
    char dir[4096];
    gemfa_model *model = tt_load(tt_tokenizer_dir(0, dir, sizeof dir));
    const char *s_answer[] = {"</answer>"};
    const char *s_persian[] = {"دنیا", "خداحافظ"};
    const char *s_nl[] = {"\n\n", "\n\nQ:"};
    const char *s_overlap[] = {"دنیا!", "یا"};
    const char *s_emoji[] = {"! 😀", "😀😀"};
    int spanning = 0;
    spanning += stream_case(model, "The answer is <b>42</b></answer> and more", s_answer, 1);
    spanning += stream_case(model, "Hello world. سلام دنیا", s_persian, 2);
    spanning += stream_case(model, "پاسخ: خداحافظ و سلام دنیا", s_persian, 2);
    spanning += stream_case(model, "line one\n\nQ: next", s_nl, 2);
    spanning += stream_case(model, "سلام دنیا! bye", s_overlap, 2);
    spanning += stream_case(model, "سلام دنیا! 😀 ژ", s_emoji, 2);
    spanning += stream_case(model, "a😀b😀😀c", s_emoji, 2);
    /* in the tiny vocabulary "دنیا" is three tokens and the emoji four
     * byte-fallback tokens, so these stop strings span token boundaries */
    int32_t ids[64];
    size_t n_ids;
    cr_assert_eq(gemfa_tokenize(model, " دنیا", GEMFA_NUL_TERMINATED, 0, ids, 64, &n_ids),
                 GEMFA_OK);
    cr_expect_gt(n_ids, 1, "the Persian stop string spans tokens");
    int32_t b0;
    cr_assert_eq(gemfa_token_id(model, "<0xF0>", GEMFA_NUL_TERMINATED, &b0), GEMFA_OK);
    cr_assert_eq(gemfa_tokenize(model, "😀", GEMFA_NUL_TERMINATED, 0, ids, 64, &n_ids),
                 GEMFA_OK);
    cr_expect(n_ids == 4 && ids[0] == b0, "the emoji is byte-fallback tokens");
    cr_expect_geq(spanning, 5, "stop strings spanning token boundaries (%d)", spanning);
    gemfa_model_free(model);
}

/* ---- gemfa_token_bytes ------------------------------------------------- */

Test(token_bytes, concatenate_to_the_text)
{
    char dir[4096];
    gemfa_model *model = tt_load(tt_tokenizer_dir(0, dir, sizeof dir));
    const char *texts[] = {"Hello world. سلام دنیا! 😀 ژ", "a\n\n<b>x</b> \t end", "ꙮ𝄞 ok"};
    for (size_t t = 0; t < sizeof texts / sizeof *texts; t++) {
        int32_t ids[256];
        size_t n_ids, len;
        cr_assert_eq(gemfa_tokenize(model, texts[t], GEMFA_NUL_TERMINATED, 0, ids, 256, &n_ids),
                     GEMFA_OK);
        char joined[1024], piece[64];
        size_t at = 0;
        for (size_t i = 0; i < n_ids; i++) {
            cr_assert_eq(gemfa_token_bytes(model, ids[i], piece, sizeof piece, &len), GEMFA_OK);
            memcpy(joined + at, piece, len);
            at += len;
        }
        cr_expect(at == strlen(texts[t]) && memcmp(joined, texts[t], at) == 0,
                  "token bytes rebuild \"%s\"", texts[t]);
    }
    /* every id: a "<0xNN>" piece is its byte, anything else its decoded text */
    int64_t limit;
    cr_assert_eq(gemfa_model_get(model, GEMFA_PROP_TOKENIZER_SIZE, &limit), GEMFA_OK);
    size_t n_bytes = 0;
    for (int32_t id = 0; id < (int32_t)limit; id++) {
        char piece[256], got[256], want[256];
        size_t plen, glen, wlen;
        unsigned byte;
        cr_assert_eq(gemfa_token_piece(model, id, piece, sizeof piece, &plen), GEMFA_OK);
        cr_assert_eq(gemfa_token_bytes(model, id, got, sizeof got, &glen), GEMFA_OK);
        char tail;
        if (plen == 6 && sscanf(piece, "<0x%2X%c", &byte, &tail) == 2 && tail == '>') {
            cr_expect(glen == 1 && (unsigned char)got[0] == byte, "id %d", id);
            n_bytes++;
            continue;
        }
        cr_assert_eq(gemfa_detokenize(model, &id, 1, 0, want, sizeof want, &wlen), GEMFA_OK);
        cr_expect(glen == wlen && memcmp(got, want, wlen) == 0, "id %d (%s)", id, piece);
    }
    cr_expect_eq(n_bytes, 256);
    /* hostile arguments and the size query */
    size_t len = 0;
    char small[2];
    int32_t b0;
    cr_assert_eq(gemfa_token_id(model, "▁▁▁▁▁", GEMFA_NUL_TERMINATED, &b0), GEMFA_OK);
    cr_assert_geq(b0, 0);
    cr_expect_eq(gemfa_token_bytes(model, b0, NULL, 0, &len), GEMFA_ERR_BUFFER_TOO_SMALL);
    cr_expect_eq(len, 5);
    cr_expect_eq(gemfa_token_bytes(model, b0, small, sizeof small, &len),
                 GEMFA_ERR_BUFFER_TOO_SMALL);
    cr_expect_eq(gemfa_token_bytes(model, -1, small, sizeof small, &len),
                 GEMFA_ERR_INVALID_TOKEN);
    cr_expect_eq(gemfa_token_bytes(model, 1 << 30, small, sizeof small, &len),
                 GEMFA_ERR_INVALID_TOKEN);
    cr_expect_eq(gemfa_token_bytes(model, 1, small, sizeof small, NULL),
                 GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_token_bytes(model, 1, NULL, 4, &len), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_token_bytes(NULL, 1, small, 2, &len), GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_model_free(model);
}
