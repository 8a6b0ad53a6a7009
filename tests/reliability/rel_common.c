/* rel_common.c — see rel_common.h. */
#include "rel_common.h"

#include "rel_criterion.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rel_tiny_dir(void)
{
    static char path[4096];
    const char *data = getenv("GEMFA_TEST_DATA");
    cr_assert_not_null(data, "GEMFA_TEST_DATA is not set (run through meson test)");
    snprintf(path, sizeof path, "%s/tiny-gemma3n", data);
    return path;
}

gemfa_model *rel_load(gemfa_weight_type weights)
{
    gemfa_model_options *o = NULL;
    gemfa_model *m = NULL;
    cr_assert_eq(gemfa_model_options_new(&o), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_set_weights(o, weights), GEMFA_OK);
    gemfa_status st = gemfa_model_load(rel_tiny_dir(), o, &m);
    gemfa_model_options_free(o);
    cr_assert_eq(st, GEMFA_OK, "load: %s", gemfa_last_error());
    return m;
}

gemfa_context *rel_context(const gemfa_model *m, int n_threads, gemfa_cancel_fn cancel,
                           void *user)
{
    gemfa_context_options *o = NULL;
    gemfa_context *ctx = NULL;
    cr_assert_eq(gemfa_context_options_new(&o), GEMFA_OK);
    cr_assert_eq(gemfa_context_options_set_threads(o, n_threads), GEMFA_OK);
    cr_assert_eq(gemfa_context_options_set_cancel(o, cancel, user), GEMFA_OK);
    gemfa_status st = gemfa_context_new(m, o, &ctx);
    gemfa_context_options_free(o);
    cr_assert_eq(st, GEMFA_OK, "context: %s", gemfa_last_error());
    return ctx;
}

int32_t *rel_chat_prompt(const gemfa_model *m, const char *text, size_t *n)
{
    gemfa_message msg = {"user", text, GEMFA_NUL_TERMINATED};
    size_t need = 0;
    cr_assert_eq(gemfa_chat_tokenize(m, &msg, 1, 1, 0, NULL, 0, &need),
                 GEMFA_ERR_BUFFER_TOO_SMALL);
    int32_t *ids = malloc(need * sizeof *ids);
    cr_assert_not_null(ids);
    cr_assert_eq(gemfa_chat_tokenize(m, &msg, 1, 1, 0, ids, need, n), GEMFA_OK, "%s",
                 gemfa_last_error());
    return ids;
}

int32_t rel_argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return (int32_t)best;
}

gemfa_status rel_greedy(gemfa_session *s, const int32_t *prompt, size_t n_prompt, size_t steps,
                        rel_run *out)
{
    memset(out, 0, sizeof *out);
    if (steps > sizeof out->ids / sizeof out->ids[0])
        return GEMFA_ERR_INVALID_ARGUMENT;
    const float *lg = NULL;
    gemfa_status st = gemfa_decode(s, prompt, n_prompt, &lg);
    if (st != GEMFA_OK)
        return st;
    size_t nv = 0;
    if ((st = gemfa_session_logits(s, &lg, &nv)) != GEMFA_OK)
        return st;
    for (size_t i = 0; i < steps; i++) {
        int32_t id = rel_argmax(lg, nv);
        out->ids[out->n_ids++] = id;
        if ((st = gemfa_decode(s, &id, 1, &lg)) != GEMFA_OK)
            return st;
    }
    out->last_logits = malloc(nv * sizeof(float));
    if (!out->last_logits)
        return GEMFA_ERR_OUT_OF_MEMORY;
    memcpy(out->last_logits, lg, nv * sizeof(float));
    out->n_vocab = nv;
    return GEMFA_OK;
}

void rel_run_free(rel_run *r)
{
    free(r->last_logits);
    r->last_logits = NULL;
}

int rel_run_equal(const rel_run *a, const rel_run *b)
{
    return a->n_ids == b->n_ids && !memcmp(a->ids, b->ids, a->n_ids * sizeof a->ids[0]) &&
           a->n_vocab == b->n_vocab && a->last_logits && b->last_logits &&
           !memcmp(a->last_logits, b->last_logits, a->n_vocab * sizeof(float));
}
