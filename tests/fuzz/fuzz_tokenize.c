/* fuzz_tokenize.c — arbitrary bytes through gemfa_tokenize on the tiny
 * model's tokenizer.  Input: one flags byte (bit 0 ADD_BOS, bit 1
 * PARSE_SPECIAL), then the text.  Properties: INVALID_UTF8 exactly when
 * the text is not UTF-8; the size query agrees with the fill; ids inside
 * the tokenizer; and the ids detokenize to the text again (plus "<bos>"
 * with ADD_BOS) unless the text holds "▁", which decodes as a space. */
#define _GNU_SOURCE
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const gemfa_model *m = fuzz_tiny_model(1);
    unsigned flags = data[0] & 3u;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    size_t need = 12345;
    gemfa_status st = gemfa_tokenize(m, text, len, flags, NULL, 0, &need);
    fuzz_check_status(st, "gemfa_tokenize (query)");
    int valid = fuzz_utf8_valid(text, len);
    if (!valid) {
        FUZZ_CHECK(st == GEMFA_ERR_INVALID_UTF8, "invalid UTF-8 gave %s", gemfa_status_name(st));
        FUZZ_CHECK(need == 12345, "*n_ids written on INVALID_UTF8");
        return 0;
    }
    FUZZ_CHECK(st == GEMFA_OK || st == GEMFA_ERR_BUFFER_TOO_SMALL, "query gave %s",
               gemfa_status_name(st));
    FUZZ_CHECK((st == GEMFA_OK) == (need == 0), "query: %s with %zu ids", gemfa_status_name(st),
               need);
    int32_t *ids = malloc((need ? need : 1) * sizeof *ids);
    size_t n = 0;
    st = gemfa_tokenize(m, text, len, flags, ids, need, &n);
    FUZZ_CHECK(st == GEMFA_OK && n == need, "fill: %s, %zu ids vs %zu", gemfa_status_name(st), n,
               need);
    int64_t n_pieces = 0;
    gemfa_model_get(m, GEMFA_PROP_TOKENIZER_SIZE, &n_pieces);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(ids[i] >= 0 && ids[i] < n_pieces, "id %d", (int)ids[i]);

    size_t out_len = 0;
    st = gemfa_detokenize(m, ids, n, 0, NULL, 0, &out_len);
    FUZZ_CHECK(st == GEMFA_ERR_BUFFER_TOO_SMALL, "detokenize query: %s", gemfa_status_name(st));
    char *out = malloc(out_len + 1);
    st = gemfa_detokenize(m, ids, n, 0, out, out_len + 1, &out_len);
    FUZZ_CHECK(st == GEMFA_OK, "detokenize: %s", gemfa_status_name(st));
    FUZZ_CHECK(out[out_len] == '\0', "no NUL");
    if (!memmem(text, len, "\xe2\x96\x81", 3)) {
        size_t skip = (flags & GEMFA_TOKENIZE_ADD_BOS) ? 5 : 0;
        FUZZ_CHECK(out_len == len + skip && (!skip || !memcmp(out, "<bos>", 5)) &&
                       !memcmp(out + skip, text, len),
                   "round trip: %zu bytes in, %zu out", len, out_len);
    }
    free(out);
    free(ids);
    return 0;
}
