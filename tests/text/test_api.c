/* test_api.c — the public tokenizer calls beyond the golden data: argument
 * checks and the buffer protocol, invalid UTF-8, both special-token modes,
 * BOS handling, ids without a piece, the streaming detokenizer's handling of
 * partial and invalid bytes, very long words, and concurrent use. */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "text_helper.h"

static gemfa_model *tiny(void)
{
    char dir[4096];
    return tt_load(tt_tokenizer_dir(0, dir, sizeof dir));
}

static gemfa_model *real(void)
{
    char dir[4096];
    return tt_load(tt_tokenizer_dir(1, dir, sizeof dir));
}

static int32_t id_of(const gemfa_model *m, const char *piece)
{
    int32_t id = -7;
    cr_assert_eq(gemfa_token_id(m, piece, GEMFA_NUL_TERMINATED, &id), GEMFA_OK);
    return id;
}

/* Tokenizes into a fixed buffer; returns the count. */
static size_t tok(const gemfa_model *m, const char *s, size_t len, unsigned flags, int32_t *ids,
                  size_t cap)
{
    size_t n = 0;
    gemfa_status st = gemfa_tokenize(m, s, len, flags, ids, cap, &n);
    cr_assert_eq(st, GEMFA_OK, "%s", gemfa_last_error());
    return n;
}

/* Decodes into a static buffer. */
static const char *detok(const gemfa_model *m, const int32_t *ids, size_t n, unsigned flags,
                         size_t *len)
{
    static char buf[1 << 16];
    gemfa_status st = gemfa_detokenize(m, ids, n, flags, buf, sizeof buf, len);
    cr_assert_eq(st, GEMFA_OK, "%s", gemfa_last_error());
    return buf;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

Test(api, tokenize_arguments)
{
    gemfa_model *m = tiny();
    int32_t ids[64];
    size_t n = 99;
    cr_expect_eq(gemfa_tokenize(NULL, "a", 1, 0, ids, 64, &n), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_tokenize(m, "a", 1, 0, ids, 64, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_tokenize(m, "a", 1, 0, NULL, 64, &n), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_tokenize(m, "a", 1, 0x100, ids, 64, &n), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(gemfa_last_error(), "flags") != NULL);
    cr_expect_eq(gemfa_tokenize(m, NULL, 3, 0, ids, 64, &n), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_tokenize(m, NULL, GEMFA_NUL_TERMINATED, 0, ids, 64, &n),
                 GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(n, 99, "failed calls leave *n_ids alone");
    /* empty text: nothing, or just BOS */
    cr_expect_eq(gemfa_tokenize(m, NULL, 0, 0, NULL, 0, &n), GEMFA_OK);
    cr_expect_eq(n, 0);
    cr_expect_eq(gemfa_tokenize(m, "", 0, GEMFA_TOKENIZE_DEFAULT, ids, 64, &n), GEMFA_OK);
    cr_expect_eq(n, 1);
    cr_expect_eq(ids[0], id_of(m, "<bos>"));
    /* size query, then an exact fit; the short buffer is not written */
    const char *text = "سلام دنیا، سلام!";
    cr_expect_eq(gemfa_tokenize(m, text, GEMFA_NUL_TERMINATED, GEMFA_TOKENIZE_DEFAULT, NULL, 0,
                                &n), GEMFA_ERR_BUFFER_TOO_SMALL);
    size_t need = n;
    cr_assert_gt(need, 3);
    for (int i = 0; i < 64; i++)
        ids[i] = -5;
    cr_expect_eq(gemfa_tokenize(m, text, GEMFA_NUL_TERMINATED, GEMFA_TOKENIZE_DEFAULT, ids,
                                need - 1, &n), GEMFA_ERR_BUFFER_TOO_SMALL);
    cr_expect_eq(n, need);
    cr_expect_eq(ids[0], -5);
    cr_expect_eq(gemfa_tokenize(m, text, GEMFA_NUL_TERMINATED, GEMFA_TOKENIZE_DEFAULT, ids, need,
                                &n), GEMFA_OK);
    cr_expect_eq(n, need);
    gemfa_model_free(m);
}

Test(api, embedded_nul_round_trips)
{
    gemfa_model *m = tiny();
    int32_t ids[32];
    size_t n = tok(m, "a\0b\0", 4, 0, ids, 32), len;
    cr_expect_gt(n, 2);
    const char *s = detok(m, ids, n, 0, &len);
    cr_expect_eq(len, 4);
    cr_expect(memcmp(s, "a\0b\0", 5) == 0, "the text and its NUL terminator");
    /* NUL_TERMINATED stops at the first NUL */
    cr_expect_eq(tok(m, "a\0b", GEMFA_NUL_TERMINATED, 0, ids, 32), 1);
    gemfa_model_free(m);
}

static unsigned char *hex_bytes(const char *hex, size_t *n)
{
    unsigned char *out = malloc(strlen(hex) / 2 + 1);
    *n = 0;
    for (const char *p = hex; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        unsigned v;
        cr_assert_eq(sscanf(p, "%2x", &v), 1);
        out[(*n)++] = (unsigned char)v;
        p += 2;
    }
    return out;
}

/* invalid_utf8.jsonl: tokenize refuses with INVALID_UTF8, names the byte
 * offset of the first bad sequence, and writes nothing. */
Test(api, invalid_utf8_fixtures)
{
    gemfa_model *m = tiny();
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/invalid_utf8.jsonl", tt_data());
    size_t n_recs;
    gf_json **recs = tt_jsonl(path, &n_recs);
    cr_assert_eq(n_recs, 10);
    /* where the first invalid sequence starts, by record */
    static const struct { const char *id; size_t offset; } where[] = {
        {"invalid-01", 0}, {"invalid-02", 0}, {"invalid-03", 2}, {"invalid-04", 0},
        {"invalid-05", 0}, {"invalid-06", 0}, {"invalid-07", 0}, {"invalid-08", 0},
        {"invalid-09", 2}, {"invalid-10", 0},
    };
    for (size_t r = 0; r < n_recs; r++) {
        const char *id = tt_str(recs[r], "id")->str;
        size_t len, n = 12345;
        unsigned char *bytes = hex_bytes(tt_str(recs[r], "hex")->str, &len);
        int32_t ids[16] = {-9};
        for (unsigned flags = 0; flags < 4; flags++) {
            cr_expect_eq(gemfa_tokenize(m, (const char *)bytes, len, flags, ids, 16, &n),
                         GEMFA_ERR_INVALID_UTF8, "%s", id);
            cr_expect_eq(n, 12345, "%s: *n_ids written", id);
            cr_expect_eq(ids[0], -9, "%s: ids written", id);
        }
        char want[64];
        snprintf(want, sizeof want, "at byte %zu", where[r].offset);
        cr_expect_str_eq(where[r].id, id);
        cr_expect(strstr(gemfa_last_error(), want) != NULL, "%s: '%s' lacks '%s'", id,
                  gemfa_last_error(), want);
        /* the same bytes inside valid text, with a valid prefix */
        char buf[64];
        memcpy(buf, "abc ", 4);
        memcpy(buf + 4, bytes, len);
        cr_expect_eq(gemfa_tokenize(m, buf, len + 4, 0, ids, 16, &n), GEMFA_ERR_INVALID_UTF8);
        snprintf(want, sizeof want, "at byte %zu", where[r].offset + 4);
        cr_expect(strstr(gemfa_last_error(), want) != NULL, "%s", gemfa_last_error());
        free(bytes);
    }
    tt_jsonl_free(recs, n_recs);
    gemfa_model_free(m);
}

static void special_modes(gemfa_model *m)
{
    int32_t ids[256];
    int32_t bos = id_of(m, "<bos>"), sot = id_of(m, "<start_of_turn>"),
            eot = id_of(m, "<end_of_turn>"), nl2 = id_of(m, "\n\n");
    const char *text = "<start_of_turn>user\n\nسلام<end_of_turn>";
    size_t n = tok(m, text, GEMFA_NUL_TERMINATED, GEMFA_TOKENIZE_PARSE_SPECIAL, ids, 256), len;
    cr_expect_eq(ids[0], sot);
    cr_expect_eq(ids[n - 1], eot);
    /* parse-special off: the markers are plain text, non-special added
     * tokens such as "\n\n" still match */
    n = tok(m, text, GEMFA_NUL_TERMINATED, 0, ids, 256);
    int has_nl2 = 0;
    for (size_t i = 0; i < n; i++) {
        cr_expect_neq(ids[i], sot);
        cr_expect_neq(ids[i], eot);
        has_nl2 |= ids[i] == nl2;
    }
    cr_expect(has_nl2, "\\n\\n is a non-special added token");
    cr_expect_str_eq(detok(m, ids, n, GEMFA_DETOKENIZE_SKIP_SPECIAL, &len), text);
    /* special-02: text starting with <bos>, BOS on: two BOS ids, as HF */
    n = tok(m, "<bos>متن", GEMFA_NUL_TERMINATED, GEMFA_TOKENIZE_DEFAULT, ids, 256);
    cr_expect(n >= 3 && ids[0] == bos && ids[1] == bos);
    n = tok(m, "<bos>متن", GEMFA_NUL_TERMINATED, GEMFA_TOKENIZE_ADD_BOS, ids, 256);
    cr_expect(n >= 3 && ids[0] == bos && ids[1] != bos);
    /* ZWNJ is kept, never normalized away */
    n = tok(m, "می‌شود", GEMFA_NUL_TERMINATED, 0, ids, 256);
    cr_expect_str_eq(detok(m, ids, n, 0, &len), "می‌شود");
    int32_t with_zwnj[64], without[64];
    size_t a = tok(m, "می‌شود", GEMFA_NUL_TERMINATED, 0, with_zwnj, 64);
    size_t b = tok(m, "میشود", GEMFA_NUL_TERMINATED, 0, without, 64);
    cr_expect(a != b || memcmp(with_zwnj, without, a * 4) != 0, "ZWNJ changes the tokens");
}

Test(api, special_modes_tiny) { gemfa_model *m = tiny(); special_modes(m); gemfa_model_free(m); }
Test(api, special_modes_real, .timeout = 60)
{
    gemfa_model *m = real();
    special_modes(m);
    gemfa_model_free(m);
}

Test(api, detokenize_arguments_and_pieces)
{
    gemfa_model *m = tiny();
    int64_t vocab = 0;
    cr_assert_eq(gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &vocab), GEMFA_OK);
    int32_t bad[] = {1, (int32_t)vocab}, neg[] = {-1};
    char buf[64];
    size_t len = 77;
    cr_expect_eq(gemfa_detokenize(m, bad, 2, 0, buf, 64, &len), GEMFA_ERR_INVALID_TOKEN);
    cr_expect(strstr(gemfa_last_error(), "position 1") != NULL, "%s", gemfa_last_error());
    cr_expect_eq(gemfa_detokenize(m, neg, 1, 0, buf, 64, &len), GEMFA_ERR_INVALID_TOKEN);
    cr_expect_eq(gemfa_detokenize(m, NULL, 1, 0, buf, 64, &len), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_detokenize(m, bad, 1, 2, buf, 64, &len), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_detokenize(m, bad, 1, 0, NULL, 64, &len), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_detokenize(m, bad, 1, 0, buf, 64, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_detokenize(NULL, bad, 1, 0, buf, 64, &len), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(len, 77);
    /* empty input still needs room for the NUL */
    cr_expect_eq(gemfa_detokenize(m, NULL, 0, 0, NULL, 0, &len), GEMFA_ERR_BUFFER_TOO_SMALL);
    cr_expect_eq(len, 0);
    cr_expect_eq(gemfa_detokenize(m, NULL, 0, 0, buf, 1, &len), GEMFA_OK);
    cr_expect_str_eq(buf, "");

    int32_t e2 = id_of(m, "<0xE2>");
    cr_expect_eq(gemfa_token_piece(m, e2, buf, 64, &len), GEMFA_OK);
    cr_expect_str_eq(buf, "<0xE2>");
    cr_expect_eq(gemfa_token_piece(m, 2, buf, 3, &len), GEMFA_ERR_BUFFER_TOO_SMALL);
    cr_expect_eq(len, 5);
    cr_expect_eq(gemfa_token_piece(m, 2, buf, 6, &len), GEMFA_OK);
    cr_expect_str_eq(buf, "<bos>");
    cr_expect_eq(gemfa_token_piece(m, -3, buf, 6, &len), GEMFA_ERR_INVALID_TOKEN);
    int32_t id = 5;
    cr_expect_eq(gemfa_token_id(m, "no such piece", GEMFA_NUL_TERMINATED, &id), GEMFA_OK);
    cr_expect_eq(id, -1);
    cr_expect_eq(gemfa_token_id(m, NULL, 0, &id), GEMFA_OK);
    cr_expect_eq(id, -1);
    cr_expect_eq(gemfa_token_id(m, NULL, 1, &id), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_token_id(m, "<bos>", 5, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_model_free(m);
}

/* A vocabulary (config.json) larger than the tokenizer: the extra ids have
 * no piece, decode to nothing and never break a byte sequence. */
Test(api, ids_without_pieces)
{
    char dir[] = "/tmp/gemfa-vocab-XXXXXX", path[4096], *data;
    cr_assert_not_null(mkdtemp(dir));
    size_t len;
    snprintf(path, sizeof path, "%s/tiny-gemma3n/config.json", tt_data());
    cr_assert_eq(gf_read_file(path, 1 << 20, &data, &len), GEMFA_OK);
    char *at = strstr(data, "\"vocab_size\": 1024");
    cr_assert_not_null(at);
    memcpy(at, "\"vocab_size\": 1100", 18);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
    free(data);
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/tokenizer/tiny/tokenizer.json", tt_data());
    snprintf(dst, sizeof dst, "%s/tokenizer.json", dir);
    cr_assert_eq(gf_read_file(src, 1 << 24, &data, &len), GEMFA_OK);
    f = fopen(dst, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
    free(data);

    gemfa_model *m = tt_load(dir);
    int64_t vocab, pieces;
    cr_assert_eq(gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &vocab), GEMFA_OK);
    cr_assert_eq(gemfa_model_get(m, GEMFA_PROP_TOKENIZER_SIZE, &pieces), GEMFA_OK);
    cr_assert_eq(vocab, 1100);
    cr_assert_eq(pieces, 1024);
    int32_t d8 = id_of(m, "<0xD8>"), b3 = id_of(m, "<0xB3>");
    int32_t ids[] = {d8, 1024, 1099, b3};
    const char *s = detok(m, ids, 4, 0, &len);
    cr_expect_str_eq(s, "س");
    char piece[8];
    cr_expect_eq(gemfa_token_piece(m, 1050, piece, sizeof piece, &len), GEMFA_OK);
    cr_expect_eq(len, 0);
    int32_t over[] = {1100};
    cr_expect_eq(gemfa_detokenize(m, over, 1, 0, piece, 8, &len), GEMFA_ERR_INVALID_TOKEN);
    gemfa_detok_stream *st = NULL;
    cr_assert_eq(gemfa_detok_stream_new(m, 0, &st), GEMFA_OK);
    const char *chunk;
    size_t n;
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(gemfa_detok_stream_feed(st, ids[i], &chunk, &n), GEMFA_OK);
        cr_expect_eq(n, 0);
    }
    cr_expect_eq(gemfa_detok_stream_feed(st, b3, &chunk, &n), GEMFA_OK);
    cr_expect_str_eq(chunk, "س");
    cr_expect_eq(gemfa_detok_stream_feed(st, 1100, &chunk, &n), GEMFA_ERR_INVALID_TOKEN);
    gemfa_detok_stream_free(st);
    gemfa_model_free(m);
    unlink(path);
    unlink(dst);
    rmdir(dir);
}

Test(api, no_tokenizer)
{
    char dir[] = "/tmp/gemfa-notok-XXXXXX", path[4096], src[4096], *data;
    size_t len;
    cr_assert_not_null(mkdtemp(dir));
    snprintf(src, sizeof src, "%s/tiny-gemma3n/config.json", tt_data());
    cr_assert_eq(gf_read_file(src, 1 << 20, &data, &len), GEMFA_OK);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
    free(data);
    gemfa_model *m = tt_load(dir);
    int32_t ids[4] = {1};
    size_t n;
    char buf[8];
    gemfa_detok_stream *s = NULL;
    gemfa_message msg = {"user", "x", 1};
    cr_expect_eq(gemfa_tokenize(m, "a", 1, 0, ids, 4, &n), GEMFA_ERR_NO_TOKENIZER);
    cr_expect_eq(gemfa_detokenize(m, ids, 1, 0, buf, 8, &n), GEMFA_ERR_NO_TOKENIZER);
    cr_expect_eq(gemfa_token_piece(m, 1, buf, 8, &n), GEMFA_ERR_NO_TOKENIZER);
    cr_expect_eq(gemfa_token_id(m, "a", 1, ids), GEMFA_ERR_NO_TOKENIZER);
    cr_expect_eq(gemfa_detok_stream_new(m, 0, &s), GEMFA_ERR_NO_TOKENIZER);
    cr_expect_eq(gemfa_apply_chat_template(m, &msg, 1, 1, buf, 8, &n), GEMFA_ERR_NO_TOKENIZER);
    cr_expect_eq(gemfa_chat_tokenize(m, &msg, 1, 1, 0, ids, 4, &n), GEMFA_ERR_NO_TOKENIZER);
    gemfa_model_free(m);
    unlink(path);
    rmdir(dir);
}

/* Feeds ids to a fresh stream; returns the chunks joined by '|' (+ flush). */
static const char *stream(const gemfa_model *m, unsigned flags, const int32_t *ids, size_t n)
{
    static char out[1024];
    size_t k = 0;
    gemfa_detok_stream *s = NULL;
    cr_assert_eq(gemfa_detok_stream_new(m, flags, &s), GEMFA_OK);
    const char *chunk;
    size_t len;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(gemfa_detok_stream_feed(s, ids[i], &chunk, &len), GEMFA_OK);
        k += (size_t)snprintf(out + k, sizeof out - k, "%.*s|", (int)len, chunk);
    }
    cr_assert_eq(gemfa_detok_stream_flush(s, &chunk, &len), GEMFA_OK);
    snprintf(out + k, sizeof out - k, "%.*s", (int)len, chunk);
    gemfa_detok_stream_free(s);
    return out;
}

#define R "\xEF\xBF\xBD"

Test(api, stream_partial_and_invalid_bytes)
{
    gemfa_model *m = tiny();
    int32_t B[256];
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        B[b] = id_of(m, name);
    }
    int32_t a = id_of(m, "a"), bos = id_of(m, "<bos>");
    int32_t euro[] = {B[0xE2], B[0x82], B[0xAC]};
    cr_expect_str_eq(stream(m, 0, euro, 3), "||€|");
    int32_t cut[] = {B[0xE2], B[0x82], a};
    cr_expect_str_eq(stream(m, 0, cut, 3), "||" R R "a|");
    int32_t stray[] = {B[0xE2], B[0x82], B[0xAC], B[0x80]};
    cr_expect_str_eq(stream(m, 0, stray, 4), "||€|" R "|");
    int32_t ff[] = {B[0xFF], B[0x41]};
    cr_expect_str_eq(stream(m, 0, ff, 2), R "|A|");
    int32_t overlong[] = {B[0xC0], B[0xAF]};
    cr_expect_str_eq(stream(m, 0, overlong, 2), R "|" R "|");
    int32_t surrogate[] = {B[0xED], B[0xA0], B[0x80]};
    cr_expect_str_eq(stream(m, 0, surrogate, 3), "|" R R "|" R "|");
    int32_t restart[] = {B[0xD8], B[0xD8], B[0xB3]};
    cr_expect_str_eq(stream(m, 0, restart, 3), "|" R "|س|");
    int32_t tail[] = {B[0xF0], B[0x9F], B[0x98]};
    cr_expect_str_eq(stream(m, 0, tail, 3), "|||" R R R);
    /* a special token ends a byte run unless it is skipped */
    int32_t split[] = {B[0xD8], bos, B[0xB3]};
    cr_expect_str_eq(stream(m, 0, split, 3), "|" R "<bos>|" R "|");
    cr_expect_str_eq(stream(m, GEMFA_DETOKENIZE_SKIP_SPECIAL, split, 3), "||س|");
    size_t len;
    cr_expect_str_eq(detok(m, split, 3, GEMFA_DETOKENIZE_SKIP_SPECIAL, &len), "س");

    /* reset forgets held bytes; a rejected id changes nothing */
    gemfa_detok_stream *s = NULL;
    const char *chunk;
    cr_assert_eq(gemfa_detok_stream_new(m, 0, &s), GEMFA_OK);
    cr_expect_eq(gemfa_detok_stream_feed(s, B[0xD8], &chunk, &len), GEMFA_OK);
    gemfa_detok_stream_reset(s);
    cr_expect_eq(gemfa_detok_stream_flush(s, &chunk, &len), GEMFA_OK);
    cr_expect_eq(len, 0);
    cr_expect_eq(gemfa_detok_stream_feed(s, B[0xD8], &chunk, &len), GEMFA_OK);
    cr_expect_eq(gemfa_detok_stream_feed(s, -1, &chunk, &len), GEMFA_ERR_INVALID_TOKEN);
    cr_expect_eq(gemfa_detok_stream_feed(s, B[0xB3], &chunk, &len), GEMFA_OK);
    cr_expect_str_eq(chunk, "س");
    cr_expect_eq(gemfa_detok_stream_feed(NULL, 1, &chunk, &len), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_detok_stream_feed(s, 1, NULL, &len), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_detok_stream_flush(s, &chunk, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_detok_stream_free(s);
    gemfa_detok_stream_free(NULL);
    gemfa_detok_stream_reset(NULL);
    cr_expect_eq(gemfa_detok_stream_new(m, 4, &s), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_detok_stream_new(m, 0, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_detok_stream_new(NULL, 0, &s), GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_model_free(m);
}

/* Gemma has no whitespace pre-split: a whole line is one BPE word.  A heap
 * keeps that O(n log n); a quadratic BPE would take minutes here. */
static void long_words(gemfa_model *m)
{
    static const char *const letters[] = {"ا", "ب", "پ", "ت", "س", "ش", "م", "ن", "و", "ه", "ی",
                                          "ک", "گ", "ر", "د", "\u200c", "ـ", "a", "e", "😀"};
    size_t cap = 1 << 21, len = 0;
    char *text = malloc(cap + 16);
    unsigned seed = 7;
    while (len < cap - 8) {
        seed = seed * 1103515245u + 12345u;
        const char *l = letters[(seed >> 16) % 20];
        memcpy(text + len, l, strlen(l));
        len += strlen(l);
    }
    size_t n = 0, n_ids;
    cr_assert_eq(gemfa_tokenize(m, text, len, 0, NULL, 0, &n), GEMFA_ERR_BUFFER_TOO_SMALL);
    int32_t *ids = malloc(n * sizeof *ids);
    double t0 = now();
    cr_assert_eq(gemfa_tokenize(m, text, len, 0, ids, n, &n_ids), GEMFA_OK);
    double dt = now() - t0;
    cr_expect_lt(dt, 5.0, "a %zu-byte word took %.2f s", len, dt);
    char *back = malloc(len + 1);
    size_t back_len;
    cr_assert_eq(gemfa_detokenize(m, ids, n_ids, 0, back, len + 1, &back_len), GEMFA_OK);
    cr_expect(back_len == len && memcmp(back, text, len) == 0, "a long word round-trips");
    /* one character repeated: every pair merges the same way */
    memset(text, 'a', len);
    t0 = now();
    cr_assert_eq(gemfa_tokenize(m, text, len, 0, NULL, 0, &n), GEMFA_ERR_BUFFER_TOO_SMALL);
    cr_expect_lt(now() - t0, 5.0);
    free(back);
    free(ids);
    free(text);
}

Test(api, long_words_tiny, .timeout = 60) { gemfa_model *m = tiny(); long_words(m); gemfa_model_free(m); }
Test(api, long_words_real, .timeout = 60) { gemfa_model *m = real(); long_words(m); gemfa_model_free(m); }

/* ---- one model, several threads ---- */

typedef struct job {
    const gemfa_model *m;
    int ok;
} job;

static void *worker(void *arg)
{
    job *j = arg;
    static const char *const texts[] = {"سلام دنیا", "می‌شود <start_of_turn>", "\n\n\n\tabc",
                                        "😀👍🏽 کتاب"};
    int32_t first[4][64], again[64];
    size_t n0[4], n;
    j->ok = 1;
    for (int k = 0; k < 4; k++)
        gemfa_tokenize(j->m, texts[k], GEMFA_NUL_TERMINATED, GEMFA_TOKENIZE_DEFAULT, first[k], 64,
                       &n0[k]);
    for (int rep = 0; rep < 2000; rep++) {
        int k = rep & 3;
        if (gemfa_tokenize(j->m, texts[k], GEMFA_NUL_TERMINATED, GEMFA_TOKENIZE_DEFAULT, again,
                           64, &n) != GEMFA_OK || n != n0[k] || memcmp(again, first[k], n * 4))
            j->ok = 0;
    }
    return NULL;
}

Test(api, concurrent_tokenize)
{
    gemfa_model *m = tiny();
    pthread_t th[4];
    job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job){m, 0};
        pthread_create(&th[i], NULL, worker, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_expect(jobs[i].ok, "thread %d saw different ids", i);
    }
    gemfa_model_free(m);
}
