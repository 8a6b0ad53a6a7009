/* weights.h — the two passes over the whole vocabulary that turn scores
 * into sampling weights.  Hand-vectorized for SSE2 (the x86-64 baseline;
 * GCC does not vectorize these double-accumulating loops well) and NEON
 * (the aarch64 baseline) with a
 * scalar twin that performs the same float operations in the same order,
 * so both give the same bits.  Sums use GF_WEIGHT_LANES double
 * accumulators per block of GF_DRAW_BLOCK ids (lane j takes the ids
 * congruent to j), added lane 0 first. */
#ifndef GF_WEIGHTS_H
#define GF_WEIGHTS_H

#include <stddef.h>

#define GF_WEIGHT_LANES 8

/* Instruction sets the exp pass is written for (all give the same bits). */
typedef enum gf_weights_isa {
    GF_WEIGHTS_SCALAR = 0,
    GF_WEIGHTS_SSE2 = 1, /* when compiled for x86 */
    GF_WEIGHTS_AVX2 = 2, /* when the CPU has it (checked once at run time) */
    GF_WEIGHTS_NEON = 3  /* when compiled for aarch64 (values 1-2 then run the scalar twin) */
} gf_weights_isa;

/* The widest variant this build and CPU can run. */
gf_weights_isa gf_weights_best_isa(void);

/* w[i] = gf_exp_neg((gf_score(src[i]) - max) * inv_t) for i < n (src may
 * equal w); block_sum[b] = the sum of block b; returns the sum of the
 * block sums.  max is the largest score, so every weight is in [0, 1].
 * Uses gf_weights_best_isa(). */
double gf_weights_exp(const float *src, float *w, size_t n, float max, float inv_t,
                      double *block_sum);
/* The same with a given variant, which must be <= gf_weights_best_isa()
 * (for tests). */
double gf_weights_exp_isa(gf_weights_isa isa, const float *src, float *w, size_t n, float max,
                          float inv_t, double *block_sum);

/* Sets the weights below `floor` to 0, recomputes block sums, returns the
 * total.  (Memory-bound: SSE2 is enough.) */
double gf_weights_floor(float *w, size_t n, float floor, double *block_sum);
double gf_weights_floor_scalar(float *w, size_t n, float floor, double *block_sum);

#endif
