/* bench_spec.h — `gemfa bench --speculative-oracle K`: the verification
 * side of speculative decoding.  A plain greedy run records its tokens; a
 * speculator whose draft replays them (an oracle: always right, free)
 * then generates the same tokens, k + 1 per batched pass of the model. */
#ifndef GEMFA_BENCH_SPEC_H
#define GEMFA_BENCH_SPEC_H

#include <stdint.h>
#include <stdio.h>

#include "gemfa.h"

typedef struct bench_spec_result {
    int k;
    double plain_tok_s;    /* greedy sample + one-token decode per token */
    double spec_tok_s;     /* speculator steps with the oracle draft */
    double speedup;        /* spec_tok_s / plain_tok_s */
    double acceptance;     /* accepted / drafted (1 unless batch numerics break a near-tie) */
    double tokens_per_step;
    double plain_step_ms;  /* median plain step */
    double verify_ms;      /* median speculator step: one pass over k + 1 rows */
    int same_tokens;       /* the speculative output equals the plain one */
} bench_spec_result;

/* Runs both on a new session of `ctx` after prompt[0..n_prompt), n_decode
 * tokens each (repeat times; medians).  Returns the status of a failed
 * library call. */
gemfa_status bench_spec_run(gemfa_context *ctx, const int32_t *prompt, size_t n_prompt,
                            size_t n_decode, int k, int repeat, bench_spec_result *out);

/* ,"speculative": {...} for the JSON report, or text lines. */
void bench_spec_print(FILE *f, const bench_spec_result *r, int json);

#endif
