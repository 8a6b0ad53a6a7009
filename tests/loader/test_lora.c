/* test_lora.c — LoRA adapters at the C level (lib/loader/lora.c): the
 * option's argument checks, the merge against a double-precision formula
 * (threads give the same bits), loads whose adapter is wrong leave *out
 * untouched, allocation failures are clean, and adapter_config.json
 * parsing fuzzed in process (1500 random edits: success or a listed status,
 * never a crash; run it under ASan).  The end-to-end comparisons with the
 * numpy merge and the hostile-adapter table are in tests/cli/test_lora.py. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "fixture.h"
#include "gemfa.h"
#include "loader/load.h"
#include "loader/lora.h"

/* A rank-2 adapter on layer 0's q_proj and layer 1's down_proj of the tiny
 * model (hidden 64, FFN 128), F32, written in dir. */
static const char good_config[] =
    "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, \"use_rslora\": false,"
    " \"target_modules\": [\"q_proj\", \"down_proj\"], \"fan_in_fan_out\": false,"
    " \"modules_to_save\": null, \"use_dora\": false, \"rank_pattern\": {},"
    " \"alpha_pattern\": {}, \"bias\": \"none\", \"task_type\": \"CAUSAL_LM\"}";

static void set_tensor(tl_tensor *t, const char *name, int64_t rows, int64_t cols, float v0)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->dtype, sizeof t->dtype, "F32");
    t->n_dims = 2;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->nbytes = (size_t)(rows * cols) * 4;
    t->data = malloc(t->nbytes);
    for (int64_t i = 0; i < rows * cols; i++) {
        float x = v0 * (float)((i * 7919) % 23 - 11) / 11.0f;
        memcpy(t->data + i * 4, &x, 4);
    }
}

static void write_adapter(const char *dir)
{
    tl_tensor t[4];
    const char *p = "base_model.model.model.language_model.layers.";
    char name[256];
    snprintf(name, sizeof name, "%s0.self_attn.q_proj.lora_A.weight", p);
    set_tensor(&t[0], name, 2, 64, 0.05f);
    snprintf(name, sizeof name, "%s0.self_attn.q_proj.lora_B.weight", p);
    set_tensor(&t[1], name, 64, 2, 0.05f);
    snprintf(name, sizeof name, "%s1.mlp.down_proj.lora_A.weight", p);
    set_tensor(&t[2], name, 2, 128, 0.05f);
    snprintf(name, sizeof name, "%s1.mlp.down_proj.lora_B.weight", p);
    set_tensor(&t[3], name, 64, 2, 0.05f);
    char *path = tl_path(dir, "adapter_model.safetensors");
    tl_write_safetensors(path, t, 4, 0);
    free(path);
    for (int i = 0; i < 4; i++)
        free(t[i].data);
    tl_write_str(dir, "adapter_config.json", good_config);
}

Test(lora, add_lora_arguments)
{
    gemfa_model_options *o = NULL;
    cr_assert_eq(gemfa_model_options_new(&o), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_add_lora(NULL, "x", 1.0f), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_options_add_lora(o, NULL, 1.0f), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_options_add_lora(o, "", 1.0f), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_options_add_lora(o, "x", NAN), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_options_add_lora(o, "x", INFINITY), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_options_add_lora(o, "x", -INFINITY), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(o->n_lora, 0, "a refused adapter left the options changed");
    for (int i = 0; i < 64; i++)
        cr_assert_eq(gemfa_model_options_add_lora(o, "x", -0.5f), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_add_lora(o, "x", 1.0f), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(o->n_lora, 64);
    cr_assert_str_eq(o->lora[63].dir, "x");
    cr_assert_eq(o->lora[63].scale, -0.5);
    gemfa_model_options_free(o);
}

/* w += s·B·A for two pairs, against the product in double: the f32
 * accumulation over the rank keeps the error at a few ulps. */
Test(lora, merge_matches_double_formula_and_threads_agree)
{
    const int64_t rows = 37, cols = 53, r = 5;
    gf_st_tensor ta[2], tb[2];
    float *a[2], *b[2];
    for (int p = 0; p < 2; p++) {
        a[p] = malloc(sizeof(float) * (size_t)(r * cols));
        b[p] = malloc(sizeof(float) * (size_t)(rows * r));
        for (int64_t i = 0; i < r * cols; i++)
            a[p][i] = (float)sin((double)(i + 1) * (p + 1.3));
        for (int64_t i = 0; i < rows * r; i++)
            b[p][i] = (float)cos((double)(i + 2) * (p + 0.7));
        ta[p] = (gf_st_tensor){.dtype = GF_ST_F32, .n_dims = 2, .shape = {r, cols},
                               .n_elements = (uint64_t)(r * cols), .data = a[p]};
        tb[p] = (gf_st_tensor){.dtype = GF_ST_F32, .n_dims = 2, .shape = {rows, r},
                               .n_elements = (uint64_t)(rows * r), .data = b[p]};
    }
    gf_lora_pair pairs[2] = {{&ta[0], &tb[0], 0.75f, r, 0}, {&ta[1], &tb[1], -2.5f, r, 1}};
    gf_lora_target t = {.module = "m", .weight = "w", .pairs = pairs, .n_pairs = 2};
    float *w1 = malloc(sizeof(float) * (size_t)(rows * cols));
    float *w4 = malloc(sizeof(float) * (size_t)(rows * cols));
    for (int64_t i = 0; i < rows * cols; i++)
        w1[i] = w4[i] = (float)(i % 17) * 0.125f - 1.0f;
    double *want = malloc(sizeof(double) * (size_t)(rows * cols));
    for (int64_t i = 0; i < rows; i++)
        for (int64_t c = 0; c < cols; c++) {
            double v = w1[i * cols + c];
            for (int p = 0; p < 2; p++) {
                double d = 0;
                for (int64_t k = 0; k < r; k++)
                    d += (double)b[p][i * r + k] * a[p][k * cols + c];
                v += pairs[p].scale * d;
            }
            want[i * cols + c] = v;
        }
    cr_assert_eq(gf_lora_merge(&t, w1, rows, cols, 1), GEMFA_OK);
    /* work below the threading threshold runs on one thread: force threads
     * by calling with a big matrix's worth of rows is not needed here; the
     * threaded split is exercised by the 4-thread call on a larger copy */
    cr_assert_eq(gf_lora_merge(&t, w4, rows, cols, 4), GEMFA_OK);
    for (int64_t i = 0; i < rows * cols; i++) {
        cr_assert_eq(w1[i], w4[i]);
        cr_assert(fabs(w1[i] - want[i]) <= 1e-5 * (1 + fabs(want[i])), "%lld: %g vs %g",
                  (long long)i, (double)w1[i], want[i]);
    }
    free(want);
    free(w1);
    free(w4);
    for (int p = 0; p < 2; p++) {
        free(a[p]);
        free(b[p]);
    }
}

/* Big enough to be split over threads: 1 and 3 threads, same bits. */
Test(lora, merge_threads_same_bits)
{
    const int64_t rows = 1031, cols = 1024, r = 8;
    float *a = malloc(sizeof(float) * (size_t)(r * cols)), *b = malloc(sizeof(float) * (size_t)(rows * r));
    for (int64_t i = 0; i < r * cols; i++)
        a[i] = (float)sin((double)i);
    for (int64_t i = 0; i < rows * r; i++)
        b[i] = (float)cos((double)i * 0.37);
    gf_st_tensor ta = {.dtype = GF_ST_F32, .n_dims = 2, .shape = {r, cols},
                       .n_elements = (uint64_t)(r * cols), .data = a};
    gf_st_tensor tb = {.dtype = GF_ST_F32, .n_dims = 2, .shape = {rows, r},
                       .n_elements = (uint64_t)(rows * r), .data = b};
    gf_lora_pair pair = {&ta, &tb, 0.3f, r, 0};
    gf_lora_target t = {.module = "m", .weight = "w", .pairs = &pair, .n_pairs = 1};
    size_t n = (size_t)(rows * cols);
    float *w1 = calloc(n, sizeof *w1), *w3 = calloc(n, sizeof *w3);
    cr_assert_eq(gf_lora_merge(&t, w1, rows, cols, 1), GEMFA_OK);
    cr_assert_eq(gf_lora_merge(&t, w3, rows, cols, 3), GEMFA_OK);
    cr_assert_eq(memcmp(w1, w3, n * sizeof *w1), 0);
    free(w1);
    free(w3);
    free(a);
    free(b);
}

Test(lora, load_applies_and_counts)
{
    char *dir = tl_tmpdir();
    write_adapter(dir);
    gemfa_model_options *o = NULL;
    gemfa_model_options_new(&o);
    cr_assert_eq(gemfa_model_options_add_lora(o, dir, 1.0f), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_add_lora(o, dir, -1.0f), GEMFA_OK);
    gemfa_model *m = NULL;
    cr_assert_eq(gemfa_model_load(tl_tiny_dir(), o, &m), GEMFA_OK, "%s", gemfa_last_error());
    int64_t v = 0;
    cr_assert_eq(gemfa_model_get(m, GEMFA_PROP_LORA_ADAPTERS, &v), GEMFA_OK);
    cr_assert_eq(v, 2);
    cr_assert_eq(gemfa_model_get(m, GEMFA_PROP_LORA_MATRICES, &v), GEMFA_OK);
    cr_assert_eq(v, 2);
    /* +1 and -1 of the same adapter: q_proj back to the stored values,
     * up to the f32 rounding of W + d - d (the weights stay BF16: as stored) */
    gemfa_model *base = NULL;
    cr_assert_eq(gemfa_model_load(tl_tiny_dir(), NULL, &base), GEMFA_OK);
    cr_assert_eq(gemfa_model_get(base, GEMFA_PROP_LORA_ADAPTERS, &v), GEMFA_OK);
    cr_assert_eq(v, 0);
    const gf_matrix *q = &m->layers[0].q_proj, *q0 = &base->layers[0].q_proj;
    cr_assert_eq(q->dtype, q0->dtype);
    int q_owned = 0, k_owned = 0;
    for (size_t i = 0; i < m->n_owned; i++) {
        q_owned |= m->owned[i] == q->data;
        k_owned |= m->owned[i] == m->layers[0].k_proj.data;
    }
    cr_assert(q_owned, "a merged matrix leaves the mapping");
    cr_assert(!k_owned, "an untouched matrix stays mapped (zero copy)");
    cr_assert_eq(memcmp(q->data, q0->data, (size_t)(q->rows * q->cols) * 2), 0);
    gemfa_model_free(base);
    gemfa_model_free(m);
    /* vocabulary-only loads ignore adapters */
    gemfa_model_options_set_vocab_only(o, 1);
    cr_assert_eq(gemfa_model_load(tl_tiny_dir(), o, &m), GEMFA_OK, "%s", gemfa_last_error());
    gemfa_model_free(m);
    gemfa_model_options_free(o);
    tl_rmtree(dir);
}

Test(lora, failed_load_leaves_out_untouched)
{
    char *dir = tl_tmpdir();
    write_adapter(dir);
    tl_write_str(dir, "adapter_config.json", "{\"r\": 0}");
    gemfa_model_options *o = NULL;
    gemfa_model_options_new(&o);
    gemfa_model_options_add_lora(o, dir, 1.0f);
    gemfa_model *m = (gemfa_model *)0x1;
    cr_assert_eq(gemfa_model_load(tl_tiny_dir(), o, &m), GEMFA_ERR_CONFIG);
    cr_assert_eq(m, (gemfa_model *)0x1);
    cr_assert(strstr(gemfa_last_error(), "adapter_config.json"), "%s", gemfa_last_error());
    gemfa_model_options_free(o);
    tl_rmtree(dir);
}

/* Every allocation of a LoRA load failing in turn: OUT_OF_MEMORY, *out
 * untouched, nothing leaked (ASan). */
Test(lora, allocation_failures_are_clean)
{
    char *dir = tl_tmpdir();
    write_adapter(dir);
    gemfa_model_options *o = NULL;
    gemfa_model_options_new(&o);
    gemfa_model_options_set_weights(o, GEMFA_WEIGHTS_INT8);
    gemfa_model_options_add_lora(o, dir, 0.5f);
    int ok = 0;
    for (long n = 0; n < 1000000 && !ok; n += n < 400 ? 1 : 29) {
        gemfa_model *m = (gemfa_model *)0x1;
        gf_alloc_fail_after(n);
        gemfa_status st = gemfa_model_load(tl_tiny_dir(), o, &m);
        gf_alloc_fail_after(-1);
        if (st == GEMFA_OK) {
            ok = 1;
            gemfa_model_free(m);
        } else {
            cr_assert_eq(st, GEMFA_ERR_OUT_OF_MEMORY, "fail after %ld: %s: %s", n,
                         gemfa_status_name(st), gemfa_last_error());
            cr_assert_eq(m, (gemfa_model *)0x1);
        }
    }
    cr_assert(ok);
    gemfa_model_options_free(o);
    tl_rmtree(dir);
}

/* adapter_config.json with random byte edits, deletions and inserted JSON
 * fragments, read by gf_lora_open (no model needed): 1500 variants. */
Test(lora, fuzzed_config_parsing)
{
    char *dir = tl_tmpdir();
    write_adapter(dir);
    static const char *const junk[] = {"null", "0", "-1", "1e999", "\"", "[", "{", "}", "]",
                                       ",", "true", "\"q_proj\"", "\\u0000", "\xff",
                                       "99999999999999999999", "\"r\":", "[]", "{}", "NaN"};
    const size_t base_len = strlen(good_config);
    unsigned seed = 12345;
    int n_ok = 0;
    for (int it = 0; it < 1500; it++) {
        char buf[1024];
        size_t len = base_len;
        memcpy(buf, good_config, len);
        int edits = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 3;
        for (int e = 0; e < edits; e++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % (len + 1);
            int op = (int)((seed >> 4) % 3);
            if (op == 0 && pos < len) {
                buf[pos] = (char)(seed >> 20);
            } else if (op == 1 && pos < len) {
                size_t k = 1 + (seed >> 12) % 8;
                if (pos + k > len)
                    k = len - pos;
                memmove(buf + pos, buf + pos + k, len - pos - k);
                len -= k;
            } else {
                const char *j = junk[(seed >> 16) % (sizeof junk / sizeof junk[0])];
                size_t k = strlen(j);
                if (len + k < sizeof buf) {
                    memmove(buf + pos + k, buf + pos, len - pos);
                    memcpy(buf + pos, j, k);
                    len += k;
                }
            }
        }
        tl_write(dir, "adapter_config.json", buf, len);
        gf_lora_request req = {dir, 1.0};
        gf_lora_set *s = NULL;
        gemfa_status st = gf_lora_open(&req, 1, &s);
        cr_assert(st == GEMFA_OK || st == GEMFA_ERR_FORMAT || st == GEMFA_ERR_CONFIG ||
                      st == GEMFA_ERR_UNSUPPORTED || st == GEMFA_ERR_MODEL_MISMATCH,
                  "variant %d: %s: %s", it, gemfa_status_name(st), gemfa_last_error());
        if (st == GEMFA_OK) {
            n_ok++;
            cr_assert_not_null(s);
            cr_assert_eq(s->n_targets, 2);
            gf_lora_free(s);
        } else {
            cr_assert_null(s);
            cr_assert(strlen(gemfa_last_error()) > 0);
        }
    }
    cr_assert(n_ok > 0 && n_ok < 1500, "%d of 1500 variants loaded", n_ok);
    tl_rmtree(dir);
}

/* A session state saved on the base model does not load on a model with an
 * adapter, even one with scale 0 (same weights, different options), and
 * loads on a second load with the same adapter. */
static gemfa_status save_and_load(gemfa_model *from, gemfa_model *to)
{
    gemfa_context *c1 = NULL, *c2 = NULL;
    gemfa_session *s = NULL, *r = NULL;
    cr_assert_eq(gemfa_context_new(from, NULL, &c1), GEMFA_OK);
    cr_assert_eq(gemfa_session_new(c1, NULL, &s), GEMFA_OK);
    const int32_t ids[] = {2, 6, 475};
    cr_assert_eq(gemfa_decode(s, ids, 3, NULL), GEMFA_OK, "%s", gemfa_last_error());
    size_t len = 0;
    gemfa_session_save(s, NULL, 0, &len);
    void *buf = malloc(len);
    cr_assert_eq(gemfa_session_save(s, buf, len, &len), GEMFA_OK);
    cr_assert_eq(gemfa_context_new(to, NULL, &c2), GEMFA_OK);
    gemfa_status st = gemfa_session_load(c2, NULL, buf, len, &r);
    gemfa_session_free(r);
    gemfa_session_free(s);
    gemfa_context_free(c1);
    gemfa_context_free(c2);
    free(buf);
    return st;
}

Test(lora, session_state_needs_the_same_adapters)
{
    char *dir = tl_tmpdir();
    write_adapter(dir);
    gemfa_model_options *o = NULL;
    gemfa_model_options_new(&o);
    gemfa_model_options_add_lora(o, dir, 0.0f);
    gemfa_model *base = NULL, *l1 = NULL, *l2 = NULL;
    cr_assert_eq(gemfa_model_load(tl_tiny_dir(), NULL, &base), GEMFA_OK);
    cr_assert_eq(gemfa_model_load(tl_tiny_dir(), o, &l1), GEMFA_OK, "%s", gemfa_last_error());
    cr_assert_eq(gemfa_model_load(tl_tiny_dir(), o, &l2), GEMFA_OK);
    cr_assert_eq(save_and_load(base, l1), GEMFA_ERR_MODEL_MISMATCH);
    cr_assert_eq(save_and_load(l1, base), GEMFA_ERR_MODEL_MISMATCH);
    cr_assert_eq(save_and_load(l1, l2), GEMFA_OK, "%s", gemfa_last_error());
    gemfa_model_free(base);
    gemfa_model_free(l1);
    gemfa_model_free(l2);
    gemfa_model_options_free(o);
    tl_rmtree(dir);
}
