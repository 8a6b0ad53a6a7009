/* rel_common.h — helpers shared by the reliability tests: the tiny model,
 * prompts through the chat template, and a greedy generation loop that
 * records every step so runs can be compared bit for bit. */
#ifndef REL_COMMON_H
#define REL_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "gemfa.h"

/* $GEMFA_TEST_DATA/tiny-gemma3n (static buffer). */
const char *rel_tiny_dir(void);

/* Loads the tiny model; aborts the test on failure. */
gemfa_model *rel_load(gemfa_weight_type weights);

/* A context with `n_threads` threads (and an optional cancel callback). */
gemfa_context *rel_context(const gemfa_model *m, int n_threads, gemfa_cancel_fn cancel,
                           void *user);

/* "<bos><start_of_turn>user\n{text}<end_of_turn>\n<start_of_turn>model\n"
 * as ids (malloc'd; *n their count). */
int32_t *rel_chat_prompt(const gemfa_model *m, const char *text, size_t *n);

/* What a greedy run produced: the generated ids and the last logits. */
typedef struct rel_run {
    int32_t ids[64];
    size_t n_ids;
    float *last_logits; /* malloc'd, n_vocab floats */
    size_t n_vocab;
} rel_run;

/* Decodes the prompt, then `steps` times picks the argmax (lowest id on
 * ties) and decodes it.  Returns GEMFA_OK or the first failing status (a
 * test may run this off the main thread, so it does not assert). */
gemfa_status rel_greedy(gemfa_session *s, const int32_t *prompt, size_t n_prompt, size_t steps,
                        rel_run *out);
void rel_run_free(rel_run *r);
/* 1 when both runs made the same ids and bit-identical last logits. */
int rel_run_equal(const rel_run *a, const rel_run *b);

/* First index of the largest value (ties: lowest index). */
int32_t rel_argmax(const float *v, size_t n);

#endif
