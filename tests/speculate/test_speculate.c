/* test_speculate.c — gemfa_speculator on the tiny fixtures.
 *  - Greedy: token for token the output of a plain greedy loop (sample,
 *    decode, sample, ...) for k = 1..8 with these drafts: the target's own
 *    model and an oracle function (every draft kept), tiny10-s1 (another
 *    random model with the same 1024 ids), an oracle wrong at every third
 *    position, and two MatFormer sub-models of the target (random weights:
 *    drafts rejected); also with penalties, and up to a full context.
 *  - Sampling: the first two tokens of many runs follow the target's
 *    distribution, worked out from the target's logits with the sampler's
 *    own distribution hook (chi-square, fixed seed), with drafts that are
 *    always rejected (tiny10), always kept (itself) and sometimes kept.
 *  - Hostile input: k out of range, NULL, vocabulary mismatch, a
 *    vocabulary-only draft, a constraint, a buffer too small, a target
 *    changed between steps, draft functions that misbehave; every failed
 *    step leaves the target as it was. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "loader/model.h"
#include "rt_helpers.h"
#include "runtime/session.h"
#include "sampling/sampler.h"
#include "spec_stats.h"

#define TARGET "tiny-gemma3n"
#define OTHER "runtime/tiny10-s1"
#define N_OUT 48

static const int32_t PROMPT[] = {2, 105, 17, 300, 9, 44, 1000, 3};
#define N_PROMPT (sizeof PROMPT / sizeof PROMPT[0])

static gemfa_sampler *greedy_sampler(void)
{
    gemfa_sampler *s = NULL;
    cr_assert_eq(gemfa_sampler_new(NULL, &s), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_temperature(s, 0.0f), GEMFA_OK);
    return s;
}

static gemfa_session *prompted(gemfa_context *ctx, int64_t max_ctx)
{
    gemfa_session *s = rt_session(ctx, max_ctx);
    cr_assert_eq(gemfa_decode(s, PROMPT, N_PROMPT, NULL), GEMFA_OK);
    return s;
}

/* The plain loop (as cli_generate): sample; stop at n_out or when the
 * context is full; else decode the token.  Returns the token count. */
static size_t plain(gemfa_context *ctx, int64_t max_ctx, gemfa_sampler *smp, int32_t *out,
                    size_t n_out)
{
    gemfa_session *s = prompted(ctx, max_ctx);
    size_t n = 0;
    for (;;) {
        const float *lg;
        size_t nv, nh;
        const int32_t *h;
        cr_assert_eq(gemfa_session_logits(s, &lg, &nv), GEMFA_OK);
        cr_assert_eq(gemfa_session_tokens(s, &h, &nh), GEMFA_OK);
        cr_assert_eq(gemfa_sample(smp, lg, nv, h, nh, &out[n]), GEMFA_OK);
        if (++n == n_out || gemfa_session_n_tokens(s) >= gemfa_session_max_context(s))
            break;
        cr_assert_eq(gemfa_decode(s, &out[n - 1], 1, NULL), GEMFA_OK);
    }
    gemfa_session_free(s);
    return n;
}

/* Steps until n_out tokens or CONTEXT_FULL; returns the count (may pass
 * n_out by up to k). */
static size_t speculate(gemfa_speculator *sp, gemfa_sampler *smp, int32_t *out, size_t n_out)
{
    size_t n = 0;
    while (n < n_out) {
        size_t got = 0;
        gemfa_status st = gemfa_speculator_step(sp, smp, out + n, 64, &got);
        if (st == GEMFA_ERR_CONTEXT_FULL)
            break;
        cr_assert_eq(st, GEMFA_OK, "step: %s: %s", gemfa_status_name(st), gemfa_last_error());
        cr_assert(got >= 1 && got <= 33);
        n += got;
    }
    return n;
}

static void expect_same(const char *what, int k, const int32_t *want, const int32_t *got,
                        size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (want[i] != got[i]) {
            cr_expect_eq(got[i], want[i], "%s, k %d: token %zu is %d, plain greedy gave %d",
                         what, k, i, got[i], want[i]);
            return;
        }
}

/* Replays `ids` (the plain continuation after the prompt): a draft that is
 * always right (or, with wrong_every > 0, wrong at every such position). */
typedef struct oracle {
    const int32_t *ids;
    size_t n;
    int wrong_every;
} oracle;

static int oracle_fn(void *user, const int32_t *tokens, size_t n_tokens, int32_t *ids,
                     size_t max)
{
    const oracle *o = user;
    (void)tokens;
    size_t at = n_tokens - N_PROMPT, r = 0;
    cr_assert(n_tokens >= N_PROMPT);
    for (; r < max && at + r < o->n; r++) {
        ids[r] = o->ids[at + r];
        if (o->wrong_every && (at + r) % (size_t)o->wrong_every == 0)
            ids[r] = (ids[r] + 1) % 1024;
    }
    return (int)r;
}

Test(speculate, greedy_equals_plain_for_every_k_and_draft)
{
    gemfa_model *m = rt_load(TARGET, GEMFA_WEIGHTS_AUTO);
    gemfa_model *other = rt_load(OTHER, GEMFA_WEIGHTS_AUTO);
    gemfa_context *ctx = rt_context(m);
    gemfa_sampler *smp = greedy_sampler();
    gemfa_model *sub = NULL, *sub_skip = NULL; /* MatFormer sub-models sharing m's weights */
    cr_assert_eq(gemfa_model_derive_submodel(m, "ffn=64", &sub), GEMFA_OK, "%s",
                 gemfa_last_error());
    cr_assert_eq(gemfa_model_derive_submodel(m, "ffn=32:skip=1,2", &sub_skip), GEMFA_OK, "%s",
                 gemfa_last_error());
    int32_t want[N_OUT], got[N_OUT + 40];
    cr_assert_eq(plain(ctx, 0, smp, want, N_OUT), N_OUT);
    for (int k = 1; k <= 8; k++) {
        oracle o = {want, N_OUT, 0}, bad = {want, N_OUT, 3};
        struct {
            const char *name;
            const gemfa_model *draft;
            oracle *fn;
        } drafts[] = {{"self", m, NULL}, {"oracle", NULL, &o}, {"tiny10", other, NULL},
                      {"oracle wrong every 3rd", NULL, &bad}, {"sub-model ffn=64", sub, NULL},
                      {"sub-model ffn=32:skip=1,2", sub_skip, NULL}};
        for (size_t d = 0; d < sizeof drafts / sizeof drafts[0]; d++) {
            gemfa_session *s = prompted(ctx, 0);
            gemfa_speculator *sp = NULL;
            gemfa_status st = drafts[d].draft
                                  ? gemfa_speculator_new(s, drafts[d].draft, k, &sp)
                                  : gemfa_speculator_new_fn(s, oracle_fn, drafts[d].fn, k, &sp);
            cr_assert_eq(st, GEMFA_OK, "%s", gemfa_last_error());
            size_t n = speculate(sp, smp, got, N_OUT);
            cr_assert_geq(n, N_OUT);
            expect_same(drafts[d].name, k, want, got, N_OUT);
            gemfa_speculator_stats stats;
            cr_assert_eq(gemfa_speculator_get_stats(sp, &stats), GEMFA_OK);
            cr_expect_eq(stats.emitted, n);
            cr_expect_eq(stats.emitted, stats.accepted + stats.steps);
            if (d < 2)
                cr_expect_eq(stats.accepted, stats.drafted, "%s k %d: %llu of %llu kept",
                             drafts[d].name, k, (unsigned long long)stats.accepted,
                             (unsigned long long)stats.drafted);
            else
                cr_expect_lt(stats.accepted, stats.drafted, "%s k %d: every draft kept",
                             drafts[d].name, k);
            if (d == 1) /* an always-right draft: k + 1 tokens per step but the last */
                cr_expect_leq(stats.steps, (uint64_t)((N_OUT + k) / (k + 1) + 1));
            /* flushed, the target holds the prompt and the output, as a
             * plain session that decoded them */
            cr_assert_eq(gemfa_speculator_flush(sp), GEMFA_OK);
            cr_expect_eq(gemfa_session_n_tokens(s), N_PROMPT + n);
            const int32_t *toks;
            size_t nt;
            cr_assert_eq(gemfa_session_tokens(s, &toks, &nt), GEMFA_OK);
            cr_expect_eq(memcmp(toks + N_PROMPT, got, N_OUT * sizeof *got), 0);
            gemfa_speculator_free(sp);
            gemfa_session_free(s);
        }
    }
    gemfa_sampler_free(smp);
    gemfa_context_free(ctx);
    gemfa_model_free(other);
    gemfa_model_free(m); /* before its sub-models: they hold the weights */
    gemfa_model_free(sub);
    gemfa_model_free(sub_skip);
}

/* Penalties see the drafted tokens: the output still equals the plain
 * loop's with the same penalties (which change it). */
Test(speculate, greedy_with_penalties_and_bias)
{
    gemfa_model *m = rt_load(TARGET, GEMFA_WEIGHTS_AUTO);
    gemfa_model *other = rt_load(OTHER, GEMFA_WEIGHTS_AUTO);
    gemfa_context *ctx = rt_context(m);
    gemfa_sampler *smp = greedy_sampler();
    int32_t base[N_OUT], want[N_OUT], got[N_OUT + 40];
    plain(ctx, 0, smp, base, N_OUT);
    cr_assert_eq(gemfa_sampler_set_penalties(smp, 1.5f, 0.3f, 0.2f, 16), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_logit_bias(smp, base[5], -INFINITY), GEMFA_OK);
    plain(ctx, 0, smp, want, N_OUT);
    cr_expect_neq(memcmp(base, want, sizeof base), 0, "penalties changed nothing");
    for (int k = 2; k <= 6; k += 2) {
        const gemfa_model *drafts[] = {m, other};
        for (int d = 0; d < 2; d++) {
            gemfa_session *s = prompted(ctx, 0);
            gemfa_speculator *sp = NULL;
            cr_assert_eq(gemfa_speculator_new(s, drafts[d], k, &sp), GEMFA_OK);
            speculate(sp, smp, got, N_OUT);
            expect_same(d ? "tiny10, penalties" : "self, penalties", k, want, got, N_OUT);
            gemfa_speculator_free(sp);
            gemfa_session_free(s);
        }
    }
    gemfa_sampler_free(smp);
    gemfa_context_free(ctx);
    gemfa_model_free(other);
    gemfa_model_free(m);
}

/* A context that fills up mid-draft: drafts shrink, then CONTEXT_FULL where
 * the plain loop stops, with the same tokens. */
Test(speculate, context_full_mid_draft)
{
    gemfa_model *m = rt_load(TARGET, GEMFA_WEIGHTS_AUTO);
    gemfa_model *other = rt_load(OTHER, GEMFA_WEIGHTS_AUTO);
    gemfa_context *ctx = rt_context(m);
    gemfa_sampler *smp = greedy_sampler();
    for (int64_t extra = 1; extra <= 12; extra += 5) {
        int64_t max_ctx = (int64_t)N_PROMPT + extra;
        int32_t want[64], got[128];
        size_t nw = plain(ctx, max_ctx, smp, want, 64);
        cr_assert_eq(nw, (size_t)extra + 1);
        for (int k = 1; k <= 8; k += 3) {
            for (int d = 0; d < 2; d++) {
                gemfa_session *s = prompted(ctx, max_ctx);
                gemfa_speculator *sp = NULL;
                cr_assert_eq(gemfa_speculator_new(s, d ? other : m, k, &sp), GEMFA_OK);
                size_t n = speculate(sp, smp, got, 64);
                cr_expect_eq(n, nw, "max %lld k %d: %zu tokens, plain %zu",
                             (long long)max_ctx, k, n, nw);
                expect_same("context full", k, want, got, n < nw ? n : nw);
                size_t one;
                cr_expect_eq(gemfa_speculator_step(sp, smp, got, 64, &one),
                             GEMFA_ERR_CONTEXT_FULL);
                cr_expect_eq(gemfa_speculator_flush(sp), GEMFA_ERR_CONTEXT_FULL);
                cr_expect_eq(gemfa_session_n_tokens(s), (size_t)max_ctx);
                gemfa_speculator_free(sp);
                gemfa_session_free(s);
            }
        }
    }
    gemfa_sampler_free(smp);
    gemfa_context_free(ctx);
    gemfa_model_free(other);
    gemfa_model_free(m);
}

/* Sampling: over many runs the first two tokens follow p(t1) p(t2 | t1) of
 * the target under the sampler's pipeline (temperature, top-k, min-p),
 * with a draft that disagrees (tiny10) and one that agrees (itself). */
#define N_RUNS 4000
#define TOPK 4

Test(speculate, sampled_tokens_follow_the_target)
{
    gemfa_model *m = rt_load(TARGET, GEMFA_WEIGHTS_AUTO);
    gemfa_model *other = rt_load(OTHER, GEMFA_WEIGHTS_AUTO);
    gemfa_context *ctx = rt_context(m);
    gemfa_sampler *smp = NULL;
    cr_assert_eq(gemfa_sampler_new(NULL, &smp), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_temperature(smp, 1.5f), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_top_k(smp, TOPK), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_seed(smp, 99), GEMFA_OK);
    const size_t V = 1024;

    /* the exact distribution: p(t1) over the prompt's logits, then
     * p(t2 | t1) after decoding t1, through the sampler's own pipeline */
    gemfa_session *ref = prompted(ctx, 0);
    float *p1 = malloc(V * sizeof *p1), *p2 = malloc(V * sizeof *p2);
    double *joint = calloc(V * V, sizeof *joint);
    int32_t hist[N_PROMPT + 1];
    memcpy(hist, PROMPT, sizeof PROMPT);
    cr_assert_eq(gf_sampler_distribution(smp, ref->logits, V, hist, N_PROMPT, p1), GEMFA_OK);
    for (size_t a = 0; a < V; a++) {
        if (p1[a] <= 0.0f)
            continue;
        int32_t t = (int32_t)a;
        cr_assert_eq(gemfa_session_truncate(ref, N_PROMPT), GEMFA_OK);
        cr_assert_eq(gemfa_decode(ref, &t, 1, NULL), GEMFA_OK);
        hist[N_PROMPT] = t;
        cr_assert_eq(gf_sampler_distribution(smp, ref->logits, V, hist, N_PROMPT + 1, p2),
                     GEMFA_OK);
        for (size_t b = 0; b < V; b++)
            joint[a * V + b] = (double)p1[a] * p2[b];
    }
    gemfa_session_free(ref);

    /* a certain draft that is right only sometimes: p1's likeliest token */
    int32_t best = 0;
    for (size_t a = 1; a < V; a++)
        if (p1[a] > p1[best])
            best = (int32_t)a;
    int32_t fixed[N_OUT];
    for (size_t i = 0; i < N_OUT; i++)
        fixed[i] = best;
    oracle o = {fixed, N_OUT, 0};
    const char *names[] = {"tiny10", "self", "fixed id"};
    for (int d = 0; d < 3; d++) {
        gemfa_session *s = prompted(ctx, 0);
        gemfa_speculator *sp = NULL;
        if (d < 2)
            cr_assert_eq(gemfa_speculator_new(s, d ? m : other, 3, &sp), GEMFA_OK);
        else
            cr_assert_eq(gemfa_speculator_new_fn(s, oracle_fn, &o, 3, &sp), GEMFA_OK);
        long *counts = calloc(V * V, sizeof *counts);
        for (long r = 0; r < N_RUNS; r++) {
            int32_t out[8];
            size_t n = 0, got;
            while (n < 2) {
                cr_assert_eq(gemfa_speculator_step(sp, smp, out + n, 4, &got), GEMFA_OK, "%s",
                             gemfa_last_error());
                n += got;
            }
            counts[(size_t)out[0] * V + (size_t)out[1]]++;
            /* back to the prompt with its logits */
            gemfa_speculator_reset(sp);
            cr_assert_eq(gemfa_session_truncate(s, N_PROMPT - 1), GEMFA_OK);
            cr_assert_eq(gemfa_decode(s, &PROMPT[N_PROMPT - 1], 1, NULL), GEMFA_OK);
        }
        int df = 1;
        double chi = spec_chi_square(counts, joint, V * V, N_RUNS, &df);
        cr_log_info("draft %s: chi2 %.1f, df %d, critical %.1f", names[d], chi, df,
                    spec_critical(df));
        cr_expect(df >= 4, "too few categories (%d)", df);
        cr_expect(chi < spec_critical(df), "draft %s: chi2 %.1f >= %.1f (df %d)", names[d], chi,
                  spec_critical(df), df);
        gemfa_speculator_stats st;
        gemfa_speculator_get_stats(sp, &st);
        cr_log_info("kept %llu of %llu drafts", (unsigned long long)st.accepted,
                    (unsigned long long)st.drafted);
        free(counts);
        gemfa_speculator_free(sp);
        gemfa_session_free(s);
    }
    free(joint);
    free(p1);
    free(p2);
    gemfa_sampler_free(smp);
    gemfa_context_free(ctx);
    gemfa_model_free(other);
    gemfa_model_free(m);
}

static int fn_negative(void *u, const int32_t *t, size_t n, int32_t *ids, size_t max)
{
    (void)u, (void)t, (void)n, (void)ids, (void)max;
    return -1;
}

static int fn_too_many(void *u, const int32_t *t, size_t n, int32_t *ids, size_t max)
{
    (void)u, (void)t, (void)n;
    for (size_t i = 0; i < max; i++)
        ids[i] = 5;
    return (int)max + 1;
}

static int fn_bad_id(void *u, const int32_t *t, size_t n, int32_t *ids, size_t max)
{
    (void)u, (void)t, (void)n, (void)max;
    ids[0] = 1024;
    return 1;
}

/* Target tokens and logits unchanged. */
static void expect_unchanged(gemfa_session *s, size_t n, const float *logits)
{
    cr_expect_eq(gemfa_session_n_tokens(s), n);
    if (logits)
        cr_expect_eq(memcmp(s->logits, logits, 1024 * sizeof(float)), 0);
}

Test(speculate, hostile_arguments)
{
    gemfa_model *m = rt_load(TARGET, GEMFA_WEIGHTS_AUTO);
    gemfa_context *ctx = rt_context(m);
    gemfa_session *s = prompted(ctx, 0);
    gemfa_speculator *sp = NULL;
    const int bad_k[] = {0, -1, GEMFA_SPECULATOR_MAX_K + 1, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof bad_k / sizeof bad_k[0]; i++) {
        cr_expect_eq(gemfa_speculator_new(s, m, bad_k[i], &sp), GEMFA_ERR_INVALID_ARGUMENT);
        cr_expect_eq(gemfa_speculator_new_fn(s, fn_negative, NULL, bad_k[i], &sp),
                     GEMFA_ERR_INVALID_ARGUMENT);
        cr_expect_null(sp);
    }
    cr_expect_eq(gemfa_speculator_new(NULL, m, 4, &sp), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_speculator_new(s, NULL, 4, &sp), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_speculator_new(s, m, 4, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_speculator_new_fn(s, NULL, NULL, 4, &sp), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_null(sp);

    /* a vocabulary-only draft */
    gemfa_model_options *mo = NULL;
    gemfa_model *vocab = NULL;
    cr_assert_eq(gemfa_model_options_new(&mo), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_set_vocab_only(mo, 1), GEMFA_OK);
    cr_assert_eq(gemfa_model_load(rt_data_path(TARGET), mo, &vocab), GEMFA_OK);
    gemfa_model_options_free(mo);
    cr_expect_eq(gemfa_speculator_new(s, vocab, 4, &sp), GEMFA_ERR_NO_WEIGHTS);
    gemfa_model_free(vocab);

    /* another vocabulary: the same fixture told it has fewer ids */
    gemfa_model *small = rt_load(OTHER, GEMFA_WEIGHTS_AUTO);
    small->hp.vocab_size = 1000;
    cr_expect_eq(gemfa_speculator_new(s, small, 4, &sp), GEMFA_ERR_MODEL_MISMATCH);
    cr_expect(strstr(gemfa_last_error(), "1000") != NULL, "%s", gemfa_last_error());
    small->hp.vocab_size = 1024;
    gemfa_model_free(small);
    /* both with tokenizers, other special ids */
    gemfa_model *twin = rt_load(TARGET, GEMFA_WEIGHTS_AUTO);
    twin->bos_id = twin->bos_id + 1;
    cr_expect_eq(gemfa_speculator_new(s, twin, 4, &sp), GEMFA_ERR_MODEL_MISMATCH);
    twin->bos_id = twin->bos_id - 1;
    gemfa_model_free(twin);
    cr_expect_null(sp);

    /* step: NULLs, small buffer, constraint, empty target */
    cr_assert_eq(gemfa_speculator_new(s, m, 4, &sp), GEMFA_OK);
    gemfa_sampler *smp = greedy_sampler();
    int32_t ids[8];
    size_t n = 0;
    float *before = malloc(1024 * sizeof *before);
    memcpy(before, s->logits, 1024 * sizeof *before);
    cr_expect_eq(gemfa_speculator_step(NULL, smp, ids, 8, &n), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_speculator_step(sp, NULL, ids, 8, &n), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_speculator_step(sp, smp, NULL, 8, &n), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_speculator_step(sp, smp, ids, 8, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_speculator_step(sp, smp, ids, 4, &n), GEMFA_ERR_BUFFER_TOO_SMALL);
    cr_expect_eq(n, 5);
    gemfa_constraint *c = NULL;
    cr_assert_eq(gemfa_constraint_new_json(m, NULL, 0, &c), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_constraint(smp, c), GEMFA_OK);
    cr_expect_eq(gemfa_speculator_step(sp, smp, ids, 8, &n), GEMFA_ERR_UNSUPPORTED);
    cr_assert_eq(gemfa_sampler_set_constraint(smp, NULL), GEMFA_OK);
    gemfa_constraint_free(c);
    expect_unchanged(s, N_PROMPT, before);
    cr_expect_eq(gemfa_speculator_set_k(sp, 0), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_speculator_set_k(sp, 33), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_speculator_get_stats(sp, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_speculator_flush(NULL), GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_speculator_reset(NULL);
    gemfa_speculator_free(NULL);

    gemfa_session *empty = rt_session(ctx, 0);
    gemfa_speculator *se = NULL;
    cr_assert_eq(gemfa_speculator_new(empty, m, 2, &se), GEMFA_OK);
    cr_expect_eq(gemfa_speculator_step(se, smp, ids, 8, &n), GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_speculator_free(se);
    gemfa_session_free(empty);

    /* the target changed between steps: refused until reset */
    cr_assert_eq(gemfa_speculator_step(sp, smp, ids, 8, &n), GEMFA_OK);
    size_t nt = gemfa_session_n_tokens(s);
    cr_assert_eq(gemfa_decode(s, PROMPT, 1, NULL), GEMFA_OK);
    cr_expect_eq(gemfa_speculator_step(sp, smp, ids, 8, &n), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_speculator_flush(sp), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_n_tokens(s), nt + 1);
    gemfa_speculator_reset(sp);
    cr_expect_eq(gemfa_speculator_step(sp, smp, ids, 8, &n), GEMFA_OK);
    gemfa_speculator_free(sp);
    gemfa_session_free(s);

    /* misbehaving draft functions: the step fails, nothing moved, and the
     * next good step gives what it would have */
    s = prompted(ctx, 0);
    int32_t want[N_OUT], first[8];
    plain(ctx, 0, smp, want, N_OUT);
    {
        gemfa_draft_fn bad[] = {fn_negative, fn_too_many, fn_bad_id};
        gemfa_status expect[] = {GEMFA_ERR_CANCELLED, GEMFA_ERR_INVALID_ARGUMENT,
                                 GEMFA_ERR_INVALID_TOKEN};
        for (int i = 0; i < 3; i++) {
            cr_assert_eq(gemfa_speculator_new_fn(s, bad[i], NULL, 3, &sp), GEMFA_OK);
            cr_expect_eq(gemfa_speculator_step(sp, smp, ids, 8, &n), expect[i]);
            expect_unchanged(s, N_PROMPT, before);
            gemfa_speculator_free(sp);
        }
    }
    /* after a pending token: a failing step keeps it and the target */
    oracle o = {want, N_OUT, 0};
    cr_assert_eq(gemfa_speculator_new_fn(s, oracle_fn, &o, 3, &sp), GEMFA_OK);
    cr_assert_eq(gemfa_speculator_step(sp, smp, first, 8, &n), GEMFA_OK);
    cr_expect_eq(n, 4);
    expect_same("oracle", 3, want, first, n);
    nt = gemfa_session_n_tokens(s);
    cr_assert_eq(gemfa_sampler_set_logit_bias(smp, 5000, 1.0f), GEMFA_OK); /* id >= V */
    cr_expect_eq(gemfa_speculator_step(sp, smp, ids, 8, &n), GEMFA_ERR_INVALID_TOKEN);
    cr_expect_eq(gemfa_session_n_tokens(s), nt);
    cr_assert_eq(gemfa_sampler_clear_logit_bias(smp), GEMFA_OK);
    cr_assert_eq(gemfa_speculator_step(sp, smp, ids, 8, &n), GEMFA_OK);
    expect_same("oracle after a failed step", 3, want + 4, ids, n);
    gemfa_speculator_free(sp);
    gemfa_session_free(s);

    free(before);
    gemfa_sampler_free(smp);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
}

/* The N-th allocation failing, for every N that creating a speculator and
 * its first two steps make: a clean OUT_OF_MEMORY (nothing else), the
 * target session and the pending token as before, and afterwards the same
 * tokens as a run that never failed. */
Test(speculate, allocation_failure)
{
    gemfa_model *m = rt_load(TARGET, GEMFA_WEIGHTS_AUTO);
    gemfa_model *other = rt_load(OTHER, GEMFA_WEIGHTS_AUTO);
    gemfa_context *ctx = rt_context(m);
    gemfa_sampler *smp = greedy_sampler();
    int32_t want[N_OUT];
    plain(ctx, 0, smp, want, N_OUT);
    int done = 0;
    long fail_at = 0;
    for (; !done && fail_at < 10000; fail_at++) {
        gemfa_session *s = prompted(ctx, 0);
        gemfa_speculator *sp = NULL;
        int32_t ids[8], got[16];
        size_t n = 0, total = 0;
        gf_alloc_fail_after(fail_at);
        gemfa_status st = gemfa_speculator_new(s, other, 3, &sp);
        for (int step = 0; st == GEMFA_OK && step < 2; step++) {
            size_t before = gemfa_session_n_tokens(s);
            st = gemfa_speculator_step(sp, smp, ids, 8, &n);
            if (st == GEMFA_OK) {
                memcpy(got + total, ids, n * sizeof *ids);
                total += n;
            } else {
                cr_expect_eq(gemfa_session_n_tokens(s), before, "fail_at %ld", fail_at);
            }
        }
        gf_alloc_fail_after(-1);
        if (st == GEMFA_OK) {
            done = 1;
        } else {
            cr_expect_eq(st, GEMFA_ERR_OUT_OF_MEMORY, "fail_at %ld: %s: %s", fail_at,
                         gemfa_status_name(st), gemfa_last_error());
            if (!sp)
                cr_expect_eq(gemfa_session_n_tokens(s), N_PROMPT);
        }
        /* with memory back, the speculator (if made) goes on as if nothing failed */
        if (sp) {
            while (total < 8) {
                cr_assert_eq(gemfa_speculator_step(sp, smp, ids, 8, &n), GEMFA_OK,
                             "fail_at %ld: %s", fail_at, gemfa_last_error());
                memcpy(got + total, ids, n * sizeof *ids);
                total += n;
            }
            expect_same("after an allocation failure", 3, want, got, 8);
        }
        gemfa_speculator_free(sp);
        gemfa_session_free(s);
    }
    cr_expect(done, "never succeeded");
    cr_expect_gt(fail_at, 5, "too few allocation points (%ld)", fail_at);
    cr_log_info("%ld allocation points", fail_at - 1);
    gemfa_sampler_free(smp);
    gemfa_context_free(ctx);
    gemfa_model_free(other);
    gemfa_model_free(m);
}
