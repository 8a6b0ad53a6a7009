/* test_stages.c — each stage of the sampler against exact expectations on
 * small hand-made logit vectors.  Logits are logs of small integers, so the
 * expected probabilities are simple fractions worked out by hand in the
 * comments.  gf_sampler_distribution returns the distribution gemfa_sample
 * draws from; where it matters both internal paths (top-k list and whole
 * vocabulary) are checked. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "gemfa.h"
#include "sampling/sampler.h"

#define MAXV 16

static gemfa_sampler *new_sampler(void)
{
    gemfa_sampler *s = NULL;
    cr_assert_eq(gemfa_sampler_new(NULL, &s), GEMFA_OK);
    return s;
}

/* logits[i] = ln(w[i]) (w[i] == 0 gives -inf) */
static void log_of(const double *w, size_t n, float *logits)
{
    for (size_t i = 0; i < n; i++)
        logits[i] = w[i] > 0 ? (float)log(w[i]) : -INFINITY;
}

/* The distribution equals `weights` normalized; ids with weight 0 must
 * have probability exactly 0. */
static void expect_weights(gemfa_sampler *s, const float *logits, size_t n, const int32_t *history,
                           size_t n_history, const double *weights)
{
    float probs[MAXV + 1];
    double total = 0.0;
    for (size_t i = 0; i < n; i++)
        total += weights[i];
    cr_assert_eq(gf_sampler_distribution(s, logits, n, history, n_history, probs), GEMFA_OK,
                 "%s", gemfa_last_error());
    for (size_t i = 0; i < n; i++) {
        double want = weights[i] / total;
        if (want == 0.0)
            cr_assert_eq(probs[i], 0.0f, "id %zu: got %.9g, expected 0", i, (double)probs[i]);
        else
            cr_assert(fabs(probs[i] - want) <= 2e-6, "id %zu: got %.9g, expected %.9g", i,
                      (double)probs[i], want);
    }
}

/* As expect_weights, on both paths: the vector padded with one -inf logit,
 * once with top-k off (whole vocabulary) and once with top_k = n (the
 * top-k list, which drops only the padding).  The sampler's top_k is
 * restored to 0. */
static void expect_both_paths(gemfa_sampler *s, const float *logits, size_t n,
                              const int32_t *history, size_t n_history, const double *weights)
{
    float padded[MAXV + 1];
    double w[MAXV + 1];
    memcpy(padded, logits, n * sizeof *padded);
    memcpy(w, weights, n * sizeof *w);
    padded[n] = -INFINITY;
    w[n] = 0.0;
    cr_assert_eq(gemfa_sampler_set_top_k(s, 0), GEMFA_OK);
    expect_weights(s, padded, n + 1, history, n_history, w);
    cr_assert_eq(gemfa_sampler_set_top_k(s, (int32_t)n), GEMFA_OK);
    expect_weights(s, padded, n + 1, history, n_history, w);
    cr_assert_eq(gemfa_sampler_set_top_k(s, 0), GEMFA_OK);
}

Test(stages, temperature_divides_the_logits)
{
    gemfa_sampler *s = new_sampler();
    float l[4];
    log_of((double[]){1, 2, 3, 4}, 4, l);
    /* T 1: probabilities 1:2:3:4 */
    expect_both_paths(s, l, 4, NULL, 0, (double[]){1, 2, 3, 4});
    /* T 1/2: weights squared, 1:4:9:16 */
    cr_assert_eq(gemfa_sampler_set_temperature(s, 0.5f), GEMFA_OK);
    expect_both_paths(s, l, 4, NULL, 0, (double[]){1, 4, 9, 16});
    /* T 2: square roots */
    cr_assert_eq(gemfa_sampler_set_temperature(s, 2.0f), GEMFA_OK);
    expect_both_paths(s, l, 4, NULL, 0, (double[]){1, sqrt(2), sqrt(3), 2});
    gemfa_sampler_free(s);
}

Test(stages, greedy_takes_the_first_maximum)
{
    gemfa_sampler *s = new_sampler();
    cr_assert_eq(gemfa_sampler_set_temperature(s, 0.0f), GEMFA_OK);
    float l[4] = {1.0f, 3.0f, 3.0f, 2.0f};
    expect_weights(s, l, 4, NULL, 0, (double[]){0, 1, 0, 0});
    int32_t id = -1;
    cr_assert_eq(gemfa_sample(s, l, 4, NULL, 0, &id), GEMFA_OK);
    cr_assert_eq(id, 1);
    /* other options do not matter when greedy */
    cr_assert_eq(gemfa_sampler_set_top_p(s, 0.1f), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_min_p(s, 0.9f), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_top_k(s, 3), GEMFA_OK);
    expect_weights(s, l, 4, NULL, 0, (double[]){0, 1, 0, 0});
    gemfa_sampler_free(s);
}

Test(stages, top_k_keeps_the_k_best_renormalized)
{
    gemfa_sampler *s = new_sampler();
    float l[5];
    log_of((double[]){3, 1, 5, 2, 4}, 5, l);
    /* k 3: 3, 5, 4 remain, 3:5:4 */
    cr_assert_eq(gemfa_sampler_set_top_k(s, 3), GEMFA_OK);
    expect_weights(s, l, 5, NULL, 0, (double[]){3, 0, 5, 0, 4});
    /* k 1: the maximum alone */
    cr_assert_eq(gemfa_sampler_set_top_k(s, 1), GEMFA_OK);
    expect_weights(s, l, 5, NULL, 0, (double[]){0, 0, 1, 0, 0});
    /* k >= n: off */
    cr_assert_eq(gemfa_sampler_set_top_k(s, 5), GEMFA_OK);
    expect_weights(s, l, 5, NULL, 0, (double[]){3, 1, 5, 2, 4});
    cr_assert_eq(gemfa_sampler_set_top_k(s, 7), GEMFA_OK);
    expect_weights(s, l, 5, NULL, 0, (double[]){3, 1, 5, 2, 4});
    /* ties at the k-th value: the lower ids are kept (exactly k tokens) */
    float tied[4] = {1.0f, 1.0f, 1.0f, 0.0f};
    cr_assert_eq(gemfa_sampler_set_top_k(s, 2), GEMFA_OK);
    expect_weights(s, tied, 4, NULL, 0, (double[]){1, 1, 0, 0});
    gemfa_sampler_free(s);
}

Test(stages, top_p_keeps_the_shortest_prefix_reaching_p)
{
    gemfa_sampler *s = new_sampler();
    float l[4];
    log_of((double[]){1, 2, 3, 4}, 4, l); /* probabilities .1 .2 .3 .4 */
    /* p .5: .4 < .5, .4 + .3 >= .5: keep 4 and 3 */
    cr_assert_eq(gemfa_sampler_set_top_p(s, 0.5f), GEMFA_OK);
    expect_both_paths(s, l, 4, NULL, 0, (double[]){0, 0, 3, 4});
    /* p .71: .7 < .71, .9 >= .71 */
    cr_assert_eq(gemfa_sampler_set_top_p(s, 0.71f), GEMFA_OK);
    expect_both_paths(s, l, 4, NULL, 0, (double[]){0, 2, 3, 4});
    /* p .39: the top token alone already reaches it */
    cr_assert_eq(gemfa_sampler_set_top_p(s, 0.39f), GEMFA_OK);
    expect_both_paths(s, l, 4, NULL, 0, (double[]){0, 0, 0, 1});
    /* p 1: off */
    cr_assert_eq(gemfa_sampler_set_top_p(s, 1.0f), GEMFA_OK);
    expect_both_paths(s, l, 4, NULL, 0, (double[]){1, 2, 3, 4});
    /* after temperature 1/2 (1:4:9:16 of 30) 16/30 >= .5 alone; top-p
     * before temperature would have kept two */
    cr_assert_eq(gemfa_sampler_set_top_p(s, 0.5f), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_temperature(s, 0.5f), GEMFA_OK);
    expect_both_paths(s, l, 4, NULL, 0, (double[]){0, 0, 0, 1});
    gemfa_sampler_free(s);
}

Test(stages, top_p_works_on_the_renormalized_top_k)
{
    gemfa_sampler *s = new_sampler();
    float l[5];
    log_of((double[]){1, 2, 3, 4, 5}, 5, l);
    /* top-3 renormalized: 5/12 = .42, 9/12 = .75 >= .7: keep 5 and 4.
     * On the full distribution it would take three (5/15, 9/15 < .7). */
    cr_assert_eq(gemfa_sampler_set_top_k(s, 3), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_top_p(s, 0.7f), GEMFA_OK);
    expect_weights(s, l, 5, NULL, 0, (double[]){0, 0, 0, 4, 5});
    gemfa_sampler_free(s);
}

Test(stages, min_p_keeps_tokens_near_the_top)
{
    gemfa_sampler *s = new_sampler();
    float l[5];
    log_of((double[]){1, 2, 4, 8, 16}, 5, l);
    /* min_p .2: weight >= 3.2 */
    cr_assert_eq(gemfa_sampler_set_min_p(s, 0.2f), GEMFA_OK);
    expect_both_paths(s, l, 5, NULL, 0, (double[]){0, 0, 4, 8, 16});
    /* min_p 1: the top token only */
    cr_assert_eq(gemfa_sampler_set_min_p(s, 1.0f), GEMFA_OK);
    expect_both_paths(s, l, 5, NULL, 0, (double[]){0, 0, 0, 0, 1});
    /* after temperature 2 the weights are square roots 1, 1.41, 2, 2.83, 4:
     * min_p .4 keeps >= 1.6 (before temperature it would keep 8 and 16 only) */
    cr_assert_eq(gemfa_sampler_set_min_p(s, 0.4f), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_temperature(s, 2.0f), GEMFA_OK);
    expect_both_paths(s, l, 5, NULL, 0, (double[]){0, 0, 2, sqrt(8), 4});
    gemfa_sampler_free(s);
}

Test(stages, min_p_comes_after_top_p)
{
    gemfa_sampler *s = new_sampler();
    float l[5];
    log_of((double[]){1, 2, 4, 8, 16}, 5, l);
    /* top_p .9 of 31: 16, 24, 28 >= 27.9: keep 16, 8, 4; then min_p .3
     * keeps >= 4.8: 16 and 8 */
    cr_assert_eq(gemfa_sampler_set_top_p(s, 0.9f), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_min_p(s, 0.3f), GEMFA_OK);
    expect_both_paths(s, l, 5, NULL, 0, (double[]){0, 0, 0, 8, 16});
    gemfa_sampler_free(s);
}

/* softmax weights of adjusted logits */
static void exp_of(const double *adjusted, size_t n, double *w)
{
    for (size_t i = 0; i < n; i++)
        w[i] = isinf(adjusted[i]) ? 0.0 : exp(adjusted[i]);
}

Test(stages, repetition_penalty_divides_positive_multiplies_negative_once)
{
    gemfa_sampler *s = new_sampler();
    float l[4] = {2.0f, -2.0f, 1.0f, 0.5f};
    int32_t h[3] = {0, 1, 0}; /* id 0 twice: penalized once */
    cr_assert_eq(gemfa_sampler_set_penalties(s, 2.0f, 0.0f, 0.0f, 0), GEMFA_OK);
    double w[4];
    exp_of((double[]){2.0 / 2, -2.0 * 2, 1.0, 0.5}, 4, w);
    expect_both_paths(s, l, 4, h, 3, w);
    /* a penalty below 1 favours repeats the same way */
    cr_assert_eq(gemfa_sampler_set_penalties(s, 0.5f, 0.0f, 0.0f, 0), GEMFA_OK);
    exp_of((double[]){2.0 / 0.5, -2.0 * 0.5, 1.0, 0.5}, 4, w);
    expect_both_paths(s, l, 4, h, 3, w);
    gemfa_sampler_free(s);
}

Test(stages, frequency_and_presence_follow_openai)
{
    gemfa_sampler *s = new_sampler();
    float l[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    int32_t h[4] = {2, 2, 2, 1};
    /* mu - count * 0.5 - [count > 0] * 0.25 */
    cr_assert_eq(gemfa_sampler_set_penalties(s, 1.0f, 0.5f, 0.25f, 0), GEMFA_OK);
    double w[4];
    exp_of((double[]){0, -0.75, -1.75, 0}, 4, w);
    expect_both_paths(s, l, 4, h, 4, w);
    /* all three: repetition first, then frequency and presence */
    float l2[2] = {2.0f, -2.0f};
    int32_t h2[3] = {0, 0, 1};
    cr_assert_eq(gemfa_sampler_set_penalties(s, 2.0f, 0.5f, 0.25f, 0), GEMFA_OK);
    exp_of((double[]){2.0 / 2 - 2 * 0.5 - 0.25, -2.0 * 2 - 0.5 - 0.25}, 2, w);
    expect_both_paths(s, l2, 2, h2, 3, w);
    gemfa_sampler_free(s);
}

Test(stages, penalties_see_only_the_last_n_tokens)
{
    gemfa_sampler *s = new_sampler();
    float l[3] = {0.0f, 0.0f, 0.0f};
    int32_t h[5] = {0, 0, 0, 1, 2};
    double w[3];
    cr_assert_eq(gemfa_sampler_set_penalties(s, 1.0f, 0.0f, 1.0f, 2), GEMFA_OK);
    exp_of((double[]){0, -1, -1}, 3, w);
    expect_both_paths(s, l, 3, h, 5, w);
    /* last_n 0 and last_n past the history: everything */
    exp_of((double[]){-1, -1, -1}, 3, w);
    cr_assert_eq(gemfa_sampler_set_penalties(s, 1.0f, 0.0f, 1.0f, 0), GEMFA_OK);
    expect_both_paths(s, l, 3, h, 5, w);
    cr_assert_eq(gemfa_sampler_set_penalties(s, 1.0f, 0.0f, 1.0f, 100), GEMFA_OK);
    expect_both_paths(s, l, 3, h, 5, w);
    /* an empty history changes nothing */
    exp_of((double[]){0, 0, 0}, 3, w);
    expect_both_paths(s, l, 3, NULL, 0, w);
    gemfa_sampler_free(s);
}

Test(stages, logit_bias_adds_bans_replaces_and_clears)
{
    gemfa_sampler *s = new_sampler();
    float l[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    cr_assert_eq(gemfa_sampler_set_logit_bias(s, 0, (float)log(3.0)), GEMFA_OK);
    expect_both_paths(s, l, 4, NULL, 0, (double[]){3, 1, 1, 1});
    cr_assert_eq(gemfa_sampler_set_logit_bias(s, 3, -INFINITY), GEMFA_OK);
    expect_both_paths(s, l, 4, NULL, 0, (double[]){3, 1, 1, 0});
    cr_assert_eq(gemfa_sampler_set_logit_bias(s, 0, 0.0f), GEMFA_OK); /* replaces */
    expect_both_paths(s, l, 4, NULL, 0, (double[]){1, 1, 1, 0});
    cr_assert_eq(gemfa_sampler_clear_logit_bias(s), GEMFA_OK);
    expect_both_paths(s, l, 4, NULL, 0, (double[]){1, 1, 1, 1});
    /* a banned token is never the greedy pick, and bias cannot revive -inf */
    float g[3] = {5.0f, 1.0f, -INFINITY};
    cr_assert_eq(gemfa_sampler_set_logit_bias(s, 0, -INFINITY), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_logit_bias(s, 2, 100.0f), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_temperature(s, 0.0f), GEMFA_OK);
    expect_weights(s, g, 3, NULL, 0, (double[]){0, 1, 0});
    gemfa_sampler_free(s);
}

/* HF runs SequenceBiasLogitsProcessor before the repetition penalty. */
Test(stages, logit_bias_comes_before_penalties)
{
    gemfa_sampler *s = new_sampler();
    float l[2] = {1.0f, 0.0f};
    int32_t h[1] = {0};
    cr_assert_eq(gemfa_sampler_set_logit_bias(s, 0, 1.0f), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_penalties(s, 2.0f, 0.0f, 0.0f, 0), GEMFA_OK);
    double w[2];
    exp_of((double[]){(1.0 + 1.0) / 2.0, 0.0}, 2, w); /* not 1/2 + 1 */
    expect_both_paths(s, l, 2, h, 1, w);
    gemfa_sampler_free(s);
}

Test(stages, nan_counts_as_minus_infinity_and_plus_infinity_as_the_top)
{
    gemfa_sampler *s = new_sampler();
    float l[3] = {NAN, 0.0f, 0.0f};
    expect_both_paths(s, l, 3, NULL, 0, (double[]){0, 1, 1});
    float inf[3] = {INFINITY, 5.0f, INFINITY};
    expect_both_paths(s, inf, 3, NULL, 0, (double[]){1, 0, 1});
    cr_assert_eq(gemfa_sampler_set_temperature(s, 0.0f), GEMFA_OK);
    expect_weights(s, l, 3, NULL, 0, (double[]){0, 1, 0});
    expect_weights(s, inf, 3, NULL, 0, (double[]){1, 0, 0});
    gemfa_sampler_free(s);
}

Test(stages, nothing_left_to_draw_is_an_error)
{
    gemfa_sampler *s = new_sampler();
    float l[3] = {NAN, -INFINITY, 0.0f};
    int32_t id = 77;
    cr_assert_eq(gemfa_sampler_set_logit_bias(s, 2, -INFINITY), GEMFA_OK);
    for (int mode = 0; mode < 3; mode++) {
        /* whole vocabulary, top-k list, greedy */
        cr_assert_eq(gemfa_sampler_set_top_k(s, mode == 1 ? 2 : 0), GEMFA_OK);
        cr_assert_eq(gemfa_sampler_set_temperature(s, mode == 2 ? 0.0f : 1.0f), GEMFA_OK);
        cr_assert_eq(gemfa_sample(s, l, 3, NULL, 0, &id), GEMFA_ERR_INVALID_ARGUMENT);
        cr_assert(strstr(gemfa_last_error(), "-inf"), "%s", gemfa_last_error());
        cr_assert_eq(id, 77);
    }
    gemfa_sampler_free(s);
}
