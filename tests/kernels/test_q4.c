/* test_q4.c — the Q4 format (kernels/q4_format.h): the documented index
 * formula is a bijection onto the (byte, nibble) pairs and put/get round
 * trip; the quantizer is never worse than Q4_0 on any block and every
 * level's quantizer equals the scalar one bit for bit; the scalar kernel
 * equals a plain dot product over the dequantized weights with the Q8
 * activations (exactly, on integer data), and every level's Q4 kernel
 * equals the scalar kernel bit for bit for any token count and row range,
 * writing nothing outside it. */
#include <criterion/criterion.h>
#include <math.h>

#include "kernel_util.h"
#include "kernels/gemm.h"

static const int64_t rows_list[] = {1, 3, 15, 16, 17, 31, 32, 33, 47, 64};
static const int64_t cols_list[] = {32, 64, 96, 544};
#define N_ELEMS(a) ((int)(sizeof(a) / sizeof((a)[0])))

Test(q4, index_is_a_bijection_and_round_trips)
{
    for (int ri = 0; ri < N_ELEMS(rows_list); ri++)
        for (int ci = 0; ci < N_ELEMS(cols_list); ci++) {
            const int64_t R = rows_list[ri], C = cols_list[ci], nb = C / 32;
            unsigned char *seen = calloc((size_t)(R * C), 1), *seen_s = calloc((size_t)(R * nb), 1);
            for (int64_t r = 0; r < R; r++) {
                for (int64_t c = 0; c < C; c++) {
                    size_t i = gf_q4_index(R, C, r, c);
                    cr_assert_lt(i, (size_t)(R * C / 2));
                    size_t slot = 2 * i + (size_t)(gf_q4_nibble_shift(c) / 4);
                    cr_assert_eq(seen[slot], 0, "R=%lld C=%lld (%lld,%lld) collides", (long long)R,
                                 (long long)C, (long long)r, (long long)c);
                    seen[slot] = 1;
                    /* the documented formula, written out */
                    int64_t g0 = r / 16 * 16, h = R - g0 < 16 ? R - g0 : 16;
                    cr_assert_eq(i, (size_t)(g0 * C / 2 + (c / 8) * 4 * h + (r - g0) * 4 + c % 4));
                    cr_assert_eq(gf_q4_nibble_shift(c), c % 8 < 4 ? 0 : 4);
                }
                for (int64_t b = 0; b < nb; b++) {
                    size_t i = gf_q4_scale_index(R, C, r, b);
                    cr_assert_lt(i, (size_t)(R * nb));
                    cr_assert_eq(seen_s[i], 0);
                    seen_s[i] = 1;
                }
            }
            /* put rows, read them back */
            int8_t *k = malloc((size_t)(R * C)), *back = malloc((size_t)C);
            uint8_t *data = malloc((size_t)(R * C / 2));
            uint16_t *s = malloc((size_t)(R * nb) * 2), *si = malloc((size_t)(R * nb) * 2);
            uint16_t *sback = malloc((size_t)nb * 2);
            for (int64_t i = 0; i < R * C; i++) {
                const int v = test_randi(8);
                k[i] = (int8_t)(v > 7 ? -8 : v); /* -8..7 */
            }
            for (int64_t i = 0; i < R * nb; i++)
                s[i] = (uint16_t)test_rand_u32();
            for (int64_t r = 0; r < R; r++) /* in two pieces: c0 > 0 too */
                for (int64_t c0 = 0; c0 < C; c0 += C > 32 ? 32 : C)
                    gf_q4_put_row(data, si, R, C, r, c0, C > 32 ? 32 : C, k + r * C + c0,
                                  s + r * nb + c0 / 32);
            gf_matrix W = {data, si, GF_DTYPE_Q4, R, C};
            for (int64_t r = 0; r < R; r++) {
                for (int64_t c = 0; c < C; c++) {
                    int u = (data[gf_q4_index(R, C, r, c)] >> gf_q4_nibble_shift(c)) & 15;
                    cr_assert_eq(u - 8, k[r * C + c]);
                }
                gf_q4_get_row(&W, r, back, sback);
                cr_assert_eq(memcmp(back, k + r * C, (size_t)C), 0);
                cr_assert_eq(memcmp(sback, s + r * nb, (size_t)nb * 2), 0);
            }
            free(k);
            free(back);
            free(data);
            free(s);
            free(si);
            free(sback);
            free(seen);
            free(seen_s);
        }
}

/* Blocks of several shapes: uniform, Gaussian-like, one outlier, a constant
 * block, tiny values (f16 subnormal scales), zeros and NaN. */
static void fill_block(float *x, int kind)
{
    for (int i = 0; i < 32; i++) {
        float g = (test_randf() + test_randf() + test_randf()) * 0.5f;
        switch (kind % 7) {
        case 0: x[i] = test_randf(); break;
        case 1: x[i] = g * 0.02f; break;
        case 2: x[i] = g * 0.01f + (i == 5 ? 0.3f : 0.0f); break;
        case 3: x[i] = 0.125f; break;
        case 4: x[i] = g * 1e-6f; break;
        case 5: x[i] = i % 3 ? 0.0f : g; break;
        default: x[i] = i == 7 ? NAN : g; break;
        }
    }
}

static double err2(const float *x, const int8_t *k, uint16_t s)
{
    double e = 0, d = gf_f16_to_f32(s);
    for (int i = 0; i < 32; i++) {
        double v = x[i] == x[i] ? x[i] : 0.0;
        e += (v - d * k[i]) * (v - d * k[i]);
    }
    return e;
}

Test(q4, quantizer_never_loses_to_q4_0_and_levels_agree)
{
    enum { NB = 64 };
    float *x = malloc(NB * 32 * sizeof(float));
    int8_t k[NB * 32], k0[NB * 32], kl[NB * 32];
    uint16_t s[NB], s0[NB], sl[NB];
    int better = 0;
    for (int round = 0; round < 40; round++) {
        for (int b = 0; b < NB; b++)
            fill_block(x + b * 32, round * NB + b);
        gf_q4_quantize_row(x, NB * 32, k, s);
        gf_q4_0_quantize_row(x, NB * 32, k0, s0);
        for (int b = 0; b < NB; b++) {
            for (int i = 0; i < 32; i++) {
                cr_assert(k[b * 32 + i] >= -8 && k[b * 32 + i] <= 7);
                cr_assert(k0[b * 32 + i] >= -8 && k0[b * 32 + i] <= 7);
            }
            double e = err2(x + b * 32, k + b * 32, s[b]), e0 = err2(x + b * 32, k0 + b * 32, s0[b]);
            cr_assert(e <= e0 * (1 + 1e-12), "block %d kind %d: %.9g > q4_0 %.9g", b,
                      (round * NB + b) % 7, e, e0);
            better += e < e0 * (1 - 1e-6);
        }
        for (int level = 0; level < GF_LEVEL_COUNT; level++) {
            const gf_kernel_table *kt = gf_kernels_for_level((gf_kernel_level)level);
            if (!kt)
                continue;
            kt->quantize_weights_q4(x, NB * 32, kl, sl);
            cr_assert_eq(memcmp(kl, k, sizeof k), 0, "%s codes differ from scalar", kt->name);
            cr_assert_eq(memcmp(sl, s, sizeof s), 0, "%s scales differ from scalar", kt->name);
        }
    }
    /* the search must find something on random blocks, or it does nothing */
    cr_assert_gt(better, 40 * NB / 4, "only %d blocks improved on q4_0", better);
    free(x);
}

/* Weights d * k with an exact f16 d and activations whose Q8 quantization is
 * exact: the scalar kernel then equals the exact dot product. */
Test(q4, scalar_kernel_is_exact_on_integer_data)
{
    const gf_kernel_table *ref = gf_kernels_for_level(GF_LEVEL_SCALAR);
    for (int ri = 0; ri < N_ELEMS(rows_list); ri++)
        for (int ci = 0; ci < N_ELEMS(cols_list); ci++)
            for (int64_t T = 1; T <= 5; T += 2) {
                const int64_t R = rows_list[ri], C = cols_list[ci], nb = C / 32;
                int8_t *k = malloc((size_t)(R * C));
                uint8_t *data = malloc((size_t)(R * C / 2));
                uint16_t *s = malloc((size_t)(R * nb) * 2), *si = malloc((size_t)(R * nb) * 2);
                float *x = malloc((size_t)(T * C) * sizeof(float));
                for (int64_t i = 0; i < R * C; i++) {
                    const int v = test_randi(8);
                    k[i] = (int8_t)(v > 7 ? 7 : v);
                }
                for (int64_t i = 0; i < R * nb; i++)
                    s[i] = gf_f32_to_f16(0.0625f * (float)(1 + i % 5));
                for (int64_t r = 0; r < R; r++)
                    gf_q4_put_row(data, si, R, C, r, 0, C, k + r * C, s + r * nb);
                for (int64_t b = 0; b < T * nb; b++) { /* Q8-exact: one +-127 per block */
                    for (int c = 0; c < 32; c++)
                        x[b * 32 + c] = (float)test_randi(9);
                    x[b * 32 + test_rand_u32() % 32] = test_rand_u32() & 1 ? 127.0f : -127.0f;
                }
                gf_matrix W = {data, si, GF_DTYPE_Q4, R, C};
                gf_act a;
                test_q8_act_init(ref, x, T, C, &a);
                float *y = malloc((size_t)(T * R) * sizeof(float));
                ref->rows[GF_DTYPE_Q4](&W, &a, 0, R, y);
                float *wrow = malloc((size_t)C * sizeof(float));
                for (int64_t r = 0; r < R; r++) {
                    gf_matrix_row_f32(&W, r, wrow);
                    for (int64_t t = 0; t < T; t++) {
                        double e = 0;
                        for (int64_t c = 0; c < C; c++) {
                            cr_assert_eq(wrow[c], gf_f16_to_f32(s[r * nb + c / 32]) * k[r * C + c]);
                            e += (double)wrow[c] * x[t * C + c];
                        }
                        cr_assert_eq((double)y[t * R + r], e, "R=%lld C=%lld T=%lld: %g vs %g",
                                     (long long)R, (long long)C, (long long)T, y[t * R + r], e);
                    }
                }
                test_q8_act_free(&a);
                free(k);
                free(data);
                free(s);
                free(si);
                free(x);
                free(y);
                free(wrow);
            }
}

Test(q4, every_level_equals_scalar_on_any_row_range)
{
    const gf_kernel_table *ref = gf_kernels_for_level(GF_LEVEL_SCALAR);
    for (int level = 1; level < GF_LEVEL_COUNT; level++) {
        const gf_kernel_table *k = gf_kernels_for_level((gf_kernel_level)level);
        if (!k)
            continue;
        for (int ri = 0; ri < N_ELEMS(rows_list); ri++)
            for (int ci = 0; ci < N_ELEMS(cols_list); ci++)
                for (int64_t T = 1; T <= 10; T++) {
                    const int64_t R = rows_list[ri], C = cols_list[ci];
                    float *src = malloc((size_t)(R * C) * sizeof(float));
                    float *x = malloc((size_t)(T * C) * sizeof(float));
                    for (int64_t i = 0; i < R * C; i++)
                        src[i] = test_randf() * (1 + (i / 32) % 7);
                    for (int64_t i = 0; i < T * C; i++)
                        x[i] = test_randf() * (1 + (i / 32) % 5);
                    test_matrix tm;
                    test_matrix_init(&tm, GF_DTYPE_Q4, R, C, src);
                    gf_act a, a0;
                    test_q8_act_init(k, x, T, C, &a);
                    test_q8_act_init(ref, x, T, C, &a0);
                    float *y = malloc((size_t)(T * R) * sizeof(float));
                    float *y0 = malloc((size_t)(T * R) * sizeof(float));
                    ref->rows[GF_DTYPE_Q4](&tm.m, &a0, 0, R, y0);
                    int64_t r0 = (int64_t)(test_rand_u32() % (uint32_t)R);
                    int64_t r1 = r0 + 1 + (int64_t)(test_rand_u32() % (uint32_t)(R - r0));
                    if (T % 3 == 0) {
                        r0 = 0;
                        r1 = R;
                    }
                    for (int64_t i = 0; i < T * R; i++)
                        y[i] = -12345.0f;
                    k->rows[GF_DTYPE_Q4](&tm.m, &a, r0, r1, y);
                    for (int64_t t = 0; t < T; t++)
                        for (int64_t r = 0; r < R; r++) {
                            const float got = y[t * R + r];
                            if (r < r0 || r >= r1)
                                cr_assert_eq(got, -12345.0f, "%s wrote row %lld outside [%lld,%lld)",
                                             k->name, (long long)r, (long long)r0, (long long)r1);
                            else
                                cr_assert_eq(got, y0[t * R + r],
                                             "%s R=%lld C=%lld T=%lld row %lld token %lld: %.9g vs "
                                             "scalar %.9g",
                                             k->name, (long long)R, (long long)C, (long long)T,
                                             (long long)r, (long long)t, got, y0[t * R + r]);
                        }
                    test_q8_act_free(&a);
                    test_q8_act_free(&a0);
                    test_matrix_free(&tm);
                    free(src);
                    free(x);
                    free(y);
                    free(y0);
                }
    }
}

/* The AVX2 level holds one Q4 kernel (AVX-VNNI where the CPU has it): both
 * against the scalar one. */
Test(q4, avx2_plain_and_avx_vnni_equal_scalar)
{
    gf_rows_fn fns[2];
    gf_kernels_avx2_q4_variants(&fns[0], &fns[1]);
    if (!fns[0] || gf_kernel_level_detected() < 1 || gf_kernel_level_name(1)[0] != 'a')
        return; /* no AVX2 level in this build or on this CPU */
    const gf_kernel_table *ref = gf_kernels_for_level(GF_LEVEL_SCALAR);
    for (int v = 0; v < (gf_cpu_has_avx_vnni() ? 2 : 1); v++)
        for (int64_t T = 1; T <= 6; T++)
            for (int ri = 0; ri < N_ELEMS(rows_list); ri++) {
                const int64_t R = rows_list[ri], C = 96;
                float *src = malloc((size_t)(R * C) * sizeof(float));
                float *x = malloc((size_t)(T * C) * sizeof(float));
                for (int64_t i = 0; i < R * C; i++)
                    src[i] = test_randf();
                for (int64_t i = 0; i < T * C; i++)
                    x[i] = test_randf();
                test_matrix tm;
                test_matrix_init(&tm, GF_DTYPE_Q4, R, C, src);
                gf_act a;
                test_q8_act_init(ref, x, T, C, &a);
                float *y = malloc((size_t)(T * R) * sizeof(float));
                float *y0 = malloc((size_t)(T * R) * sizeof(float));
                ref->rows[GF_DTYPE_Q4](&tm.m, &a, 0, R, y0);
                fns[v](&tm.m, &a, 0, R, y);
                cr_assert_arr_eq(y, y0, (size_t)(T * R) * sizeof(float), "%s R=%lld T=%lld",
                                 v ? "avx-vnni" : "avx2", (long long)R, (long long)T);
                test_q8_act_free(&a);
                test_matrix_free(&tm);
                free(src);
                free(x);
                free(y);
                free(y0);
            }
}

/* Through gf_linear / gf_linear_multi (activations quantized once, rows
 * split across 1-3 threads): the level's kernel on the whole matrix, bit
 * for bit, for decode-sized and prompt-sized token counts. */
Test(q4, gf_linear_equals_the_kernel_for_any_thread_count)
{
    const int64_t R = 200, C = 160;
    for (int level = 0; level < GF_LEVEL_COUNT; level++) {
        const gf_kernel_table *k = gf_kernels_for_level((gf_kernel_level)level);
        if (!k)
            continue;
        cr_assert_eq(gf_kernel_level_force((gf_kernel_level)level), 0);
        for (int threads = 1; threads <= 3; threads++) {
            gf_threadpool *pool = gf_threadpool_new(threads);
            cr_assert_not_null(pool);
            for (int64_t T = 1; T <= 33; T += 8) {
                float *src = malloc((size_t)(2 * R * C) * sizeof(float));
                float *x = malloc((size_t)(T * C) * sizeof(float));
                for (int64_t i = 0; i < 2 * R * C; i++)
                    src[i] = test_randf();
                for (int64_t i = 0; i < T * C; i++)
                    x[i] = test_randf();
                test_matrix a, b;
                test_matrix_init(&a, GF_DTYPE_Q4, R, C, src);
                test_matrix_init(&b, GF_DTYPE_Q4, R - 7, C, src + R * C);
                float *y = malloc((size_t)(T * R) * sizeof(float));
                float *y1 = malloc((size_t)(T * R) * sizeof(float));
                float *y2 = malloc((size_t)(T * R) * sizeof(float));
                float *yk = malloc((size_t)(T * R) * sizeof(float));
                gf_act act;
                test_q8_act_init(k, x, T, C, &act);
                gf_linear(pool, &a.m, x, T, y);
                k->rows[GF_DTYPE_Q4](&a.m, &act, 0, R, yk);
                cr_assert_arr_eq(y, yk, (size_t)(T * R) * sizeof(float), "%s threads %d T=%lld",
                                 k->name, threads, (long long)T);
                const gf_matrix *ws[2] = {&a.m, &b.m};
                float *ys[2] = {y1, y2};
                gf_linear_multi(pool, 2, ws, x, T, ys);
                cr_assert_arr_eq(y1, yk, (size_t)(T * R) * sizeof(float));
                k->rows[GF_DTYPE_Q4](&b.m, &act, 0, R - 7, yk);
                cr_assert_arr_eq(y2, yk, (size_t)(T * (R - 7)) * sizeof(float));
                test_q8_act_free(&act);
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

/* Prompt batches (kernels/gemm_avx512.c): the Q8 GEMM on each group's k
 * block unpacked to int8 (u - 8, same scales).  Bit for bit what the Q8
 * GEMM gives on the int8 matrix holding the same values, for 1-3 threads,
 * odd row counts (a chunk of 84 rows starts inside a group, a last group
 * is short), k ends inside a 256-column block, token counts around the
 * 32-token block and beyond one 256-token slice; and within the bound of
 * test_gemm's Q8 test of the scalar Q4 row kernel (the same quantized
 * activations and block integer sums, only the f32 sum over blocks in
 * another order). */
Test(q4, gemm_equals_q8_gemm_on_the_unpacked_matrix)
{
    if (!gf_gemm_available(GF_GEMM_Q8))
        cr_skip_test("no AVX512-VNNI GEMM on this CPU");
    static const int64_t R_list[] = {1, 13, 17, 85, 171}, C_list[] = {32, 96, 288, 544};
    static const int64_t T_list[] = {1, 5, 33, 70, 300};
    const gf_kernel_table *ref = gf_kernels_for_level(GF_LEVEL_SCALAR);
    gf_gemm_set_min_tokens(GF_DTYPE_Q4, 1);
    gf_gemm_set_min_tokens(GF_DTYPE_Q8, 1);
    for (int threads = 1; threads <= 3; threads++) {
        gf_threadpool *pool = gf_threadpool_new(threads);
        cr_assert_not_null(pool);
        for (int ri = 0; ri < N_ELEMS(R_list); ri++)
            for (int ci = 0; ci < N_ELEMS(C_list); ci++)
                for (int ti = 0; ti < N_ELEMS(T_list); ti++) {
                    const int64_t R = R_list[ri], C = C_list[ci], T = T_list[ti], nb = C / 32;
                    if (threads > 1 && (T > 70 || C > 288))
                        continue; /* the rest once, single-threaded */
                    float *src = malloc((size_t)(R * C) * 4), *x = malloc((size_t)(T * C) * 4);
                    for (int64_t i = 0; i < R * C; i++)
                        src[i] = test_randf();
                    for (int64_t i = 0; i < T * C; i++)
                        x[i] = test_randf() * (float)(1 + (i / 32) % 3);
                    test_matrix tm;
                    test_matrix_init(&tm, GF_DTYPE_Q4, R, C, src);
                    /* the same values as an int8 matrix */
                    int8_t *q8 = malloc((size_t)(R * C)), k[544];
                    uint16_t *s8 = malloc((size_t)(R * nb) * 2), s[17];
                    for (int64_t r = 0; r < R; r++) {
                        gf_q4_get_row(&tm.m, r, k, s);
                        for (int64_t c = 0; c < C; c++)
                            q8[gf_q8_index(R, C, r, c)] = k[c];
                        for (int64_t b = 0; b < nb; b++)
                            s8[gf_q8_scale_index(R, C, r, b)] = s[b];
                    }
                    gf_matrix w8 = {q8, s8, GF_DTYPE_Q8, R, C};
                    float *y = malloc((size_t)(T * R) * 4), *y8 = malloc((size_t)(T * R) * 4);
                    float *y0 = malloc((size_t)(T * R) * 4);
                    gf_linear(pool, &tm.m, x, T, y);
                    gf_linear(pool, &w8, x, T, y8);
                    cr_assert_arr_eq(y, y8, (size_t)(T * R) * 4, "threads %d R=%lld C=%lld T=%lld",
                                     threads, (long long)R, (long long)C, (long long)T);
                    gf_act act;
                    test_q8_act_init(ref, x, T, C, &act);
                    ref->rows[GF_DTYPE_Q4](&tm.m, &act, 0, R, y0);
                    for (int64_t t = 0; t < T; t++) {
                        int8_t q[544];
                        float d[17];
                        gf_quantize_row_q8(x + t * C, C, q, d);
                        for (int64_t r = 0; r < R; r++) {
                            double scaled = 0;
                            for (int64_t i = 0; i < C; i++)
                                scaled += fabs(tm.w[r * C + i] * q[i]) * d[i / 32];
                            cr_assert_leq(fabs(y[t * R + r] - y0[t * R + r]),
                                          2 * test_gamma(nb + 2) * scaled, "R=%lld C=%lld T=%lld: %g vs %g",
                                          (long long)R, (long long)C, (long long)T, y[t * R + r],
                                          y0[t * R + r]);
                        }
                    }
                    test_q8_act_free(&act);
                    test_matrix_free(&tm);
                    free(q8);
                    free(s8);
                    free(src);
                    free(x);
                    free(y);
                    free(y8);
                    free(y0);
                }
        gf_threadpool_free(pool);
    }
    /* Q4 has no OpenBLAS path: forced BLAS (and ROWS) leave it on the row
     * kernels; the default crossover applies again after the reset. */
    gf_linear_set_gemm_backend(GF_GEMM_BACKEND_BLAS);
    cr_assert_geq(gf_gemm_min_tokens(GF_DTYPE_Q4), INT32_MAX);
    gf_linear_set_gemm_backend(GF_GEMM_BACKEND_AUTO);
    cr_assert_eq(gf_gemm_min_tokens(GF_DTYPE_Q4), 1);
    gf_gemm_set_min_tokens(GF_DTYPE_Q4, GF_GEMM_MIN_TOKENS_Q4);
    gf_gemm_set_min_tokens(GF_DTYPE_Q8, GF_GEMM_MIN_TOKENS_Q8);
}
