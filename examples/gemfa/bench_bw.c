/* bench_bw.c — see bench_bw.h.  Protocol: the parent writes one byte per
 * measurement; the child answers with a double (GB/s, or -1 on failure).
 * The child allocates its buffer with mmap and touches every page before
 * its first answer, so the first measurement is not a page-fault count. */
#include "bench_bw.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BW_MAX_THREADS 256

typedef float v16f __attribute__((vector_size(64)));

/* Threads take 1 MiB chunks from a shared counter, as the matrix kernels
 * take rows: a thread that neighbours delay leaves its share to the others
 * instead of stalling the measurement. */
#define BW_CHUNK_VECS ((1u << 20) / sizeof(v16f))

typedef struct bw_job {
    const v16f *p;
    size_t n_chunks;
    atomic_size_t next;
} bw_job;

typedef struct bw_thread {
    bw_job *job;
    float sum;
} bw_thread;

/* Four independent chains hide the latency of the adds.  Software prefetch
 * 4 KB ahead, as the matrix kernels do (lib/kernels): without it this loop
 * read slower than the kernels in quiet minutes (roofline fractions above
 * 1), so it understated the ceiling. */
#define BW_PREFETCH 4096
#define BW_BODY                                                                 \
    bw_thread *th = arg;                                                        \
    bw_job *job = th->job;                                                      \
    v16f a = {0}, b = {0}, c = {0}, d = {0};                                    \
    for (;;) {                                                                  \
        size_t k = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed); \
        if (k >= job->n_chunks)                                                 \
            break;                                                              \
        const v16f *p = job->p + k * BW_CHUNK_VECS;                             \
        for (size_t i = 0; i < BW_CHUNK_VECS; i += 4) {                         \
            for (int l = 0; l < 4; l++)                                         \
                __builtin_prefetch((const char *)(p + i + l) + BW_PREFETCH, 0, 3); \
            a += p[i];                                                          \
            b += p[i + 1];                                                      \
            c += p[i + 2];                                                      \
            d += p[i + 3];                                                      \
        }                                                                       \
    }                                                                           \
    a += b + c + d;                                                             \
    float t = 0;                                                                \
    for (int k = 0; k < 16; k++)                                                \
        t += a[k];                                                              \
    th->sum = t;                                                                \
    return NULL;

#pragma GCC diagnostic ignored "-Wpsabi" /* the vectors never cross a call */
#if defined(__x86_64__)
__attribute__((target("avx512f"))) static void *read_avx512(void *arg) { BW_BODY }
__attribute__((target("avx2"))) static void *read_avx2(void *arg) { BW_BODY }
#endif
static void *read_plain(void *arg) { BW_BODY } /* aarch64: NEON by default */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static int read_all(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t k = read(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* One round over the buffer with n threads; GB/s or -1. */
static double measure(void *(*fn)(void *), const v16f *buf, size_t n_chunks, int n_threads)
{
    bw_job job = {.p = buf, .n_chunks = n_chunks};
    atomic_init(&job.next, 0);
    bw_thread th[BW_MAX_THREADS];
    pthread_t tid[BW_MAX_THREADS];
    const double t0 = now_s();
    int started = 1;
    for (int i = 0; i < n_threads; i++) {
        th[i] = (bw_thread){&job, 0};
        if (i > 0) {
            if (pthread_create(&tid[i], NULL, fn, &th[i]) != 0)
                break;
            started = i + 1;
        }
    }
    fn(&th[0]);
    for (int i = 1; i < started; i++)
        pthread_join(tid[i], NULL);
    const double dt = now_s() - t0;
    volatile float sink = 0;
    for (int i = 0; i < started; i++)
        sink += th[i].sum;
    (void)sink;
    return (double)(n_chunks * BW_CHUNK_VECS * sizeof(v16f)) / dt / 1e9;
}

static void child_main(int in, int out, size_t bytes, int n_threads)
{
    void *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf != MAP_FAILED)
        memset(buf, 1, bytes); /* real pages, not the shared zero page */
    void *(*fn)(void *) = read_plain;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        fn = read_avx512;
    else if (__builtin_cpu_supports("avx2"))
        fn = read_avx2;
#endif
    const size_t n_chunks = bytes / (BW_CHUNK_VECS * sizeof(v16f));
    char req;
    while (read_all(in, &req, 1) == 0) {
        double gbps = buf == MAP_FAILED || n_chunks == 0 ? -1 : measure(fn, buf, n_chunks, n_threads);
        if (write_all(out, &gbps, sizeof gbps) != 0)
            break;
    }
    _exit(0);
}

int bench_bw_start(bench_bw *bw, size_t bytes, int n_threads)
{
    bw->pid = -1;
    bw->to_child = bw->from_child = -1;
    if (n_threads < 1)
        n_threads = 1;
    if (n_threads > BW_MAX_THREADS)
        n_threads = BW_MAX_THREADS;
    bytes = (bytes + 4095) & ~(size_t)4095;
    int down[2], up[2];
    if (pipe(down) != 0)
        return -1;
    if (pipe(up) != 0) {
        close(down[0]);
        close(down[1]);
        return -1;
    }
    signal(SIGPIPE, SIG_IGN); /* a dead probe is an error return, not a signal */
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(down[0]);
        close(down[1]);
        close(up[0]);
        close(up[1]);
        return -1;
    }
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        child_main(down[0], up[1], bytes, n_threads);
    }
    close(down[0]);
    close(up[1]);
    bw->pid = pid;
    bw->to_child = down[1];
    bw->from_child = up[0];
    return 0;
}

int bench_bw_measure(bench_bw *bw, double *gbps)
{
    const char req = 'm';
    if (bw->pid <= 0 || write_all(bw->to_child, &req, 1) != 0 ||
        read_all(bw->from_child, gbps, sizeof *gbps) != 0 || !(*gbps > 0))
        return -1;
    return 0;
}

void bench_bw_stop(bench_bw *bw)
{
    if (bw->to_child >= 0)
        close(bw->to_child); /* the child's read ends: it exits */
    if (bw->from_child >= 0)
        close(bw->from_child);
    if (bw->pid > 0)
        waitpid(bw->pid, NULL, 0);
    bw->pid = -1;
    bw->to_child = bw->from_child = -1;
}
