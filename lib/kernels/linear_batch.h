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

/* AMX-INT8 tiles for Q8 and Q4 prompt batches (gemm_amx.c): used where
 * the CPU has them, the OS grants them (Linux ARCH_REQ_XCOMP_PERM) and the
 * kernel level is avx512, unless forbidden by gf_linear_allow_amx(0) or
 * GEMFA_AMX=0 in the environment at the first call (A/B comparisons; the
 * results are the same bit for bit).  Process-wide. */
void gf_linear_allow_amx(int allow);
int gf_linear_amx_allowed(void);
/* "on", "off (GEMFA_AMX=0)", "off (kernel level below avx512)", "refused
 * by the OS" or "absent": for logs and benchmarks. */
const char *gf_linear_amx_status(void);
/* Crossover from the row kernels to the AMX GEMM (Q8, Q4); also set by
 * gf_gemm_set_min_tokens. */
#define GF_AMX_MIN_TOKENS_Q8 16
#define GF_AMX_MIN_TOKENS_Q4 28
void gf_gemm_set_amx_min_tokens(gf_dtype dtype, int64_t n);

#endif
