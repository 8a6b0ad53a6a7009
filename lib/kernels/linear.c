/* linear.c — PLACEHOLDER scalar kernels (correct, slow) until the SIMD
 * kernels land (issue 6). */
#include "kernels/linear.h"

#include <string.h>

float gf_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t gf_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffff) > 0x7f800000) /* NaN: keep it a NaN */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float gf_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            u = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000 | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t gf_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t sign = (u >> 16) & 0x8000;
    int32_t exp = (int32_t)((u >> 23) & 0xff);
    uint32_t man = u & 0x7fffff;
    if (exp == 0xff)
        return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    int32_t e = exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10)
            return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
        half++; /* may carry into the exponent, which is correct */
    return (uint16_t)(sign | half);
}

void gf_matrix_row_f32(const gf_matrix *W, int64_t r, float *out)
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
        const int8_t *q = (const int8_t *)W->data + r * n;
        const uint16_t *d = W->scales + r * (n / GF_Q8_BLOCK);
        for (int64_t c = 0; c < n; c++)
            out[c] = gf_f16_to_f32(d[c / GF_Q8_BLOCK]) * (float)q[c];
        break;
    }
    }
}

void gf_linear(gf_threadpool *pool, const gf_matrix *W, const float *x, int64_t n_tokens,
               float *y)
{
    (void)pool;
    for (int64_t r = 0; r < W->rows; r++) {
        /* widen one row at a time; placeholder quality */
        for (int64_t t = 0; t < n_tokens; t++) {
            const float *xt = x + t * W->cols;
            double acc = 0;
            for (int64_t c = 0; c < W->cols; c++) {
                float w;
                switch (W->dtype) {
                case GF_DTYPE_F32: w = ((const float *)W->data)[r * W->cols + c]; break;
                case GF_DTYPE_F16: w = gf_f16_to_f32(((const uint16_t *)W->data)[r * W->cols + c]); break;
                case GF_DTYPE_BF16: w = gf_bf16_to_f32(((const uint16_t *)W->data)[r * W->cols + c]); break;
                default:
                    w = gf_f16_to_f32(W->scales[r * (W->cols / GF_Q8_BLOCK) + c / GF_Q8_BLOCK]) *
                        (float)((const int8_t *)W->data)[r * W->cols + c];
                }
                acc += (double)w * xt[c];
            }
            y[t * W->rows + r] = (float)acc;
        }
    }
}
