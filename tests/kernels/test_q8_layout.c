/* test_q8_layout.c — the interleaved Q8 layout (kernels/q8_format.h): the index
 * formulas are a bijection onto [0, rows*cols), put/get round trips, and
 * every level's int8 kernel gives the scalar kernel's results bit for bit
 * (they do the same operations per row and token) for any token count and
 * any row range, writing nothing outside it. */
#include <criterion/criterion.h>
#include <math.h>

#include "kernel_util.h"

static const int64_t rows_list[] = {1, 3, 15, 16, 17, 31, 32, 33, 47, 64};
static const int64_t cols_list[] = {32, 64, 96, 544};
#define N_ELEMS(a) ((int)(sizeof(a) / sizeof((a)[0])))

Test(q8_layout, index_is_a_bijection_and_round_trips)
{
    for (int ri = 0; ri < N_ELEMS(rows_list); ri++)
        for (int ci = 0; ci < N_ELEMS(cols_list); ci++) {
            const int64_t R = rows_list[ri], C = cols_list[ci], nb = C / 32;
            unsigned char *seen = calloc((size_t)(R * C), 1), *seen_s = calloc((size_t)(R * nb), 1);
            for (int64_t r = 0; r < R; r++) {
                for (int64_t c = 0; c < C; c++) {
                    size_t i = gf_q8_index(R, C, r, c);
                    cr_assert_lt(i, (size_t)(R * C));
                    cr_assert_eq(seen[i], 0, "R=%lld C=%lld (%lld,%lld) collides", (long long)R,
                                 (long long)C, (long long)r, (long long)c);
                    seen[i] = 1;
                    /* the documented formula, written out */
                    int64_t g0 = r / 16 * 16, h = R - g0 < 16 ? R - g0 : 16;
                    cr_assert_eq(i, (size_t)(g0 * C + (c / 4) * 4 * h + (r - g0) * 4 + c % 4));
                }
                for (int64_t b = 0; b < nb; b++) {
                    size_t i = gf_q8_scale_index(R, C, r, b);
                    cr_assert_lt(i, (size_t)(R * nb));
                    cr_assert_eq(seen_s[i], 0);
                    seen_s[i] = 1;
                }
            }
            int8_t *q = malloc((size_t)(R * C)), *qi = malloc((size_t)(R * C)), *back = malloc((size_t)C);
            uint16_t *s = malloc((size_t)(R * nb) * 2), *si = malloc((size_t)(R * nb) * 2);
            uint16_t *sback = malloc((size_t)nb * 2);
            for (int64_t i = 0; i < R * C; i++)
                q[i] = (int8_t)test_randi(127);
            for (int64_t i = 0; i < R * nb; i++)
                s[i] = (uint16_t)test_rand_u32();
            gf_q8_interleave(q, s, R, C, qi, si);
            gf_matrix W = {qi, si, GF_DTYPE_Q8, R, C};
            for (int64_t r = 0; r < R; r++) {
                for (int64_t c = 0; c < C; c++)
                    cr_assert_eq(qi[gf_q8_index(R, C, r, c)], q[r * C + c]);
                gf_q8_get_row(&W, r, back, sback);
                cr_assert_eq(memcmp(back, q + r * C, (size_t)C), 0);
                cr_assert_eq(memcmp(sback, s + r * nb, (size_t)nb * 2), 0);
            }
            free(q);
            free(qi);
            free(back);
            free(s);
            free(si);
            free(sback);
            free(seen);
            free(seen_s);
        }
}

Test(q8_layout, every_level_equals_scalar_on_any_row_range)
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
                    test_matrix_init(&tm, GF_DTYPE_Q8, R, C, src);
                    gf_act a, a0;
                    test_q8_act_init(k, x, T, C, &a);
                    test_q8_act_init(ref, x, T, C, &a0);
                    float *y = malloc((size_t)(T * R) * sizeof(float));
                    float *y0 = malloc((size_t)(T * R) * sizeof(float));
                    ref->rows[GF_DTYPE_Q8](&tm.m, &a0, 0, R, y0);
                    /* a random row range, the rest of y left as the sentinel */
                    int64_t r0 = (int64_t)(test_rand_u32() % (uint32_t)R);
                    int64_t r1 = r0 + 1 + (int64_t)(test_rand_u32() % (uint32_t)(R - r0));
                    if (T % 3 == 0) { /* and the whole matrix */
                        r0 = 0;
                        r1 = R;
                    }
                    for (int64_t i = 0; i < T * R; i++)
                        y[i] = -12345.0f;
                    k->rows[GF_DTYPE_Q8](&tm.m, &a, r0, r1, y);
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
