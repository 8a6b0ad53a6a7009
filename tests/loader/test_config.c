/* test_config.c — config.json variants (spec §1) and checkpoint layouts:
 * intermediate_size int or list, legacy or rope_parameters RoPE keys,
 * absent layer_types / activation_sparsity_pattern / head_dim, text-only
 * exports (config at the root, tensors under model., one
 * model.safetensors), F32 and F16 storage, misaligned data, a short
 * embed_tokens, a stored lm_head; and config values out of range. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "fixture.h"
#include "gemfa.h"
#include "kernels/linear.h"
#include "loader/config.h"
#include "loader/model.h"
#include "loader/safetensors.h"
#include <unistd.h>

static char *tiny_config(void)
{
    char *p = tl_path(tl_tiny_dir(), "config.json");
    char *text = tl_read(p, NULL);
    free(p);
    return text;
}

/* Parses `doc` (consumed) into *hp; returns the status. */
static gemfa_status parse_doc(char *doc, gf_hparams *hp)
{
    gf_json *j = NULL;
    gemfa_status st = gf_json_parse(doc, strlen(doc), "config.json", &j);
    cr_assert_eq(st, GEMFA_OK, "test document is not JSON: %s", gemfa_last_error());
    st = gf_config_parse(j, "config.json", hp);
    gf_json_free(j);
    free(doc);
    return st;
}

static void parse_ok(char *doc, gf_hparams *hp)
{
    gemfa_status st = parse_doc(doc, hp);
    cr_assert_eq(st, GEMFA_OK, "%s: %s", gemfa_status_name(st), gemfa_last_error());
}

static void expect_same(const gf_hparams *a, const gf_hparams *b)
{
    cr_assert_eq(a->hidden_size, b->hidden_size);
    cr_assert_eq(a->n_layers, b->n_layers);
    cr_assert_eq(a->n_heads, b->n_heads);
    cr_assert_eq(a->n_kv_heads, b->n_kv_heads);
    cr_assert_eq(a->head_dim, b->head_dim);
    cr_assert_eq(a->vocab_size, b->vocab_size);
    cr_assert_eq(a->vocab_size_ple, b->vocab_size_ple);
    cr_assert_eq(a->ple_dim, b->ple_dim);
    cr_assert_eq(a->sliding_window, b->sliding_window);
    cr_assert_eq(a->n_kv_shared_layers, b->n_kv_shared_layers);
    cr_assert_eq(a->max_position_embeddings, b->max_position_embeddings);
    cr_assert_eq(a->altup_num_inputs, b->altup_num_inputs);
    cr_assert_eq(a->laurel_rank, b->laurel_rank);
    cr_assert_eq(a->rms_norm_eps, b->rms_norm_eps);
    cr_assert_eq(a->rope_theta_global, b->rope_theta_global);
    cr_assert_eq(a->rope_theta_local, b->rope_theta_local);
    cr_assert_eq(a->final_logit_softcapping, b->final_logit_softcapping);
    cr_assert_eq(a->altup_coef_clip, b->altup_coef_clip);
    for (int l = 0; l < a->n_layers; l++) {
        cr_assert_eq(a->ffn_width[l], b->ffn_width[l], "layer %d", l);
        cr_assert_eq(a->sparsity[l], b->sparsity[l], "layer %d", l);
        cr_assert_eq(a->is_sliding[l], b->is_sliding[l], "layer %d", l);
        cr_assert_eq(a->kv_source[l], b->kv_source[l], "layer %d", l);
    }
}

static const char *const rope_parameters =
    "{\"full_attention\": {\"rope_type\": \"default\", \"rope_theta\": 1000000.0}, "
    "\"sliding_attention\": {\"rope_type\": \"default\", \"rope_theta\": 10000.0}}";

/* Edits that leave the tiny model unchanged (spec §1 variants). */
static char *variant(int which)
{
    char *c = tiny_config();
    switch (which) {
    case 0: return tl_json_set(c, "text_config.intermediate_size", "128");
    case 1:
        c = tl_json_del(c, "text_config.rope_theta");
        c = tl_json_del(c, "text_config.rope_local_base_freq");
        return tl_json_set(c, "text_config.rope_parameters", rope_parameters);
    case 2: return tl_json_del(c, "text_config.layer_types");
    case 3: return tl_json_del(c, "text_config.activation_sparsity_pattern");
    case 4: return tl_json_del(c, "text_config.head_dim");
    case 5: /* all at once, plus keys a merged Unsloth save may add */
        c = tl_json_set(c, "text_config.intermediate_size", "128");
        c = tl_json_del(c, "text_config.rope_theta");
        c = tl_json_del(c, "text_config.rope_local_base_freq");
        c = tl_json_set(c, "text_config.rope_parameters", rope_parameters);
        c = tl_json_del(c, "text_config.layer_types");
        c = tl_json_del(c, "text_config.activation_sparsity_pattern");
        c = tl_json_del(c, "text_config.head_dim");
        c = tl_json_set(c, "unsloth_version", "\"2025.6.1\"");
        c = tl_json_set(c, "text_config.dtype", "\"bfloat16\"");
        return c;
    }
    return c;
}

Test(config, spec_variants_give_the_same_hparams)
{
    gf_hparams base, hp;
    parse_ok(tiny_config(), &base);
    for (int v = 0; v <= 5; v++) {
        parse_ok(variant(v), &hp);
        expect_same(&base, &hp);
        gf_hparams_free(&hp);
    }
    gf_hparams_free(&base);
}

Test(config, text_only_config_at_the_root)
{
    gf_hparams base, hp;
    parse_ok(tiny_config(), &base);
    char *c = tiny_config();
    char *tc = tl_json_get(c, "text_config");
    free(c);
    tc = tl_json_set(tc, "architectures", "[\"Gemma3nForCausalLM\"]");
    parse_ok(tc, &hp);
    expect_same(&base, &hp);
    cr_assert(base.nested);
    cr_assert_not(hp.nested);
    cr_assert_not(hp.vision.present);
    gf_hparams_free(&hp);
    gf_hparams_free(&base);
}

Test(config, rope_keys)
{
    gf_hparams hp;
    char *c = tl_json_set(tiny_config(), "text_config.rope_parameters",
                          "{\"full_attention\": {\"rope_theta\": 500000}, "
                          "\"sliding_attention\": {\"rope_theta\": 20000.5}}");
    parse_ok(c, &hp); /* rope_parameters wins over the legacy keys */
    cr_assert_eq(hp.rope_theta_global, 500000.0f);
    cr_assert_eq(hp.rope_theta_local, 20000.5f);
    gf_hparams_free(&hp);
    c = tl_json_set(tiny_config(), "text_config.rope_parameters",
                    "{\"rope_type\": \"default\", \"rope_theta\": 123.0}");
    parse_ok(c, &hp); /* one set for every layer: the local base stays */
    cr_assert_eq(hp.rope_theta_global, 123.0f);
    cr_assert_eq(hp.rope_theta_local, 10000.0f);
    gf_hparams_free(&hp);
    c = tl_json_del(tl_json_del(tiny_config(), "text_config.rope_theta"),
                    "text_config.rope_local_base_freq");
    parse_ok(c, &hp); /* Hugging Face defaults */
    cr_assert_eq(hp.rope_theta_global, 1e6f);
    cr_assert_eq(hp.rope_theta_local, 1e4f);
    gf_hparams_free(&hp);
}

Test(config, defaults_when_absent)
{
    gf_hparams hp;
    /* L = 10: full layers 4 and 9, no sparsity (L <= 10), head_dim = H / heads */
    char *c = tiny_config();
    c = tl_json_set(c, "text_config.num_hidden_layers", "10");
    c = tl_json_set(c, "text_config.intermediate_size", "96");
    c = tl_json_set(c, "text_config.num_kv_shared_layers", "4");
    c = tl_json_del(c, "text_config.layer_types");
    c = tl_json_del(c, "text_config.activation_sparsity_pattern");
    c = tl_json_del(c, "text_config.head_dim");
    c = tl_json_set(c, "text_config.hidden_size", "96");
    parse_ok(c, &hp);
    cr_assert_eq(hp.head_dim, 24);
    for (int l = 0; l < 10; l++) {
        cr_assert_eq(hp.is_sliding[l], l != 4 && l != 9, "layer %d", l);
        cr_assert_eq(hp.sparsity[l], 0.0f);
        cr_assert_eq(hp.ffn_width[l], 96);
    }
    /* spec §5, tiny10: 6, 7, 8 -> 5 (sliding), 9 -> 4 (full) */
    int want[10] = {0, 1, 2, 3, 4, 5, 5, 5, 5, 4};
    for (int l = 0; l < 10; l++)
        cr_assert_eq(hp.kv_source[l], want[l], "layer %d", l);
    gf_hparams_free(&hp);

    /* L = 35, 15 shared: the E4B map */
    c = tiny_config();
    c = tl_json_set(c, "text_config.num_hidden_layers", "35");
    c = tl_json_set(c, "text_config.intermediate_size", "16384");
    c = tl_json_set(c, "text_config.num_kv_shared_layers", "15");
    c = tl_json_del(c, "text_config.layer_types");
    c = tl_json_del(c, "text_config.activation_sparsity_pattern");
    parse_ok(c, &hp);
    for (int l = 0; l < 35; l++) {
        cr_assert_eq(hp.sparsity[l], l < 10 ? 0.95f : 0.0f);
        int src = l < 20 ? l : (l + 1) % 5 == 0 ? 19 : 18;
        cr_assert_eq(hp.kv_source[l], src, "layer %d", l);
    }
    gf_hparams_free(&hp);
}

Test(config, nulls_and_unknown_keys)
{
    gf_hparams hp;
    char *c = tiny_config();
    c = tl_json_set(c, "text_config.final_logit_softcapping", "null");
    c = tl_json_set(c, "text_config.altup_coef_clip", "null");
    c = tl_json_set(c, "text_config.head_dim", "null");
    c = tl_json_set(c, "text_config.sliding_window", "null");
    c = tl_json_set(c, "text_config.some_future_key", "{\"x\": [1, 2]}");
    c = tl_json_set(c, "vision_config", "null");
    parse_ok(c, &hp);
    cr_assert_eq(hp.final_logit_softcapping, 0.0f);
    cr_assert_eq(hp.altup_coef_clip, 0.0f);
    cr_assert_eq(hp.head_dim, 16);
    cr_assert_eq(hp.sliding_window, 512);
    cr_assert_not(hp.vision.present);
    gf_hparams_free(&hp);
    /* absent: the Hugging Face defaults */
    c = tl_json_del(tl_json_del(tiny_config(), "text_config.final_logit_softcapping"),
                    "text_config.altup_coef_clip");
    parse_ok(c, &hp);
    cr_assert_eq(hp.final_logit_softcapping, 30.0f);
    cr_assert_eq(hp.altup_coef_clip, 120.0f);
    gf_hparams_free(&hp);
}

/* An edit that must fail with `status` and a message holding the needles. */
static void expect_error(const char *path, const char *value, gemfa_status status,
                         const char *n1, const char *n2)
{
    char *c = tiny_config();
    c = value ? tl_json_set(c, path, value) : tl_json_del(c, path);
    gf_hparams hp;
    memset(&hp, 0x5a, sizeof hp);
    gemfa_status st = parse_doc(c, &hp);
    cr_assert_eq(st, status, "%s = %s: got %s (%s)", path, value ? value : "(deleted)",
                 gemfa_status_name(st), gemfa_last_error());
    const char *msg = gemfa_last_error();
    cr_assert(strstr(msg, "config.json"), "%s", msg);
    cr_assert(!n1 || strstr(msg, n1), "message lacks '%s': %s", n1, msg);
    cr_assert(!n2 || strstr(msg, n2), "message lacks '%s': %s", n2, msg);
    cr_assert_null(hp.ffn_width, "nothing is kept on error");
}

Test(config, values_out_of_range)
{
    const gemfa_status C = GEMFA_ERR_CONFIG;
    expect_error("text_config.hidden_size", "-64", C, "text_config.hidden_size", "found -64");
    expect_error("text_config.hidden_size", "1000000000000", C, "hidden_size", "1000000000000");
    expect_error("text_config.hidden_size", "\"64\"", C, "hidden_size", "\"64\"");
    expect_error("text_config.hidden_size", "64.5", C, "hidden_size", "64.5");
    expect_error("text_config.hidden_size", NULL, C, "hidden_size is required", "absent");
    expect_error("text_config.hidden_size", "null", C, "hidden_size is required", "null");
    expect_error("text_config.num_hidden_layers", "0", C, "num_hidden_layers", "found 0");
    expect_error("text_config.num_hidden_layers", "100000", C, "num_hidden_layers", "100000");
    expect_error("text_config.vocab_size", "-1", C, "vocab_size", "-1");
    expect_error("text_config.intermediate_size", "[128, 128]", C,
                 "expected 25 entries (one per layer)", "found 2");
    expect_error("text_config.intermediate_size",
                 "[128,128,128,128,128,128,128,128,128,128,128,128,128,128,128,128,128,128,128,"
                 "128,128,128,128,-1,128]",
                 C, "intermediate_size[23]", "-1");
    expect_error("text_config.intermediate_size", "0", C, "intermediate_size", "found 0");
    expect_error("text_config.num_key_value_heads", "3", C, "not a multiple", NULL);
    expect_error("text_config.num_key_value_heads", "8", C, "num_key_value_heads", "8");
    expect_error("text_config.head_dim", "15", C, "head_dim", "even");
    expect_error("text_config.layer_types", "[\"sliding_attention\"]", C, "layer_types",
                 "an array of 1");
    expect_error("text_config.activation_sparsity_pattern",
                 "[1.0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]", C,
                 "activation_sparsity_pattern[0]", "[0, 1)");
    expect_error("text_config.num_kv_shared_layers", "25", C, "num_kv_shared_layers", "25");
    expect_error("text_config.num_kv_shared_layers", "21", C, "layer 4 (full)",
                 "none of layers 0..3");
    expect_error("text_config.rms_norm_eps", "0", C, "rms_norm_eps", "(0, 1]");
    expect_error("text_config.rope_theta", "-5", C, "rope_theta", "-5");
    expect_error("text_config.sliding_window", "0", C, "sliding_window", NULL);
    expect_error("text_config.altup_num_inputs", "99", C, "altup_num_inputs", "99");
    expect_error("text_config.altup_correct_scale", "1", C, "altup_correct_scale", "true or false");
    expect_error("text_config.rope_parameters", "[1]", C, "rope_parameters", "an array");
    const gemfa_status U = GEMFA_ERR_UNSUPPORTED;
    expect_error("model_type", "\"llama\"", U, "model_type \"llama\"", "gemma3n");
    expect_error("text_config.hidden_activation", "\"silu\"", U, "\"silu\"", "gelu_pytorch_tanh");
    expect_error("text_config.rope_scaling", "{\"rope_type\": \"linear\", \"factor\": 2.0}", U,
                 "rope_scaling.rope_type", "linear");
    expect_error("text_config.rope_parameters",
                 "{\"full_attention\": {\"rope_type\": \"yarn\", \"rope_theta\": 1.0}}", U,
                 "full_attention.rope_type", "yarn");
    expect_error("text_config.attention_bias", "true", U, "attention_bias", NULL);
}

Test(config, not_an_object)
{
    gf_hparams hp;
    cr_assert_eq(parse_doc(strdup("[1, 2]"), &hp), GEMFA_ERR_CONFIG);
    cr_assert(strstr(gemfa_last_error(), "expected a JSON object"), "%s", gemfa_last_error());
    cr_assert_eq(parse_doc(strdup("{}"), &hp), GEMFA_ERR_CONFIG);
    cr_assert(strstr(gemfa_last_error(), "hidden_size is required"), "%s", gemfa_last_error());
}

Test(config, id_lists)
{
    gf_json *j;
    int32_t *ids;
    size_t n;
    const char *doc = "{\"a\": [1, 106, 1, -3, \"x\", null, 4294967296], \"b\": 7, \"c\": null}";
    cr_assert_eq(gf_json_parse(doc, strlen(doc), "t", &j), GEMFA_OK);
    cr_assert_eq(gf_config_id_list(gf_json_get(j, "a"), &ids, &n), GEMFA_OK);
    cr_assert_eq(n, 2); /* duplicates, negatives, non-integers, beyond int32 dropped */
    cr_assert_eq(ids[0], 1);
    cr_assert_eq(ids[1], 106);
    free(ids);
    cr_assert_eq(gf_config_id_list(gf_json_get(j, "b"), &ids, &n), GEMFA_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(ids[0], 7);
    free(ids);
    cr_assert_eq(gf_config_id_list(gf_json_get(j, "c"), &ids, &n), GEMFA_OK);
    cr_assert_eq(n, 0);
    cr_assert_null(ids);
    gf_json_free(j);
}

/* ------------------------------------------------- whole checkpoints */

static gemfa_model *load(const char *dir, gemfa_weight_type type)
{
    gemfa_model_options *o = NULL;
    gemfa_model_options_new(&o);
    gemfa_model_options_set_weights(o, type);
    gemfa_model *m = NULL;
    gemfa_status st = gemfa_model_load(dir, o, &m);
    gemfa_model_options_free(o);
    cr_assert_eq(st, GEMFA_OK, "%s: %s", gemfa_status_name(st), gemfa_last_error());
    return m;
}

/* Rows of b equal a's (same weights, another layout), exactly or within
 * f16 precision. */
static void rows_match(const float *x, const float *y, int64_t n, int f16, int layer)
{
    for (int64_t i = 0; i < n; i++) {
        double tol = f16 ? fmax(fabs(x[i]) * ldexp(1.0, -11), ldexp(1.0, -25)) : 0.0;
        cr_assert(fabs((double)x[i] - y[i]) <= tol, "layer %d [%lld]: %.9g vs %.9g", layer,
                  (long long)i, x[i], y[i]);
    }
}

static void expect_close_weights(const gemfa_model *a, const gemfa_model *b, int f16)
{
    expect_same(&a->hp, &b->hp);
    float *x = malloc(4096 * sizeof *x), *y = malloc(4096 * sizeof *y);
    for (int l = 0; l < a->hp.n_layers; l++) {
        const gf_matrix *ma[] = {&a->layers[l].q_proj, &a->layers[l].down_proj,
                                 &a->layers[l].ple_proj, &a->layers[l].altup_router};
        const gf_matrix *mb[] = {&b->layers[l].q_proj, &b->layers[l].down_proj,
                                 &b->layers[l].ple_proj, &b->layers[l].altup_router};
        for (int k = 0; k < 4; k++) {
            cr_assert_eq(ma[k]->rows, mb[k]->rows);
            cr_assert_eq(ma[k]->cols, mb[k]->cols);
            for (int64_t r = 0; r < ma[k]->rows; r++) {
                gf_matrix_row_f32(ma[k], r, x);
                gf_matrix_row_f32(mb[k], r, y);
                rows_match(x, y, ma[k]->cols, f16, l);
            }
        }
        rows_match(a->layers[l].input_norm, b->layers[l].input_norm, a->hp.hidden_size, f16, l);
    }
    for (int64_t r = 0; r < b->embed_tokens.rows; r += 97) {
        gf_matrix_row_f32(&a->embed_tokens, r, x);
        gf_matrix_row_f32(&b->embed_tokens, r, y);
        rows_match(x, y, a->hp.hidden_size, f16, -1);
    }
    free(x);
    free(y);
}

static void expect_same_weights(const gemfa_model *a, const gemfa_model *b)
{
    expect_close_weights(a, b, 0);
}

Test(checkpoint, config_variants_load)
{
    gemfa_model *base = load(tl_tiny_dir(), GEMFA_WEIGHTS_AUTO);
    const char *keep[] = {"config.json", NULL};
    for (int v = 0; v <= 5; v++) {
        char *dir = tl_tmpdir();
        tl_link_tiny(dir, keep);
        char *c = variant(v);
        tl_write_str(dir, "config.json", c);
        free(c);
        gemfa_model *m = load(dir, GEMFA_WEIGHTS_AUTO);
        expect_same_weights(base, m);
        gemfa_model_free(m);
        tl_rmtree(dir);
    }
    gemfa_model_free(base);
}

/* Converts a stored value to the dtype named `dtype` in place of t->data. */
static void retype(tl_tensor *t, const char *dtype)
{
    size_t n = t->nbytes / 2; /* stored as BF16 */
    size_t es = !strcmp(dtype, "F32") ? 4 : 2;
    uint8_t *d = malloc(n * es);
    for (size_t i = 0; i < n; i++) {
        float f = tl_value(t, i);
        if (es == 4) {
            memcpy(d + 4 * i, &f, 4);
        } else {
            uint16_t h = !strcmp(dtype, "F16") ? gf_f32_to_f16(f) : gf_f32_to_bf16(f);
            memcpy(d + 2 * i, &h, 2);
        }
    }
    free(t->data);
    t->data = d;
    t->nbytes = n * es;
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
}

typedef struct export_opts {
    const char *dtype;      /* storage type */
    const char *prefix;     /* new prefix for the decoder's tensors */
    size_t pad;             /* bytes before the first tensor */
    int64_t embed_rows;     /* 0: keep all */
    int lm_head;            /* also store lm_head.weight (a copy of embed_tokens) */
} export_opts;

/* Writes a text-only export of the tiny model into dir: the text_config at
 * the root (model_type gemma3n_text), one model.safetensors, tensors under
 * opts->prefix, no towers or multimodal embedders. */
static void write_text_only(const char *dir, const export_opts *o)
{
    const char *src = tl_tiny_dir();
    const char *shards[] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    tl_tensor *all = NULL;
    size_t n_all = 0;
    const char *old = "model.language_model.";
    for (int s = 0; s < 2; s++) {
        char *p = tl_path(src, shards[s]);
        size_t n;
        tl_tensor *t = tl_read_tensors(p, &n);
        free(p);
        all = realloc(all, (n_all + n + 1) * sizeof *all);
        for (size_t i = 0; i < n; i++) {
            if (strncmp(t[i].name, old, strlen(old)) != 0) {
                free(t[i].data);
                continue;
            }
            tl_tensor x = t[i];
            snprintf(x.name, sizeof x.name, "%s%s", o->prefix, t[i].name + strlen(old));
            if (o->embed_rows && strstr(x.name, ".embed_tokens.weight")) {
                x.shape[0] = o->embed_rows;
                x.nbytes = (size_t)(o->embed_rows * x.shape[1] * 2);
            }
            if (strcmp(o->dtype, "BF16"))
                retype(&x, o->dtype);
            all[n_all++] = x;
        }
        free(t);
    }
    if (o->lm_head) {
        char name[256];
        snprintf(name, sizeof name, "%sembed_tokens.weight", o->prefix);
        tl_tensor x = *tl_find(all, n_all, name);
        snprintf(x.name, sizeof x.name, "lm_head.weight");
        x.data = malloc(x.nbytes);
        memcpy(x.data, tl_find(all, n_all, name)->data, x.nbytes);
        all[n_all++] = x;
    }
    char *p = tl_path(dir, "model.safetensors");
    tl_write_safetensors(p, all, n_all, o->pad);
    free(p);
    tl_free_tensors(all, n_all);

    char *c = tiny_config();
    char *tc = tl_json_get(c, "text_config");
    free(c);
    tc = tl_json_set(tc, "architectures", "[\"Gemma3nForCausalLM\"]");
    tl_write_str(dir, "config.json", tc);
    free(tc);
    char *gp = tl_path(src, "generation_config.json"), *gd = tl_path(dir, "generation_config.json");
    cr_assert_eq(symlink(gp, gd), 0);
    free(gp);
    free(gd);
}

static char *text_only_dir(const export_opts *o)
{
    char *dir = tl_tmpdir();
    write_text_only(dir, o);
    return dir;
}

Test(checkpoint, text_only_single_file)
{
    gemfa_model *base = load(tl_tiny_dir(), GEMFA_WEIGHTS_AUTO);
    export_opts o = {"BF16", "model.", 0, 0, 0};
    char *dir = text_only_dir(&o);
    gemfa_model *m = load(dir, GEMFA_WEIGHTS_AUTO);
    expect_same_weights(base, m);
    cr_assert_str_eq(m->tensor_prefix, "model.");
    cr_assert_null(m->shards->index_path);
    cr_assert_eq(m->shards->n_files, 1);
    cr_assert_not(m->hp.nested);
    cr_assert_not(m->embed_vision.present);
    cr_assert_eq(m->n_params, base->n_params);
    cr_assert(gemfa_model_is_eog(m, 7));
    gemfa_model_free(m);
    tl_rmtree(dir);

    export_opts old = {"BF16", "language_model.model.", 0, 0, 0};
    dir = text_only_dir(&old);
    m = load(dir, GEMFA_WEIGHTS_INT8);
    cr_assert_str_eq(m->tensor_prefix, "language_model.model.");
    gemfa_model_free(m);
    tl_rmtree(dir);
    gemfa_model_free(base);
}

Test(checkpoint, f32_and_f16_storage)
{
    gemfa_model *base = load(tl_tiny_dir(), GEMFA_WEIGHTS_AUTO);
    const char *types[] = {"F32", "F16"};
    gf_dtype want[] = {GF_DTYPE_F32, GF_DTYPE_F16};
    gemfa_model_prop bytes_prop[] = {GEMFA_PROP_STORED_BYTES_F32, GEMFA_PROP_STORED_BYTES_F16};
    for (int i = 0; i < 2; i++) {
        export_opts o = {types[i], "model.", 0, 0, 0};
        char *dir = text_only_dir(&o);
        gemfa_model *m = load(dir, GEMFA_WEIGHTS_AUTO);
        cr_assert_eq(m->layers[3].up_proj.dtype, want[i]);
        cr_assert_eq(m->embed_per_layer.dtype, want[i]);
        int64_t v, bf16;
        gemfa_model_get(m, bytes_prop[i], &v);
        gemfa_model_get(m, GEMFA_PROP_STORED_BYTES_BF16, &bf16);
        cr_assert_eq(v, base->stored_bytes[GF_DTYPE_BF16] * (i == 0 ? 2 : 1));
        cr_assert_eq(bf16, 0);
        gemfa_model_get(m, GEMFA_PROP_WEIGHT_TYPE, &v);
        cr_assert_eq(v, i == 0 ? GEMFA_WEIGHTS_F32 : GEMFA_WEIGHTS_F16);
        /* bf16 values are exact in f32, within half precision in f16 */
        expect_close_weights(base, m, i == 1);
        gemfa_model_free(m);
        /* and converted back to bf16 at load */
        m = load(dir, GEMFA_WEIGHTS_BF16);
        cr_assert_eq(m->layers[3].up_proj.dtype, GF_DTYPE_BF16);
        cr_assert_eq(m->embed_tokens.dtype, want[i]); /* embed_tokens stays as stored */
        expect_close_weights(base, m, i == 1);
        gemfa_model_free(m);
        tl_rmtree(dir);
    }
    gemfa_model_free(base);
}

Test(checkpoint, misaligned_data_is_copied)
{
    gemfa_model *base = load(tl_tiny_dir(), GEMFA_WEIGHTS_AUTO);
    export_opts o = {"BF16", "model.", 1, 0, 0};
    char *dir = text_only_dir(&o);
    gemfa_model *m = load(dir, GEMFA_WEIGHTS_AUTO);
    cr_assert_eq((uintptr_t)m->layers[0].q_proj.data % 2, 0);
    cr_assert_eq((uintptr_t)m->embed_per_layer.data % 2, 0);
    expect_same_weights(base, m);
    gemfa_model_free(m);
    tl_rmtree(dir);
    gemfa_model_free(base);
}

Test(checkpoint, short_embed_tokens_and_stored_lm_head)
{
    export_opts o = {"BF16", "model.", 0, 1000, 0};
    char *dir = text_only_dir(&o);
    gemfa_model *m = load(dir, GEMFA_WEIGHTS_INT8);
    cr_assert_eq(m->embed_tokens.rows, 1000); /* ids 1000..1023 read as zeros */
    cr_assert_eq(m->hp.vocab_size, 1024);
    cr_assert(m->lm_head_tied);
    cr_assert_eq(m->lm_head.rows, 1000);
    gemfa_model_free(m);
    tl_rmtree(dir);

    export_opts with_head = {"BF16", "model.", 0, 0, 1};
    dir = text_only_dir(&with_head);
    m = load(dir, GEMFA_WEIGHTS_AUTO);
    cr_assert_not(m->lm_head_tied);
    cr_assert_eq(m->lm_head.rows, 1024);
    cr_assert_neq(m->lm_head.data, m->embed_tokens.data);
    cr_assert_eq(memcmp(m->lm_head.data, m->embed_tokens.data, 1024 * 64 * 2), 0);
    gemfa_model_free(m);
    tl_rmtree(dir);

    /* untied without lm_head.weight */
    export_opts plain = {"BF16", "model.", 0, 0, 0};
    dir = text_only_dir(&plain);
    char *p = tl_path(dir, "config.json");
    char *c = tl_read(p, NULL);
    unlink(p);
    free(p);
    c = tl_json_set(c, "tie_word_embeddings", "false");
    tl_write_str(dir, "config.json", c);
    free(c);
    m = (gemfa_model *)0x1;
    cr_assert_eq(gemfa_model_load(dir, NULL, &m), GEMFA_ERR_TENSOR_MISSING);
    cr_assert(strstr(gemfa_last_error(), "lm_head.weight"), "%s", gemfa_last_error());
    cr_assert(strstr(gemfa_last_error(), "model.safetensors"), "%s", gemfa_last_error());
    cr_assert_eq(m, (gemfa_model *)0x1);
    tl_rmtree(dir);
}
