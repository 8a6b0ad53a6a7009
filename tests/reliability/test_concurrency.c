/* test_concurrency.c — one model shared by many threads.
 *
 *  - threads_share_one_model: N threads, each with its own context and
 *    session (and tokenizer, template, sampler and detokenizer calls on the
 *    shared model), generate greedily; every run equals the single-threaded
 *    run of the same prompt bit for bit.
 *  - sessions_take_turns_on_one_context: several sessions of one context,
 *    decoded step by step in turn (from one thread, then from several
 *    threads handing the context over under a mutex, as gemfa.h allows);
 *    results equal separate runs.
 * Also run under ThreadSanitizer by tests/run_sanitizers.sh. */
#include "rel_criterion.h"
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rel_common.h"

#define N_PROMPTS 3
#define N_WORKERS 6
#define STEPS 6
#define POOL_THREADS 2

static const char *const prompts[N_PROMPTS] = {
    "سلام! حالت چطوره؟",
    "Write a haiku about the sea.",
    "۱۲۳ + ۴۵۶ = ? Explain step by step, please.",
};

static gemfa_model *model;
static rel_run want[N_PROMPTS];

/* The reference: each prompt on its own context and session, one at a time. */
static void reference_runs(void)
{
    for (int p = 0; p < N_PROMPTS; p++) {
        size_t n;
        int32_t *ids = rel_chat_prompt(model, prompts[p], &n);
        gemfa_context *ctx = rel_context(model, POOL_THREADS, NULL, NULL);
        gemfa_session *s = NULL;
        cr_assert_eq(gemfa_session_new(ctx, NULL, &s), GEMFA_OK);
        cr_assert_eq(rel_greedy(s, ids, n, STEPS, &want[p]), GEMFA_OK, "%s", gemfa_last_error());
        gemfa_session_free(s);
        gemfa_context_free(ctx);
        free(ids);
    }
}

static void setup(void)
{
    model = rel_load(GEMFA_WEIGHTS_AUTO);
    reference_runs();
}

static void teardown(void)
{
    for (int p = 0; p < N_PROMPTS; p++)
        rel_run_free(&want[p]);
    gemfa_model_free(model);
}

TestSuite(concurrency, .init = setup, .fini = teardown, .timeout = 240);

typedef struct worker {
    int prompt;
    pthread_t thread;
    char failure[256]; /* empty when everything matched */
} worker;

/* Records a failure message (the first one wins); returns NULL for threads. */
static void *fail_at(char *buf, size_t cap, const char *fmt, ...)
{
    if (buf[0])
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return NULL;
}
#define FAIL(w, ...) fail_at((w)->failure, sizeof (w)->failure, __VA_ARGS__)

/* Text calls on the shared model: render, tokenize, detokenize, stream. */
static void *text_work(worker *w, const int32_t *ids, size_t n)
{
    gemfa_message msg = {"user", prompts[w->prompt], GEMFA_NUL_TERMINATED};
    char buf[1024];
    size_t len = 0;
    if (gemfa_apply_chat_template(model, &msg, 1, 1, buf, sizeof buf, &len) != GEMFA_OK)
        return FAIL(w, "template: %s", gemfa_last_error());
    int32_t again[256];
    size_t n_again = 0;
    if (gemfa_tokenize(model, buf, len, GEMFA_TOKENIZE_PARSE_SPECIAL, again, 256, &n_again) ||
        n_again != n || memcmp(again, ids, n * sizeof *ids))
        return FAIL(w, "tokenize differs from chat_tokenize");
    char text[1024];
    size_t text_len = 0;
    if (gemfa_detokenize(model, ids, n, 0, text, sizeof text, &text_len) != GEMFA_OK ||
        text_len != len || memcmp(text, buf, len))
        return FAIL(w, "detokenize does not give the rendered text back");
    gemfa_detok_stream *ds = NULL;
    if (gemfa_detok_stream_new(model, 0, &ds) != GEMFA_OK)
        return FAIL(w, "stream: %s", gemfa_last_error());
    size_t at = 0;
    for (size_t i = 0; i < n && !w->failure[0]; i++) {
        const char *piece;
        size_t plen;
        if (gemfa_detok_stream_feed(ds, ids[i], &piece, &plen) != GEMFA_OK ||
            at + plen > len || memcmp(buf + at, piece, plen))
            FAIL(w, "stream differs at id %zu", i);
        at += plen;
    }
    gemfa_detok_stream_free(ds);
    return NULL;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    size_t n = 0;
    gemfa_message msg = {"user", prompts[w->prompt], GEMFA_NUL_TERMINATED};
    int32_t ids[256];
    if (gemfa_chat_tokenize(model, &msg, 1, 1, 0, ids, 256, &n) != GEMFA_OK)
        return FAIL(w, "chat_tokenize: %s", gemfa_last_error());
    text_work(w, ids, n);
    if (w->failure[0])
        return NULL;

    gemfa_context_options *o = NULL;
    gemfa_context *ctx = NULL;
    gemfa_session *s = NULL;
    gemfa_sampler *smp = NULL;
    rel_run got;
    memset(&got, 0, sizeof got);
    if (gemfa_context_options_new(&o) || gemfa_context_options_set_threads(o, POOL_THREADS) ||
        gemfa_context_new(model, o, &ctx) || gemfa_session_new(ctx, NULL, &s) ||
        gemfa_sampler_new(model, &smp))
        FAIL(w, "setup: %s", gemfa_last_error());
    else if (rel_greedy(s, ids, n, STEPS, &got) != GEMFA_OK)
        FAIL(w, "decode: %s", gemfa_last_error());
    else if (!rel_run_equal(&got, &want[w->prompt]))
        FAIL(w, "prompt %d: the run differs from the single-threaded one", w->prompt);
    else {
        /* the model's sampler defaults (greedy for the tiny checkpoint) agree */
        const float *lg;
        size_t nv;
        int32_t id = -1;
        gemfa_session_logits(s, &lg, &nv);
        if (gemfa_sample(smp, lg, nv, NULL, 0, &id) != GEMFA_OK)
            FAIL(w, "sample: %s", gemfa_last_error());
    }
    rel_run_free(&got);
    gemfa_sampler_free(smp);
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    gemfa_context_options_free(o);
    return NULL;
}

Test(concurrency, threads_share_one_model)
{
    worker w[N_WORKERS];
    for (int i = 0; i < N_WORKERS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].prompt = i % N_PROMPTS;
        cr_assert_eq(pthread_create(&w[i].thread, NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < N_WORKERS; i++) {
        pthread_join(w[i].thread, NULL);
        cr_expect_eq(w[i].failure[0], '\0', "worker %d: %s", i, w[i].failure);
    }
}

/* Sessions of one context, one step each in turn. */
typedef struct turn_state {
    pthread_mutex_t lock;
    gemfa_context *ctx;
} turn_state;

typedef struct turn_worker {
    turn_state *shared;
    int prompt;
    pthread_t thread;
    rel_run got;
    char failure[256];
} turn_worker;

/* Decodes prompt and STEPS greedy tokens, taking the context's lock for
 * each decode so the sessions take turns on its scratch buffers. */
static void *turn_main(void *arg)
{
    turn_worker *w = arg;
    gemfa_message msg = {"user", prompts[w->prompt], GEMFA_NUL_TERMINATED};
    int32_t ids[256];
    size_t n = 0;
    gemfa_session *s = NULL;
    if (gemfa_chat_tokenize(model, &msg, 1, 1, 0, ids, 256, &n) != GEMFA_OK)
        return FAIL(w, "chat_tokenize: %s", gemfa_last_error());
    pthread_mutex_lock(&w->shared->lock);
    gemfa_status st = gemfa_session_new(w->shared->ctx, NULL, &s);
    if (st == GEMFA_OK)
        st = gemfa_decode(s, ids, n, NULL);
    pthread_mutex_unlock(&w->shared->lock);
    for (size_t i = 0; st == GEMFA_OK && i < STEPS; i++) {
        const float *lg;
        size_t nv;
        pthread_mutex_lock(&w->shared->lock);
        gemfa_session_logits(s, &lg, &nv);
        int32_t id = rel_argmax(lg, nv);
        w->got.ids[w->got.n_ids++] = id;
        st = gemfa_decode(s, &id, 1, NULL);
        if (st == GEMFA_OK && i + 1 == STEPS) {
            w->got.last_logits = malloc(nv * sizeof(float));
            memcpy(w->got.last_logits, lg, nv * sizeof(float));
            w->got.n_vocab = nv;
        }
        pthread_mutex_unlock(&w->shared->lock);
        sched_yield(); /* let the others take a turn */
    }
    if (st != GEMFA_OK)
        FAIL(w, "decode: %s", gemfa_last_error());
    else if (!rel_run_equal(&w->got, &want[w->prompt]))
        FAIL(w, "prompt %d: the run differs from a separate run", w->prompt);
    pthread_mutex_lock(&w->shared->lock);
    gemfa_session_free(s);
    pthread_mutex_unlock(&w->shared->lock);
    return NULL;
}

Test(concurrency, sessions_take_turns_on_one_context)
{
    /* from one thread: step every session in turn */
    gemfa_context *ctx = rel_context(model, POOL_THREADS, NULL, NULL);
    gemfa_session *s[N_PROMPTS];
    rel_run got[N_PROMPTS];
    for (int p = 0; p < N_PROMPTS; p++) {
        size_t n;
        int32_t *ids = rel_chat_prompt(model, prompts[p], &n);
        cr_assert_eq(gemfa_session_new(ctx, NULL, &s[p]), GEMFA_OK);
        cr_assert_eq(gemfa_decode(s[p], ids, n, NULL), GEMFA_OK);
        memset(&got[p], 0, sizeof got[p]);
        free(ids);
    }
    for (int i = 0; i < STEPS; i++)
        for (int p = 0; p < N_PROMPTS; p++) {
            const float *lg;
            size_t nv;
            cr_assert_eq(gemfa_session_logits(s[p], &lg, &nv), GEMFA_OK);
            int32_t id = rel_argmax(lg, nv);
            got[p].ids[got[p].n_ids++] = id;
            cr_assert_eq(gemfa_decode(s[p], &id, 1, &lg), GEMFA_OK);
            if (i + 1 == STEPS) {
                got[p].last_logits = malloc(nv * sizeof(float));
                memcpy(got[p].last_logits, lg, nv * sizeof(float));
                got[p].n_vocab = nv;
            }
        }
    for (int p = 0; p < N_PROMPTS; p++) {
        cr_expect(rel_run_equal(&got[p], &want[p]), "prompt %d: interleaved run differs", p);
        rel_run_free(&got[p]);
        gemfa_session_free(s[p]);
    }

    /* from several threads, handing the context over under a lock */
    turn_state shared = {.ctx = ctx};
    pthread_mutex_init(&shared.lock, NULL);
    turn_worker w[N_PROMPTS * 2];
    for (int i = 0; i < N_PROMPTS * 2; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].shared = &shared;
        w[i].prompt = i % N_PROMPTS;
        cr_assert_eq(pthread_create(&w[i].thread, NULL, turn_main, &w[i]), 0);
    }
    for (int i = 0; i < N_PROMPTS * 2; i++) {
        pthread_join(w[i].thread, NULL);
        cr_expect_eq(w[i].failure[0], '\0', "turn worker %d: %s", i, w[i].failure);
        rel_run_free(&w[i].got);
    }
    pthread_mutex_destroy(&shared.lock);
    gemfa_context_free(ctx);
}
