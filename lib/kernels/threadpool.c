/* threadpool.c — PLACEHOLDER: runs everything on the calling thread until
 * the real pool lands (issue 6). */
#include "kernels/threadpool.h"

#include "core/alloc.h"

struct gf_threadpool {
    int n;
};

gf_threadpool *gf_threadpool_new(int n_threads)
{
    gf_threadpool *p = gf_calloc(1, sizeof *p);
    if (p)
        p->n = 1;
    (void)n_threads;
    return p;
}

void gf_threadpool_free(gf_threadpool *pool) { gf_free(pool); }
int gf_threadpool_size(const gf_threadpool *pool) { return pool ? pool->n : 1; }

void gf_threadpool_run(gf_threadpool *pool, gf_task_fn fn, void *arg)
{
    (void)pool;
    fn(arg, 0, 1);
}
