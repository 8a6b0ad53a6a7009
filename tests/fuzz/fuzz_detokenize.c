/* fuzz_detokenize.c — arbitrary ids through gemfa_detokenize,
 * gemfa_token_piece and the streaming decoder (tiny model).  Input: a flags
 * byte (bit 0 SKIP_SPECIAL, bit 1 "raw ids"), then 3 bytes per id: mostly
 * ids around the valid range [0, limit), with raw 24-bit values, negative
 * ids and INT32_MIN/MAX mixed in.  Properties: INVALID_TOKEN exactly when an
 * id is out of range; the output is valid UTF-8 and NUL-terminated; the
 * stream's chunks are valid UTF-8 and, when the batch output has no U+FFFD,
 * concatenate to it; a rejected id leaves the stream unchanged. */
#define _GNU_SOURCE
#include <string.h>

#include "fuzz_common.h"

static int32_t id_from(const uint8_t *b, int64_t limit)
{
    uint32_t v = (uint32_t)b[0] << 16 | (uint32_t)b[1] << 8 | b[2];
    switch (b[0] >> 5) {
    case 7: return (b[2] & 1) ? INT32_MAX - (int32_t)(b[1] % 4) : INT32_MIN + (int32_t)(b[1] % 4);
    case 6: return (int32_t)v - (1 << 23); /* raw, often negative */
    default: return (int32_t)((v & 0xFFFF) % (uint32_t)(limit + 8)) - 4;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const gemfa_model *m = fuzz_tiny_model(1);
    int64_t vocab = 0, pieces = 0;
    gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &vocab);
    gemfa_model_get(m, GEMFA_PROP_TOKENIZER_SIZE, &pieces);
    int64_t limit = vocab > pieces ? vocab : pieces;
    unsigned flags = data[0] & 1u;
    size_t n = (size - 1) / 3;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    int all_valid = 1;
    for (size_t i = 0; i < n; i++) {
        ids[i] = id_from(data + 1 + 3 * i, limit);
        all_valid &= ids[i] >= 0 && ids[i] < limit;
    }

    size_t len = 777;
    gemfa_status st = gemfa_detokenize(m, ids, n, flags, NULL, 0, &len);
    fuzz_check_status(st, "gemfa_detokenize");
    char *batch = NULL;
    if (!all_valid) {
        FUZZ_CHECK(st == GEMFA_ERR_INVALID_TOKEN, "bad id gave %s", gemfa_status_name(st));
        FUZZ_CHECK(len == 777, "*len written on INVALID_TOKEN");
    } else {
        FUZZ_CHECK(st == GEMFA_ERR_BUFFER_TOO_SMALL, "query gave %s", gemfa_status_name(st));
        batch = malloc(len + 1);
        size_t len2 = 0;
        st = gemfa_detokenize(m, ids, n, flags, batch, len + 1, &len2);
        FUZZ_CHECK(st == GEMFA_OK && len2 == len, "fill: %s", gemfa_status_name(st));
        FUZZ_CHECK(batch[len] == '\0', "no NUL");
        FUZZ_CHECK(fuzz_utf8_valid(batch, len), "batch output is not UTF-8");
        /* one byte short must be refused without writing past it */
        if (len > 0) {
            char *small = malloc(len);
            st = gemfa_detokenize(m, ids, n, flags, small, len, &len2);
            FUZZ_CHECK(st == GEMFA_ERR_BUFFER_TOO_SMALL && len2 == len, "short buffer");
            free(small);
        }
    }

    gemfa_detok_stream *ds = NULL;
    FUZZ_CHECK(gemfa_detok_stream_new(m, flags, &ds) == GEMFA_OK, "stream");
    size_t cap = 64, at = 0;
    char *joined = malloc(cap);
    for (size_t i = 0; i <= n; i++) {
        const char *text = NULL;
        size_t tl = 0;
        if (i < n) {
            st = gemfa_detok_stream_feed(ds, ids[i], &text, &tl);
            if (ids[i] < 0 || ids[i] >= limit) {
                FUZZ_CHECK(st == GEMFA_ERR_INVALID_TOKEN, "stream took id %d", (int)ids[i]);
                continue;
            }
        } else {
            st = gemfa_detok_stream_flush(ds, &text, &tl);
        }
        FUZZ_CHECK(st == GEMFA_OK && text, "stream: %s", gemfa_status_name(st));
        FUZZ_CHECK(fuzz_utf8_valid(text, tl), "stream chunk is not UTF-8");
        while (at + tl > cap)
            joined = realloc(joined, cap *= 2);
        memcpy(joined + at, text, tl);
        at += tl;
        /* pieces of valid ids never fail */
        if (i < n) {
            char piece[1024];
            size_t pl = 0;
            st = gemfa_token_piece(m, ids[i], piece, sizeof piece, &pl);
            FUZZ_CHECK(st == GEMFA_OK || st == GEMFA_ERR_BUFFER_TOO_SMALL, "piece: %s",
                       gemfa_status_name(st));
        }
    }
    if (batch && !memmem(batch, len, "\xEF\xBF\xBD", 3))
        FUZZ_CHECK(at == len && !memcmp(joined, batch, len), "stream (%zu bytes) != batch (%zu)",
                   at, len);
    gemfa_detok_stream_free(ds);
    free(joined);
    free(batch);
    free(ids);
    return 0;
}
