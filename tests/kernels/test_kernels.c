/* test_kernels.c — every kernel of every level this CPU runs, against exact
 * results (integer-valued data: every partial sum is exact in f32, so any
 * order of summation must give the exact answer) and against a double
 * reference with a proven error bound (random data), on odd sizes, all
 * dtypes and several batch sizes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>

#include "core/alloc.h"
#include "kernel_util.h"

/* 48: a last step of exactly 16 columns; 8225: past GF_PAIR_COLS, where the
 * AVX-512 kernels take one token in row groups too */
static const int64_t odd_cols[] = {1,  3,  7,   15,  16,  17,   31,  33,
                                   47, 48, 63, 65, 100, 255, 257, 1029, 8225};
static const int64_t q8_cols[] = {32, 64, 96, 160, 480, 512, 544, 1056};
/* the AVX-512 f32/F16/BF16 kernels take rows 4 at a time: tails of 1..3 */
static const int64_t row_counts[] = {1, 2, 3, 5, 6, 7, 17};
static const int64_t batch_sizes[] = {1, 2, 3, 4, 5, 7, 9};
#define N_ELEMS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Runs one level's kernel on all rows (in two pieces, to cover r0 > 0). */
static void run_kernel(const gf_kernel_table *k, const gf_matrix *W, const float *x,
                       int64_t n_tokens, float *y)
{
    gf_act a = {.x = x, .n_tokens = n_tokens, .cols = W->cols};
    if (W->dtype == GF_DTYPE_Q8 || W->dtype == GF_DTYPE_Q4)
        test_q8_act_init(k, x, n_tokens, W->cols, &a);
    float *pairs = NULL;
    if (W->dtype == GF_DTYPE_BF16 && k->bf16_pairs) {
        pairs = malloc((size_t)(n_tokens * gf_bf16_pairs_cols(W->cols)) * sizeof(float));
        gf_bf16_pairs(x, n_tokens, W->cols, pairs);
        a.xpair = pairs;
    }
    /* split at a multiple of 16 rows, as gf_linear's chunks: kernels may
     * group 16 rows (the int8 batch kernel) */
    int64_t split = W->rows / 2 / 16 * 16;
    k->rows[W->dtype](W, &a, 0, split, y);
    k->rows[W->dtype](W, &a, split, W->rows, y);
    free(pairs);
    test_q8_act_free(&a);
}

static void fill_int(float *v, int64_t n, int k)
{
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)test_randi(k);
}

/* Integer data whose Q8 quantization is exact: per block one value is
 * +-127 * unit (so the scale is exactly `unit`), the others small. */
static void fill_q8_exact(float *v, int64_t n, float unit)
{
    for (int64_t b = 0; b < n / 32; b++) {
        for (int c = 0; c < 32; c++)
            v[b * 32 + c] = unit * (float)test_randi(4);
        v[b * 32 + test_rand_u32() % 32] = unit * (test_rand_u32() & 1 ? 127.0f : -127.0f);
    }
}

Test(kernels, integer_data_is_exact_at_every_level)
{
    for (int level = 0; level < GF_LEVEL_COUNT; level++) {
        const gf_kernel_table *k = gf_kernels_for_level((gf_kernel_level)level);
        if (!k)
            continue;
        for (int dt = 0; dt < 4; dt++) {
            const int64_t *cols_list = dt == GF_DTYPE_Q8 ? q8_cols : odd_cols;
            int n_cols = dt == GF_DTYPE_Q8 ? N_ELEMS(q8_cols) : N_ELEMS(odd_cols);
            for (int ci = 0; ci < n_cols; ci++)
                for (int ri = 0; ri < N_ELEMS(row_counts); ri++)
                    for (int bi = 0; bi < N_ELEMS(batch_sizes); bi++) {
                        int64_t C = cols_list[ci], R = row_counts[ri], T = batch_sizes[bi];
                        float *src = malloc((size_t)(R * C) * sizeof(float));
                        float *x = malloc((size_t)(T * C) * sizeof(float));
                        if (dt == GF_DTYPE_Q8) {
                            fill_q8_exact(src, R * C, 0.0625f);
                            fill_q8_exact(x, T * C, 1.0f);
                        } else {
                            fill_int(src, R * C, 8);
                            fill_int(x, T * C, 8);
                        }
                        test_matrix tm;
                        test_matrix_init(&tm, (gf_dtype)dt, R, C, src);
                        float *y = malloc((size_t)(T * R) * sizeof(float));
                        double *ref = malloc((size_t)(T * R) * sizeof(double));
                        test_reference(&tm, x, T, ref, NULL);
                        run_kernel(k, &tm.m, x, T, y);
                        for (int64_t i = 0; i < T * R; i++)
                            cr_assert_eq((double)y[i], ref[i],
                                         "%s dtype %d %lldx%lld T=%lld: y[%lld] = %g, exact %g",
                                         k->name, dt, (long long)R, (long long)C, (long long)T,
                                         (long long)i, y[i], ref[i]);
                        test_matrix_free(&tm);
                        free(src);
                        free(x);
                        free(y);
                        free(ref);
                    }
        }
    }
}

/* Random data, weights as stored (f32/f16/bf16): every level within
 * Higham's bound of the exact (double) product of the stored weights. */
Test(kernels, random_data_within_summation_bound)
{
    for (int level = 0; level < GF_LEVEL_COUNT; level++) {
        const gf_kernel_table *k = gf_kernels_for_level((gf_kernel_level)level);
        if (!k)
            continue;
        for (int dt = 0; dt < 3; dt++)
            for (int ci = 0; ci < N_ELEMS(odd_cols); ci++)
                for (int bi = 0; bi < N_ELEMS(batch_sizes); bi++) {
                    int64_t C = odd_cols[ci], R = 13, T = batch_sizes[bi];
                    float *src = malloc((size_t)(R * C) * sizeof(float));
                    float *x = malloc((size_t)(T * C) * sizeof(float));
                    for (int64_t i = 0; i < R * C; i++)
                        src[i] = test_randf();
                    for (int64_t i = 0; i < T * C; i++)
                        x[i] = test_randf() * 3.0f;
                    test_matrix tm;
                    test_matrix_init(&tm, (gf_dtype)dt, R, C, src);
                    float *y = malloc((size_t)(T * R) * sizeof(float));
                    double *ref = malloc((size_t)(T * R) * sizeof(double));
                    double *mag = malloc((size_t)(T * R) * sizeof(double));
                    test_reference(&tm, x, T, ref, mag);
                    run_kernel(k, &tm.m, x, T, y);
                    double g = test_gamma(C);
                    for (int64_t i = 0; i < T * R; i++)
                        cr_assert_leq(fabs(y[i] - ref[i]), g * mag[i],
                                      "%s dtype %d C=%lld T=%lld: |%g - %g| > %g", k->name, dt,
                                      (long long)C, (long long)T, y[i], ref[i], g * mag[i]);
                    test_matrix_free(&tm);
                    free(src);
                    free(x);
                    free(y);
                    free(ref);
                    free(mag);
                }
    }
}

/* Q8 with random data.  Against the scalar kernel: the block integer sums
 * are identical, only the f32 sum of nb scaled blocks differs in order, so
 * |diff| <= 2 gamma_(nb+2) * sum_b |d_w d_x isum_b| (each side within
 * gamma of the exact sum of its scaled terms; bounding with sum |w x| of
 * the quantized values is larger still).  Against the f32 product of the
 * dequantized weights: the activation quantization adds at most
 * sum_c |w_c| * d_x(c) / 2. */
Test(kernels, q8_random_against_scalar_and_float)
{
    const gf_kernel_table *ref_k = gf_kernels_for_level(GF_LEVEL_SCALAR);
    for (int level = 0; level < GF_LEVEL_COUNT; level++) {
        const gf_kernel_table *k = gf_kernels_for_level((gf_kernel_level)level);
        if (!k)
            continue;
        for (int ci = 0; ci < N_ELEMS(q8_cols); ci++)
            for (int bi = 0; bi < N_ELEMS(batch_sizes); bi++) {
                int64_t C = q8_cols[ci], R = 21, T = batch_sizes[bi], nb = C / 32;
                float *src = malloc((size_t)(R * C) * sizeof(float));
                float *x = malloc((size_t)(T * C) * sizeof(float));
                for (int64_t i = 0; i < R * C; i++)
                    src[i] = test_randf() * 0.1f;
                for (int64_t i = 0; i < T * C; i++)
                    x[i] = test_randf() * (1 + (i / 32) % 5); /* blocks of different scales */
                test_matrix tm;
                test_matrix_init(&tm, GF_DTYPE_Q8, R, C, src);
                float *y = malloc((size_t)(T * R) * sizeof(float));
                float *y0 = malloc((size_t)(T * R) * sizeof(float));
                double *ref = malloc((size_t)(T * R) * sizeof(double));
                double *mag = malloc((size_t)(T * R) * sizeof(double));
                test_reference(&tm, x, T, ref, mag);
                run_kernel(k, &tm.m, x, T, y);
                run_kernel(ref_k, &tm.m, x, T, y0);
                for (int64_t t = 0; t < T; t++) {
                    float dx[64];
                    int8_t q[2048];
                    gf_quantize_row_q8(x + t * C, C, q, dx);
                    for (int64_t r = 0; r < R; r++) {
                        double quant = 0, scaled = 0;
                        for (int64_t b = 0; b < nb; b++) {
                            double aw = 0, awq = 0;
                            for (int c = 0; c < 32; c++) {
                                aw += fabs(tm.w[r * C + b * 32 + c]);
                                awq += fabs(tm.w[r * C + b * 32 + c] * q[b * 32 + c]);
                            }
                            quant += aw * dx[b] / 2;
                            scaled += awq * dx[b];
                        }
                        int64_t i = t * R + r;
                        double tol = 2 * test_gamma(nb + 2) * scaled;
                        cr_assert_leq(fabs(y[i] - y0[i]), tol, "%s C=%lld T=%lld: %g vs scalar %g",
                                      k->name, (long long)C, (long long)T, y[i], y0[i]);
                        /* 1.001: the scale d_x = max/127 and 127/max are each rounded */
                        double tol_f = quant * 1.001 + test_gamma(C + 2) * (mag[i] + scaled);
                        cr_assert_leq(fabs(y[i] - ref[i]), tol_f, "%s C=%lld: %g vs float %g (tol %g)",
                                      k->name, (long long)C, y[i], ref[i], tol_f);
                    }
                }
                test_matrix_free(&tm);
                free(src);
                free(x);
                free(y);
                free(y0);
                free(ref);
                free(mag);
            }
    }
}

/* A row's sum does not depend on the rows computed with it: the kernel on
 * the whole matrix, on every row alone, and on uneven pieces give the same
 * bits (gf_linear's chunks, and so the thread count, then cannot change a
 * result; the int8 batch kernel groups 16 rows and is left out).  8225
 * columns: one token also in row groups on AVX-512; there the sums are also
 * checked against the double reference. */
Test(kernels, row_results_do_not_depend_on_grouping)
{
    static const int64_t cols[] = {33, 100, 1029, 8225, 8225};
    static const int64_t rows[] = {11, 11, 11, 11, 37};
    for (int level = 0; level < GF_LEVEL_COUNT; level++) {
        const gf_kernel_table *k = gf_kernels_for_level((gf_kernel_level)level);
        if (!k)
            continue;
        for (int dt = 0; dt < 3; dt++)
            for (int ci = 0; ci < N_ELEMS(cols); ci++)
                for (int64_t T = 1; T <= 6; T++) {
                    const int64_t C = cols[ci], R = rows[ci];
                    float *src = malloc((size_t)(R * C) * sizeof(float));
                    float *x = malloc((size_t)(T * C) * sizeof(float));
                    for (int64_t i = 0; i < R * C; i++)
                        src[i] = test_randf();
                    for (int64_t i = 0; i < T * C; i++)
                        x[i] = test_randf();
                    test_matrix tm;
                    test_matrix_init(&tm, (gf_dtype)dt, R, C, src);
                    gf_act a = {.x = x, .n_tokens = T, .cols = C};
                    float *pairs = NULL;
                    if (dt == GF_DTYPE_BF16 && k->bf16_pairs) {
                        pairs = malloc((size_t)(T * gf_bf16_pairs_cols(C)) * sizeof(float));
                        gf_bf16_pairs(x, T, C, pairs);
                        a.xpair = pairs;
                    }
                    float *whole = malloc((size_t)(T * R) * sizeof(float));
                    float *alone = malloc((size_t)(T * R) * sizeof(float));
                    float *pieces = malloc((size_t)(T * R) * sizeof(float));
                    k->rows[dt](&tm.m, &a, 0, R, whole);
                    for (int64_t r = 0; r < R; r++)
                        k->rows[dt](&tm.m, &a, r, r + 1, alone);
                    const int64_t cuts[] = {0, 3, 5, 6, R};
                    for (int i = 0; i + 1 < N_ELEMS(cuts); i++)
                        k->rows[dt](&tm.m, &a, cuts[i], cuts[i + 1], pieces);
                    if (C > 4096) {
                        double *ref = malloc((size_t)(T * R) * sizeof(double));
                        double *mag = malloc((size_t)(T * R) * sizeof(double));
                        test_reference(&tm, x, T, ref, mag);
                        for (int64_t i = 0; i < T * R; i++)
                            cr_assert_leq(fabs(whole[i] - ref[i]), test_gamma(C) * mag[i],
                                          "%s dtype %d C=%lld T=%lld: y[%lld] = %g, want %g",
                                          k->name, dt, (long long)C, (long long)T, (long long)i,
                                          whole[i], ref[i]);
                        free(ref);
                        free(mag);
                    }
                    cr_assert_arr_eq(whole, alone, (size_t)(T * R) * sizeof(float),
                                     "%s dtype %d C=%lld T=%lld: rows alone", k->name, dt,
                                     (long long)C, (long long)T);
                    cr_assert_arr_eq(whole, pieces, (size_t)(T * R) * sizeof(float),
                                     "%s dtype %d C=%lld T=%lld: pieces", k->name, dt,
                                     (long long)C, (long long)T);
                    test_matrix_free(&tm);
                    free(pairs);
                    free(src);
                    free(x);
                    free(whole);
                    free(alone);
                    free(pieces);
                }
    }
}

/* gf_linear / gf_linear_multi through the pool and the dispatch: the rows
 * a thread computes do not depend on how they were split, so the result
 * equals the level's kernel on the whole matrix bit for bit. */
Test(kernels, linear_through_pool_matches_kernel_exactly)
{
    const int64_t R = 300, C = 1056;
    for (int level = 0; level < GF_LEVEL_COUNT; level++) {
        const gf_kernel_table *k = gf_kernels_for_level((gf_kernel_level)level);
        if (!k)
            continue;
        cr_assert_eq(gf_kernel_level_force((gf_kernel_level)level), 0);
        cr_assert_eq(gf_kernels(), k);
        for (int threads = 1; threads <= 5; threads += 2) { /* 1, 3, 5 */
            gf_threadpool *pool = gf_threadpool_new(threads);
            cr_assert_not_null(pool);
            for (int dt = 0; dt < GF_DTYPE_COUNT; dt++)
                for (int64_t T = 1; T <= 6; T += 5) {
                    float *src = malloc((size_t)(2 * R * C) * sizeof(float));
                    float *x = malloc((size_t)(T * C) * sizeof(float));
                    for (int64_t i = 0; i < 2 * R * C; i++)
                        src[i] = test_randf();
                    for (int64_t i = 0; i < T * C; i++)
                        x[i] = test_randf();
                    test_matrix a, b;
                    test_matrix_init(&a, (gf_dtype)dt, R, C, src);
                    test_matrix_init(&b, (gf_dtype)dt, R - 7, C, src + R * C);
                    float *y = malloc((size_t)(T * R) * sizeof(float));
                    float *y1 = malloc((size_t)(T * R) * sizeof(float));
                    float *y2 = malloc((size_t)(T * R) * sizeof(float));
                    float *yk = malloc((size_t)(T * R) * sizeof(float));
                    gf_linear(pool, &a.m, x, T, y);
                    run_kernel(k, &a.m, x, T, yk);
                    cr_assert_arr_eq(y, yk, (size_t)(T * R) * sizeof(float),
                                     "%s dtype %d threads %d T=%lld", k->name, dt, threads,
                                     (long long)T);
                    const gf_matrix *ws[2] = {&a.m, &b.m};
                    float *ys[2] = {y1, y2};
                    gf_linear_multi(pool, 2, ws, x, T, ys);
                    cr_assert_arr_eq(y1, yk, (size_t)(T * R) * sizeof(float));
                    run_kernel(k, &b.m, x, T, yk);
                    cr_assert_arr_eq(y2, yk, (size_t)(T * (R - 7)) * sizeof(float));
                    test_matrix_free(&a);
                    test_matrix_free(&b);
                    free(src);
                    free(x);
                    free(y);
                    free(y1);
                    free(y2);
                    free(yk);
                }
            gf_threadpool_free(pool);
        }
    }
    gf_kernel_level_force(gf_kernel_level_detected());
}

/* Matrices of different widths in one call go one by one; zero columns
 * give zeros (an empty sum), for every path. */
Test(kernels, multi_with_different_widths_and_empty_rows)
{
    float src[40 * 96], x[20 * 96], y1[20 * 40], y2[20 * 40], r1[20 * 40], r2[20 * 40];
    for (int i = 0; i < 40 * 96; i++)
        src[i] = (float)test_randi(8);
    for (int i = 0; i < 20 * 96; i++)
        x[i] = (float)test_randi(8);
    gf_threadpool *pool = gf_threadpool_new(2);
    for (int64_t T = 1; T <= 20; T += 19) {
        test_matrix a, b;
        test_matrix_init(&a, GF_DTYPE_BF16, 40, 96, src);
        test_matrix_init(&b, GF_DTYPE_BF16, 40, 64, src);
        const gf_matrix *ws[2] = {&a.m, &b.m};
        float *ys[2] = {y1, y2};
        gf_linear_multi(pool, 2, ws, x, T, ys); /* x rows are 96 wide for a; b, fed alone, reads x as 64 wide */
        gf_linear(pool, &a.m, x, T, r1);
        cr_assert_arr_eq(y1, r1, (size_t)(T * 40) * sizeof(float));
        gf_linear(pool, &b.m, x, T, r2);
        cr_assert_arr_eq(y2, r2, (size_t)(T * 40) * sizeof(float));
        test_matrix_free(&a);
        test_matrix_free(&b);
        test_matrix e;
        test_matrix_init(&e, GF_DTYPE_F32, 40, 0, src);
        for (int i = 0; i < 20 * 40; i++)
            y1[i] = 1;
        gf_linear(pool, &e.m, x, T, y1);
        for (int64_t i = 0; i < T * 40; i++)
            cr_assert_eq(y1[i], 0.0f);
        test_matrix_free(&e);
    }
    gf_threadpool_free(pool);
}

Test(kernels, null_pool_and_empty_batch)
{
    float src[64 * 2], x[64], y[2] = {42, 42};
    for (int i = 0; i < 128; i++)
        src[i] = (float)(i % 7) - 3;
    for (int i = 0; i < 64; i++)
        x[i] = (float)(i % 5) - 2;
    test_matrix tm;
    test_matrix_init(&tm, GF_DTYPE_F32, 2, 64, src);
    gf_linear(NULL, &tm.m, x, 0, y);
    cr_assert(y[0] == 42 && y[1] == 42, "n_tokens 0 writes nothing");
    gf_linear(NULL, &tm.m, x, 1, y);
    double ref[2];
    test_reference(&tm, x, 1, ref, NULL);
    cr_assert(y[0] == ref[0] && y[1] == ref[1]);
    test_matrix_free(&tm);
}

/* Without memory for the quantized activations gf_linear still computes
 * the same Q8 result (it quantizes block by block on the fly). */
Test(kernels, q8_without_scratch_memory)
{
    const int64_t R = 9, C = 96;
    float src[R * C], x[2 * C], y[2 * R], y0[2 * R];
    for (int64_t i = 0; i < R * C; i++)
        src[i] = test_randf();
    for (int64_t i = 0; i < 2 * C; i++)
        x[i] = test_randf();
    test_matrix tm;
    test_matrix_init(&tm, GF_DTYPE_Q8, R, C, src);
    gf_kernel_level_force(GF_LEVEL_SCALAR);
    gf_linear(NULL, &tm.m, x, 2, y0);
    gf_alloc_fail_after(0);
    gf_linear(NULL, &tm.m, x, 2, y);
    gf_alloc_fail_after(-1);
    gf_kernel_level_force(gf_kernel_level_detected());
    cr_assert_arr_eq(y, y0, sizeof y);
    test_matrix_free(&tm);
}

/* Widening is exact (and Q8 is d * q in f32), so every level must give
 * exactly the test's dequantized values; odd widths cover the tails. */
/* BF16 without scratch memory (its paired activations): still within the
 * summation bound. */
Test(kernels, bf16_without_scratch_memory)
{
    const int64_t R = 7, C = 200;
    float src[R * C], x[2 * C], y[2 * R];
    double ref[2 * R], mag[2 * R];
    for (int64_t i = 0; i < R * C; i++)
        src[i] = test_randf();
    for (int64_t i = 0; i < 2 * C; i++)
        x[i] = test_randf();
    test_matrix tm;
    test_matrix_init(&tm, GF_DTYPE_BF16, R, C, src);
    test_reference(&tm, x, 2, ref, mag);
    gf_alloc_fail_after(0);
    gf_linear(NULL, &tm.m, x, 2, y);
    gf_alloc_fail_after(-1);
    for (int i = 0; i < 2 * R; i++)
        cr_assert_leq(fabs(y[i] - ref[i]), test_gamma(C) * mag[i]);
    test_matrix_free(&tm);
}

Test(kernels, matrix_row_f32_widens_every_dtype)
{
    for (int level = 0; level < GF_LEVEL_COUNT; level++) {
        const gf_kernel_table *k = gf_kernels_for_level((gf_kernel_level)level);
        if (!k)
            continue;
        for (int dt = 0; dt < 4; dt++)
            for (int64_t C = dt == GF_DTYPE_Q8 ? 32 : 1; C <= 100; C += dt == GF_DTYPE_Q8 ? 32 : 9) {
                const int64_t R = 3;
                float src[3 * 100], out[100];
                for (int64_t i = 0; i < R * C; i++)
                    src[i] = test_randf();
                test_matrix tm;
                test_matrix_init(&tm, (gf_dtype)dt, R, C, src);
                for (int64_t r = 0; r < R; r++) {
                    k->widen_row(&tm.m, r, out);
                    cr_assert_arr_eq(out, tm.w + r * C, (size_t)C * sizeof(float), "%s dtype %d row %lld",
                                     k->name, dt, (long long)r);
                    gf_matrix_row_f32(&tm.m, r, out);
                    cr_assert_arr_eq(out, tm.w + r * C, (size_t)C * sizeof(float));
                }
                test_matrix_free(&tm);
            }
    }
}
