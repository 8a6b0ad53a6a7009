/* adjust.h — the logits processors that run before the warpers, in HF's
 * order: logit bias (HF's SequenceBiasLogitsProcessor comes first), then
 * the repetition penalty, then OpenAI's frequency and presence penalties. */
#ifndef GF_ADJUST_H
#define GF_ADJUST_H

#include <stddef.h>
#include <stdint.h>

#include "sampling/sampler.h"

/* Sets *scores to the logits after bias and penalties.  When neither
 * applies that is `logits` itself (not copied: readers apply gf_score);
 * otherwise a copy in s->work (which must hold n floats) with gf_score
 * applied before and after each change.  Reserves the counting scratch
 * it needs.  Errors: INVALID_TOKEN (a bias id >= n, or a history id the
 * penalties read outside [0, n)), OUT_OF_MEMORY.  On error s->work may
 * hold partial data but nothing else changed. */
gemfa_status gf_adjust_logits(gemfa_sampler *s, const float *logits, size_t n,
                              const int32_t *history, size_t n_history, const float **scores);

#endif
