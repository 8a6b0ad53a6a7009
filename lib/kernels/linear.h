/* linear.h — the matrix kernels the forward pass calls.  The entry points
 * pick the best kernel for the CPU (kernels.h) and the batch size and split
 * rows across the context's threads. */
#ifndef GF_LINEAR_H
#define GF_LINEAR_H

#include <stdint.h>

#include "kernels/convert.h"
#include "kernels/threadpool.h"
#include "loader/model.h"

/* y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tokens.
 * x is [n_tokens][W->cols] f32, y is [n_tokens][W->rows] f32 (no aliasing).
 * `pool` may be NULL (run on the calling thread).  Accumulates in f32.
 * Q8 weights multiply activations quantized per block of 32 (int8 with an
 * f32 scale, gf_quantize_row_q8): each product then carries an extra error
 * of at most |w| * d_x / 2.  n_tokens <= 0 does nothing. */
void gf_linear(gf_threadpool *pool, const gf_matrix *W, const float *x, int64_t n_tokens,
               float *y);

#define GF_LINEAR_MAX_MATS 4
/* Several matrices with the same input (q/k/v, gate/up): as gf_linear for
 * each W[i] into y[i], in one pass over the threads, quantizing x once.
 * All W[i]->cols must be equal; 1 <= n_mats <= GF_LINEAR_MAX_MATS. */
void gf_linear_multi(gf_threadpool *pool, int n_mats, const gf_matrix *const *W, const float *x,
                     int64_t n_tokens, float *const *y);

/* Row r of W widened to f32 (out has W->cols floats); for embedding lookups. */
void gf_matrix_row_f32(const gf_matrix *W, int64_t r, float *out);

/* Activation quantization for Q8 dot products: per block of 32 values
 * (n % 32 == 0), d[b] = max|x| / 127 and q = x * 127 / max|x| rounded to
 * nearest even, so |x - d*q| <= d/2.  A block holding NaN gets d = NaN. */
void gf_quantize_row_q8(const float *x, int64_t n, int8_t *q, float *d);

/* Name of the kernel level in use ("scalar", "avx2", "avx512"), for logs
 * and benchmarks. */
const char *gf_kernel_level_in_use(void);

#endif
