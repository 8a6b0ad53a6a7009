/* batch.h — the rows one forward pass processes.  Each row is one token at
 * an absolute position, with the KV cache it appends to and attends over.
 * A prompt chunk of one session is n rows sharing one cache at consecutive
 * positions; a batched decode step is one row per session.
 *
 * Rows sharing a cache must have consecutive increasing positions, and a
 * ring cache must hold at least W − 1 + (its rows in this batch) slots, so
 * that writing the new keys never evicts one that a row still needs. */
#ifndef GF_RUNTIME_BATCH_H
#define GF_RUNTIME_BATCH_H

#include <stdint.h>

#include "runtime/kvcache.h"

typedef struct gf_batch {
    int64_t n;             /* rows, 1 .. the context's chunk capacity */
    const int32_t *ids;    /* [n] token ids, already validated (gf_check_token) */
    const int64_t *pos;    /* [n] absolute positions */
    gf_kvcache *const *kv; /* [n] cache of each row */
    float *logits;         /* logits of rows [logits_from, n), row-major [n − from][vocab] */
    int64_t logits_from;   /* n: no logits wanted */
} gf_batch;

#endif
