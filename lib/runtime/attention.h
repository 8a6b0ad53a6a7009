/* attention.h — the KV-cache side of an attention layer: storing the new
 * keys/values of a batch and attending with queries over a cache.  The
 * projections, norms and RoPE happen before (gemma3n.c). */
#ifndef GF_RUNTIME_ATTENTION_H
#define GF_RUNTIME_ATTENTION_H

#include <stdint.h>

#include "kernels/threadpool.h"
#include "loader/hparams.h"
#include "runtime/batch.h"

/* Writes row t's k[t] and v[t] ([n_kv·d] each, head-major) into layer
 * `layer`'s store of row t's cache at slot pos[t] % n_slots. */
void gf_kv_store(const gf_hparams *hp, int layer, const gf_batch *b, const float *k,
                 const float *v);

/* Floats of score scratch gf_attend needs per thread for rows that see at
 * most `max_keys` keys: one row of scores per query head of a KV group. */
int64_t gf_attend_scores_per_thread(const gf_hparams *hp, int64_t max_keys);

/* For every row and query head: softmax(q·K) over the keys the layer's mask
 * allows (full: 0..pos; sliding: pos − W + 1..pos), read from the store of
 * hp->kv_source[layer]; scale 1.0.  q and out are [n][n_heads·d].
 * The work is split over (row, KV head) pairs across the pool's threads
 * (pool may be NULL); the query heads of a KV group share each key and
 * value read.  `scores` holds gf_threadpool_size(pool) blocks of
 * `scores_per_thread` floats (>= gf_attend_scores_per_thread).
 * Returns 1 when it ran on the pool, 0 when on the calling thread alone. */
int gf_attend(gf_threadpool *pool, const gf_hparams *hp, int layer, const gf_batch *b,
               const float *q, float *out, float *scores, int64_t scores_per_thread);

#endif
