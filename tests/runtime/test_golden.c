/* test_golden.c — the forward pass against the float64 reference
 * (tests/data/tiny-gemma3n/golden, from gemma3n_ref.py): final logits of the
 * `short` and `long` sequences, and every intermediate of `short`, layer by
 * layer, so that a regression names the first layer and step that moved. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_helpers.h"
#include "runtime/context.h"

#define TINY "tiny-gemma3n"
/* golden.json: float32 engines stay within 1e-2 of the float64 logits (numpy
 * f32 measured 2.6e-3) and keep every argmax whose top-2 margin > 0.05. */
#define LOGITS_TOL 1e-2
#define MARGIN 0.05
/* golden.json: streams relative error max|a−b| / max(1, max|b|) <= 2e-4. */
#define STREAM_TOL 2e-4

static void run_sequence(gemfa_weight_type w, const char *seq, double tol)
{
    char name[64];
    size_t n_ids, n_logits;
    snprintf(name, sizeof name, "%s.tokens.i32.bin", seq);
    int32_t *ids = rt_golden_i32(TINY, name, &n_ids);
    snprintf(name, sizeof name, "%s.logits.f32.bin", seq);
    float *want = rt_golden_f32(TINY, name, &n_logits);

    gemfa_model *m = rt_load(TINY, w);
    gemfa_context *ctx = rt_context(m);
    gemfa_session *s = rt_session(ctx, 0);
    const size_t V = n_logits / n_ids;
    float *got = malloc(n_logits * sizeof(float));
    gemfa_status st = gemfa_decode_all(s, ids, n_ids, got, n_logits);
    cr_assert_eq(st, GEMFA_OK, "%s", gemfa_last_error());
    cr_assert_eq(gemfa_session_n_tokens(s), n_ids);
    double d = rt_check_logits(seq, got, want, n_ids, V, tol, MARGIN);
    cr_log_info("%s: max |logit diff| %.3g", seq, d);

    const float *last;
    size_t nv;
    cr_assert_eq(gemfa_session_logits(s, &last, &nv), GEMFA_OK);
    cr_assert_eq(nv, V);
    cr_assert_eq(memcmp(last, got + (n_ids - 1) * V, V * sizeof(float)), 0,
                 "session logits are the last row");
    free(got);
    free(want);
    free(ids);
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
}

Test(golden, short_f32) { run_sequence(GEMFA_WEIGHTS_F32, "short", LOGITS_TOL); }
Test(golden, long_f32) { run_sequence(GEMFA_WEIGHTS_F32, "long", LOGITS_TOL); }

/* BF16 as stored: the checkpoint is bf16, the reference widened those same
 * values exactly, and compute stays f32, so only the kernels' summation
 * order differs from the F32 mode: the F32 tolerance applies unchanged. */
Test(golden, short_as_stored) { run_sequence(GEMFA_WEIGHTS_AUTO, "short", LOGITS_TOL); }
Test(golden, long_as_stored) { run_sequence(GEMFA_WEIGHTS_AUTO, "long", LOGITS_TOL); }

/* ---- per-layer dumps ---------------------------------------------------- */

#define MAX_DUMPS 512
typedef struct dump_store {
    int n;
    struct {
        char key[64];
        float *data; /* [n_streams][rows][width] packed */
        size_t count;
    } e[MAX_DUMPS];
} dump_store;

static void collect(void *user, const char *name, int layer, const float *data, int n_streams,
                    int64_t stream_stride, int64_t n_rows, int64_t width)
{
    dump_store *d = user;
    cr_assert_lt(d->n, MAX_DUMPS);
    if (layer >= 0)
        snprintf(d->e[d->n].key, sizeof d->e[d->n].key, "L%02d.%s", layer, name);
    else
        snprintf(d->e[d->n].key, sizeof d->e[d->n].key, "%s", name);
    const size_t block = (size_t)(n_rows * width);
    float *copy = malloc((size_t)n_streams * block * sizeof(float));
    for (int s = 0; s < n_streams; s++)
        memcpy(copy + s * block, data + s * stream_stride, block * sizeof(float));
    d->e[d->n].data = copy;
    d->e[d->n].count = (size_t)n_streams * block;
    d->n++;
}

static const float *find(const dump_store *d, const char *key, size_t *count)
{
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->e[i].key, key) == 0) {
            *count = d->e[i].count;
            return d->e[i].data;
        }
    return NULL;
}

static double rel_err(const float *got, const float *want, size_t n)
{
    double mx = 1.0;
    for (size_t i = 0; i < n; i++)
        if (fabsf(want[i]) > mx)
            mx = fabsf(want[i]);
    return rt_max_abs_diff(got, want, n) / mx;
}

static void expect_dump(const dump_store *d, const char *key)
{
    char file[96];
    size_t n_want, n_got = 0;
    snprintf(file, sizeof file, "short.%s.f32.bin", key);
    float *want = rt_golden_f32(TINY, file, &n_want);
    const float *got = find(d, key, &n_got);
    cr_expect_not_null(got, "%s was not dumped", key);
    if (got) {
        cr_expect_eq(n_got, n_want, "%s: %zu values, golden %zu", key, n_got, n_want);
        if (n_got == n_want) {
            double e = rel_err(got, want, n_want);
            cr_expect(e <= STREAM_TOL, "%s: relative error %.3g > %.3g", key, e, STREAM_TOL);
        }
    }
    free(want);
}

Test(golden, short_layer_by_layer)
{
    size_t n_ids;
    int32_t *ids = rt_golden_i32(TINY, "short.tokens.i32.bin", &n_ids);
    gemfa_model *m = rt_load(TINY, GEMFA_WEIGHTS_F32);
    gemfa_context *ctx = rt_context(m);
    gemfa_session *s = rt_session(ctx, 0);
    int64_t V, L;
    cr_assert_eq(gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &V), GEMFA_OK);
    cr_assert_eq(gemfa_model_get(m, GEMFA_PROP_N_LAYERS, &L), GEMFA_OK);
    dump_store *d = calloc(1, sizeof *d);
    gf_context_set_dump(ctx, collect, d);
    float *logits = malloc(n_ids * (size_t)V * sizeof(float));
    cr_assert_eq(gemfa_decode_all(s, ids, n_ids, logits, n_ids * (size_t)V), GEMFA_OK, "%s",
                 gemfa_last_error());

    expect_dump(d, "inputs_embeds");
    expect_dump(d, "per_layer_inputs");
    expect_dump(d, "streams_init");
    static const char *const steps[] = {"predictions", "laurel_out", "attn_out", "attn_laurel",
                                        "ffn_out", "ple_injection", "streams_out"};
    for (int l = 0; l < L; l++)
        for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
            char key[64];
            snprintf(key, sizeof key, "L%02d.%s", l, steps[k]);
            expect_dump(d, key);
        }
    expect_dump(d, "final_hidden");
    /* Raw logits reach ±36: compare absolutely, with the logits tolerance. */
    size_t n_raw, n_got;
    float *raw = rt_golden_f32(TINY, "short.logits_raw.f32.bin", &n_raw);
    const float *got = find(d, "logits_raw", &n_got);
    cr_assert_not_null(got);
    cr_assert_eq(n_got, n_raw);
    cr_expect(rt_max_abs_diff(got, raw, n_raw) <= LOGITS_TOL, "logits_raw differ by %.3g",
              rt_max_abs_diff(got, raw, n_raw));

    for (int i = 0; i < d->n; i++)
        free(d->e[i].data);
    free(d);
    free(raw);
    free(logits);
    free(ids);
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
}
