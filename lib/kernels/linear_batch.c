/* linear_batch.c — prompt batches: packs the activations once, then every
 * thread of the pool takes chunks of rows for all tokens (own GEMM), or
 * widens chunks of rows for one OpenBLAS sgemm each. */
#include "kernels/linear_batch.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"

/* ---- prompt batches: packed activations and the GEMM kernels ---- */

#define GF_GEMM_CHUNK_ROWS 84 /* a multiple of both tile heights (14, 6) */

typedef struct gemm_job {
    int n_mats;
    int64_t chunk; /* AMX: rows per work item, counted in each matrix */
    const gf_matrix *W[GF_LINEAR_MAX_MATS];
    float *y[GF_LINEAR_MAX_MATS];
    int64_t first_row[GF_LINEAR_MAX_MATS + 1];
    const float *x;
    gf_gemm_x px;
    char *thread_scratch;
    size_t thread_bytes;
    atomic_llong next;
} gemm_job;

static void gemm_pack_task(void *arg, int i, int n)
{
    gemm_job *job = arg;
    for (int64_t tb = i; tb < job->px.n_blocks; tb += n)
        gf_gemm_pack_x(&job->px, job->x, tb * GF_GEMM_NR, (tb + 1) * GF_GEMM_NR);
}

/* Claims the next work item from a shared counter: rows [*begin, *end) of
 * matrix *m, chunks of `chunk` rows counted in each matrix (never straddling
 * two).  0 when every item is taken. */
static int claim_chunk(atomic_llong *next, int n_mats, const gf_matrix *const *W, int64_t chunk,
                       int *m, int64_t *begin, int64_t *end)
{
    int64_t c = atomic_fetch_add_explicit(next, 1, memory_order_relaxed);
    for (*m = 0; *m < n_mats; (*m)++) {
        const int64_t n_chunks = (W[*m]->rows + chunk - 1) / chunk;
        if (c < n_chunks)
            break;
        c -= n_chunks;
    }
    if (*m == n_mats)
        return 0;
    *begin = c * chunk;
    *end = *begin + chunk < W[*m]->rows ? *begin + chunk : W[*m]->rows;
    return 1;
}

/* AMX: work items of whole 16-row groups, so they are counted inside each
 * matrix (a chunk never straddles two). */
static void amx_task(gemm_job *job, void *scratch)
{
    int m;
    int64_t begin, end;
    while (claim_chunk(&job->next, job->n_mats, job->W, job->chunk, &m, &begin, &end))
        gf_gemm_rows(job->W[m], &job->px, begin, end, job->y[m], scratch);
}

static void gemm_task(void *arg, int i, int n)
{
    (void)n;
    gemm_job *job = arg;
    void *scratch = job->thread_scratch + (size_t)i * job->thread_bytes;
    if (job->px.kind == GF_GEMM_Q8_AMX) {
        amx_task(job, scratch);
        return;
    }
    const int64_t total = job->first_row[job->n_mats];
    for (;;) {
        int64_t begin = atomic_fetch_add_explicit(&job->next, GF_GEMM_CHUNK_ROWS, memory_order_relaxed);
        if (begin >= total)
            break;
        int64_t end = begin + GF_GEMM_CHUNK_ROWS < total ? begin + GF_GEMM_CHUNK_ROWS : total;
        for (int m = 0; m < job->n_mats && begin < end; m++) {
            int64_t lo = job->first_row[m], hi = job->first_row[m + 1];
            if (begin >= hi)
                continue;
            int64_t stop = end < hi ? end : hi;
            gf_gemm_rows(job->W[m], &job->px, begin - lo, stop - lo, job->y[m], scratch);
            begin = stop;
        }
    }
}

/* The batch path for n_tokens: an own GEMM kind (>= 0), GEMM_VIA_BLAS, or
 * GEMM_NONE for the row kernels. */
#define GEMM_NONE (-1)
#define GEMM_VIA_BLAS (-2)

static atomic_int gemm_backend = GF_GEMM_BACKEND_AUTO;
/* Crossovers from the row kernels, by dtype (docs/performance.md). */
static atomic_int own_min_tokens[GF_DTYPE_COUNT] = {
    GF_GEMM_MIN_TOKENS_F32, GF_GEMM_MIN_TOKENS_F16, GF_GEMM_MIN_TOKENS_BF16,
    GF_GEMM_MIN_TOKENS_Q8, GF_GEMM_MIN_TOKENS_Q4};
/* ... and with AMX-INT8 tiles, for Q8 and Q4 (the others: unused). */
static atomic_int amx_min_tokens[GF_DTYPE_COUNT] = {
    INT32_MAX, INT32_MAX, INT32_MAX, GF_AMX_MIN_TOKENS_Q8, GF_AMX_MIN_TOKENS_Q4};
static atomic_int blas_min_tokens[GF_DTYPE_COUNT] = {
    GF_BLAS_MIN_TOKENS_F32, GF_BLAS_MIN_TOKENS_F16, GF_BLAS_MIN_TOKENS_BF16,
    GF_BLAS_MIN_TOKENS_Q8, INT32_MAX};

/* aarch64 with SDOT or SMMLA: int8 prompt batches stay on the row kernels
 * (4 tokens per pass over a group's weights, 16 multiply-adds per SDOT, 32
 * per SMMLA) at every length: OpenBLAS's path would widen the weights to
 * f32 for FMLA, 4 per instruction (docs/performance.md, "ARM64").  Plain
 * NEON (SMULL + SADALP, about 4 per instruction) keeps the OpenBLAS
 * crossover. */
static int arm_int8_rows(gf_dtype dt)
{
#if defined(__aarch64__)
    return dt == GF_DTYPE_Q8 && gf_kernels()->level >= GF_LEVEL_DOTPROD;
#else
    (void)dt;
    return 0;
#endif
}

/* The AMX GEMM for int8 prompt batches: the CPU has it, the OS grants
 * it, GEMFA_AMX does not forbid it, and BLAS is not forced. */
static int amx_in_use(void)
{
    return gf_linear_amx_allowed() && atomic_load(&gemm_backend) != GF_GEMM_BACKEND_BLAS &&
           atomic_load(&gemm_backend) != GF_GEMM_BACKEND_ROWS && gf_gemm_available(GF_GEMM_Q8_AMX);
}

static int gemm_kind_for(const gf_matrix *const *W, int n_mats, int64_t n_tokens)
{
    int backend = atomic_load(&gemm_backend);
    if (backend == GF_GEMM_BACKEND_ROWS)
        return GEMM_NONE;
    for (int i = 1; i < n_mats; i++)
        if (W[i]->dtype != W[0]->dtype)
            return GEMM_NONE;
    if ((W[0]->dtype == GF_DTYPE_Q8 || W[0]->dtype == GF_DTYPE_Q4) && amx_in_use())
        return n_tokens >= atomic_load(&amx_min_tokens[W[0]->dtype]) ? (int)GF_GEMM_Q8_AMX
                                                                     : GEMM_NONE;
    gf_gemm_kind kind;
    switch (W[0]->dtype) {
    case GF_DTYPE_Q8: kind = GF_GEMM_Q8; break;
    case GF_DTYPE_Q4:
        /* the Q8 GEMM on Q4 groups unpacked to int8 (gemm_avx512.c); no
         * OpenBLAS path: below the crossover, or without AVX512-VNNI, the
         * row kernels (up to 8 tokens a pass) */
        if (backend == GF_GEMM_BACKEND_BLAS || !gf_gemm_available(GF_GEMM_Q8))
            return GEMM_NONE;
        return n_tokens >= atomic_load(&own_min_tokens[GF_DTYPE_Q4]) ? (int)GF_GEMM_Q8 : GEMM_NONE;
    case GF_DTYPE_BF16:
        kind = W[0]->cols % 2 == 0 && gf_linear_bf16_dot_allowed() ? GF_GEMM_BF16DOT : GF_GEMM_F32;
        break;
    default: kind = GF_GEMM_F32; break;
    }
    const gf_dtype dt = W[0]->dtype;
    if (backend != GF_GEMM_BACKEND_BLAS && arm_int8_rows(dt))
        return GEMM_NONE;
    if (backend != GF_GEMM_BACKEND_BLAS && gf_gemm_available(kind))
        return n_tokens >= atomic_load(&own_min_tokens[dt]) ? (int)kind : GEMM_NONE;
    if (backend == GF_GEMM_BACKEND_OWN || n_tokens < atomic_load(&blas_min_tokens[dt]))
        return GEMM_NONE;
    return GEMM_VIA_BLAS;
}

/* Returns 0 when done, -1 when out of memory (caller falls back). */
/* Long prompts go through in slices of GF_GEMM_MAX_TOKENS tokens: the
 * packed activations stay within a few MB (and a k block of them in L2). */
#define GF_GEMM_MAX_TOKENS 256

static int linear_gemm(gf_threadpool *pool, int n_mats, const gf_matrix *const *W, const float *x,
                       int64_t n_tokens, float *const *y, gf_gemm_kind kind)
{
    const int n_threads = gf_threadpool_size(pool);
    const int64_t cols = W[0]->cols;
    const int64_t slice = n_tokens < GF_GEMM_MAX_TOKENS ? n_tokens : GF_GEMM_MAX_TOKENS;
    size_t x_bytes = (gf_gemm_x_bytes(kind, slice, cols) + 63) & ~(size_t)63;
    size_t t_bytes = kind == GF_GEMM_Q8_AMX ? gf_amx_thread_bytes(slice, GF_AMX_CHUNK_ROWS)
                                             : gf_gemm_thread_bytes(slice, GF_GEMM_CHUNK_ROWS);
    t_bytes = (t_bytes + 63) & ~(size_t)63;
    size_t bytes = x_bytes + (size_t)n_threads * t_bytes;
    void *owned = NULL;
    char *buf = gf_threadpool_scratch(pool, bytes);
    if (!buf)
        buf = owned = gf_alloc_aligned(bytes);
    if (!buf)
        return -1;
    for (int64_t t0 = 0; t0 < n_tokens; t0 += slice) {
        const int64_t nt = n_tokens - t0 < slice ? n_tokens - t0 : slice;
        gemm_job job;
        memset(&job, 0, sizeof job);
        job.n_mats = n_mats;
        job.chunk = GF_AMX_CHUNK_ROWS;
        for (int i = 0; i < n_mats; i++) {
            job.W[i] = W[i];
            job.y[i] = y[i] + t0 * W[i]->rows;
            job.first_row[i + 1] = job.first_row[i] + W[i]->rows;
        }
        job.x = x + t0 * cols;
        gf_gemm_x_init(&job.px, kind, buf, nt, cols);
        job.thread_scratch = buf + x_bytes;
        job.thread_bytes = t_bytes;
        atomic_init(&job.next, 0);
        gf_threadpool_run(pool, gemm_pack_task, &job);
        gf_threadpool_run(pool, gemm_task, &job);
    }
    gf_free_aligned(owned);
    return 0;
}

/* ---- prompt batches through OpenBLAS ---- */

typedef struct blas_job {
    int n_mats;
    const gf_matrix *W[GF_LINEAR_MAX_MATS];
    float *y[GF_LINEAR_MAX_MATS];
    int64_t first_row[GF_LINEAR_MAX_MATS + 1];
    const float *x;
    int64_t n_tokens, chunk;
    float *thread_scratch;
    size_t thread_floats;
    atomic_llong next;
} blas_job;

/* Chunks never straddle two matrices and start at multiples of `chunk`
 * within each, so every row sees the same sgemm shapes (and sums in the
 * same order) whether its matrix comes alone or with others. */
static void blas_task(void *arg, int i, int n)
{
    (void)n;
    blas_job *job = arg;
    float *scratch = job->thread_scratch + (size_t)i * job->thread_floats;
    int m;
    int64_t begin, end;
    while (claim_chunk(&job->next, job->n_mats, job->W, job->chunk, &m, &begin, &end))
        gf_blas_rows(job->W[m], job->x, job->n_tokens, begin, end, job->y[m], scratch);
}

static int linear_blas(gf_threadpool *pool, int n_mats, const gf_matrix *const *W, const float *x,
                       int64_t n_tokens, float *const *y)
{
    gf_openblas_single_thread();
    const int n_threads = gf_threadpool_size(pool);
    blas_job job;
    memset(&job, 0, sizeof job);
    job.chunk = gf_blas_chunk_rows(W[0]->cols);
    job.thread_floats = ((size_t)(job.chunk * W[0]->cols) + 15) & ~(size_t)15;
    size_t bytes = gf_mul_size((size_t)n_threads * job.thread_floats, sizeof(float));
    void *owned = NULL;
    float *buf = gf_threadpool_scratch(pool, bytes);
    if (!buf)
        buf = owned = gf_alloc_aligned(bytes);
    if (!buf)
        return -1;
    job.n_mats = n_mats;
    for (int i = 0; i < n_mats; i++) {
        job.W[i] = W[i];
        job.y[i] = y[i];
        job.first_row[i + 1] = job.first_row[i] + W[i]->rows;
    }
    job.x = x;
    job.n_tokens = n_tokens;
    job.thread_scratch = buf;
    atomic_init(&job.next, 0);
    gf_threadpool_run(pool, blas_task, &job);
    gf_free_aligned(owned);
    return 0;
}

void gf_linear_set_gemm_backend(gf_gemm_backend backend) { atomic_store(&gemm_backend, (int)backend); }

static atomic_int bf16_dot_allowed = -1; /* -1: not decided yet (environment) */
void gf_linear_allow_bf16_dot(int allow) { atomic_store(&bf16_dot_allowed, allow != 0); }
int gf_linear_bf16_dot_allowed(void)
{
    int v = atomic_load(&bf16_dot_allowed);
    if (v < 0) {
        const char *env = getenv("GEMFA_BF16_DOT");
        int want = env && env[0] == '1';
        atomic_compare_exchange_strong(&bf16_dot_allowed, &v, want);
        v = atomic_load(&bf16_dot_allowed);
    }
    return v;
}

static atomic_int amx_allowed = -1; /* -1: not decided yet (environment) */
void gf_linear_allow_amx(int allow) { atomic_store(&amx_allowed, allow != 0); }
int gf_linear_amx_allowed(void)
{
    int v = atomic_load(&amx_allowed);
    if (v < 0) {
        const char *env = getenv("GEMFA_AMX");
        int want = !(env && env[0] == '0');
        atomic_compare_exchange_strong(&amx_allowed, &v, want);
        v = atomic_load(&amx_allowed);
    }
    return v;
}

const char *gf_linear_amx_status(void)
{
    switch (gf_amx_probe()) {
    case GF_AMX_ABSENT: return "absent";
    case GF_AMX_REFUSED: return "refused by the OS";
    case GF_AMX_READY: break;
    }
    if (!gf_linear_amx_allowed())
        return "off (GEMFA_AMX=0)";
    if (!gf_gemm_available(GF_GEMM_Q8_AMX))
        return "off (kernel level below avx512)";
    return "on";
}

void gf_gemm_set_min_tokens(gf_dtype dtype, int64_t n)
{
    if ((unsigned)dtype >= GF_DTYPE_COUNT)
        return;
    int v = n < 1 ? 1 : (n > INT32_MAX ? INT32_MAX : (int)n);
    atomic_store(&own_min_tokens[dtype], v);
    atomic_store(&blas_min_tokens[dtype], v);
    if (dtype == GF_DTYPE_Q8 || dtype == GF_DTYPE_Q4)
        atomic_store(&amx_min_tokens[dtype], v);
}

void gf_gemm_set_amx_min_tokens(gf_dtype dtype, int64_t n)
{
    if (dtype != GF_DTYPE_Q8 && dtype != GF_DTYPE_Q4)
        return;
    atomic_store(&amx_min_tokens[dtype], n < 1 ? 1 : (n > INT32_MAX ? INT32_MAX : (int)n));
}

int64_t gf_gemm_min_tokens(gf_dtype dtype)
{
    if ((unsigned)dtype >= GF_DTYPE_COUNT)
        return INT32_MAX;
    if (arm_int8_rows(dtype) && atomic_load(&gemm_backend) != GF_GEMM_BACKEND_BLAS)
        return INT32_MAX;
    if ((dtype == GF_DTYPE_Q8 || dtype == GF_DTYPE_Q4) && amx_in_use())
        return atomic_load(&amx_min_tokens[dtype]);
    if (dtype == GF_DTYPE_Q4) /* no OpenBLAS path for Q4 */
        return gf_gemm_available(GF_GEMM_Q8) && atomic_load(&gemm_backend) != GF_GEMM_BACKEND_BLAS
                   ? atomic_load(&own_min_tokens[dtype])
                   : INT32_MAX;
    gf_gemm_kind kind = dtype == GF_DTYPE_Q8 ? GF_GEMM_Q8 : GF_GEMM_F32;
    return gf_gemm_available(kind) ? atomic_load(&own_min_tokens[dtype])
                                   : atomic_load(&blas_min_tokens[dtype]);
}

int gf_linear_batch(gf_threadpool *pool, int n_mats, const gf_matrix *const *W, const float *x,
                    int64_t n_tokens, float *const *y)
{
    int kind = gemm_kind_for(W, n_mats, n_tokens);
    if (kind >= 0)
        return linear_gemm(pool, n_mats, W, x, n_tokens, y, (gf_gemm_kind)kind);
    if (kind == GEMM_VIA_BLAS)
        return linear_blas(pool, n_mats, W, x, n_tokens, y);
    return -1;
}
