/* test_gemm.c — the prompt-batch GEMM kernels (AVX-512 CPUs) through
 * gf_linear, forced on for every batch size, against exact results
 * (integer data) and proven bounds (random data); odd rows, odd k, token
 * counts around the 32-token block. */
#include <criterion/criterion.h>
#include <math.h>

#include "kernel_util.h"
#include "kernels/gemm.h"

static const int64_t rows_list[] = {1, 13, 85, 171};
static const int64_t cols_list[] = {1, 7, 30, 256, 300, 520};
static const int64_t q8_cols_list[] = {32, 96, 256, 288, 544};
static const int64_t tokens_list[] = {1, 5, 8, 31, 32, 33, 70};
#define N_ELEMS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static gf_threadpool *pool;

static void setup(void)
{
    pool = gf_threadpool_new(2);
    for (int dt = 0; dt < 4; dt++)
        gf_gemm_set_min_tokens((gf_dtype)dt, 1);
}

static void teardown(void)
{
    gf_threadpool_free(pool);
    /* (each test binary is one process; the thresholds need no restoring) */
    gf_linear_allow_bf16_dot(0);
    gf_linear_set_gemm_backend(GF_GEMM_BACKEND_AUTO);
}

TestSuite(gemm, .init = setup, .fini = teardown);

static void fill_q8_exact(float *v, int64_t n, float unit)
{
    for (int64_t b = 0; b < n / 32; b++) {
        for (int c = 0; c < 32; c++)
            v[b * 32 + c] = unit * (float)test_randi(4);
        v[b * 32 + test_rand_u32() % 32] = unit * (test_rand_u32() & 1 ? 127.0f : -127.0f);
    }
}

/* Integer data: every product and partial sum is exact in f32 (and the
 * bf16 rounding of small integers is exact), so each kernel must return
 * the exact product. */
Test(gemm, integer_data_is_exact)
{
    /* (without the AVX-512 GEMM, e.g. GEMFA_KERNEL_LEVEL=avx2, this runs the
     * OpenBLAS path: the same bounds hold) */
    for (int dt = 0; dt < 4; dt++)
        for (int bf16dot = 0; bf16dot < 2; bf16dot++) {
            if (bf16dot && dt != GF_DTYPE_BF16)
                continue;
            gf_linear_allow_bf16_dot(bf16dot);
            const int64_t *cl = dt == GF_DTYPE_Q8 ? q8_cols_list : cols_list;
            int ncl = dt == GF_DTYPE_Q8 ? N_ELEMS(q8_cols_list) : N_ELEMS(cols_list);
            for (int ri = 0; ri < N_ELEMS(rows_list); ri++)
                for (int ci = 0; ci < ncl; ci++)
                    for (int ti = 0; ti < N_ELEMS(tokens_list); ti++) {
                        int64_t R = rows_list[ri], C = cl[ci], T = tokens_list[ti];
                        float *src = malloc((size_t)(R * C) * 4), *x = malloc((size_t)(T * C) * 4);
                        if (dt == GF_DTYPE_Q8) {
                            fill_q8_exact(src, R * C, 0.25f);
                            fill_q8_exact(x, T * C, 1.0f);
                        } else {
                            for (int64_t i = 0; i < R * C; i++)
                                src[i] = (float)test_randi(8);
                            for (int64_t i = 0; i < T * C; i++)
                                x[i] = (float)test_randi(8);
                        }
                        test_matrix tm;
                        test_matrix_init(&tm, (gf_dtype)dt, R, C, src);
                        float *y = malloc((size_t)(T * R) * 4);
                        double *ref = malloc((size_t)(T * R) * 8);
                        test_reference(&tm, x, T, ref, NULL);
                        gf_linear(pool, &tm.m, x, T, y);
                        for (int64_t i = 0; i < T * R; i++)
                            cr_assert_eq((double)y[i], ref[i],
                                         "dtype %d (bf16dot %d) %lldx%lld T=%lld: y[%lld]=%g, exact %g",
                                         dt, bf16dot, (long long)R, (long long)C, (long long)T,
                                         (long long)i, y[i], ref[i]);
                        test_matrix_free(&tm);
                        free(src);
                        free(x);
                        free(y);
                        free(ref);
                    }
        }
}

/* Random data, f32 activations (F32 kind): within Higham's bound of the
 * exact product of the stored weights, as the row kernels. */
Test(gemm, random_f32_within_summation_bound)
{
    /* (without the AVX-512 GEMM, e.g. GEMFA_KERNEL_LEVEL=avx2, this runs the
     * OpenBLAS path: the same bounds hold) */
    gf_linear_allow_bf16_dot(0);
    for (int dt = 0; dt < 3; dt++)
        for (int ci = 0; ci < N_ELEMS(cols_list); ci++)
            for (int ti = 0; ti < N_ELEMS(tokens_list); ti++) {
                int64_t R = 29, C = cols_list[ci], T = tokens_list[ti];
                float *src = malloc((size_t)(R * C) * 4), *x = malloc((size_t)(T * C) * 4);
                for (int64_t i = 0; i < R * C; i++)
                    src[i] = test_randf();
                for (int64_t i = 0; i < T * C; i++)
                    x[i] = test_randf();
                test_matrix tm;
                test_matrix_init(&tm, (gf_dtype)dt, R, C, src);
                float *y = malloc((size_t)(T * R) * 4);
                double *ref = malloc((size_t)(T * R) * 8), *mag = malloc((size_t)(T * R) * 8);
                test_reference(&tm, x, T, ref, mag);
                gf_linear(pool, &tm.m, x, T, y);
                for (int64_t i = 0; i < T * R; i++)
                    cr_assert_leq(fabs(y[i] - ref[i]), test_gamma(C) * mag[i], "dtype %d C=%lld T=%lld",
                                  dt, (long long)C, (long long)T);
                test_matrix_free(&tm);
                free(src);
                free(x);
                free(y);
                free(ref);
                free(mag);
            }
}

/* vdpbf16ps: products of two bf16 are exact in f32 and summed in f32
 * (denormals flushed; none here), so against the exact product with the
 * activations rounded to bf16 the bound is gamma_C * sum|w x|; rounding x
 * to bf16 adds at most 2^-8 * sum|w x| against f32 activations. */
Test(gemm, bf16_dot_error_bounds)
{
    if (!gf_gemm_available(GF_GEMM_BF16DOT))
        cr_skip_test("no AVX512-BF16 on this CPU");
    gf_linear_allow_bf16_dot(1);
    for (int ci = 0; ci < N_ELEMS(cols_list); ci++) {
        int64_t R = 37, C = cols_list[ci] + (cols_list[ci] & 1), T = 45;
        float *src = malloc((size_t)(R * C) * 4), *x = malloc((size_t)(T * C) * 4);
        float *xr = malloc((size_t)(T * C) * 4);
        for (int64_t i = 0; i < R * C; i++)
            src[i] = test_randf();
        for (int64_t i = 0; i < T * C; i++) {
            x[i] = test_randf();
            xr[i] = gf_bf16_to_f32(gf_f32_to_bf16(x[i]));
        }
        test_matrix tm;
        test_matrix_init(&tm, GF_DTYPE_BF16, R, C, src);
        float *y = malloc((size_t)(T * R) * 4);
        double *ref = malloc((size_t)(T * R) * 8), *mag = malloc((size_t)(T * R) * 8);
        double *refr = malloc((size_t)(T * R) * 8), *magr = malloc((size_t)(T * R) * 8);
        test_reference(&tm, x, T, ref, mag);
        test_reference(&tm, xr, T, refr, magr);
        gf_linear(pool, &tm.m, x, T, y);
        for (int64_t i = 0; i < T * R; i++) {
            cr_assert_leq(fabs(y[i] - refr[i]), test_gamma(C) * magr[i], "C=%lld", (long long)C);
            cr_assert_leq(fabs(y[i] - ref[i]), (0x1p-8 + 2 * test_gamma(C)) * mag[i]);
        }
        test_matrix_free(&tm);
        free(src);
        free(x);
        free(xr);
        free(y);
        free(ref);
        free(mag);
        free(refr);
        free(magr);
    }
}

/* Q8 GEMM against the Q8 row kernel: the same quantized activations and
 * block integer sums, only the f32 sum over blocks differs in order. */
Test(gemm, q8_matches_row_kernel)
{
    if (!gf_gemm_available(GF_GEMM_Q8))
        cr_skip_test("no AVX512-VNNI on this CPU");
    for (int ci = 0; ci < N_ELEMS(q8_cols_list); ci++)
        for (int ti = 0; ti < N_ELEMS(tokens_list); ti++) {
            int64_t R = 23, C = q8_cols_list[ci], T = tokens_list[ti], nb = C / 32;
            float *src = malloc((size_t)(R * C) * 4), *x = malloc((size_t)(T * C) * 4);
            for (int64_t i = 0; i < R * C; i++)
                src[i] = test_randf() * 0.1f;
            for (int64_t i = 0; i < T * C; i++)
                x[i] = test_randf() * (1 + (i / 32) % 3);
            test_matrix tm;
            test_matrix_init(&tm, GF_DTYPE_Q8, R, C, src);
            float *y = malloc((size_t)(T * R) * 4), *y0 = malloc((size_t)(T * R) * 4);
            gf_linear(pool, &tm.m, x, T, y);
            gf_gemm_set_min_tokens(GF_DTYPE_Q8, 1 << 30);
            gf_linear(pool, &tm.m, x, T, y0);
            gf_gemm_set_min_tokens(GF_DTYPE_Q8, 1);
            for (int64_t t = 0; t < T; t++) {
                int8_t q[544];
                float d[17];
                gf_quantize_row_q8(x + t * C, C, q, d);
                for (int64_t r = 0; r < R; r++) {
                    double scaled = 0;
                    for (int64_t i = 0; i < C; i++)
                        scaled += fabs(tm.w[r * C + i] * q[i]) * d[i / 32];
                    cr_assert_leq(fabs(y[t * R + r] - y0[t * R + r]), 2 * test_gamma(nb + 2) * scaled,
                                  "C=%lld T=%lld: %g vs %g", (long long)C, (long long)T,
                                  y[t * R + r], y0[t * R + r]);
                }
            }
            test_matrix_free(&tm);
            free(src);
            free(x);
            free(y);
            free(y0);
        }
}

/* Several matrices sharing the input, through the GEMM path. */
/* More tokens than one GEMM slice (256): the slices must line up. */
Test(gemm, long_batch_in_slices)
{
    const int64_t R = 50, C = 64, T = 600;
    float *src = malloc(R * C * 4), *x = malloc(T * C * 4), *y = malloc(T * R * 4);
    double *ref = malloc(T * R * 8);
    for (int64_t i = 0; i < R * C; i++)
        src[i] = (float)test_randi(8);
    for (int64_t i = 0; i < T * C; i++)
        x[i] = (float)test_randi(8);
    for (int dt = 0; dt < 3; dt++) {
        test_matrix tm;
        test_matrix_init(&tm, (gf_dtype)dt, R, C, src);
        test_reference(&tm, x, T, ref, NULL);
        gf_linear(pool, &tm.m, x, T, y);
        for (int64_t i = 0; i < T * R; i++)
            cr_assert_eq((double)y[i], ref[i], "dtype %d y[%lld]", dt, (long long)i);
        test_matrix_free(&tm);
    }
    free(src);
    free(x);
    free(y);
    free(ref);
}

Test(gemm, multi_equals_single)
{
    const int64_t C = 256, T = 40;
    for (int dt = 0; dt < 4; dt++) {
        float *src = malloc((size_t)(300 * C) * 4), x[T * C];
        for (int64_t i = 0; i < 300 * C; i++)
            src[i] = test_randf();
        for (int64_t i = 0; i < T * C; i++)
            x[i] = test_randf();
        test_matrix a, b;
        test_matrix_init(&a, (gf_dtype)dt, 100, C, src);
        test_matrix_init(&b, (gf_dtype)dt, 200, C, src + 100 * C);
        float *ya = malloc(T * 100 * 4), *yb = malloc(T * 200 * 4);
        float *za = malloc(T * 100 * 4), *zb = malloc(T * 200 * 4);
        gf_linear(pool, &a.m, x, T, ya);
        gf_linear(pool, &b.m, x, T, yb);
        const gf_matrix *ws[2] = {&a.m, &b.m};
        float *ys[2] = {za, zb};
        gf_linear_multi(pool, 2, ws, x, T, ys);
        cr_assert_arr_eq(ya, za, T * 100 * 4, "dtype %d", dt);
        cr_assert_arr_eq(yb, zb, T * 200 * 4, "dtype %d", dt);
        test_matrix_free(&a);
        test_matrix_free(&b);
        free(src);
        free(ya);
        free(yb);
        free(za);
        free(zb);
    }
}

/* The OpenBLAS path (any CPU): integer data exact, random data within
 * Higham's bound of the exact product of the stored (dequantized) weights
 * with f32 activations, every dtype including Q8. */
Test(gemm, blas_path)
{
    gf_linear_set_gemm_backend(GF_GEMM_BACKEND_BLAS);
    for (int dt = 0; dt < 4; dt++)
        for (int exact = 0; exact < 2; exact++)
            for (int ti = 0; ti < N_ELEMS(tokens_list); ti++) {
                int64_t R = 301, C = dt == GF_DTYPE_Q8 ? 288 : 257, T = tokens_list[ti];
                float *src = malloc((size_t)(R * C) * 4), *x = malloc((size_t)(T * C) * 4);
                for (int64_t i = 0; i < R * C; i++)
                    src[i] = exact ? (float)test_randi(8) : test_randf();
                if (exact && dt == GF_DTYPE_Q8)
                    fill_q8_exact(src, R * C, 0.5f);
                for (int64_t i = 0; i < T * C; i++)
                    x[i] = exact ? (float)test_randi(8) : test_randf();
                test_matrix tm;
                test_matrix_init(&tm, (gf_dtype)dt, R, C, src);
                float *y = malloc((size_t)(T * R) * 4);
                double *ref = malloc((size_t)(T * R) * 8), *mag = malloc((size_t)(T * R) * 8);
                test_reference(&tm, x, T, ref, mag);
                gf_linear(pool, &tm.m, x, T, y);
                for (int64_t i = 0; i < T * R; i++) {
                    if (exact)
                        cr_assert_eq((double)y[i], ref[i], "dtype %d T=%lld y[%lld]=%g exact %g", dt,
                                     (long long)T, (long long)i, y[i], ref[i]);
                    else
                        cr_assert_leq(fabs(y[i] - ref[i]), test_gamma(C) * mag[i], "dtype %d", dt);
                }
                test_matrix_free(&tm);
                free(src);
                free(x);
                free(y);
                free(ref);
                free(mag);
            }
}
