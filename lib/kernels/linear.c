/* linear.c — gf_linear: hands prompt batches to linear_batch.c; otherwise
 * prepares the activations once (int8 blocks for Q8 weights, paired columns
 * for BF16) and lets every thread of the pool take chunks of rows from a
 * shared counter and run the row kernel of its weight dtype on them. */
#include "kernels/linear.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/kernels.h"
#include "kernels/linear_batch.h"

/* Below this many multiply-adds the pool's wake-up costs more than it saves. */
#define GF_PARALLEL_MIN_MACS (1 << 16)
/* The smallest chunk of rows a thread claims (a multiple of 16). */
#define GF_LINEAR_MIN_CHUNK 16

typedef struct linear_job {
    const gf_kernel_table *k;
    int n_mats;
    const gf_matrix *W[GF_LINEAR_MAX_MATS];
    float *y[GF_LINEAR_MAX_MATS];
    int64_t first_row[GF_LINEAR_MAX_MATS + 1]; /* rows of all matrices, end to end */
    gf_act act;
    _Atomic int64_t next; /* the first row (of all matrices, end to end) not yet claimed */
} linear_job;

static void run_rows(const linear_job *job, int64_t begin, int64_t end)
{
    for (int i = 0; i < job->n_mats && begin < end; i++) {
        int64_t lo = job->first_row[i], hi = job->first_row[i + 1];
        if (begin >= hi)
            continue;
        int64_t stop = end < hi ? end : hi;
        const gf_matrix *W = job->W[i];
        job->k->rows[W->dtype](W, &job->act, begin - lo, stop - lo, job->y[i]);
        begin = stop;
    }
}

/* Guided chunks: each claim takes 1/(2 * threads) of the rows still left
 * (at least GF_LINEAR_MIN_CHUNK), so chunks shrink towards the end and the
 * threads finish together; a fixed chunk left one thread idle for half a
 * chunk on average at the end of every call (~3% of a decode step).
 * Chunks never straddle two matrices and start at multiples of 16 within
 * each: a kernel may treat 16 rows as a group (the int8 batch kernel), so
 * every row sees the same grouping, and sums in the same order, for any
 * thread count and whether or not its matrix shares the call. */
static void linear_task(void *arg, int thread_index, int n_threads)
{
    (void)thread_index;
    linear_job *job = arg;
    const int64_t total = job->first_row[job->n_mats];
    int64_t begin = atomic_load_explicit(&job->next, memory_order_relaxed);
    for (;;) {
        if (begin >= total)
            break;
        int m = 0;
        while (begin >= job->first_row[m + 1])
            m++;
        int64_t size = (total - begin) / (2 * n_threads);
        size = size < GF_LINEAR_MIN_CHUNK ? GF_LINEAR_MIN_CHUNK : (size + 15) & ~(int64_t)15;
        const int64_t end = begin + size < job->first_row[m + 1] ? begin + size : job->first_row[m + 1];
        if (!atomic_compare_exchange_weak_explicit(&job->next, &begin, end, memory_order_relaxed,
                                                   memory_order_relaxed))
            continue; /* begin now holds the other thread's claim */
        const gf_matrix *W = job->W[m];
        job->k->rows[W->dtype](W, &job->act, begin - job->first_row[m], end - job->first_row[m],
                               job->y[m]);
        begin = atomic_load_explicit(&job->next, memory_order_relaxed);
    }
}

/* Q8 or Q4 without scratch memory (allocation failed): quantizes each
 * block of x on the fly, per row; the same integers as the kernels, just
 * slower. */
static void rows_quant_unbuffered(const gf_matrix *W, const float *x, int64_t n_tokens, float *y)
{
    const gf_kernel_table *k = gf_kernels_for_level(GF_LEVEL_SCALAR);
    const int64_t n = W->cols, nb = n / GF_Q8_BLOCK;
    for (int64_t r = 0; r < W->rows; r++) {
        const int q4 = W->dtype == GF_DTYPE_Q4;
        const gf_q8_row w = q4 ? (gf_q8_row){0} : gf_q8_row_of(W, r);
        const gf_q4_row w4 = q4 ? gf_q4_row_of(W, r) : (gf_q4_row){0};
        for (int64_t t = 0; t < n_tokens; t++) {
            float acc = 0;
            for (int64_t b = 0; b < nb; b++) {
                int8_t q[GF_Q8_BLOCK];
                float d;
                int32_t corr[8];
                k->quantize_q8(x + t * n + b * GF_Q8_BLOCK, GF_Q8_BLOCK, q, &d, corr);
                int32_t isum = 0;
                for (int c = 0; c < GF_Q8_BLOCK; c++)
                    isum += (q4 ? gf_q4_row_code(w4, b * GF_Q8_BLOCK + c) - 8
                                : (int32_t)gf_q8_row_weight(w, b * GF_Q8_BLOCK + c)) *
                            q[c];
                const uint16_t s = q4 ? gf_q4_row_scale(w4, b) : gf_q8_row_scale(w, b);
                acc = fmaf((float)isum, gf_f16_to_f32(s) * d, acc);
            }
            y[t * W->rows + r] = acc;
        }
    }
}

void gf_linear_multi(gf_threadpool *pool, int n_mats, const gf_matrix *const *W, const float *x,
                     int64_t n_tokens, float *const *y)
{
    if (n_tokens <= 0 || n_mats < 1 || n_mats > GF_LINEAR_MAX_MATS)
        return;
    for (int i = 0; i < n_mats; i++) {
        if (W[i]->cols != W[0]->cols && n_mats > 1) { /* not one input: one by one */
            for (int j = 0; j < n_mats; j++)
                gf_linear_multi(pool, 1, &W[j], x, n_tokens, &y[j]);
            return;
        }
        if (W[i]->cols <= 0) { /* an empty sum */
            for (int j = 0; j < n_mats; j++)
                memset(y[j], 0, (size_t)(n_tokens * W[j]->rows) * sizeof(float));
            return;
        }
    }
    if (gf_linear_batch(pool, n_mats, W, x, n_tokens, y) == 0)
        return;
    linear_job job;
    memset(&job, 0, sizeof job);
    job.k = gf_kernels();
    job.n_mats = n_mats;
    const int64_t cols = W[0]->cols;
    int need_q8 = 0, need_pairs = 0;
    for (int i = 0; i < n_mats; i++) {
        job.W[i] = W[i];
        job.y[i] = y[i];
        job.first_row[i + 1] = job.first_row[i] + W[i]->rows;
        need_q8 |= W[i]->dtype == GF_DTYPE_Q8 || W[i]->dtype == GF_DTYPE_Q4;
        need_pairs |= W[i]->dtype == GF_DTYPE_BF16 && job.k->bf16_pairs;
    }
    job.act.x = x;
    job.act.n_tokens = n_tokens;
    job.act.cols = cols;

    /* scratch: [Q8: q | d | corr] [BF16 pairs], each 64-byte aligned */
    const int64_t nb = cols / GF_Q8_BLOCK;
    size_t q_bytes = 0, d_bytes = 0, c_bytes = 0, p_bytes = 0;
    if (need_q8) {
        q_bytes = ((size_t)(n_tokens * cols) + 63) & ~(size_t)63;
        d_bytes = ((size_t)(n_tokens * nb) * sizeof(float) + 63) & ~(size_t)63;
        c_bytes = ((size_t)(n_tokens * nb * 8) * sizeof(int32_t) + 63) & ~(size_t)63;
    }
    if (need_pairs)
        p_bytes = (size_t)(n_tokens * gf_bf16_pairs_cols(cols)) * sizeof(float);
    void *owned = NULL;
    if (need_q8 || need_pairs) {
        size_t bytes = q_bytes + d_bytes + c_bytes + p_bytes;
        char *buf = gf_threadpool_scratch(pool, bytes);
        if (!buf)
            buf = owned = gf_alloc_aligned(bytes);
        if (!buf) { /* no memory: kernels that need none (same sums for Q8) */
            const gf_kernel_table *plain = gf_kernels_for_level(GF_LEVEL_SCALAR);
            for (int i = 0; i < n_mats; i++) {
                if (W[i]->dtype == GF_DTYPE_Q8 || W[i]->dtype == GF_DTYPE_Q4)
                    rows_quant_unbuffered(W[i], x, n_tokens, y[i]);
                else
                    plain->rows[W[i]->dtype](W[i], &job.act, 0, W[i]->rows, y[i]);
            }
            return;
        }
        if (need_q8) {
            job.act.q8.q = (int8_t *)buf;
            job.act.q8.d = (float *)(buf + q_bytes);
            job.act.q8.corr = (int32_t *)(buf + q_bytes + d_bytes);
            for (int64_t t = 0; t < n_tokens; t++)
                job.k->quantize_q8(x + t * cols, cols, job.act.q8.q + t * cols,
                                   job.act.q8.d + t * nb, job.act.q8.corr + t * nb * 8);
        }
        if (need_pairs) {
            float *pairs = (float *)(buf + q_bytes + d_bytes + c_bytes);
            gf_bf16_pairs(x, n_tokens, cols, pairs);
            job.act.xpair = pairs;
        }
    }

    const int64_t total = job.first_row[n_mats];
    const int n_threads = gf_threadpool_size(pool);
    if (n_threads == 1 || total * cols * n_tokens < GF_PARALLEL_MIN_MACS) {
        run_rows(&job, 0, total);
    } else {
        atomic_init(&job.next, 0);
        gf_threadpool_run(pool, linear_task, &job);
    }
    gf_free_aligned(owned);
}

void gf_linear(gf_threadpool *pool, const gf_matrix *W, const float *x, int64_t n_tokens,
               float *y)
{
    gf_linear_multi(pool, 1, &W, x, n_tokens, &y);
}

void gf_quantize_row_q8(const float *x, int64_t n, int8_t *q, float *d)
{
    const gf_kernel_table *k = gf_kernels();
    for (int64_t b = 0; b < n / GF_Q8_BLOCK; b++) {
        int32_t corr[8];
        k->quantize_q8(x + b * GF_Q8_BLOCK, GF_Q8_BLOCK, q + b * GF_Q8_BLOCK, d + b, corr);
    }
}

void gf_quantize_weights_q8(const float *x, int64_t n, int8_t *q, uint16_t *scales)
{
    gf_kernels()->quantize_weights_q8(x, n, q, scales);
}

void gf_quantize_weights_q4(const float *x, int64_t n, int8_t *k, uint16_t *scales)
{
    gf_kernels()->quantize_weights_q4(x, n, k, scales);
}

const char *gf_kernel_level_in_use(void) { return gf_kernels()->name; }

void gf_matrix_row_f32(const gf_matrix *W, int64_t r, float *out) { gf_kernels()->widen_row(W, r, out); }
