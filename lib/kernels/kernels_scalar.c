/* kernels_scalar.c — the reference kernels: plain C, one dot product per
 * (row, token), and the activation quantizer every level must match
 * bit for bit. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels/convert.h"
#include "kernels/kernels.h"

/* Dot products sum in 16 lanes (column c into lane c % 16), the lanes then
 * added as a tree: the order the SIMD kernels use, and an error that grows
 * with n/16 + 4 roundings instead of n for one running sum (issue 12: one
 * running sum made the scalar level ~4x less accurate than a float32 BLAS
 * evaluation on tiny models).  Plain C all the same. */
#define DOT_LANES 16
static inline float lanes_sum(float *acc)
{
    for (int w = DOT_LANES / 2; w >= 1; w /= 2)
        for (int k = 0; k < w; k++)
            acc[k] += acc[k + w];
    return acc[0];
}

#define DEFINE_ROWS(NAME, ELEM, CONVERT)                                                      \
    static void NAME(const gf_matrix *W, const gf_act *a, int64_t r0, int64_t r1, float *y)   \
    {                                                                                         \
        const int64_t n = W->cols;                                                            \
        for (int64_t r = r0; r < r1; r++) {                                                   \
            const ELEM *w = (const ELEM *)W->data + r * n;                                    \
            for (int64_t t = 0; t < a->n_tokens; t++) {                                       \
                const float *x = a->x + t * n;                                                \
                float acc[DOT_LANES] = {0};                                                   \
                int64_t c = 0;                                                                \
                for (; c + DOT_LANES <= n; c += DOT_LANES)                                    \
                    for (int k = 0; k < DOT_LANES; k++)                                       \
                        acc[k] += CONVERT(w[c + k]) * x[c + k];                               \
                for (; c < n; c++)                                                            \
                    acc[c % DOT_LANES] += CONVERT(w[c]) * x[c];                               \
                y[t * W->rows + r] = lanes_sum(acc);                                          \
            }                                                                                 \
        }                                                                                     \
    }

static inline float as_f32(float v) { return v; }
DEFINE_ROWS(rows_f32, float, as_f32)
DEFINE_ROWS(rows_f16, uint16_t, gf_f16_to_f32)
DEFINE_ROWS(rows_bf16, uint16_t, gf_bf16_to_f32)

/* Integer dot product per block (exact), scaled by d_w * d_x in f32 and
 * added with one rounding (fmaf), block after block: the SIMD kernels do
 * the same operations per row and token, so they agree bit for bit.  The
 * weights are in the interleaved Q8 layout (kernels/q8_format.h): row r's quad
 * j sits 4h bytes after quad j - 1. */
static void rows_q8(const gf_matrix *W, const gf_act *a, int64_t r0, int64_t r1, float *y)
{
    const int64_t n = W->cols, nb = n / GF_Q8_BLOCK;
    for (int64_t r = r0; r < r1; r++) {
        const gf_q8_row w = gf_q8_row_of(W, r);
        for (int64_t t = 0; t < a->n_tokens; t++) {
            const int8_t *q = a->q8.q + t * n;
            const float *d = a->q8.d + t * nb;
            float acc = 0;
            for (int64_t b = 0; b < nb; b++) {
                int32_t isum = 0;
                for (int64_t c = b * GF_Q8_BLOCK; c < (b + 1) * GF_Q8_BLOCK; c++)
                    isum += (int32_t)gf_q8_row_weight(w, c) * q[c];
                acc = fmaf((float)isum, gf_f16_to_f32(gf_q8_row_scale(w, b)) * d[b], acc);
            }
            y[t * W->rows + r] = acc;
        }
    }
}

/* NaN in a block makes its scale NaN (so the output is NaN, not garbage);
 * q of a non-finite product is 0, never an out-of-range float cast. */
static void quantize_q8(const float *x, int64_t n, int8_t *q, float *d, int32_t *corr)
{
    for (int64_t b = 0; b < n / GF_Q8_BLOCK; b++) {
        const float *xb = x + b * GF_Q8_BLOCK;
        float amax = 0;
        for (int c = 0; c < GF_Q8_BLOCK; c++) {
            float v = fabsf(xb[c]);
            if (!(v <= amax) && amax == amax) /* takes NaN, then keeps it */
                amax = v;
        }
        float id = amax > 0 ? 127.0f / amax : 0.0f;
        int32_t sum = 0;
        for (int c = 0; c < GF_Q8_BLOCK; c++) {
            float v = xb[c] * id; /* may round to 127.00001: clamp */
            int32_t qi = v != v ? 0 : (int32_t)lrintf(fminf(fmaxf(v, -127.0f), 127.0f));
            q[b * GF_Q8_BLOCK + c] = (int8_t)qi;
            sum += qi;
        }
        d[b] = amax / 127.0f;
        corr[b * 8] = -128 * sum;
        for (int l = 1; l < 8; l++)
            corr[b * 8 + l] = 0;
    }
}

static void widen_row(const gf_matrix *W, int64_t r, float *out)
{
    const int64_t n = W->cols;
    switch (W->dtype) {
    case GF_DTYPE_F32:
        memcpy(out, (const float *)W->data + r * n, (size_t)n * sizeof(float));
        break;
    case GF_DTYPE_F16: {
        const uint16_t *p = (const uint16_t *)W->data + r * n;
        for (int64_t c = 0; c < n; c++)
            out[c] = gf_f16_to_f32(p[c]);
        break;
    }
    case GF_DTYPE_BF16: {
        const uint16_t *p = (const uint16_t *)W->data + r * n;
        for (int64_t c = 0; c < n; c++)
            out[c] = gf_bf16_to_f32(p[c]);
        break;
    }
    case GF_DTYPE_Q8: {
        const gf_q8_row q = gf_q8_row_of(W, r);
        for (int64_t c = 0; c < n; c++)
            out[c] = gf_f16_to_f32(gf_q8_row_scale(q, c / GF_Q8_BLOCK)) * (float)gf_q8_row_weight(q, c);
        break;
    }
    }
}

static void quantize_weights_q8(const float *x, int64_t n, int8_t *q, uint16_t *scales)
{
    for (int64_t b = 0; b < n / GF_Q8_BLOCK; b++) {
        const float *xb = x + b * GF_Q8_BLOCK;
        int8_t *qb = q + b * GF_Q8_BLOCK;
        float amax = 0.0f;
        for (int i = 0; i < GF_Q8_BLOCK; i++) {
            float v = fabsf(xb[i]);
            amax = v > amax ? v : amax; /* NaN compares false: skipped */
        }
        float d = amax / 127.0f;
        scales[b] = gf_f32_to_f16(d);
        if (!(d > 0.0f && d <= FLT_MAX)) {
            memset(qb, 0, GF_Q8_BLOCK);
            continue;
        }
        for (int i = 0; i < GF_Q8_BLOCK; i++) {
            float v = xb[i] / d;
            v = v == v ? v : 0.0f;
            v = v < -127.0f ? -127.0f : v > 127.0f ? 127.0f : v;
            int32_t t = (int32_t)v; /* toward zero, then half away from zero */
            float frac = v - (float)t;
            t += (frac >= 0.5f) - (frac <= -0.5f);
            qb[i] = (int8_t)t;
        }
    }
}

int64_t gf_bf16_pairs_cols(int64_t cols) { return (cols + 31) / 32 * 32; }

void gf_bf16_pairs(const float *x, int64_t n_tokens, int64_t cols, float *out)
{
    const int64_t np = gf_bf16_pairs_cols(cols);
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t c0 = 0; c0 < np; c0 += 32)
            for (int i = 0; i < 16; i++) {
                int64_t e = c0 + 2 * i, o = e + 1;
                out[t * np + c0 + i] = e < cols ? x[t * cols + e] : 0.0f;
                out[t * np + c0 + 16 + i] = o < cols ? x[t * cols + o] : 0.0f;
            }
}

void gf_kernels_fill_scalar(gf_kernel_table *t)
{
    t->bf16_pairs = 0;
    t->widen_row = widen_row;
    t->quantize_weights_q8 = quantize_weights_q8;
    t->rows[GF_DTYPE_F32] = rows_f32;
    t->rows[GF_DTYPE_F16] = rows_f16;
    t->rows[GF_DTYPE_BF16] = rows_bf16;
    t->rows[GF_DTYPE_Q8] = rows_q8;
    t->quantize_q8 = quantize_q8;
}
