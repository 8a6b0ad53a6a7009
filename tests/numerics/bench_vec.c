/* bench_vec.c — times the row helpers issue 12 touched, per kernel level, at
 * E4B sizes: softcap over one row of logits (V = 262144) and the AltUp
 * prediction of one token (K = 4 streams of H = 2048) as one mix pass
 * against the memcpy + K axpy passes it replaced; GELU·up over one FFN row
 * (F = 16384) and a softmax of 1024 scores (both use the exp whose clamps
 * changed).  Built, not run as a test.
 *
 *   bench_vec [reps]      prints ns per call, median and minimum of 7 runs */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/vec.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define RUNS 7
#define TIME(label, reps, stmt)                                                     \
    do {                                                                            \
        double t[RUNS];                                                             \
        for (int r_ = 0; r_ < RUNS; r_++) {                                         \
            const double t0 = now_ns();                                             \
            for (int i_ = 0; i_ < (reps); i_++) {                                   \
                stmt;                                                               \
            }                                                                       \
            t[r_] = (now_ns() - t0) / (reps);                                       \
        }                                                                           \
        qsort(t, RUNS, sizeof t[0], cmp);                                           \
        printf("%-8s %-22s %10.0f ns (min %.0f)\n", v->name, label, t[RUNS / 2], t[0]);              \
    } while (0)

int main(int argc, char **argv)
{
    const int reps = argc > 1 ? atoi(argv[1]) : 200;
    enum { V = 262144, H = 2048, K = 4, F = 16384 };
    float *logits = malloc(V * sizeof(float)), *src = malloc(V * sizeof(float));
    float *s = malloc(K * H * sizeof(float)), *p = malloc(K * H * sizeof(float));
    unsigned seed = 1;
    for (int i = 0; i < V; i++) {
        seed = seed * 1103515245u + 12345u;
        src[i] = (float)((seed >> 8) & 0xffff) / 1024.0f - 32.0f;
    }
    memcpy(s, src, K * H * sizeof(float));
    const float c[K][K] = {{0.1f, -0.2f, 0.3f, 0.05f}, {0.2f, 0.1f, -0.1f, 0.4f},
                           {-0.3f, 0.2f, 0.1f, 0.1f}, {0.05f, 0.3f, -0.2f, 0.1f}};
    const float *sp[K] = {s, s + H, s + 2 * H, s + 3 * H};
    for (int lv = 0; lv < GF_LEVEL_COUNT; lv++) {
        const gf_vec_ops *v = gf_vec_for_level((gf_kernel_level)lv);
        if (!v)
            continue;
        TIME("softcap V=262144", reps / 10 + 1, (memcpy(logits, src, V * sizeof(float)),
                                                 v->softcap(logits, V, 30.0f)));
        TIME("copy V=262144", reps / 10 + 1, memcpy(logits, src, V * sizeof(float)));
        TIME("gelu_mul F=16384", reps, (memcpy(logits, src, F * sizeof(float)),
                                        v->gelu_mul(logits, src + F, F)));
        TIME("softmax n=1024", reps * 4, (memcpy(logits, src, 1024 * sizeof(float)),
                                          v->softmax(logits, 1024)));
        TIME("predict: mix", reps * 10, for (int j = 0; j < K; j++)
                 v->mix(p + j * H, sp[j], c[j], sp, K, H));
        TIME("predict: copy+axpy", reps * 10, for (int j = 0; j < K; j++) {
            memcpy(p + j * H, sp[j], H * sizeof(float));
            for (int i = 0; i < K; i++)
                v->axpy(p + j * H, c[j][i], sp[i], H);
        });
    }
    free(logits);
    free(src);
    free(s);
    free(p);
    return 0;
}
