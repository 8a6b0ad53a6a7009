/* warp.h — HF's warpers (temperature -> top-k -> top-p -> min-p) on the
 * adjusted scores (read through gf_score), ending in a gf_choice for the
 * draw.  Two
 * paths give the same distribution:
 *   warp_topk.c  top-k is on: select the k best, then work on k values;
 *   warp_full.c  top-k is off: weights for the whole vocabulary, top-p
 *                cut found with a histogram instead of a full sort. */
#ifndef GF_WARP_H
#define GF_WARP_H

#include <stddef.h>

#include "sampling/sampler.h"

/* 0 < s->top_k < n.  Errors: INVALID_ARGUMENT (no finite logit),
 * OUT_OF_MEMORY. */
gemfa_status gf_warp_top_k(gemfa_sampler *s, const float *scores, size_t n, gf_choice *out);

/* top_k 0 or >= n.  Writes weights to s->work (scores may be s->work).
 * Errors as gf_warp_top_k. */
gemfa_status gf_warp_full(gemfa_sampler *s, const float *scores, size_t n, gf_choice *out);

/* 1 / temperature, kept finite (a subnormal temperature acts as ~greedy). */
float gf_inverse_temperature(float t);

/* The error for a vocabulary where every logit is -inf after processing. */
gemfa_status gf_error_no_finite_logit(void);

#endif
