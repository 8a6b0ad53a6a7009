/* fuzz_tokenizer_load.c — a tokenizer.json (the input) loaded as a
 * vocabulary-only model from a directory of its own, then used: fixed texts
 * tokenized in both special-token modes, the ids detokenized, a chat
 * rendered.  Whatever loads must then work without crashing, give ids
 * inside its vocabulary and valid UTF-8 back. */
#include <string.h>

#include "fuzz_common.h"

static const char *const texts[] = {
    "Hello world",
    "سلام! حالت چطوره؟ \xe2\x80\x8c",
    "<start_of_turn>user\nhi<end_of_turn>\n\n\n  x",
    "\xf0\x9f\x98\x80 \t<unk><0x41>",
};

static void use(const gemfa_model *m)
{
    int64_t n_pieces = 0;
    FUZZ_CHECK(gemfa_model_get(m, GEMFA_PROP_TOKENIZER_SIZE, &n_pieces) == GEMFA_OK, "size");
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++)
        for (unsigned flags = 0; flags < 4; flags++) {
            int32_t ids[512];
            size_t n = 0;
            gemfa_status st = gemfa_tokenize(m, texts[t], GEMFA_NUL_TERMINATED, flags, ids, 512, &n);
            fuzz_check_status(st, "gemfa_tokenize");
            if (st != GEMFA_OK)
                continue;
            for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(ids[i] >= 0 && ids[i] < n_pieces, "id %d of %lld", (int)ids[i],
                           (long long)n_pieces);
            char buf[4096];
            size_t len = 0;
            st = gemfa_detokenize(m, ids, n, flags & 1, buf, sizeof buf, &len);
            fuzz_check_status(st, "gemfa_detokenize");
            if (st == GEMFA_OK)
                FUZZ_CHECK(fuzz_utf8_valid(buf, len), "detokenized text is not UTF-8");
        }
    gemfa_message msgs[2] = {{"user", texts[1], GEMFA_NUL_TERMINATED},
                             {"assistant", texts[0], GEMFA_NUL_TERMINATED}};
    char buf[4096];
    size_t len = 0;
    fuzz_check_status(gemfa_apply_chat_template(m, msgs, 2, 1, buf, sizeof buf, &len),
                      "gemfa_apply_chat_template");
    int32_t ids[1024];
    size_t n = 0;
    fuzz_check_status(gemfa_chat_tokenize(m, msgs, 2, 1, GEMFA_CHAT_INJECTION_SAFE, ids, 1024, &n),
                      "gemfa_chat_tokenize");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write("tokenizer.json", data, size);
    gemfa_model_options *o = NULL;
    gemfa_model *m = NULL;
    FUZZ_CHECK(gemfa_model_options_new(&o) == GEMFA_OK, "options");
    gemfa_model_options_set_vocab_only(o, 1);
    gemfa_status st = gemfa_model_load(fuzz_tmp_dir(), o, &m);
    gemfa_model_options_free(o);
    fuzz_check_status(st, "gemfa_model_load");
    if (st == GEMFA_OK) {
        int64_t has = 0;
        gemfa_model_get(m, GEMFA_PROP_HAS_TOKENIZER, &has);
        FUZZ_CHECK(has == 1, "a loaded tokenizer.json must give a tokenizer");
        use(m);
    } else {
        FUZZ_CHECK(m == NULL, "model on failure");
    }
    gemfa_model_free(m);
    return 0;
}
