/* test_quantize.c — pre-quantized checkpoints (gemfa quantize,
 * lib/loader/quantize.h): the file written for the tiny checkpoint, read
 * with the tests' own safetensors reader (every block against its source
 * weights); loading it maps the int8 data in place and gives the logits of
 * an int8 load bit for bit; the errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "gemfa.h"
#include "loader/model.h"
#include "kernels/q8_format.h"
#include "loader/quantize.h"
#include "loader/safetensors.h"

static char *quantized_tiny(void)
{
    char *dir = tl_tmpdir();
    gf_quantize_stats stats;
    gemfa_status st = gf_quantize_checkpoint(tl_tiny_dir(), dir, 2, NULL, NULL, &stats);
    cr_assert_eq(st, GEMFA_OK, "%s", gemfa_last_error());
    cr_expect_gt(stats.n_quantized, 0);
    cr_expect_gt(stats.bytes_written, 0);
    return dir;
}

static tl_tensor *tiny_tensors(size_t *n)
{
    const char *shards[] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    tl_tensor *all = NULL;
    *n = 0;
    for (int s = 0; s < 2; s++) {
        char *p = tl_path(tl_tiny_dir(), shards[s]);
        size_t k;
        tl_tensor *t = tl_read_tensors(p, &k);
        all = realloc(all, (*n + k) * sizeof *all);
        memcpy(all + *n, t, k * sizeof *t);
        *n += k;
        free(t);
        free(p);
    }
    return all;
}

static int ends_with(const char *s, const char *p)
{
    size_t a = strlen(s), b = strlen(p);
    return a >= b && strcmp(s + a - b, p) == 0;
}

Test(quantize, file_holds_int8_blocks_of_the_source)
{
    char *dir = quantized_tiny();
    size_t n_src, n_out;
    tl_tensor *src = tiny_tensors(&n_src);
    char *path = tl_path(dir, "model.safetensors");
    tl_tensor *out = tl_read_tensors(path, &n_out);
    size_t len;
    char *raw = tl_read(path, &len);
    cr_expect_not_null(strstr(raw + 8, "\"gemfa.quantization\":\"" GF_Q8_SCHEME "\""),
                       "the scheme is named in __metadata__");
    size_t quantized = 0, copied = 0;
    for (size_t i = 0; i < n_src; i++) {
        const tl_tensor *s = &src[i];
        const tl_tensor *o = tl_find(out, n_out, s->name);
        if (strstr(s->name, "_tower.")) {
            cr_expect_null(o, "%s: towers are left out", s->name);
            continue;
        }
        cr_assert_not_null(o, "%s is missing", s->name);
        const int q = s->n_dims == 2 && s->shape[1] % 32 == 0 &&
                      !ends_with(s->name, "embed_tokens_per_layer.weight") &&
                      !ends_with(s->name, "_coefs.weight");
        if (!q) {
            cr_expect_str_eq(o->dtype, s->dtype, "%s", s->name);
            cr_expect(o->nbytes == s->nbytes && !memcmp(o->data, s->data, s->nbytes),
                      "%s copied as stored", s->name);
            copied++;
            continue;
        }
        char sname[300];
        snprintf(sname, sizeof sname, "%s%s", s->name, GF_Q8_SCALE_SUFFIX);
        const tl_tensor *sc = tl_find(out, n_out, sname);
        cr_assert_not_null(sc, "%s: no scales", s->name);
        cr_expect_str_eq(o->dtype, "I8");
        cr_expect_str_eq(sc->dtype, "F16");
        cr_assert(o->shape[0] == s->shape[0] && o->shape[1] == s->shape[1], "%s shape", s->name);
        cr_assert(sc->shape[0] == s->shape[0] && sc->shape[1] == s->shape[1] / 32);
        const int64_t rows = s->shape[0], cols = s->shape[1], nb = cols / 32;
        for (int64_t b = 0; b < rows * nb; b++) {
            /* the file holds the interleaved layout (loader/model.h) */
            const int64_t r = b / nb, bb = b % nb;
            const float d = tl_value(sc, gf_q8_scale_index(rows, cols, r, bb));
            float amax = 0;
            int qmax = 0;
            for (int k = 0; k < 32; k++)
                amax = fmaxf(amax, fabsf(tl_value(s, (size_t)(b * 32 + k))));
            /* d = max|w| / 127 rounded to f16 (relative error <= 2^-11) */
            cr_expect_leq(fabs(d - amax / 127.0), amax / 127.0 * 4.9e-4 + 1e-12, "%s block %ld",
                          s->name, (long)b);
            for (int k = 0; k < 32; k++) {
                const int qv = ((const int8_t *)o->data)[gf_q8_index(rows, cols, r, bb * 32 + k)];
                const float w = tl_value(s, (size_t)(b * 32 + k));
                qmax = abs(qv) > qmax ? abs(qv) : qmax;
                /* q rounds w / (max/127) in f32 (half a step); the scale
                 * stored in f16 moves q·d by up to 127·2^-11·d more */
                cr_expect_leq(fabs(qv * (double)d - w), (0.5 + 127.0 / 2048) * d * 1.001 + 1e-12,
                              "%s block %ld element %d", s->name, (long)b, k);
            }
            if (amax > 0)
                cr_expect_eq(qmax, 127, "%s block %ld uses the full range", s->name, (long)b);
        }
        quantized++;
    }
    cr_expect_gt(quantized, 200);
    cr_expect_gt(copied, 100);
    free(raw);
    free(path);
    tl_free_tensors(src, n_src);
    tl_free_tensors(out, n_out);
    tl_rmtree(dir);
}

static gemfa_model *load(const char *dir, gemfa_weight_type type, gemfa_status want)
{
    gemfa_model_options *o = NULL;
    cr_assert_eq(gemfa_model_options_new(&o), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_set_weights(o, type), GEMFA_OK);
    gemfa_model *m = NULL;
    gemfa_status st = gemfa_model_load(dir, o, &m);
    gemfa_model_options_free(o);
    cr_assert_eq(st, want, "%s: %s", gemfa_status_name(st), gemfa_last_error());
    return m;
}

static int inside(const void *p, const gf_shard_set *set)
{
    for (size_t i = 0; i < set->n_files; i++) {
        const uint8_t *a = set->files[i].map;
        if ((const uint8_t *)p >= a && (const uint8_t *)p < a + set->files[i].size)
            return 1;
    }
    return 0;
}

static float *logits(const gemfa_model *m, const int32_t *ids, size_t n, size_t V)
{
    gemfa_context *ctx = NULL;
    gemfa_session *s = NULL;
    cr_assert_eq(gemfa_context_new(m, NULL, &ctx), GEMFA_OK);
    cr_assert_eq(gemfa_session_new(ctx, NULL, &s), GEMFA_OK);
    float *out = malloc(n * V * sizeof *out);
    cr_assert_eq(gemfa_decode_all(s, ids, n, out, n * V), GEMFA_OK, "%s", gemfa_last_error());
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    return out;
}

Test(quantize, loads_in_place_and_equals_an_int8_load)
{
    char *dir = quantized_tiny();
    gemfa_model *q = load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_OK);
    gemfa_model *q2 = load(dir, GEMFA_WEIGHTS_INT8, GEMFA_OK);
    gemfa_model *ref = load(tl_tiny_dir(), GEMFA_WEIGHTS_INT8, GEMFA_OK);
    int64_t v = 0, w = 0;
    gemfa_model_get(q, GEMFA_PROP_WEIGHT_TYPE, &v);
    cr_expect_eq(v, GEMFA_WEIGHTS_INT8, "auto resolves to int8");
    gemfa_model_get(q, GEMFA_PROP_N_PARAMS, &v);
    gemfa_model_get(ref, GEMFA_PROP_N_PARAMS, &w);
    cr_expect_eq(v, w, "the scales are not parameters");
    gemfa_model_get(q, GEMFA_PROP_WEIGHT_BYTES, &v);
    gemfa_model_get(ref, GEMFA_PROP_WEIGHT_BYTES, &w);
    cr_expect_eq(v, w, "same bytes in use");
    gemfa_model_get(q, GEMFA_PROP_STORED_BYTES_INT8, &v);
    cr_expect_gt(v, 0);
    /* zero copy: matrices and scales point into the mapped file */
    const gf_layer *L = &q->layers[3];
    cr_expect_eq(L->gate_proj.dtype, GF_DTYPE_Q8);
    cr_expect(inside(L->gate_proj.data, q->shards) && inside(L->gate_proj.scales, q->shards));
    cr_expect(inside(q->embed_tokens.data, q->shards), "the tied LM head too");
    cr_expect_eq(q->embed_per_layer.dtype, GF_DTYPE_BF16, "the per-layer table stays as stored");
    /* the same weights, so the same logits bit for bit */
    char *tp = tl_path(tl_tiny_dir(), "golden/long.tokens.i32.bin");
    size_t len;
    int32_t *ids = (int32_t *)tl_read(tp, &len);
    const size_t n = len / 4, V = 1024;
    float *a = logits(q, ids, n, V), *b = logits(ref, ids, n, V), *c = logits(q2, ids, n, V);
    cr_expect_eq(memcmp(a, b, n * V * sizeof *a), 0, "pre-quantized vs int8 at load");
    cr_expect_eq(memcmp(c, b, n * V * sizeof *c), 0, "--weights int8 on a quantized checkpoint");
    free(a);
    free(b);
    free(c);
    free(ids);
    free(tp);
    gemfa_model_free(q);
    gemfa_model_free(q2);
    gemfa_model_free(ref);
    tl_rmtree(dir);
}

/* libgemfa 0.1 wrote plain [rows][cols] int8 (GF_Q8_SCHEME_ROWS), and a
 * file without the metadata key is read the same way: the loader then
 * interleaves into memory, giving the same weights (logits bit for bit). */
static void write_plain_rows(const char *dir, const char *scheme)
{
    char *path = tl_path(dir, "model.safetensors");
    size_t n;
    tl_tensor *t = tl_read_tensors(path, &n);
    int plain = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(t[i].dtype, "I8") != 0)
            continue;
        char sname[300];
        snprintf(sname, sizeof sname, "%s%s", t[i].name, GF_Q8_SCALE_SUFFIX);
        tl_tensor *sc = (tl_tensor *)tl_find(t, n, sname);
        cr_assert_not_null(sc);
        const int64_t rows = t[i].shape[0], cols = t[i].shape[1], nb = cols / 32;
        int8_t *q = malloc((size_t)(rows * cols));
        uint16_t *sv = malloc((size_t)(rows * nb) * 2), *s16 = malloc((size_t)(rows * nb) * 2);
        memcpy(s16, sc->data, (size_t)(rows * nb) * 2);
        gf_matrix W = {t[i].data, s16, GF_DTYPE_Q8, rows, cols};
        for (int64_t r = 0; r < rows; r++)
            gf_q8_get_row(&W, r, q + r * cols, sv + r * nb);
        memcpy(t[i].data, q, (size_t)(rows * cols));
        memcpy(sc->data, sv, (size_t)(rows * nb) * 2);
        free(q);
        free(sv);
        free(s16);
        plain++;
    }
    cr_assert_gt(plain, 200);
    char *tmp = tl_path(dir, "plain.safetensors");
    tl_write_safetensors(tmp, t, n, 0); /* no __metadata__ */
    if (scheme) { /* the metadata 0.1 wrote */
        char meta[400];
        snprintf(meta, sizeof meta, "{\"__metadata__\":{\"gemfa.quantization\":\"%s\"},", scheme);
        tl_rewrite_header(tmp, path, "{", meta);
        unlink(tmp);
    } else {
        rename(tmp, path);
    }
    free(tmp);
    free(path);
    tl_free_tensors(t, n);
}

Test(quantize, plain_row_files_are_interleaved_at_load)
{
    const char *schemes[] = {NULL, GF_Q8_SCHEME_ROWS};
    gemfa_model *ref = load(tl_tiny_dir(), GEMFA_WEIGHTS_INT8, GEMFA_OK);
    char *tp = tl_path(tl_tiny_dir(), "golden/long.tokens.i32.bin");
    size_t len;
    int32_t *ids = (int32_t *)tl_read(tp, &len);
    const size_t n = len / 4, V = 1024;
    float *b = logits(ref, ids, n, V);
    for (int i = 0; i < 2; i++) {
        char *dir = quantized_tiny();
        write_plain_rows(dir, schemes[i]);
        gemfa_model *q = load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_OK);
        const gf_layer *L = &q->layers[3];
        cr_expect_eq(L->gate_proj.dtype, GF_DTYPE_Q8);
        cr_expect(!inside(L->gate_proj.data, q->shards), "copied to be interleaved");
        float *a = logits(q, ids, n, V);
        cr_expect_eq(memcmp(a, b, n * V * sizeof *a), 0, "plain rows (%s) vs int8 at load",
                     schemes[i] ? "0.1 metadata" : "no metadata");
        free(a);
        gemfa_model_free(q);
        tl_rmtree(dir);
    }
    free(b);
    free(ids);
    free(tp);
    gemfa_model_free(ref);
}

Test(quantize, unknown_scheme_is_refused)
{
    char *dir = quantized_tiny();
    char *path = tl_path(dir, "model.safetensors");
    char *bad = tl_path(dir, "bad.safetensors");
    tl_rewrite_header(path, bad, "q8_0-r16:", "q4_k-x99:");
    rename(bad, path);
    cr_expect_null(load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_UNSUPPORTED));
    cr_expect_not_null(strstr(gemfa_last_error(), "unknown quantization scheme \"q4_k-x99:"),
                       "%s", gemfa_last_error());
    free(path);
    free(bad);
    tl_rmtree(dir);
}

Test(quantize, other_weight_types_are_refused)
{
    char *dir = quantized_tiny();
    const gemfa_weight_type types[] = {GEMFA_WEIGHTS_F32, GEMFA_WEIGHTS_F16, GEMFA_WEIGHTS_BF16};
    for (int i = 0; i < 3; i++) {
        cr_expect_null(load(dir, types[i], GEMFA_ERR_UNSUPPORTED));
        cr_expect_not_null(strstr(gemfa_last_error(), "pre-quantized int8"), "%s",
                           gemfa_last_error());
    }
    tl_rmtree(dir);
}

Test(quantize, damaged_scales)
{
    char *dir = quantized_tiny();
    char *path = tl_path(dir, "model.safetensors");
    char *bad = tl_path(dir, "bad.safetensors");
    /* scales renamed away: the int8 tensor has none */
    tl_rewrite_header(path, bad, "layers.0.mlp.gate_proj.weight_scale",
                      "layers.0.mlp.gate_proj.weight_scalX");
    rename(bad, path);
    cr_expect_null(load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_TENSOR_MISSING));
    cr_expect_not_null(strstr(gemfa_last_error(), "gate_proj.weight_scale"), "%s",
                       gemfa_last_error());
    free(path);
    free(bad);
    tl_rmtree(dir);
}

Test(quantize, errors)
{
    gf_quantize_stats stats;
    char *dir = quantized_tiny();
    char *other = tl_tmpdir();
    cr_expect_eq(gf_quantize_checkpoint(dir, other, 1, NULL, NULL, &stats), GEMFA_ERR_UNSUPPORTED,
                 "already quantized");
    cr_expect_not_null(strstr(gemfa_last_error(), "already int8"));
    cr_expect_eq(gf_quantize_checkpoint(dir, dir, 1, NULL, NULL, &stats),
                 GEMFA_ERR_INVALID_ARGUMENT, "into itself");
    tl_write_str(other, "model.safetensors.index.json", "{}");
    cr_expect_eq(gf_quantize_checkpoint(tl_tiny_dir(), other, 1, NULL, NULL, &stats),
                 GEMFA_ERR_INVALID_ARGUMENT, "an index would shadow the output");
    cr_expect_eq(gf_quantize_checkpoint("/nonexistent-gemfa", dir, 1, NULL, NULL, &stats),
                 GEMFA_ERR_NOT_FOUND);
    cr_expect_eq(gf_quantize_checkpoint(NULL, dir, 1, NULL, NULL, &stats),
                 GEMFA_ERR_INVALID_ARGUMENT);
    char *missing = tl_path(other, "model.safetensors");
    cr_expect_neq(access(missing, F_OK), 0, "no weights written after a failure");
    free(missing);
    tl_rmtree(other);
    tl_rmtree(dir);
}

static int cancel_at_half(void *user, float fraction, const char *stage)
{
    (void)stage;
    *(int *)user += 1;
    return fraction >= 0.5f;
}

Test(quantize, progress_and_cancel)
{
    char *dir = tl_tmpdir();
    gf_quantize_stats stats;
    int calls = 0;
    cr_expect_eq(gf_quantize_checkpoint(tl_tiny_dir(), dir, 1, cancel_at_half, &calls, &stats),
                 GEMFA_ERR_CANCELLED);
    cr_expect_gt(calls, 1);
    char *p = tl_path(dir, "model.safetensors"), *t = tl_path(dir, "model.safetensors.tmp");
    cr_expect_neq(access(p, F_OK), 0);
    cr_expect_neq(access(t, F_OK), 0, "the temporary file is removed");
    free(p);
    free(t);
    tl_rmtree(dir);
}
