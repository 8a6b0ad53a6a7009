/* sampler.c — creating a sampler, its defaults and option setters. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"
#include "loader/model.h"
#include "sampling/sampler.h"

/* Neutral settings: plain softmax sampling at temperature 1. */
static void set_neutral(gemfa_sampler *s)
{
    s->temperature = 1.0f;
    s->top_k = 0;
    s->top_p = 1.0f;
    s->min_p = 0.0f;
    s->repetition = 1.0f;
    s->frequency = 0.0f;
    s->presence = 0.0f;
    s->last_n = 0;
}

/* generation_config.json as HF's GenerationConfig reads it: a missing key
 * takes HF's default (do_sample false, top_k 50, top_p 1, temperature 1,
 * no min_p, repetition_penalty 1), and do_sample false means greedy. */
static gemfa_status set_from_generation_config(gemfa_sampler *s, const gf_generation_defaults *g)
{
    const char *what = "generation_config.json";
    float t = g->has_temperature ? g->temperature : 1.0f;
    if (!(t >= 0.0f && t <= FLT_MAX))
        return gf_error(GEMFA_ERR_CONFIG, "%s: temperature %g is not a finite value >= 0",
                        what, (double)t);
    int32_t k = g->has_top_k ? g->top_k : 50;
    if (k < 0)
        return gf_error(GEMFA_ERR_CONFIG, "%s: top_k %d is negative", what, (int)k);
    float p = g->has_top_p ? g->top_p : 1.0f;
    if (!(p > 0.0f && p <= 1.0f))
        return gf_error(GEMFA_ERR_CONFIG, "%s: top_p %g is outside (0, 1]", what, (double)p);
    float min_p = g->has_min_p ? g->min_p : 0.0f;
    if (!(min_p >= 0.0f && min_p <= 1.0f))
        return gf_error(GEMFA_ERR_CONFIG, "%s: min_p %g is outside [0, 1]", what, (double)min_p);
    float r = g->has_repetition_penalty ? g->repetition_penalty : 1.0f;
    if (!(r > 0.0f && r <= FLT_MAX))
        return gf_error(GEMFA_ERR_CONFIG, "%s: repetition_penalty %g is not a finite value > 0",
                        what, (double)r);
    int sample = g->has_do_sample && g->do_sample;
    s->temperature = sample ? t : 0.0f;
    s->top_k = k;
    s->top_p = p;
    s->min_p = min_p;
    s->repetition = r;
    return GEMFA_OK;
}

GEMFA_API void gemfa_sampler_free(gemfa_sampler *s)
{
    if (!s)
        return;
    gf_free(s->biases);
    gf_free(s->work);
    gf_free(s->counts);
    gf_free(s->distinct);
    gf_free(s->cand);
    gf_free(s->cand_weight);
    gf_free(s->block_sum);
    gf_free(s->bin_mass);
    gf_free(s);
}

GEMFA_API gemfa_status gemfa_sampler_new(const gemfa_model *model, gemfa_sampler **out)
{
    if (!out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_sampler_new: out is NULL");
    gemfa_sampler *s = gf_calloc(1, sizeof *s);
    if (!s)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_sampler_new: out of memory");
    s->bin_mass = gf_malloc(GF_NUCLEUS_BINS * sizeof *s->bin_mass);
    if (!s->bin_mass) {
        gemfa_sampler_free(s);
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_sampler_new: out of memory");
    }
    set_neutral(s);
    if (model) {
        gemfa_status st = set_from_generation_config(s, &model->gen);
        if (st != GEMFA_OK) {
            gemfa_sampler_free(s);
            return st;
        }
    }
    gf_rng_seed(&s->rng, 0);
    *out = s;
    return GEMFA_OK;
}

#define REQUIRE_SAMPLER(fn)                                                              \
    do {                                                                                 \
        if (!s)                                                                          \
            return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: sampler is NULL", fn);      \
    } while (0)

GEMFA_API gemfa_status gemfa_sampler_set_temperature(gemfa_sampler *s, float t)
{
    REQUIRE_SAMPLER(__func__);
    if (!(t >= 0.0f && t <= FLT_MAX))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_sampler_set_temperature: %g is not a finite value >= 0", (double)t);
    s->temperature = t;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_sampler_set_top_k(gemfa_sampler *s, int32_t k)
{
    REQUIRE_SAMPLER(__func__);
    if (k < 0)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_sampler_set_top_k: %d is negative",
                        (int)k);
    s->top_k = k;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_sampler_set_top_p(gemfa_sampler *s, float p)
{
    REQUIRE_SAMPLER(__func__);
    if (!(p > 0.0f && p <= 1.0f))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_sampler_set_top_p: %g is outside (0, 1]", (double)p);
    s->top_p = p;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_sampler_set_min_p(gemfa_sampler *s, float p)
{
    REQUIRE_SAMPLER(__func__);
    if (!(p >= 0.0f && p <= 1.0f))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_sampler_set_min_p: %g is outside [0, 1]", (double)p);
    s->min_p = p;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_sampler_set_penalties(gemfa_sampler *s, float repetition,
                                                   float frequency, float presence,
                                                   int32_t last_n)
{
    REQUIRE_SAMPLER(__func__);
    if (!(repetition > 0.0f && repetition <= FLT_MAX))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_sampler_set_penalties: repetition %g is not a finite value > 0",
                        (double)repetition);
    if (!isfinite(frequency) || !isfinite(presence))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_sampler_set_penalties: frequency %g and presence %g must be finite",
                        (double)frequency, (double)presence);
    if (last_n < 0)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_sampler_set_penalties: last_n %d is negative", (int)last_n);
    s->repetition = repetition;
    s->frequency = frequency;
    s->presence = presence;
    s->last_n = last_n;
    return GEMFA_OK;
}

/* Index of the first bias with id >= `id` (biases are sorted by id). */
static size_t bias_lower_bound(const gemfa_sampler *s, int32_t id)
{
    size_t lo = 0, hi = s->n_biases;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->biases[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

GEMFA_API gemfa_status gemfa_sampler_set_logit_bias(gemfa_sampler *s, int32_t id, float bias)
{
    REQUIRE_SAMPLER(__func__);
    if (id < 0)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_sampler_set_logit_bias: token id %d is negative", (int)id);
    if (!(bias == -INFINITY || isfinite(bias)))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_sampler_set_logit_bias: bias %g for token %d must be finite or "
                        "-INFINITY", (double)bias, (int)id);
    size_t at = bias_lower_bound(s, id);
    if (at < s->n_biases && s->biases[at].id == id) {
        s->biases[at].bias = bias;
        return GEMFA_OK;
    }
    if (s->n_biases == s->cap_biases) {
        size_t cap = s->cap_biases ? 2 * s->cap_biases : 16;
        gf_bias *grown = gf_realloc(s->biases, gf_mul_size(cap, sizeof *grown));
        if (!grown)
            return gf_error(GEMFA_ERR_OUT_OF_MEMORY,
                            "gemfa_sampler_set_logit_bias: cannot grow the bias table to %zu "
                            "entries", cap);
        s->biases = grown;
        s->cap_biases = cap;
    }
    memmove(&s->biases[at + 1], &s->biases[at], (s->n_biases - at) * sizeof *s->biases);
    s->biases[at] = (gf_bias){.id = id, .bias = bias};
    s->n_biases++;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_sampler_clear_logit_bias(gemfa_sampler *s)
{
    REQUIRE_SAMPLER(__func__);
    s->n_biases = 0;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_sampler_set_seed(gemfa_sampler *s, uint64_t seed)
{
    REQUIRE_SAMPLER(__func__);
    gf_rng_seed(&s->rng, seed);
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_sampler_set_constraint(gemfa_sampler *s, gemfa_constraint *c)
{
    REQUIRE_SAMPLER(__func__);
    s->constraint = c;
    return GEMFA_OK;
}
