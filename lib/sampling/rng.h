/* rng.h — the sampler's own pseudo-random generator: xoshiro256** seeded
 * through splitmix64 (both by Blackman and Vigna).  Integer-only, so the
 * same seed gives the same sequence on every platform and compiler; the
 * C library's rand() is never used. */
#ifndef GF_RNG_H
#define GF_RNG_H

#include <stdint.h>

typedef struct gf_rng {
    uint64_t s[4];
} gf_rng;

/* Fills the state with four splitmix64 outputs started at `seed` (any value,
 * 0 included: splitmix64 never yields an all-zero state). */
void gf_rng_seed(gf_rng *rng, uint64_t seed);

/* The next 64 random bits. */
uint64_t gf_rng_next(gf_rng *rng);

/* A double uniform in [0, 1): the top 53 bits of gf_rng_next() times 2^-53,
 * so every value is exact and platform-independent. */
double gf_rng_uniform(gf_rng *rng);

#endif
