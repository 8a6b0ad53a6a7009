/* linear.h — the matrix kernels the forward pass calls.  The entry points
 * pick the best kernel for the CPU (kernels.h) and the batch size and split
 * rows across the context's threads. */
#ifndef GF_LINEAR_H
#define GF_LINEAR_H

#include <stdint.h>

#include "kernels/convert.h"
#include "kernels/threadpool.h"
#include "kernels/q4_format.h"
#include "kernels/q8_format.h"
#include "kernels/weights.h"

/* y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tokens.
 * x is [n_tokens][W->cols] f32, y is [n_tokens][W->rows] f32 (no aliasing).
 * `pool` may be NULL (run on the calling thread).  Accumulates in f32.
 * Q8 and Q4 weights multiply activations quantized per block of 32 (int8 with an
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

/* Batches of at least gf_gemm_min_tokens(dtype) tokens go through a batch
 * path: the own GEMM on AVX-512 CPUs, else OpenBLAS sgemm; smaller ones
 * through the row kernels.  The crossovers were measured on this project's
 * machines (docs/performance.md, "Kernels").  The setter (both paths, for
 * tests and benchmarks) is process-wide. */
#define GF_GEMM_MIN_TOKENS_F32 24
#define GF_GEMM_MIN_TOKENS_F16 16
#define GF_GEMM_MIN_TOKENS_BF16 12
#define GF_GEMM_MIN_TOKENS_Q8 192
#define GF_GEMM_MIN_TOKENS_Q4 96 /* the Q8 GEMM on unpacked Q4; no OpenBLAS path */
#define GF_BLAS_MIN_TOKENS_F32 8
#define GF_BLAS_MIN_TOKENS_F16 16
#define GF_BLAS_MIN_TOKENS_BF16 16
#define GF_BLAS_MIN_TOKENS_Q8 96
int64_t gf_gemm_min_tokens(gf_dtype dtype);
void gf_gemm_set_min_tokens(gf_dtype dtype, int64_t n);

/* Which batch path prompt batches take (process-wide; tests, benchmarks):
 * AUTO = the own AVX-512 GEMM where the CPU has it, else OpenBLAS sgemm on
 * widened weight rows; OWN / BLAS force one of them (OWN falls back to
 * the row kernels where unavailable); ROWS = always the row kernels. */
typedef enum gf_gemm_backend {
    GF_GEMM_BACKEND_AUTO = 0,
    GF_GEMM_BACKEND_OWN,
    GF_GEMM_BACKEND_BLAS,
    GF_GEMM_BACKEND_ROWS,
} gf_gemm_backend;
void gf_linear_set_gemm_backend(gf_gemm_backend backend);

/* BF16 weights in prompt batches: by default the GEMM widens the weights
 * to f32 and keeps f32 activations (exact, as every other path).  Allowed
 * (gf_linear_allow_bf16_dot(1), or GEMFA_BF16_DOT=1 in the environment at
 * the first call), it rounds the activations to bf16 and multiplies with
 * vdpbf16ps: about 1.9x faster, relative error of each product up to 2^-8
 * (docs/performance.md); the tiny test models' logits then move by ~0.5,
 * far beyond the golden tolerances, hence off by default.  Process-wide. */
void gf_linear_allow_bf16_dot(int allow);
int gf_linear_bf16_dot_allowed(void);

/* Weight quantization to GF_DTYPE_Q8, per block of 32 (n % 32 == 0):
 * d = max|x| / 127 over the block's non-NaN values (f32), scales[b] = d
 * rounded to f16 (nearest even; inf if it overflows), and, when d is
 * finite and > 0, q = x / d clamped to +-127 and rounded half away from
 * zero (NaN gives 0); otherwise q = 0.  The same results at every kernel
 * level (bit for bit); SIMD where the CPU has it. */
void gf_quantize_weights_q8(const float *x, int64_t n, int8_t *q, uint16_t *scales);

/* Weight quantization to GF_DTYPE_Q4, per block of 32 (n % 32 == 0): the
 * scale search of gf_q4_quantize_row (q4_format.h), codes k in -8..7.  The
 * same results at every kernel level (bit for bit); SIMD where the CPU has
 * it. */
void gf_quantize_weights_q4(const float *x, int64_t n, int8_t *k, uint16_t *scales);

/* Name of the kernel level in use ("scalar", "avx2", "avx512"), for logs
 * and benchmarks. */
const char *gf_kernel_level_in_use(void);

#endif
