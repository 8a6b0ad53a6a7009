/* threadpool.h — a fixed set of worker threads owned by a context.
 * gf_threadpool_run() calls fn(arg, i, n) once for every i in [0, n) with
 * n = the pool's size, in parallel, and returns when all are done.
 *
 * The calling thread runs index 0 itself; the workers spin briefly after a
 * run (the forward pass issues hundreds of runs per token, back to back)
 * and then sleep on a condition variable.  One thread at a time may call
 * gf_threadpool_run() on a given pool; fn must not call it recursively. */
#ifndef GF_THREADPOOL_H
#define GF_THREADPOOL_H

#include <stddef.h>

typedef struct gf_threadpool gf_threadpool;
typedef void (*gf_task_fn)(void *arg, int thread_index, int n_threads);

/* n_threads >= 1 (the calling thread counts as one; values above 256 are
 * clamped).  NULL on failure (allocation or thread creation; nothing leaks).
 * Also pins OpenBLAS to one thread (once per process) so that its threads
 * never compete with ours. */
gf_threadpool *gf_threadpool_new(int n_threads);
void gf_threadpool_free(gf_threadpool *pool);
int gf_threadpool_size(const gf_threadpool *pool); /* 1 for NULL */
/* pool may be NULL: fn(arg, 0, 1) on the calling thread. */
void gf_threadpool_run(gf_threadpool *pool, gf_task_fn fn, void *arg);

/* 1 when recent runs found a worker descheduled (the caller finished its
 * own index before an awake worker had started its; one such run sets it
 * for ~45 runs, see LATE_ONE in threadpool.c): other processes hold the
 * cores, so a run may wait for a worker.  Callers use it to keep work that
 * gains little from a second thread on one thread then.  0 for a NULL or
 * one-thread pool.  Only the thread that calls gf_threadpool_run() may
 * call this. */
int gf_threadpool_contended(const gf_threadpool *pool);

/* A 64-byte aligned scratch buffer of at least `bytes` owned by the pool
 * (grown on demand, kept between calls, freed with the pool), for the
 * kernels' activation copies and packed tiles.  Its contents are undefined
 * on return.  Only the thread that calls gf_threadpool_run() may call this,
 * outside of a run.  NULL if pool is NULL or on allocation failure. */
void *gf_threadpool_scratch(gf_threadpool *pool, size_t bytes);

/* Makes OpenBLAS single-threaded (idempotent, thread-safe). */
void gf_openblas_single_thread(void);

#endif
