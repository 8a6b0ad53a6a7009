/* weights.c — what every weight format shares: sizes, and converting stored
 * data into a format at load time (rows split across pthreads; each
 * quantized format's row writer lives in its own *_format.c). */
#include "kernels/weights.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/linear.h"
#include "kernels/q8_format.h"

static size_t dtype_size(gf_dtype d)
{
    switch (d) {
    case GF_DTYPE_F32: return 4;
    case GF_DTYPE_F16:
    case GF_DTYPE_BF16: return 2;
    case GF_DTYPE_Q8: return 1;
    }
    return 0;
}

size_t gf_matrix_row_bytes(const gf_matrix *m)
{
    size_t cols = (size_t)m->cols;
    switch (m->dtype) {
    case GF_DTYPE_F32: return cols * 4;
    case GF_DTYPE_F16:
    case GF_DTYPE_BF16: return cols * 2;
    case GF_DTYPE_Q8: return cols;
    }
    return 0;
}

size_t gf_convert_bytes(gf_dtype dtype, int64_t rows, int64_t cols)
{
    if (rows < 0 || cols < 0)
        return SIZE_MAX;
    size_t n = gf_mul_size((size_t)rows, (size_t)cols);
    if (dtype != GF_DTYPE_Q8)
        return gf_mul_size(n, dtype_size(dtype));
    size_t off = gf_q8_scales_offset(rows, cols);
    size_t sc = gf_mul_size((size_t)rows, (size_t)(cols / GF_Q8_BLOCK) * 2);
    if (off == SIZE_MAX || sc == SIZE_MAX || off > SIZE_MAX - sc)
        return SIZE_MAX;
    return off + sc;
}

int64_t gf_matrix_payload_bytes(gf_dtype dtype, int64_t rows, int64_t cols)
{
    const int64_t n = rows * cols;
    if (dtype == GF_DTYPE_Q8)
        return n + n / GF_Q8_BLOCK * 2;
    return n * (int64_t)dtype_size(dtype);
}

size_t gf_matrix_scales_bytes(const gf_matrix *m)
{
    if (m->dtype == GF_DTYPE_Q8)
        return (size_t)(m->rows * (m->cols / GF_Q8_BLOCK)) * sizeof(uint16_t);
    return 0;
}

void gf_matrix_set_scales(gf_matrix *m)
{
    if (m->dtype == GF_DTYPE_Q8)
        m->scales = (const uint16_t *)((const uint8_t *)m->data +
                                       gf_q8_scales_offset(m->rows, m->cols));
}

float gf_stored_to_f32(const void *src, gf_dtype dtype, size_t i)
{
    /* byte copies: stored data may sit at any offset of a file */
    const uint8_t *p = src;
    float f;
    uint16_t h;
    switch (dtype) {
    case GF_DTYPE_F32: memcpy(&f, p + i * 4, 4); return f;
    case GF_DTYPE_F16: memcpy(&h, p + i * 2, 2); return gf_f16_to_f32(h);
    case GF_DTYPE_BF16: memcpy(&h, p + i * 2, 2); return gf_bf16_to_f32(h);
    case GF_DTYPE_Q8: break;
    }
    return 0.0f;
}

typedef struct job {
    const void *src;
    gf_dtype src_dtype;
    void *dst;
    gf_dtype dst_dtype;
    int64_t rows, cols;
    int64_t row_begin, row_end;
} job;

/* src[first .. first + n) widened to f32; BF16 (the usual case) has its
 * own loop so that the compiler can vectorize it. */
static void widen(const void *src, gf_dtype dtype, size_t first, size_t n, float *out)
{
    if (dtype == GF_DTYPE_BF16) {
        const uint8_t *p = (const uint8_t *)src + first * 2;
        for (size_t c = 0; c < n; c++) {
            uint16_t h;
            memcpy(&h, p + 2 * c, 2);
            uint32_t u = (uint32_t)h << 16;
            memcpy(&out[c], &u, 4);
        }
        return;
    }
    for (size_t c = 0; c < n; c++)
        out[c] = gf_stored_to_f32(src, dtype, first + c);
}

/* Rows are converted in slices of SLICE columns through an f32 buffer on
 * the stack, so no allocation is needed (SLICE is a multiple of the Q8
 * block, so quantizing slice by slice is the same as by whole rows). */
#define SLICE 4096

static void run_job(const job *j)
{
    float tmp[SLICE];
    const size_t cols = (size_t)j->cols;
    uint16_t *scales = NULL;
    if (j->dst_dtype == GF_DTYPE_Q8)
        scales = (uint16_t *)((uint8_t *)j->dst + gf_q8_scales_offset(j->rows, j->cols));
    for (int64_t r = j->row_begin; r < j->row_end; r++) {
        size_t base = (size_t)r * cols;
        for (size_t c0 = 0; c0 < cols; c0 += SLICE) {
            size_t n = cols - c0 < SLICE ? cols - c0 : SLICE;
            const float *x = tmp;
            if (j->src_dtype == GF_DTYPE_F32 && (uintptr_t)j->src % sizeof(float) == 0)
                x = (const float *)j->src + base + c0;
            else
                widen(j->src, j->src_dtype, base + c0, n, tmp);
            size_t k = base + c0;
            switch (j->dst_dtype) {
            case GF_DTYPE_F32:
                memcpy((float *)j->dst + k, x, n * sizeof(float));
                break;
            case GF_DTYPE_F16:
                for (size_t c = 0; c < n; c++)
                    ((uint16_t *)j->dst)[k + c] = gf_f32_to_f16(x[c]);
                break;
            case GF_DTYPE_BF16:
                for (size_t c = 0; c < n; c++)
                    ((uint16_t *)j->dst)[k + c] = gf_f32_to_bf16(x[c]);
                break;
            case GF_DTYPE_Q8: { /* SIMD, bit for bit gf_q8_quantize_row (lib/kernels) */
                int8_t q[SLICE];
                uint16_t s[SLICE / GF_Q8_BLOCK];
                gf_quantize_weights_q8(x, (int64_t)n, q, s);
                gf_q8_put_row((int8_t *)j->dst, scales, j->rows, j->cols, r, (int64_t)c0,
                              (int64_t)n, q, s);
                break;
            }
            }
        }
    }
}

static void *thread_main(void *arg)
{
    run_job(arg);
    return NULL;
}

/* Below this many elements a thread costs more than it saves. */
#define MIN_PER_THREAD ((int64_t)1 << 16)
#define MAX_THREADS 64

void gf_convert_matrix(const void *src, gf_dtype src_dtype, void *dst, gf_dtype dst_dtype,
                       int64_t rows, int64_t cols, int n_threads)
{
    if (rows <= 0 || cols <= 0)
        return;
    int64_t total = rows * cols;
    int64_t n = n_threads < 1 ? 1 : n_threads > MAX_THREADS ? MAX_THREADS : n_threads;
    if (n > total / MIN_PER_THREAD)
        n = total / MIN_PER_THREAD > 0 ? total / MIN_PER_THREAD : 1;
    if (n > rows)
        n = rows;

    job jobs[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    /* Q8 threads split at whole row groups: two threads never write the
     * same cache line of the interleaved layout */
    const int64_t unit = dst_dtype == GF_DTYPE_Q8 ? GF_Q8_GROUP : 1;
    const int64_t units = (rows + unit - 1) / unit;
    if (n > units)
        n = units;
    for (int64_t t = 0; t < n; t++) {
        int64_t b = units * t / n * unit, e = units * (t + 1) / n * unit;
        jobs[t] = (job){src, src_dtype, dst, dst_dtype, rows, cols, b, e < rows ? e : rows};
    }
    /* workers take jobs 1..n-1, the calling thread job 0 and any job whose
     * thread could not start */
    for (int64_t t = 1; t < n; t++)
        started[t] = pthread_create(&tids[t], NULL, thread_main, &jobs[t]) == 0;
    run_job(&jobs[0]);
    for (int64_t t = 1; t < n; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            run_job(&jobs[t]);
    }
}
