/* test_model.c — loading tests/data/tiny-gemma3n: every tensor bound with
 * the config's shape, hparams equal to config.json, KV sharing per spec §5,
 * values in every weight type against the stored ones (read independently
 * of the loader), info queries, options, progress/cancel, allocation
 * failures. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json.h"
#include "fixture.h"
#include "gemfa.h"
#include "kernels/linear.h"
#include "kernels/q4_format.h"
#include "kernels/q8_format.h"
#include "kernels/weights.h"
#include "loader/model.h"
#include "loader/safetensors.h"

#define PREFIX "model.language_model."

/* All tensors of the tiny checkpoint plus its config, read without the loader. */
typedef struct ref {
    tl_tensor *t;
    size_t n;
    gf_json *config;
    const gf_json *tc;
} ref;

static ref load_ref(void)
{
    ref r = {0};
    const char *dir = tl_tiny_dir();
    const char *shards[] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    for (int s = 0; s < 2; s++) {
        char *p = tl_path(dir, shards[s]);
        size_t n;
        tl_tensor *t = tl_read_tensors(p, &n);
        r.t = realloc(r.t, (r.n + n) * sizeof *r.t);
        memcpy(r.t + r.n, t, n * sizeof *t);
        r.n += n;
        free(t);
        free(p);
    }
    char *cp = tl_path(dir, "config.json");
    size_t len;
    char *text = tl_read(cp, &len);
    cr_assert_eq(gf_json_parse(text, len, "config.json", &r.config), GEMFA_OK);
    r.tc = gf_json_get(r.config, "text_config");
    free(text);
    free(cp);
    return r;
}

static void free_ref(ref *r)
{
    tl_free_tensors(r->t, r->n);
    gf_json_free(r->config);
}

static int64_t cfg_int(const ref *r, const char *key)
{
    int64_t v = -1;
    cr_assert(gf_json_as_int(gf_json_get(r->tc, key), &v), "config key %s", key);
    return v;
}

static gemfa_model *load_with(const char *dir, gemfa_weight_type type, int threads)
{
    gemfa_model_options *o = NULL;
    cr_assert_eq(gemfa_model_options_new(&o), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_set_weights(o, type), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_set_threads(o, threads), GEMFA_OK);
    gemfa_model *m = NULL;
    gemfa_status st = gemfa_model_load(dir, o, &m);
    cr_assert_eq(st, GEMFA_OK, "%s: %s", gemfa_status_name(st), gemfa_last_error());
    gemfa_model_options_free(o);
    return m;
}

static const tl_tensor *ref_tensor(const ref *r, const char *fmt, int layer)
{
    char name[256];
    snprintf(name, sizeof name, fmt, layer);
    const tl_tensor *t = tl_find(r->t, r->n, name);
    cr_assert_not_null(t, "reference has no %s", name);
    return t;
}

/* ------------------------------------------------------------ binding */

static void expect_shape(const gf_matrix *m, const tl_tensor *t, const char *what)
{
    cr_assert_eq(t->n_dims, 2, "%s", what);
    cr_assert_eq(m->rows, t->shape[0], "%s rows %lld vs %lld", what, (long long)m->rows,
                 (long long)t->shape[0]);
    cr_assert_eq(m->cols, t->shape[1], "%s cols", what);
    cr_assert_not_null(m->data, "%s not bound", what);
}

/* The matrices of one layer with their tensor names, for table-driven checks. */
typedef struct mat_ref {
    const char *fmt;
    size_t offset; /* of the gf_matrix in gf_layer */
} mat_ref;

static const mat_ref layer_mats[] = {
    {PREFIX "layers.%d.self_attn.q_proj.weight", offsetof(gf_layer, q_proj)},
    {PREFIX "layers.%d.self_attn.k_proj.weight", offsetof(gf_layer, k_proj)},
    {PREFIX "layers.%d.self_attn.v_proj.weight", offsetof(gf_layer, v_proj)},
    {PREFIX "layers.%d.self_attn.o_proj.weight", offsetof(gf_layer, o_proj)},
    {PREFIX "layers.%d.mlp.gate_proj.weight", offsetof(gf_layer, gate_proj)},
    {PREFIX "layers.%d.mlp.up_proj.weight", offsetof(gf_layer, up_proj)},
    {PREFIX "layers.%d.mlp.down_proj.weight", offsetof(gf_layer, down_proj)},
    {PREFIX "layers.%d.altup.modality_router.weight", offsetof(gf_layer, altup_router)},
    {PREFIX "layers.%d.laurel.linear_left.weight", offsetof(gf_layer, laurel_left)},
    {PREFIX "layers.%d.laurel.linear_right.weight", offsetof(gf_layer, laurel_right)},
    {PREFIX "layers.%d.per_layer_input_gate.weight", offsetof(gf_layer, ple_gate)},
    {PREFIX "layers.%d.per_layer_projection.weight", offsetof(gf_layer, ple_proj)},
};

typedef struct vec_ref {
    const char *fmt;
    size_t offset; /* of the const float * in gf_layer */
} vec_ref;

static const vec_ref layer_vecs[] = {
    {PREFIX "layers.%d.self_attn.q_norm.weight", offsetof(gf_layer, q_norm)},
    {PREFIX "layers.%d.self_attn.k_norm.weight", offsetof(gf_layer, k_norm)},
    {PREFIX "layers.%d.input_layernorm.weight", offsetof(gf_layer, input_norm)},
    {PREFIX "layers.%d.post_attention_layernorm.weight", offsetof(gf_layer, post_attn_norm)},
    {PREFIX "layers.%d.pre_feedforward_layernorm.weight", offsetof(gf_layer, pre_ffn_norm)},
    {PREFIX "layers.%d.post_feedforward_layernorm.weight", offsetof(gf_layer, post_ffn_norm)},
    {PREFIX "layers.%d.altup.correct_output_scale", offsetof(gf_layer, altup_correct_output_scale)},
    {PREFIX "layers.%d.altup.correction_coefs.weight", offsetof(gf_layer, altup_correction_coefs)},
    {PREFIX "layers.%d.altup.prediction_coefs.weight", offsetof(gf_layer, altup_prediction_coefs)},
    {PREFIX "layers.%d.altup.router_norm.weight", offsetof(gf_layer, altup_router_norm)},
    {PREFIX "layers.%d.laurel.post_laurel_norm.weight", offsetof(gf_layer, post_laurel_norm)},
    {PREFIX "layers.%d.post_per_layer_input_norm.weight", offsetof(gf_layer, post_ple_norm)},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int is_shared_kv(const gemfa_model *m, int l, const char *fmt)
{
    return m->hp.kv_source[l] != l &&
           (strstr(fmt, "k_proj") || strstr(fmt, "v_proj") || strstr(fmt, "k_norm"));
}

static int in_mapping(const gemfa_model *m, const void *p)
{
    for (size_t i = 0; i < m->shards->n_files; i++) {
        const uint8_t *b = m->shards->files[i].map;
        if ((const uint8_t *)p >= b && (const uint8_t *)p < b + m->shards->files[i].size)
            return 1;
    }
    return 0;
}

Test(model, tiny_binds_every_tensor_with_its_shape)
{
    ref r = load_ref();
    gemfa_model *m = load_with(tl_tiny_dir(), GEMFA_WEIGHTS_AUTO, 0);
    char name[256];
    for (int l = 0; l < m->hp.n_layers; l++) {
        const gf_layer *ly = &m->layers[l];
        for (size_t i = 0; i < N_OF(layer_mats); i++) {
            const gf_matrix *mat = (const gf_matrix *)((const char *)ly + layer_mats[i].offset);
            const tl_tensor *t = ref_tensor(&r, layer_mats[i].fmt, l);
            snprintf(name, sizeof name, layer_mats[i].fmt, l);
            if (is_shared_kv(m, l, layer_mats[i].fmt)) {
                /* KV-shared layers: checked, not bound (model.h) */
                cr_assert_null(mat->data, "%s should not be bound", name);
                cr_assert_eq(mat->rows, t->shape[0]);
                continue;
            }
            expect_shape(mat, t, name);
            /* AUTO: bf16 used in place, zero copy */
            cr_assert_eq(mat->dtype, GF_DTYPE_BF16, "%s", name);
            cr_assert(in_mapping(m, mat->data), "%s is not mapped in place", name);
            cr_assert_eq(memcmp(mat->data, t->data, t->nbytes), 0, "%s bytes differ", name);
        }
        for (size_t i = 0; i < N_OF(layer_vecs); i++) {
            const float *v = *(const float *const *)((const char *)ly + layer_vecs[i].offset);
            const tl_tensor *t = ref_tensor(&r, layer_vecs[i].fmt, l);
            snprintf(name, sizeof name, layer_vecs[i].fmt, l);
            if (!v && is_shared_kv(m, l, layer_vecs[i].fmt))
                continue;
            cr_assert_not_null(v, "%s not bound", name);
            size_t n = t->nbytes / 2;
            for (size_t k = 0; k < n; k++)
                cr_assert_eq(v[k], tl_value(t, k), "%s[%zu]", name, k);
        }
    }
    /* globals */
    const tl_tensor *emb = tl_find(r.t, r.n, PREFIX "embed_tokens.weight");
    expect_shape(&m->embed_tokens, emb, "embed_tokens");
    cr_assert(m->lm_head_tied);
    cr_assert_eq(m->lm_head.data, m->embed_tokens.data);
    expect_shape(&m->embed_per_layer, tl_find(r.t, r.n, PREFIX "embed_tokens_per_layer.weight"),
                 "embed_tokens_per_layer");
    cr_assert(in_mapping(m, m->embed_per_layer.data));
    expect_shape(&m->per_layer_model_proj,
                 tl_find(r.t, r.n, PREFIX "per_layer_model_projection.weight"), "plmp");
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, PREFIX "altup_projections.%d.weight", k);
        expect_shape(&m->altup_proj[k], tl_find(r.t, r.n, name), name);
        snprintf(name, sizeof name, PREFIX "altup_unembed_projections.%d.weight", k);
        expect_shape(&m->altup_unembed[k], tl_find(r.t, r.n, name), name);
    }
    cr_assert_null(m->altup_proj[3].data); /* K = 4: three projections */
    const tl_tensor *fn = tl_find(r.t, r.n, PREFIX "norm.weight");
    for (int k = 0; k < 64; k++)
        cr_assert_eq(m->final_norm[k], tl_value(fn, (size_t)k));
    const tl_tensor *pn = tl_find(r.t, r.n, PREFIX "per_layer_projection_norm.weight");
    for (int k = 0; k < 8; k++)
        cr_assert_eq(m->per_layer_proj_norm[k], tl_value(pn, (size_t)k));
    /* multimodal embedders */
    cr_assert(m->embed_vision.present);
    expect_shape(&m->embed_vision.embedding, tl_find(r.t, r.n, "model.embed_vision.embedding.weight"),
                 "embed_vision");
    expect_shape(&m->embed_vision.projection,
                 tl_find(r.t, r.n, "model.embed_vision.embedding_projection.weight"), "proj");
    cr_assert_not_null(m->embed_vision.hard_norm);
    cr_assert(m->embed_audio.present);
    expect_shape(&m->embed_audio.embedding, tl_find(r.t, r.n, "model.embed_audio.embedding.weight"),
                 "embed_audio");
    cr_assert_str_eq(m->tensor_prefix, PREFIX);
    cr_assert_eq(m->weight_type, GEMFA_WEIGHTS_BF16); /* AUTO resolves to what is stored */
    gemfa_model_free(m);
    free_ref(&r);
}

Test(model, hparams_equal_the_config)
{
    ref r = load_ref();
    gemfa_model *m = load_with(tl_tiny_dir(), GEMFA_WEIGHTS_AUTO, 1);
    const gf_hparams *hp = &m->hp;
    cr_assert_eq(hp->hidden_size, cfg_int(&r, "hidden_size"));
    cr_assert_eq(hp->n_layers, cfg_int(&r, "num_hidden_layers"));
    cr_assert_eq(hp->n_heads, cfg_int(&r, "num_attention_heads"));
    cr_assert_eq(hp->n_kv_heads, cfg_int(&r, "num_key_value_heads"));
    cr_assert_eq(hp->head_dim, cfg_int(&r, "head_dim"));
    cr_assert_eq(hp->vocab_size, cfg_int(&r, "vocab_size"));
    cr_assert_eq(hp->vocab_size_ple, cfg_int(&r, "vocab_size_per_layer_input"));
    cr_assert_eq(hp->ple_dim, cfg_int(&r, "hidden_size_per_layer_input"));
    cr_assert_eq(hp->sliding_window, cfg_int(&r, "sliding_window"));
    cr_assert_eq(hp->n_kv_shared_layers, cfg_int(&r, "num_kv_shared_layers"));
    cr_assert_eq(hp->max_position_embeddings, cfg_int(&r, "max_position_embeddings"));
    cr_assert_eq(hp->altup_num_inputs, cfg_int(&r, "altup_num_inputs"));
    cr_assert_eq(hp->altup_active_idx, cfg_int(&r, "altup_active_idx"));
    cr_assert_eq(hp->laurel_rank, cfg_int(&r, "laurel_rank"));
    double d;
    cr_assert(gf_json_as_double(gf_json_get(r.tc, "rms_norm_eps"), &d));
    cr_assert_eq(hp->rms_norm_eps, (float)d);
    cr_assert(gf_json_as_double(gf_json_get(r.tc, "rope_theta"), &d));
    cr_assert_eq(hp->rope_theta_global, (float)d);
    cr_assert(gf_json_as_double(gf_json_get(r.tc, "rope_local_base_freq"), &d));
    cr_assert_eq(hp->rope_theta_local, (float)d);
    cr_assert(gf_json_as_double(gf_json_get(r.tc, "final_logit_softcapping"), &d));
    cr_assert_eq(hp->final_logit_softcapping, (float)d);
    cr_assert(gf_json_as_double(gf_json_get(r.tc, "altup_coef_clip"), &d));
    cr_assert_eq(hp->altup_coef_clip, (float)d);
    cr_assert_eq(hp->altup_correct_scale, 1);
    cr_assert(hp->nested);
    const gf_json *ffn = gf_json_get(r.tc, "intermediate_size");
    const gf_json *sp = gf_json_get(r.tc, "activation_sparsity_pattern");
    const gf_json *lt = gf_json_get(r.tc, "layer_types");
    for (int l = 0; l < hp->n_layers; l++) {
        cr_assert_eq(hp->ffn_width[l], ffn->items[l]->integer);
        cr_assert_eq(hp->sparsity[l], (float)sp->items[l]->number);
        cr_assert_eq(hp->is_sliding[l], !strcmp(lt->items[l]->str, "sliding_attention"));
    }
    cr_assert_eq(hp->bos_id, cfg_int(&r, "bos_token_id"));
    cr_assert_eq(hp->pad_id, cfg_int(&r, "pad_token_id"));
    cr_assert_eq(hp->eos_id, cfg_int(&r, "eos_token_id"));
    /* vision range starts at vocab_offset 1022 with 16 ids, 32 wide */
    cr_assert(hp->vision.present);
    cr_assert_eq(hp->vision.vocab_offset, 1022);
    cr_assert_eq(hp->vision.vocab_size, 16);
    cr_assert_eq(hp->vision.hidden_size, 32);
    cr_assert_eq(hp->audio.vocab_offset, 1038);
    gemfa_model_free(m);
    free_ref(&r);
}

Test(model, kv_source_follows_spec_section_5)
{
    gemfa_model *m = load_with(tl_tiny_dir(), GEMFA_WEIGHTS_AUTO, 1);
    for (int l = 0; l < 20; l++)
        cr_assert_eq(m->hp.kv_source[l], l);
    for (int l = 20; l < 24; l++)
        cr_assert_eq(m->hp.kv_source[l], 18, "layer %d", l);
    cr_assert_eq(m->hp.kv_source[24], 19);
    /* and through the public call */
    gemfa_layer_type type;
    int src;
    int64_t ffn;
    float sparsity;
    cr_assert_eq(gemfa_model_layer(m, 22, &type, &src, &ffn, &sparsity), GEMFA_OK);
    cr_assert_eq(type, GEMFA_LAYER_SLIDING);
    cr_assert_eq(src, 18);
    cr_assert_eq(ffn, 128);
    cr_assert_eq(sparsity, 0.0f);
    cr_assert_eq(gemfa_model_layer(m, 24, &type, &src, NULL, NULL), GEMFA_OK);
    cr_assert_eq(type, GEMFA_LAYER_FULL);
    cr_assert_eq(src, 19);
    cr_assert_eq(gemfa_model_layer(m, 3, NULL, NULL, NULL, &sparsity), GEMFA_OK);
    cr_assert_float_eq(sparsity, 0.95f, 1e-7);
    cr_assert_eq(gemfa_model_layer(m, 25, &type, NULL, NULL, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_layer(m, -1, &type, NULL, NULL, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_layer(NULL, 0, &type, NULL, NULL, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_model_free(m);
}

/* ------------------------------------------------------ values by type */

/* Largest allowed |bound - stored| for one element, given the weight type
 * and the stored values of its Q8 block. */
/* A compare rather than fmax: aarch64 GCC 12's vectoriser crashes on this
 * fmax reduction (internal compiler error in vect_transform_reduction). */
static double block_amax(const float *block, int n)
{
    double amax = 0;
    for (int i = 0; i < n; i++) {
        const double a = fabs((double)block[i]);
        amax = a > amax ? a : amax;
    }
    return amax;
}

static double tolerance(gf_dtype dtype, double x, const float *block)
{
    switch (dtype) {
    case GF_DTYPE_F32:
    case GF_DTYPE_BF16: return 0.0; /* bf16 -> f32 / bf16 is exact */
    case GF_DTYPE_F16: return fmax(fabs(x) * ldexp(1.0, -11), ldexp(1.0, -25));
    case GF_DTYPE_Q8: {
        double d = block_amax(block, GF_Q8_BLOCK) / 127.0, d16 = gf_f16_to_f32(gf_f32_to_f16((float)d));
        return 0.5 * d + 127.0 * fabs(d16 - d) + 1e-12;
    }
    case GF_DTYPE_Q4: {
        /* the block's squared error is at most Q4_0's, whose elements are
         * each within d/2 + 8 |d16 - d| (d = amax / 8): so each element is
         * within sqrt(32) times that */
        double d = block_amax(block, GF_Q4_BLOCK) / 8.0, d16 = gf_f16_to_f32(gf_f32_to_f16((float)d));
        return sqrt(32.0) * (0.5 * d + 8.0 * fabs(d16 - d)) + 1e-12;
    }
    }
    return 0;
}

/* Compares every element of a bound matrix with the stored tensor. */
static void compare_matrix(const gf_matrix *mat, const tl_tensor *t, gf_dtype want,
                           const char *name)
{
    cr_assert_eq(mat->dtype, want, "%s: dtype %d, want %d", name, mat->dtype, want);
    int64_t rows = mat->rows, cols = mat->cols;
    float *row = malloc((size_t)cols * sizeof *row), *stored = malloc((size_t)cols * sizeof *row);
    for (int64_t r = 0; r < rows; r++) {
        gf_matrix_row_f32(mat, r, row);
        for (int64_t c = 0; c < cols; c++)
            stored[c] = tl_value(t, (size_t)(r * cols + c));
        for (int64_t c = 0; c < cols; c++) {
            const float *block = stored + (c / GF_Q8_BLOCK) * GF_Q8_BLOCK;
            double tol = tolerance(mat->dtype, stored[c], block);
            cr_assert(fabs((double)row[c] - stored[c]) <= tol,
                      "%s[%lld][%lld]: %.9g vs stored %.9g (tolerance %.3g)", name, (long long)r,
                      (long long)c, row[c], stored[c], tol);
        }
    }
    if (mat->dtype == GF_DTYPE_Q8)
        cr_assert_not_null(mat->scales);
    free(row);
    free(stored);
}

static gf_dtype expected_dtype(gemfa_weight_type type, int64_t cols)
{
    switch (type) {
    case GEMFA_WEIGHTS_F32: return GF_DTYPE_F32;
    case GEMFA_WEIGHTS_F16: return GF_DTYPE_F16;
    case GEMFA_WEIGHTS_INT8: return cols % 32 == 0 ? GF_DTYPE_Q8 : GF_DTYPE_BF16;
    default: return GF_DTYPE_BF16;
    }
}

static void check_type(gemfa_weight_type type)
{
    ref r = load_ref();
    gemfa_model *m = load_with(tl_tiny_dir(), type, 2);
    char name[256];
    for (int l = 0; l < m->hp.n_layers; l++)
        for (size_t i = 0; i < N_OF(layer_mats); i++) {
            if (is_shared_kv(m, l, layer_mats[i].fmt))
                continue;
            const gf_matrix *mat =
                (const gf_matrix *)((const char *)&m->layers[l] + layer_mats[i].offset);
            snprintf(name, sizeof name, layer_mats[i].fmt, l);
            compare_matrix(mat, ref_tensor(&r, layer_mats[i].fmt, l),
                           expected_dtype(type, mat->cols), name);
        }
    const tl_tensor *emb = tl_find(r.t, r.n, PREFIX "embed_tokens.weight");
    /* embed_tokens: as stored except F32 and INT8 */
    gf_dtype emb_want = type == GEMFA_WEIGHTS_F32    ? GF_DTYPE_F32
                        : type == GEMFA_WEIGHTS_INT8 ? GF_DTYPE_Q8
                                                     : GF_DTYPE_BF16;
    compare_matrix(&m->embed_tokens, emb, emb_want, "embed_tokens");
    cr_assert_eq(m->lm_head.data, m->embed_tokens.data);
    /* the per-layer table is never converted */
    compare_matrix(&m->embed_per_layer, tl_find(r.t, r.n, PREFIX "embed_tokens_per_layer.weight"),
                   GF_DTYPE_BF16, "embed_tokens_per_layer");
    cr_assert(in_mapping(m, m->embed_per_layer.data));
    compare_matrix(&m->per_layer_model_proj,
                   tl_find(r.t, r.n, PREFIX "per_layer_model_projection.weight"),
                   expected_dtype(type, 64), "per_layer_model_projection");
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, PREFIX "altup_unembed_projections.%d.weight", k);
        compare_matrix(&m->altup_unembed[k], tl_find(r.t, r.n, name), expected_dtype(type, 64),
                       name);
    }
    compare_matrix(&m->embed_audio.projection,
                   tl_find(r.t, r.n, "model.embed_audio.embedding_projection.weight"),
                   expected_dtype(type, 48), "embed_audio.embedding_projection");
    /* vectors are f32 copies in every mode */
    for (size_t i = 0; i < N_OF(layer_vecs); i++) {
        const float *v = *(const float *const *)((const char *)&m->layers[7] + layer_vecs[i].offset);
        const tl_tensor *t = ref_tensor(&r, layer_vecs[i].fmt, 7);
        for (size_t k = 0; k < t->nbytes / 2; k++)
            cr_assert_eq(v[k], tl_value(t, k));
    }
    int64_t wt;
    cr_assert_eq(gemfa_model_get(m, GEMFA_PROP_WEIGHT_TYPE, &wt), GEMFA_OK);
    cr_assert_eq(wt, type == GEMFA_WEIGHTS_AUTO ? GEMFA_WEIGHTS_BF16 : type);
    gemfa_model_free(m);
    free_ref(&r);
}

Test(values, auto_is_exact) { check_type(GEMFA_WEIGHTS_AUTO); }
Test(values, f32_is_exact) { check_type(GEMFA_WEIGHTS_F32); }
Test(values, bf16_is_exact) { check_type(GEMFA_WEIGHTS_BF16); }
Test(values, f16_within_half_precision) { check_type(GEMFA_WEIGHTS_F16); }
Test(values, int8_within_half_a_step) { check_type(GEMFA_WEIGHTS_INT8); }

Test(values, int8_does_not_depend_on_thread_count)
{
    gemfa_model *a = load_with(tl_tiny_dir(), GEMFA_WEIGHTS_INT8, 1);
    gemfa_model *b = load_with(tl_tiny_dir(), GEMFA_WEIGHTS_INT8, 7);
    for (int l = 0; l < a->hp.n_layers; l++) {
        const gf_matrix *x = &a->layers[l].gate_proj, *y = &b->layers[l].gate_proj;
        cr_assert_eq(memcmp(x->data, y->data, (size_t)(x->rows * x->cols)), 0);
        cr_assert_eq(memcmp(x->scales, y->scales, (size_t)(x->rows * x->cols / 32) * 2), 0);
    }
    const gf_matrix *x = &a->embed_tokens, *y = &b->embed_tokens;
    cr_assert_eq(memcmp(x->data, y->data, (size_t)(x->rows * x->cols)), 0);
    gemfa_model_free(a);
    gemfa_model_free(b);
}

/* The quantizer's rounding is roundf (half away from zero), ties included. */
Test(values, q8_matches_roundf_reference)
{
    float x[32 * 64];
    uint32_t seed = 12345;
    for (int i = 0; i < 32 * 64; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * (float)(1 + i % 7) * 0.01f;
    }
    /* a block whose scale is exactly 1: every half is a tie */
    x[0] = 127.0f;
    for (int i = 1; i < 32; i++)
        x[i] = (float)(i - 16) * 4.0f + 0.5f * (float)(i % 2 ? 1 : -1);
    x[31] = -126.5f;
    int8_t q[32 * 64];
    uint16_t s[64];
    gf_q8_quantize_row(x, 32 * 64, q, s);
    for (int b = 0; b < 64; b++) {
        float amax = 0;
        for (int i = 0; i < 32; i++)
            amax = fmaxf(amax, fabsf(x[b * 32 + i]));
        float d = amax / 127.0f;
        cr_assert_eq(s[b], gf_f32_to_f16(d));
        for (int i = 0; i < 32; i++) {
            float r = fminf(fmaxf(roundf(x[b * 32 + i] / d), -127), 127);
            cr_assert_eq(q[b * 32 + i], (int8_t)r, "block %d element %d: x %.9g", b, i,
                         x[b * 32 + i]);
        }
    }
    cr_assert_eq(q[31], -127); /* -126.5 rounds away from zero */
    cr_assert_eq(q[1], (int8_t)roundf(x[1]));
}

Test(values, q8_rounding_rule)
{
    /* d = max|x| / 127 stored as f16, q = round(x / d) clamped to +-127 */
    float x[32];
    for (int i = 0; i < 32; i++)
        x[i] = (float)(i - 16) * 0.37f;
    int8_t q[32];
    uint16_t s;
    gf_q8_quantize_row(x, 32, q, &s);
    float d = 16 * 0.37f / 127.0f;
    cr_assert_eq(s, gf_f32_to_f16(d));
    for (int i = 0; i < 32; i++)
        cr_assert_eq(q[i], (int8_t)roundf(x[i] / d), "element %d", i);
    cr_assert_eq(q[0], -127);
    float zero[32] = {0};
    gf_q8_quantize_row(zero, 32, q, &s);
    cr_assert_eq(s, 0);
    for (int i = 0; i < 32; i++)
        cr_assert_eq(q[i], 0);
}

/* ------------------------------------------------------------- queries */

Test(queries, properties)
{
    ref r = load_ref();
    gemfa_model *m = load_with(tl_tiny_dir(), GEMFA_WEIGHTS_AUTO, 1);
    int64_t v;
    struct {
        gemfa_model_prop p;
        int64_t want;
    } cases[] = {
        {GEMFA_PROP_VOCAB_SIZE, cfg_int(&r, "vocab_size")},
        {GEMFA_PROP_CONTEXT_LENGTH, cfg_int(&r, "max_position_embeddings")},
        {GEMFA_PROP_N_LAYERS, cfg_int(&r, "num_hidden_layers")},
        {GEMFA_PROP_HIDDEN_SIZE, cfg_int(&r, "hidden_size")},
        {GEMFA_PROP_N_HEADS, cfg_int(&r, "num_attention_heads")},
        {GEMFA_PROP_N_KV_HEADS, cfg_int(&r, "num_key_value_heads")},
        {GEMFA_PROP_HEAD_DIM, cfg_int(&r, "head_dim")},
        {GEMFA_PROP_SLIDING_WINDOW, cfg_int(&r, "sliding_window")},
        {GEMFA_PROP_N_KV_SHARED_LAYERS, cfg_int(&r, "num_kv_shared_layers")},
        {GEMFA_PROP_PER_LAYER_INPUT_SIZE, cfg_int(&r, "hidden_size_per_layer_input")},
        {GEMFA_PROP_VOCAB_SIZE_PER_LAYER_INPUT, cfg_int(&r, "vocab_size_per_layer_input")},
        {GEMFA_PROP_EOS_ID, 1},
        {GEMFA_PROP_HAS_WEIGHTS, 1},
        {GEMFA_PROP_HAS_TOKENIZER, m->text != NULL},
        {GEMFA_PROP_WEIGHT_TYPE, GEMFA_WEIGHTS_BF16},
        {GEMFA_PROP_STORED_BYTES_F32, 0},
        {GEMFA_PROP_STORED_BYTES_F16, 0},
        {GEMFA_PROP_STORED_BYTES_INT8, 0},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        cr_assert_eq(gemfa_model_get(m, cases[i].p, &v), GEMFA_OK);
        cr_assert_eq(v, cases[i].want, "property %d: %lld, want %lld", cases[i].p, (long long)v,
                     (long long)cases[i].want);
    }
    /* parameter and byte counts from the reference tensors */
    int64_t params = 0, ple = 0, bf16 = 0, used = 0;
    for (size_t i = 0; i < r.n; i++) {
        const tl_tensor *t = &r.t[i];
        int64_t n = (int64_t)t->nbytes / 2;
        int mm = !strncmp(t->name, "model.embed_vision.", 19) ||
                 !strncmp(t->name, "model.embed_audio.", 18);
        if (mm && !strstr(t->name, "soft_embedding_norm")) /* bound: used */
            used += t->n_dims == 1 ? 4 * n : (int64_t)t->nbytes;
        if (strncmp(t->name, PREFIX, strlen(PREFIX)) != 0)
            continue;
        params += n;
        bf16 += (int64_t)t->nbytes;
        if (strstr(t->name, "embed_tokens_per_layer"))
            ple = n;
        int layer = -1;
        sscanf(t->name, PREFIX "layers.%d.", &layer);
        int unused = layer >= 20 && (strstr(t->name, "k_proj") || strstr(t->name, "v_proj"));
        int f32_copy = t->n_dims == 1 || strstr(t->name, "coefs");
        if (!unused)
            used += f32_copy ? 4 * n : (int64_t)t->nbytes;
    }
    cr_assert_eq(gemfa_model_get(m, GEMFA_PROP_N_PARAMS, &v), GEMFA_OK);
    cr_assert_eq(v, params);
    cr_assert_eq(gemfa_model_get(m, GEMFA_PROP_N_PARAMS_PLE, &v), GEMFA_OK);
    cr_assert_eq(v, ple);
    cr_assert_eq(gemfa_model_get(m, GEMFA_PROP_STORED_BYTES_BF16, &v), GEMFA_OK);
    cr_assert_eq(v, bf16);
    cr_assert_eq(gemfa_model_get(m, GEMFA_PROP_WEIGHT_BYTES, &v), GEMFA_OK);
    cr_assert_eq(v, used, "weight bytes %lld, want %lld", (long long)v, (long long)used);

    /* special ids: the tokenizer's when it is there, else config.json */
    int64_t bos, pad, sot, eot;
    gemfa_model_get(m, GEMFA_PROP_BOS_ID, &bos);
    gemfa_model_get(m, GEMFA_PROP_PAD_ID, &pad);
    gemfa_model_get(m, GEMFA_PROP_START_OF_TURN_ID, &sot);
    gemfa_model_get(m, GEMFA_PROP_END_OF_TURN_ID, &eot);
    cr_assert_eq(bos, 2);
    cr_assert_eq(pad, 0);
    cr_assert_eq(sot, m->text ? 6 : -1);
    cr_assert_eq(eot, m->text ? 7 : -1);
    if (m->text) {
        cr_assert_eq(gemfa_model_get(m, GEMFA_PROP_TOKENIZER_SIZE, &v), GEMFA_OK);
        cr_assert_eq(v, 1024);
    }

    cr_assert_eq(gemfa_model_get(m, (gemfa_model_prop)999, &v), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_get(m, (gemfa_model_prop)0, &v), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_get(NULL, GEMFA_PROP_N_LAYERS, &v), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_get(m, GEMFA_PROP_N_LAYERS, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_model_free(m);
    free_ref(&r);
}

Test(queries, eog_ids)
{
    gemfa_model *m = load_with(tl_tiny_dir(), GEMFA_WEIGHTS_AUTO, 1);
    size_t n = 99;
    cr_assert_eq(gemfa_model_eog_ids(m, NULL, 0, &n), GEMFA_ERR_BUFFER_TOO_SMALL);
    cr_assert_eq(n, 2);
    int32_t ids[4] = {-5, -5, -5, -5};
    cr_assert_eq(gemfa_model_eog_ids(m, ids, 1, &n), GEMFA_ERR_BUFFER_TOO_SMALL);
    cr_assert_eq(ids[0], -5, "nothing written on error");
    cr_assert_eq(gemfa_model_eog_ids(m, ids, 4, &n), GEMFA_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(ids[0], 1);
    cr_assert_eq(ids[1], 7);
    cr_assert_eq(ids[2], -5);
    cr_assert(gemfa_model_is_eog(m, 1));
    cr_assert(gemfa_model_is_eog(m, 7));
    cr_assert_not(gemfa_model_is_eog(m, 106));
    cr_assert_not(gemfa_model_is_eog(m, -1));
    cr_assert_not(gemfa_model_is_eog(NULL, 1));
    cr_assert_eq(gemfa_model_eog_ids(NULL, ids, 4, &n), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_eog_ids(m, ids, 4, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_eog_ids(m, NULL, 4, &n), GEMFA_ERR_INVALID_ARGUMENT);
    /* sampling defaults from generation_config.json */
    cr_assert(m->gen.has_do_sample && m->gen.do_sample);
    cr_assert(m->gen.has_top_k);
    cr_assert_eq(m->gen.top_k, 64);
    cr_assert(m->gen.has_top_p);
    cr_assert_float_eq(m->gen.top_p, 0.95f, 1e-7);
    cr_assert_not(m->gen.has_temperature);
    cr_assert_not(m->gen.has_min_p);
    gemfa_model_free(m);
}

/* ---------------------------------------------------- options, errors */

Test(options, arguments_are_checked)
{
    gemfa_model_options *o = NULL;
    cr_assert_eq(gemfa_model_options_new(NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_options_new(&o), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_set_weights(o, (gemfa_weight_type)6), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_options_set_weights(o, (gemfa_weight_type)-1), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_options_set_weights(NULL, GEMFA_WEIGHTS_F32), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_options_set_threads(o, -1), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_options_set_threads(NULL, 1), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_options_set_vocab_only(NULL, 1), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_options_set_progress(NULL, NULL, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_options_set_progress(o, NULL, NULL), GEMFA_OK);
    gemfa_model_options_free(o);
    gemfa_model_options_free(NULL);
    gemfa_model_free(NULL);
}

Test(options, load_arguments)
{
    gemfa_model *m = (gemfa_model *)0x1;
    cr_assert_eq(gemfa_model_load(NULL, NULL, &m), GEMFA_ERR_INVALID_ARGUMENT);
    cr_assert_eq(gemfa_model_load(tl_tiny_dir(), NULL, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    /* a missing directory (ENOENT) */
    cr_assert_eq(gemfa_model_load("/nonexistent/gemfa/model", NULL, &m), GEMFA_ERR_NOT_FOUND,
                 "%s", gemfa_last_error());
    cr_assert(strstr(gemfa_last_error(), "/nonexistent/gemfa/model"), "%s", gemfa_last_error());
    cr_assert_eq(gemfa_model_load("", NULL, &m), GEMFA_ERR_NOT_FOUND);
    /* a file where the directory should be */
    char *cfg = tl_path(tl_tiny_dir(), "config.json");
    cr_assert_eq(gemfa_model_load(cfg, NULL, &m), GEMFA_ERR_NOT_FOUND);
    cr_assert(strstr(gemfa_last_error(), "not a directory"), "%s", gemfa_last_error());
    cr_assert(strstr(gemfa_last_error(), cfg), "%s", gemfa_last_error());
    /* a path through a file (ENOTDIR) */
    char *under = tl_path(cfg, "model");
    cr_assert_eq(gemfa_model_load(under, NULL, &m), GEMFA_ERR_NOT_FOUND);
    cr_assert(strstr(gemfa_last_error(), under), "%s", gemfa_last_error());
    cr_assert_eq(m, (gemfa_model *)0x1, "out untouched on failure");
    free(under);
    free(cfg);
    /* the README's call: NULL options */
    cr_assert_eq(gemfa_model_load(tl_tiny_dir(), NULL, &m), GEMFA_OK);
    gemfa_model_free(m);
}

typedef struct progress_log {
    int calls, cancel_at;
    float last;
    int monotonic;
    char stages[4096][16];
} progress_log;

static int on_progress(void *user, float f, const char *stage)
{
    progress_log *p = user;
    if (f < p->last || f < 0 || f > 1)
        p->monotonic = 0;
    p->last = f;
    if (p->calls < 4096)
        snprintf(p->stages[p->calls], sizeof p->stages[0], "%s", stage);
    return p->calls++ == p->cancel_at;
}

Test(options, progress_and_cancel)
{
    gemfa_model_options *o = NULL;
    gemfa_model_options_new(&o);
    gemfa_model_options_set_weights(o, GEMFA_WEIGHTS_INT8);
    progress_log log = {.cancel_at = -1, .monotonic = 1};
    gemfa_model_options_set_progress(o, on_progress, &log);
    gemfa_model *m = NULL;
    cr_assert_eq(gemfa_model_load(tl_tiny_dir(), o, &m), GEMFA_OK, "%s", gemfa_last_error());
    gemfa_model_free(m);
    cr_assert(log.monotonic);
    cr_assert_eq(log.last, 1.0f);
    cr_assert_str_eq(log.stages[log.calls - 1], "done");
    int convert = 0;
    for (int i = 0; i < log.calls && i < 4096; i++)
        convert += !strcmp(log.stages[i], "convert");
    cr_assert_gt(convert, 25, "conversion reports per layer and per matrix");
    /* AUTO converts nothing: progress still moves layer by layer */
    progress_log auto_log = {.cancel_at = -1, .monotonic = 1};
    gemfa_model_options *oa = NULL;
    gemfa_model_options_new(&oa);
    gemfa_model_options_set_progress(oa, on_progress, &auto_log);
    cr_assert_eq(gemfa_model_load(tl_tiny_dir(), oa, &m), GEMFA_OK, "%s", gemfa_last_error());
    gemfa_model_free(m);
    gemfa_model_options_free(oa);
    cr_assert(auto_log.monotonic);
    int bind = 0;
    for (int i = 0; i < auto_log.calls && i < 4096; i++)
        bind += !strcmp(auto_log.stages[i], "bind");
    cr_assert_geq(bind, 25, "at least one report per layer");
    /* cancelling at any call fails cleanly (ASan checks for leaks) */
    int total = log.calls;
    for (int k = 0; k < total; k++) {
        progress_log l2 = {.cancel_at = k, .monotonic = 1};
        gemfa_model_options_set_progress(o, on_progress, &l2);
        m = (gemfa_model *)0x1;
        cr_assert_eq(gemfa_model_load(tl_tiny_dir(), o, &m), GEMFA_ERR_CANCELLED, "cancel at %d", k);
        cr_assert_eq(m, (gemfa_model *)0x1);
        cr_assert(strstr(gemfa_last_error(), "cancelled"), "%s", gemfa_last_error());
    }
    gemfa_model_options_free(o);
}

/* Any allocation of a load may fail: the load then reports OUT_OF_MEMORY
 * and frees what it made (ASan would see a leak).  A load makes ~10^4
 * allocations, most of them JSON nodes of the headers, so after the first
 * 600 every 13th one is tried (the sites repeat; this keeps the test fast). */
Test(options, allocation_failures_are_clean)
{
    char *dir = tl_tmpdir();
    const char *no_tokenizer[] = {"tokenizer.json", "tokenizer_config.json",
                                  "special_tokens_map.json", NULL};
    tl_link_tiny(dir, no_tokenizer);
    gemfa_model_options *o = NULL;
    gemfa_model_options_new(&o);
    gemfa_model_options_set_weights(o, GEMFA_WEIGHTS_INT8);
    gemfa_model_options_set_threads(o, 2);
    int ok = 0;
    for (long n = 0; n < 1000000 && !ok; n += n < 600 ? 1 : 13) {
        gemfa_model *m = (gemfa_model *)0x1;
        gf_alloc_fail_after(n);
        gemfa_status st = gemfa_model_load(dir, o, &m);
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

Test(options, vocab_only)
{
    gemfa_model_options *o = NULL;
    gemfa_model_options_new(&o);
    gemfa_model_options_set_vocab_only(o, 1);
    gemfa_model *m = NULL;
    cr_assert_eq(gemfa_model_load(tl_tiny_dir(), o, &m), GEMFA_OK, "%s", gemfa_last_error());
    int64_t v;
    gemfa_model_get(m, GEMFA_PROP_HAS_WEIGHTS, &v);
    cr_assert_eq(v, 0);
    gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &v);
    cr_assert_eq(v, 1024); /* config.json is read when present */
    cr_assert_null(m->shards);
    cr_assert_null(m->layers);
    cr_assert_eq(gemfa_model_layer(m, 0, NULL, NULL, NULL, NULL), GEMFA_ERR_NO_WEIGHTS);
    cr_assert(gemfa_model_is_eog(m, 7));
    gemfa_model_free(m);

    /* a bare tokenizer directory: no config.json at all */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tokenizer/tiny", getenv("GEMFA_TEST_DATA"));
    cr_assert_eq(gemfa_model_load(dir, o, &m), GEMFA_OK, "%s", gemfa_last_error());
    gemfa_model_get(m, GEMFA_PROP_N_LAYERS, &v);
    cr_assert_eq(v, 0);
    gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &v);
    cr_assert_eq(v, m->text ? 1024 : 0);
    gemfa_model_free(m);

    /* a directory with neither config.json nor tokenizer.json */
    char *empty = tl_tmpdir();
    m = (gemfa_model *)0x1;
    cr_assert_eq(gemfa_model_load(empty, o, &m), GEMFA_ERR_NOT_FOUND);
    cr_assert(strstr(gemfa_last_error(), "tokenizer.json"), "%s", gemfa_last_error());
    cr_assert(strstr(gemfa_last_error(), empty), "%s", gemfa_last_error());
    cr_assert_eq(m, (gemfa_model *)0x1);
    tl_rmtree(empty);
    gemfa_model_options_free(o);
}
