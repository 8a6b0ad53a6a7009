/* session.h — struct gemfa_session: one conversation's tokens, KV cache and
 * last logits. */
#ifndef GF_RUNTIME_SESSION_H
#define GF_RUNTIME_SESSION_H

#include <stdint.h>

#include "gemfa.h"
#include "runtime/kvcache.h"

struct gemfa_session_options {
    int64_t max_context; /* 0 = the model's max_position_embeddings */
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
};

#endif
