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
    const char *draft;     /* "oracle" or the --draft SPEC */
    double plain_tok_s;    /* greedy sample + one-token decode per token */
    double spec_tok_s;     /* speculator steps with the oracle draft */
    double speedup;        /* spec_tok_s / plain_tok_s */
    double acceptance;     /* accepted / drafted (1 unless batch numerics break a near-tie) */
    double tokens_per_step;
    double plain_step_ms;  /* median plain step */
    double verify_ms;      /* median speculator step: one pass over k + 1 rows */
    int same_tokens;       /* the speculative output equals the plain one */
    double draft_row_ms;   /* a model draft: mean time per position it decoded */
} bench_spec_result;

/* Runs both on a new session of `ctx` after prompt[0..n_prompt), n_decode
 * tokens each (repeat times; medians).  draft NULL: the oracle; else a
 * speculator drafting with that model (named draft_name), to measure a
 * real draft's cost and acceptance.  Returns the status of a failed
 * library call. */
struct gf_profile;
/* prof (may be NULL) accumulates the target's passes during the
 * speculator's steps (bench --profile). */
gemfa_status bench_spec_run(gemfa_context *ctx, const gemfa_model *draft, const char *draft_name,
                            const int32_t *prompt, size_t n_prompt, size_t n_decode, int k,
                            int repeat, struct gf_profile *prof, bench_spec_result *out);

/* ,"speculative": {...} for the JSON report, or text lines. */
void bench_spec_print(FILE *f, const bench_spec_result *r, int json);

#endif
