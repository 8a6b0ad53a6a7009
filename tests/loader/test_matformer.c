/* test_matformer.c — MatFormer sub-models on tests/data/tiny-gemma3n (25
 * layers, FFN 128, layers 20-24 share the KV caches of 18 and 19): a
 * derived sub-model computes the same logits as one loaded with the
 * option, in every weight type, whichever model is freed first; the whole
 * width is the whole model; derivation composes; the info queries; and a
 * table of hostile specs.  (Sub-model == reference on a checkpoint sliced
 * in numpy: tests/cli/test_matformer.py.) */
#include "reliability/rel_criterion.h" /* Criterion, or the stand-in under TSan */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "fixture.h"
#include "gemfa.h"
#include "loader/model.h" /* converting_load_*: what the loaded model bound */

static const int32_t PROMPT[] = {2, 17, 300, 45, 901, 5, 77, 12};
#define N_PROMPT (sizeof PROMPT / sizeof PROMPT[0])

static gemfa_model *load(gemfa_weight_type w, const char *spec)
{
    gemfa_model_options *o = NULL;
    cr_assert_eq(gemfa_model_options_new(&o), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_set_weights(o, w), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_set_matformer(o, spec), GEMFA_OK, "%s", gemfa_last_error());
    gemfa_model *m = NULL;
    gemfa_status st = gemfa_model_load(tl_tiny_dir(), o, &m);
    gemfa_model_options_free(o);
    cr_assert_eq(st, GEMFA_OK, "%s", gemfa_last_error());
    return m;
}

static gemfa_model *derive(const gemfa_model *base, const char *spec)
{
    gemfa_model *m = NULL;
    cr_assert_eq(gemfa_model_derive_submodel(base, spec, &m), GEMFA_OK, "%s: %s", spec,
                 gemfa_last_error());
    return m;
}

/* Every position's logits of PROMPT (caller frees). */
static float *logits_of(const gemfa_model *m, size_t *n_out)
{
    int64_t vocab = 0;
    cr_assert_eq(gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &vocab), GEMFA_OK);
    gemfa_context *ctx = NULL;
    gemfa_session *s = NULL;
    cr_assert_eq(gemfa_context_new(m, NULL, &ctx), GEMFA_OK, "%s", gemfa_last_error());
    cr_assert_eq(gemfa_session_new(ctx, NULL, &s), GEMFA_OK);
    size_t n = N_PROMPT * (size_t)vocab;
    float *out = malloc(n * sizeof *out);
    cr_assert_eq(gemfa_decode_all(s, PROMPT, N_PROMPT, out, n), GEMFA_OK, "%s",
                 gemfa_last_error());
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    *n_out = n;
    return out;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert(isfinite(a[i]) && isfinite(b[i]));
        double e = fabs((double)a[i] - (double)b[i]);
        d = e > d ? e : d;
    }
    return d;
}

static void same_logits(const gemfa_model *a, const gemfa_model *b, const char *what)
{
    size_t na, nb;
    float *la = logits_of(a, &na), *lb = logits_of(b, &nb);
    cr_assert_eq(na, nb);
    double d = max_diff(la, lb, na);
    cr_assert(d == 0.0, "%s: logits differ by %g", what, d);
    free(la);
    free(lb);
}

static void different_logits(const gemfa_model *a, const gemfa_model *b, const char *what)
{
    size_t na, nb;
    float *la = logits_of(a, &na), *lb = logits_of(b, &nb);
    cr_assert_eq(na, nb);
    cr_assert(max_diff(la, lb, na) > 1e-3, "%s: a sub-model should change the logits", what);
    free(la);
    free(lb);
}

static const char *SPEC = "ffn=64:skip=3,21";

static void derived_equals_option(gemfa_weight_type w)
{
    gemfa_model *base = load(w, NULL);
    gemfa_model *sub = derive(base, SPEC);
    gemfa_model *opt = load(w, SPEC);
    same_logits(sub, opt, "derived vs option");
    different_logits(sub, base, "sub vs full");
    gemfa_model_free(base); /* the sub-model keeps the weights alive */
    same_logits(sub, opt, "derived after freeing the base");
    gemfa_model_free(sub);
    gemfa_model_free(opt);
}

Test(matformer, derived_equals_option_bf16) { derived_equals_option(GEMFA_WEIGHTS_AUTO); }
Test(matformer, derived_equals_option_f32) { derived_equals_option(GEMFA_WEIGHTS_F32); }
Test(matformer, derived_equals_option_int8) { derived_equals_option(GEMFA_WEIGHTS_INT8); }
Test(matformer, derived_equals_option_q4) { derived_equals_option(GEMFA_WEIGHTS_Q4); }

/* A MatFormer load that converts (the fixture stores bf16) converts only
 * what the sub-model uses: the loaded model under it leaves the skipped
 * layers unbound and holds gate/up/down of narrowed layers at width 64 only
 * (converted straight from the strided source), so the load makes fewer
 * allocations than the whole model's; weights as stored stay in place, whole.
 * The counts and logits equal those of a sub-model derived from the whole
 * model (the numpy-sliced reference: tests/cli/test_matformer.py). */
static void converting_load_is_lean(gemfa_weight_type w, gf_dtype want)
{
    gf_alloc_fail_after(-1);
    gemfa_model *whole = load(w, NULL);
    const long n_whole = gf_alloc_fail_after(-1);
    gemfa_model *sub = load(w, SPEC);
    const long n_sub = gf_alloc_fail_after(-1);
    gemfa_model *derived = derive(whole, SPEC);
    const int converts = want != GF_DTYPE_BF16;
    if (converts)
        cr_assert(n_sub < n_whole, "sub-model load: %ld allocations, whole model: %ld", n_sub,
                  n_whole);
    const gemfa_model *root = sub->base;
    cr_assert_not_null(root);
    cr_assert_eq(root->hp.n_layers, 25);
    for (int l = 0; l < 25; l++) {
        const gf_layer *Ly = &root->layers[l];
        if (l == 3 || l == 21) {
            cr_assert_null(Ly->q_proj.data, "skipped layer %d was bound", l);
            cr_assert_null(Ly->gate_proj.data, "skipped layer %d was bound", l);
            cr_assert_null(Ly->input_norm, "skipped layer %d was bound", l);
            continue;
        }
        cr_assert_eq(Ly->gate_proj.dtype, want, "layer %d", l);
        cr_assert_eq(Ly->gate_proj.rows, converts ? 64 : 128, "layer %d gate", l);
        cr_assert_eq(Ly->up_proj.rows, converts ? 64 : 128, "layer %d up", l);
        cr_assert_eq(Ly->down_proj.cols, converts ? 64 : 128, "layer %d down", l);
        cr_assert_eq(sub->layers[l - (l > 3) - (l > 21)].down_proj.cols, 64);
    }
    int64_t a, b;
    const gemfa_model_prop props[] = {GEMFA_PROP_WEIGHT_BYTES, GEMFA_PROP_N_PARAMS,
                                      GEMFA_PROP_N_PARAMS_PLE, GEMFA_PROP_WEIGHT_TYPE,
                                      GEMFA_PROP_STORED_BYTES_BF16};
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++) {
        cr_assert_eq(gemfa_model_get(sub, props[i], &a), GEMFA_OK);
        cr_assert_eq(gemfa_model_get(derived, props[i], &b), GEMFA_OK);
        cr_assert_eq(a, b, "property %d: %lld loaded, %lld derived", (int)props[i],
                     (long long)a, (long long)b);
    }
    same_logits(sub, derived, "converting load == derived");
    gemfa_model_free(derived);
    gemfa_model_free(whole);
    gemfa_model_free(sub);
}

Test(matformer, converting_load_f32) { converting_load_is_lean(GEMFA_WEIGHTS_F32, GF_DTYPE_F32); }
Test(matformer, converting_load_f16) { converting_load_is_lean(GEMFA_WEIGHTS_F16, GF_DTYPE_F16); }
Test(matformer, converting_load_int8) { converting_load_is_lean(GEMFA_WEIGHTS_INT8, GF_DTYPE_Q8); }
Test(matformer, in_place_load_stays_whole)
{
    converting_load_is_lean(GEMFA_WEIGHTS_AUTO, GF_DTYPE_BF16);
}

Test(matformer, whole_width_is_whole_model)
{
    gemfa_model *base = load(GEMFA_WEIGHTS_F32, NULL);
    gemfa_model *same = derive(base, "ffn=128");
    same_logits(base, same, "ffn=128");
    gemfa_model_free(same);
    /* per-layer form, one entry per kept layer */
    char spec[512] = "ffn=";
    for (int l = 0; l < 25; l++)
        strcat(spec, l ? ",128" : "128");
    same = derive(base, spec);
    same_logits(base, same, spec);
    gemfa_model_free(same);
    gemfa_model_free(base);
}

Test(matformer, derivation_composes)
{
    gemfa_model *base = load(GEMFA_WEIGHTS_F32, NULL);
    gemfa_model *a = derive(base, "ffn=96");
    gemfa_model *ab = derive(a, SPEC); /* indices and widths relative to `a` */
    gemfa_model *direct = derive(base, SPEC);
    /* `keep` keeps a's widths, so it borrows a's down_proj copies */
    gemfa_model *keep = derive(a, "skip=3,21");
    gemfa_model *keep_direct = derive(base, "ffn=96:skip=3,21");
    gemfa_model_free(a); /* both stay valid: they hold references on `a` */
    gemfa_model_free(base);
    same_logits(ab, direct, "derived twice vs once");
    same_logits(keep, keep_direct, "borrowing a derived model's copies");
    int64_t v;
    cr_assert_eq(gemfa_model_get(keep, GEMFA_PROP_BASE_LAYERS, &v), GEMFA_OK);
    cr_assert_eq(v, 25);
    cr_assert_eq(gemfa_model_get(keep, GEMFA_PROP_SKIPPED_LAYERS, &v), GEMFA_OK);
    cr_assert_eq(v, 2);
    gemfa_model_free(direct);
    gemfa_model_free(ab);
    gemfa_model_free(keep_direct);
    gemfa_model_free(keep);
}

Test(matformer, queries)
{
    gemfa_model *base = load(GEMFA_WEIGHTS_AUTO, NULL);
    gemfa_model *sub = derive(base, SPEC);
    int64_t v;
    cr_assert_eq(gemfa_model_get(base, GEMFA_PROP_MATFORMER, &v), GEMFA_OK);
    cr_assert_eq(v, 0);
    cr_assert_eq(gemfa_model_get(sub, GEMFA_PROP_MATFORMER, &v), GEMFA_OK);
    cr_assert_eq(v, 1);
    cr_assert_eq(gemfa_model_get(sub, GEMFA_PROP_N_LAYERS, &v), GEMFA_OK);
    cr_assert_eq(v, 23);
    cr_assert_eq(gemfa_model_get(sub, GEMFA_PROP_BASE_LAYERS, &v), GEMFA_OK);
    cr_assert_eq(v, 25);
    cr_assert_eq(gemfa_model_get(sub, GEMFA_PROP_SKIPPED_LAYERS, &v), GEMFA_OK);
    cr_assert_eq(v, 2);
    cr_assert_eq(gemfa_model_get(sub, GEMFA_PROP_N_KV_SHARED_LAYERS, &v), GEMFA_OK);
    cr_assert_eq(v, 4, "layers 20, 22, 23, 24 stay KV-shared");
    int64_t wb_base, wb_sub;
    cr_assert_eq(gemfa_model_get(base, GEMFA_PROP_WEIGHT_BYTES, &wb_base), GEMFA_OK);
    cr_assert_eq(gemfa_model_get(sub, GEMFA_PROP_WEIGHT_BYTES, &wb_sub), GEMFA_OK);
    cr_assert(wb_sub < wb_base);
    cr_assert_str_eq(gemfa_model_matformer(sub), SPEC);
    cr_assert_null(gemfa_model_matformer(base));
    /* checkpoint layer of each sub-model layer; KV sources renumbered */
    const int expect_base[23] = {0,  1,  2,  4,  5,  6,  7,  8,  9,  10, 11, 12,
                                 13, 14, 15, 16, 17, 18, 19, 20, 22, 23, 24};
    for (int l = 0; l < 23; l++) {
        int b = -1, src = -1;
        int64_t width = 0;
        cr_assert_eq(gemfa_model_base_layer(sub, l, &b), GEMFA_OK);
        cr_assert_eq(b, expect_base[l], "layer %d", l);
        cr_assert_eq(gemfa_model_layer(sub, l, NULL, &src, &width, NULL), GEMFA_OK);
        cr_assert_eq(width, 64);
        int want = b < 20 ? l : (b % 5 == 4 ? 18 : 17); /* 19 -> 18, 18 -> 17 in the sub-model */
        cr_assert_eq(src, want, "layer %d (checkpoint %d): kv_source %d", l, b, src);
    }
    int b;
    cr_assert_eq(gemfa_model_base_layer(sub, 23, &b), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_base_layer(NULL, 0, &b), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_base_layer(base, 24, &b), GEMFA_OK);
    cr_assert_eq(b, 24);
    gemfa_model_free(sub);
    gemfa_model_free(base);
}

typedef struct hostile {
    const char *spec;
    gemfa_status want;
} hostile;

Test(matformer, hostile_specs)
{
    static char many[8192], all[256];
    strcpy(many, "ffn=");
    for (int i = 0; i < 600; i++)
        strcat(many, i ? ",64" : "64");
    strcpy(all, "skip=");
    for (int i = 0; i < 25; i++)
        sprintf(all + strlen(all), i ? ",%d" : "%d", i);
    const hostile table[] = {
        {"", GEMFA_ERR_INVALID_ARGUMENT},
        {"ffn=", GEMFA_ERR_INVALID_ARGUMENT},
        {"ffn=0", GEMFA_ERR_INVALID_ARGUMENT},
        {"ffn=129", GEMFA_ERR_INVALID_ARGUMENT},         /* above the layer's width */
        {"ffn=64,64", GEMFA_ERR_INVALID_ARGUMENT},       /* 2 widths for 25 layers */
        {"ffn=64:skip=3", GEMFA_OK},
        {"ffn=64,64:skip=3", GEMFA_ERR_INVALID_ARGUMENT},/* 2 widths for 24 kept */
        {"ffn=-1", GEMFA_ERR_INVALID_ARGUMENT},
        {"ffn=+64", GEMFA_ERR_INVALID_ARGUMENT},
        {"ffn= 64", GEMFA_ERR_INVALID_ARGUMENT},
        {"ffn=64 ", GEMFA_ERR_INVALID_ARGUMENT},
        {"ffn=64,", GEMFA_ERR_INVALID_ARGUMENT},
        {"ffn=,64", GEMFA_ERR_INVALID_ARGUMENT},
        {"ffn=64:", GEMFA_ERR_INVALID_ARGUMENT},
        {"ffn=64:skip=", GEMFA_ERR_INVALID_ARGUMENT},
        {"ffn=64:skip=1:skip=2", GEMFA_ERR_INVALID_ARGUMENT},
        {"ffn=64;skip=1", GEMFA_ERR_INVALID_ARGUMENT},
        {"skip=3:ffn=64", GEMFA_ERR_INVALID_ARGUMENT},
        {"ffn=99999999999999999999", GEMFA_ERR_INVALID_ARGUMENT},
        {"ffn=0x40", GEMFA_ERR_INVALID_ARGUMENT},
        {"ffn=64.0", GEMFA_ERR_INVALID_ARGUMENT},
        {"FFN=64", GEMFA_ERR_INVALID_ARGUMENT},
        {"skip=25", GEMFA_ERR_INVALID_ARGUMENT},         /* out of range */
        {"skip=3,3", GEMFA_ERR_INVALID_ARGUMENT},        /* repeated */
        {"skip=18", GEMFA_ERR_INVALID_ARGUMENT},         /* KV source of 20-23 */
        {"skip=19", GEMFA_ERR_INVALID_ARGUMENT},         /* KV source of 24 */
        {"skip=20,21,22,23,24", GEMFA_OK},               /* every shared layer: fine */
        {"skip=0,1,2", GEMFA_OK},
        {all, GEMFA_ERR_INVALID_ARGUMENT},
        {many, GEMFA_ERR_INVALID_ARGUMENT},              /* more than 512 entries */
        {"e2b", GEMFA_ERR_MODEL_MISMATCH},               /* not an E4B-shaped model */
        {"E2B", GEMFA_ERR_MODEL_MISMATCH},
        {"e2", GEMFA_ERR_INVALID_ARGUMENT},
        {"e4b", GEMFA_ERR_INVALID_ARGUMENT},
        {"garbage", GEMFA_ERR_INVALID_ARGUMENT},
        {"\x01\xff\xfe", GEMFA_ERR_INVALID_ARGUMENT},
        {"ffn=48", GEMFA_OK},                            /* any width in f32 */
        {"ffn=1", GEMFA_OK},
    };
    gemfa_model *base = load(GEMFA_WEIGHTS_F32, NULL);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        gemfa_model *sentinel = (gemfa_model *)&table[i], *out = sentinel;
        gemfa_status st = gemfa_model_derive_submodel(base, table[i].spec, &out);
        cr_assert_eq(st, table[i].want, "spec \"%.40s\": %s (%s)", table[i].spec,
                     gemfa_status_name(st), gemfa_last_error());
        if (st == GEMFA_OK) {
            gemfa_model_free(out);
            continue;
        }
        cr_assert_eq(out, sentinel, "a failed call leaves *out untouched");
        cr_assert(strstr(gemfa_last_error(), "matformer"), "message: %s", gemfa_last_error());
        /* the option accepts what parses and defers the model checks to load */
        gemfa_model_options *o = NULL;
        cr_assert_eq(gemfa_model_options_new(&o), GEMFA_OK);
        gemfa_status so = gemfa_model_options_set_matformer(o, table[i].spec);
        if (so == GEMFA_OK && table[i].spec[0]) {
            gemfa_model *m = sentinel;
            cr_assert_eq(gemfa_model_load(tl_tiny_dir(), o, &m), table[i].want, "%s",
                         table[i].spec);
            cr_assert_eq(m, sentinel);
        }
        gemfa_model_options_free(o);
    }
    gemfa_model_free(base);
}

Test(matformer, int8_widths)
{
    gemfa_model *base = load(GEMFA_WEIGHTS_INT8, NULL), *out = NULL;
    cr_assert_eq(gemfa_model_derive_submodel(base, "ffn=48", &out), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(gemfa_last_error(), "multiple of 32"), "%s", gemfa_last_error());
    cr_assert_eq(gemfa_model_derive_submodel(base, "ffn=96", &out), GEMFA_OK);
    gemfa_model_free(out);
    gemfa_model_free(base);
}

Test(matformer, arguments_and_options)
{
    gemfa_model *base = load(GEMFA_WEIGHTS_AUTO, NULL), *out = NULL;
    cr_assert_eq(gemfa_model_derive_submodel(NULL, "ffn=64", &out), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_derive_submodel(base, NULL, &out), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_derive_submodel(base, "ffn=64", NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_options_set_matformer(NULL, "ffn=64"), GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_model_free(base);

    /* a rejected spec leaves the option as it was; NULL / "" clear it */
    gemfa_model_options *o = NULL;
    cr_assert_eq(gemfa_model_options_new(&o), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_set_matformer(o, "ffn=64"), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_set_matformer(o, "ffn=x"), GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_model *m = NULL;
    cr_assert_eq(gemfa_model_load(tl_tiny_dir(), o, &m), GEMFA_OK);
    cr_assert_str_eq(gemfa_model_matformer(m), "ffn=64");
    gemfa_model_free(m);
    cr_assert_eq(gemfa_model_options_set_matformer(o, ""), GEMFA_OK);
    cr_assert_eq(gemfa_model_load(tl_tiny_dir(), o, &m), GEMFA_OK);
    cr_assert_null(gemfa_model_matformer(m));
    gemfa_model_free(m);

    /* vocabulary-only: no weights to slice */
    cr_assert_eq(gemfa_model_options_set_matformer(o, "ffn=64"), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_set_vocab_only(o, 1), GEMFA_OK);
    m = NULL;
    cr_assert_eq(gemfa_model_load(tl_tiny_dir(), o, &m), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_null(m);
    cr_assert_eq(gemfa_model_options_set_matformer(o, NULL), GEMFA_OK);
    cr_assert_eq(gemfa_model_load(tl_tiny_dir(), o, &m), GEMFA_OK);
    cr_assert_eq(gemfa_model_derive_submodel(m, "ffn=64", &out), GEMFA_ERR_NO_WEIGHTS);
    gemfa_model_free(m);
    gemfa_model_options_free(o);
}

/* Every allocation of a derivation failing in turn: OUT_OF_MEMORY, *out
 * untouched, the base intact (ASan/LSan runs catch leaks). */
static void derive_under_alloc_failure(gemfa_weight_type w)
{
    gemfa_model *base = load(w, NULL);
    int ok = 0;
    for (long n = 0; n < 100000 && !ok; n++) {
        gemfa_model *m = (gemfa_model *)0x1;
        gf_alloc_fail_after(n);
        gemfa_status st = gemfa_model_derive_submodel(base, SPEC, &m);
        gf_alloc_fail_after(-1);
        if (st == GEMFA_OK) {
            ok = 1;
            gemfa_model *again = derive(base, SPEC);
            same_logits(m, again, "after the failures");
            gemfa_model_free(again);
            gemfa_model_free(m);
        } else {
            cr_assert_eq(st, GEMFA_ERR_OUT_OF_MEMORY, "fail after %ld: %s", n, gemfa_last_error());
            cr_assert_eq(m, (gemfa_model *)0x1);
        }
    }
    cr_assert(ok);
    gemfa_model_free(base);
}

Test(matformer, alloc_failure_bf16) { derive_under_alloc_failure(GEMFA_WEIGHTS_AUTO); }
Test(matformer, alloc_failure_int8) { derive_under_alloc_failure(GEMFA_WEIGHTS_INT8); }

/* A saved session belongs to its sub-model: same spec loads, another skip
 * set with the same widths and layer count, or the whole model, does not. */
static gemfa_status load_state_into(const gemfa_model *m, const void *buf, size_t len)
{
    gemfa_context *ctx = NULL;
    gemfa_session *s = NULL;
    cr_assert_eq(gemfa_context_new(m, NULL, &ctx), GEMFA_OK);
    gemfa_status st = gemfa_session_load(ctx, NULL, buf, len, &s);
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    return st;
}

Test(matformer, saved_sessions)
{
    gemfa_model *base = load(GEMFA_WEIGHTS_AUTO, NULL);
    gemfa_model *a = derive(base, "ffn=64:skip=3,21");
    gemfa_model *a2 = derive(base, "ffn=64:skip=3,21");
    gemfa_model *b = derive(base, "ffn=64:skip=2,21"); /* same shape, other layers */
    gemfa_context *ctx = NULL;
    gemfa_session *s = NULL;
    cr_assert_eq(gemfa_context_new(a, NULL, &ctx), GEMFA_OK);
    cr_assert_eq(gemfa_session_new(ctx, NULL, &s), GEMFA_OK);
    cr_assert_eq(gemfa_decode(s, PROMPT, N_PROMPT, NULL), GEMFA_OK);
    size_t len = 0;
    gemfa_session_save(s, NULL, 0, &len); /* size query */
    void *buf = malloc(len);
    cr_assert_eq(gemfa_session_save(s, buf, len, &len), GEMFA_OK, "%s", gemfa_last_error());
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    cr_assert_eq(load_state_into(a2, buf, len), GEMFA_OK, "%s", gemfa_last_error());
    cr_assert_eq(load_state_into(b, buf, len), GEMFA_ERR_MODEL_MISMATCH);
    cr_assert_eq(load_state_into(base, buf, len), GEMFA_ERR_MODEL_MISMATCH);
    free(buf);
    gemfa_model_free(a);
    gemfa_model_free(a2);
    gemfa_model_free(b);
    gemfa_model_free(base);
}

/* Sub-models made and freed from many threads at once, the base freed while
 * they live: the reference counts are atomic. */
#define N_THREADS 4
static gemfa_model *g_base;
static gemfa_model *g_subs[N_THREADS];

static void *derive_thread(void *arg)
{
    const intptr_t i = (intptr_t)arg;
    for (int k = 0; k < 20; k++) {
        gemfa_model *m = NULL;
        if (gemfa_model_derive_submodel(g_base, k % 2 ? "ffn=64" : "skip=3", &m) != GEMFA_OK)
            return (void *)1;
        gemfa_model_free(m);
    }
    return gemfa_model_derive_submodel(g_base, SPEC, &g_subs[i]) == GEMFA_OK ? NULL : (void *)1;
}

static void *free_thread(void *arg)
{
    gemfa_model_free(g_subs[(intptr_t)arg]);
    return NULL;
}

Test(matformer, threads)
{
    g_base = load(GEMFA_WEIGHTS_AUTO, NULL);
    pthread_t t[N_THREADS];
    for (intptr_t i = 0; i < N_THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, derive_thread, (void *)i), 0);
    for (int i = 0; i < N_THREADS; i++) {
        void *r = NULL;
        pthread_join(t[i], &r);
        cr_assert_null(r);
    }
    gemfa_model *check = derive(g_base, SPEC);
    gemfa_model_free(g_base); /* the sub-models keep it */
    same_logits(g_subs[0], check, "after concurrent derivation");
    for (intptr_t i = 0; i < N_THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, free_thread, (void *)i), 0);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(t[i], NULL);
    gemfa_model_free(check);
}
