/* spec_stats.h — Pearson's chi-square for the speculative-sampling tests
 * (same statistic and threshold as tests/sampling/test_distribution.c). */
#ifndef SPEC_STATS_H
#define SPEC_STATS_H

#include <math.h>
#include <stddef.h>

/* Critical value for df degrees of freedom at a tail probability of about
 * 1e-4 (Wilson-Hilferty, z = 3.72). */
static inline double spec_critical(int df)
{
    double z = 3.72, a = 2.0 / (9.0 * df);
    double c = 1.0 - a + z * sqrt(a);
    return df * c * c * c;
}

/* Statistic of counts (total n_draws) against probs over n categories;
 * *df = categories of probability > 0, minus one.  INFINITY when a
 * category of probability 0 was drawn. */
static inline double spec_chi_square(const long *counts, const double *probs, size_t n,
                                     long n_draws, int *df)
{
    double chi = 0.0;
    int cats = 0;
    for (size_t i = 0; i < n; i++) {
        if (probs[i] <= 0.0) {
            if (counts[i])
                return INFINITY;
            continue;
        }
        double e = probs[i] * (double)n_draws;
        chi += (counts[i] - e) * (counts[i] - e) / e;
        cats++;
    }
    *df = cats - 1;
    return chi;
}

#endif
