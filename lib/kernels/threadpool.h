/* threadpool.h — a fixed set of worker threads owned by a context.
 * gf_threadpool_run() calls fn(arg, i, n) once for every i in [0, n) with
 * n = the pool's size, in parallel, and returns when all are done. */
#ifndef GF_THREADPOOL_H
#define GF_THREADPOOL_H

typedef struct gf_threadpool gf_threadpool;
typedef void (*gf_task_fn)(void *arg, int thread_index, int n_threads);

/* n_threads >= 1 (the calling thread counts as one).  NULL on failure. */
gf_threadpool *gf_threadpool_new(int n_threads);
void gf_threadpool_free(gf_threadpool *pool);
int gf_threadpool_size(const gf_threadpool *pool); /* 1 for NULL */
/* pool may be NULL: fn(arg, 0, 1) on the calling thread. */
void gf_threadpool_run(gf_threadpool *pool, gf_task_fn fn, void *arg);

#endif
