/* q4_format.c — the Q4 format: the scalar weight quantizer (scale search,
 * q4_format.h), llama.cpp's Q4_0 as a baseline, and rows <-> the
 * interleaved nibble layout. */
#include "kernels/q4_format.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/convert.h"

size_t gf_q4_scales_offset(int64_t rows, int64_t cols)
{
    size_t n = gf_mul_size((size_t)rows, (size_t)cols);
    if (n == SIZE_MAX)
        return SIZE_MAX;
    return (n / 2 + 63) & ~(size_t)63;
}

/* The fixed summation order of the quantizer (one 8-lane f64 vector per 8
 * values: lanes l and l+16, then l and l+8, l+4, l+2, l+1). */
static double tree_sum32(const double *v)
{
    double a[16], b[8];
    for (int l = 0; l < 16; l++)
        a[l] = v[l] + v[l + 16];
    for (int l = 0; l < 8; l++)
        b[l] = a[l] + a[l + 8];
    for (int l = 0; l < 4; l++)
        b[l] = b[l] + b[l + 4];
    for (int l = 0; l < 2; l++)
        b[l] = b[l] + b[l + 2];
    return b[0] + b[1];
}

static double block_error(const float *x, float d, const int8_t *k)
{
    double e2[GF_Q4_BLOCK];
    for (int i = 0; i < GF_Q4_BLOCK; i++) {
        float e = x[i] - d * (float)k[i]; /* d * k is exact (11 x 4 bits) */
        e2[i] = (double)e * (double)e;    /* exact */
    }
    return tree_sum32(e2);
}

/* Codes for scale d (f32 of an f16, nonzero): nearest even, clamped. */
static void codes_for(const float *x, float d, int8_t *k)
{
    for (int i = 0; i < GF_Q4_BLOCK; i++) {
        float v = x[i] / d;
        v = v < -8.0f ? -8.0f : v > 7.0f ? 7.0f : v; /* NaN impossible: x finite, d != 0 */
        k[i] = (int8_t)lrintf(v);
    }
}

/* The block's values with NaN read as 0; returns m, the first of largest |x|. */
static float clean_block(const float *x, float *xc)
{
    float m = 0.0f, amax = 0.0f;
    for (int i = 0; i < GF_Q4_BLOCK; i++) {
        xc[i] = x[i] == x[i] ? x[i] : 0.0f;
        if (fabsf(xc[i]) > amax) {
            amax = fabsf(xc[i]);
            m = xc[i];
        }
    }
    return m;
}

/* Q4_0 as llama.cpp writes it (quantize_row_q4_0_ref): d = m / -8, codes
 * from 1/d, +8.5 and truncation, capped at 15. */
static uint16_t q4_0_block(const float *xc, float m, int8_t *k)
{
    const float d = m / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < GF_Q4_BLOCK; i++) {
        int u = (int)(xc[i] * id + 8.5f);
        k[i] = (int8_t)((u > 15 ? 15 : u) - 8);
    }
    return gf_f32_to_f16(d);
}

static int usable(uint16_t h)
{
    const float d = gf_f16_to_f32(h);
    return d != 0.0f && isfinite(d);
}

void gf_q4_0_quantize_row(const float *x, int64_t cols, int8_t *k, uint16_t *scales)
{
    for (int64_t b = 0; b < cols / GF_Q4_BLOCK; b++) {
        float xc[GF_Q4_BLOCK];
        const float m = clean_block(x + b * GF_Q4_BLOCK, xc);
        if (!isfinite(m) || m == 0.0f) {
            scales[b] = 0;
            memset(k + b * GF_Q4_BLOCK, 0, GF_Q4_BLOCK);
            continue;
        }
        scales[b] = q4_0_block(xc, m, k + b * GF_Q4_BLOCK);
    }
}

void gf_q4_quantize_row(const float *x, int64_t cols, int8_t *k, uint16_t *scales)
{
    for (int64_t b = 0; b < cols / GF_Q4_BLOCK; b++) {
        float xc[GF_Q4_BLOCK];
        int8_t *best = k + b * GF_Q4_BLOCK, cand[GF_Q4_BLOCK];
        const float m = clean_block(x + b * GF_Q4_BLOCK, xc);
        if (!isfinite(m) || m == 0.0f) {
            scales[b] = 0;
            memset(best, 0, GF_Q4_BLOCK);
            continue;
        }
        uint16_t bs = q4_0_block(xc, m, best);
        double be = block_error(xc, gf_f16_to_f32(bs), best);
        for (int j = 0; j < 22; j++) {
            const float s = j < 13 ? -9.0f + 0.25f * (float)j : 6.0f + 0.25f * (float)(j - 13);
            const uint16_t h = gf_f32_to_f16(m / s);
            if (!usable(h))
                continue;
            codes_for(xc, gf_f16_to_f32(h), cand);
            const double e = block_error(xc, gf_f16_to_f32(h), cand);
            if (e < be) {
                be = e;
                bs = h;
                memcpy(best, cand, GF_Q4_BLOCK);
            }
        }
        for (int it = 0; it < 2; it++) {
            double xk[GF_Q4_BLOCK];
            int32_t kk = 0;
            for (int i = 0; i < GF_Q4_BLOCK; i++) {
                xk[i] = (double)xc[i] * (double)best[i]; /* exact */
                kk += best[i] * best[i];
            }
            if (kk == 0)
                break;
            const uint16_t h = gf_f32_to_f16((float)(tree_sum32(xk) / (double)kk));
            if (!usable(h))
                break;
            codes_for(xc, gf_f16_to_f32(h), cand);
            const double e = block_error(xc, gf_f16_to_f32(h), cand);
            if (!(e < be))
                break;
            be = e;
            bs = h;
            memcpy(best, cand, GF_Q4_BLOCK);
        }
        scales[b] = bs;
    }
}

void gf_q4_put_row(uint8_t *data, uint16_t *scales, int64_t rows, int64_t cols, int64_t r,
                   int64_t c0, int64_t n, const int8_t *k, const uint16_t *s)
{
    const int64_t h = gf_q4_group_rows(rows, r - r % GF_Q4_GROUP);
    uint8_t *dst = data + gf_q4_index(rows, cols, r, c0);
    for (int64_t c = 0; c < n; c += 8)
        for (int j = 0; j < 4; j++)
            dst[(c / 8) * 4 * h + j] =
                (uint8_t)((k[c + j] + 8) | ((k[c + 4 + j] + 8) << 4));
    uint16_t *ds = scales + gf_q4_scale_index(rows, cols, r, c0 / GF_Q4_BLOCK);
    for (int64_t b = 0; b < n / GF_Q4_BLOCK; b++)
        ds[b * h] = s[b];
}

void gf_q4_widen_row(const gf_matrix *W, int64_t r, float *out)
{
    const gf_q4_row q = gf_q4_row_of(W, r);
    for (int64_t c = 0; c < W->cols; c++)
        out[c] = gf_f16_to_f32(gf_q4_row_scale(q, c / GF_Q4_BLOCK)) *
                 (float)(gf_q4_row_code(q, c) - 8);
}

void gf_q4_get_row(const gf_matrix *W, int64_t r, int8_t *k, uint16_t *s)
{
    const gf_q4_row row = gf_q4_row_of(W, r);
    if (k)
        for (int64_t c = 0; c < W->cols; c++)
            k[c] = (int8_t)(gf_q4_row_code(row, c) - 8);
    if (s)
        for (int64_t b = 0; b < W->cols / GF_Q4_BLOCK; b++)
            s[b] = gf_q4_row_scale(row, b);
}
