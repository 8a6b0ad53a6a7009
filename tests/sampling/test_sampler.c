/* test_sampler.c — the sampler through its public API: defaults from
 * generation_config, greedy == argmax, top_k 1 == greedy, seeds, failure
 * atomicity of every invalid call, allocation behaviour, and the fast
 * paths on a Gemma-sized vocabulary against a plain reference (full sort,
 * double precision) written here. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "gemfa.h"
#include "loader/model.h"
#include "sampling/rng.h"
#include "sampling/sampler.h"

#define BIG_VOCAB 262400

static gemfa_sampler *new_sampler(void)
{
    gemfa_sampler *s = NULL;
    cr_assert_eq(gemfa_sampler_new(NULL, &s), GEMFA_OK);
    return s;
}

static float *normal_logits(size_t n, double sigma, uint64_t seed)
{
    float *l = malloc(n * sizeof *l);
    cr_assert_not_null(l);
    gf_rng rng;
    gf_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        double u1 = 1.0 - gf_rng_uniform(&rng), u2 = gf_rng_uniform(&rng);
        l[i] = (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2) * sigma);
    }
    return l;
}

/* ---- a plain reference: HF's warpers with a full sort ------------------ */

typedef struct ref_options {
    double temperature, top_p, min_p;
    size_t top_k;
} ref_options;

static const float *g_sort_logits;

static int rank_cmp(const void *a, const void *b)
{
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    float x = g_sort_logits[i], y = g_sort_logits[j];
    if (x != y)
        return x > y ? -1 : 1;
    return i < j ? -1 : 1;
}

/* probs[i] from finite logits, following HF: temperature, top-k, top-p on
 * the renormalized top-k, min-p; ties ranked by id. */
static void ref_distribution(const float *logits, size_t n, ref_options o, double *probs)
{
    int32_t *order = malloc(n * sizeof *order);
    double *w = malloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++)
        order[i] = (int32_t)i;
    g_sort_logits = logits;
    qsort(order, n, sizeof *order, rank_cmp);
    memset(probs, 0, n * sizeof *probs);
    if (o.temperature == 0.0) {
        probs[order[0]] = 1.0;
        free(order);
        free(w);
        return;
    }
    size_t m = o.top_k > 0 && o.top_k < n ? o.top_k : n;
    double z = 0.0;
    for (size_t j = 0; j < m; j++) {
        w[j] = exp(((double)logits[order[j]] - logits[order[0]]) / o.temperature);
        z += w[j];
    }
    size_t keep = m;
    double cum = 0.0;
    if (o.top_p < 1.0)
        for (size_t j = 0; j < m; j++) {
            cum += w[j];
            if (cum >= o.top_p * z) {
                keep = j + 1;
                break;
            }
        }
    double total = 0.0;
    for (size_t j = 0; j < keep; j++)
        if (w[j] >= o.min_p * w[0])
            total += w[j];
    for (size_t j = 0; j < keep; j++)
        if (w[j] >= o.min_p * w[0])
            probs[order[j]] = w[j] / total;
    free(order);
    free(w);
}

static void configure(gemfa_sampler *s, ref_options o)
{
    cr_assert_eq(gemfa_sampler_set_temperature(s, (float)o.temperature), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_top_k(s, (int32_t)o.top_k), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_top_p(s, (float)o.top_p), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_min_p(s, (float)o.min_p), GEMFA_OK);
}

/* The sampler's distribution equals the reference: same kept set, and
 * probabilities within float rounding. */
static void expect_reference(gemfa_sampler *s, const float *logits, size_t n, ref_options o,
                             const char *what)
{
    float *got = malloc(n * sizeof *got);
    double *want = malloc(n * sizeof *want);
    configure(s, o);
    ref_distribution(logits, n, o, want);
    cr_assert_eq(gf_sampler_distribution(s, logits, n, NULL, 0, got), GEMFA_OK, "%s",
                 gemfa_last_error());
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(got[i] > 0.0f, want[i] > 0.0, "%s: id %zu kept %d, reference %d", what, i,
                     got[i] > 0.0f, want[i] > 0.0);
        cr_assert(fabs(got[i] - want[i]) <= 1e-5 * want[i] + 1e-12,
                  "%s: id %zu p %.9g, reference %.9g", what, i, (double)got[i], want[i]);
        kept += want[i] > 0.0;
    }
    cr_log_info("%s: %zu kept", what, kept);
    free(got);
    free(want);
}

/* ---- defaults ---------------------------------------------------------- */

Test(sampler, null_model_gives_neutral_defaults)
{
    gemfa_sampler *s = NULL;
    cr_assert_eq(gemfa_sampler_new(NULL, &s), GEMFA_OK);
    cr_assert_eq(s->temperature, 1.0f);
    cr_assert_eq(s->top_k, 0);
    cr_assert_eq(s->top_p, 1.0f);
    cr_assert_eq(s->min_p, 0.0f);
    cr_assert_eq(s->repetition, 1.0f);
    cr_assert_eq(s->frequency, 0.0f);
    cr_assert_eq(s->presence, 0.0f);
    cr_assert_eq(s->last_n, 0);
    /* and the distribution is the plain softmax */
    float *l = normal_logits(300, 2.0, 5);
    float got[300];
    double want[300];
    ref_distribution(l, 300, (ref_options){1.0, 1.0, 0.0, 0}, want);
    cr_assert_eq(gf_sampler_distribution(s, l, 300, NULL, 0, got), GEMFA_OK);
    for (int i = 0; i < 300; i++)
        cr_assert(fabs(got[i] - want[i]) <= 1e-5 * want[i] + 1e-12);
    free(l);
    gemfa_sampler_free(s);
    cr_assert_eq(gemfa_sampler_new(NULL, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_sampler_free(NULL);
}

Test(sampler, model_defaults_come_from_generation_config)
{
    struct gemfa_model m;
    memset(&m, 0, sizeof m);
    m.gen = (gf_generation_defaults){.has_do_sample = 1, .do_sample = 1,
                                     .has_temperature = 1, .temperature = 0.7f,
                                     .has_top_k = 1, .top_k = 64,
                                     .has_top_p = 1, .top_p = 0.95f,
                                     .has_min_p = 1, .min_p = 0.05f,
                                     .has_repetition_penalty = 1, .repetition_penalty = 1.3f};
    gemfa_sampler *s = NULL;
    cr_assert_eq(gemfa_sampler_new(&m, &s), GEMFA_OK);
    cr_assert_eq(s->temperature, 0.7f);
    cr_assert_eq(s->top_k, 64);
    cr_assert_eq(s->top_p, 0.95f);
    cr_assert_eq(s->min_p, 0.05f);
    cr_assert_eq(s->repetition, 1.3f);
    cr_assert_eq(s->last_n, 0);
    gemfa_sampler_free(s);

    /* do_sample false, or absent (HF's default), means greedy */
    m.gen.do_sample = 0;
    cr_assert_eq(gemfa_sampler_new(&m, &s), GEMFA_OK);
    cr_assert_eq(s->temperature, 0.0f);
    cr_assert_eq(s->top_k, 64); /* kept for when the caller sets a temperature */
    gemfa_sampler_free(s);
    m.gen.has_do_sample = 0;
    m.gen.do_sample = 1;
    cr_assert_eq(gemfa_sampler_new(&m, &s), GEMFA_OK);
    cr_assert_eq(s->temperature, 0.0f);
    gemfa_sampler_free(s);

    /* absent keys take HF GenerationConfig's defaults */
    memset(&m.gen, 0, sizeof m.gen);
    m.gen.has_do_sample = 1;
    m.gen.do_sample = 1;
    cr_assert_eq(gemfa_sampler_new(&m, &s), GEMFA_OK);
    cr_assert_eq(s->temperature, 1.0f);
    cr_assert_eq(s->top_k, 50);
    cr_assert_eq(s->top_p, 1.0f);
    cr_assert_eq(s->min_p, 0.0f);
    cr_assert_eq(s->repetition, 1.0f);
    gemfa_sampler_free(s);
}

/* The tiny fixture's generation_config.json: do_sample true, top_k 64,
 * top_p 0.95, no temperature (so HF's 1). */
Test(sampler, defaults_of_the_tiny_checkpoint)
{
    const char *data = getenv("GEMFA_TEST_DATA");
    cr_assert_not_null(data, "GEMFA_TEST_DATA is not set");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tiny-gemma3n", data);
    gemfa_model_options *o = NULL;
    cr_assert_eq(gemfa_model_options_new(&o), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_set_vocab_only(o, 1), GEMFA_OK);
    gemfa_model *m = NULL;
    cr_assert_eq(gemfa_model_load(dir, o, &m), GEMFA_OK, "%s", gemfa_last_error());
    gemfa_model_options_free(o);
    gemfa_sampler *s = NULL;
    cr_assert_eq(gemfa_sampler_new(m, &s), GEMFA_OK);
    gemfa_model_free(m); /* the sampler keeps no pointer to the model */
    cr_assert_eq(s->temperature, 1.0f);
    cr_assert_eq(s->top_k, 64);
    cr_assert_eq(s->top_p, 0.95f);
    cr_assert_eq(s->min_p, 0.0f);
    cr_assert_eq(s->repetition, 1.0f);
    int32_t id;
    float l[100] = {0};
    cr_assert_eq(gemfa_sample(s, l, 100, NULL, 0, &id), GEMFA_OK);
    cr_assert_lt(id, 64); /* top-k 64 of 100 equal logits: the lowest ids */
    gemfa_sampler_free(s);
}

Test(sampler, bad_generation_config_values_are_config_errors)
{
    struct gemfa_model m;
    gf_generation_defaults bad[] = {
        {.has_temperature = 1, .temperature = -1.0f},
        {.has_temperature = 1, .temperature = NAN},
        {.has_top_k = 1, .top_k = -2},
        {.has_top_p = 1, .top_p = 0.0f},
        {.has_top_p = 1, .top_p = 1.5f},
        {.has_min_p = 1, .min_p = 2.0f},
        {.has_repetition_penalty = 1, .repetition_penalty = 0.0f},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&m, 0, sizeof m);
        m.gen = bad[i];
        gemfa_sampler *s = (gemfa_sampler *)&m; /* must stay untouched */
        cr_assert_eq(gemfa_sampler_new(&m, &s), GEMFA_ERR_CONFIG, "case %zu", i);
        cr_assert_eq(s, (gemfa_sampler *)&m);
        cr_assert(strstr(gemfa_last_error(), "generation_config.json"), "%s", gemfa_last_error());
    }
}

/* ---- greedy, top-k 1, seeds ------------------------------------------- */

static size_t argmax_of(const float *l, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (l[i] > l[best])
            best = i;
    return best;
}

Test(sampler, greedy_equals_argmax)
{
    gemfa_sampler *s = new_sampler();
    cr_assert_eq(gemfa_sampler_set_temperature(s, 0.0f), GEMFA_OK);
    size_t sizes[] = {1, 2, 15, 16, 17, 1000, BIG_VOCAB};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
        for (uint64_t seed = 1; seed <= 4; seed++) {
            size_t n = sizes[k];
            float *l = normal_logits(n, 3.0, seed * 100 + k);
            if (n > 20)
                l[n / 3] = NAN; /* NaN never wins */
            int32_t id = -1;
            cr_assert_eq(gemfa_sample(s, l, n, NULL, 0, &id), GEMFA_OK);
            l[n / 3 < n ? n / 3 : 0] = n > 20 ? -INFINITY : l[n / 3 < n ? n / 3 : 0];
            cr_assert_eq((size_t)id, argmax_of(l, n), "n %zu seed %llu", n,
                         (unsigned long long)seed);
            free(l);
        }
    gemfa_sampler_free(s);
}

Test(sampler, top_k_1_equals_greedy)
{
    gemfa_sampler *s = new_sampler();
    cr_assert_eq(gemfa_sampler_set_top_k(s, 1), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_temperature(s, 1.5f), GEMFA_OK);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        size_t n = seed % 2 ? 5000 : BIG_VOCAB;
        float *l = normal_logits(n, 1.0, seed);
        int32_t id = -1;
        cr_assert_eq(gemfa_sample(s, l, n, NULL, 0, &id), GEMFA_OK);
        cr_assert_eq((size_t)id, argmax_of(l, n));
        free(l);
    }
    gemfa_sampler_free(s);
}

#define RUN 200

static void draw_run(gemfa_sampler *s, const float *l, size_t n, int32_t *ids)
{
    for (int i = 0; i < RUN; i++)
        cr_assert_eq(gemfa_sample(s, l, n, NULL, 0, &ids[i]), GEMFA_OK, "%s",
                     gemfa_last_error());
}

Test(sampler, seeds_make_runs_reproducible)
{
    float *l = normal_logits(3000, 1.0, 9);
    int32_t a[RUN], b[RUN], c[RUN];
    /* the three internal paths: whole vocabulary, top-k list, top-p list */
    for (int mode = 0; mode < 3; mode++) {
        gemfa_sampler *s1 = new_sampler(), *s2 = new_sampler();
        if (mode == 1) {
            cr_assert_eq(gemfa_sampler_set_top_k(s1, 40), GEMFA_OK);
            cr_assert_eq(gemfa_sampler_set_top_k(s2, 40), GEMFA_OK);
        } else if (mode == 2) {
            cr_assert_eq(gemfa_sampler_set_top_p(s1, 0.3f), GEMFA_OK);
            cr_assert_eq(gemfa_sampler_set_top_p(s2, 0.3f), GEMFA_OK);
        }
        cr_assert_eq(gemfa_sampler_set_seed(s1, 1234), GEMFA_OK);
        cr_assert_eq(gemfa_sampler_set_seed(s2, 1234), GEMFA_OK);
        draw_run(s1, l, 3000, a);
        draw_run(s2, l, 3000, b);
        cr_assert_eq(memcmp(a, b, sizeof a), 0, "same seed, mode %d", mode);
        /* reseeding restarts the sequence */
        cr_assert_eq(gemfa_sampler_set_seed(s1, 1234), GEMFA_OK);
        draw_run(s1, l, 3000, c);
        cr_assert_eq(memcmp(a, c, sizeof a), 0, "reseeded, mode %d", mode);
        /* another seed gives another run */
        cr_assert_eq(gemfa_sampler_set_seed(s2, 1235), GEMFA_OK);
        draw_run(s2, l, 3000, b);
        cr_assert_neq(memcmp(a, b, sizeof a), 0, "different seeds, mode %d", mode);
        gemfa_sampler_free(s1);
        gemfa_sampler_free(s2);
    }
    free(l);
}

Test(sampler, default_seed_is_zero_and_greedy_draws_nothing)
{
    float *l = normal_logits(100, 1.0, 4);
    gemfa_sampler *s1 = new_sampler(), *s2 = new_sampler();
    cr_assert_eq(gemfa_sampler_set_seed(s2, 0), GEMFA_OK);
    int32_t a[RUN], b[RUN];
    draw_run(s1, l, 100, a);
    /* greedy calls in between do not advance the generator */
    cr_assert_eq(gemfa_sampler_set_temperature(s2, 0.0f), GEMFA_OK);
    int32_t g;
    for (int i = 0; i < 5; i++)
        cr_assert_eq(gemfa_sample(s2, l, 100, NULL, 0, &g), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_temperature(s2, 1.0f), GEMFA_OK);
    draw_run(s2, l, 100, b);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    gemfa_sampler_free(s1);
    gemfa_sampler_free(s2);
    free(l);
}

/* ---- invalid arguments change nothing ---------------------------------- */

/* Two samplers configured alike; after a failed call on `s`, both must
 * still draw the same tokens (options and generator unchanged). */
static void expect_same_state(gemfa_sampler *s, gemfa_sampler *twin, const char *what)
{
    float l[40];
    for (int i = 0; i < 40; i++)
        l[i] = (float)((i * 37) % 11) * 0.3f;
    int32_t h[3] = {1, 2, 3};
    for (int i = 0; i < 30; i++) {
        int32_t a = -1, b = -2;
        cr_assert_eq(gemfa_sample(s, l, 40, h, 3, &a), GEMFA_OK, "%s: %s", what,
                     gemfa_last_error());
        cr_assert_eq(gemfa_sample(twin, l, 40, h, 3, &b), GEMFA_OK);
        cr_assert_eq(a, b, "%s: draw %d differs", what, i);
    }
    cr_assert_eq(s->temperature, twin->temperature, "%s", what);
    cr_assert_eq(s->top_k, twin->top_k, "%s", what);
    cr_assert_eq(s->top_p, twin->top_p, "%s", what);
    cr_assert_eq(s->min_p, twin->min_p, "%s", what);
    cr_assert_eq(s->repetition, twin->repetition, "%s", what);
    cr_assert_eq(s->frequency, twin->frequency, "%s", what);
    cr_assert_eq(s->presence, twin->presence, "%s", what);
    cr_assert_eq(s->last_n, twin->last_n, "%s", what);
    cr_assert_eq(s->n_biases, twin->n_biases, "%s", what);
}

static void configure_pair(gemfa_sampler *s)
{
    cr_assert_eq(gemfa_sampler_set_temperature(s, 0.9f), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_top_k(s, 30), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_top_p(s, 0.9f), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_min_p(s, 0.01f), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_penalties(s, 1.1f, 0.1f, 0.1f, 2), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_logit_bias(s, 5, 0.5f), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_seed(s, 99), GEMFA_OK);
}

#define EXPECT_FAIL(call, status, twin_state)                                           \
    do {                                                                                 \
        gemfa_status st_ = (call);                                                       \
        cr_assert_eq(st_, status, "%s returned %s", #call, gemfa_status_name(st_));      \
        cr_assert_neq(gemfa_last_error()[0], '\0', "%s: no message", #call);             \
        expect_same_state(s, twin, #call);                                               \
    } while (0)

Test(sampler, invalid_options_leave_the_sampler_unchanged)
{
    gemfa_sampler *s = new_sampler(), *twin = new_sampler();
    configure_pair(s);
    configure_pair(twin);
    const gemfa_status bad = GEMFA_ERR_INVALID_ARGUMENT;
    EXPECT_FAIL(gemfa_sampler_set_temperature(s, NAN), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_temperature(s, -0.5f), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_temperature(s, INFINITY), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_top_k(s, -1), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_top_p(s, 0.0f), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_top_p(s, 1.01f), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_top_p(s, -0.5f), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_top_p(s, NAN), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_min_p(s, -0.1f), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_min_p(s, 1.5f), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_min_p(s, NAN), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_penalties(s, 0.0f, 0.0f, 0.0f, 0), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_penalties(s, -1.0f, 0.0f, 0.0f, 0), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_penalties(s, NAN, 0.0f, 0.0f, 0), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_penalties(s, INFINITY, 0.0f, 0.0f, 0), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_penalties(s, 1.0f, NAN, 0.0f, 0), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_penalties(s, 1.0f, 0.0f, -INFINITY, 0), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_penalties(s, 1.0f, 0.0f, 0.0f, -1), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_logit_bias(s, -1, 1.0f), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_logit_bias(s, 3, NAN), bad, 0);
    EXPECT_FAIL(gemfa_sampler_set_logit_bias(s, 3, INFINITY), bad, 0);
    /* a NULL sampler */
    cr_assert_eq(gemfa_sampler_set_temperature(NULL, 1.0f), bad);
    cr_assert_eq(gemfa_sampler_set_top_k(NULL, 1), bad);
    cr_assert_eq(gemfa_sampler_set_top_p(NULL, 0.5f), bad);
    cr_assert_eq(gemfa_sampler_set_min_p(NULL, 0.5f), bad);
    cr_assert_eq(gemfa_sampler_set_penalties(NULL, 1.0f, 0.0f, 0.0f, 0), bad);
    cr_assert_eq(gemfa_sampler_set_logit_bias(NULL, 1, 1.0f), bad);
    cr_assert_eq(gemfa_sampler_clear_logit_bias(NULL), bad);
    cr_assert_eq(gemfa_sampler_set_seed(NULL, 1), bad);
    cr_assert(strstr(gemfa_last_error(), "NULL"), "%s", gemfa_last_error());
    gemfa_sampler_free(s);
    gemfa_sampler_free(twin);
}

Test(sampler, invalid_sample_calls_leave_the_sampler_unchanged)
{
    gemfa_sampler *s = new_sampler(), *twin = new_sampler();
    configure_pair(s);
    configure_pair(twin);
    float l[40] = {0};
    int32_t h[2] = {1, 40}, ok_h[1] = {1};
    int32_t id = 555;
    const gemfa_status bad = GEMFA_ERR_INVALID_ARGUMENT;
    EXPECT_FAIL(gemfa_sample(NULL, l, 40, NULL, 0, &id), bad, 0);
    EXPECT_FAIL(gemfa_sample(s, NULL, 40, NULL, 0, &id), bad, 0);
    EXPECT_FAIL(gemfa_sample(s, l, 40, NULL, 0, NULL), bad, 0);
    EXPECT_FAIL(gemfa_sample(s, l, 0, NULL, 0, &id), bad, 0);
    EXPECT_FAIL(gemfa_sample(s, l, (size_t)INT32_MAX + 1, NULL, 0, &id), bad, 0);
    EXPECT_FAIL(gemfa_sample(s, l, 40, NULL, 3, &id), bad, 0);
    /* the bias on id 5 does not fit a 5-token vocabulary */
    EXPECT_FAIL(gemfa_sample(s, l, 5, NULL, 0, &id), GEMFA_ERR_INVALID_TOKEN, 0);
    cr_assert(strstr(gemfa_last_error(), "bias"), "%s", gemfa_last_error());
    /* a history id the penalties read lies outside the vocabulary */
    EXPECT_FAIL(gemfa_sample(s, l, 40, h, 2, &id), GEMFA_ERR_INVALID_TOKEN, 0);
    cr_assert(strstr(gemfa_last_error(), "history[1]"), "%s", gemfa_last_error());
    h[1] = -3;
    EXPECT_FAIL(gemfa_sample(s, l, 40, h, 2, &id), GEMFA_ERR_INVALID_TOKEN, 0);
    cr_assert_eq(id, 555);
    /* ids outside the penalty window are not read */
    cr_assert_eq(gemfa_sampler_set_penalties(s, 1.1f, 0.1f, 0.1f, 1), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_penalties(twin, 1.1f, 0.1f, 0.1f, 1), GEMFA_OK);
    int32_t h2[2] = {-3, 1};
    cr_assert_eq(gemfa_sample(s, l, 40, h2, 2, &id), GEMFA_OK);
    cr_assert_eq(gemfa_sample(twin, l, 40, ok_h, 1, &id), GEMFA_OK);
    expect_same_state(s, twin, "window");
    gemfa_sampler_free(s);
    gemfa_sampler_free(twin);
}

Test(sampler, logits_are_not_modified)
{
    gemfa_sampler *s = new_sampler();
    configure_pair(s);
    float *l = normal_logits(1000, 2.0, 3), *copy = malloc(1000 * sizeof *copy);
    l[7] = NAN;
    l[8] = INFINITY;
    memcpy(copy, l, 1000 * sizeof *l);
    int32_t h[4] = {5, 6, 7, 8}, id;
    for (int mode = 0; mode < 3; mode++) {
        cr_assert_eq(gemfa_sampler_set_top_k(s, mode == 0 ? 30 : 0), GEMFA_OK);
        cr_assert_eq(gemfa_sampler_set_temperature(s, mode == 2 ? 0.0f : 1.0f), GEMFA_OK);
        cr_assert_eq(gemfa_sample(s, l, 1000, h, 4, &id), GEMFA_OK);
        cr_assert_eq(memcmp(l, copy, 1000 * sizeof *l), 0);
    }
    free(l);
    free(copy);
    gemfa_sampler_free(s);
}

/* ---- memory ------------------------------------------------------------ */

Test(sampler, allocation_failures_are_clean)
{
    /* creation: every allocation site fails cleanly, then it works */
    for (long k = 0;; k++) {
        gemfa_sampler *s = (gemfa_sampler *)&k;
        gf_alloc_fail_after(k);
        gemfa_status st = gemfa_sampler_new(NULL, &s);
        gf_alloc_fail_after(-1);
        if (st == GEMFA_OK) {
            cr_assert_gt(k, 0);
            gemfa_sampler_free(s);
            break;
        }
        cr_assert_eq(st, GEMFA_ERR_OUT_OF_MEMORY, "site %ld", k);
        cr_assert_eq(s, (gemfa_sampler *)&k);
        cr_assert_lt(k, 10);
    }
    /* sampling: the scratch cannot grow; the generator does not move */
    float *l = normal_logits(5000, 1.0, 8);
    int32_t h[3] = {1, 2, 3};
    for (int mode = 0; mode < 4; mode++) {
        gemfa_sampler *s = new_sampler(), *twin = new_sampler();
        for (int t = 0; t < 2; t++) {
            gemfa_sampler *x = t ? twin : s;
            cr_assert_eq(gemfa_sampler_set_top_k(x, mode == 0 ? 50 : 0), GEMFA_OK);
            cr_assert_eq(gemfa_sampler_set_top_p(x, mode == 2 ? 0.9f : 1.0f), GEMFA_OK);
            cr_assert_eq(gemfa_sampler_set_penalties(x, mode == 3 ? 1.2f : 1.0f, 0, 0, 0),
                         GEMFA_OK);
        }
        int32_t id = 42;
        for (long k = 0;; k++) {
            gf_alloc_fail_after(k);
            gemfa_status st = gemfa_sample(s, l, 5000, h, 3, &id);
            gf_alloc_fail_after(-1);
            if (st == GEMFA_OK)
                break;
            cr_assert_eq(st, GEMFA_ERR_OUT_OF_MEMORY, "mode %d site %ld", mode, k);
            cr_assert_eq(id, 42);
            cr_assert_lt(k, 10);
        }
        int32_t b;
        cr_assert_eq(gemfa_sample(twin, l, 5000, h, 3, &b), GEMFA_OK);
        cr_assert_eq(id, b, "mode %d", mode);
        gemfa_sampler_free(s);
        gemfa_sampler_free(twin);
    }
    free(l);
}

Test(sampler, steady_state_allocates_nothing)
{
    float *flat = normal_logits(BIG_VOCAB, 1.0, 11), *peaked = normal_logits(BIG_VOCAB, 6.0, 12);
    int32_t h[64];
    for (int i = 0; i < 64; i++)
        h[i] = i * 997;
    ref_options modes[] = {
        {1.0, 0.95, 0.0, 64}, {1.0, 0.95, 0.0, 0}, {0.0, 1.0, 0.0, 0},
        {1.0, 1.0, 0.0, 0},   {0.8, 0.5, 0.02, 0}, {1.0, 1.0, 0.0, 1000},
    };
    gemfa_sampler *s = new_sampler();
    cr_assert_eq(gemfa_sampler_set_logit_bias(s, 3, -INFINITY), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_penalties(s, 1.1f, 0.0f, 0.0f, 0), GEMFA_OK);
    int32_t id;
    /* warm-up: the scratch grows to its largest */
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        configure(s, modes[m]);
        cr_assert_eq(gemfa_sample(s, flat, BIG_VOCAB, h, 64, &id), GEMFA_OK);
        cr_assert_eq(gemfa_sample(s, peaked, BIG_VOCAB, h, 64, &id), GEMFA_OK);
    }
    gf_alloc_fail_after(0);
    for (int round = 0; round < 3; round++)
        for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
            configure(s, modes[m]);
            gemfa_status a = gemfa_sample(s, flat, BIG_VOCAB, h, 64, &id);
            gemfa_status b = gemfa_sample(s, peaked, BIG_VOCAB, h, 64, &id);
            if (a != GEMFA_OK || b != GEMFA_OK) {
                gf_alloc_fail_after(-1);
                cr_assert_fail("mode %zu allocated: %s", m, gemfa_last_error());
            }
        }
    long n_alloc = gf_alloc_fail_after(-1);
    cr_assert_eq(n_alloc, 0, "%ld allocation attempts", n_alloc);
    gemfa_sampler_free(s);
    free(flat);
    free(peaked);
}

/* ---- the fast paths on a Gemma-sized vocabulary ------------------------ */

Test(sampler, big_vocabulary_matches_the_reference, .timeout = 60)
{
    gemfa_sampler *s = new_sampler();
    /* sigma 1: flat (top-p prefix of tens of thousands: histogram path);
     * sigma 6: peaked (prefix among the best 256: short-list path) */
    double sigmas[] = {1.0, 6.0};
    ref_options modes[] = {
        {1.0, 0.95, 0.0, 64},  /* E4B's generation_config */
        {1.0, 0.95, 0.0, 0},   {0.7, 0.5, 0.0, 0},  {1.3, 1.0, 0.05, 0},
        {0.8, 0.9, 0.01, 0},   {1.0, 0.9, 0.0, 2000}, {1.0, 1.0, 0.0, 0},
        {0.0, 1.0, 0.0, 0},
    };
    for (size_t g = 0; g < 2; g++) {
        float *l = normal_logits(BIG_VOCAB, sigmas[g], 20 + g);
        for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
            char what[96];
            snprintf(what, sizeof what, "sigma %g T %g top_p %g min_p %g top_k %zu", sigmas[g],
                     modes[m].temperature, modes[m].top_p, modes[m].min_p, modes[m].top_k);
            expect_reference(s, l, BIG_VOCAB, modes[m], what);
        }
        free(l);
    }
    gemfa_sampler_free(s);
}

/* Ties at the top-p boundary in the histogram path: equal weights are
 * ranked by id, and exactly the prefix is kept. */
Test(sampler, top_p_ties_are_ranked_by_id)
{
    gemfa_sampler *s = new_sampler();
    size_t n = 6000;
    float *l = malloc(n * sizeof *l);
    for (size_t i = 0; i < n; i++)
        l[i] = i % 3 == 0 ? 1.0f : 0.0f; /* 2000 tokens at 1, 4000 at 0 */
    ref_options o[] = {{1.0, 0.5, 0.0, 0}, {1.0, 0.9, 0.0, 0}, {1.0, 0.25, 0.0, 0},
                       {1.0, 0.5, 0.0, 3000}};
    for (size_t k = 0; k < sizeof o / sizeof *o; k++)
        expect_reference(s, l, n, o[k], "ties");
    for (size_t i = 0; i < n; i++)
        l[i] = 0.0f; /* uniform */
    for (size_t k = 0; k < sizeof o / sizeof *o; k++)
        expect_reference(s, l, n, o[k], "uniform");
    /* 100 tied at the top: top_p .5 ends among them (short-list path);
     * .9999 needs thousands of the tied tail (histogram path) */
    for (size_t i = 0; i < n; i++)
        l[i] = i % 60 == 7 ? 10.0f : 0.0f;
    ref_options peaked[] = {{1.0, 0.5, 0.0, 0}, {1.0, 0.9999, 0.0, 0}, {1.0, 0.5, 0.5, 0}};
    for (size_t k = 0; k < sizeof peaked / sizeof *peaked; k++)
        expect_reference(s, l, n, peaked[k], "tied top");
    free(l);
    gemfa_sampler_free(s);
}

/* gemfa.h: a sampler keeps no pointer to its model and may outlive it.  Under
 * ASan (tests/run_sanitizers.sh) any read of the freed model would fail here. */
Test(sampler, outlives_its_model)
{
    const char *data = getenv("GEMFA_TEST_DATA");
    cr_assert_not_null(data, "GEMFA_TEST_DATA is not set");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tiny-gemma3n", data);
    gemfa_model *m = NULL;
    cr_assert_eq(gemfa_model_load(dir, NULL, &m), GEMFA_OK, "%s", gemfa_last_error());
    gemfa_sampler *s = NULL;
    cr_assert_eq(gemfa_sampler_new(m, &s), GEMFA_OK);

    gemfa_context *ctx = NULL;
    gemfa_session *ses = NULL;
    cr_assert_eq(gemfa_context_new(m, NULL, &ctx), GEMFA_OK, "%s", gemfa_last_error());
    cr_assert_eq(gemfa_session_new(ctx, NULL, &ses), GEMFA_OK, "%s", gemfa_last_error());
    const int32_t prompt[] = {2, 10, 20, 30};
    const float *out = NULL;
    cr_assert_eq(gemfa_decode(ses, prompt, 4, &out), GEMFA_OK, "%s", gemfa_last_error());
    size_t n_vocab = 0;
    cr_assert_eq(gemfa_session_logits(ses, &out, &n_vocab), GEMFA_OK);
    float *logits = malloc(n_vocab * sizeof *logits);
    cr_assert_not_null(logits);
    memcpy(logits, out, n_vocab * sizeof *logits);
    /* a twin sampler that never saw the model, given the same settings */
    gemfa_sampler *twin = new_sampler();
    cr_assert_eq(gemfa_sampler_set_temperature(twin, s->temperature), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_top_k(twin, s->top_k), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_top_p(twin, s->top_p), GEMFA_OK);

    gemfa_session_free(ses);
    gemfa_context_free(ctx);
    gemfa_model_free(m); /* before the sampler: allowed */

    /* every option and every stage still works, and draws as the twin does */
    for (gemfa_sampler *x = s; x; x = x == s ? twin : NULL) {
        cr_assert_eq(gemfa_sampler_set_temperature(x, 0.8f), GEMFA_OK);
        cr_assert_eq(gemfa_sampler_set_min_p(x, 0.01f), GEMFA_OK);
        cr_assert_eq(gemfa_sampler_set_penalties(x, 1.2f, 0.1f, 0.1f, 0), GEMFA_OK);
        cr_assert_eq(gemfa_sampler_set_logit_bias(x, 5, -INFINITY), GEMFA_OK);
        cr_assert_eq(gemfa_sampler_set_seed(x, 7), GEMFA_OK);
    }
    int32_t history[64];
    size_t n_history = 0;
    for (int i = 0; i < 4; i++)
        history[n_history++] = prompt[i];
    for (int step = 0; step < 32; step++) {
        int32_t a = -1, b = -1;
        cr_assert_eq(gemfa_sample(s, logits, n_vocab, history, n_history, &a), GEMFA_OK,
                     "%s", gemfa_last_error());
        cr_assert_eq(gemfa_sample(twin, logits, n_vocab, history, n_history, &b), GEMFA_OK);
        cr_assert_eq(a, b, "step %d", step);
        cr_assert(a >= 0 && (size_t)a < n_vocab && a != 5);
        history[n_history++] = a;
    }
    free(logits);
    gemfa_sampler_free(twin);
    gemfa_sampler_free(s);
}
