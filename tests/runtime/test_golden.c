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
#define LOGITS_TOL RT_LOGITS_TOL
#define MARGIN RT_MARGIN

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

/* Every intermediate of `short`, layer by layer (see rt_check_dumps). */
Test(golden, short_layer_by_layer)
{
    gemfa_model *m = rt_load(TINY, GEMFA_WEIGHTS_F32);
    rt_check_dumps(m, TINY, "short");
    gemfa_model_free(m);
}
