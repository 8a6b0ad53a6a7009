/* fuzz_state.c — session states loaded into the tiny model.  Input: one
 * control byte, then the state.  Control bit 0: before loading, stamp the
 * model's fingerprint and recompute both checksums (so mutations reach the
 * field checks behind them); bit 1: load from a file instead of a buffer;
 * bits 2-4: the new session's max context (NULL options, 1, 5, 10, 40,
 * 300, 4096, 0).  Properties: the status is one a load may return, *out is
 * untouched on failure; a loaded session holds at most its max context,
 * saves again (to a state that loads), truncates, and decodes a token. */
#include <string.h>

#include "core/hash.h"
#include "fuzz_common.h"
#include "runtime/context.h"
#include "runtime/fingerprint.h"

#define SENTINEL ((gemfa_session *)0x5e55)
#define HEADER 96

static gemfa_context *ctx;
static uint64_t fingerprint;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const gemfa_model *m = fuzz_tiny_model(0);
    gemfa_context_options *co = NULL;
    if (gemfa_context_options_new(&co) || gemfa_context_options_set_threads(co, 1) ||
        gemfa_context_new(m, co, &ctx)) {
        fprintf(stderr, "setup: %s\n", gemfa_last_error());
        abort();
    }
    gemfa_context_options_free(co);
    fingerprint = gf_model_fingerprint(m);
    return 0;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void stamp(unsigned char *b, size_t n)
{
    if (n < HEADER)
        return;
    for (int i = 0; i < 8; i++)
        b[16 + i] = (unsigned char)(fingerprint >> (8 * i));
    put32(b + 88, gf_crc32c(0, b + HEADER, n - HEADER));
    put32(b + 92, gf_crc32c(0, b, 92));
}

static void check_loaded(gemfa_session *s)
{
    const size_t n = gemfa_session_n_tokens(s);
    FUZZ_CHECK(n <= gemfa_session_max_context(s), "%zu tokens in %zu", n,
               gemfa_session_max_context(s));
    size_t len = 0;
    FUZZ_CHECK(gemfa_session_save(s, NULL, 0, &len) == GEMFA_ERR_BUFFER_TOO_SMALL, "size query");
    unsigned char *buf = malloc(len);
    FUZZ_CHECK(gemfa_session_save(s, buf, len, &len) == GEMFA_OK, "save");
    gemfa_session *again = SENTINEL;
    gemfa_status st = gemfa_session_load(ctx, NULL, buf, len, &again);
    FUZZ_CHECK(st == GEMFA_OK, "a re-saved state does not load");
    gemfa_session_free(again);
    free(buf);
    FUZZ_CHECK(gemfa_session_truncate(s, n / 2) == GEMFA_OK, "truncate");
    FUZZ_CHECK(gemfa_session_n_tokens(s) == n / 2, "truncate count");
    const int32_t id = 2;
    if (n / 2 < gemfa_session_max_context(s))
        FUZZ_CHECK(gemfa_decode(s, &id, 1, NULL) == GEMFA_OK, "decode after load");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const int64_t ctxs[8] = {-1, 1, 5, 10, 40, 300, 4096, 0};
    const unsigned ctl = data[0];
    size--, data++;
    unsigned char *b = malloc(size ? size : 1);
    memcpy(b, data, size);
    if (ctl & 1)
        stamp(b, size);
    gemfa_session_options *so = NULL;
    const int64_t mc = ctxs[(ctl >> 2) & 7];
    if (mc >= 0 && (gemfa_session_options_new(&so) || gemfa_session_options_set_max_context(so, mc)))
        abort();
    gemfa_session *s = SENTINEL;
    gemfa_status st;
    if (ctl & 2) {
        fuzz_write("state", b, size);
        char path[4096];
        snprintf(path, sizeof path, "%s/state", fuzz_tmp_dir());
        st = gemfa_session_load_file(ctx, so, path, &s);
        fuzz_remove("state");
    } else {
        st = gemfa_session_load(ctx, so, b, size, &s);
    }
    fuzz_check_status(st, "gemfa_session_load");
    FUZZ_CHECK(st == GEMFA_OK || st == GEMFA_ERR_FORMAT || st == GEMFA_ERR_UNSUPPORTED ||
                   st == GEMFA_ERR_MODEL_MISMATCH || st == GEMFA_ERR_CONTEXT_FULL ||
                   st == GEMFA_ERR_IO,
               "unexpected %s", gemfa_status_name(st));
    if (st == GEMFA_OK) {
        FUZZ_CHECK(s != SENTINEL && s != NULL, "no session");
        check_loaded(s);
        gemfa_session_free(s);
    } else {
        FUZZ_CHECK(s == SENTINEL, "a failed load wrote *out");
    }
    gemfa_session_options_free(so);
    free(b);
    return 0;
}
