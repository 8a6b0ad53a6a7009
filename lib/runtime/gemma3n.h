/* gemma3n.h — the Gemma 3n text decoder forward pass (spec §3–§6):
 * embed → per-layer inputs → AltUp streams → layers (AltUp predict,
 * attention, LAuReL, sparse MLP, AltUp correct, PLE injection) → unembed →
 * final norm → tied LM head → softcap.  Computes in float32. */
#ifndef GF_RUNTIME_GEMMA3N_H
#define GF_RUNTIME_GEMMA3N_H

#include <stddef.h>
#include <stdint.h>

#include "gemfa.h"
#include "loader/model.h"
#include "runtime/batch.h"
#include "runtime/context.h"

/* GEMFA_OK if `id` can be embedded: 0 <= id < vocab_size, and an id >=
 * vocab_size_per_layer_input only when the checkpoint has the multimodal
 * embedder of its range (HF semantics).  Else INVALID_TOKEN with a message. */
gemfa_status gf_check_token(const gemfa_model *m, int32_t id);

/* Forward-pass buffers for up to `rows` rows; NULL when out of memory. */
struct gf_scratch *gf_scratch_new(const gemfa_model *m, int64_t rows);
void gf_scratch_free(struct gf_scratch *s);

/* Runs the rows of `b` through the model with ctx's scratch (b->n <=
 * ctx->chunk): appends their keys/values to the caches (at slots beyond
 * what the caller has committed) and writes the requested logits.
 * Errors: CANCELLED (the callback was polled before each layer and the
 * output; the caches may hold new entries at uncommitted positions). */
gemfa_status gf_forward(gemfa_context *ctx, const gf_batch *b);

#endif
