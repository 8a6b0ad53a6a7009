/* adjust.c — logit bias and penalties (see adjust.h). */
#include "sampling/fp.h"

#include "sampling/adjust.h"

#include <math.h>

#include "core/alloc.h"
#include "core/status.h"

static void copy_scores(float *restrict dst, const float *restrict src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = gf_score(src[i]);
}

/* copy_scores with the tokens a constraint refuses at -inf (they stay there:
 * every later change keeps -inf). */
static void copy_allowed(float *restrict dst, const float *restrict src,
                         const uint64_t *allowed, size_t n)
{
    for (size_t w = 0, base = 0; base < n; w++, base += 64) {
        size_t len = n - base < 64 ? n - base : 64;
        uint64_t bits = allowed[w];
        if (bits == ~0ull) {
            copy_scores(dst + base, src + base, len);
        } else if (bits == 0) {
            for (size_t i = 0; i < len; i++)
                dst[base + i] = -INFINITY;
        } else {
            for (size_t i = 0; i < len; i++)
                dst[base + i] = (bits >> i) & 1 ? gf_score(src[base + i]) : -INFINITY;
        }
    }
}

static int penalties_active(const gemfa_sampler *s)
{
    return s->repetition != 1.0f || s->frequency != 0.0f || s->presence != 0.0f;
}

gemfa_status gf_adjust_logits(gemfa_sampler *s, const float *logits, size_t n,
                              const int32_t *history, size_t n_history, const float **scores)
{
    /* Validate everything first: the counting scratch must stay all zero. */
    if (s->n_biases > 0 && (size_t)s->biases[s->n_biases - 1].id >= n)
        return gf_error(GEMFA_ERR_INVALID_TOKEN,
                        "gemfa_sample: a logit bias is set for token %d but n_vocab is %zu",
                        (int)s->biases[s->n_biases - 1].id, n);
    size_t start = n_history, window = 0;
    if (penalties_active(s)) {
        window = s->last_n == 0 || (size_t)s->last_n > n_history ? n_history : (size_t)s->last_n;
        start = n_history - window;
        for (size_t i = start; i < n_history; i++)
            if (history[i] < 0 || (size_t)history[i] >= n)
                return gf_error(GEMFA_ERR_INVALID_TOKEN,
                                "gemfa_sample: history[%zu] = %d is outside the vocabulary "
                                "[0, %zu)", i, (int)history[i], n);
    }
    if (window > 0) {
        if (s->counts_cap < n) {
            /* calloc: the counts start (and always end) at zero */
            uint32_t *counts = gf_calloc(n, sizeof *counts);
            if (!counts)
                return gf_error(GEMFA_ERR_OUT_OF_MEMORY,
                                "gemfa_sample: cannot allocate %zu token counts", n);
            gf_free(s->counts);
            s->counts = counts;
            s->counts_cap = n;
        }
        gemfa_status st = gf_scratch_reserve((void **)&s->distinct, &s->distinct_cap,
                                             window < n ? window : n, sizeof *s->distinct);
        if (st != GEMFA_OK)
            return st;
    }

    if (s->n_biases == 0 && window == 0 && !s->allowed) {
        *scores = logits; /* nothing to change: read in place */
        return GEMFA_OK;
    }
    if (s->allowed)
        copy_allowed(s->work, logits, s->allowed, n);
    else
        copy_scores(s->work, logits, n);
    *scores = s->work;

    for (size_t b = 0; b < s->n_biases; b++) {
        float *x = &s->work[s->biases[b].id];
        *x = gf_score(*x + s->biases[b].bias);
    }

    if (window == 0)
        return GEMFA_OK;
    size_t n_distinct = 0;
    for (size_t i = start; i < n_history; i++)
        if (s->counts[history[i]]++ == 0)
            s->distinct[n_distinct++] = history[i];
    for (size_t d = 0; d < n_distinct; d++) {
        int32_t id = s->distinct[d];
        float count = (float)s->counts[id];
        s->counts[id] = 0;
        float x = s->work[id];
        /* HF's RepetitionPenaltyLogitsProcessor, once per distinct token */
        if (s->repetition != 1.0f)
            x = x < 0.0f ? x * s->repetition : x / s->repetition;
        /* OpenAI: mu - c * frequency - [c > 0] * presence */
        if (s->frequency != 0.0f || s->presence != 0.0f)
            x = x - count * s->frequency - s->presence;
        s->work[id] = gf_score(x);
    }
    return GEMFA_OK;
}
