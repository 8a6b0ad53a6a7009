/* fingerprint.h — a 64-bit fingerprint of everything that decides what a
 * session's KV cache and logits mean: the decoder settings, the weights as
 * the forward pass reads them (type, shape and sampled contents of every
 * tensor) and the options that change them.  A saved session state carries
 * it; loading refuses a state whose fingerprint differs. */
#ifndef GF_RUNTIME_FINGERPRINT_H
#define GF_RUNTIME_FINGERPRINT_H

#include <stdint.h>

#include "loader/model.h"

/* Version of what the fingerprint covers; bumped when the recipe changes. */
#define GF_FINGERPRINT_RECIPE 1

/* Deterministic across processes and platforms of the same endianness.
 * Reads every small f32 vector whole and 16 windows of 32 bytes (plus the
 * Q8 scales) of every matrix: cheap on a mapped checkpoint, and any
 * retrained or fine-tuned weights change it.  Never fails. */
uint64_t gf_model_fingerprint(const gemfa_model *m);

#endif
