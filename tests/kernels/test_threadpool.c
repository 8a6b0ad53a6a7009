/* test_threadpool.c — every index runs exactly once per run, for pools of
 * 1..8 threads, over many back-to-back runs and across sleeps (workers that
 * went to sleep must be woken); the contention signal follows whether the
 * workers start their indices themselves. */
#define _GNU_SOURCE /* sched_setaffinity */
#include "reliability/rel_criterion.h" /* Criterion, or the stand-in under TSan */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "core/alloc.h"
#include "kernels/threadpool.h"

#define MAX_T 8

TestSuite(threadpool);

typedef struct counts {
    atomic_int calls[MAX_T];
    atomic_int wrong_n;
    int expected_n;
} counts;

static void count_task(void *arg, int i, int n)
{
    counts *c = arg;
    if (n != c->expected_n || i < 0 || i >= n)
        atomic_fetch_add(&c->wrong_n, 1);
    else
        atomic_fetch_add(&c->calls[i], 1);
}

static void check_runs(gf_threadpool *pool, int n, int runs)
{
    counts c = {.expected_n = n};
    for (int r = 0; r < runs; r++)
        gf_threadpool_run(pool, count_task, &c);
    cr_assert_eq(atomic_load(&c.wrong_n), 0);
    for (int i = 0; i < n; i++)
        cr_assert_eq(atomic_load(&c.calls[i]), runs, "thread %d of %d ran %d of %d runs", i, n,
                     atomic_load(&c.calls[i]), runs);
}

Test(threadpool, every_index_once_per_run)
{
    for (int n = 1; n <= MAX_T; n++) {
        gf_threadpool *pool = gf_threadpool_new(n);
        cr_assert_not_null(pool);
        cr_assert_eq(gf_threadpool_size(pool), n);
        check_runs(pool, n, 20000 / n);
        gf_threadpool_free(pool);
    }
}

Test(threadpool, wakes_sleeping_workers)
{
    gf_threadpool *pool = gf_threadpool_new(3);
    cr_assert_not_null(pool);
    for (int i = 0; i < 20; i++) {
        struct timespec ts = {0, 2000000}; /* 2 ms: longer than the spin */
        nanosleep(&ts, NULL);
        check_runs(pool, 3, 3);
    }
    gf_threadpool_free(pool);
}

/* Results written by workers are visible to the caller after the run. */
typedef struct sum_job {
    const int *v;
    long partial[MAX_T];
    int len;
} sum_job;

static void sum_task(void *arg, int i, int n)
{
    sum_job *j = arg;
    long s = 0;
    for (int k = i; k < j->len; k += n)
        s += j->v[k];
    j->partial[i] = s;
}

Test(threadpool, results_visible_after_run)
{
    static int v[10007];
    long expect = 0;
    for (int i = 0; i < 10007; i++) {
        v[i] = i % 101;
        expect += v[i];
    }
    gf_threadpool *pool = gf_threadpool_new(4);
    for (int run = 0; run < 2000; run++) {
        sum_job j = {.v = v, .len = 10007};
        gf_threadpool_run(pool, sum_task, &j);
        long s = 0;
        for (int i = 0; i < 4; i++)
            s += j.partial[i];
        cr_assert_eq(s, expect);
    }
    gf_threadpool_free(pool);
}

Test(threadpool, null_and_invalid)
{
    cr_assert_null(gf_threadpool_new(0));
    cr_assert_null(gf_threadpool_new(-3));
    cr_assert_eq(gf_threadpool_size(NULL), 1);
    counts c = {.expected_n = 1};
    gf_threadpool_run(NULL, count_task, &c);
    cr_assert_eq(atomic_load(&c.calls[0]), 1);
    gf_threadpool_free(NULL);
    cr_assert_null(gf_threadpool_scratch(NULL, 16));
}

Test(threadpool, allocation_failures_leak_nothing)
{
    /* Fail the k-th allocation for every k until creation succeeds; ASan
     * reports any leak, and a failed creation returns NULL. */
    for (long k = 0; k < 16; k++) {
        gf_alloc_fail_after(k);
        gf_threadpool *pool = gf_threadpool_new(4);
        gf_alloc_fail_after(-1);
        if (pool) {
            check_runs(pool, 4, 10);
            gf_threadpool_free(pool);
            return;
        }
    }
    cr_assert_fail("creation never succeeded");
}

Test(threadpool, scratch_grows_and_stays)
{
    gf_threadpool *pool = gf_threadpool_new(2);
    char *a = gf_threadpool_scratch(pool, 100);
    cr_assert_not_null(a);
    cr_assert_eq((uintptr_t)a % 64, 0);
    cr_assert_eq(gf_threadpool_scratch(pool, 50), a, "a smaller request reuses the buffer");
    char *b = gf_threadpool_scratch(pool, 1 << 20);
    cr_assert_not_null(b);
    b[(1 << 20) - 1] = 1;
    gf_alloc_fail_after(0);
    cr_assert_null(gf_threadpool_scratch(pool, 4 << 20));
    gf_alloc_fail_after(-1);
    cr_assert_eq(gf_threadpool_scratch(pool, 1 << 20), b, "a failed growth keeps the old buffer");
    gf_threadpool_free(pool);
}

/* Index 0 returns at once: on a pool whose threads share one CPU the
 * caller takes index 1 before its worker gets the CPU. */
static void nothing_task(void *arg, int i, int n)
{
    (void)arg;
    (void)i;
    (void)n;
}

/* Index 0 waits (yielding the CPU) until index 1 has started, so the worker
 * runs its own index. */
static void wait_for_worker_task(void *arg, int i, int n)
{
    (void)n;
    atomic_int *started = arg;
    if (i == 1)
        atomic_store(started, 1);
    else
        while (!atomic_load(started))
            sched_yield();
}

Test(threadpool, contention_follows_late_workers)
{
    cr_assert_eq(gf_threadpool_contended(NULL), 0);
    gf_threadpool *one = gf_threadpool_new(1);
    gf_threadpool_run(one, nothing_task, NULL);
    cr_assert_eq(gf_threadpool_contended(one), 0, "one thread is never contended");
    gf_threadpool_free(one);

    /* Workers inherit the creating thread's CPU set: all on one CPU. */
    cpu_set_t all, single;
    cr_assert_eq(pthread_getaffinity_np(pthread_self(), sizeof all, &all), 0);
    CPU_ZERO(&single);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &single);
    cr_assert_eq(pthread_setaffinity_np(pthread_self(), sizeof single, &single), 0);
    gf_threadpool *pool = gf_threadpool_new(2);
    cr_assert_eq(pthread_setaffinity_np(pthread_self(), sizeof all, &all), 0);
    cr_assert_not_null(pool);
    cr_assert_eq(gf_threadpool_contended(pool), 0, "a new pool assumes a quiet machine");

    for (int r = 0; r < 50; r++) {
        atomic_int started = 0;
        gf_threadpool_run(pool, wait_for_worker_task, &started);
    }
    cr_assert_eq(gf_threadpool_contended(pool), 0, "workers that start their own index");
    for (int r = 0; r < 40; r++)
        gf_threadpool_run(pool, nothing_task, NULL);
    cr_assert_eq(gf_threadpool_contended(pool), 1, "the caller kept taking the worker's index");
    for (int r = 0; r < 400; r++) {
        atomic_int started = 0;
        gf_threadpool_run(pool, wait_for_worker_task, &started);
    }
    cr_assert_eq(gf_threadpool_contended(pool), 0, "punctual runs clear it again");
    gf_threadpool_free(pool);
}
