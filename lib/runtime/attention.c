/* attention.c — see attention.h.  One task = one row and one KV head: the
 * group's query heads are dotted with every visible key (contiguous per
 * head in the cache; a wrapped ring is two runs of slots), softmaxed in
 * f32 and used to sum the values. */
#include "runtime/attention.h"

#include <stdatomic.h>
#include <string.h>

#include "runtime/kvcache.h"
#include "runtime/vec.h"

/* Below this many multiply-adds (q·k and p·v; ~0.25 ms of work at the
 * ~16 GMAC/s one thread reaches) a layer runs on one thread: waking a
 * worker costs 0.1-0.5 ms when neighbours load the cores (E4B: one decode
 * row up to ~1000 keys, 4 batched rows up to ~250). */
#define ATTEND_PARALLEL_MIN_MACS (1 << 22)

void gf_kv_store(const gf_hparams *hp, int layer, const gf_batch *b, const float *k,
                 const float *v)
{
    const int64_t d = hp->head_dim, n_kv = hp->n_kv_heads;
    for (int64_t t = 0; t < b->n; t++) {
        gf_kvcache *kv = b->kv[t];
        const gf_kv_layer *L = &kv->layers[layer];
        const int64_t slot = gf_kv_slot(L, b->pos[t]);
        for (int64_t g = 0; g < n_kv; g++) {
            memcpy(gf_kv_key(kv, L, g, slot), k + (t * n_kv + g) * d, (size_t)d * sizeof(float));
            memcpy(gf_kv_value(kv, L, g, slot), v + (t * n_kv + g) * d, (size_t)d * sizeof(float));
        }
    }
}

int64_t gf_attend_scores_per_thread(const gf_hparams *hp, int64_t max_keys)
{
    const int64_t group = hp->n_heads / hp->n_kv_heads;
    return (group * max_keys + 15) & ~(int64_t)15;
}

typedef struct attend_job {
    const gf_vec_ops *vec;
    const gf_hparams *hp;
    int layer;
    const gf_batch *b;
    const float *q;
    float *out;
    float *scores;
    int64_t scores_per_thread;
    int64_t n_items; /* rows × KV heads */
    atomic_llong next;
} attend_job;

/* The first visible position of a row at `pos` (sliding: W keys including
 * the current one, spec §4.3). */
static int64_t first_key(const gf_hparams *hp, int layer, int64_t pos)
{
    if (hp->is_sliding[layer] && pos - hp->sliding_window + 1 > 0)
        return pos - hp->sliding_window + 1;
    return 0;
}

static void attend_item(const attend_job *job, int64_t item, float *sc)
{
    const gf_hparams *hp = job->hp;
    const gf_vec_ops *vec = job->vec;
    const int64_t d = hp->head_dim, n_heads = hp->n_heads, n_kv = hp->n_kv_heads;
    const int group = (int)(n_heads / n_kv);
    const int64_t t = item / n_kv, g = item % n_kv;
    const gf_kvcache *kv = job->b->kv[t];
    const gf_kv_layer *L = &kv->layers[hp->kv_source[job->layer]];
    const int64_t pos = job->b->pos[t], first = first_key(hp, job->layer, pos);
    const int64_t n_keys = pos - first + 1;
    /* Slots of first..pos: one run, or two when the ring wraps. */
    const int64_t s0 = gf_kv_slot(L, first);
    const int64_t run0 = s0 + n_keys <= L->n_slots ? n_keys : L->n_slots - s0;
    const float *qg = job->q + (t * n_heads + g * group) * d;
    float *og = job->out + (t * n_heads + g * group) * d;

    vec->dots(qg, group, gf_kv_key(kv, L, g, s0), run0, d, sc, n_keys);
    if (run0 < n_keys)
        vec->dots(qg, group, gf_kv_key(kv, L, g, 0), n_keys - run0, d, sc + run0, n_keys);
    for (int h = 0; h < group; h++) /* scale 1.0: the q/k norms take that role */
        vec->softmax(sc + h * n_keys, n_keys);
    memset(og, 0, (size_t)(group * d) * sizeof(float));
    vec->accum(sc, n_keys, group, gf_kv_value(kv, L, g, s0), run0, d, og);
    if (run0 < n_keys)
        vec->accum(sc + run0, n_keys, group, gf_kv_value(kv, L, g, 0), n_keys - run0, d, og);
}

static void attend_task(void *arg, int thread, int n_threads)
{
    (void)n_threads;
    attend_job *job = arg;
    float *sc = job->scores + thread * job->scores_per_thread;
    for (;;) {
        const int64_t item = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
        if (item >= job->n_items)
            break;
        attend_item(job, item, sc);
    }
}

int gf_attend(gf_threadpool *pool, const gf_hparams *hp, int layer, const gf_batch *b,
               const float *q, float *out, float *scores, int64_t scores_per_thread)
{
    attend_job job = {.vec = gf_vec(), .hp = hp, .layer = layer, .b = b, .q = q, .out = out,
                      .scores = scores, .scores_per_thread = scores_per_thread,
                      .n_items = b->n * hp->n_kv_heads};
    atomic_init(&job.next, 0);
    int64_t macs = 0;
    for (int64_t t = 0; t < b->n; t++)
        macs += (b->pos[t] - first_key(hp, layer, b->pos[t]) + 1) * 2 * hp->n_heads * hp->head_dim;
    if (gf_threadpool_size(pool) > 1 && job.n_items > 1 && macs >= ATTEND_PARALLEL_MIN_MACS) {
        gf_threadpool_run(pool, attend_task, &job);
        return 1;
    }
    attend_task(&job, 0, 1);
    return 0;
}
