/* fuzz_decode.c — arbitrary token ids decoded by the tiny model.  Input:
 * chunks of a length byte (1..8 ids) and 2 bytes per id (some outside the
 * vocabulary), in a session of at most 24 tokens; every 4th chunk goes
 * through gemfa_decode_batch with a second session.  Properties: a call
 * returns OK, INVALID_TOKEN or CONTEXT_FULL; a failed call changes nothing
 * (tokens, logits); logits are finite; and replaying only the accepted
 * chunks in a fresh session gives bit-identical logits (failed calls left
 * no trace). */
#include <math.h>
#include <string.h>

#include "fuzz_common.h"

#define MAX_CTX 24

static gemfa_context *ctx;
static gemfa_session *main_s, *side_s, *replay_s, *replay_side;
static size_t n_vocab;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const gemfa_model *m = fuzz_tiny_model(0);
    gemfa_context_options *co = NULL;
    gemfa_session_options *so = NULL;
    int64_t v = 0;
    if (gemfa_context_options_new(&co) || gemfa_context_options_set_threads(co, 1) ||
        gemfa_context_new(m, co, &ctx) || gemfa_session_options_new(&so) ||
        gemfa_session_options_set_max_context(so, MAX_CTX) || gemfa_session_new(ctx, so, &main_s) ||
        gemfa_session_new(ctx, so, &side_s) || gemfa_session_new(ctx, so, &replay_s) ||
        gemfa_session_new(ctx, so, &replay_side) ||
        gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &v)) {
        fprintf(stderr, "setup: %s\n", gemfa_last_error());
        abort();
    }
    n_vocab = (size_t)v;
    gemfa_context_options_free(co);
    gemfa_session_options_free(so);
    return 0;
}

typedef struct chunk {
    int32_t ids[8];
    size_t n;
    int batch;       /* one step with the side session, which gets side_id */
    int32_t side_id;
} chunk;

/* Decodes chunk c into s (and side): what both the run and the replay do. */
static gemfa_status run_chunk(gemfa_session *s, gemfa_session *side, const chunk *c)
{
    if (!c->batch)
        return gemfa_decode(s, c->ids, c->n, NULL);
    gemfa_session *both[2] = {s, side};
    int32_t two[2] = {c->ids[0], c->side_id};
    gemfa_status st = gemfa_decode_batch(ctx, both, two, 2);
    if (st == GEMFA_OK && gemfa_session_n_tokens(side) >= MAX_CTX)
        gemfa_session_reset(side);
    return st;
}

static void check_finite(const float *lg)
{
    for (size_t i = 0; i < n_vocab; i++)
        FUZZ_CHECK(isfinite(lg[i]), "logit %zu is %g", i, (double)lg[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gemfa_session_reset(main_s);
    gemfa_session_reset(side_s);
    chunk ok[MAX_CTX];
    size_t n_ok = 0, at = 0;
    float *before = malloc(n_vocab * sizeof(float));
    for (size_t k = 0; at < size; k++) {
        chunk c = {.n = 1 + data[at++] % 8};
        for (size_t i = 0; i < c.n; i++, at += 2) {
            uint32_t v = at + 1 < size ? (uint32_t)data[at] << 8 | data[at + 1] : 0;
            c.ids[i] = (int32_t)(v % (uint32_t)(n_vocab + 4)) - 2;
        }
        size_t n_before = gemfa_session_n_tokens(main_s);
        const float *lg = NULL;
        size_t nv = 0;
        gemfa_session_logits(main_s, &lg, &nv);
        if (lg)
            memcpy(before, lg, n_vocab * sizeof(float));
        if (k % 4 == 3) { /* one step of two sessions */
            c.batch = 1;
            c.side_id = c.ids[c.n - 1];
            c.n = 1;
        }
        gemfa_status st = run_chunk(main_s, side_s, &c);
        fuzz_check_status(st, "gemfa_decode");
        FUZZ_CHECK(st == GEMFA_OK || st == GEMFA_ERR_INVALID_TOKEN || st == GEMFA_ERR_CONTEXT_FULL,
                   "decode gave %s", gemfa_status_name(st));
        gemfa_session_logits(main_s, &lg, &nv);
        if (st == GEMFA_OK) {
            FUZZ_CHECK(gemfa_session_n_tokens(main_s) == n_before + c.n, "token count");
            FUZZ_CHECK(lg && nv == n_vocab, "logits");
            check_finite(lg);
            ok[n_ok++] = c;
        } else {
            FUZZ_CHECK(gemfa_session_n_tokens(main_s) == n_before, "a failed decode moved");
            FUZZ_CHECK(!n_before || (lg && !memcmp(lg, before, n_vocab * sizeof(float))),
                       "a failed decode changed the logits");
            if (st == GEMFA_ERR_CONTEXT_FULL)
                break;
        }
    }
    if (n_ok) { /* the same accepted chunks again, in a fresh session */
        gemfa_session_reset(replay_s);
        gemfa_session_reset(replay_side);
        for (size_t i = 0; i < n_ok; i++)
            FUZZ_CHECK(run_chunk(replay_s, replay_side, &ok[i]) == GEMFA_OK, "replay");
        const float *a, *b;
        size_t na, nb;
        gemfa_session_logits(main_s, &a, &na);
        gemfa_session_logits(replay_s, &b, &nb);
        FUZZ_CHECK(!memcmp(a, b, n_vocab * sizeof(float)), "replay differs");
    }
    free(before);
    return 0;
}
