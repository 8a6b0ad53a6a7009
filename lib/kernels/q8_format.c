/* q8_format.c — the Q8 format: plain rows <-> the interleaved layout (copies
 * go by 4-byte column quads, the unit the layout keeps together) and the
 * scalar weight quantizer. */
#include "kernels/q8_format.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/convert.h"

size_t gf_q8_scales_offset(int64_t rows, int64_t cols)
{
    size_t n = gf_mul_size((size_t)rows, (size_t)cols);
    if (n > SIZE_MAX - 64)
        return SIZE_MAX;
    return (n + 63) & ~(size_t)63;
}

void gf_q8_quantize_row(const float *x, int64_t cols, int8_t *q, uint16_t *scales)
{
    for (int64_t b = 0; b < cols / GF_Q8_BLOCK; b++) {
        const float *xb = x + b * GF_Q8_BLOCK;
        int8_t *qb = q + b * GF_Q8_BLOCK;
        float amax = 0.0f;
        for (int i = 0; i < GF_Q8_BLOCK; i++)
            amax = fmaxf(amax, fabsf(xb[i])); /* fmaxf skips NaN */
        float d = amax / 127.0f;
        scales[b] = gf_f32_to_f16(d);
        if (!(d > 0.0f && isfinite(d))) {
            memset(qb, 0, GF_Q8_BLOCK);
            continue;
        }
        for (int i = 0; i < GF_Q8_BLOCK; i++) {
            float v = xb[i] / d;
            v = v == v ? v : 0.0f; /* NaN weights quantize to 0 */
            v = fminf(fmaxf(v, -127.0f), 127.0f);
            /* roundf (half away from zero), written so it vectorizes:
             * exact for |v| < 2^23 */
            int t = (int)v;
            float frac = v - (float)t;
            t += (frac >= 0.5f) - (frac <= -0.5f);
            qb[i] = (int8_t)t;
        }
    }
}

void gf_q8_put_row(int8_t *data, uint16_t *scales, int64_t rows, int64_t cols, int64_t r,
                   int64_t c0, int64_t n, const int8_t *q, const uint16_t *s)
{
    const int64_t h = gf_q8_group_rows(rows, r - r % GF_Q8_GROUP);
    int8_t *dst = data + gf_q8_index(rows, cols, r, c0);
    for (int64_t c = 0; c < n; c += 4)
        memcpy(dst + (c / 4) * 4 * h, q + c, 4);
    uint16_t *ds = scales + gf_q8_scale_index(rows, cols, r, c0 / GF_Q8_BLOCK);
    for (int64_t b = 0; b < n / GF_Q8_BLOCK; b++)
        ds[b * h] = s[b];
}

void gf_q8_get_row(const gf_matrix *W, int64_t r, int8_t *q, uint16_t *s)
{
    const gf_q8_row row = gf_q8_row_of(W, r);
    if (q)
        for (int64_t c = 0; c < W->cols; c += 4)
            memcpy(q + c, row.q + (c / 4) * 4 * row.h, 4);
    if (s)
        for (int64_t b = 0; b < W->cols / GF_Q8_BLOCK; b++)
            s[b] = gf_q8_row_scale(row, b);
}

void gf_q8_interleave(const int8_t *q, const uint16_t *s, int64_t rows, int64_t cols,
                      int8_t *dst, uint16_t *dst_scales)
{
    const int64_t nb = cols / GF_Q8_BLOCK;
    for (int64_t r = 0; r < rows; r++)
        gf_q8_put_row(dst, dst_scales, rows, cols, r, 0, cols, q + r * cols, s + r * nb);
}
