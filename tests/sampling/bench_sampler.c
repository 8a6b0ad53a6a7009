/* bench_sampler.c — microseconds per gemfa_sample on a Gemma-sized
 * vocabulary (262,400 logits), for the settings docs/performance.md
 * reports.  Built with the tests, not run by them:
 *     nice ./build/tests/sampling/bench_sampler [samples per setting] [vectors]
 * Logits are N(0, sigma^2) from the sampler's own generator (fixed seed);
 * consecutive samples cycle through `vectors` vectors (default 8, 8 MiB:
 * the logits come from memory, not from the cache of the previous call;
 * 1: the same vector, hot in cache, as right after the forward pass).  Each
 * sample is timed alone; the table gives the 10th percentile, the median
 * and the minimum in microseconds, and a checksum of the drawn ids.  The
 * last rows of each table time gemfa_logprobs on the same vectors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gemfa.h"
#include "sampling/rng.h"
#include "sampling/weights.h"

#define N_VOCAB 262400
#define MAX_VECTORS 8

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void fill_normal(float *x, size_t n, float sigma, gf_rng *rng)
{
    for (size_t i = 0; i < n; i += 2) {
        double u1 = 1.0 - gf_rng_uniform(rng), u2 = gf_rng_uniform(rng);
        double r = sqrt(-2.0 * log(u1)) * sigma;
        x[i] = (float)(r * cos(2 * M_PI * u2));
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(2 * M_PI * u2));
    }
}

typedef struct setting {
    const char *name;
    float temperature, top_p, min_p;
    int32_t top_k;
    float repetition;
} setting;

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 1000;
    int n_vectors = argc > 2 ? atoi(argv[2]) : MAX_VECTORS;
    if (n_vectors < 1 || n_vectors > MAX_VECTORS)
        n_vectors = MAX_VECTORS;
    float sigmas[] = {2.0f, 6.0f};
    setting settings[] = {
        {"default (top_k 64, top_p 0.95, T 1)", 1.0f, 0.95f, 0.0f, 64, 1.0f},
        {"top_p 0.95 only (T 1)", 1.0f, 0.95f, 0.0f, 0, 1.0f},
        {"greedy (T 0)", 0.0f, 1.0f, 0.0f, 0, 1.0f},
        {"T 1 only (no truncation)", 1.0f, 1.0f, 0.0f, 0, 1.0f},
        {"default + repetition 1.1 over 4096", 1.0f, 0.95f, 0.0f, 64, 1.1f},
    };
    float *logits = malloc(sizeof(float) * N_VOCAB * MAX_VECTORS);
    int32_t *history = malloc(sizeof(int32_t) * 4096);
    if (!logits || !history)
        return 1;
    gf_rng rng;
    gf_rng_seed(&rng, 42);
    for (int h = 0; h < 4096; h++)
        history[h] = (int32_t)(gf_rng_next(&rng) % N_VOCAB);

    double *times = malloc(sizeof(double) * (size_t)(iters > 0 ? iters : 1));
    if (!times || iters < 1)
        return 1;
    printf("%d samples per setting, vocabulary %d, %d logit vector(s), exp pass: %s\n", iters,
           N_VOCAB, n_vectors, gf_weights_best_isa() == GF_WEIGHTS_AVX2   ? "AVX2"
                    : gf_weights_best_isa() == GF_WEIGHTS_SSE2 ? "SSE2"
                                                               : "scalar");
    for (size_t g = 0; g < sizeof sigmas / sizeof *sigmas; g++) {
        fill_normal(logits, (size_t)N_VOCAB * MAX_VECTORS, sigmas[g], &rng);
        char title[64];
        snprintf(title, sizeof title, "logits ~ N(0, %g^2):", (double)sigmas[g]);
        printf("%-40s %8s %8s %8s   %s\n", title, "p10 us", "median", "min", "checksum");
        for (size_t c = 0; c < sizeof settings / sizeof *settings; c++) {
            const setting *st = &settings[c];
            gemfa_sampler *s;
            if (gemfa_sampler_new(NULL, &s) != GEMFA_OK)
                return 1;
            gemfa_sampler_set_temperature(s, st->temperature);
            gemfa_sampler_set_top_k(s, st->top_k);
            gemfa_sampler_set_top_p(s, st->top_p);
            gemfa_sampler_set_min_p(s, st->min_p);
            gemfa_sampler_set_penalties(s, st->repetition, 0.0f, 0.0f, 0);
            size_t nh = st->repetition != 1.0f ? 4096 : 0;
            int32_t id;
            long sum = 0;
            gemfa_sample(s, logits, N_VOCAB, history, nh, &id); /* warm-up: scratch grows */
            /* each sample timed alone: on a shared machine the median is
             * what a user sees, the 10th percentile what the code costs */
            for (int it = 0; it < iters; it++) {
                const float *l = logits + (size_t)(it % n_vectors) * N_VOCAB;
                double t0 = now_us();
                if (gemfa_sample(s, l, N_VOCAB, history, nh, &id) != GEMFA_OK) {
                    fprintf(stderr, "%s\n", gemfa_last_error());
                    return 1;
                }
                times[it] = now_us() - t0;
                sum += id;
            }
            qsort(times, (size_t)iters, sizeof *times, cmp_double);
            printf("  %-38s %8.1f %8.1f %8.1f   %ld\n", st->name, times[iters / 10],
                   times[iters / 2], times[0], sum);
            gemfa_sampler_free(s);
        }
        /* gemfa_logprobs on the same vectors: the chosen token's logprob
         * alone and with the top 5 / 20 (OpenAI's maximum) alternatives */
        size_t tops[] = {0, 5, 20};
        for (size_t c = 0; c < sizeof tops / sizeof *tops; c++) {
            int32_t ids[20];
            float lp[20], chosen;
            size_t n_top;
            double sum = 0.0;
            for (int it = 0; it < iters; it++) {
                const float *l = logits + (size_t)(it % n_vectors) * N_VOCAB;
                double t0 = now_us();
                if (gemfa_logprobs(l, N_VOCAB, it % N_VOCAB, &chosen, tops[c], ids, lp,
                                   &n_top) != GEMFA_OK) {
                    fprintf(stderr, "%s\n", gemfa_last_error());
                    return 1;
                }
                times[it] = now_us() - t0;
                sum += chosen;
            }
            qsort(times, (size_t)iters, sizeof *times, cmp_double);
            char name[64];
            snprintf(name, sizeof name, "gemfa_logprobs, top %zu", tops[c]);
            printf("  %-38s %8.1f %8.1f %8.1f   %.0f\n", name, times[iters / 10],
                   times[iters / 2], times[0], sum);
        }
    }
    free(logits);
    free(history);
    free(times);
    return 0;
}
