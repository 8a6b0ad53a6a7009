/* sum_exp.h — sum of exp(score - max) over a vocabulary, the normalizer of
 * gemfa_logprobs.  Unlike the sampler's exp pass (weights.h) it keeps no
 * weights and need not give the same bits everywhere (log-probabilities are
 * reported, not drawn from), so the AVX-512 variant uses FMA; every variant
 * sums in double and agrees with the others to about 1e-7 relative. */
#ifndef GF_SUM_EXP_H
#define GF_SUM_EXP_H

#include <stddef.h>

typedef enum gf_sum_exp_variant {
    GF_SUM_EXP_PORTABLE = 0, /* the sampler's exp pass (SSE2/AVX2 or scalar), chunk by chunk */
    GF_SUM_EXP_SCALAR = 1,   /* plain C: the twin the vector variants are tested against */
    GF_SUM_EXP_AVX512 = 2    /* when the CPU has AVX-512F (checked once at run time) */
} gf_sum_exp_variant;

/* The widest variant this build and CPU can run. */
gf_sum_exp_variant gf_sum_exp_best_isa(void);

/* sum over i < n of e^(gf_score(x[i]) - max), in double; max is the largest
 * gf_score of x (finite), so every term is in [0, 1] and the sum >= 1.
 * Terms below e^-87 count as 0. */
double gf_sum_exp(const float *x, size_t n, float max);
/* The same with a given variant, which must be available (for tests). */
double gf_sum_exp_isa(gf_sum_exp_variant isa, const float *x, size_t n, float max);

#endif
