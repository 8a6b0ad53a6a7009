/* kernel_util.h — helpers shared by the kernel tests: random data, test
 * matrices in every dtype, and a double-precision reference product. */
#ifndef GF_TEST_KERNEL_UTIL_H
#define GF_TEST_KERNEL_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/linear.h"
#include "kernels/q8_format.h"

static uint64_t test_rng_state = 0x853c49e6748fea9bull;

static inline uint32_t test_rand_u32(void)
{
    test_rng_state = test_rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(test_rng_state >> 32);
}

/* uniform in [-1, 1) */
static inline float test_randf(void) { return (float)(test_rand_u32() >> 8) * (1.0f / 8388608.0f) - 1.0f; }

/* An integer in [-k, k]. */
static inline int test_randi(int k) { return (int)(test_rand_u32() % (uint32_t)(2 * k + 1)) - k; }

/* A test matrix that owns its storage.  `w` holds the exact f32 value of
 * every weight as the kernels see it (after rounding to the dtype). */
typedef struct test_matrix {
    gf_matrix m;
    void *data;
    uint16_t *scales;
    float *w; /* [rows][cols] dequantized */
} test_matrix;

/* Fills from `src` (rows*cols floats), rounding to the dtype.  For Q8 the
 * source is quantized per block with scale max|x|/127 rounded to f16. */
static inline void test_matrix_init(test_matrix *t, gf_dtype dt, int64_t rows, int64_t cols,
                                    const float *src)
{
    size_t n = (size_t)(rows * cols);
    memset(t, 0, sizeof *t);
    t->w = malloc(n * sizeof(float) + 4);
    t->m.dtype = dt;
    t->m.rows = rows;
    t->m.cols = cols;
    switch (dt) {
    case GF_DTYPE_F32:
        t->data = malloc(n * 4 + 4);
        memcpy(t->data, src, n * 4);
        memcpy(t->w, src, n * 4);
        break;
    case GF_DTYPE_F16:
    case GF_DTYPE_BF16: {
        uint16_t *p = malloc(n * 2 + 4);
        for (size_t i = 0; i < n; i++) {
            p[i] = dt == GF_DTYPE_F16 ? gf_f32_to_f16(src[i]) : gf_f32_to_bf16(src[i]);
            t->w[i] = dt == GF_DTYPE_F16 ? gf_f16_to_f32(p[i]) : gf_bf16_to_f32(p[i]);
        }
        t->data = p;
        break;
    }
    case GF_DTYPE_Q8: {
        int8_t *q = malloc(n + 4);
        t->scales = malloc(n / 32 * 2 + 4);
        for (size_t b = 0; b < n / 32; b++) {
            float amax = 0;
            for (int c = 0; c < 32; c++)
                amax = fmaxf(amax, fabsf(src[b * 32 + c]));
            uint16_t h = gf_f32_to_f16(amax / 127.0f);
            float d = gf_f16_to_f32(h);
            t->scales[b] = h;
            for (int c = 0; c < 32; c++) {
                float v = d > 0 ? roundf(src[b * 32 + c] / d) : 0;
                v = fminf(fmaxf(v, -127), 127);
                q[b * 32 + c] = (int8_t)v;
                t->w[b * 32 + c] = d * (float)q[b * 32 + c];
            }
        }
        /* the kernels read the interleaved layout (loader/model.h) */
        int8_t *qi = malloc(n + 4);
        uint16_t *si = malloc(n / 32 * 2 + 4);
        gf_q8_interleave(q, t->scales, rows, cols, qi, si);
        free(q);
        free(t->scales);
        t->data = qi;
        t->scales = si;
        break;
    }
    }
    t->m.data = t->data;
    t->m.scales = t->scales;
}

/* Activations for level k's Q8 kernel: x (T tokens of C) quantized per
 * block by k's own quantizer.  Free with test_q8_act_free. */
static inline void test_q8_act_init(const gf_kernel_table *k, const float *x, int64_t T, int64_t C,
                                    gf_act *a)
{
    const int64_t nb = C / 32;
    memset(a, 0, sizeof *a);
    a->x = x;
    a->n_tokens = T;
    a->cols = C;
    a->q8.q = malloc((size_t)(T * C));
    a->q8.d = malloc((size_t)(T * nb) * sizeof(float));
    a->q8.corr = malloc((size_t)(T * nb * 8) * sizeof(int32_t));
    for (int64_t t = 0; t < T; t++)
        k->quantize_q8(x + t * C, C, a->q8.q + t * C, a->q8.d + t * nb, a->q8.corr + t * nb * 8);
}

static inline void test_q8_act_free(gf_act *a)
{
    free(a->q8.q);
    free(a->q8.d);
    free(a->q8.corr);
}

static inline void test_matrix_free(test_matrix *t)
{
    free(t->data);
    free(t->scales);
    free(t->w);
}

/* ref[t][r] = sum_c w[r][c] x[t][c] in double; mag[t][r] = sum_c |w x|. */
static inline void test_reference(const test_matrix *t, const float *x, int64_t n_tokens,
                                  double *ref, double *mag)
{
    const int64_t R = t->m.rows, C = t->m.cols;
    for (int64_t tok = 0; tok < n_tokens; tok++)
        for (int64_t r = 0; r < R; r++) {
            double s = 0, a = 0;
            for (int64_t c = 0; c < C; c++) {
                double p = (double)t->w[r * C + c] * (double)x[tok * C + c];
                s += p;
                a += fabs(p);
            }
            ref[tok * R + r] = s;
            if (mag)
                mag[tok * R + r] = a;
        }
}

/* Higham's bound for a dot product of n terms summed in any order in f32,
 * with or without FMA: |fl - exact| <= gamma_n * sum|w x|,
 * gamma_n = n u / (1 - n u), u = 2^-24. */
static inline double test_gamma(int64_t n)
{
    double nu = (double)n * 0x1p-24;
    return nu / (1 - nu);
}

#endif
