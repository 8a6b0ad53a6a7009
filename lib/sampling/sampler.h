/* sampler.h — struct gemfa_sampler: the options set through gemfa.h, the
 * generator, and scratch memory that grows to the largest vocabulary seen
 * and is then reused, so steady-state sampling allocates nothing. */
#ifndef GF_SAMPLER_H
#define GF_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "gemfa.h"
#include "sampling/rng.h"
#include "sampling/select.h"

typedef struct gf_bias {
    int32_t id;
    float bias; /* finite or -INFINITY */
} gf_bias;

/* Bins of the full-vocabulary top-p histogram: a weight's float bits >> 18
 * (exponent and 5 mantissa bits; every weight is in [0, 1]). */
#define GF_NUCLEUS_SHIFT 18
#define GF_NUCLEUS_BINS ((0x3F800000u >> GF_NUCLEUS_SHIFT) + 1)

struct gemfa_sampler {
    /* options */
    float temperature; /* 0 = greedy */
    int32_t top_k;     /* 0 = off */
    float top_p;       /* 1 = off */
    float min_p;       /* 0 = off */
    float repetition;  /* 1 = off */
    float frequency, presence;
    int32_t last_n;    /* 0 = whole history */
    gf_bias *biases;   /* sorted by id, ids unique */
    size_t n_biases, cap_biases;
    gf_rng rng;
    gemfa_constraint *constraint; /* not owned; NULL = none */
    const uint64_t *allowed;      /* during a call: the constraint's mask */

    /* scratch */
    float *work;          /* [work_cap] adjusted logits, then weights */
    size_t work_cap;
    uint32_t *counts;     /* [counts_cap] token counts of the window; all 0 between calls */
    size_t counts_cap;
    int32_t *distinct;    /* [distinct_cap] distinct ids of the window */
    size_t distinct_cap;
    gf_cand *cand;        /* [cand_cap] candidates */
    size_t cand_cap;
    float *cand_weight;   /* [cand_weight_cap] their weights */
    size_t cand_weight_cap;
    double *block_sum;    /* [block_sum_cap] weight sums of GF_DRAW_BLOCK ids */
    size_t block_sum_cap;
    double *bin_mass;     /* [GF_NUCLEUS_BINS] */
};

/* Whole-vocabulary weights are summed by blocks of this many ids, so the
 * draw skips whole blocks. */
#define GF_DRAW_BLOCK 64

/* What the pipeline leaves for the final draw: weights (0 = excluded) of
 * either candidates (cand != NULL: weight[j] belongs to cand[j].id) or the
 * whole vocabulary (cand == NULL: weight[i] belongs to id i). */
typedef struct gf_choice {
    int32_t greedy_id;    /* >= 0: the pick is fixed, no draw (temperature 0) */
    const float *weight;
    const gf_cand *cand;
    size_t count;
    const double *block_sum; /* cand == NULL: sums of weight by GF_DRAW_BLOCK */
    double total;         /* sum of the weights, > 0 */
} gf_choice;

/* Runs every stage but the draw on logits[0..n_vocab) with the sampler's
 * options.  Changes nothing observable in `s` (scratch only).  Errors as
 * gemfa_sample. */
gemfa_status gf_sampler_prepare(gemfa_sampler *s, const float *logits, size_t n_vocab,
                                const int32_t *history, size_t n_history, gf_choice *out);

/* The id the draw u in [0, 1) selects from `c`. */
int32_t gf_choice_draw(const gf_choice *c, double u);

/* Test hook: the final distribution gemfa_sample draws from, written as
 * probs[0..n_vocab) (0 for excluded ids; one-hot when greedy).  Does not
 * advance the generator. */
gemfa_status gf_sampler_distribution(gemfa_sampler *s, const float *logits, size_t n_vocab,
                                     const int32_t *history, size_t n_history, float *probs);

/* Grows a scratch array to hold `n` elements of `size` bytes; the contents
 * are not kept.  Errors: OUT_OF_MEMORY (the old array and *cap stay). */
gemfa_status gf_scratch_reserve(void **array, size_t *cap, size_t n, size_t size);

#endif
