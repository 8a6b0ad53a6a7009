/* warp_topk.c — temperature, top-p and min-p on the k best logits. */
#include "sampling/fp.h"

#include "sampling/warp.h"

#include <float.h>

#include "core/status.h"
#include "sampling/expneg.h"

float gf_inverse_temperature(float t)
{
    float inv = 1.0f / t;
    return inv <= FLT_MAX ? inv : FLT_MAX;
}

gemfa_status gf_error_no_finite_logit(void)
{
    return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                    "gemfa_sample: no token can be drawn: every logit is -inf or NaN "
                    "after logit bias and penalties");
}

gemfa_status gf_warp_top_k(gemfa_sampler *s, const float *scores, size_t n, gf_choice *out)
{
    size_t k = (size_t)s->top_k;
    /* a buffer of 2k + 256 keeps the filtered scan linear (select.c) */
    size_t cap = 2 * k + 256 < n ? 2 * k + 256 : n;
    gemfa_status st = gf_scratch_reserve((void **)&s->cand, &s->cand_cap, cap, sizeof *s->cand);
    if (st == GEMFA_OK)
        st = gf_scratch_reserve((void **)&s->cand_weight, &s->cand_weight_cap, k,
                                sizeof *s->cand_weight);
    if (st != GEMFA_OK)
        return st;

    size_t m = gf_select_top(scores, n, k, s->cand, cap);
    if (m == 0)
        return gf_error_no_finite_logit();
    gf_cand_sort(s->cand, m);

    /* softmax of (logit - max) / T over the k, in rank order as HF's cumsum */
    float inv_t = gf_inverse_temperature(s->temperature);
    float top = s->cand[0].score;
    float *w = s->cand_weight;
    double z = 0.0;
    for (size_t j = 0; j < m; j++) {
        w[j] = gf_exp_neg((s->cand[j].score - top) * inv_t);
        z += w[j];
    }

    /* top-p: the shortest prefix whose probability reaches top_p */
    size_t keep = m;
    if (s->top_p < 1.0f) {
        double target = (double)s->top_p * z, cum = 0.0;
        for (size_t j = 0; j < m; j++) {
            cum += w[j];
            if (cum >= target) {
                keep = j + 1;
                break;
            }
        }
    }

    /* min-p: probability at least min_p times the top one (whose weight is 1) */
    double total = 0.0;
    for (size_t j = 0; j < m; j++) {
        if (j >= keep || w[j] < s->min_p)
            w[j] = 0.0f;
        total += w[j];
    }

    out->greedy_id = -1;
    out->weight = w;
    out->cand = s->cand;
    out->count = keep;
    out->block_sum = NULL;
    out->total = total;
    return GEMFA_OK;
}
