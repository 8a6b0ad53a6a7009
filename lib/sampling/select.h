/* select.h — partial selection over a vocabulary of scores: maximum,
 * argmax, the k best, and sorting of candidate lists.
 *
 * Scores are read through gf_score(): NaN counts as -inf and +inf as the
 * largest finite float, so the caller's logits can be read in place.
 * Candidates are ordered totally: a higher score first, and on equal
 * scores the lower id first.  This makes every selection deterministic
 * (top-k returns exactly k tokens even with ties, unlike HF, which keeps
 * every token tied with the k-th). */
#ifndef GF_SELECT_H
#define GF_SELECT_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* A logit as the sampler sees it: NaN -> -inf, +inf -> FLT_MAX.
 * Branch-free so loops using it vectorize. */
static inline float gf_score(float x)
{
    x = x == x ? x : -INFINITY;
    return x > FLT_MAX ? FLT_MAX : x;
}

typedef struct gf_cand {
    float score;
    int32_t id;
} gf_cand;

/* 1 when a ranks before b in the total order. */
static inline int gf_cand_before(gf_cand a, gf_cand b)
{
    return a.score > b.score || (a.score == b.score && a.id < b.id);
}

/* Largest gf_score of w[0..n) (-INFINITY for n == 0 or all NaN/-inf). */
float gf_max(const float *w, size_t n);

/* Lowest index i with gf_score(w[i]) == max, where max is gf_max(w, n)
 * (n if max is -inf): the greedy pick, as torch.argmax takes the first. */
size_t gf_argmax(const float *w, size_t n, float max);

/* The min(k, count of scores > -inf) best entries of w[0..n) in the total
 * order, with their gf_score, written to buf[0..return) in no particular
 * order.  buf holds `cap`
 * entries, where cap > k or cap >= n (cap >= 2k keeps the work linear). */
size_t gf_select_top(const float *w, size_t n, size_t k, gf_cand *buf, size_t cap);

/* How many entries of w[0..n) have lo <= w[i] < hi (no NaN in w). */
size_t gf_count_range(const float *w, size_t n, float lo, float hi);

/* Writes the first (by id) up to `cap` entries of w[0..n) with
 * lo <= w[i] < hi (no NaN in w) to out as (w[i], i); returns how many. */
size_t gf_collect_range(const float *w, size_t n, float lo, float hi, gf_cand *out, size_t cap);

/* Reorders c[0..n) so that c[0..k) are its k best (in any order). */
void gf_cand_partition(gf_cand *c, size_t n, size_t k);

/* Sorts c[0..n) into the total order (best first); O(n log n) worst case. */
void gf_cand_sort(gf_cand *c, size_t n);

#endif
