/* test_vec.c — the vectorised helpers of the forward pass (runtime/vec.h)
 * at every kernel level this CPU runs, on odd sizes (vector bodies plus
 * scalar tails), against double-precision formulas; and threaded attention
 * against the single-threaded run (same bits: a task's arithmetic does not
 * depend on the thread that runs it). */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/threadpool.h"
#include "loader/hparams.h"
#include "runtime/attention.h"
#include "runtime/kvcache.h"
#include "runtime/ops.h"
#include "runtime/vec.h"

static const int64_t sizes[] = {1, 7, 15, 16, 17, 33, 64, 255, 1000, 4099};
#define N_SIZES (sizeof sizes / sizeof sizes[0])

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)(((*s >> 8) & 0xffff) / 32768.0 - 1.0);
}

static float *random_vec(int64_t n, float scale, unsigned seed)
{
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++)
        x[i] = scale * frand(&seed);
    return x;
}

/* Calls body(ops, level name) for every level this CPU runs. */
#define FOR_EACH_LEVEL(ops)                                                   \
    for (int lv_ = 0; lv_ < GF_LEVEL_COUNT; lv_++)                            \
        for (const gf_vec_ops *ops = gf_vec_for_level((gf_kernel_level)lv_); \
             ops; ops = NULL)

Test(vec, levels_exist)
{
    cr_assert_not_null(gf_vec_for_level(GF_LEVEL_SCALAR));
    cr_assert_not_null(gf_vec());
    cr_expect_eq(gf_vec(), gf_vec_for_level(gf_kernels()->level), "gf_vec follows gf_kernels");
}

Test(vec, reductions)
{
    FOR_EACH_LEVEL(v)
    {
        for (size_t k = 0; k < N_SIZES; k++) {
            const int64_t n = sizes[k];
            float *x = random_vec(n, 3.0f, (unsigned)n);
            double ss = 0, sum = 0, var = 0;
            for (int64_t i = 0; i < n; i++) {
                ss += (double)x[i] * x[i];
                sum += x[i];
            }
            const double mean = sum / (double)n;
            for (int64_t i = 0; i < n; i++)
                var += ((double)x[i] - mean) * ((double)x[i] - mean);
            double m, q;
            v->mean_var(x, n, &m, &q);
            cr_expect_leq(fabs(v->sumsq(x, n) - ss), 1e-12 * ss, "%s sumsq n=%ld", v->name, (long)n);
            cr_expect_leq(fabs(m - mean), 1e-12 * (1 + fabs(mean)), "%s mean n=%ld", v->name, (long)n);
            cr_expect_leq(fabs(q - var), 1e-12 * (1 + var), "%s var n=%ld", v->name, (long)n);
            free(x);
        }
    }
}

Test(vec, elementwise)
{
    FOR_EACH_LEVEL(v)
    {
        for (size_t k = 0; k < N_SIZES; k++) {
            const int64_t n = sizes[k];
            float *x = random_vec(n, 6.0f, 11 + (unsigned)n), *w = random_vec(n, 2.0f, 5);
            float *y = malloc((size_t)n * sizeof *y), *g = malloc((size_t)n * sizeof *g);
            v->scale(x, 0.5f, w, n, y);
            for (int64_t i = 0; i < n; i++)
                cr_expect_eq(y[i], x[i] * 0.5f * w[i], "%s scale %ld", v->name, (long)i);
            memcpy(y, w, (size_t)n * sizeof *y);
            v->axpy(y, -1.5f, x, n);
            for (int64_t i = 0; i < n; i++)
                cr_expect_float_eq(y[i], w[i] - 1.5 * x[i], 1e-5, "%s axpy", v->name);
            /* mix: b + Σ c_q·x_q within the bound of a sum formed first and
             * added to b last: |err| <= (k + 1)·eps·(|b| + Σ|c_q·x_q|) */
            for (int k = 1; k <= 4; k++) {
                const float c[4] = {0.75f, -1.25f, 0.5f, 2.0f};
                const float *xs[4] = {x, w, y, x};
                memcpy(y, w, (size_t)n * sizeof *y);
                v->mix(g, w, c, xs, k, n);
                for (int64_t i = 0; i < n; i++) {
                    double want = w[i], mag = fabs(w[i]);
                    for (int q = 0; q < k; q++) {
                        want += (double)c[q] * xs[q][i];
                        mag += fabs((double)c[q] * xs[q][i]);
                    }
                    cr_expect_leq(fabs(g[i] - want), (k + 1) * FLT_EPSILON * mag, "%s mix k=%d",
                                  v->name, k);
                }
                v->mix(y, y, c, xs, k, n); /* in place on the base */
                for (int64_t i = 0; i < n; i++)
                    cr_expect_eq(y[i], g[i], "%s mix in place k=%d", v->name, k);
            }
            /* GELU(x)·w against the tanh formula in double, relative: a few
             * float ulps, plus the condition of e^(-2u) for negative x (its
             * relative error is |2u| times that of u), on random values and
             * on small ones (the sparse FFN feeds many values near 0). */
            for (const float *sc = (const float[]){1.0f, 1e-3f, 0.0f}; *sc; sc++) {
                for (int64_t i = 0; i < n; i++)
                    g[i] = x[i] * *sc;
                v->gelu_mul(g, w, n);
                for (int64_t i = 0; i < n; i++) {
                    const double xi = x[i] * *sc;
                    const double u = sqrt(2 / M_PI) * (xi + 0.044715 * xi * xi * xi);
                    const double want = 0.5 * xi * (1 + tanh(u)) * w[i];
                    cr_expect_leq(fabs(g[i] - want), (6 + 4 * fabs(u)) * FLT_EPSILON * fabs(want),
                                  "%s gelu(%g): %g", v->name, xi, (g[i] - want) / want);
                }
            }
            memcpy(g, x, (size_t)n * sizeof *g);
            v->gelu_mul(g, NULL, n);
            for (int64_t i = 0; i < n; i++)
                cr_expect_leq(fabs(g[i] - gf_gelu_tanh(x[i])), 1e-6 * (1 + fabs(g[i])), "%s gelu",
                              v->name);
            memcpy(g, x, (size_t)n * sizeof *g);
            v->relu_shift(g, 0.25f, n);
            for (int64_t i = 0; i < n; i++)
                cr_expect_eq(g[i], x[i] - 0.25f > 0 ? x[i] - 0.25f : 0.0f, "%s relu", v->name);
            /* softcap over a wide range (logits up to ±200, cap 30) and near
             * zero: within 4 float ulps of the result itself (relative), so
             * a tanh that cancels for small arguments fails (issue 12) */
            for (const float *sc = (const float[]){33.0f, 0.3f, 1e-3f, 0.0f}; *sc; sc++) {
                for (int64_t i = 0; i < n; i++)
                    g[i] = x[i] * *sc;
                v->softcap(g, n, 30.0f);
                for (int64_t i = 0; i < n; i++) {
                    const double want = 30.0 * tanh((double)(x[i] * *sc) / 30.0);
                    cr_expect_leq(fabs(g[i] - want), 4 * FLT_EPSILON * fabs(want),
                                  "%s softcap(%g): %g", v->name, x[i] * *sc, g[i] - want);
                }
            }
            free(x);
            free(w);
            free(y);
            free(g);
        }
    }
}

Test(vec, softmax)
{
    FOR_EACH_LEVEL(v)
    {
        for (size_t k = 0; k < N_SIZES; k++) {
            const int64_t n = sizes[k];
            float *x = random_vec(n, 20.0f, 3 + (unsigned)n);
            double *want = malloc((size_t)n * sizeof *want), mx = -1e300, sum = 0;
            for (int64_t i = 0; i < n; i++)
                mx = x[i] > mx ? x[i] : mx;
            for (int64_t i = 0; i < n; i++)
                sum += want[i] = exp(x[i] - mx);
            v->softmax(x, n);
            double total = 0;
            for (int64_t i = 0; i < n; i++) {
                cr_expect_leq(fabs(x[i] - want[i] / sum), 1e-6 * want[i] / sum + 1e-30,
                              "%s softmax n=%ld", v->name, (long)n);
                total += x[i];
            }
            cr_expect_float_eq(total, 1.0, 1e-5);
            free(x);
            free(want);
        }
    }
}

Test(vec, attention_dots_and_sums)
{
    const int64_t ds[] = {16, 20, 256};
    FOR_EACH_LEVEL(v)
    {
        for (size_t a = 0; a < 3; a++)
            for (int nq = 1; nq <= 6; nq++) {
                const int64_t d = ds[a], nk = 37;
                float *q = random_vec(nq * d, 1.0f, 7), *k = random_vec(nk * d, 1.0f, 8);
                float *s = calloc((size_t)(nq * nk), sizeof *s);
                v->dots(q, nq, k, nk, d, s, nk);
                for (int h = 0; h < nq; h++)
                    for (int64_t j = 0; j < nk; j++) {
                        double want = 0;
                        for (int64_t i = 0; i < d; i++)
                            want += (double)q[h * d + i] * k[j * d + i];
                        cr_expect_leq(fabs(s[h * nk + j] - want), 1e-5 * sqrt((double)d),
                                      "%s dots d=%ld nq=%d", v->name, (long)d, nq);
                    }
                float *out = random_vec(nq * d, 1.0f, 9), *orig = malloc((size_t)(nq * d) * 4);
                memcpy(orig, out, (size_t)(nq * d) * 4);
                v->accum(s, nk, nq, k, nk, d, out);
                for (int h = 0; h < nq; h++)
                    for (int64_t i = 0; i < d; i++) {
                        double want = orig[h * d + i];
                        for (int64_t j = 0; j < nk; j++)
                            want += (double)s[h * nk + j] * k[j * d + i];
                        cr_expect_leq(fabs(out[h * d + i] - want), 1e-4, "%s accum", v->name);
                    }
                free(q);
                free(k);
                free(s);
                free(out);
                free(orig);
            }
    }
}

/* Attention of a prompt chunk and of a batch of sessions, 1 vs 2 threads. */
Test(vec, attention_threads_equal)
{
    enum { L = 2, NKV = 2, NH = 8, D = 32, T = 40, W = 16 };
    gf_hparams hp;
    memset(&hp, 0, sizeof hp);
    int64_t ffn[L] = {64, 64};
    float sp[L] = {0, 0};
    uint8_t sliding[L] = {1, 0};
    int src[L] = {0, 1};
    hp.n_layers = L;
    hp.n_heads = NH;
    hp.n_kv_heads = NKV;
    hp.head_dim = D;
    hp.sliding_window = W;
    hp.ffn_width = ffn;
    hp.sparsity = sp;
    hp.is_sliding = sliding;
    hp.kv_source = src;
    gf_kvcache kv;
    cr_assert_eq(gf_kvcache_init(&kv, &hp, T, W - 1 + T, GEMFA_KV_F32), GEMFA_OK);
    int64_t pos[T];
    gf_kvcache *kvs[T];
    int32_t ids[T] = {0};
    for (int t = 0; t < T; t++) {
        pos[t] = t;
        kvs[t] = &kv;
    }
    gf_batch b = {.n = T, .ids = ids, .pos = pos, .kv = kvs, .logits = NULL, .logits_from = T};
    float *k = random_vec(T * NKV * D, 1.0f, 1), *vv = random_vec(T * NKV * D, 1.0f, 2);
    float *q = random_vec(T * NH * D, 2.0f, 3);
    for (int l = 0; l < L; l++)
        gf_kv_store(&hp, l, &b, k, vv);
    gf_threadpool *pool = gf_threadpool_new(2);
    cr_assert_not_null(pool);
    const int64_t per = gf_attend_scores_per_thread(&hp, T);
    float *scores = malloc((size_t)(2 * per + gf_attend_shared_floats(&hp, T)) * sizeof *scores);
    float *one = malloc(T * NH * D * sizeof *one), *two = malloc(T * NH * D * sizeof *two);
    for (int l = 0; l < L; l++) {
        cr_expect_eq(gf_attend(NULL, &hp, l, &b, q, one, scores, per), 0);
        gf_attend(pool, &hp, l, &b, q, two, scores, per);
        cr_expect_eq(memcmp(one, two, T * NH * D * sizeof *one), 0, "layer %d", l);
    }
    gf_threadpool_free(pool);
    gf_kvcache_free(&kv);
    free(k);
    free(vv);
    free(q);
    free(scores);
    free(one);
    free(two);
}
