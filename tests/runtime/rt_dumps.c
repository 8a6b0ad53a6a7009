/* rt_dumps.c — compares every intermediate tensor of a forward pass with
 * the per-layer dumps of gemma3n_ref.py golden (see rt_helpers.h). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_helpers.h"
#include "runtime/context.h"

#define MAX_DUMPS 1024

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
    cr_assert_not_null(copy);
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

/* golden.json: max|a − b| / max(1, max|b|). */
static double rel_err(const float *got, const float *want, size_t n)
{
    double mx = 1.0;
    for (size_t i = 0; i < n; i++)
        if (fabsf(want[i]) > mx)
            mx = fabsf(want[i]);
    return rt_max_abs_diff(got, want, n) / mx;
}

static void expect_dump(const dump_store *d, const char *golden_dir, const char *seq,
                        const char *key, double tol, int relative)
{
    char file[128];
    size_t n_want, n_got = 0;
    snprintf(file, sizeof file, "%s.%s.f32.bin", seq, key);
    float *want = rt_golden_f32(golden_dir, file, &n_want);
    const float *got = find(d, key, &n_got);
    cr_expect_not_null(got, "%s was not dumped", key);
    if (got) {
        cr_expect_eq(n_got, n_want, "%s: %zu values, golden %zu", key, n_got, n_want);
        if (n_got == n_want) {
            double e = relative ? rel_err(got, want, n_want) : rt_max_abs_diff(got, want, n_want);
            cr_expect(e <= tol, "%s: %s: %s error %.3g > %.3g", golden_dir, key,
                      relative ? "relative" : "absolute", e, tol);
        }
    }
    free(want);
}

void rt_check_dumps(gemfa_model *m, const char *golden_dir, const char *seq)
{
    char name[96];
    size_t n_ids;
    snprintf(name, sizeof name, "%s.tokens.i32.bin", seq);
    int32_t *ids = rt_golden_i32(golden_dir, name, &n_ids);
    gemfa_context *ctx = rt_context(m);
    gemfa_session *s = rt_session(ctx, 0);
    int64_t V, L;
    cr_assert_eq(gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &V), GEMFA_OK);
    cr_assert_eq(gemfa_model_get(m, GEMFA_PROP_N_LAYERS, &L), GEMFA_OK);
    dump_store *d = calloc(1, sizeof *d);
    gf_context_set_dump(ctx, collect, d);
    float *logits = rt_decode_all(s, ids, n_ids, (size_t)V);

    expect_dump(d, golden_dir, seq, "inputs_embeds", RT_STREAM_TOL, 1);
    expect_dump(d, golden_dir, seq, "per_layer_inputs", RT_STREAM_TOL, 1);
    expect_dump(d, golden_dir, seq, "streams_init", RT_STREAM_TOL, 1);
    static const char *const steps[] = {"predictions", "laurel_out", "attn_out", "attn_laurel",
                                        "ffn_out", "ple_injection", "streams_out"};
    for (int l = 0; l < L; l++)
        for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
            char key[64];
            snprintf(key, sizeof key, "L%02d.%s", l, steps[k]);
            expect_dump(d, golden_dir, seq, key, RT_STREAM_TOL, 1);
        }
    expect_dump(d, golden_dir, seq, "final_hidden", RT_STREAM_TOL, 1);
    /* Raw logits reach ±36: compared absolutely, with the logits tolerance. */
    expect_dump(d, golden_dir, seq, "logits_raw", RT_LOGITS_TOL, 0);

    for (int i = 0; i < d->n; i++)
        free(d->e[i].data);
    free(d);
    free(logits);
    free(ids);
    gemfa_session_free(s);
    gemfa_context_free(ctx);
}
