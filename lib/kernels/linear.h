/* linear.h — the matrix kernels the forward pass calls.  The entry points
 * pick the best kernel for the CPU and the batch size and split rows
 * across the context's threads. */
#ifndef GF_LINEAR_H
#define GF_LINEAR_H

#include <stdint.h>

#include "kernels/threadpool.h"
#include "loader/model.h"

/* y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tokens.
 * x is [n_tokens][W->cols] f32, y is [n_tokens][W->rows] f32 (no aliasing).
 * `pool` may be NULL (run on the calling thread). */
void gf_linear(gf_threadpool *pool, const gf_matrix *W, const float *x, int64_t n_tokens,
               float *y);

/* Row r of W widened to f32 (out has W->cols floats); for embedding lookups. */
void gf_matrix_row_f32(const gf_matrix *W, int64_t r, float *out);

/* Scalar conversions. */
float gf_bf16_to_f32(uint16_t h);
float gf_f16_to_f32(uint16_t h);
uint16_t gf_f32_to_bf16(float f); /* round to nearest even */
uint16_t gf_f32_to_f16(float f);  /* round to nearest even */

#endif
