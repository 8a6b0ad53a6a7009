/* bench_kernels.c — kernel micro-benchmark (built, not run as a test).
 *
 *   bench_kernels [-t THREADS] [-r ROWS] [-c COLS] [-n TOKENS,...] [-d DTYPES] [-s SECONDS]
 *                 [-g auto|own|blas|rows] [-x]   (-x: BF16 prompt GEMM with vdpbf16ps)
 *                 [-m MB] (-m: rotate over matrices filling MB instead of 2048; a small
 *                         value keeps the weights in cache, to see the compute bound)
 *                 [-b]   (-b: also measure the read bandwidth as membw.c does, with the
 *                         same threads, interleaved with the kernel runs (this machine's
 *                         bandwidth moves with its neighbours), and print the ratio)
 *
 *                 [-i]   (-i: one matrix, reused: with a small one, the compute
 *                         speed of the kernels with weights in cache)
 *
 * For each weight dtype (f32,f16,bf16,q8) and batch size it runs gf_linear
 * on a set of ROWS x COLS matrices whose total size is >= 2048 MB (-m; so that
 * every call streams its weights from memory, not from the L3 cache: the
 * Intel Xeon of session 6 has 480 MB of it, and 256 MB rotations there read
 * 5-15 % above the memory's rate) and
 * prints GB/s of weights read and GFLOP/s (2 * rows * cols * tokens per
 * call).  Compare the GB/s of a matvec (-n 1) with the read bandwidth of
 * the machine (../shared/tools/membw.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/alloc.h"
#include "kernels/kernels.h"
#include "kernels/linear.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

/* ---- read bandwidth, as ../shared/tools/membw.c measures it: sum a
 * 4 GiB buffer with every thread, best of 5 ---- */
typedef struct bw_job {
    const float *buf;
    size_t n;
    float sums[64];
} bw_job;

#if defined(__x86_64__)
/* membw.c's loop exactly (AVX-512) where the CPU has it */
__attribute__((target("avx512f"))) static void bw_task512(void *arg, int i, int nt)
{
    bw_job *j = arg;
    size_t chunk = j->n / (size_t)nt, lo = (size_t)i * chunk, hi = lo + chunk;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t k = lo; k < hi; k += 64) {
        s0 = _mm512_add_ps(s0, _mm512_load_ps(j->buf + k));
        s1 = _mm512_add_ps(s1, _mm512_load_ps(j->buf + k + 16));
        s2 = _mm512_add_ps(s2, _mm512_load_ps(j->buf + k + 32));
        s3 = _mm512_add_ps(s3, _mm512_load_ps(j->buf + k + 48));
    }
    j->sums[i & 63] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

__attribute__((target("avx2"))) static void bw_task(void *arg, int i, int nt)
{
    bw_job *j = arg;
    size_t chunk = j->n / (size_t)nt, lo = (size_t)i * chunk, hi = lo + chunk;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t k = lo; k < hi; k += 32) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(j->buf + k));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(j->buf + k + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(j->buf + k + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(j->buf + k + 24));
    }
    float tmp[8];
    _mm256_storeu_ps(tmp, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    j->sums[i & 63] = tmp[0] + tmp[1] + tmp[2] + tmp[3] + tmp[4] + tmp[5] + tmp[6] + tmp[7];
}
#else
static void bw_task(void *arg, int i, int nt)
{
    bw_job *j = arg;
    size_t chunk = j->n / (size_t)nt, lo = (size_t)i * chunk, hi = lo + chunk;
    float s = 0;
    for (size_t k = lo; k < hi; k++)
        s += j->buf[k];
    j->sums[i & 63] = s;
}
#endif

/* One probe over `j` (1 GiB): GB/s. */
static double read_bandwidth_once(gf_threadpool *pool, bw_job *j)
{
    double t0 = now_s();
#if defined(__x86_64__)
    gf_threadpool_run(pool, __builtin_cpu_supports("avx512f") ? bw_task512 : bw_task, j);
#else
    gf_threadpool_run(pool, bw_task, j);
#endif
    return (double)j->n * 4 / (now_s() - t0) * 1e-9;
}

static const char *dtype_names[] = {"f32", "f16", "bf16", "q8", "q4"};

static void fill(gf_matrix *m, gf_dtype dt, int64_t rows, int64_t cols)
{
    size_t n = (size_t)rows * (size_t)cols;
    m->dtype = dt;
    m->rows = rows;
    m->cols = cols;
    m->scales = NULL;
    switch (dt) {
    case GF_DTYPE_F32: {
        float *p = gf_alloc_aligned(n * 4);
        for (size_t i = 0; i < n; i++)
            p[i] = frand() * 0.05f;
        m->data = p;
        break;
    }
    case GF_DTYPE_F16:
    case GF_DTYPE_BF16: {
        uint16_t *p = gf_alloc_aligned(n * 2);
        for (size_t i = 0; i < n; i++)
            p[i] = dt == GF_DTYPE_F16 ? gf_f32_to_f16(frand() * 0.05f) : gf_f32_to_bf16(frand() * 0.05f);
        m->data = p;
        break;
    }
    case GF_DTYPE_Q8: {
        int8_t *p = gf_alloc_aligned(n);
        uint16_t *s = gf_alloc_aligned(n / 32 * 2);
        for (size_t i = 0; i < n; i++)
            p[i] = (int8_t)(frand() * 127.0f);
        for (size_t i = 0; i < n / 32; i++)
            s[i] = gf_f32_to_f16(0.0004f * (1.0f + frand() * 0.5f));
        m->data = p;
        m->scales = s;
        break;
    }
    case GF_DTYPE_Q4: { /* random codes in the layout: any byte is valid */
        uint8_t *p = gf_alloc_aligned(n / 2);
        uint16_t *s = gf_alloc_aligned(n / 32 * 2);
        for (size_t i = 0; i < n / 2; i++)
            p[i] = (uint8_t)((frand() + 1.0f) * 127.9f);
        for (size_t i = 0; i < n / 32; i++)
            s[i] = gf_f32_to_f16(0.006f * (1.0f + frand() * 0.5f));
        m->data = p;
        m->scales = s;
        break;
    }
    }
}

static size_t matrix_bytes(const gf_matrix *m)
{
    size_t n = (size_t)m->rows * (size_t)m->cols;
    switch (m->dtype) {
    case GF_DTYPE_F32: return n * 4;
    case GF_DTYPE_F16:
    case GF_DTYPE_BF16: return n * 2;
    case GF_DTYPE_Q4: return n / 2 + n / 32 * 2;
    default: return n + n / 32 * 2;
    }
}

/* Whether `name` is one of the comma-separated words of `list`. */
static int in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, name, n))
            return 1;
        p += len + (end ? 1 : 0);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int threads = 2;
    int64_t rows = 2048, cols = 16384;
    const char *tokens_arg = "1,2,4,8,16,32,64,128";
    const char *dtypes_arg = "f32,f16,bf16,q8";
    double seconds = 1.0;
    const char *backend = "auto";
    int measure_bw = 0, in_cache = 0;
    int64_t set_mb = 2048;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-x") || !strcmp(argv[i], "-b") || !strcmp(argv[i], "-i")) {
            if (argv[i][1] == 'x')
                gf_linear_allow_bf16_dot(1);
            else if (argv[i][1] == 'i')
                in_cache = 1;
            else
                measure_bw = 1;
            memmove(argv + i, argv + i + 1, (size_t)(argc - i - 1) * sizeof *argv);
            argc--;
            i--;
        }
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-t")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-r")) rows = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "-c")) cols = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "-n")) tokens_arg = argv[i + 1];
        else if (!strcmp(argv[i], "-d")) dtypes_arg = argv[i + 1];
        else if (!strcmp(argv[i], "-s")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-g")) backend = argv[i + 1];
        else if (!strcmp(argv[i], "-m")) set_mb = atoll(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_kernels [-t N] [-r ROWS] [-c COLS] [-n T1,T2..] "
                            "[-d f32,f16,bf16,q8] [-s SECONDS] [-g auto|own|blas|rows] [-m MB] [-x] [-b] [-i]\n");
            return 2;
        }
    }
    if (rows < 1 || cols < 32 || cols % 32 || threads < 1 || set_mb < 0) {
        fprintf(stderr, "bench_kernels: need rows >= 1, cols a multiple of 32, threads >= 1\n");
        return 2;
    }
    if (!strcmp(backend, "own")) gf_linear_set_gemm_backend(GF_GEMM_BACKEND_OWN);
    else if (!strcmp(backend, "blas")) gf_linear_set_gemm_backend(GF_GEMM_BACKEND_BLAS);
    else if (!strcmp(backend, "rows")) gf_linear_set_gemm_backend(GF_GEMM_BACKEND_ROWS);
    if (strcmp(backend, "auto"))
        for (int dt = 0; dt < GF_DTYPE_COUNT; dt++)
            gf_gemm_set_min_tokens((gf_dtype)dt, 1);
    gf_threadpool *pool = gf_threadpool_new(threads);
    printf("# level %s, %d threads, %lld x %lld, batch path %s%s, OPENBLAS_CORETYPE=%s\n",
           gf_kernel_level_in_use(), threads, (long long)rows, (long long)cols, backend,
           gf_linear_bf16_dot_allowed() ? " (bf16 dot)" : "",
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)");
    bw_job bwj = {.n = (size_t)1 << 28}; /* 1 GiB of floats */
    float *bwbuf = NULL;
    if (measure_bw) {
        bwbuf = gf_alloc_aligned(bwj.n * 4);
        if (!bwbuf) {
            fprintf(stderr, "bench_kernels: no memory for the bandwidth probe\n");
            return 1;
        }
        memset(bwbuf, 1, bwj.n * 4);
        bwj.buf = bwbuf;
        printf("# 5 rounds of [bandwidth probe (sum of 1 GiB, %d threads), kernel]: ms/call, GB/s\n"
               "# and bw_GB/s are the best rounds, of_bw the median of the rounds' kernel/probe\n",
               threads);
    }
    printf("%-5s %6s %10s %10s %10s%s\n", "dtype", "tokens", "ms/call", "GB/s", "GFLOP/s",
           measure_bw ? "  bw_GB/s  of_bw" : "");
    for (int dt = 0; dt < GF_DTYPE_COUNT; dt++) {
        if (!in_list(dtypes_arg, dtype_names[dt]))
            continue;
        gf_matrix probe;
        probe.rows = rows;
        probe.cols = cols;
        probe.dtype = (gf_dtype)dt;
        size_t one = matrix_bytes(&probe);
        int n_mats = in_cache ? 1 : (int)(((size_t)set_mb << 20) / one) + 1;
        gf_matrix *mats = calloc((size_t)n_mats, sizeof *mats);
        for (int i = 0; i < n_mats; i++)
            fill(&mats[i], (gf_dtype)dt, rows, cols);
        char *list = strdup(tokens_arg);
        for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
            int64_t nt = atoll(tok);
            if (nt < 1)
                continue;
            float *x = gf_alloc_aligned((size_t)(nt * cols) * 4);
            float *y = gf_alloc_aligned((size_t)(nt * rows) * 4);
            for (int64_t i = 0; i < nt * cols; i++)
                x[i] = frand();
            gf_linear(pool, &mats[0], x, nt, y); /* warm up */
            double per = 1e9, bw = 0, ratio[5];
            int calls = 0;
            for (int round = 0; round < 5; round++) {
                double b = 0;
                if (measure_bw) {
                    b = read_bandwidth_once(pool, &bwj);
                    bw = b > bw ? b : bw;
                }
                int round_calls = 0;
                double t0 = now_s(), t1;
                do {
                    gf_linear(pool, &mats[calls++ % n_mats], x, nt, y);
                    round_calls++;
                    t1 = now_s();
                } while (t1 - t0 < seconds / 5 || round_calls < 2);
                double p = (t1 - t0) / round_calls;
                per = p < per ? p : per;
                ratio[round] = measure_bw ? (double)one / p * 1e-9 / b : 0;
            }
            /* median of the per-round ratios: kernel and probe under the same
             * conditions (the neighbours' load changes from round to round) */
            for (int a = 0; a < 5; a++)
                for (int b2 = a + 1; b2 < 5; b2++)
                    if (ratio[b2] < ratio[a]) {
                        double tmp = ratio[a];
                        ratio[a] = ratio[b2];
                        ratio[b2] = tmp;
                    }
            double gbs = (double)one / per * 1e-9;
            printf("%-5s %6lld %10.3f %10.2f %10.1f", dtype_names[dt], (long long)nt, per * 1e3, gbs,
                   2.0 * (double)rows * (double)cols * (double)nt / per * 1e-9);
            if (measure_bw)
                printf("  %7.1f  %4.0f%%", bw, 100 * ratio[2]);
            printf("\n");
            fflush(stdout);
            gf_free_aligned(x);
            gf_free_aligned(y);
        }
        free(list);
        for (int i = 0; i < n_mats; i++) {
            gf_free_aligned((void *)mats[i].data);
            gf_free_aligned((void *)mats[i].scales);
        }
        free(mats);
    }
    gf_free_aligned(bwbuf);
    gf_threadpool_free(pool);
    return 0;
}
