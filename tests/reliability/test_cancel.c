/* test_cancel.c — the context's cancel callback stops a long decode (a
 * multi-chunk prompt) and the call returns GEMFA_ERR_CANCELLED with the
 * session exactly as before: same tokens, bit-identical logits, and
 * decoding again gives bit for bit what a session that never saw the
 * cancelled call gives.  Cancelled at fixed polls (first chunk, a middle
 * chunk, just before the output) and from another thread while the
 * decode runs; for gemfa_decode, gemfa_decode_all and gemfa_decode_batch. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "rel_common.h"

#define LONG_N 600 /* three chunks of the default 256 rows */
#define PREFIX 20

typedef struct cancel_state {
    atomic_int polls;      /* callback calls so far */
    atomic_int stop_at;    /* cancel from this poll on; -1: never */
    atomic_int stop_now;   /* set by another thread */
} cancel_state;

static int on_poll(void *user)
{
    cancel_state *c = user;
    int n = atomic_fetch_add(&c->polls, 1);
    int at = atomic_load(&c->stop_at);
    return atomic_load(&c->stop_now) || (at >= 0 && n >= at);
}

static gemfa_model *model;
static int32_t ids[PREFIX + LONG_N];
static size_t V;

static void setup(void)
{
    model = rel_load(GEMFA_WEIGHTS_AUTO);
    int64_t v = 0;
    gemfa_model_get(model, GEMFA_PROP_VOCAB_SIZE, &v);
    V = (size_t)v;
    uint32_t x = 12345; /* any valid ids: a fixed pseudo-random sequence */
    for (size_t i = 0; i < PREFIX + LONG_N; i++) {
        x = x * 1103515245u + 12345u;
        ids[i] = (int32_t)((x >> 8) % 1000) + 10;
    }
    ids[0] = 2;
}

static void teardown(void) { gemfa_model_free(model); }

TestSuite(cancel, .init = setup, .fini = teardown, .timeout = 300);

typedef struct snap {
    int32_t *tokens;
    size_t n;
    float *logits;
    size_t mem;
} snap;

static snap take(const gemfa_session *s)
{
    snap x = {0};
    const int32_t *t;
    const float *lg;
    size_t nv;
    cr_assert_eq(gemfa_session_tokens(s, &t, &x.n), GEMFA_OK);
    x.tokens = malloc((x.n + 1) * sizeof *t);
    memcpy(x.tokens, t, x.n * sizeof *t);
    cr_assert_eq(gemfa_session_logits(s, &lg, &nv), GEMFA_OK);
    x.logits = malloc(V * sizeof(float));
    memcpy(x.logits, lg, V * sizeof(float));
    x.mem = gemfa_session_memory_bytes(s);
    return x;
}

static void expect_same(const gemfa_session *s, snap *x, const char *what)
{
    snap y = take(s);
    cr_expect_eq(y.n, x->n, "%s: token count %zu, was %zu", what, y.n, x->n);
    cr_expect(y.n == x->n && !memcmp(y.tokens, x->tokens, x->n * sizeof *x->tokens),
              "%s: tokens changed", what);
    cr_expect(!memcmp(y.logits, x->logits, V * sizeof(float)), "%s: logits changed", what);
    cr_expect_eq(y.mem, x->mem, "%s: memory changed", what);
    free(y.tokens);
    free(y.logits);
}

static void snap_free(snap *x)
{
    free(x->tokens);
    free(x->logits);
}

/* The reference: PREFIX then LONG_N ids on a context that never cancels. */
static float *reference_logits(void)
{
    gemfa_context *ctx = rel_context(model, 2, NULL, NULL);
    gemfa_session *s;
    cr_assert_eq(gemfa_session_new(ctx, NULL, &s), GEMFA_OK);
    cr_assert_eq(gemfa_decode(s, ids, PREFIX, NULL), GEMFA_OK);
    const float *lg;
    cr_assert_eq(gemfa_decode(s, ids + PREFIX, LONG_N, &lg), GEMFA_OK);
    float *out = malloc(V * sizeof(float));
    memcpy(out, lg, V * sizeof(float));
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    return out;
}

Test(cancel, at_fixed_polls_the_session_is_unchanged)
{
    float *want = reference_logits();
    cancel_state c = {0};
    atomic_store(&c.stop_at, -1);
    gemfa_context *ctx = rel_context(model, 2, on_poll, &c);
    gemfa_session *s;
    cr_assert_eq(gemfa_session_new(ctx, NULL, &s), GEMFA_OK);
    cr_assert_eq(gemfa_decode(s, ids, PREFIX, NULL), GEMFA_OK);
    /* how many polls a whole decode of LONG_N makes (on a fork: no change to s) */
    gemfa_session *probe;
    cr_assert_eq(gemfa_session_fork(s, &probe), GEMFA_OK);
    atomic_store(&c.polls, 0);
    cr_assert_eq(gemfa_decode(probe, ids + PREFIX, LONG_N, NULL), GEMFA_OK);
    int total = atomic_load(&c.polls);
    gemfa_session_free(probe);
    cr_assert_gt(total, 3, "a long decode polls the callback (%d polls)", total);

    const int at[] = {0, 1, total / 2, total - 1};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        snap x = take(s);
        atomic_store(&c.polls, 0);
        atomic_store(&c.stop_at, at[i]);
        const float *lg = (const float *)&x; /* must stay untouched */
        cr_expect_eq(gemfa_decode(s, ids + PREFIX, LONG_N, &lg), GEMFA_ERR_CANCELLED,
                     "poll %d of %d", at[i], total);
        cr_expect_eq(lg, (const float *)&x, "logits out-parameter written");
        cr_expect(strstr(gemfa_last_error(), "cancel") != NULL, "message: %s", gemfa_last_error());
        cr_expect_eq(atomic_load(&c.polls), at[i] + 1, "the decode went on polling");
        expect_same(s, &x, "decode");
        /* decode_all and a batch step, cancelled the same way */
        float *all = malloc(LONG_N * V * sizeof(float));
        atomic_store(&c.polls, 0);
        cr_expect_eq(gemfa_decode_all(s, ids + PREFIX, LONG_N, all, LONG_N * V),
                     GEMFA_ERR_CANCELLED);
        expect_same(s, &x, "decode_all");
        free(all);
        gemfa_session *t;
        cr_assert_eq(gemfa_session_new(ctx, NULL, &t), GEMFA_OK);
        gemfa_session *both[2] = {s, t};
        int32_t two[2] = {ids[PREFIX], ids[0]};
        atomic_store(&c.polls, 0);
        atomic_store(&c.stop_at, 0);
        cr_expect_eq(gemfa_decode_batch(ctx, both, two, 2), GEMFA_ERR_CANCELLED);
        expect_same(s, &x, "decode_batch");
        cr_expect_eq(gemfa_session_n_tokens(t), 0u);
        gemfa_session_free(t);
        snap_free(&x);
    }
    /* and now the same decode to the end: as if nothing had been tried */
    atomic_store(&c.stop_at, -1);
    const float *lg;
    cr_assert_eq(gemfa_decode(s, ids + PREFIX, LONG_N, &lg), GEMFA_OK);
    cr_expect(!memcmp(lg, want, V * sizeof(float)), "logits differ from a never-cancelled run");
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    free(want);
}

typedef struct canceller {
    cancel_state *c;
    int after_polls;
} canceller;

static void *cancel_later(void *arg)
{
    canceller *k = arg;
    while (atomic_load(&k->c->polls) < k->after_polls)
        sched_yield();
    atomic_store(&k->c->stop_now, 1);
    return NULL;
}

Test(cancel, from_another_thread_while_decoding)
{
    float *want = reference_logits();
    cancel_state c = {0};
    atomic_store(&c.stop_at, -1);
    gemfa_context *ctx = rel_context(model, 2, on_poll, &c);
    gemfa_session *s;
    cr_assert_eq(gemfa_session_new(ctx, NULL, &s), GEMFA_OK);
    cr_assert_eq(gemfa_decode(s, ids, PREFIX, NULL), GEMFA_OK);
    snap x = take(s);
    canceller k = {&c, 5};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, cancel_later, &k), 0);
    gemfa_status st = gemfa_decode(s, ids + PREFIX, LONG_N, NULL);
    pthread_join(th, NULL);
    cr_expect_eq(st, GEMFA_ERR_CANCELLED, "%s", gemfa_status_name(st));
    expect_same(s, &x, "cancelled from another thread");
    snap_free(&x);
    atomic_store(&c.stop_now, 0);
    const float *lg;
    cr_assert_eq(gemfa_decode(s, ids + PREFIX, LONG_N, &lg), GEMFA_OK);
    cr_expect(!memcmp(lg, want, V * sizeof(float)), "logits differ from a never-cancelled run");
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    free(want);
}
