/* bench_ab.c — A/B timing of several builds of one kernel file in one
 * process (built by bench_ab.sh, not by meson).
 *
 *   bench_ab DTYPE ROWS COLS REPS [THREADS]     (DTYPE 0 f32, 1 f16, 2 bf16)
 *
 * This machine's memory bandwidth moves with its neighbours' load from one
 * second to the next, so two benchmark runs a minute apart are not
 * comparable.  Here every variant (kernels_avx512.c compiled with other
 * -D knobs, its gf_kernels_fill_avx512 renamed ab_fill_vN) runs blocks of
 * 16 calls in turn, for 1..4 tokens, REPS times (the order reversed every
 * other round), on matrices filling 512 MB (AB_MB=n: n MB; 0 keeps one
 * matrix in cache), split into row chunks over the pool as gf_linear does.
 * It prints per variant the median ms per call of each token count and the
 * median of the per-round ratio 4 tokens / 1 token. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "kernels/convert.h"
#include "kernels/kernels.h"
#include "kernels/threadpool.h"

#ifndef AB_VARIANTS
#define AB_VARIANTS 2
#endif
#define X(i) void ab_fill_v##i(gf_kernel_table *t, int has_vnni, int has_bf16);
X(0) X(1) X(2) X(3)
#undef X
static void (*const fills[4])(gf_kernel_table *, int, int) = {ab_fill_v0, ab_fill_v1, ab_fill_v2,
                                                              ab_fill_v3};

enum { MAX_REPS = 1001, N_TOK = 4, CALLS = 16 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

typedef struct ab_job {
    gf_rows_fn fn;
    const gf_matrix *W;
    gf_act a;
    float *y;
    int64_t chunk;
    atomic_llong next;
} ab_job;

static void ab_task(void *arg, int thread_index, int n_threads)
{
    (void)thread_index;
    (void)n_threads;
    ab_job *j = arg;
    for (;;) {
        int64_t begin = atomic_fetch_add(&j->next, 1) * j->chunk;
        if (begin >= j->W->rows)
            break;
        int64_t end = begin + j->chunk < j->W->rows ? begin + j->chunk : j->W->rows;
        j->fn(j->W, &j->a, begin, end, j->y);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bench_ab DTYPE(0 f32, 1 f16, 2 bf16) ROWS COLS REPS [THREADS]\n");
        return 2;
    }
    const int dt = atoi(argv[1]), reps = atoi(argv[4]), threads = argc > 5 ? atoi(argv[5]) : 2;
    const int64_t R = atoll(argv[2]), C = atoll(argv[3]);
    if (dt < 0 || dt > 2 || R < 1 || C < 1 || reps < 1 || reps > MAX_REPS || threads < 1) {
        fprintf(stderr, "bench_ab: bad arguments\n");
        return 2;
    }
    gf_kernel_table tab[AB_VARIANTS];
    memset(tab, 0, sizeof tab);
    for (int v = 0; v < AB_VARIANTS; v++)
        fills[v](&tab[v], 1, 1);

    const size_t es = dt == GF_DTYPE_F32 ? 4 : 2, one = (size_t)(R * C) * es;
    const size_t set = getenv("AB_MB") ? (size_t)atoll(getenv("AB_MB")) << 20 : (size_t)512 << 20;
    const int n_mats = (int)(set / one) + 1;
    gf_matrix *mats = calloc((size_t)n_mats, sizeof *mats);
    for (int i = 0; i < n_mats; i++) {
        void *p = gf_alloc_aligned(one);
        if (!p) {
            fprintf(stderr, "bench_ab: no memory\n");
            return 1;
        }
        for (size_t k = 0; k < (size_t)(R * C); k++) {
            float w = frand() * 0.05f;
            if (dt == GF_DTYPE_F32)
                ((float *)p)[k] = w;
            else
                ((uint16_t *)p)[k] = dt == GF_DTYPE_F16 ? gf_f32_to_f16(w) : gf_f32_to_bf16(w);
        }
        mats[i] = (gf_matrix){.dtype = (gf_dtype)dt, .rows = R, .cols = C, .data = p};
    }
    float *x = gf_alloc_aligned((size_t)(N_TOK * C) * sizeof(float));
    float *xp = gf_alloc_aligned((size_t)(N_TOK * gf_bf16_pairs_cols(C)) * sizeof(float));
    float *y = gf_alloc_aligned((size_t)(N_TOK * R) * sizeof(float));
    for (int64_t i = 0; i < N_TOK * C; i++)
        x[i] = frand();
    gf_bf16_pairs(x, N_TOK, C, xp);
    gf_threadpool *pool = gf_threadpool_new(threads);

    static double ms[MAX_REPS][N_TOK][AB_VARIANTS];
    int calls = 0;
    for (int r = 0; r < reps; r++)
        for (int t = 0; t < N_TOK; t++)
            for (int k = 0; k < AB_VARIANTS; k++) {
                int v = r & 1 ? AB_VARIANTS - 1 - k : k;
                ab_job j;
                memset(&j, 0, sizeof j);
                j.fn = tab[v].rows[dt];
                j.a = (gf_act){.x = x, .n_tokens = t + 1, .cols = C, .xpair = xp};
                j.y = y;
                int64_t chunk = (R + 4 * threads - 1) / (4 * threads);
                j.chunk = (chunk + 15) & ~(int64_t)15; /* as gf_linear */
                double t0 = now_s();
                for (int c = 0; c < CALLS; c++) {
                    j.W = &mats[calls++ % n_mats];
                    atomic_store(&j.next, 0);
                    gf_threadpool_run(pool, ab_task, &j);
                }
                ms[r][t][v] = (now_s() - t0) / CALLS * 1e3;
            }
    printf("# dtype %d, %lld x %lld, %d threads, %d rounds: median ms per call\n", dt,
           (long long)R, (long long)C, threads, reps);
    static double tmp[MAX_REPS];
    for (int v = 0; v < AB_VARIANTS; v++) {
        printf("v%d:", v);
        for (int t = 0; t < N_TOK; t++) {
            for (int r = 0; r < reps; r++)
                tmp[r] = ms[r][t][v];
            printf("  %dtok %.3f", t + 1, median(tmp, reps));
        }
        for (int r = 0; r < reps; r++)
            tmp[r] = ms[r][N_TOK - 1][v] / ms[r][0][v];
        printf("  4/1 %.2f\n", median(tmp, reps));
    }
    gf_threadpool_free(pool);
    return 0;
}
