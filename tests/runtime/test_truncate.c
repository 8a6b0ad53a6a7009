/* test_truncate.c — gemfa_session_truncate on the fixtures with a sliding
 * window of 8: for every n, truncate + decode equals a fresh session fed
 * the same ids -- bit for bit when the fresh session gets them in the same
 * pieces (the first n ids, then the rest), within the float32 tolerance
 * when the truncated session had decoded everything in one call.  Covered
 * both with the default chunk (ring of 263 slots, wrapped by the 300-token
 * sequence) and with chunks of 3 rows (ring of 10 slots: most rollbacks
 * re-decode), plus cancellation during a re-decode and hostile arguments. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "rt_helpers.h"
#include "runtime/context.h"
#include "runtime/session.h"

/* Two float32 runs grouping the work differently (see test_session.c). */
/* one call vs pieces: the matrix products round differently and the random
 * tiny weights amplify it (max seen: 0.0086 with whole-row softmax, 0.011
 * with blocked attention, at varying n) */
#define SAME_TOL 2e-2

typedef struct model_case {
    const char *model, *golden;
    int64_t chunk; /* 0 = default */
    int redecodes; /* some rollbacks must re-decode (the ring wraps) */
} model_case;

/* A different continuation than the sequence's own, so that stale cache
 * entries of the dropped tail would show. */
static const int32_t ALT[] = {2, 105, 17, 300, 9, 44, 1000, 3};
#define N_ALT (sizeof ALT / sizeof ALT[0])

static gemfa_context *make_ctx(gemfa_model *m, int64_t chunk)
{
    gemfa_context *ctx = rt_context(m);
    if (chunk)
        cr_assert_eq(gf_context_set_chunk(ctx, chunk), GEMFA_OK);
    return ctx;
}

static void decode_ok(gemfa_session *s, const int32_t *ids, size_t n)
{
    if (n)
        cr_assert_eq(gemfa_decode(s, ids, n, NULL), GEMFA_OK, "%s", gemfa_last_error());
}

/* The logits of ALT decoded after the session's tokens (malloc'd). */
static float *alt_logits(gemfa_session *s, size_t V)
{
    return rt_decode_all(s, ALT, N_ALT, V);
}

static void every_n(const model_case *c, size_t step)
{
    gemfa_model *m = rt_load(c->model, GEMFA_WEIGHTS_F32);
    gemfa_context *ctx = make_ctx(m, c->chunk);
    size_t N;
    int32_t *ids = rt_golden_i32(c->golden, "long.tokens.i32.bin", &N);
    int64_t V64;
    gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &V64);
    const size_t V = (size_t)V64;
    gemfa_session *whole = rt_session(ctx, 0); /* everything in one call, truncated each round */
    decode_ok(whole, ids, N);
    gemfa_session *keep = NULL;
    cr_assert_eq(gemfa_session_fork(whole, &keep), GEMFA_OK);
    int cheap = 0, costly = 0;
    for (size_t n = 0; n <= N; n += (n + step > N && n < N) ? N - n : step) {
        /* fresh: the first n ids in one call, then ALT */
        gemfa_session *fresh = rt_session(ctx, 0);
        decode_ok(fresh, ids, n);
        float *want = alt_logits(fresh, V);

        /* same pieces: n ids, the rest of the sequence, truncate to n, ALT */
        gemfa_session *a = rt_session(ctx, 0);
        decode_ok(a, ids, n);
        decode_ok(a, ids + n, N - n);
        *(gf_session_rollback_cheap(a, (int64_t)n) ? &cheap : &costly) += 1;
        cr_assert_eq(gemfa_session_truncate(a, n), GEMFA_OK, "%s", gemfa_last_error());
        cr_assert_eq(gemfa_session_n_tokens(a), n);
        const float *lg = (const float *)1;
        size_t nv;
        cr_assert_eq(gemfa_session_logits(a, &lg, &nv), GEMFA_OK);
        cr_expect(n == N ? lg != NULL : lg == NULL, "n=%zu: logits after truncate", n);
        const int32_t *toks;
        size_t nt;
        cr_assert_eq(gemfa_session_tokens(a, &toks, &nt), GEMFA_OK);
        cr_assert(nt == n && (n == 0 || memcmp(toks, ids, n * sizeof *ids) == 0));
        float *got = alt_logits(a, V);
        cr_expect(memcmp(got, want, N_ALT * V * sizeof(float)) == 0,
                  "%s chunk %lld: truncate to %zu of %zu differs from a fresh session (max %.3g)",
                  c->model, (long long)c->chunk, n, N, rt_max_abs_diff(got, want, N_ALT * V));
        free(got);

        /* one call for everything, then truncate: same within float32 rounding */
        gemfa_session *w = NULL;
        cr_assert_eq(gemfa_session_fork(keep, &w), GEMFA_OK);
        cr_assert_eq(gemfa_session_truncate(w, n), GEMFA_OK, "%s", gemfa_last_error());
        got = alt_logits(w, V);
        const double d = rt_max_abs_diff(got, want, N_ALT * V);
        cr_expect(d <= SAME_TOL, "%s: truncate of one call to %zu differs by %.3g", c->model, n, d);
        free(got);

        /* and truncating the same session again and again */
        cr_assert_eq(gemfa_session_truncate(whole, n), GEMFA_OK);
        got = alt_logits(whole, V);
        cr_expect(rt_max_abs_diff(got, want, N_ALT * V) <= SAME_TOL, "repeated truncate to %zu", n);
        free(got);
        cr_assert_eq(gemfa_session_truncate(whole, n), GEMFA_OK);
        decode_ok(whole, ids + n, N - n);

        free(want);
        gemfa_session_free(w);
        gemfa_session_free(a);
        gemfa_session_free(fresh);
        if (n == N)
            break;
    }
    /* the paths expected ran */
    cr_expect(cheap > 0 && (costly > 0) == c->redecodes, "cheap %d, re-decoded %d", cheap, costly);
    gemfa_session_free(keep);
    gemfa_session_free(whole);
    free(ids);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
}

Test(truncate, tiny_every_n_chunk3) { every_n(&(model_case){"tiny-gemma3n", "tiny-gemma3n", 3, 1}, 1); }
Test(truncate, tiny_every_n_default_chunk)
{
    every_n(&(model_case){"tiny-gemma3n", "tiny-gemma3n", 0, 0}, 1);
}
Test(truncate, tiny10_long300_chunk3, .timeout = 600)
{
    every_n(&(model_case){"runtime/tiny10-s1", "runtime/tiny10-s1", 3, 1}, 7);
}
Test(truncate, tiny10_long300_default_chunk, .timeout = 600)
{
    every_n(&(model_case){"runtime/tiny10-s1", "runtime/tiny10-s1", 0, 1}, 7);
}

/* Which rollbacks are cheap: with chunks of 3 the ring holds 10 slots; after
 * 39 tokens it holds positions 29..38, and position n needs n − 7 .. n − 1. */
Test(truncate, cost_boundary)
{
    gemfa_model *m = rt_load("tiny-gemma3n", GEMFA_WEIGHTS_F32);
    gemfa_context *ctx = make_ctx(m, 3);
    size_t N;
    int32_t *ids = rt_golden_i32("tiny-gemma3n", "long.tokens.i32.bin", &N);
    cr_assert_geq(N, 39u);
    gemfa_session *s = rt_session(ctx, 0);
    decode_ok(s, ids, 39);
    cr_expect(gf_session_rollback_cheap(s, 39));
    cr_expect(gf_session_rollback_cheap(s, 36));
    cr_expect(!gf_session_rollback_cheap(s, 35));
    cr_expect(gf_session_rollback_cheap(s, 0));
    /* a session whose context fits in the ring never re-decodes */
    gemfa_session *small = rt_session(ctx, 10);
    decode_ok(small, ids, 10);
    for (int64_t n = 0; n <= 10; n++)
        cr_expect(gf_session_rollback_cheap(small, n), "n=%lld", (long long)n);
    /* after a re-decode, the rebuilt ring holds the new window */
    cr_assert_eq(gemfa_session_truncate(s, 20), GEMFA_OK);
    cr_expect(gf_session_rollback_cheap(s, 20) && gf_session_rollback_cheap(s, 17));
    free(ids);
    gemfa_session_free(small);
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
}

static int cancel_after(void *user)
{
    int *budget = user;
    if (*budget < 0)
        return 0;
    return (*budget)-- == 0;
}

/* A cancelled re-decode leaves the session exactly as it was. */
Test(truncate, cancelled_redecode_changes_nothing)
{
    static int budget = -1;
    gemfa_model *m = rt_load("tiny-gemma3n", GEMFA_WEIGHTS_F32);
    gemfa_context_options *o;
    gemfa_context *ctx;
    cr_assert_eq(gemfa_context_options_new(&o), GEMFA_OK);
    cr_assert_eq(gemfa_context_options_set_cancel(o, cancel_after, &budget), GEMFA_OK);
    cr_assert_eq(gemfa_context_new(m, o, &ctx), GEMFA_OK);
    gemfa_context_options_free(o);
    cr_assert_eq(gf_context_set_chunk(ctx, 3), GEMFA_OK);
    size_t N;
    int32_t *ids = rt_golden_i32("tiny-gemma3n", "long.tokens.i32.bin", &N);
    int64_t V64;
    gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &V64);
    const size_t V = (size_t)V64;
    gemfa_session *s = rt_session(ctx, 0), *ref = rt_session(ctx, 0);
    decode_ok(s, ids, N);
    decode_ok(ref, ids, N);
    const float *lg;
    size_t nv;
    gemfa_session_logits(s, &lg, &nv);
    float *before = malloc(V * sizeof(float));
    memcpy(before, lg, V * sizeof(float));
    for (int poll = 0; poll < 60; poll += 7) {
        budget = poll;
        cr_expect_eq(gemfa_session_truncate(s, 12), GEMFA_ERR_CANCELLED, "poll %d", poll);
        cr_expect_eq(gemfa_session_n_tokens(s), N);
        gemfa_session_logits(s, &lg, &nv);
        cr_expect(lg && memcmp(lg, before, V * sizeof(float)) == 0);
    }
    budget = -1;
    float *got = alt_logits(s, V), *want = alt_logits(ref, V);
    cr_expect(memcmp(got, want, N_ALT * V * sizeof(float)) == 0,
              "after cancelled truncations the session continues differently");
    free(got);
    free(want);
    free(before);
    free(ids);
    gemfa_session_free(ref);
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
}

Test(truncate, hostile_arguments)
{
    gemfa_model *m = rt_load("tiny-gemma3n", GEMFA_WEIGHTS_F32);
    gemfa_context *ctx = rt_context(m);
    cr_expect_eq(gemfa_session_truncate(NULL, 0), GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_session *s = rt_session(ctx, 16);
    cr_expect_eq(gemfa_session_truncate(s, 0), GEMFA_OK);
    cr_expect_eq(gemfa_session_truncate(s, 1), GEMFA_ERR_INVALID_ARGUMENT);
    const int32_t ids[] = {2, 5, 6, 7};
    decode_ok(s, ids, 4);
    cr_expect_eq(gemfa_session_truncate(s, 5), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_truncate(s, (size_t)-1), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(gemfa_last_error(), "gemfa_session_truncate") != NULL, "%s",
              gemfa_last_error());
    cr_expect_eq(gemfa_session_n_tokens(s), 4u);
    const float *lg;
    size_t nv;
    gemfa_session_logits(s, &lg, &nv);
    cr_expect_not_null(lg, "a rejected truncate keeps the logits");
    cr_expect_eq(gemfa_session_truncate(s, 4), GEMFA_OK);
    gemfa_session_logits(s, &lg, &nv);
    cr_expect_not_null(lg, "truncate to the token count changes nothing");
    cr_expect_eq(gemfa_session_truncate(s, 0), GEMFA_OK);
    cr_expect_eq(gemfa_session_n_tokens(s), 0u);
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
}

/* Sessions advanced by gemfa_decode_batch (one row each) keep track of
 * their rings too: truncating them continues like a fresh session. */
Test(truncate, after_batched_steps)
{
    gemfa_model *m = rt_load("tiny-gemma3n", GEMFA_WEIGHTS_F32);
    gemfa_context *ctx = make_ctx(m, 3);
    size_t N;
    int32_t *ids = rt_golden_i32("tiny-gemma3n", "long.tokens.i32.bin", &N);
    int64_t V64;
    gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &V64);
    const size_t V = (size_t)V64;
    gemfa_session *a = rt_session(ctx, 0), *b = rt_session(ctx, 0);
    for (size_t i = 0; i < N; i++) {
        gemfa_session *both[2] = {a, b};
        const int32_t two[2] = {ids[i], ids[N - 1 - i]};
        cr_assert_eq(gemfa_decode_batch(ctx, both, two, 2), GEMFA_OK, "%s", gemfa_last_error());
    }
    const size_t cuts[] = {N - 2, N - 3, 20, 5};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        const size_t n = cuts[k];
        gemfa_session *t = NULL, *fresh = rt_session(ctx, 0);
        cr_assert_eq(gemfa_session_fork(a, &t), GEMFA_OK);
        cr_assert_eq(gemfa_session_truncate(t, n), GEMFA_OK, "%s", gemfa_last_error());
        decode_ok(fresh, ids, n);
        float *got = alt_logits(t, V), *want = alt_logits(fresh, V);
        const double d = rt_max_abs_diff(got, want, N_ALT * V);
        cr_expect(d <= SAME_TOL, "batched session truncated to %zu differs by %.3g", n, d);
        free(got);
        free(want);
        gemfa_session_free(t);
        gemfa_session_free(fresh);
    }
    free(ids);
    gemfa_session_free(a);
    gemfa_session_free(b);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
}
