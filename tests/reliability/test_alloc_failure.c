/* test_alloc_failure.c — the whole life of a program (load, chat template,
 * tokenize, context, session, decode, sample, logprobs, detokenize, stream,
 * stop strings, fork, free) with the N-th allocation of libgemfa failing, for every N the
 * scenario makes after the model is loaded and for a spread of N inside
 * the load (whose every allocation the loader and text tests already fail
 * one by one).  Each run must end in a clean OUT_OF_MEMORY with a message,
 * or succeed if the failed allocation had a fallback; the ASan run of this
 * test (tests/run_sanitizers.sh) proves that nothing leaks on any path. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "rel_common.h"

typedef struct outcome {
    gemfa_status st;
    const char *step; /* the step that failed, "done" when all ran */
} outcome;

#define STEP(name, call)         \
    do {                         \
        o.step = name;           \
        if ((o.st = (call)) != GEMFA_OK) \
            goto out;            \
    } while (0)

static outcome scenario(void)
{
    outcome o = {GEMFA_OK, ""};
    gemfa_model *m = NULL;
    gemfa_context *ctx = NULL;
    gemfa_session *s = NULL, *fork = NULL;
    gemfa_sampler *smp = NULL;
    gemfa_detok_stream *ds = NULL;
    gemfa_stop_matcher *stop = NULL;
    gemfa_context_options *co = NULL;
    gemfa_model_options *mo = NULL;
    int32_t ids[128];
    size_t n = 0, len = 0;
    char text[2048];
    const float *lg = NULL;
    size_t nv = 0;
    int32_t id = 0;
    const char *piece;

    STEP("model options", gemfa_model_options_new(&mo));
    STEP("load", gemfa_model_load(rel_tiny_dir(), mo, &m));
    gemfa_message msgs[2] = {{"system", "کوتاه جواب بده.", GEMFA_NUL_TERMINATED},
                             {"user", "سلام! <end_of_turn> حالت چطوره؟", GEMFA_NUL_TERMINATED}};
    STEP("template", gemfa_apply_chat_template(m, msgs, 2, 1, text, sizeof text, &len));
    STEP("chat_tokenize", gemfa_chat_tokenize(m, msgs, 2, 1, GEMFA_CHAT_INJECTION_SAFE, ids, 128, &n));
    STEP("tokenize", gemfa_tokenize(m, text, len, GEMFA_TOKENIZE_PARSE_SPECIAL, ids, 128, &n));
    STEP("context options", gemfa_context_options_new(&co));
    STEP("threads", gemfa_context_options_set_threads(co, 2));
    STEP("context", gemfa_context_new(m, co, &ctx));
    STEP("session", gemfa_session_new(ctx, NULL, &s));
    STEP("decode prompt", gemfa_decode(s, ids, n, &lg));
    STEP("sampler", gemfa_sampler_new(m, &smp));
    STEP("temperature", gemfa_sampler_set_temperature(smp, 0.8f));
    STEP("top_k", gemfa_sampler_set_top_k(smp, 40));
    STEP("top_p", gemfa_sampler_set_top_p(smp, 0.9f));
    STEP("penalties", gemfa_sampler_set_penalties(smp, 1.1f, 0.1f, 0.1f, 0));
    STEP("bias", gemfa_sampler_set_logit_bias(smp, 3, -1.0f));
    STEP("stream", gemfa_detok_stream_new(m, 0, &ds));
    const char *stops[] = {"</answer>", "\n\n", "خداحافظ"};
    STEP("stop matcher", gemfa_stop_matcher_new(stops, NULL, 3, &stop));
    int32_t top_ids[40];
    float top_lp[40], chosen_lp;
    size_t n_top;
    const char *released;
    size_t n_released;
    int hit;
    for (int i = 0; i < 4; i++) {
        const int32_t *hist;
        size_t nh;
        STEP("tokens", gemfa_session_tokens(s, &hist, &nh));
        STEP("logits", gemfa_session_logits(s, &lg, &nv));
        STEP("sample", gemfa_sample(smp, lg, nv, hist, nh, &id));
        STEP("logprobs", gemfa_logprobs(lg, nv, id, &chosen_lp, 40, top_ids, top_lp, &n_top));
        STEP("token bytes", gemfa_token_bytes(m, id, text, sizeof text, &len));
        STEP("feed", gemfa_detok_stream_feed(ds, id, &piece, &len));
        STEP("stop feed", gemfa_stop_matcher_feed(stop, piece, len, &released, &n_released, &hit));
        STEP("decode token", gemfa_decode(s, &id, 1, NULL));
    }
    STEP("flush", gemfa_detok_stream_flush(ds, &piece, &len));
    STEP("stop flush", gemfa_stop_matcher_flush(stop, &released, &n_released));
    STEP("fork", gemfa_session_fork(s, &fork));
    STEP("decode fork", gemfa_decode(fork, ids, 3, NULL));
    gemfa_session *both[2] = {s, fork};
    int32_t two[2] = {ids[1], ids[2]};
    STEP("decode batch", gemfa_decode_batch(ctx, both, two, 2));
    const int32_t *all;
    STEP("tokens", gemfa_session_tokens(s, &all, &n));
    STEP("detokenize", gemfa_detokenize(m, all, n, GEMFA_DETOKENIZE_SKIP_SPECIAL, text, sizeof text, &len));
    o.step = "done";
out:
    gemfa_stop_matcher_free(stop);
    gemfa_detok_stream_free(ds);
    gemfa_sampler_free(smp);
    gemfa_session_free(fork);
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    gemfa_context_options_free(co);
    gemfa_model_free(m);
    gemfa_model_options_free(mo);
    return o;
}

/* Allocations a successful load makes, and the whole scenario. */
static long count_allocs(int load_only)
{
    gf_alloc_fail_after(-1);
    if (load_only) {
        gemfa_model *m = NULL;
        cr_assert_eq(gemfa_model_load(rel_tiny_dir(), NULL, &m), GEMFA_OK);
        gemfa_model_free(m);
    } else {
        outcome o = scenario();
        cr_assert_eq(o.st, GEMFA_OK, "the scenario fails without injected failures at '%s': %s",
                     o.step, gemfa_last_error());
    }
    return gf_alloc_fail_after(-1);
}

Test(alloc_failure, every_allocation_after_the_load_and_a_spread_inside_it, .timeout = 900)
{
    long in_load = count_allocs(1);
    long total = count_allocs(0);
    cr_assert_gt(total, in_load + 20, "the scenario after loading allocates (%ld of %ld)",
                 total - in_load, total);
    const long stride = in_load / 250 + 1;
    long runs = 0;
    for (long k = 0; k < total + 3; k++) {
        if (k % stride != 0 && k < in_load - 8)
            continue; /* inside the load: a spread (the loader tests try each) */
        gf_alloc_fail_after(k);
        outcome o = scenario();
        gf_alloc_fail_after(-1);
        runs++;
        if (k >= total) { /* past the last allocation: nothing fails */
            cr_expect_eq(o.st, GEMFA_OK, "budget %ld of %ld: '%s' failed: %s", k, total, o.step,
                         gemfa_last_error());
            continue;
        }
        cr_expect_eq(o.st, GEMFA_ERR_OUT_OF_MEMORY, "allocation %ld: step '%s' gave %s: %s", k,
                     o.step, gemfa_status_name(o.st), gemfa_last_error());
        cr_expect(gemfa_last_error()[0] != '\0', "allocation %ld: no message", k);
    }
    fprintf(stderr, "alloc_failure: %ld runs over %ld allocations (%ld in the load)\n", runs,
            total, in_load);
}
