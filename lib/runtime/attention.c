/* attention.c — see attention.h.  A split of positions [k0, k1) of one row
 * and KV head yields, per query head h of the group, the running max m_h,
 * the sum l_h = Σ e^(s − m_h) and acc_h = Σ e^(s − m_h) v; blocks of keys
 * update them online (acc and l rescaled by e^(m_old − m_new) when the max
 * grows).  The splits of a row merge as out_h = Σ e^(m − M) acc / Σ e^(m − M) l
 * in split order.  A wrapped ring is two runs of slots inside a block. */
#include "runtime/attention.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "runtime/kvcache.h"
#include "runtime/vec.h"

/* Below this many multiply-adds (q·k and p·v; ~0.25 ms of work at the
 * ~16 GMAC/s one thread reaches) a layer runs on one thread while other
 * processes hold the cores (gf_threadpool_contended): a run can then wait
 * 0.1-0.5 ms for a descheduled worker (E4B: one decode row up to ~1000
 * keys, 4 batched rows up to ~250). */
#define ATTEND_PARALLEL_MIN_MACS (1 << 22)
/* On a quiet machine a worker starts within microseconds, and from this
 * much work on the layer's keys and values (which come from memory: the
 * weights streamed since evict them) two threads read them faster: E4B q4
 * batch of 4 at depth 128 (2.3 M per layer) 31.7-32.2 -> 33.5-33.6 tok/s
 * (with a busy neighbour 19.0-19.8 -> 20.0-20.5: contended, as before).
 * One decode row (0.57 M there) stays on one thread up to ~250 keys. */
#define ATTEND_PARALLEL_QUIET_MIN_MACS (1 << 20)
/* Batches with fewer (row, KV head) pairs than this split positions across
 * the threads; the shared partials are sized for it. */
#define SPLIT_MODE_PAIRS 8

void gf_kv_store(const gf_hparams *hp, int layer, const gf_batch *b, const float *k,
                 const float *v)
{
    const int64_t d = hp->head_dim, n_kv = hp->n_kv_heads;
    for (int64_t t = 0; t < b->n; t++) {
        gf_kvcache *kv = b->kv[t];
        const gf_kv_layer *L = &kv->layers[layer];
        const int64_t slot = gf_kv_slot(L, b->pos[t]);
        for (int64_t g = 0; g < n_kv; g++) {
            gf_kv_put_row(kv, gf_kv_key(kv, L, g, slot), k + (t * n_kv + g) * d, d);
            gf_kv_put_row(kv, gf_kv_value(kv, L, g, slot), v + (t * n_kv + g) * d, d);
        }
    }
}

static int64_t group_of(const gf_hparams *hp) { return hp->n_heads / hp->n_kv_heads; }
/* Floats of one split's partial result: m, l and acc of each query head. */
static int64_t partial_floats(const gf_hparams *hp) { return group_of(hp) * (hp->head_dim + 2); }
static int64_t n_splits(int64_t n_keys) { return (n_keys + GF_ATTN_SPLIT - 1) / GF_ATTN_SPLIT; }

int64_t gf_attend_scores_per_thread(const gf_hparams *hp, int64_t max_keys)
{
    const int64_t sc = group_of(hp) * GF_ATTN_BLOCK;
    return (sc + n_splits(max_keys) * partial_floats(hp) + 15) & ~(int64_t)15;
}

int64_t gf_attend_shared_floats(const gf_hparams *hp, int64_t max_keys)
{
    return SPLIT_MODE_PAIRS * n_splits(max_keys) * partial_floats(hp);
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
    int split_mode;      /* items are (row, KV head, split), else (row, KV head) */
    int64_t n_items;
    int64_t pair_base[SPLIT_MODE_PAIRS + 1]; /* split mode: first item of each pair */
    float *shared;       /* split mode: one partial per item */
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

/* q·k of the group's heads with the keys of positions [p0, p0 + n) into
 * sc[h·BLOCK + j], or Σ p·v into acc: one or two runs of slots. */
static void block_dots(const gf_vec_ops *vec, const gf_kvcache *kv, const gf_kv_layer *L,
                       int64_t g, const float *qg, int group, int64_t p0, int64_t n, float *sc)
{
    const int64_t s0 = gf_kv_slot(L, p0), d = kv->head_dim;
    const int64_t run0 = s0 + n <= L->n_slots ? n : L->n_slots - s0;
    const int f16 = kv->type == GEMFA_KV_F16;
    for (int r = 0; r < 2; r++) {
        const int64_t slot = r ? 0 : s0, cnt = r ? n - run0 : run0, off = r ? run0 : 0;
        if (cnt <= 0)
            continue;
        const void *k = gf_kv_key(kv, L, g, slot);
        if (f16)
            vec->dots_f16(qg, group, k, cnt, d, sc + off, GF_ATTN_BLOCK);
        else
            vec->dots(qg, group, k, cnt, d, sc + off, GF_ATTN_BLOCK);
    }
}

static void block_accum(const gf_vec_ops *vec, const gf_kvcache *kv, const gf_kv_layer *L,
                        int64_t g, int group, int64_t p0, int64_t n, const float *sc, float *acc)
{
    const int64_t s0 = gf_kv_slot(L, p0), d = kv->head_dim;
    const int64_t run0 = s0 + n <= L->n_slots ? n : L->n_slots - s0;
    const int f16 = kv->type == GEMFA_KV_F16;
    for (int r = 0; r < 2; r++) {
        const int64_t slot = r ? 0 : s0, cnt = r ? n - run0 : run0, off = r ? run0 : 0;
        if (cnt <= 0)
            continue;
        const void *v = gf_kv_value(kv, L, g, slot);
        if (f16)
            vec->accum_f16(sc + off, GF_ATTN_BLOCK, group, v, cnt, d, acc);
        else
            vec->accum(sc + off, GF_ATTN_BLOCK, group, v, cnt, d, acc);
    }
}

/* The partial result of row t, KV head g over positions [k0, k1):
 * part = m[group], l[group], acc[group][d]. */
static void attend_split(const attend_job *job, int64_t t, int64_t g, int64_t k0, int64_t k1,
                         float *sc, float *part)
{
    const gf_hparams *hp = job->hp;
    const gf_vec_ops *vec = job->vec;
    const int64_t d = hp->head_dim;
    const int group = (int)group_of(hp);
    const gf_kvcache *kv = job->b->kv[t];
    const gf_kv_layer *L = &kv->layers[hp->kv_source[job->layer]];
    const float *qg = job->q + (t * hp->n_heads + g * group) * d;
    float *m = part, *l = part + group, *acc = part + 2 * group;
    for (int h = 0; h < group; h++) {
        m[h] = -INFINITY;
        l[h] = 0.0f;
    }
    memset(acc, 0, (size_t)(group * d) * sizeof(float));
    for (int64_t p0 = k0; p0 < k1; p0 += GF_ATTN_BLOCK) {
        const int64_t n = k1 - p0 < GF_ATTN_BLOCK ? k1 - p0 : GF_ATTN_BLOCK;
        block_dots(vec, kv, L, g, qg, group, p0, n, sc);
        for (int h = 0; h < group; h++) { /* scale 1.0: the q/k norms take that role */
            float *sh = sc + h * GF_ATTN_BLOCK;
            const float bm = vec->max(sh, n);
            if (bm > m[h]) {
                if (m[h] != -INFINITY) {
                    const float c = expf(m[h] - bm);
                    l[h] *= c;
                    vec->scale(acc + h * d, c, NULL, d, acc + h * d);
                }
                m[h] = bm;
            }
            l[h] += vec->exp_sum(sh, n, m[h]);
        }
        block_accum(vec, kv, L, g, group, p0, n, sc, acc);
    }
}

/* out of the group's heads from the partials of the row's splits (stride
 * `stride` floats apart), merged in split order. */
static void merge_splits(const attend_job *job, int64_t t, int64_t g, const float *parts,
                         int64_t n_parts, int64_t stride)
{
    const gf_hparams *hp = job->hp;
    const int64_t d = hp->head_dim;
    const int group = (int)group_of(hp);
    float *og = job->out + (t * hp->n_heads + g * group) * d;
    for (int h = 0; h < group; h++) {
        float M = -INFINITY;
        for (int64_t s = 0; s < n_parts; s++)
            M = parts[s * stride + h] > M ? parts[s * stride + h] : M;
        float *oh = og + h * d;
        float lsum = 0.0f;
        for (int64_t s = 0; s < n_parts; s++) {
            const float *p = parts + s * stride;
            const float c = n_parts == 1 ? 1.0f : expf(p[h] - M);
            lsum += c * p[group + h];
            const float *acc = p + 2 * group + h * d;
            if (s == 0)
                job->vec->scale(acc, c, NULL, d, oh);
            else
                job->vec->axpy(oh, c, acc, d);
        }
        job->vec->scale(oh, 1.0f / lsum, NULL, d, oh);
    }
}

/* Row t's visible positions [first, pos]. */
static void row_range(const attend_job *job, int64_t t, int64_t *first, int64_t *n_keys)
{
    const int64_t pos = job->b->pos[t];
    *first = first_key(job->hp, job->layer, pos);
    *n_keys = pos - *first + 1;
}

static void attend_task(void *arg, int thread, int n_threads)
{
    (void)n_threads;
    attend_job *job = arg;
    const int64_t n_kv = job->hp->n_kv_heads, P = partial_floats(job->hp);
    float *sc = job->scores + thread * job->scores_per_thread;
    float *own = sc + group_of(job->hp) * GF_ATTN_BLOCK; /* row mode: this row's partials */
    for (;;) {
        const int64_t item = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
        if (item >= job->n_items)
            break;
        if (job->split_mode) {
            int64_t pair = 0;
            while (job->pair_base[pair + 1] <= item)
                pair++;
            const int64_t t = pair / n_kv, g = pair % n_kv, s = item - job->pair_base[pair];
            int64_t first, n_keys;
            row_range(job, t, &first, &n_keys);
            const int64_t k0 = first + s * GF_ATTN_SPLIT;
            const int64_t k1 = k0 + GF_ATTN_SPLIT < first + n_keys ? k0 + GF_ATTN_SPLIT
                                                                   : first + n_keys;
            attend_split(job, t, g, k0, k1, sc, job->shared + item * P);
        } else {
            const int64_t t = item / n_kv, g = item % n_kv;
            int64_t first, n_keys;
            row_range(job, t, &first, &n_keys);
            const int64_t S = n_splits(n_keys);
            for (int64_t s = 0; s < S; s++) {
                const int64_t k0 = first + s * GF_ATTN_SPLIT;
                const int64_t k1 = k0 + GF_ATTN_SPLIT < first + n_keys ? k0 + GF_ATTN_SPLIT
                                                                       : first + n_keys;
                attend_split(job, t, g, k0, k1, sc, own + s * P);
            }
            merge_splits(job, t, g, own, S, P);
        }
    }
}

int gf_attend(gf_threadpool *pool, const gf_hparams *hp, int layer, const gf_batch *b,
              const float *q, float *out, float *scores, int64_t scores_per_thread)
{
    attend_job job = {.vec = gf_vec(), .hp = hp, .layer = layer, .b = b, .q = q, .out = out,
                      .scores = scores, .scores_per_thread = scores_per_thread};
    atomic_init(&job.next, 0);
    const int n_threads = gf_threadpool_size(pool);
    const int64_t n_kv = hp->n_kv_heads, pairs = b->n * n_kv;
    int64_t macs = 0;
    for (int64_t t = 0; t < b->n; t++)
        macs += (b->pos[t] - first_key(hp, layer, b->pos[t]) + 1) * 2 * hp->n_heads * hp->head_dim;
    job.split_mode = pairs < SPLIT_MODE_PAIRS;
    if (job.split_mode) {
        job.shared = scores + (int64_t)(n_threads > 1 ? n_threads : 1) * scores_per_thread;
        job.pair_base[0] = 0;
        for (int64_t p = 0; p < pairs; p++) {
            int64_t first, n_keys;
            row_range(&job, p / n_kv, &first, &n_keys);
            job.pair_base[p + 1] = job.pair_base[p] + n_splits(n_keys);
        }
        job.n_items = job.pair_base[pairs];
    } else {
        job.n_items = pairs;
    }
    int ran_pool = 0;
    const int64_t min_macs = gf_threadpool_contended(pool) ? ATTEND_PARALLEL_MIN_MACS
                                                           : ATTEND_PARALLEL_QUIET_MIN_MACS;
    if (n_threads > 1 && job.n_items > 1 && macs >= min_macs) {
        gf_threadpool_run(pool, attend_task, &job);
        ran_pool = 1;
    } else {
        attend_task(&job, 0, 1);
    }
    if (job.split_mode)
        for (int64_t p = 0; p < pairs; p++)
            merge_splits(&job, p / n_kv, p % n_kv, job.shared + job.pair_base[p] *
                         partial_floats(hp), job.pair_base[p + 1] - job.pair_base[p],
                         partial_floats(hp));
    return ran_pool;
}
