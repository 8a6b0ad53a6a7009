/* test_session.c — sessions on tiny-gemma3n (f32 weights): token-by-token
 * decoding, chunked prefill (with sliding rings that wrap), interleaved
 * sessions, fork, reset, batched decode, and failure atomicity (context
 * full, cancellation, invalid ids): a failed call leaves the session as it
 * was, and decoding then continues exactly as if it had never happened. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "loader/model.h"
#include "rt_helpers.h"
#include "runtime/context.h"
#include "runtime/gemma3n.h"

#define TINY "tiny-gemma3n"
#define LOGITS_TOL 1e-2 /* against the float64 golden (golden.json) */
#define MARGIN 0.05
/* Two float32 runs of the same inputs that only group the work differently
 * (rows per matrix product, chunking, kernels for batches vs single rows):
 * this random model amplifies rounding ~300× over its 25 layers
 * (golden.json; float32 vs float64 logits differ by 2.6e-3), so two float32
 * orderings may differ by about as much as either differs from float64.  A
 * real KV-cache mistake moves logits by units (ablations: tens). */
#define SAME_TOL 1e-2

typedef struct fixture {
    gemfa_model *m;
    gemfa_context *ctx;
    int32_t *ids; /* the golden `long` sequence */
    size_t n;
    float *want;  /* its golden logits [n][V] */
    size_t V;
} fixture;

static fixture F;

static void setup(void)
{
    size_t nl;
    F.m = rt_load(TINY, GEMFA_WEIGHTS_F32);
    F.ctx = rt_context(F.m);
    F.ids = rt_golden_i32(TINY, "long.tokens.i32.bin", &F.n);
    F.want = rt_golden_f32(TINY, "long.logits.f32.bin", &nl);
    F.V = nl / F.n;
}

static void teardown(void)
{
    gemfa_context_free(F.ctx);
    gemfa_model_free(F.m);
    free(F.ids);
    free(F.want);
}

TestSuite(session, .init = setup, .fini = teardown);

/* The last logits of a session, compared with golden row `row`. */
static void expect_row(gemfa_session *s, size_t row, const char *what)
{
    const float *lg;
    size_t nv;
    cr_assert_eq(gemfa_session_logits(s, &lg, &nv), GEMFA_OK);
    cr_assert_not_null(lg, "%s: no logits", what);
    cr_assert_eq(nv, F.V);
    char label[128];
    snprintf(label, sizeof label, "%s (position %zu)", what, row);
    rt_check_logits(label, lg, F.want + row * F.V, 1, F.V, LOGITS_TOL, MARGIN);
}

Test(session, token_by_token_equals_one_batch)
{
    gemfa_session *a = rt_session(F.ctx, 0), *b = rt_session(F.ctx, 0);
    float *batch = rt_decode_all(a, F.ids, F.n, F.V);
    rt_check_logits("batch", batch, F.want, F.n, F.V, LOGITS_TOL, MARGIN);
    for (size_t i = 0; i < F.n; i++) {
        const float *lg = NULL;
        cr_assert_eq(gemfa_decode(b, F.ids + i, 1, &lg), GEMFA_OK, "%s", gemfa_last_error());
        double d = rt_max_abs_diff(lg, batch + i * F.V, F.V);
        cr_expect(d <= SAME_TOL, "position %zu: token by token differs from the batch by %.3g", i,
                  d);
    }
    cr_expect_eq(gemfa_session_n_tokens(b), F.n);
    free(batch);
    gemfa_session_free(a);
    gemfa_session_free(b);
}

/* Chunks of 3 rows: sliding rings of W − 1 + 3 = 10 slots wrap four times
 * over the 39 tokens, inside one decode and across decodes. */
Test(session, chunked_prefill_equals_one_prefill)
{
    gemfa_session *one = rt_session(F.ctx, 0);
    float *whole = rt_decode_all(one, F.ids, F.n, F.V);
    cr_assert_eq(gf_context_set_chunk(F.ctx, 3), GEMFA_OK);
    gemfa_session *s = rt_session(F.ctx, 0);
    float *chunked = rt_decode_all(s, F.ids, F.n, F.V);
    cr_expect(rt_max_abs_diff(chunked, whole, F.n * F.V) <= SAME_TOL, "chunked differs by %.3g",
              rt_max_abs_diff(chunked, whole, F.n * F.V));
    rt_check_logits("chunked", chunked, F.want, F.n, F.V, LOGITS_TOL, MARGIN);

    /* prompt in uneven pieces, then single tokens */
    gemfa_session_reset(s);
    const size_t cuts[] = {0, 7, 8, 21, 30, 31, 39};
    for (size_t c = 0; c + 1 < sizeof cuts / sizeof cuts[0]; c++) {
        const float *lg;
        const size_t n = cuts[c + 1] - cuts[c];
        cr_assert_eq(gemfa_decode(s, F.ids + cuts[c], n, &lg), GEMFA_OK, "%s", gemfa_last_error());
        double d = rt_max_abs_diff(lg, whole + (cuts[c + 1] - 1) * F.V, F.V);
        cr_expect(d <= SAME_TOL, "piece ending at %zu differs by %.3g", cuts[c + 1], d);
    }
    free(whole);
    free(chunked);
    gemfa_session_free(one);
    gemfa_session_free(s);
}

Test(session, interleaved_sessions_equal_separate_runs)
{
    gemfa_session *a = rt_session(F.ctx, 0), *b = rt_session(F.ctx, 0);
    /* b runs the sequence shifted: starts 5 tokens later */
    for (size_t i = 0; i < F.n + 5; i++) {
        if (i < F.n) {
            cr_assert_eq(gemfa_decode(a, F.ids + i, 1, NULL), GEMFA_OK);
            expect_row(a, i, "session a");
        }
        if (i >= 5) {
            cr_assert_eq(gemfa_decode(b, F.ids + (i - 5), 1, NULL), GEMFA_OK);
            expect_row(b, i - 5, "session b");
        }
    }
    gemfa_session_free(a);
    gemfa_session_free(b);
}

Test(session, fork_then_diverge_equals_fresh_runs)
{
    const size_t P = 12;
    int32_t other[8] = {17, 300, 999, 4, 512, 8, 61, 700};
    int32_t seq_b[12 + 8];
    memcpy(seq_b, F.ids, P * sizeof(int32_t));
    memcpy(seq_b + P, other, sizeof other);

    gemfa_session *fresh = rt_session(F.ctx, 0);
    float *want_b = rt_decode_all(fresh, seq_b, P + 8, F.V);

    cr_assert_eq(gf_context_set_chunk(F.ctx, 4), GEMFA_OK); /* rings that wrap */
    gemfa_session *parent = rt_session(F.ctx, 0), *child = NULL;
    cr_assert_eq(gemfa_decode(parent, F.ids, P, NULL), GEMFA_OK);
    cr_assert_eq(gemfa_session_fork(parent, &child), GEMFA_OK, "%s", gemfa_last_error());
    cr_expect_eq(gemfa_session_n_tokens(child), P);
    const float *lp, *lc;
    size_t nv;
    gemfa_session_logits(parent, &lp, &nv);
    gemfa_session_logits(child, &lc, &nv);
    cr_expect_neq(lp, lc, "the fork owns its logits");
    cr_expect_eq(memcmp(lp, lc, nv * sizeof(float)), 0);

    for (size_t i = 0; i < 8; i++) { /* the child diverges token by token */
        cr_assert_eq(gemfa_decode(child, other + i, 1, &lc), GEMFA_OK);
        cr_expect(rt_max_abs_diff(lc, want_b + (P + i) * F.V, F.V) <= SAME_TOL,
                  "child at %zu differs", P + i);
    }
    /* the parent continues with the golden sequence, unaffected */
    float *rest = rt_decode_all(parent, F.ids + P, F.n - P, F.V);
    rt_check_logits("parent after fork", rest, F.want + P * F.V, F.n - P, F.V, LOGITS_TOL, MARGIN);
    const int32_t *toks;
    size_t nt;
    cr_assert_eq(gemfa_session_tokens(child, &toks, &nt), GEMFA_OK);
    cr_expect_eq(nt, P + 8);
    cr_expect_eq(memcmp(toks, seq_b, nt * sizeof(int32_t)), 0);
    free(rest);
    free(want_b);
    gemfa_session_free(fresh);
    gemfa_session_free(parent);
    gemfa_session_free(child);
}

/* Snapshot of what a failed call must not change. */
typedef struct snap {
    size_t n_tokens;
    int32_t *tokens;
    float *logits;
} snap;

static snap take(gemfa_session *s)
{
    snap x = {gemfa_session_n_tokens(s), NULL, NULL};
    const int32_t *t;
    const float *lg;
    size_t n, nv;
    gemfa_session_tokens(s, &t, &n);
    x.tokens = malloc((n + 1) * sizeof(int32_t));
    memcpy(x.tokens, t, n * sizeof(int32_t));
    gemfa_session_logits(s, &lg, &nv);
    if (lg) {
        x.logits = malloc(nv * sizeof(float));
        memcpy(x.logits, lg, nv * sizeof(float));
    }
    return x;
}

static void expect_unchanged(gemfa_session *s, snap *x, const char *what)
{
    const int32_t *t;
    const float *lg;
    size_t n, nv;
    gemfa_session_tokens(s, &t, &n);
    cr_expect_eq(n, x->n_tokens, "%s: token count changed", what);
    cr_expect_eq(memcmp(t, x->tokens, n * sizeof(int32_t)), 0, "%s: tokens changed", what);
    gemfa_session_logits(s, &lg, &nv);
    if (x->logits)
        cr_expect_eq(memcmp(lg, x->logits, nv * sizeof(float)), 0, "%s: logits changed", what);
    else
        cr_expect_null(lg, "%s", what);
    free(x->tokens);
    free(x->logits);
}

Test(session, context_full_leaves_session_unchanged)
{
    cr_assert_eq(gf_context_set_chunk(F.ctx, 3), GEMFA_OK);
    gemfa_session *s = rt_session(F.ctx, 20);
    cr_expect_eq(gemfa_session_max_context(s), 20u);
    cr_assert_eq(gemfa_decode(s, F.ids, 15, NULL), GEMFA_OK);
    snap x = take(s);
    const float *lg = (const float *)1;
    cr_expect_eq(gemfa_decode(s, F.ids + 15, 6, &lg), GEMFA_ERR_CONTEXT_FULL);
    cr_expect_eq(lg, (const float *)1, "out parameter untouched");
    cr_expect(strstr(gemfa_last_error(), "20") != NULL, "message: %s", gemfa_last_error());
    expect_unchanged(s, &x, "context full");
    float *buf = malloc(6 * F.V * sizeof(float));
    x = take(s);
    cr_expect_eq(gemfa_decode_all(s, F.ids + 15, 6, buf, 6 * F.V), GEMFA_ERR_CONTEXT_FULL);
    cr_expect_eq(gemfa_decode(s, F.ids + 15, SIZE_MAX, NULL), GEMFA_ERR_CONTEXT_FULL);
    expect_unchanged(s, &x, "context full (all)");
    /* exactly filling it works and continues the golden sequence */
    float *rest = rt_decode_all(s, F.ids + 15, 5, F.V);
    rt_check_logits("after context full", rest, F.want + 15 * F.V, 5, F.V, LOGITS_TOL, MARGIN);
    cr_expect_eq(gemfa_decode(s, F.ids, 1, NULL), GEMFA_ERR_CONTEXT_FULL);
    cr_expect_eq(gemfa_session_n_tokens(s), 20u);
    free(rest);
    free(buf);
    gemfa_session_free(s);
}

static int cancel_after(void *user)
{
    int *budget = user;
    if (*budget < 0)
        return 0; /* disarmed */
    return (*budget)-- == 0;
}

/* Cancellation in the middle of a multi-chunk decode whose rings have
 * already wrapped over the committed window: the window is restored. */
Test(session, cancellation_leaves_session_unchanged)
{
    static int budget = -1;
    gemfa_context_options *o;
    gemfa_context *ctx;
    cr_assert_eq(gemfa_context_options_new(&o), GEMFA_OK);
    cr_assert_eq(gemfa_context_options_set_cancel(o, cancel_after, &budget), GEMFA_OK);
    cr_assert_eq(gemfa_context_new(F.m, o, &ctx), GEMFA_OK);
    gemfa_context_options_free(o);
    cr_assert_eq(gf_context_set_chunk(ctx, 3), GEMFA_OK);
    gemfa_session *s = rt_session(ctx, 0);
    cr_assert_eq(gemfa_decode(s, F.ids, 10, NULL), GEMFA_OK);

    int64_t L;
    gemfa_model_get(F.m, GEMFA_PROP_N_LAYERS, &L);
    const int polls[] = {0, 1, (int)L + 3, 2 * (int)L + 5, 3 * (int)L + 7};
    for (size_t i = 0; i < sizeof polls / sizeof polls[0]; i++) {
        snap x = take(s);
        budget = polls[i]; /* stop at the polls[i]-th poll: chunk 1, 2 or 3 */
        cr_expect_eq(gemfa_decode(s, F.ids + 10, 20, NULL), GEMFA_ERR_CANCELLED, "poll %d",
                     polls[i]);
        expect_unchanged(s, &x, "cancelled");
    }
    /* a cancelled batch decode changes no session either */
    gemfa_session *t = rt_session(ctx, 0);
    gemfa_session *both[2] = {s, t};
    snap x = take(s);
    budget = 3;
    int32_t two[2] = {F.ids[10], F.ids[0]};
    cr_expect_eq(gemfa_decode_batch(ctx, both, two, 2), GEMFA_ERR_CANCELLED);
    expect_unchanged(s, &x, "cancelled batch");
    cr_expect_eq(gemfa_session_n_tokens(t), 0u);

    budget = -1;
    float *rest = rt_decode_all(s, F.ids + 10, F.n - 10, F.V);
    rt_check_logits("after cancellations", rest, F.want + 10 * F.V, F.n - 10, F.V, LOGITS_TOL,
                    MARGIN);
    free(rest);
    gemfa_session_free(t);
    gemfa_session_free(s);
    gemfa_context_free(ctx);
}

Test(session, invalid_ids_rejected_without_change)
{
    gemfa_session *s = rt_session(F.ctx, 0);
    cr_assert_eq(gemfa_decode(s, F.ids, 4, NULL), GEMFA_OK);
    const int32_t bad[][3] = {{5, -1, 7}, {5, 1024, 7}, {INT32_MAX, 5, 5}, {INT32_MIN, 5, 5}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snap x = take(s);
        cr_expect_eq(gemfa_decode(s, bad[i], 3, NULL), GEMFA_ERR_INVALID_TOKEN, "case %zu", i);
        expect_unchanged(s, &x, "invalid id");
    }
    cr_expect(strstr(gemfa_last_error(), "ids[0]") != NULL, "message: %s", gemfa_last_error());
    /* bad arguments */
    snap x = take(s);
    float dummy[4];
    cr_expect_eq(gemfa_decode(NULL, F.ids, 1, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_decode(s, NULL, 1, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_decode(s, F.ids, 0, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_decode_all(s, F.ids, 1, dummy, 4), GEMFA_ERR_BUFFER_TOO_SMALL);
    cr_expect_eq(gemfa_decode_all(s, F.ids, 1, NULL, 0), GEMFA_ERR_BUFFER_TOO_SMALL);
    cr_expect_eq(gemfa_decode_all(s, F.ids, 1, NULL, F.V), GEMFA_ERR_INVALID_ARGUMENT);
    expect_unchanged(s, &x, "bad arguments");
    /* and the session goes on as if nothing happened */
    float *rest = rt_decode_all(s, F.ids + 4, F.n - 4, F.V);
    rt_check_logits("after rejections", rest, F.want + 4 * F.V, F.n - 4, F.V, LOGITS_TOL, MARGIN);
    free(rest);
    gemfa_session_free(s);
}

/* Without embed_vision the vision ids (1022, 1023 in this model) are
 * rejected; with it they are accepted (their values are checked against
 * the reference in test_models). */
Test(session, multimodal_ids_need_their_embedder)
{
    cr_expect_eq(gf_check_token(F.m, 1022), GEMFA_OK);
    cr_expect_eq(gf_check_token(F.m, 1023), GEMFA_OK);
    struct gemfa_model text_only = *F.m;
    text_only.embed_vision.present = 0;
    cr_expect_eq(gf_check_token(&text_only, 1022), GEMFA_ERR_INVALID_TOKEN);
    cr_expect(strstr(gemfa_last_error(), "multimodal") != NULL, "%s", gemfa_last_error());
    cr_expect_eq(gf_check_token(&text_only, 1021), GEMFA_OK);
    gemfa_context *ctx = rt_context(&text_only);
    gemfa_session *s = rt_session(ctx, 0);
    const int32_t ids[3] = {2, 1022, 5};
    cr_expect_eq(gemfa_decode(s, ids, 3, NULL), GEMFA_ERR_INVALID_TOKEN);
    cr_expect_eq(gemfa_session_n_tokens(s), 0u);
    gemfa_session_free(s);
    gemfa_context_free(ctx);
}

/* embed_tokens with fewer rows than the vocabulary: the missing rows embed
 * as zeros and their logits are 0 (spec §11). */
Test(session, short_embedding_table)
{
    struct gemfa_model cut = *F.m;
    cut.embed_tokens.rows = 1000;
    cut.lm_head.rows = 1000;
    gemfa_context *ctx = rt_context(&cut);
    gemfa_session *s = rt_session(ctx, 0);
    const int32_t ids[3] = {2, 1010, 5};
    float *lg = rt_decode_all(s, ids, 3, F.V);
    for (size_t r = 0; r < 3; r++)
        for (size_t v = 1000; v < F.V; v++)
            cr_expect_eq(lg[r * F.V + v], 0.0f);
    for (size_t i = 0; i < 3 * F.V; i++)
        cr_assert(isfinite(lg[i]));
    free(lg);
    gemfa_session_free(s);
    gemfa_context_free(ctx);
}

Test(session, reset_tokens_and_memory)
{
    gemfa_session *s = rt_session(F.ctx, 64);
    const float *lg;
    size_t nv;
    cr_assert_eq(gemfa_session_logits(s, &lg, &nv), GEMFA_OK);
    cr_expect_null(lg, "an empty session has no logits");
    cr_assert_eq(gemfa_decode(s, F.ids, 9, NULL), GEMFA_OK);
    const size_t mem = gemfa_session_memory_bytes(s);
    /* 20 own layers: 16 sliding (ring W−1+chunk = 263 > 64: plain 64 slots)
     * and 4 full (64 slots), 2 KV heads × 16 dims, K and V, f32. */
    cr_expect_geq(mem, (size_t)20 * 64 * 2 * 16 * 2 * 4);
    cr_expect_lt(mem, (size_t)20 * 64 * 2 * 16 * 2 * 4 + 64 * 1024);
    gemfa_session_reset(s);
    cr_expect_eq(gemfa_session_n_tokens(s), 0u);
    cr_assert_eq(gemfa_session_logits(s, &lg, &nv), GEMFA_OK);
    cr_expect_null(lg);
    cr_expect_eq(gemfa_session_memory_bytes(s), mem, "reset keeps the memory");
    float *all = rt_decode_all(s, F.ids, F.n, F.V);
    rt_check_logits("after reset", all, F.want, F.n, F.V, LOGITS_TOL, MARGIN);
    free(all);
    cr_expect_eq(gemfa_session_n_tokens(NULL), 0u);
    cr_expect_eq(gemfa_session_max_context(NULL), 0u);
    cr_expect_eq(gemfa_session_memory_bytes(NULL), 0u);
    gemfa_session_reset(NULL);
    gemfa_session_free(s);
}

Test(session, batched_decode_equals_separate_sessions)
{
    gemfa_session *s[3];
    const size_t start[3] = {0, 7, 20};
    for (int i = 0; i < 3; i++) {
        s[i] = rt_session(F.ctx, 0);
        if (start[i])
            cr_assert_eq(gemfa_decode(s[i], F.ids, start[i], NULL), GEMFA_OK);
    }
    for (size_t step = 0; step < 12; step++) {
        int32_t ids[3];
        for (int i = 0; i < 3; i++)
            ids[i] = F.ids[start[i] + step];
        cr_assert_eq(gemfa_decode_batch(F.ctx, s, ids, 3), GEMFA_OK, "%s", gemfa_last_error());
        for (int i = 0; i < 3; i++)
            expect_row(s[i], start[i] + step, "batched");
    }
    /* rejected batches change nothing */
    snap x = take(s[1]);
    gemfa_session *dup[2] = {s[1], s[1]};
    int32_t two[2] = {5, 5};
    cr_expect_eq(gemfa_decode_batch(F.ctx, dup, two, 2), GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_session *pair[2] = {s[1], s[2]};
    int32_t bad[2] = {5, -3};
    cr_expect_eq(gemfa_decode_batch(F.ctx, pair, bad, 2), GEMFA_ERR_INVALID_TOKEN);
    cr_expect_eq(gemfa_decode_batch(NULL, pair, two, 2), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_decode_batch(F.ctx, pair, two, 0), GEMFA_ERR_INVALID_ARGUMENT);
    expect_unchanged(s[1], &x, "rejected batch");
    for (int i = 0; i < 3; i++)
        gemfa_session_free(s[i]);
}

Test(session, options_and_arguments)
{
    gemfa_session_options *o;
    gemfa_session *s = NULL;
    int64_t max_pos;
    cr_assert_eq(gemfa_model_get(F.m, GEMFA_PROP_CONTEXT_LENGTH, &max_pos), GEMFA_OK);
    cr_assert_eq(gemfa_session_options_new(&o), GEMFA_OK);
    cr_expect_eq(gemfa_session_options_set_max_context(o, -1), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_options_set_max_context(NULL, 5), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_session_options_set_max_context(o, max_pos + 1), GEMFA_OK);
    cr_expect_eq(gemfa_session_new(F.ctx, o, &s), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_null(s);
    cr_assert_eq(gemfa_session_options_set_max_context(o, 0), GEMFA_OK);
    cr_assert_eq(gemfa_session_new(F.ctx, o, &s), GEMFA_OK);
    cr_expect_eq(gemfa_session_max_context(s), (size_t)max_pos, "0 = the model's limit");
    cr_expect_eq(gemfa_session_new(NULL, o, &s), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_new(F.ctx, o, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_fork(NULL, &s), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_fork(s, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_tokens(s, NULL, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_logits(NULL, NULL, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_session_options_free(o);
    gemfa_session_options_free(NULL);
    gemfa_session_free(s);
    gemfa_session_free(NULL);

    gemfa_context_options *co;
    gemfa_context *ctx = NULL;
    cr_assert_eq(gemfa_context_options_new(&co), GEMFA_OK);
    cr_expect_eq(gemfa_context_options_set_threads(co, -1), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_context_options_set_threads(co, 1025), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_context_options_set_threads(co, 2), GEMFA_OK);
    cr_expect_eq(gemfa_context_options_set_cancel(NULL, NULL, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_context_new(NULL, co, &ctx), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_context_new(F.m, co, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_context_options_new(NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_context_new(F.m, co, &ctx), GEMFA_OK);
    gemfa_context_options_free(co);
    gemfa_context_free(ctx);
    gemfa_context_free(NULL);
}

/* Every allocation of context/session creation and fork can fail cleanly
 * (ASan builds check that nothing leaks). */
Test(session, out_of_memory_paths)
{
    gemfa_session *base = rt_session(F.ctx, 32);
    cr_assert_eq(gemfa_decode(base, F.ids, 5, NULL), GEMFA_OK);
    for (long k = 0; k < 64; k++) {
        gemfa_context *ctx = NULL;
        gemfa_session *s = NULL, *f = NULL;
        gf_alloc_fail_after(k);
        gemfa_status a = gemfa_context_new(F.m, NULL, &ctx);
        gemfa_status b = ctx ? gemfa_session_new(ctx, NULL, &s) : GEMFA_ERR_OUT_OF_MEMORY;
        gemfa_status c = gemfa_session_fork(base, &f);
        gf_alloc_fail_after(-1);
        cr_expect(a == GEMFA_OK || a == GEMFA_ERR_OUT_OF_MEMORY);
        cr_expect(b == GEMFA_OK || b == GEMFA_ERR_OUT_OF_MEMORY);
        cr_expect(c == GEMFA_OK || c == GEMFA_ERR_OUT_OF_MEMORY);
        cr_expect_eq(a != GEMFA_OK, ctx == NULL);
        cr_expect_eq(c != GEMFA_OK, f == NULL);
        gemfa_session_free(f);
        gemfa_session_free(s);
        gemfa_context_free(ctx);
    }
    cr_expect_eq(gemfa_session_n_tokens(base), 5u);
    gemfa_session_free(base);
}
