/* cost.h — what one decode step reads from memory, computed from the model:
 * the denominator of the bandwidth roofline (gemfa bench). */
#ifndef GF_RUNTIME_COST_H
#define GF_RUNTIME_COST_H

#include <stdint.h>

#include "loader/model.h"

typedef struct gf_decode_bytes {
    int64_t weights; /* every matrix the step multiplies by, once (LM head included) */
    int64_t gathers; /* the embed_tokens row and the per-layer-table row of the token */
    int64_t kv;      /* keys and values the attention layers read at that context */
    int64_t total;   /* the sum */
} gf_decode_bytes;

/* Bytes one token of one session reads when it is decoded at position
 * `pos` (so it attends over pos + 1 keys; sliding layers over at most W).
 * KV-shared layers count the keys they read from their source layer again.
 * Small f32 vectors (norm gains, AltUp coefficients) are left out (< 0.1 %). */
void gf_decode_bytes_at(const gemfa_model *m, int64_t pos, gf_decode_bytes *out);

/* Bytes of a matrix's data (Q8: int8 values plus f16 scales); 0 when unbound. */
int64_t gf_matrix_bytes(const gf_matrix *w);

#endif
