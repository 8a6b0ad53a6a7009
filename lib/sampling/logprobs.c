/* logprobs.c — gemfa_logprobs: log-softmax of the raw logits for one
 * chosen token and the top n.
 *
 * Three cheap passes over the vocabulary: the maximum (gf_max), the sum of
 * exp(x - max) (sum_exp.c, summed in double: 262k terms in [0, 1] lose
 * nothing that matters in a double), and a filtered scan for the top n
 * (gf_select_top).  The maximum first keeps every exp in [0, 1]; an online
 * one-pass max-and-sum would need a second exp per entry to rescale, which
 * costs more than reading the (cache-resident) logits twice.  No state, no
 * allocation for n <= 32. */
#include "sampling/fp.h"

#include <math.h>
#include <stdint.h>

#include "core/alloc.h"
#include "core/status.h"
#include "gemfa.h"
#include "sampling/select.h"
#include "sampling/sum_exp.h"

/* top_n up to this uses a stack buffer of twice as many candidates. */
#define STACK_TOP 32

static float logprob_of(float score, float max, double lse)
{
    if (score == -INFINITY)
        return -INFINITY;
    return (float)(((double)score - (double)max) - lse);
}

GEMFA_API gemfa_status gemfa_logprobs(const float *logits, size_t n_vocab, int32_t chosen,
                                      float *chosen_logprob, size_t top_n, int32_t *top_ids,
                                      float *top_logprobs, size_t *n_top)
{
    if (!logits)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_logprobs: logits is NULL");
    if (n_vocab == 0 || n_vocab > INT32_MAX)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_logprobs: n_vocab %zu is outside [1, INT32_MAX]", n_vocab);
    if (top_n > 0 && (!top_ids || !top_logprobs || !n_top))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_logprobs: %s is NULL with top_n %zu",
                        !top_ids ? "top_ids" : !top_logprobs ? "top_logprobs" : "n_top", top_n);
    if (chosen_logprob && (chosen < 0 || (size_t)chosen >= n_vocab))
        return gf_error(GEMFA_ERR_INVALID_TOKEN,
                        "gemfa_logprobs: chosen id %d is outside the vocabulary [0, %zu)",
                        chosen, n_vocab);
    float max = gf_max(logits, n_vocab);
    if (max == -INFINITY)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_logprobs: every logit is -inf or NaN");
    size_t k = top_n < n_vocab ? top_n : n_vocab;
    gf_cand stack[2 * STACK_TOP], *cand = stack;
    size_t cap = 2 * STACK_TOP;
    if (k > STACK_TOP) {
        cap = k < n_vocab / 2 ? 2 * k : n_vocab; /* cap >= 2k, or the whole vocabulary */
        cand = gf_malloc(gf_mul_size(cap, sizeof *cand));
        if (!cand)
            return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_logprobs: out of memory");
    }
    double lse = log(gf_sum_exp(logits, n_vocab, max));
    if (chosen_logprob)
        *chosen_logprob = logprob_of(gf_score(logits[chosen]), max, lse);
    if (top_n > 0) {
        size_t got = gf_select_top(logits, n_vocab, k, cand, cap);
        gf_cand_sort(cand, got);
        for (size_t i = 0; i < got; i++) {
            top_ids[i] = cand[i].id;
            top_logprobs[i] = logprob_of(cand[i].score, max, lse);
        }
        *n_top = got;
    }
    if (cand != stack)
        gf_free(cand);
    return GEMFA_OK;
}
