/* test_logprobs.c — gemfa_logprobs against a naive double-precision
 * log-softmax and a full sort: random vectors of Gemma's size, ties,
 * top_n beyond the vocabulary, NaN and infinities, hostile arguments. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "gemfa.h"
#include "sampling/rng.h"

/* The sampler's reading of a logit, written out again here. */
static double score_of(float x)
{
    if (isnan(x))
        return -INFINITY;
    if (x == INFINITY)
        return FLT_MAX;
    return x;
}

/* log-softmax in long double, the maximum subtracted first. */
static void naive_logprobs(const float *l, size_t n, double *out)
{
    long double max = -INFINITY, sum = 0;
    for (size_t i = 0; i < n; i++)
        if (score_of(l[i]) > max)
            max = score_of(l[i]);
    for (size_t i = 0; i < n; i++)
        sum += expl((long double)score_of(l[i]) - max);
    long double lse = max + logl(sum);
    for (size_t i = 0; i < n; i++)
        out[i] = score_of(l[i]) == -INFINITY ? -INFINITY : (double)(score_of(l[i]) - lse);
}

static const float *g_l;
static int by_rank(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    double sx = score_of(g_l[x]), sy = score_of(g_l[y]);
    if (sx != sy)
        return sx > sy ? -1 : 1;
    return x < y ? -1 : 1;
}

/* Checks every output of gemfa_logprobs on l[0..n) for top_n against the
 * naive computation. */
static void check(const float *l, size_t n, size_t top_n, double tol)
{
    double *want = malloc(n * sizeof *want);
    int32_t *order = malloc(n * sizeof *order);
    size_t k = top_n < n ? top_n : n;
    int32_t *ids = malloc((k + 1) * sizeof *ids);
    float *lp = malloc((k + 1) * sizeof *lp);
    cr_assert(want && order && ids && lp);
    naive_logprobs(l, n, want);
    for (size_t i = 0; i < n; i++)
        order[i] = (int32_t)i;
    g_l = l;
    qsort(order, n, sizeof *order, by_rank);
    size_t finite = 0;
    for (size_t i = 0; i < n; i++)
        finite += score_of(l[i]) > -INFINITY;

    /* every few ids as the chosen one, the top list once */
    for (size_t c = 0; c < n; c += 1 + n / 64) {
        float got = 0;
        cr_assert_eq(gemfa_logprobs(l, n, (int32_t)c, &got, 0, NULL, NULL, NULL), GEMFA_OK,
                     "%s", gemfa_last_error());
        if (want[c] == -INFINITY)
            cr_assert_eq(got, -INFINITY);
        else
            cr_assert(fabs(got - want[c]) <= tol * (1 + fabs(want[c])),
                      "id %zu: %.9g vs %.9g", c, (double)got, want[c]);
    }
    size_t n_top = 12345;
    float chosen = 0;
    int32_t pick = order[n / 2];
    cr_assert_eq(gemfa_logprobs(l, n, pick, &chosen, top_n, ids, lp, &n_top), GEMFA_OK, "%s",
                 gemfa_last_error());
    cr_assert_eq(n_top, k < finite ? k : finite);
    for (size_t i = 0; i < n_top; i++) {
        cr_assert_eq(ids[i], order[i], "rank %zu: id %d, want %d", i, ids[i], order[i]);
        cr_assert(fabs(lp[i] - want[order[i]]) <= tol * (1 + fabs(want[order[i]])),
                  "rank %zu: %.9g vs %.9g", i, (double)lp[i], want[order[i]]);
        if (i > 0)
            cr_assert(lp[i] <= lp[i - 1]);
    }
    free(want);
    free(order);
    free(ids);
    free(lp);
}

static void fill_normal(float *x, size_t n, double sigma, double mean, gf_rng *r)
{
    for (size_t i = 0; i < n; i++) {
        double u1 = 1.0 - gf_rng_uniform(r), u2 = gf_rng_uniform(r);
        x[i] = (float)(mean + sigma * sqrt(-2.0 * log(u1)) * cos(2 * M_PI * u2));
    }
}

Test(logprobs, gemma_sized_random_vectors)
{
    size_t n = 262144;
    float *l = malloc(n * sizeof *l);
    gf_rng r;
    gf_rng_seed(&r, 7);
    double sigmas[] = {0.5, 3.0, 10.0, 30.0};
    double means[] = {0.0, 25.0, -1e4, 3e6};
    for (int s = 0; s < 4; s++) {
        fill_normal(l, n, sigmas[s], means[s], &r);
        check(l, n, 20, 2e-6);
    }
    /* a peaked distribution: one token near probability 1 */
    fill_normal(l, n, 1.0, 0.0, &r);
    l[12345] = 40.0f;
    check(l, n, 5, 2e-6);
    float lp;
    cr_assert_eq(gemfa_logprobs(l, n, 12345, &lp, 0, NULL, NULL, NULL), GEMFA_OK);
    cr_expect(lp <= 0.0f && lp > -1e-6f, "%g", (double)lp);
    free(l);
}

Test(logprobs, small_and_odd_sizes)
{
    gf_rng r;
    gf_rng_seed(&r, 11);
    float l[5000];
    size_t sizes[] = {1, 2, 3, 15, 17, 63, 64, 65, 4095, 4096, 4097, 5000};
    size_t tops[] = {1, 5, 20, 33, 100, 4999, 5000, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        for (size_t t = 0; t < sizeof tops / sizeof *tops; t++) {
            fill_normal(l, sizes[i], 4.0, 0.0, &r);
            check(l, sizes[i], tops[t], 2e-6);
        }
}

Test(logprobs, ties_go_to_the_lower_id)
{
    float l[1000];
    for (int i = 0; i < 1000; i++)
        l[i] = 1.5f;
    int32_t ids[10];
    float lp[10], chosen;
    size_t n_top;
    cr_assert_eq(gemfa_logprobs(l, 1000, 999, &chosen, 10, ids, lp, &n_top), GEMFA_OK);
    cr_expect_eq(n_top, 10);
    for (int i = 0; i < 10; i++) {
        cr_expect_eq(ids[i], i);
        cr_expect(fabsf(lp[i] - (float)-log(1000.0)) < 1e-6f);
    }
    cr_expect(fabsf(chosen - (float)-log(1000.0)) < 1e-6f);
    /* a tie between two leaders among lesser ones */
    for (int i = 0; i < 1000; i++)
        l[i] = (float)(i % 7) * -0.25f;
    l[500] = l[3] = 2.0f;
    cr_assert_eq(gemfa_logprobs(l, 1000, 0, NULL, 3, ids, lp, &n_top), GEMFA_OK);
    cr_expect(ids[0] == 3 && ids[1] == 500 && ids[2] == 0, "%d %d %d", ids[0], ids[1], ids[2]);
    check(l, 1000, 40, 2e-6);
}

Test(logprobs, nan_and_infinities)
{
    float l[100];
    for (int i = 0; i < 100; i++)
        l[i] = (float)i * 0.01f;
    l[10] = NAN;
    l[20] = -INFINITY;
    l[30] = -NAN;
    check(l, 100, 200, 2e-6); /* NaN and -inf are left out of the top list */
    float lp;
    cr_assert_eq(gemfa_logprobs(l, 100, 10, &lp, 0, NULL, NULL, NULL), GEMFA_OK);
    cr_expect_eq(lp, -INFINITY);
    /* +inf counts as the largest finite float: it takes all the mass */
    l[40] = INFINITY;
    int32_t ids[3];
    float top[3];
    size_t n_top;
    cr_assert_eq(gemfa_logprobs(l, 100, 41, &lp, 3, ids, top, &n_top), GEMFA_OK);
    cr_expect_eq(ids[0], 40);
    cr_expect_eq(top[0], 0.0f);
    cr_expect(lp < -1e38f, "%g", (double)lp);
    /* two of them share it */
    l[60] = INFINITY;
    cr_assert_eq(gemfa_logprobs(l, 100, 60, &lp, 3, ids, top, &n_top), GEMFA_OK);
    cr_expect(ids[0] == 40 && ids[1] == 60);
    cr_expect(fabsf(top[1] - (float)-log(2.0)) < 1e-6f && fabsf(lp - top[1]) == 0.0f);
    /* only one finite logit */
    for (int i = 0; i < 100; i++)
        l[i] = i % 2 ? NAN : -INFINITY;
    l[77] = -3.0e38f;
    cr_assert_eq(gemfa_logprobs(l, 100, 77, &lp, 3, ids, top, &n_top), GEMFA_OK);
    cr_expect(lp == 0.0f && n_top == 1 && ids[0] == 77 && top[0] == 0.0f);
    /* none: no distribution */
    l[77] = NAN;
    n_top = 99;
    cr_expect_eq(gemfa_logprobs(l, 100, 77, &lp, 3, ids, top, &n_top),
                 GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(gemfa_last_error(), "-inf or NaN"), "%s", gemfa_last_error());
    cr_expect_eq(n_top, 99);
}

Test(logprobs, hostile_arguments)
{
    float l[4] = {1, 2, 3, 4}, lp = 42.0f, top[2] = {7, 7};
    int32_t ids[2] = {-7, -7};
    size_t n_top = 99;
    cr_expect_eq(gemfa_logprobs(NULL, 4, 0, &lp, 0, NULL, NULL, NULL),
                 GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_logprobs(l, 0, 0, &lp, 0, NULL, NULL, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_logprobs(l, (size_t)INT32_MAX + 1, 0, &lp, 0, NULL, NULL, NULL),
                 GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_logprobs(l, 4, 4, &lp, 0, NULL, NULL, NULL), GEMFA_ERR_INVALID_TOKEN);
    cr_expect_eq(gemfa_logprobs(l, 4, -1, &lp, 0, NULL, NULL, NULL), GEMFA_ERR_INVALID_TOKEN);
    cr_expect_eq(gemfa_logprobs(l, 4, 0, &lp, 2, NULL, top, &n_top), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_logprobs(l, 4, 0, &lp, 2, ids, NULL, &n_top), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_logprobs(l, 4, 0, &lp, 2, ids, top, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect(lp == 42.0f && ids[0] == -7 && top[0] == 7.0f && n_top == 99,
              "no output is written on error");
    /* the chosen id is not read without chosen_logprob */
    cr_expect_eq(gemfa_logprobs(l, 4, -5, NULL, 2, ids, top, &n_top), GEMFA_OK);
    cr_expect(n_top == 2 && ids[0] == 3 && ids[1] == 2);
    /* nothing asked for is fine */
    cr_expect_eq(gemfa_logprobs(l, 4, -5, NULL, 0, NULL, NULL, NULL), GEMFA_OK);
    /* top_n = SIZE_MAX: clamped to the vocabulary, no overflow */
    int32_t ids4[4];
    float top4[4];
    cr_expect_eq(gemfa_logprobs(l, 4, 0, NULL, SIZE_MAX, ids4, top4, &n_top), GEMFA_OK);
    cr_expect_eq(n_top, 4);
    /* the heap path fails cleanly */
    float big[100];
    for (int i = 0; i < 100; i++)
        big[i] = (float)i;
    int32_t bids[64];
    float btop[64];
    n_top = 99;
    gf_alloc_fail_after(0);
    gemfa_status st = gemfa_logprobs(big, 100, 0, &lp, 64, bids, btop, &n_top);
    gf_alloc_fail_after(-1);
    cr_expect_eq(st, GEMFA_ERR_OUT_OF_MEMORY);
    cr_expect_eq(n_top, 99);
}

/* ---- the normalizer: every variant against long double ----------------- */

#include "sampling/select.h"
#include "sampling/sum_exp.h"

Test(logprobs, sum_exp_variants_agree)
{
    gf_rng r;
    gf_rng_seed(&r, 99);
    size_t sizes[] = {1, 7, 15, 16, 17, 31, 32, 33, 100, 4095, 4096, 4097, 262144, 262400};
    gf_sum_exp_variant variants[] = {GF_SUM_EXP_SCALAR, GF_SUM_EXP_PORTABLE, GF_SUM_EXP_AVX512};
    int have_avx512 = gf_sum_exp_best_isa() == GF_SUM_EXP_AVX512;
    float *l = malloc(262400 * sizeof *l);
    int checked_avx512 = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s];
        fill_normal(l, n, s % 2 ? 8.0 : 2.0, 0.0, &r);
        if (n > 20) { /* the special values, at odd places */
            l[3] = NAN;
            l[n - 2] = -INFINITY;
            l[n / 2] = -100.0f; /* below e^-87 of the maximum */
        }
        float max = -INFINITY;
        for (size_t i = 0; i < n; i++)
            max = gf_score(l[i]) > max ? gf_score(l[i]) : max;
        long double want = 0;
        for (size_t i = 0; i < n; i++)
            if (gf_score(l[i]) - max >= -87.0f)
                want += expl((long double)gf_score(l[i]) - max);
        for (size_t v = 0; v < 3; v++) {
            if (variants[v] == GF_SUM_EXP_AVX512 && !have_avx512)
                continue;
            checked_avx512 += variants[v] == GF_SUM_EXP_AVX512;
            double got = gf_sum_exp_isa(variants[v], l, n, max);
            cr_expect(fabsl(got - want) <= 2e-7L * want, "variant %d, n %zu: %.12g vs %.12Lg",
                      (int)variants[v], n, got, want);
        }
    }
    /* +inf: counts as FLT_MAX, so it takes all the mass */
    l[0] = INFINITY;
    l[1] = INFINITY;
    for (size_t v = 0; v < 3; v++)
        if (variants[v] != GF_SUM_EXP_AVX512 || have_avx512)
            cr_expect_eq(gf_sum_exp_isa(variants[v], l, 100, FLT_MAX), 2.0);
    cr_log_info("AVX-512 variant checked %d times", checked_avx512);
    free(l);
}
