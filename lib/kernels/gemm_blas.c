/* gemm_blas.c — the portable prompt-batch path: a chunk of weight rows
 * widened to f32 (exact), then one OpenBLAS sgemm for all tokens,
 * writing straight into y (ldc = rows).  Q8 weights are dequantized, so
 * this path keeps f32 activations. */
#include <cblas.h>

#include "kernels/gemm.h"
#include "kernels/linear.h"

int64_t gf_blas_chunk_rows(int64_t cols)
{
    /* about 1 MB of f32 weights per chunk: OpenBLAS wants a wide N, the
     * widened rows should stay in L2 */
    int64_t rows = ((int64_t)1 << 18) / (cols > 0 ? cols : 1);
    rows = rows < 16 ? 16 : rows > 256 ? 256 : rows;
    return rows & ~(int64_t)15;
}

void gf_blas_rows(const gf_matrix *W, const float *x, int64_t n_tokens, int64_t r0, int64_t r1,
                  float *y, float *scratch)
{
    const int64_t K = W->cols, mb = r1 - r0;
    const float *w = scratch;
    if (W->dtype == GF_DTYPE_F32) {
        w = (const float *)W->data + r0 * K;
    } else {
        for (int64_t r = r0; r < r1; r++)
            gf_matrix_row_f32(W, r, scratch + (r - r0) * K);
    }
    /* y[t][r0 + j] = sum_k x[t][k] * w[j][k] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)n_tokens, (blasint)mb,
                (blasint)K, 1.0f, x, (blasint)K, w, (blasint)K, 0.0f, y + r0, (blasint)W->rows);
}
