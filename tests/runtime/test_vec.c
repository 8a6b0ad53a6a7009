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

#include "kernels/convert.h"
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

/* Scalar twins: every SIMD level (AVX2, AVX-512; NEON on aarch64, vec_neon.c)
 * against the scalar level on the same inputs, within a few roundings (the
 * levels may fuse multiply-adds and sum in another order), and each SIMD
 * level has helpers of its own (the table is not the scalar one). */
static double max_rel(const float *a, const float *b, int64_t n, double floor_abs)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (fabs((double)b[i]) + floor_abs);
        m = e > m ? e : m;
    }
    return m;
}

Test(vec, levels_agree_with_scalar_twin)
{
    const gf_vec_ops *s = gf_vec_for_level(GF_LEVEL_SCALAR);
    const float c4[4] = {0.3f, -1.25f, 0.5f, 2.0f};
    for (int lv = 1; lv < GF_LEVEL_COUNT; lv++) {
        const gf_vec_ops *v = gf_vec_for_level((gf_kernel_level)lv);
        if (!v)
            continue;
        cr_expect_neq(v, s, "level %d has its own helpers", lv);
        for (size_t k = 0; k < N_SIZES; k++) {
            const int64_t n = sizes[k];
            float *x = random_vec(n, 4.0f, 11 + (unsigned)n), *w = random_vec(n, 2.0f, 12);
            float *x1 = random_vec(n, 1.0f, 13), *x2 = random_vec(n, 1.0f, 14);
            float *x3 = random_vec(n, 1.0f, 15);
            float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
            const float *xs[4] = {x, x1, x2, x3};
#define TWIN(expr_a, expr_b, tol, floor_abs, what)                                      \
    do {                                                                                \
        memcpy(a, x, (size_t)n * sizeof *a);                                            \
        memcpy(b, x, (size_t)n * sizeof *b);                                            \
        expr_a;                                                                         \
        expr_b;                                                                         \
        double e_ = max_rel(a, b, n, floor_abs);                                        \
        cr_expect_leq(e_, tol, "%s %s n=%ld: relative difference %g", v->name, what,    \
                      (long)n, e_);                                                     \
    } while (0)
            TWIN(v->scale(x, 0.7f, w, n, a), s->scale(x, 0.7f, w, n, b), 3e-7, 1e-30, "scale");
            TWIN(v->scale(x, 0.7f, NULL, n, a), s->scale(x, 0.7f, NULL, n, b), 3e-7, 1e-30,
                 "scale (no w)");
            TWIN(v->axpy(a, 0.37f, w, n), s->axpy(b, 0.37f, w, n), 3e-7, 1.0, "axpy");
            for (int q = 1; q <= 4; q++)
                TWIN(v->mix(a, w, c4, xs, q, n), s->mix(b, w, c4, xs, q, n), 6e-7, 1.0, "mix");
            TWIN(v->gelu_mul(a, w, n), s->gelu_mul(b, w, n), 2e-6, 1e-3, "gelu_mul");
            TWIN(v->gelu_mul(a, NULL, n), s->gelu_mul(b, NULL, n), 2e-6, 1e-3, "gelu");
            TWIN(v->relu_shift(a, 0.5f, n), s->relu_shift(b, 0.5f, n), 0, 1e-30, "relu_shift");
            TWIN(v->softcap(a, n, 3.0f), s->softcap(b, n, 3.0f), 1e-6, 1e-30, "softcap");
            TWIN(v->softmax(a, n), s->softmax(b, n), 2e-6, 1e-30, "softmax");
#undef TWIN
            const double ss_v = v->sumsq(x, n), ss_s = s->sumsq(x, n);
            cr_expect_leq(fabs(ss_v - ss_s), 1e-14 * ss_s, "%s sumsq n=%ld", v->name, (long)n);
            double mv, vv, ms, vs;
            v->mean_var(x, n, &mv, &vv);
            s->mean_var(x, n, &ms, &vs);
            cr_expect_leq(fabs(mv - ms), 1e-14 * 4.0, "%s mean n=%ld", v->name, (long)n);
            cr_expect_leq(fabs(vv - vs), 1e-14 * vs + 1e-300, "%s var n=%ld", v->name, (long)n);
            free(x);
            free(w);
            free(x1);
            free(x2);
            free(x3);
            free(a);
            free(b);
        }
        /* attention: head dims with and without a tail */
        const int64_t ds[] = {4, 18, 256};
        for (size_t di = 0; di < 3; di++)
            for (int nq = 1; nq <= 5; nq++) {
                const int64_t d = ds[di], nk = 13;
                float *q = random_vec(nq * d, 1.0f, 21), *kk = random_vec(nk * d, 1.0f, 22);
                float *sa = calloc((size_t)(nq * nk), sizeof *sa);
                float *sb = calloc((size_t)(nq * nk), sizeof *sb);
                v->dots(q, nq, kk, nk, d, sa, nk);
                s->dots(q, nq, kk, nk, d, sb, nk);
                for (int64_t i = 0; i < nq * nk; i++)
                    cr_expect_leq(fabs(sa[i] - sb[i]), 4e-7 * (double)d, "%s dots d=%ld",
                                  v->name, (long)d);
                float *oa = random_vec(nq * d, 1.0f, 23), *ob = malloc((size_t)(nq * d) * 4);
                memcpy(ob, oa, (size_t)(nq * d) * 4);
                v->accum(sb, nk, nq, kk, nk, d, oa);
                s->accum(sb, nk, nq, kk, nk, d, ob);
                for (int64_t i = 0; i < nq * d; i++)
                    cr_expect_leq(fabs(oa[i] - ob[i]), 4e-7 * (double)d, "%s accum d=%ld",
                                  v->name, (long)d);
                free(q);
                free(kk);
                free(sa);
                free(sb);
                free(oa);
                free(ob);
            }
    }
}

/* The f16 KV kernels: every half widens exactly (all 65536 codes through
 * accum_f16 with weight 1), and on odd sizes each level's f16 dots/accum
 * equal its f32 ones on the widened rows bit for bit, and the scalar
 * level's within rounding (the scalar twin). */
Test(vec, f16_kv_kernels)
{
    uint16_t *all = malloc(65536 * sizeof *all);
    for (uint32_t i = 0; i < 65536; i++)
        all[i] = (uint16_t)i;
    const gf_vec_ops *ref = gf_vec_for_level(GF_LEVEL_SCALAR);
    FOR_EACH_LEVEL(v)
    {
        float *out = malloc(65536 * sizeof *out), one = 1.0f;
        for (int i = 0; i < 65536; i++)
            out[i] = -0.0f; /* -0 + x is x for every x, signed zeros included */
        v->accum_f16(&one, 1, 1, all, 1, 65536, out);
        for (uint32_t i = 0; i < 65536; i++) {
            const float want = gf_f16_to_f32((uint16_t)i);
            if (isnan(want))
                cr_expect(isnan(out[i]), "%s: half 0x%04x gives %g, not NaN", v->name, i,
                          (double)out[i]);
            else
                cr_expect(out[i] == want && signbit(out[i]) == signbit(want),
                          "%s: half 0x%04x gives %a, want %a", v->name, i, (double)out[i],
                          (double)want);
        }
        free(out);
        const int64_t ds[] = {1, 7, 17, 33, 256, 255};
        for (size_t a = 0; a < sizeof ds / sizeof ds[0]; a++)
            for (int nq = 1; nq <= 5; nq += 2) {
                const int64_t d = ds[a], nk = 37;
                float *q = random_vec(nq * d, 1.0f, 11), *kf = random_vec(nk * d, 1.0f, 12);
                uint16_t *kh = malloc((size_t)(nk * d) * sizeof *kh);
                for (int64_t i = 0; i < nk * d; i++) { /* f32 copy = the widened halves */
                    kh[i] = gf_f32_to_f16(kf[i]);
                    kf[i] = gf_f16_to_f32(kh[i]);
                }
                float *s16 = calloc((size_t)(nq * nk), 4), *s32 = calloc((size_t)(nq * nk), 4);
                float *sref = calloc((size_t)(nq * nk), 4);
                v->dots_f16(q, nq, kh, nk, d, s16, nk);
                v->dots(q, nq, kf, nk, d, s32, nk);
                ref->dots_f16(q, nq, kh, nk, d, sref, nk);
                cr_expect_eq(memcmp(s16, s32, (size_t)(nq * nk) * 4), 0, "%s dots_f16 d=%ld",
                             v->name, (long)d);
                for (int64_t i = 0; i < nq * nk; i++)
                    cr_expect_leq(fabsf(s16[i] - sref[i]), 1e-5f * sqrtf((float)d),
                                  "%s vs scalar dots_f16 d=%ld", v->name, (long)d);
                float *o16 = random_vec(nq * d, 1.0f, 13);
                float *o32 = malloc((size_t)(nq * d) * 4), *oref = malloc((size_t)(nq * d) * 4);
                memcpy(o32, o16, (size_t)(nq * d) * 4);
                memcpy(oref, o16, (size_t)(nq * d) * 4);
                v->accum_f16(s16, nk, nq, kh, nk, d, o16);
                v->accum(s16, nk, nq, kf, nk, d, o32);
                ref->accum_f16(s16, nk, nq, kh, nk, d, oref);
                cr_expect_eq(memcmp(o16, o32, (size_t)(nq * d) * 4), 0, "%s accum_f16 d=%ld",
                             v->name, (long)d);
                for (int64_t i = 0; i < nq * d; i++)
                    cr_expect_leq(fabsf(o16[i] - oref[i]), 1e-4f,
                                  "%s vs scalar accum_f16 d=%ld", v->name, (long)d);
                free(q);
                free(kf);
                free(kh);
                free(s16);
                free(s32);
                free(sref);
                free(o16);
                free(o32);
                free(oref);
            }
    }
    free(all);
}

/* The online softmax's pieces: max and e^(x − m) with its sum. */
Test(vec, max_and_exp_sum)
{
    FOR_EACH_LEVEL(v)
    {
        for (size_t k = 0; k < N_SIZES; k++) {
            const int64_t n = sizes[k];
            float *x = random_vec(n, 20.0f, 5 + (unsigned)n);
            float mx = x[0];
            for (int64_t i = 1; i < n; i++)
                mx = x[i] > mx ? x[i] : mx;
            cr_expect_eq(v->max(x, n), mx, "%s max n=%ld", v->name, (long)n);
            const float m = mx + 0.5f;
            double *want = malloc((size_t)n * sizeof *want), sum = 0;
            for (int64_t i = 0; i < n; i++)
                sum += want[i] = exp((double)x[i] - m);
            const float got = v->exp_sum(x, n, m);
            for (int64_t i = 0; i < n; i++)
                cr_expect_leq(fabs(x[i] - want[i]), 1e-6 * want[i] + 1e-30, "%s exp_sum n=%ld",
                              v->name, (long)n);
            cr_expect_leq(fabs(got - sum), 1e-5 * sum, "%s exp_sum total n=%ld", v->name,
                          (long)n);
            free(x);
            free(want);
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

/* One token at a long position (5000 keys: 10 splits) split across the
 * pool equals the single-threaded run and the same row inside a large
 * batch (row mode) bit for bit, and a double-precision softmax within
 * rounding; f16 entries stay within their rounding bound of it. */
static void long_row(gemfa_kv_type type, double tol)
{
    enum { NKV = 2, NH = 8, D = 64, T = 5000, B = 8 };
    gf_hparams hp;
    memset(&hp, 0, sizeof hp);
    int64_t ffn[1] = {64};
    float sp[1] = {0};
    uint8_t sliding[1] = {0};
    int src[1] = {0};
    hp.n_layers = 1;
    hp.n_heads = NH;
    hp.n_kv_heads = NKV;
    hp.head_dim = D;
    hp.sliding_window = 16;
    hp.ffn_width = ffn;
    hp.sparsity = sp;
    hp.is_sliding = sliding;
    hp.kv_source = src;
    gf_kvcache kv;
    cr_assert_eq(gf_kvcache_init(&kv, &hp, T, 16, type), GEMFA_OK);
    float *k = random_vec(T * NKV * D, 1.0f, 21), *vv = random_vec(T * NKV * D, 1.0f, 22);
    int64_t *pos = malloc(T * sizeof *pos);
    gf_kvcache **kvs = malloc(T * sizeof *kvs);
    int32_t *ids = calloc(T, sizeof *ids);
    for (int t = 0; t < T; t++) {
        pos[t] = t;
        kvs[t] = &kv;
    }
    gf_batch all = {.n = T, .ids = ids, .pos = pos, .kv = kvs, .logits_from = T};
    gf_kv_store(&hp, 0, &all, k, vv);
    float *q = random_vec(B * NH * D, 3.0f, 23);
    gf_threadpool *pool = gf_threadpool_new(2);
    const int64_t per = gf_attend_scores_per_thread(&hp, T);
    float *scores = malloc((size_t)(2 * per + gf_attend_shared_floats(&hp, T)) * sizeof *scores);
    float one[NH * D], two[NH * D], rows[B * NH * D];
    gf_batch last = {.n = 1, .ids = ids, .pos = pos + T - 1, .kv = kvs, .logits_from = 1};
    cr_expect_eq(gf_attend(NULL, &hp, 0, &last, q, one, scores, per), 0);
    cr_expect_eq(gf_attend(pool, &hp, 0, &last, q, two, scores, per), 1, "split over the pool");
    cr_expect_eq(memcmp(one, two, sizeof one), 0, "1 vs 2 threads");
    /* B rows ending at T − 1: the last one is the same query */
    float *qb = malloc(sizeof rows);
    memcpy(qb, q + NH * D, (size_t)((B - 1) * NH * D) * sizeof(float));
    memcpy(qb + (B - 1) * NH * D, q, NH * D * sizeof(float));
    gf_batch tail = {.n = B, .ids = ids, .pos = pos + T - B, .kv = kvs, .logits_from = B};
    gf_attend(pool, &hp, 0, &tail, qb, rows, scores, per);
    cr_expect_eq(memcmp(one, rows + (B - 1) * NH * D, sizeof one), 0, "split vs row mode");
    static double sc[T];
    for (int h = 0; h < NH; h++) {
        const int g = h / (NH / NKV);
        double mx = -1e300, sum = 0;
        for (int j = 0; j < T; j++) {
            double d = 0;
            for (int i = 0; i < D; i++)
                d += (double)q[h * D + i] * k[(j * NKV + g) * D + i];
            sc[j] = d;
            mx = d > mx ? d : mx;
        }
        for (int j = 0; j < T; j++)
            sum += sc[j] = exp(sc[j] - mx);
        for (int i = 0; i < D; i++) {
            double o = 0;
            for (int j = 0; j < T; j++)
                o += sc[j] * vv[(j * NKV + g) * D + i];
            cr_expect_leq(fabs(one[h * D + i] - o / sum), tol, "%s head %d [%d]: %g vs %g",
                          gemfa_kv_type_name(type), h, i, (double)one[h * D + i], o / sum);
        }
    }
    gf_threadpool_free(pool);
    gf_kvcache_free(&kv);
    free(k);
    free(vv);
    free(q);
    free(qb);
    free(pos);
    free(kvs);
    free(ids);
    free(scores);
}

Test(vec, attention_long_row_f32) { long_row(GEMFA_KV_F32, 2e-6); }
/* f16: keys and values in [-1, 1) off by at most 2^-12 each; scores
 * (|q| <= 3, d = 64) move by <= 64·3·2^-12 ≈ 0.05 before softmax, but
 * random errors average: the output (|v| < 1) stays within ~1e-3. */
Test(vec, attention_long_row_f16) { long_row(GEMFA_KV_F16, 2e-3); }
