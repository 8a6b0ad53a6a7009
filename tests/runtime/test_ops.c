/* test_ops.c — the unit pieces of the forward pass on hand-made inputs,
 * against straightforward double-precision formulas: RMSNorm, magnitude
 * matching, GELU, RoPE, softmax, gaussian top-k, softcap, the KV cache ring
 * and attention over it (checked against attention over the full history). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loader/hparams.h"
#include "runtime/attention.h"
#include "runtime/kvcache.h"
#include "runtime/ops.h"

static double frand(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return ((*state >> 8) & 0xffff) / 32768.0 - 1.0; /* [-1, 1) */
}

Test(ops, rmsnorm_matches_formula)
{
    const float x[5] = {1, -2, 3, 0.5f, -4}, w[5] = {1, 0.5f, 2, -1, 3};
    double ss = 0;
    for (int i = 0; i < 5; i++)
        ss += (double)x[i] * x[i];
    const double inv = 1.0 / sqrt(ss / 5 + 1e-6);
    float y[5], z[5];
    gf_rmsnorm(x, w, 5, 1e-6f, y);
    gf_rmsnorm(x, NULL, 5, 1e-6f, z);
    for (int i = 0; i < 5; i++) {
        cr_expect_float_eq(y[i], x[i] * inv * w[i], 1e-6, "gain %d", i);
        cr_expect_float_eq(z[i], x[i] * inv, 1e-6, "no gain %d", i);
    }
    /* in place, and the eps keeps zeros finite */
    float zero[3] = {0, 0, 0};
    gf_rmsnorm(zero, NULL, 3, 1e-6f, zero);
    cr_expect_eq(zero[1], 0.0f);
    float copy[5];
    memcpy(copy, x, sizeof copy);
    gf_rmsnorm(copy, w, 5, 1e-6f, copy);
    cr_expect_eq(memcmp(copy, y, sizeof y), 0);
}

Test(ops, magnitude_matching_and_floor)
{
    float y[4] = {3, 4, 0, 0}; /* mean square 6.25 */
    gf_match_magnitude(y, 4, 2.0f);
    cr_expect_float_eq(y[0], 3 * 2 / 2.5, 1e-6);
    cr_expect_float_eq(gf_rms(y, 4), 2.0, 1e-6);
    float tiny[2] = {1e-4f, 0}; /* mean square 5e-9 < 1e-5: the floor applies */
    gf_match_magnitude(tiny, 2, 1.0f);
    cr_expect_float_eq(tiny[0], 1e-4 / sqrt(1e-5), 1e-7);
}

Test(ops, gelu_tanh_formula)
{
    const double xs[] = {-6, -2.5, -1, -0.1, 0, 0.3, 1, 2, 5};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        const double x = xs[i];
        const double want = 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
        cr_expect_float_eq(gf_gelu_tanh((float)x), want, 1e-6, "gelu(%g)", x);
    }
}

Test(ops, rope_half_split)
{
    enum { D = 8 };
    float c[D / 2], s[D / 2], v[D], orig[D];
    unsigned st = 1;
    for (int i = 0; i < D; i++)
        orig[i] = v[i] = (float)frand(&st);
    gf_rope_angles(0, D, 10000.0, c, s);
    gf_rope_apply(v, D, c, s);
    cr_expect_eq(memcmp(v, orig, sizeof v), 0, "position 0 is the identity");

    const int64_t pos = 37;
    const double theta = 10000.0;
    gf_rope_angles(pos, D, theta, c, s);
    memcpy(v, orig, sizeof v);
    gf_rope_apply(v, D, c, s);
    for (int j = 0; j < D / 2; j++) {
        const double a = pos * pow(theta, -2.0 * j / D);
        cr_expect_float_eq(v[j], orig[j] * cos(a) - orig[j + D / 2] * sin(a), 1e-6);
        cr_expect_float_eq(v[j + D / 2], orig[j + D / 2] * cos(a) + orig[j] * sin(a), 1e-6);
    }
    /* large positions: angles in double stay accurate */
    gf_rope_angles(32767, D, 1e6, c, s);
    cr_expect_float_eq(c[1], cos(32767.0 * pow(1e6, -2.0 / D)), 1e-7);
}

Test(ops, rope_scores_depend_on_distance_only)
{
    enum { D = 16 };
    float q[D], k[D], cq[D / 2], sq[D / 2], ck[D / 2], sk[D / 2];
    unsigned st = 7;
    float q0[D], k0[D];
    for (int i = 0; i < D; i++) {
        q0[i] = (float)frand(&st);
        k0[i] = (float)frand(&st);
    }
    double dots[2];
    const int64_t base[2] = {3, 1003};
    for (int r = 0; r < 2; r++) {
        memcpy(q, q0, sizeof q);
        memcpy(k, k0, sizeof k);
        gf_rope_angles(base[r] + 5, D, 10000.0, cq, sq);
        gf_rope_angles(base[r], D, 10000.0, ck, sk);
        gf_rope_apply(q, D, cq, sq);
        gf_rope_apply(k, D, ck, sk);
        dots[r] = 0;
        for (int i = 0; i < D; i++)
            dots[r] += (double)q[i] * k[i];
    }
    cr_expect_float_eq(dots[0], dots[1], 1e-4);
}

Test(ops, softmax)
{
    float x[4] = {1000, 1001, 999, -1e30f};
    gf_softmax(x, 4);
    const double e0 = exp(-1.0), e2 = exp(-2.0), sum = e0 + 1 + e2;
    cr_expect_float_eq(x[0], e0 / sum, 1e-6);
    cr_expect_float_eq(x[1], 1 / sum, 1e-6);
    cr_expect_float_eq(x[2], e2 / sum, 1e-6);
    cr_expect_eq(x[3], 0.0f);
    float one[1] = {-5};
    gf_softmax(one, 1);
    cr_expect_eq(one[0], 1.0f);
}

Test(ops, gaussian_topk_population_std)
{
    float g[4] = {1, 2, 3, 10}; /* mean 4, population var (9+4+1+36)/4 = 12.5 */
    const double cutoff = 4 + 0.5 * sqrt(12.5);
    gf_gaussian_topk(g, 4, 0.5f);
    cr_expect_eq(g[0], 0.0f);
    cr_expect_eq(g[2], 0.0f);
    cr_expect_float_eq(g[3], 10 - cutoff, 1e-5);
}

Test(ops, normal_icdf_and_sparsity_z)
{
    cr_expect_float_eq(gf_normal_icdf(0.5), 0.0, 1e-12);
    cr_expect_float_eq(gf_normal_icdf(0.95), 1.6448536269514729, 1e-12);
    cr_expect_float_eq(gf_normal_icdf(0.975), 1.959963984540054, 1e-12);
    cr_expect_float_eq(gf_normal_icdf(0.1), -1.2815515655446004, 1e-12);
    cr_expect_eq(gf_sparsity_z(0.95f), 1.6448533535003662f, "HF's float32 constant");
    cr_expect_eq(gf_sparsity_z(0.0f), 0.0f);
    cr_expect_float_eq(gf_sparsity_z(0.9f), 1.2815515655446004, 1e-6);
}

Test(ops, softcap)
{
    float x[3] = {0, 30, -90};
    gf_softcap(x, 3, 30.0f);
    cr_expect_eq(x[0], 0.0f);
    cr_expect_float_eq(x[1], 30 * tanh(1.0), 1e-5);
    cr_expect_float_eq(x[2], -30 * tanh(3.0), 1e-5);
    float y[1] = {123};
    gf_softcap(y, 1, 0.0f);
    cr_expect_eq(y[0], 123.0f, "cap 0 = none");
}

/* ---- KV cache and attention --------------------------------------------- */

/* Four layers: 0 sliding, 1 full, 2 sliding sharing 0's cache, 3 full
 * sharing 1's; W = 5, 2 KV heads of dim 4, 4 query heads. */
typedef struct toy {
    gf_hparams hp;
    int64_t ffn[4];
    float sparsity[4];
    uint8_t sliding[4];
    int kv_source[4];
} toy;

static void toy_init(toy *t)
{
    memset(t, 0, sizeof *t);
    static const uint8_t sl[4] = {1, 0, 1, 0};
    static const int src[4] = {0, 1, 0, 1};
    memcpy(t->sliding, sl, sizeof sl);
    memcpy(t->kv_source, src, sizeof src);
    t->hp.n_layers = 4;
    t->hp.n_heads = 4;
    t->hp.n_kv_heads = 2;
    t->hp.head_dim = 4;
    t->hp.sliding_window = 5;
    t->hp.is_sliding = t->sliding;
    t->hp.kv_source = t->kv_source;
    t->hp.ffn_width = t->ffn;
    t->hp.sparsity = t->sparsity;
}

Test(kvcache, layout_and_sizes)
{
    toy t;
    toy_init(&t);
    gf_kvcache kv;
    cr_assert_eq(gf_kvcache_init(&kv, &t.hp, 100, 7, GEMFA_KV_F32), GEMFA_OK);
    cr_expect_eq(kv.layers[0].n_slots, 7);
    cr_expect(kv.layers[0].is_ring);
    cr_expect_eq(kv.layers[1].n_slots, 100);
    cr_expect_not(kv.layers[1].is_ring);
    cr_expect_null(kv.layers[2].k, "KV-shared layers store nothing");
    cr_expect_null(kv.layers[3].k);
    cr_expect_eq(kv.data_bytes, (size_t)(4 * 2 * 2 * 4 * (7 + 100)));
    cr_expect_eq(gf_kv_slot(&kv.layers[0], 15), 1);
    cr_expect_eq(gf_kv_slot(&kv.layers[1], 15), 15);
    /* keys of one head are contiguous */
    cr_expect_eq((char *)gf_kv_key(&kv, &kv.layers[0], 1, 2) -
                     (char *)gf_kv_key(&kv, &kv.layers[0], 1, 1),
                 16);
    gf_kvcache_free(&kv);
    /* a ring larger than the context becomes a plain store */
    cr_assert_eq(gf_kvcache_init(&kv, &t.hp, 6, 9, GEMFA_KV_F32), GEMFA_OK);
    cr_expect_eq(kv.layers[0].n_slots, 6);
    cr_expect_not(kv.layers[0].is_ring);
    cr_expect_eq(gf_kvcache_window_bytes(&kv, 4), 0u);
    gf_kvcache_free(&kv);
}

Test(kvcache, window_save_restore_and_clone)
{
    toy t;
    toy_init(&t);
    gf_kvcache kv, copy;
    cr_assert_eq(gf_kvcache_init(&kv, &t.hp, 64, 6, GEMFA_KV_F32), GEMFA_OK);
    float *data = (float *)kv.data;
    const size_t n_floats = kv.data_bytes / sizeof(float);
    for (size_t i = 0; i < n_floats; i++)
        data[i] = (float)i;
    const size_t nw = gf_kvcache_window_bytes(&kv, 4);
    cr_expect_eq(nw, (size_t)(4 * 2 * 2 * 4 * 4));
    float *buf = calloc(nw, 1);
    gf_kvcache_save_window(&kv, 20, 4, buf); /* positions 16..19 */
    float *before = malloc(kv.data_bytes);
    memcpy(before, kv.data, kv.data_bytes);
    for (int64_t p = 20; p < 26; p++) /* a long decode wraps the whole ring */
        for (int64_t h = 0; h < 2; h++)
            for (int i = 0; i < 4; i++) {
                ((float *)gf_kv_key(&kv, &kv.layers[0], h, gf_kv_slot(&kv.layers[0], p)))[i] = -1;
                ((float *)gf_kv_value(&kv, &kv.layers[0], h, gf_kv_slot(&kv.layers[0], p)))[i] = -2;
            }
    gf_kvcache_restore_window(&kv, 20, 4, buf);
    for (int64_t p = 16; p < 20; p++)
        for (int64_t h = 0; h < 2; h++) {
            const int64_t slot = gf_kv_slot(&kv.layers[0], p);
            const size_t off = (size_t)((float *)gf_kv_key(&kv, &kv.layers[0], h, slot) - data);
            const size_t voff = (size_t)((float *)gf_kv_value(&kv, &kv.layers[0], h, slot) - data);
            cr_expect_eq(memcmp(data + off, before + off, 16), 0, "key of position %ld", (long)p);
            cr_expect_eq(memcmp(data + voff, before + voff, 16), 0);
        }
    cr_assert_eq(gf_kvcache_clone(&copy, &kv, 30), GEMFA_OK);
    cr_expect_neq(copy.data, kv.data);
    cr_expect_eq(memcmp(copy.layers[0].k, kv.layers[0].k, 2 * 6 * 4 * sizeof(float)), 0);
    cr_expect_eq(memcmp(copy.layers[1].v, kv.layers[1].v, 30 * 4 * sizeof(float)), 0);
    cr_expect_eq(memcmp(gf_kv_value(&copy, &copy.layers[1], 1, 0),
                        gf_kv_value(&kv, &kv.layers[1], 1, 0), 30 * 4 * sizeof(float)), 0);
    free(before);
    free(buf);
    gf_kvcache_free(&copy);
    gf_kvcache_free(&kv);
}

/* Naive attention for one query over an explicit history (all positions). */
static void naive(const float *q, const float *K, const float *V, int64_t first, int64_t last,
                  int64_t d, float *out)
{
    double sc[256], mx = -1e300, sum = 0;
    for (int64_t j = first; j <= last; j++) {
        double s = 0;
        for (int64_t i = 0; i < d; i++)
            s += (double)q[i] * K[j * d + i];
        sc[j - first] = s;
        if (s > mx)
            mx = s;
    }
    for (int64_t j = first; j <= last; j++)
        sum += sc[j - first] = exp(sc[j - first] - mx);
    for (int64_t i = 0; i < d; i++) {
        double o = 0;
        for (int64_t j = first; j <= last; j++)
            o += sc[j - first] / sum * V[j * d + i];
        out[i] = (float)o;
    }
}

/* Feeds 40 positions in chunks of 3 through a ring of W − 1 + 3 = 7 slots
 * (it wraps many times) and checks every layer's attention, own and shared,
 * against the full history. */
static void ring_vs_history(gemfa_kv_type kv_type, double tol)
{
    toy t;
    toy_init(&t);
    enum { N = 40, CH = 3, D = 4, NKV = 2, NH = 4 };
    gf_kvcache kv;
    cr_assert_eq(gf_kvcache_init(&kv, &t.hp, N, t.hp.sliding_window - 1 + CH, kv_type), GEMFA_OK);
    static float hist_k[2][NKV][N * D], hist_v[2][NKV][N * D];
    unsigned st = 3;
    const int64_t per = gf_attend_scores_per_thread(&t.hp, N);
    float *scores = malloc((size_t)(per + gf_attend_shared_floats(&t.hp, N)) * sizeof(float));
    for (int64_t p0 = 0; p0 < N; p0 += CH) {
        const int64_t n = p0 + CH <= N ? CH : N - p0;
        int64_t pos[CH];
        gf_kvcache *kvs[CH];
        int32_t ids[CH] = {0};
        for (int64_t r = 0; r < n; r++) {
            pos[r] = p0 + r;
            kvs[r] = &kv;
        }
        gf_batch b = {.n = n, .ids = ids, .pos = pos, .kv = kvs, .logits = NULL, .logits_from = n};
        for (int own = 0; own < 2; own++) { /* layer 0 (sliding), layer 1 (full) */
            float k[CH * NKV * D], v[CH * NKV * D];
            for (int64_t r = 0; r < n; r++)
                for (int g = 0; g < NKV; g++)
                    for (int i = 0; i < D; i++) {
                        k[(r * NKV + g) * D + i] = hist_k[own][g][(p0 + r) * D + i] = (float)frand(&st);
                        v[(r * NKV + g) * D + i] = hist_v[own][g][(p0 + r) * D + i] = (float)frand(&st);
                    }
            gf_kv_store(&t.hp, own, &b, k, v);
        }
        for (int layer = 0; layer < 4; layer++) {
            float q[CH * NH * D], out[CH * NH * D], want[D];
            for (int i = 0; i < CH * NH * D; i++)
                q[i] = 2.0f * (float)frand(&st);
            gf_attend(NULL, &t.hp, layer, &b, q, out, scores, per);
            const int src = t.kv_source[layer];
            for (int64_t r = 0; r < n; r++)
                for (int h = 0; h < NH; h++) {
                    const int64_t p = p0 + r, g = h / 2;
                    const int64_t first = t.sliding[layer] && p - 4 > 0 ? p - 4 : 0;
                    naive(q + (r * NH + h) * D, hist_k[src][g], hist_v[src][g], first, p, D, want);
                    for (int i = 0; i < D; i++)
                        cr_expect_float_eq(out[(r * NH + h) * D + i], want[i], tol,
                                           "%s layer %d position %ld head %d",
                                           gemfa_kv_type_name(kv_type), layer, (long)p, h);
                }
        }
    }
    free(scores);
    gf_kvcache_free(&kv);
}

Test(attention, ring_matches_full_history) { ring_vs_history(GEMFA_KV_F32, 1e-5); }
/* f16 entries: keys and values in [-1, 1) rounded to 11 significant bits
 * (relative 2^-11): a score moves by at most |q|·|k|·2^-11·... ≈ 4e-3 here,
 * an output by about as much. */
Test(attention, ring_matches_full_history_f16) { ring_vs_history(GEMFA_KV_F16, 1e-2); }
