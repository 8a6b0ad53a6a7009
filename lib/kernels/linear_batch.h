/* linear_batch.h — the batch paths of gf_linear (private to lib/kernels):
 * the own AVX-512 GEMM (gemm_avx512.c) or OpenBLAS (gemm_blas.c), chosen
 * by dtype, batch size and CPU. */
#ifndef GF_LINEAR_BATCH_H
#define GF_LINEAR_BATCH_H

#include <stdint.h>

#include "kernels/linear.h"

/* Computes y[i] = W[i] x through a batch path and returns 0, or returns -1
 * (nothing written) when the row kernels should run instead: batch below
 * the crossover, mixed dtypes, no memory for the packed activations. */
int gf_linear_batch(gf_threadpool *pool, int n_mats, const gf_matrix *const *W, const float *x,
                    int64_t n_tokens, float *const *y);

#endif
