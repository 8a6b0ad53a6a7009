/* warp_full.c — temperature, top-p and min-p over the whole vocabulary.
 *
 * Weights e_i = exp((score_i - max) / T) go to s->work (the largest is
 * exactly 1) with their sums by blocks of GF_DRAW_BLOCK ids (weights.c).
 * Top-p keeps the shortest prefix of the ranked list (weight descending,
 * id ascending) holding top_p of the mass.  Two ways to find where it
 * ends, without sorting the vocabulary:
 *  - peaked distributions (the usual case): the prefix lies within the
 *    GF_NUCLEUS_FAST best weights, found by the top-k scan; the draw then
 *    runs over that short list;
 *  - otherwise: a histogram of the mass by the weight's float bits (32
 *    bins per octave) finds the bin where the prefix ends; only that bin
 *    is sorted, and the weights outside the prefix are set to 0.
 * Min-p keeps weights >= min_p (the top weight is 1). */
#include "sampling/fp.h"

#include "sampling/warp.h"

#include <string.h>

#include "core/status.h"
#include "sampling/weights.h"

/* Candidates the fast top-p path looks at. */
#define GF_NUCLEUS_FAST 256

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Histogram bin of a weight in [0, 1]: its float bits >> GF_NUCLEUS_SHIFT. */
static uint32_t weight_bin(float w)
{
    uint32_t bits;
    memcpy(&bits, &w, sizeof bits);
    bits >>= GF_NUCLEUS_SHIFT;
    return bits < GF_NUCLEUS_BINS ? bits : GF_NUCLEUS_BINS - 1;
}

/* The smallest weight in histogram bin b. */
static float bin_floor(uint32_t b)
{
    uint32_t bits = b << GF_NUCLEUS_SHIFT;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Fast path: 1 and out filled when the top-p prefix ends among the
 * GF_NUCLEUS_FAST best weights (everything outside ranks after them, ties
 * included, so it is cut); 0 to fall back. */
static int nucleus_fast(gemfa_sampler *s, size_t n, double target, gf_choice *out)
{
    if (target > GF_NUCLEUS_FAST)
        return 0; /* weights are <= 1: the short list cannot hold the target */
    size_t cap = min_size(4 * GF_NUCLEUS_FAST, n);
    if (gf_scratch_reserve((void **)&s->cand, &s->cand_cap, cap, sizeof *s->cand) != GEMFA_OK ||
        gf_scratch_reserve((void **)&s->cand_weight, &s->cand_weight_cap, GF_NUCLEUS_FAST,
                           sizeof *s->cand_weight) != GEMFA_OK)
        return 0; /* the histogram path needs less memory */
    size_t m = gf_select_top(s->work, n, GF_NUCLEUS_FAST, s->cand, cap);
    double sum = 0.0;
    for (size_t j = 0; j < m; j++)
        sum += s->cand[j].score;
    if (m == GF_NUCLEUS_FAST && sum < target)
        return 0;
    gf_cand_sort(s->cand, m);
    double cum = 0.0;
    size_t keep = 0;
    while (keep < m && cum < target)
        cum += s->cand[keep++].score;
    if (cum < target && m == GF_NUCLEUS_FAST)
        return 0; /* rounding put the end at the edge */
    float *w = s->cand_weight;
    double total = 0.0;
    for (size_t j = 0; j < keep; j++) {
        w[j] = s->cand[j].score >= s->min_p ? s->cand[j].score : 0.0f;
        total += w[j];
    }
    out->greedy_id = -1;
    out->weight = w;
    out->cand = s->cand;
    out->count = keep;
    out->block_sum = NULL;
    out->total = total;
    return 1;
}

/* Histogram path: finds the last kept entry of the ranked list and zeroes
 * the entries tied with it that rank after it (same weight, higher id);
 * *cut then becomes its weight, so "weight >= *cut" is the kept set.
 * *cut = 0 (keep all) when rounding leaves the whole mass needed. */
static gemfa_status nucleus_histogram(gemfa_sampler *s, size_t n, double z, double target,
                                      float *cut)
{
    *cut = 0.0f;
    float *w = s->work;
    double *mass = s->bin_mass;
    uint32_t *count = s->bin_count;
    memset(mass, 0, GF_NUCLEUS_BINS * sizeof *mass);
    memset(count, 0, GF_NUCLEUS_BINS * sizeof *count);

    /* Weights below `skip` add up to less than half of (1 - top_p) of the
     * mass, so the prefix ends above them: a block whose sum is below
     * `skip` is left out.  The others go in whole, each weight to its own
     * bin (a branch per weight would mispredict on flat distributions, and
     * one catch-all bin would serialize the adds). */
    float skip = (float)((1.0 - (double)s->top_p) * z * 0.5 / (double)n);
    for (size_t start = 0, b = 0; start < n; start += GF_DRAW_BLOCK, b++) {
        if (s->block_sum[b] < skip)
            continue;
        size_t end = min_size(start + GF_DRAW_BLOCK, n);
        for (size_t i = start; i < end; i++) {
            uint32_t bin = weight_bin(w[i]);
            mass[bin] += w[i];
            count[bin]++;
        }
    }

    double cum = 0.0;
    uint32_t bin = GF_NUCLEUS_BINS;
    while (bin-- > 0) {
        if (count[bin] > 0 && cum + mass[bin] >= target)
            break;
        cum += mass[bin];
    }
    if (bin == UINT32_MAX)
        return GEMFA_OK;

    gemfa_status st = gf_scratch_reserve((void **)&s->cand, &s->cand_cap, count[bin],
                                         sizeof *s->cand);
    if (st != GEMFA_OK)
        return st;
    float lo = bin_floor(bin);
    size_t m = 0;
    for (size_t start = 0, b = 0; start < n; start += GF_DRAW_BLOCK, b++) {
        if (s->block_sum[b] < lo)
            continue;
        size_t end = min_size(start + GF_DRAW_BLOCK, n);
        for (size_t i = start; i < end; i++)
            if (weight_bin(w[i]) == bin) { /* rarely true */
                s->cand[m].score = w[i];
                s->cand[m].id = (int32_t)i;
                m++;
            }
    }
    if (m == 0) /* cannot happen: the bin was counted from the same weights */
        return GEMFA_OK;
    gf_cand_sort(s->cand, m);
    size_t at = m - 1;
    for (size_t j = 0; j < m; j++) {
        cum += s->cand[j].score;
        if (cum >= target) {
            at = j;
            break;
        }
    }
    for (size_t j = at + 1; j < m && s->cand[j].score == s->cand[at].score; j++)
        w[s->cand[j].id] = 0.0f;
    *cut = s->cand[at].score;
    return GEMFA_OK;
}

gemfa_status gf_warp_full(gemfa_sampler *s, const float *scores, size_t n, gf_choice *out)
{
    size_t n_blocks = (n + GF_DRAW_BLOCK - 1) / GF_DRAW_BLOCK;
    gemfa_status st = gf_scratch_reserve((void **)&s->block_sum, &s->block_sum_cap, n_blocks,
                                         sizeof *s->block_sum);
    if (st != GEMFA_OK)
        return st;
    float max = gf_max(scores, n);
    if (max == -INFINITY)
        return gf_error_no_finite_logit();
    double total = gf_weights_exp(scores, s->work, n, max,
                                  gf_inverse_temperature(s->temperature), s->block_sum);

    float floor = s->min_p;
    int zeroed = 0;
    if (s->top_p < 1.0f) {
        double target = (double)s->top_p * total;
        if (nucleus_fast(s, n, target, out))
            return GEMFA_OK;
        float cut;
        st = nucleus_histogram(s, n, total, target, &cut);
        if (st != GEMFA_OK)
            return st;
        floor = cut > floor ? cut : floor;
        zeroed = 1; /* ties may have been zeroed: block sums need redoing */
    }
    if (floor > 0.0f || zeroed)
        total = gf_weights_floor(s->work, n, floor, s->block_sum);

    out->greedy_id = -1;
    out->weight = s->work;
    out->cand = NULL;
    out->count = n;
    out->block_sum = s->block_sum;
    out->total = total;
    return GEMFA_OK;
}
