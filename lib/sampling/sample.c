/* sample.c — gemfa_sample: validate, adjust (bias, penalties), warp
 * (temperature, top-k, top-p, min-p), draw.  Also the test hook that
 * returns the final distribution instead of drawing. */
#include "sampling/fp.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "constrain/constraint.h"
#include "core/status.h"
#include "sampling/adjust.h"
#include "sampling/sampler.h"
#include "sampling/warp.h"

gemfa_status gf_scratch_reserve(void **array, size_t *cap, size_t n, size_t size)
{
    if (n <= *cap)
        return GEMFA_OK;
    void *p = gf_malloc(gf_mul_size(n, size));
    if (!p)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY,
                        "gemfa_sample: cannot allocate %zu bytes of scratch", gf_mul_size(n, size));
    gf_free(*array);
    *array = p;
    *cap = n;
    return GEMFA_OK;
}

gemfa_status gf_sampler_prepare(gemfa_sampler *s, const float *logits, size_t n_vocab,
                                const int32_t *history, size_t n_history, gf_choice *out)
{
    if (!s)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_sample: sampler is NULL");
    if (!logits)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_sample: logits is NULL");
    if (n_vocab == 0 || n_vocab > (size_t)INT32_MAX)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_sample: n_vocab is %zu, expected 1 to %d", n_vocab, INT32_MAX);
    if (!history && n_history > 0)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_sample: history is NULL but n_history is %zu", n_history);

    s->allowed = NULL;
    if (s->constraint) {
        if (n_vocab != gf_constraint_n_vocab(s->constraint))
            return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                            "gemfa_sample: n_vocab is %zu but the attached constraint is for a "
                            "vocabulary of %zu", n_vocab, gf_constraint_n_vocab(s->constraint));
        gemfa_status st = gf_constraint_bits(s->constraint, &s->allowed);
        if (st != GEMFA_OK)
            return st;
    }
    gemfa_status st = gf_scratch_reserve((void **)&s->work, &s->work_cap, n_vocab,
                                         sizeof *s->work);
    if (st != GEMFA_OK)
        return st;
    const float *scores;
    st = gf_adjust_logits(s, logits, n_vocab, history, n_history, &scores);
    if (st != GEMFA_OK)
        return st;

    if (s->temperature == 0.0f) {
        /* greedy: the first maximum, as torch.argmax */
        float max = gf_max(scores, n_vocab);
        if (max == -INFINITY)
            return gf_error_no_finite_logit();
        memset(out, 0, sizeof *out);
        out->greedy_id = (int32_t)gf_argmax(scores, n_vocab, max);
        return GEMFA_OK;
    }
    if (s->top_k > 0 && (size_t)s->top_k < n_vocab)
        return gf_warp_top_k(s, scores, n_vocab, out);
    return gf_warp_full(s, scores, n_vocab, out);
}

/* The first positive weight in w[0..n) whose running sum passes target,
 * starting from *cum; n if none (*cum then holds the sum). */
static size_t walk(const float *w, size_t n, double target, double *cum)
{
    for (size_t j = 0; j < n; j++) {
        if (w[j] <= 0.0f)
            continue;
        *cum += w[j];
        if (*cum > target)
            return j;
    }
    return n;
}

int32_t gf_choice_draw(const gf_choice *c, double u)
{
    if (c->greedy_id >= 0)
        return c->greedy_id;
    /* the first weight whose running sum passes u * total, so a weight of
     * 0 is never chosen; whole-vocabulary weights skip blocks by their sums */
    double target = u * c->total, cum = 0.0;
    size_t j = c->count;
    if (c->block_sum) {
        for (size_t b = 0, start = 0; start < c->count; b++, start += GF_DRAW_BLOCK) {
            if (cum + c->block_sum[b] <= target) {
                cum += c->block_sum[b];
                continue;
            }
            size_t len = c->count - start < GF_DRAW_BLOCK ? c->count - start : GF_DRAW_BLOCK;
            size_t at = walk(c->weight + start, len, target, &cum);
            if (at < len) {
                j = start + at;
                break;
            }
        }
    } else {
        j = walk(c->weight, c->count, target, &cum);
    }
    /* rounding left the sum short of the target: take the last positive */
    if (j == c->count)
        for (j = c->count; j-- > 0;)
            if (c->weight[j] > 0.0f)
                break;
    return c->cand ? c->cand[j].id : (int32_t)j;
}

GEMFA_API gemfa_status gemfa_sample(gemfa_sampler *s, const float *logits, size_t n_vocab,
                                    const int32_t *history, size_t n_history, int32_t *id)
{
    if (!id)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_sample: id is NULL");
    gf_choice choice;
    gemfa_status st = gf_sampler_prepare(s, logits, n_vocab, history, n_history, &choice);
    if (st != GEMFA_OK)
        return st;
    /* the generator advances only here, after every check passed, and only
     * when there is something to draw */
    gf_rng rng = s->rng;
    double u = choice.greedy_id >= 0 ? 0.0 : gf_rng_uniform(&rng);
    int32_t pick = gf_choice_draw(&choice, u);
    if (s->constraint) {
        /* the mask made every refused token -inf, so this cannot fail */
        st = gemfa_constraint_accept(s->constraint, pick);
        if (st != GEMFA_OK)
            return gf_error_prefix(GEMFA_ERR_INTERNAL, "gemfa_sample: sampled a refused token");
    }
    s->rng = rng;
    *id = pick;
    return GEMFA_OK;
}

gemfa_status gf_sampler_distribution(gemfa_sampler *s, const float *logits, size_t n_vocab,
                                     const int32_t *history, size_t n_history, float *probs)
{
    if (!probs)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gf_sampler_distribution: probs is NULL");
    gf_choice c;
    gemfa_status st = gf_sampler_prepare(s, logits, n_vocab, history, n_history, &c);
    if (st != GEMFA_OK)
        return st;
    for (size_t i = 0; i < n_vocab; i++)
        probs[i] = 0.0f;
    if (c.greedy_id >= 0) {
        probs[c.greedy_id] = 1.0f;
        return GEMFA_OK;
    }
    for (size_t j = 0; j < c.count; j++) {
        size_t i = c.cand ? (size_t)c.cand[j].id : j;
        probs[i] = (float)(c.weight[j] / c.total);
    }
    return GEMFA_OK;
}
