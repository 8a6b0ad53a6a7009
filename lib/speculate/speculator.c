/* speculator.c — gemfa_speculator: draft k tokens (a model with its own
 * context and session, or a caller's function), verify them with one
 * batched pass of the target, keep the accepted prefix plus one target
 * token, roll both caches back (docs/speculative.md). */
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/status.h"
#include "runtime/context.h"
#include "runtime/session.h"
#include "sampling/rng.h"
#include "sampling/sampler.h"
#include "speculate/accept.h"

struct gemfa_speculator {
    gemfa_session *target;
    size_t n_vocab;
    int k;
    /* the draft: a model (dctx/dsess) or a function */
    gemfa_context *dctx;
    gemfa_session *dsess;
    gemfa_draft_fn fn;
    void *fn_user;
    /* the pending token and what the target looked like after the last step */
    int has_pending;
    int32_t pending;
    int64_t n_target;
    int32_t last_target; /* target's last token then (-1 if empty) */
    /* scratch, for `cap_k` draft tokens */
    int cap_k;
    int32_t *hist;   /* [max_context + cap_k + 1]: target tokens, pending, drafts */
    size_t hist_cap;
    float *rows;     /* [(cap_k + 1) * V] target logits */
    float *q;        /* [cap_k * V] draft distributions (model drafts, sampling) */
    float *p;        /* [V] a target distribution */
    gemfa_speculator_stats stats;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static gemfa_status check_k(const char *fn, int k)
{
    if (k < 1 || k > GEMFA_SPECULATOR_MAX_K)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: k is %d, expected 1 to %d", fn, k,
                        GEMFA_SPECULATOR_MAX_K);
    return GEMFA_OK;
}

static gemfa_status alloc_common(gemfa_session *target, int k, gemfa_speculator **sp)
{
    gemfa_speculator *s = gf_calloc(1, sizeof *s);
    if (!s)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_speculator_new: out of memory");
    s->target = target;
    s->n_vocab = (size_t)target->ctx->model->hp.vocab_size;
    s->k = k;
    s->last_target = -1;
    *sp = s;
    return GEMFA_OK;
}

GEMFA_API void gemfa_speculator_free(gemfa_speculator *sp)
{
    if (!sp)
        return;
    gemfa_session_free(sp->dsess);
    gemfa_context_free(sp->dctx);
    gf_free(sp->hist);
    gf_free(sp->rows);
    gf_free(sp->q);
    gf_free(sp->p);
    gf_free(sp);
}

/* The draft must speak the target's token ids. */
static gemfa_status check_vocab(const gemfa_model *t, const gemfa_model *d)
{
    static const struct {
        gemfa_model_prop prop;
        const char *name;
    } same[] = {{GEMFA_PROP_TOKENIZER_SIZE, "tokenizer size"},
                {GEMFA_PROP_BOS_ID, "<bos> id"},
                {GEMFA_PROP_EOS_ID, "end-of-generation id"}};
    int64_t vt = 0, vd = 0, ht = 0, hd = 0;
    gemfa_model_get(t, GEMFA_PROP_VOCAB_SIZE, &vt);
    gemfa_model_get(d, GEMFA_PROP_VOCAB_SIZE, &vd);
    if (vt != vd)
        return gf_error(GEMFA_ERR_MODEL_MISMATCH,
                        "gemfa_speculator_new: the draft's vocabulary has %lld ids, the "
                        "target's %lld", (long long)vd, (long long)vt);
    gemfa_model_get(t, GEMFA_PROP_HAS_TOKENIZER, &ht);
    gemfa_model_get(d, GEMFA_PROP_HAS_TOKENIZER, &hd);
    if (!ht || !hd)
        return GEMFA_OK;
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        gemfa_model_get(t, same[i].prop, &vt);
        gemfa_model_get(d, same[i].prop, &vd);
        if (vt != vd)
            return gf_error(GEMFA_ERR_MODEL_MISMATCH,
                            "gemfa_speculator_new: the draft's %s is %lld, the target's %lld",
                            same[i].name, (long long)vd, (long long)vt);
    }
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_speculator_new(gemfa_session *target, const gemfa_model *draft,
                                            int k, gemfa_speculator **out)
{
    gf_error_clear();
    if (!target || !draft || !out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_speculator_new: %s is NULL",
                        !target ? "target" : !draft ? "draft" : "out");
    gemfa_status st = check_k("gemfa_speculator_new", k);
    if (st != GEMFA_OK)
        return st;
    if (draft->vocab_only)
        return gf_error(GEMFA_ERR_NO_WEIGHTS,
                        "gemfa_speculator_new: the draft model was loaded vocabulary-only");
    if ((st = check_vocab(target->ctx->model, draft)) != GEMFA_OK)
        return st;
    gemfa_speculator *sp = NULL;
    if ((st = alloc_common(target, k, &sp)) != GEMFA_OK)
        return st;
    gemfa_context_options copt = {.n_threads = target->ctx->n_threads,
                                  .cancel = target->ctx->cancel,
                                  .cancel_user = target->ctx->cancel_user};
    int64_t max_ctx = target->max_context;
    if (max_ctx > draft->hp.max_position_embeddings)
        max_ctx = draft->hp.max_position_embeddings; /* drafting stops at the draft's end */
    gemfa_session_options sopt = {.max_context = max_ctx};
    st = gemfa_context_new(draft, &copt, &sp->dctx);
    if (st == GEMFA_OK)
        st = gemfa_session_new(sp->dctx, &sopt, &sp->dsess);
    if (st != GEMFA_OK) {
        gemfa_speculator_free(sp);
        return gf_error_prefix(st, "gemfa_speculator_new: draft");
    }
    *out = sp;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_speculator_new_fn(gemfa_session *target, gemfa_draft_fn fn,
                                               void *user, int k, gemfa_speculator **out)
{
    gf_error_clear();
    if (!target || !fn || !out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_speculator_new_fn: %s is NULL",
                        !target ? "target" : !fn ? "fn" : "out");
    gemfa_status st = check_k("gemfa_speculator_new_fn", k);
    if (st != GEMFA_OK)
        return st;
    gemfa_speculator *sp = NULL;
    if ((st = alloc_common(target, k, &sp)) != GEMFA_OK)
        return st;
    sp->fn = fn;
    sp->fn_user = user;
    *out = sp;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_speculator_set_k(gemfa_speculator *sp, int k)
{
    if (!sp)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_speculator_set_k: sp is NULL");
    gemfa_status st = check_k("gemfa_speculator_set_k", k);
    if (st == GEMFA_OK)
        sp->k = k;
    return st;
}

GEMFA_API void gemfa_speculator_reset(gemfa_speculator *sp)
{
    if (sp)
        sp->has_pending = 0;
}

GEMFA_API gemfa_status gemfa_speculator_get_stats(const gemfa_speculator *sp,
                                                  gemfa_speculator_stats *out)
{
    if (!sp || !out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_speculator_get_stats: %s is NULL",
                        !sp ? "sp" : "out");
    *out = sp->stats;
    return GEMFA_OK;
}

/* INVALID_ARGUMENT when the target moved since the step that left a
 * pending token. */
static gemfa_status check_untouched(const gemfa_speculator *sp, const char *fn)
{
    const gemfa_session *t = sp->target;
    int32_t last = t->n_tokens > 0 ? t->tokens[t->n_tokens - 1] : -1;
    if (sp->has_pending && (t->n_tokens != sp->n_target || last != sp->last_target))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "%s: the target session changed since the last step (%lld tokens, "
                        "expected %lld); call gemfa_speculator_flush or _reset before using the "
                        "session directly", fn, (long long)t->n_tokens, (long long)sp->n_target);
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_speculator_flush(gemfa_speculator *sp)
{
    gf_error_clear();
    if (!sp)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_speculator_flush: sp is NULL");
    if (!sp->has_pending)
        return GEMFA_OK;
    gemfa_status st = check_untouched(sp, "gemfa_speculator_flush");
    if (st == GEMFA_OK)
        st = gemfa_decode(sp->target, &sp->pending, 1, NULL);
    if (st == GEMFA_OK)
        sp->has_pending = 0;
    return st;
}

/* Grows the scratch for k drafts over a target of max_context tokens. */
static gemfa_status reserve(gemfa_speculator *sp, int k, int with_q)
{
    size_t V = sp->n_vocab;
    size_t hist = (size_t)sp->target->max_context + (size_t)k + 2;
    if (k > sp->cap_k || hist > sp->hist_cap || (with_q && !sp->q)) {
        int ck = k > sp->cap_k ? k : sp->cap_k;
        int32_t *h = gf_malloc(gf_mul_size(hist, sizeof *h));
        float *rows = gf_malloc(gf_mul_size(gf_mul_size((size_t)ck + 1, V), sizeof(float)));
        float *p = gf_malloc(gf_mul_size(V, sizeof(float)));
        float *q = with_q ? gf_malloc(gf_mul_size(gf_mul_size((size_t)ck, V), sizeof(float)))
                          : NULL;
        if (!h || !rows || !p || (with_q && !q)) {
            gf_free(h);
            gf_free(rows);
            gf_free(p);
            gf_free(q);
            return gf_error(GEMFA_ERR_OUT_OF_MEMORY,
                            "gemfa_speculator_step: cannot allocate scratch for k = %d", k);
        }
        gf_free(sp->hist);
        gf_free(sp->rows);
        gf_free(sp->p);
        gf_free(sp->q);
        sp->hist = h;
        sp->hist_cap = hist;
        sp->rows = rows;
        sp->p = p;
        sp->q = q;
        sp->cap_k = ck;
    }
    return GEMFA_OK;
}

/* Makes the draft session hold exactly hist[0..n) (n >= 1) with logits:
 * keeps the common prefix, re-decodes the rest (at least the last id). */
static gemfa_status sync_draft(gemfa_speculator *sp, const int32_t *hist, size_t n)
{
    gemfa_session *d = sp->dsess;
    size_t nd = (size_t)d->n_tokens, c = 0;
    while (c < nd && c < n && d->tokens[c] == hist[c])
        c++;
    if (c == n && nd == n && d->has_logits)
        return GEMFA_OK;
    size_t keep = c < n ? c : n - 1;
    gemfa_status st = gemfa_session_truncate(d, keep);
    if (st == GEMFA_OK)
        st = gemfa_decode(d, hist + keep, n - keep, NULL);
    if (st == GEMFA_OK)
        sp->stats.draft_rows += n - keep;
    return st;
}

/* Proposes up to max tokens after hist[0..nh) into hist[nh..); *m their
 * count.  Sampling drafts leave q[i] = the draft's distribution of token i. */
static gemfa_status draft(gemfa_speculator *sp, gemfa_sampler *smp, gf_rng *rng, size_t nh,
                          size_t max, size_t *m)
{
    int32_t *hist = sp->hist;
    *m = 0;
    if (max == 0)
        return GEMFA_OK;
    if (sp->fn) {
        int r = sp->fn(sp->fn_user, hist, nh, hist + nh, max);
        if (r < 0)
            return gf_error(GEMFA_ERR_CANCELLED,
                            "gemfa_speculator_step: the draft function returned %d", r);
        if ((size_t)r > max)
            return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                            "gemfa_speculator_step: the draft function returned %d ids, at most "
                            "%zu were asked for", r, max);
        for (int i = 0; i < r; i++)
            if (hist[nh + i] < 0 || (size_t)hist[nh + i] >= sp->n_vocab)
                return gf_error(GEMFA_ERR_INVALID_TOKEN,
                                "gemfa_speculator_step: the draft function proposed id %d, "
                                "outside the vocabulary of %zu", hist[nh + i], sp->n_vocab);
        *m = (size_t)r;
        return GEMFA_OK;
    }
    gemfa_status st = sync_draft(sp, hist, nh);
    if (st == GEMFA_ERR_CONTEXT_FULL)
        return GEMFA_OK; /* the draft model's context is shorter: no draft */
    if (st != GEMFA_OK)
        return st;
    const size_t V = sp->n_vocab;
    for (size_t i = 0; i < max; i++) {
        const float *logits = sp->dsess->logits;
        int32_t x;
        if (smp->temperature == 0.0f) {
            gf_choice c;
            if ((st = gf_sampler_prepare(smp, logits, V, hist, nh + i, &c)) != GEMFA_OK)
                return st;
            x = c.greedy_id;
        } else {
            float *q = sp->q + i * V;
            if ((st = gf_sampler_distribution(smp, logits, V, hist, nh + i, q)) != GEMFA_OK)
                return st;
            x = gf_spec_draw(q, V, gf_spec_total(q, V), gf_rng_uniform(rng));
        }
        hist[nh + i] = x;
        *m = i + 1;
        if (i + 1 == max)
            break; /* the last draft needs no decode */
        st = gemfa_decode(sp->dsess, &x, 1, NULL);
        if (st == GEMFA_ERR_CONTEXT_FULL)
            break;
        if (st != GEMFA_OK)
            return st;
        sp->stats.draft_rows++;
    }
    return GEMFA_OK;
}

/* Picks a token from target logits `row` (history hist[0..nh)): greedy or a
 * draw from the sampler's distribution. */
static gemfa_status target_pick(gemfa_speculator *sp, gemfa_sampler *smp, gf_rng *rng,
                                const float *row, size_t nh, int32_t *id)
{
    const size_t V = sp->n_vocab;
    gemfa_status st;
    if (smp->temperature == 0.0f) {
        gf_choice c;
        if ((st = gf_sampler_prepare(smp, row, V, sp->hist, nh, &c)) == GEMFA_OK)
            *id = c.greedy_id;
        return st;
    }
    if ((st = gf_sampler_distribution(smp, row, V, sp->hist, nh, sp->p)) == GEMFA_OK)
        *id = gf_spec_draw(sp->p, V, gf_spec_total(sp->p, V), gf_rng_uniform(rng));
    return st;
}

/* Verifies drafts hist[nh..nh+m) against rows[0..m] of target logits; *j
 * the number kept, *t the step's own token. */
static gemfa_status accept(gemfa_speculator *sp, gemfa_sampler *smp, gf_rng *rng, size_t nh,
                           size_t m, size_t *j, int32_t *t)
{
    const size_t V = sp->n_vocab;
    const int32_t *hist = sp->hist;
    gemfa_status st;
    for (size_t i = 0; i < m; i++) {
        const float *row = sp->rows + i * V;
        int32_t x = hist[nh + i];
        if (smp->temperature == 0.0f) {
            int32_t g;
            if ((st = target_pick(sp, smp, rng, row, nh + i, &g)) != GEMFA_OK)
                return st;
            if (g != x) {
                *j = i;
                *t = g;
                return GEMFA_OK;
            }
            continue;
        }
        if ((st = gf_sampler_distribution(smp, row, V, hist, nh + i, sp->p)) != GEMFA_OK)
            return st;
        double u_keep = gf_rng_uniform(rng), u_redraw = gf_rng_uniform(rng);
        int kept;
        int32_t y = gf_spec_verify(sp->p, sp->fn ? NULL : sp->q + i * V, V, x, u_keep, u_redraw,
                                   &kept);
        if (!kept) {
            *j = i;
            *t = y;
            return GEMFA_OK;
        }
    }
    *j = m;
    return target_pick(sp, smp, rng, sp->rows + m * V, nh + m, t);
}

GEMFA_API gemfa_status gemfa_speculator_step(gemfa_speculator *sp, gemfa_sampler *smp,
                                             int32_t *ids, size_t cap, size_t *n)
{
    gf_error_clear();
    if (!sp || !smp || !ids || !n)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_speculator_step: %s is NULL",
                        !sp ? "sp" : !smp ? "sampler" : !ids ? "ids" : "n");
    const size_t k = (size_t)sp->k, V = sp->n_vocab;
    if (cap < k + 1) {
        *n = k + 1;
        return gf_error(GEMFA_ERR_BUFFER_TOO_SMALL,
                        "gemfa_speculator_step: room for %zu ids, a step may return %zu", cap,
                        k + 1);
    }
    if (smp->constraint)
        return gf_error(GEMFA_ERR_UNSUPPORTED,
                        "gemfa_speculator_step: speculative decoding does not support a sampler "
                        "with a constraint attached");
    gemfa_session *tg = sp->target;
    gemfa_status st = check_untouched(sp, "gemfa_speculator_step");
    if (st != GEMFA_OK)
        return st;
    const size_t n0 = (size_t)tg->n_tokens, max_ctx = (size_t)tg->max_context;
    const size_t pend = sp->has_pending ? 1 : 0;
    size_t room = max_ctx - n0;
    if (pend && room == 0)
        return gf_error(GEMFA_ERR_CONTEXT_FULL,
                        "gemfa_speculator_step: the session holds %zu tokens, its maximum; the "
                        "pending token does not fit", n0);
    if (!pend && !tg->has_logits)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_speculator_step: the target session has no logits (decode the "
                        "prompt first)");
    size_t max = room - pend < k ? room - pend : k;
    if ((st = reserve(sp, sp->k, !sp->fn)) != GEMFA_OK)
        return st;

    /* history: the target's tokens and the pending one, then the drafts */
    int32_t *hist = sp->hist;
    memcpy(hist, tg->tokens, n0 * sizeof *hist);
    if (pend)
        hist[n0] = sp->pending;
    const size_t nh = n0 + pend;

    gf_rng rng = smp->rng; /* written back only on success */
    double t0 = now();
    size_t m = 0;
    st = draft(sp, smp, &rng, nh, max, &m);
    double t1 = now();
    sp->stats.draft_seconds += t1 - t0;
    if (st != GEMFA_OK)
        return st;

    /* one target pass over the pending token and the drafts; without a
     * pending token the first row is the target's current logits */
    if (!pend)
        memcpy(sp->rows, tg->logits, V * sizeof(float));
    const size_t nb = pend + m;
    if (nb > 0) {
        st = gemfa_decode_all(tg, hist + n0, nb, sp->rows + (pend ? 0 : V), nb * V);
        if (st != GEMFA_OK) {
            sp->stats.verify_seconds += now() - t1;
            return st;
        }
    }
    size_t j = 0;
    int32_t t = -1;
    st = accept(sp, smp, &rng, nh, m, &j, &t);
    /* keep the pending token and the accepted drafts (O(1): at most k + 1
     * positions back, within the sliding rings) */
    size_t keep = st == GEMFA_OK ? nh + j : n0;
    if ((size_t)tg->n_tokens > keep) {
        gemfa_status tst = gemfa_session_truncate(tg, keep);
        if (st == GEMFA_OK && tst != GEMFA_OK) {
            st = tst;
            if (gemfa_session_truncate(tg, n0) != GEMFA_OK)
                st = gf_error(GEMFA_ERR_INTERNAL, "gemfa_speculator_step: rollback failed");
        }
    }
    sp->stats.verify_seconds += now() - t1;
    if (st != GEMFA_OK)
        return st;

    memcpy(ids, hist + nh, j * sizeof *ids);
    ids[j] = t;
    *n = j + 1;
    smp->rng = rng;
    sp->has_pending = 1;
    sp->pending = t;
    sp->n_target = tg->n_tokens;
    sp->last_target = tg->n_tokens > 0 ? tg->tokens[tg->n_tokens - 1] : -1;
    sp->stats.steps++;
    sp->stats.drafted += m;
    sp->stats.accepted += j;
    sp->stats.emitted += j + 1;
    sp->stats.target_rows += nb;
    return GEMFA_OK;
}
