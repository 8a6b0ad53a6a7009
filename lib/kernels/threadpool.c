/* threadpool.c — pthread workers woken by a generation counter.
 *
 * A run publishes (fn, arg), bumps `generation` and runs index 0 on the
 * calling thread.  Workers notice the new generation by spinning for a
 * short while (cheap back-to-back runs) and otherwise sleep on a condition
 * variable; `n_sleeping` lets a run skip the broadcast when nobody sleeps.
 * The generation bump and the n_sleeping check are sequentially consistent
 * on both sides, so a worker that goes to sleep either sees the new
 * generation or is seen (and woken) by the run.
 *
 * Each index is claimed before it runs: claim[i] holds the last generation
 * whose index i was taken, and whoever moves it up to the current one (the
 * worker, or the caller once its own index is done) runs it.  So a worker
 * that has not woken yet (asleep, or descheduled on a busy machine) never
 * holds a run up: the caller runs its index instead, and the worker, when
 * it wakes, finds it taken.  A worker that saw an older generation cannot
 * claim (claim[i] >= that generation once its run is over), so it never
 * reads the (fn, arg) of a run it did not see published. */
#include "kernels/threadpool.h"

#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"

#define GF_MAX_THREADS 256
/* How long an idle worker spins before it sleeps: longer than the gap
 * between two linear layers of a forward pass, far shorter than a token. */
#define GF_SPIN_NS 200000
/* Lateness, in 1/65536ths: a run whose caller had to take a worker's
 * index (the worker was awake, so descheduled) moves it a quarter of the
 * way to 1, every other run 1/64 of the way to 0; above 1/8 the pool
 * reports contention, so one late run makes it contended for ~45 runs.
 * A run that comes after a pause longer than the spin and wakes a
 * sleeping worker does not count: that lateness is the wake-up.  (A worker
 * asleep after a short pause was descheduled while it spun: that counts.)
 * One E4B q4 bench, 1750 attention calls: quiet, 85 saw contention (the
 * bandwidth probe between its steps is a real neighbour); with one busy
 * neighbour process on two cores, 1731 (a 1/16 average both ways that
 * also counted wake-ups let 36 % of them through; the batch lost 5-9 %). */
#define LATE_ONE 65536
#define LATE_CONTENDED (LATE_ONE / 8)

struct gf_threadpool {
    int n;
    int64_t spin_ns; /* 0 when there are more threads than cores */
    pthread_t *threads;
    gf_task_fn fn;
    void *arg;
    atomic_ullong generation;
    atomic_ullong *claim; /* [n]: the last generation whose index i was taken */
    atomic_int pending;   /* indices 1..n-1 of the current generation not done */
    atomic_int n_sleeping;
    atomic_int stop;
    int late;            /* see LATE_ONE */
    int64_t last_end_ns; /* when the last run returned */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void *scratch;
    size_t scratch_size;
};

typedef struct worker_start {
    gf_threadpool *pool;
    int index;
} worker_start;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Takes index i of generation g (1) unless someone has (0). */
static int claim(gf_threadpool *p, int i, unsigned long long g)
{
    unsigned long long c = atomic_load_explicit(&p->claim[i], memory_order_relaxed);
    while (c < g)
        if (atomic_compare_exchange_weak_explicit(&p->claim[i], &c, g, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return 1;
    return 0;
}

/* Runs a claimed index of the current run and counts it done. */
static void run_index(gf_threadpool *p, int i)
{
    p->fn(p->arg, i, p->n);
    atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
}

/* Waits until the generation differs from `seen`; returns the new one. */
static unsigned long long wait_for_work(gf_threadpool *p, unsigned long long seen)
{
    int64_t deadline = 0;
    for (unsigned spins = 0;; spins++) {
        unsigned long long g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (g != seen)
            return g;
        cpu_relax();
        if ((spins & 63) == 63) {
            int64_t t = now_ns();
            if (!deadline)
                deadline = t + p->spin_ns;
            else if (t > deadline)
                break;
        }
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->n_sleeping, 1);
    unsigned long long g;
    while ((g = atomic_load(&p->generation)) == seen)
        pthread_cond_wait(&p->cv, &p->mu);
    atomic_fetch_sub(&p->n_sleeping, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *opaque)
{
    worker_start start = *(worker_start *)opaque;
    gf_free(opaque);
    gf_threadpool *p = start.pool;
    unsigned long long seen = 0; /* runs only start after gf_threadpool_new returns */
    for (;;) {
        seen = wait_for_work(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire))
            break;
        if (claim(p, start.index, seen)) /* else the caller ran it, or the run is over */
            run_index(p, start.index);
    }
    return NULL;
}

static void openblas_once(void) { openblas_set_num_threads(1); }

void gf_openblas_single_thread(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, openblas_once);
}

/* Bumps the generation and wakes sleepers; 1 if there were any. */
static int publish(gf_threadpool *p)
{
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        return 1;
    }
    return 0;
}

static void stop_workers(gf_threadpool *p, int n_started)
{
    atomic_store_explicit(&p->stop, 1, memory_order_release);
    publish(p);
    for (int i = 0; i < n_started; i++)
        pthread_join(p->threads[i], NULL);
}

gf_threadpool *gf_threadpool_new(int n_threads)
{
    if (n_threads < 1)
        return NULL;
    if (n_threads > GF_MAX_THREADS)
        n_threads = GF_MAX_THREADS;
    gf_openblas_single_thread();
    gf_threadpool *p = gf_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = n_threads;
    /* Spinning only pays when every thread has a core of its own; otherwise
     * a spinning worker takes the core the caller needs to publish work. */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    p->spin_ns = cpus >= n_threads ? GF_SPIN_NS : 0;
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->n_sleeping, 0);
    atomic_init(&p->stop, 0);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        gf_free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        gf_free(p);
        return NULL;
    }
    if (n_threads > 1) {
        p->threads = gf_calloc((size_t)n_threads - 1, sizeof *p->threads);
        p->claim = gf_calloc((size_t)n_threads, sizeof *p->claim);
        if (!p->threads || !p->claim)
            goto fail;
        for (int i = 0; i < n_threads; i++)
            atomic_init(&p->claim[i], 0);
    }
    int started = 0;
    for (int i = 1; i < n_threads; i++) {
        worker_start *ws = gf_malloc(sizeof *ws);
        if (!ws) {
            stop_workers(p, started);
            goto fail;
        }
        ws->pool = p;
        ws->index = i;
        if (pthread_create(&p->threads[started], NULL, worker_main, ws) != 0) {
            gf_free(ws);
            stop_workers(p, started);
            goto fail;
        }
        started++;
    }
    return p;
fail:
    gf_free(p->threads);
    gf_free(p->claim);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    gf_free(p);
    return NULL;
}

void gf_threadpool_free(gf_threadpool *pool)
{
    if (!pool)
        return;
    stop_workers(pool, pool->n - 1);
    gf_free(pool->threads);
    gf_free(pool->claim);
    pthread_cond_destroy(&pool->cv);
    pthread_mutex_destroy(&pool->mu);
    gf_free_aligned(pool->scratch);
    gf_free(pool);
}

int gf_threadpool_size(const gf_threadpool *pool) { return pool ? pool->n : 1; }

void gf_threadpool_run(gf_threadpool *pool, gf_task_fn fn, void *arg)
{
    if (!pool || pool->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    atomic_store_explicit(&pool->pending, pool->n - 1, memory_order_relaxed);
    const unsigned long long g = atomic_load_explicit(&pool->generation, memory_order_relaxed) + 1;
    const int woke = publish(pool); /* seq_cst: also releases fn, arg and pending */
    const int64_t start = woke ? now_ns() : 0; /* the pause matters only to a wake-up */
    fn(arg, 0, pool->n);
    int took = 0;
    for (int i = 1; i < pool->n; i++) /* indices whose worker has not come yet */
        if (claim(pool, i, g)) {
            run_index(pool, i);
            took = 1;
        }
    if (took && !(woke && start - pool->last_end_ns > GF_SPIN_NS))
        pool->late += (LATE_ONE - pool->late) / 4;
    else
        pool->late -= pool->late / 64;
    for (unsigned spins = 0; atomic_load_explicit(&pool->pending, memory_order_acquire) != 0;
         spins++) {
        cpu_relax();
        if (spins >= 1024) /* a worker is descheduled (more threads than cores?): let it run */
            sched_yield();
    }
    pool->last_end_ns = now_ns();
}

void *gf_threadpool_scratch(gf_threadpool *pool, size_t bytes)
{
    if (!pool)
        return NULL;
    if (bytes <= pool->scratch_size && pool->scratch)
        return pool->scratch;
    void *fresh = gf_alloc_aligned(bytes);
    if (!fresh)
        return NULL;
    gf_free_aligned(pool->scratch);
    pool->scratch = fresh;
    pool->scratch_size = bytes;
    return fresh;
}

int gf_threadpool_contended(const gf_threadpool *pool)
{
    return pool && pool->n > 1 && pool->late > LATE_CONTENDED;
}
