/* test_rng.c — the sampler's generator and exp, pinned and cross-checked.
 *
 * The expected generator outputs below were computed by an independent
 * reference, tests/sampling/rng_reference.py (xoshiro256** and splitmix64
 * written in Python from the published algorithms):
 *     /usr/bin/python3 tests/sampling/rng_reference.py
 * Equal values on every platform are what makes equal logits and seed give
 * equal tokens everywhere. */
#include "sampling/fp.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemfa.h"
#include "sampling/expneg.h"
#include "sampling/rng.h"
#include "sampling/sampler.h"
#include "sampling/weights.h"

typedef struct pinned {
    uint64_t seed;
    uint64_t state[4];
    uint64_t next[6];
} pinned;

static const pinned PINNED[] = {
    {0,
     {0xe220a8397b1dcdafu, 0x6e789e6aa1b965f4u, 0x06c45d188009454fu, 0xf88bb8a8724c81ecu},
     {0x99ec5f36cb75f2b4u, 0xbf6e1f784956452au, 0x1a5f849d4933e6e0u, 0x6aa594f1262d2d2cu,
      0xbba5ad4a1f842e59u, 0xffef8375d9ebcacau}},
    {42,
     {0xbdd732262feb6e95u, 0x28efe333b266f103u, 0x47526757130f9f52u, 0x581ce1ff0e4ae394u},
     {0x15780b2e0c2ec716u, 0x6104d9866d113a7eu, 0xae17533239e499a1u, 0xecb8ad4703b360a1u,
      0xfde6dc7fe2ec5e64u, 0xc50da53101795238u}},
    {0xffffffffffffffffu,
     {0xe4d971771b652c20u, 0xe99ff867dbf682c9u, 0x382ff84cb27281e9u, 0x6d1db36ccba982d2u},
     {0x8f5520d52a7ead08u, 0xc476a018caa1802du, 0x81de31c0d260469eu, 0xbf658d7e065f3c2fu,
      0x913593fda1bca32au, 0xbb535e93941ba525u}},
};

/* rng_reference.py, "seed 7 uniform" */
static const double UNIFORM_SEED7[4] = {0x1.66b1f5ee9df2ep-1, 0x1.1d70f6593d20ap-2,
                                        0x1.ade3a6932a58fp-1, 0x1.f65270e63d00ep-1};

Test(rng, seeding_and_first_outputs_match_the_reference)
{
    for (size_t k = 0; k < sizeof PINNED / sizeof *PINNED; k++) {
        gf_rng rng;
        gf_rng_seed(&rng, PINNED[k].seed);
        for (int i = 0; i < 4; i++)
            cr_assert_eq(rng.s[i], PINNED[k].state[i], "seed %llu state[%d]",
                         (unsigned long long)PINNED[k].seed, i);
        for (int i = 0; i < 6; i++)
            cr_assert_eq(gf_rng_next(&rng), PINNED[k].next[i], "seed %llu output %d",
                         (unsigned long long)PINNED[k].seed, i);
    }
}

Test(rng, uniform_is_the_top_53_bits)
{
    gf_rng rng;
    gf_rng_seed(&rng, 7);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(gf_rng_uniform(&rng), UNIFORM_SEED7[i], "draw %d", i);
    for (int i = 0; i < 100000; i++) {
        double u = gf_rng_uniform(&rng);
        cr_assert(u >= 0.0 && u < 1.0);
        double scaled = u * 0x1.0p53;
        cr_assert_eq(scaled, floor(scaled), "not a multiple of 2^-53");
    }
}

/* Two equal logits: the draw u picks id 0 when u < 1/2, so the sampler's
 * tokens for seed 7 follow from the reference's uniforms above. */
Test(rng, sampler_draws_follow_the_pinned_sequence)
{
    gemfa_sampler *s;
    cr_assert_eq(gemfa_sampler_new(NULL, &s), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_seed(s, 7), GEMFA_OK);
    const float logits[2] = {0.25f, 0.25f};
    for (int i = 0; i < 4; i++) {
        int32_t id = -1;
        cr_assert_eq(gemfa_sample(s, logits, 2, NULL, 0, &id), GEMFA_OK);
        cr_assert_eq(id, UNIFORM_SEED7[i] < 0.5 ? 0 : 1, "draw %d", i);
    }
    gemfa_sampler_free(s);
}

Test(rng, exp_neg_matches_libm)
{
    cr_assert_eq(gf_exp_neg(0.0f), 1.0f);
    cr_assert_eq(gf_exp_neg(-0.0f), 1.0f);
    cr_assert_eq(gf_exp_neg(-INFINITY), 0.0f);
    cr_assert_eq(gf_exp_neg(-87.5f), 0.0f);
    cr_assert_eq(gf_exp_neg(NAN), 0.0f);
    double worst = 0.0;
    for (float x = 0.0f; x >= -87.0f; x -= 0.000731f) {
        double ref = exp((double)x), got = gf_exp_neg(x);
        double rel = fabs(got - ref) / ref;
        worst = rel > worst ? rel : worst;
        cr_assert(got <= 1.0f);
    }
    /* 2 ulp of a float is 2^-22 relative at worst */
    cr_assert_lt(worst, 0x1.0p-22, "worst relative error %g", worst);
}

/* Every vectorized pass gives the same bits as its scalar twin. */
Test(rng, vector_and_scalar_weight_passes_agree)
{
    size_t n = 64 * 37 + 13;
    float *src = malloc(n * sizeof *src), *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    double *sa = malloc((n / 64 + 1) * sizeof *sa), *sb = malloc((n / 64 + 1) * sizeof *sb);
    gf_rng rng;
    gf_rng_seed(&rng, 3);
    for (size_t i = 0; i < n; i++)
        src[i] = (float)(gf_rng_uniform(&rng) * 60.0 - 50.0);
    src[5] = NAN;
    src[78] = -INFINITY;
    src[n - 1] = -1e30f;
    cr_log_info("best variant: %d", (int)gf_weights_best_isa());
    for (int isa = GF_WEIGHTS_SSE2; isa <= (int)gf_weights_best_isa(); isa++)
        for (int t = 0; t < 6; t++) {
            float inv_t = t % 3 == 0 ? 1.0f : t % 3 == 1 ? 3.7f : 0.05f;
            src[77] = t < 3 ? INFINITY : 9.5f; /* the maximum: FLT_MAX, then 9.5 */
            float max = t < 3 ? FLT_MAX : 9.5f;
            double za = gf_weights_exp_isa((gf_weights_isa)isa, src, a, n, max, inv_t, sa);
            double zb = gf_weights_exp_isa(GF_WEIGHTS_SCALAR, src, b, n, max, inv_t, sb);
            cr_assert_eq(za, zb, "isa %d", isa);
            cr_assert_geq(za, 1.0);
            cr_assert_eq(memcmp(a, b, n * sizeof *a), 0, "isa %d", isa);
            cr_assert_eq(memcmp(sa, sb, (n / 64 + 1) * sizeof *sa), 0, "isa %d", isa);
            za = gf_weights_floor(a, n, 0.01f, sa);
            zb = gf_weights_floor_scalar(b, n, 0.01f, sb);
            cr_assert_eq(za, zb);
            cr_assert_eq(memcmp(a, b, n * sizeof *a), 0);
            cr_assert_eq(memcmp(sa, sb, (n / 64 + 1) * sizeof *sa), 0);
        }
    free(src); free(a); free(b); free(sa); free(sb);
}
