/* test_accept.c — the acceptance rule alone (lib/speculate/accept.c) on
 * synthetic distributions over 8 tokens: draw x from q, keep it or redraw
 * by the rule, and the tokens must follow p (Pearson's chi-square, fixed
 * seed, 200000 draws).  Two deliberately wrong rules (redraw from p instead
 * of max(0, p − q); keep x with probability min(1, q(x) / p(x))) run on the same numbers
 * and must fail the same threshold, which shows it can catch a wrong rule.
 * p and q are written here from fixed numbers, not by the library. */
#include <criterion/criterion.h>
#include <string.h>

#include "sampling/rng.h"
#include "spec_stats.h"
#include "speculate/accept.h"

#define V 8
#define N_DRAWS 200000

typedef enum rule { EXACT, REDRAW_FROM_P, INVERTED_RATIO } rule;

static int32_t wrong_or_exact(rule r, const float *p, const float *q, int32_t x, double u1,
                              double u2)
{
    int kept;
    switch (r) {
    case EXACT:
        return gf_spec_verify(p, q, V, x, u1, u2, &kept);
    case REDRAW_FROM_P:
        if (u1 * q[x] < p[x])
            return x;
        return gf_spec_draw(p, V, gf_spec_total(p, V), u2);
    case INVERTED_RATIO:
        if (u1 * p[x] < q[x])
            return x;
        return gf_spec_verify(p, q, V, x, 1.0, u2, &kept); /* u 1: the redraw */
    }
    return -1;
}

/* chi-square of N_DRAWS tokens under rule r against p; *df out. */
static double run(rule r, const float *p, const float *q, int *df)
{
    long counts[V] = {0};
    gf_rng rng;
    gf_rng_seed(&rng, 12345);
    double qt = gf_spec_total(q, V);
    for (long i = 0; i < N_DRAWS; i++) {
        int32_t x = gf_spec_draw(q, V, qt, gf_rng_uniform(&rng));
        double u1 = gf_rng_uniform(&rng), u2 = gf_rng_uniform(&rng);
        int32_t y = wrong_or_exact(r, p, q, x, u1, u2);
        cr_assert(y >= 0 && y < V);
        counts[y]++;
    }
    double probs[V];
    for (int i = 0; i < V; i++)
        probs[i] = p[i];
    return spec_chi_square(counts, probs, V, N_DRAWS, df);
}

typedef struct dist_case {
    const char *name;
    float p[V], q[V];
} dist_case;

static const dist_case CASES[] = {
    {"overlapping", {0.30f, 0.20f, 0.15f, 0.10f, 0.10f, 0.08f, 0.05f, 0.02f},
     {0.05f, 0.10f, 0.30f, 0.25f, 0.05f, 0.05f, 0.10f, 0.10f}},
    /* q misses tokens p has and puts mass where p has none */
    {"disjoint parts", {0.40f, 0.30f, 0.20f, 0.10f, 0.0f, 0.0f, 0.0f, 0.0f},
     {0.10f, 0.0f, 0.30f, 0.0f, 0.20f, 0.20f, 0.10f, 0.10f}},
    /* a top-k-like truncated p against a broad q */
    {"truncated p", {0.0f, 0.55f, 0.0f, 0.25f, 0.0f, 0.20f, 0.0f, 0.0f},
     {0.125f, 0.125f, 0.125f, 0.125f, 0.125f, 0.125f, 0.125f, 0.125f}},
};

Test(accept, exact_rule_follows_p_and_wrong_rules_fail)
{
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        const dist_case *d = &CASES[c];
        int df = 1;
        double chi = run(EXACT, d->p, d->q, &df);
        cr_expect(chi < spec_critical(df), "%s: exact rule chi2 %.1f >= %.1f (df %d)", d->name,
                  chi, spec_critical(df), df);
        cr_log_info("%s: exact chi2 %.1f (critical %.1f)", d->name, chi, spec_critical(df));
        rule wrong[] = {REDRAW_FROM_P, INVERTED_RATIO};
        for (size_t w = 0; w < 2; w++) {
            double cw = run(wrong[w], d->p, d->q, &df);
            cr_expect(!(cw < spec_critical(df)), "%s: wrong rule %zu passed (chi2 %.1f)",
                      d->name, w, cw);
        }
    }
}

/* q one-hot (a caller's draft function): kept with probability p(x), else
 * a draw from p without x. */
Test(accept, certain_draft)
{
    const float p[V] = {0.1f, 0.4f, 0.2f, 0.1f, 0.1f, 0.05f, 0.05f, 0.0f};
    gf_rng rng;
    gf_rng_seed(&rng, 7);
    for (int32_t x = 0; x < V; x++) {
        long counts[V] = {0};
        for (long i = 0; i < N_DRAWS / 4; i++) {
            int kept;
            double u1 = gf_rng_uniform(&rng), u2 = gf_rng_uniform(&rng);
            counts[gf_spec_verify(p, NULL, V, x, u1, u2, &kept)]++;
        }
        double probs[V];
        for (int i = 0; i < V; i++)
            probs[i] = p[i];
        int df = 1;
        double chi = spec_chi_square(counts, probs, V, N_DRAWS / 4, &df);
        cr_expect(chi < spec_critical(df), "draft %d: chi2 %.1f", x, chi);
    }
}

Test(accept, edges)
{
    const float p[V] = {0, 0, 1, 0, 0, 0, 0, 0};
    int kept;
    /* p == q one-hot: always kept */
    cr_expect_eq(gf_spec_verify(p, p, V, 2, 0.999, 0.5, &kept), 2);
    cr_expect_eq(kept, 1);
    /* x where p is 0: never kept, the redraw is the only token p allows */
    const float q[V] = {0.5f, 0, 0.5f, 0, 0, 0, 0, 0};
    cr_expect_eq(gf_spec_verify(p, q, V, 0, 0.0, 0.99, &kept), 2);
    cr_expect_eq(kept, 0);
    /* zero weights are never drawn, even at u close to 1 */
    cr_expect_eq(gf_spec_draw(p, V, 1.0, 0.9999999), 2);
    cr_expect_eq(gf_spec_draw(q, V, 1.0, 0.0), 0);
}
