/* session.h — struct gemfa_session: one conversation's tokens, KV cache and
 * last logits. */
#ifndef GF_RUNTIME_SESSION_H
#define GF_RUNTIME_SESSION_H

#include <stdint.h>

#include "gemfa.h"
#include "runtime/kvcache.h"

struct gemfa_session_options {
    int64_t max_context; /* 0 = the model's max_position_embeddings */
    gemfa_kv_type kv_type;
    int kv_type_set;     /* set explicitly: a loaded state must have this type */
};

struct gemfa_session {
    gemfa_context *ctx;
    int64_t max_context;
    int64_t n_tokens;  /* committed positions */
    int64_t max_chunk; /* rows per forward pass its sliding rings allow */
    int32_t *tokens;   /* [max_context] committed ids */
    float *logits;     /* [vocab] logits of the last committed position */
    int has_logits;
    gf_kvcache kv;
    /* Lowest position whose keys/values every sliding ring still holds
     * (ring slots of older positions were overwritten).  A truncation to n
     * is O(1) when the W − 1 positions before n are all at or above it
     * (gf_session_rollback_cheap); otherwise it re-decodes from 0. */
    int64_t ring_lo;
};

/* An empty session of max_context positions (validated by the caller)
 * whose sliding rings hold ring_slots slots, K/V entries of kv_type, with the context's buffers
 * grown for it.  Errors: OUT_OF_MEMORY (nothing allocated).
 * gf_session_destroy frees it (NULL is a no-op). */
gemfa_status gf_session_create(gemfa_context *ctx, int64_t max_context, int64_t ring_slots,
                               gemfa_kv_type kv_type, gemfa_session **out);
void gf_session_destroy(gemfa_session *s);
/* Ring slots a new session on ctx gets: W − 1 + the context's chunk. */
int64_t gf_session_default_ring(const gemfa_context *ctx);
/* 1 when truncating s to n keeps every key the next position needs. */
int gf_session_rollback_cheap(const gemfa_session *s, int64_t n);

#endif
