/* test_distribution.c — gemfa_sample's draws follow the distribution the
 * stages define.  Each case draws N tokens with a fixed seed from a tiny
 * vocabulary whose probabilities are worked out here from the formulas
 * (not from the library), and runs Pearson's chi-square test.  The same
 * counts are also tested against the distribution a typical mistake would
 * give (wrong stage order, no temperature, ...), which must fail: this
 * shows the threshold has the power to catch such a bug. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "gemfa.h"

#define N_DRAWS 200000
#define MAXV 320

/* Chi-square critical value for `df` degrees of freedom at a tail
 * probability of about 1e-4 (Wilson-Hilferty, z = 3.72). */
static double critical(int df)
{
    double z = 3.72, a = 2.0 / (9.0 * df);
    double c = 1.0 - a + z * sqrt(a);
    return df * c * c * c;
}

/* Pearson's statistic of counts against probs over n categories, with
 * its degrees of freedom; INFINITY when a category of probability 0 was
 * drawn. */
static double chi_square(const long *counts, const double *probs, size_t n, int *df)
{
    double chi = 0.0;
    int cats = 0, impossible = 0;
    for (size_t i = 0; i < n; i++) {
        if (probs[i] == 0.0) {
            impossible |= counts[i] > 0;
            continue;
        }
        double e = probs[i] * N_DRAWS;
        chi += (counts[i] - e) * (counts[i] - e) / e;
        cats++;
    }
    *df = cats > 1 ? cats - 1 : 1;
    return impossible ? INFINITY : chi;
}

static void normalize(double *w, size_t n)
{
    double t = 0.0;
    for (size_t i = 0; i < n; i++)
        t += w[i];
    for (size_t i = 0; i < n; i++)
        w[i] /= t;
}

/* Draws N_DRAWS tokens; counts are pooled by group[] (NULL: by id). */
static void draw_counts(gemfa_sampler *s, const float *logits, size_t n, const int32_t *history,
                        size_t n_history, const int *group, long *counts, size_t n_groups)
{
    memset(counts, 0, n_groups * sizeof *counts);
    for (long k = 0; k < N_DRAWS; k++) {
        int32_t id = -1;
        cr_assert_eq(gemfa_sample(s, logits, n, history, n_history, &id), GEMFA_OK, "%s",
                     gemfa_last_error());
        cr_assert(id >= 0 && (size_t)id < n);
        counts[group ? group[id] : id]++;
    }
}

/* The counts fit `right` and do not fit `wrong`. */
static void expect_fit(const long *counts, double *right, double *wrong, size_t n,
                       const char *what)
{
    normalize(right, n);
    normalize(wrong, n);
    int df;
    double chi = chi_square(counts, right, n, &df);
    cr_assert_lt(chi, critical(df), "%s: chi-square %.1f >= %.1f (df %d)", what, chi,
                 critical(df), df);
    int df_wrong;
    double chi_wrong = chi_square(counts, wrong, n, &df_wrong);
    cr_assert_gt(chi_wrong, critical(df_wrong), "%s: the wrong distribution fits too (%.1f)",
                 what, chi_wrong);
    cr_log_info("%s: chi-square %.1f (df %d, critical %.1f), wrong %.1f", what, chi, df,
                critical(df), chi_wrong);
}

static gemfa_sampler *new_sampler(uint64_t seed)
{
    gemfa_sampler *s = NULL;
    cr_assert_eq(gemfa_sampler_new(NULL, &s), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_seed(s, seed), GEMFA_OK);
    return s;
}

static void log_of(const double *w, size_t n, float *logits)
{
    for (size_t i = 0; i < n; i++)
        logits[i] = w[i] > 0 ? (float)log(w[i]) : -INFINITY;
}

Test(distribution, temperature)
{
    gemfa_sampler *s = new_sampler(1);
    float l[6];
    log_of((double[]){1, 2, 3, 4, 5, 6}, 6, l);
    cr_assert_eq(gemfa_sampler_set_temperature(s, 0.8f), GEMFA_OK);
    long c[6];
    draw_counts(s, l, 6, NULL, 0, NULL, c, 6);
    double right[6], wrong[6];
    for (int i = 0; i < 6; i++) {
        right[i] = pow(i + 1, 1.0 / 0.8); /* weights^(1/T) */
        wrong[i] = i + 1;                 /* temperature ignored */
    }
    expect_fit(c, right, wrong, 6, "temperature 0.8");
    gemfa_sampler_free(s);
}

Test(distribution, top_k_then_temperature)
{
    gemfa_sampler *s = new_sampler(2);
    float l[8];
    log_of((double[]){5, 1, 8, 3, 7, 2, 6, 4}, 8, l);
    cr_assert_eq(gemfa_sampler_set_top_k(s, 4), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_temperature(s, 1.5f), GEMFA_OK);
    long c[8];
    draw_counts(s, l, 8, NULL, 0, NULL, c, 8);
    /* the best four (8, 7, 6, 5) with weights^(1/1.5) */
    double right[8] = {0}, wrong[8] = {0};
    const double w[8] = {5, 1, 8, 3, 7, 2, 6, 4};
    for (int i = 0; i < 8; i++)
        if (w[i] >= 5) {
            right[i] = pow(w[i], 1.0 / 1.5);
            wrong[i] = w[i]; /* temperature skipped after top-k */
        }
    expect_fit(c, right, wrong, 8, "top_k 4, T 1.5");
    gemfa_sampler_free(s);
}

Test(distribution, top_p_after_temperature)
{
    gemfa_sampler *s = new_sampler(3);
    float l[6];
    log_of((double[]){1, 2, 3, 4, 5, 6}, 6, l);
    cr_assert_eq(gemfa_sampler_set_temperature(s, 0.7f), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_top_p(s, 0.8f), GEMFA_OK);
    long c[6];
    draw_counts(s, l, 6, NULL, 0, NULL, c, 6);
    /* weights i^(1/0.7): 1, 2.69, 4.80, 7.26, 9.96, 12.92 of 38.63; from the
     * top: .334, .592, .780, .904 >= .8: keep 6, 5, 4, 3.  Top-p before
     * temperature (of 21: .286, .524, .714, .857) keeps the same four, so the
     * mistake tested is a missing renormalization: probabilities of the
     * whole vocabulary. */
    double right[6] = {0}, wrong[6] = {0};
    for (int i = 2; i < 6; i++) {
        right[i] = pow(i + 1, 1.0 / 0.7);
        wrong[i] = right[i];
    }
    wrong[0] = pow(1, 1.0 / 0.7); /* mass that should have gone */
    wrong[1] = pow(2, 1.0 / 0.7);
    expect_fit(c, right, wrong, 6, "T 0.7, top_p 0.8");
    gemfa_sampler_free(s);
}

Test(distribution, min_p_after_temperature)
{
    gemfa_sampler *s = new_sampler(4);
    float l[8];
    log_of((double[]){1, 2, 3, 4, 5, 6, 7, 8}, 8, l);
    cr_assert_eq(gemfa_sampler_set_temperature(s, 2.0f), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_min_p(s, 0.6f), GEMFA_OK);
    long c[8];
    draw_counts(s, l, 8, NULL, 0, NULL, c, 8);
    /* weights sqrt(i): keep sqrt(i) >= 0.6 sqrt(8) = 1.70, i >= 2.88: 3..8.
     * min-p before temperature keeps i >= 4.8: 5..8. */
    double right[8] = {0}, wrong[8] = {0};
    for (int i = 0; i < 8; i++) {
        right[i] = i + 1 >= 3 ? sqrt(i + 1) : 0.0;
        wrong[i] = i + 1 >= 5 ? sqrt(i + 1) : 0.0;
    }
    expect_fit(c, right, wrong, 8, "T 2, min_p 0.6");
    gemfa_sampler_free(s);
}

Test(distribution, all_warpers_together)
{
    gemfa_sampler *s = new_sampler(5);
    float l[8];
    log_of((double[]){8, 7, 6, 5, 4, 3, 2, 1}, 8, l);
    cr_assert_eq(gemfa_sampler_set_top_k(s, 6), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_temperature(s, 0.5f), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_top_p(s, 0.9f), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_min_p(s, 0.3f), GEMFA_OK);
    long c[8];
    draw_counts(s, l, 8, NULL, 0, NULL, c, 8);
    /* T 0.5 squares: 64, 49, 36, 25, 16, 9 (top 6) of 199: cumulative .322,
     * .568, .749, .874, .955 >= .9: keep five; min_p .3 keeps >= 19.2: the
     * four of 64, 49, 36, 25.  With top-p on the whole vocabulary (of 204)
     * the cut is the same; the mistake tested is min-p before temperature
     * (keeps i >= 2.4 of 8: 8, 7, 6, 5, 4, 3 -> five after top-p). */
    double right[8] = {64, 49, 36, 25, 0, 0, 0, 0};
    double wrong[8] = {64, 49, 36, 25, 16, 0, 0, 0};
    expect_fit(c, right, wrong, 8, "top_k 6, T 0.5, top_p 0.9, min_p 0.3");
    gemfa_sampler_free(s);
}

/* A vocabulary of several draw blocks: five likely tokens spread out and
 * 295 unlikely ones, pooled into one category. */
Test(distribution, whole_vocabulary_across_blocks)
{
    gemfa_sampler *s = new_sampler(6);
    static float l[300];
    static int group[300];
    const int big[5] = {10, 100, 170, 250, 299};
    for (int i = 0; i < 300; i++) {
        l[i] = 0.0f;
        group[i] = 5;
    }
    for (int k = 0; k < 5; k++) {
        l[big[k]] = (float)log(40.0 * (k + 1));
        group[big[k]] = k;
    }
    long c[6];
    draw_counts(s, l, 300, NULL, 0, group, c, 6);
    double right[6] = {40, 80, 120, 160, 200, 295};
    double wrong[6] = {40, 80, 120, 160, 200, 0}; /* the tail never drawn */
    expect_fit(c, right, wrong, 6, "300 tokens, T 1");
    gemfa_sampler_free(s);
}

Test(distribution, penalties_and_bias)
{
    gemfa_sampler *s = new_sampler(7);
    float l[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    int32_t h[3] = {0, 0, 1};
    cr_assert_eq(gemfa_sampler_set_penalties(s, 2.0f, 0.25f, 0.0f, 2), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_logit_bias(s, 3, (float)log(2.0)), GEMFA_OK);
    long c[4];
    draw_counts(s, l, 4, h, 3, NULL, c, 4);
    /* window {0, 1}: id 0 -> 1/2 - 0.25, id 1 -> 1/2 - 0.25; id 3 gets +ln 2
     * (before the penalty, which it escapes) */
    double right[4] = {exp(0.25), exp(0.25), exp(1.0), 2 * exp(1.0)};
    /* the whole history instead of the last two: id 0 counted twice */
    double wrong[4] = {exp(0.0), exp(0.25), exp(1.0), 2 * exp(1.0)};
    expect_fit(c, right, wrong, 4, "penalties over last 2, bias");
    gemfa_sampler_free(s);
}
