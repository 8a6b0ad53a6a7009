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

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

/* mass[bin of w[i]] += w[i] for i < len, in id order.  The bins and the
 * doubles are computed 4 at a time first, which leaves the loop of
 * dependent adds short (weights are <= 1, so no bin passes the last). */
static void add_block_to_histogram(const float *w, size_t len, double *mass)
{
    size_t i = 0;
#if defined(__SSE2__)
    uint32_t bins[GF_DRAW_BLOCK];
    double values[GF_DRAW_BLOCK];
    for (; i + 4 <= len; i += 4) {
        __m128 x = _mm_loadu_ps(w + i);
        _mm_storeu_si128((__m128i *)(bins + i),
                         _mm_srli_epi32(_mm_castps_si128(x), GF_NUCLEUS_SHIFT));
        _mm_storeu_pd(values + i, _mm_cvtps_pd(x));
        _mm_storeu_pd(values + i + 2, _mm_cvtps_pd(_mm_movehl_ps(x, x)));
    }
    for (size_t j = 0; j < i; j++)
        mass[bins[j]] += values[j];
#endif
    for (; i < len; i++)
        mass[weight_bin(w[i])] += w[i];
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
    memset(mass, 0, GF_NUCLEUS_BINS * sizeof *mass);

    /* Weights below `skip` add up to less than half of (1 - top_p) of the
     * mass, so the prefix ends in skip's bin or above.  A block whose sum
     * is below that bin's floor holds no weight of those bins and is left
     * out; the others go in whole, each weight to its own bin (a branch
     * per weight would mispredict on flat distributions, and one catch-all
     * bin would serialize the adds).  So every bin the prefix can end in
     * holds its full mass. */
    float skip = bin_floor(weight_bin((float)((1.0 - (double)s->top_p) * z * 0.5 / (double)n)));
    for (size_t start = 0, b = 0; start < n; start += GF_DRAW_BLOCK, b++) {
        if (s->block_sum[b] < skip)
            continue;
        add_block_to_histogram(w + start, min_size(GF_DRAW_BLOCK, n - start), mass);
    }

    double cum = 0.0;
    uint32_t bin = GF_NUCLEUS_BINS;
    while (bin-- > 0) {
        if (cum + mass[bin] >= target) /* never an empty bin: target > cum */
            break;
        cum += mass[bin];
    }
    if (bin == UINT32_MAX)
        return GEMFA_OK;

    /* the bin holds the weights in [its floor, the next bin's floor) */
    float lo = bin_floor(bin), hi = bin_floor(bin + 1);
    size_t count = gf_count_range(w, n, lo, hi);
    gemfa_status st = gf_scratch_reserve((void **)&s->cand, &s->cand_cap, count,
                                         sizeof *s->cand);
    if (st != GEMFA_OK)
        return st;
    size_t m = gf_collect_range(w, n, lo, hi, s->cand, count);
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
