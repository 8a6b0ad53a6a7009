/* bench_bw.c — see bench_bw.h.  The buffer comes from mmap (not malloc)
 * so it is returned to the system at once; the sum is kept so the reads
 * cannot be optimised away. */
#include "bench_bw.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define BW_MAX_THREADS 256

typedef float v16f __attribute__((vector_size(64)));

typedef struct bw_slice {
    const v16f *p;
    size_t n; /* vectors */
    float sum;
} bw_slice;

/* Four independent chains hide the latency of the adds. */
#define BW_BODY                                                           \
    bw_slice *s = arg;                                                    \
    v16f a = {0}, b = {0}, c = {0}, d = {0};                              \
    for (size_t i = 0; i + 4 <= s->n; i += 4) {                           \
        a += s->p[i];                                                     \
        b += s->p[i + 1];                                                 \
        c += s->p[i + 2];                                                 \
        d += s->p[i + 3];                                                 \
    }                                                                     \
    a += b + c + d;                                                       \
    float t = 0;                                                          \
    for (int k = 0; k < 16; k++)                                          \
        t += a[k];                                                        \
    s->sum = t;                                                           \
    return NULL;

__attribute__((target("avx512f"))) static void *read_avx512(void *arg) { BW_BODY }
__attribute__((target("avx2"))) static void *read_avx2(void *arg) { BW_BODY }
static void *read_plain(void *arg) { BW_BODY }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int bench_bandwidth(size_t bytes, int n_threads, int rounds, bench_bw *out)
{
    if (n_threads < 1)
        n_threads = 1;
    if (n_threads > BW_MAX_THREADS)
        n_threads = BW_MAX_THREADS;
    if (rounds < 1)
        rounds = 1;
    if (rounds > 64)
        rounds = 64;
    bytes = (bytes + 4095) & ~(size_t)4095;
    void *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED)
        return -1;
    memset(buf, 1, bytes); /* real pages, not the shared zero page */
    void *(*fn)(void *) = read_plain;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        fn = read_avx512;
    else if (__builtin_cpu_supports("avx2"))
        fn = read_avx2;
    const size_t vecs = bytes / sizeof(v16f), per = vecs / (size_t)n_threads / 4 * 4;
    bw_slice slices[BW_MAX_THREADS];
    pthread_t threads[BW_MAX_THREADS];
    double secs[64];
    int rc = 0;
    volatile float sink = 0;
    for (int r = 0; r < rounds && rc == 0; r++) {
        const double t0 = now_s();
        int started = 0;
        for (int i = 0; i < n_threads; i++) {
            slices[i] = (bw_slice){(const v16f *)buf + (size_t)i * per, per, 0};
            if (i > 0 && pthread_create(&threads[i], NULL, fn, &slices[i]) != 0) {
                rc = -1;
                break;
            }
            started = i + 1;
        }
        if (started > 0)
            fn(&slices[0]);
        for (int i = 1; i < started; i++)
            pthread_join(threads[i], NULL);
        secs[r] = now_s() - t0;
        for (int i = 0; i < started; i++)
            sink += slices[i].sum;
    }
    munmap(buf, bytes);
    if (rc != 0)
        return -1;
    qsort(secs, (size_t)rounds, sizeof secs[0], cmp_double);
    const double read = (double)(per * (size_t)n_threads * sizeof(v16f));
    out->best_gbps = read / secs[0] / 1e9;
    out->median_gbps = read / secs[rounds / 2] / 1e9;
    (void)sink;
    return 0;
}
