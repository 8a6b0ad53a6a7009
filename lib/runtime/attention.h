/* attention.h — the KV-cache side of an attention layer: storing the new
 * keys/values of a batch and attending with queries over a cache.  The
 * projections, norms and RoPE happen before (gemma3n.c). */
#ifndef GF_RUNTIME_ATTENTION_H
#define GF_RUNTIME_ATTENTION_H

#include <stdint.h>

#include "kernels/threadpool.h"
#include "loader/hparams.h"
#include "runtime/batch.h"

/* Keys per online-softmax block (scores of one block per query head are
 * all that is ever held) and per split (a run of positions whose partial
 * result -- running max, sum, unnormalised output -- is merged with the
 * other splits').  Both are fixed, never derived from the thread count or
 * the batch, so every row's result is the same bits however it is run. */
#define GF_ATTN_BLOCK 128
#define GF_ATTN_SPLIT 512

/* Writes row t's k[t] and v[t] ([n_kv·d] each, head-major) into layer
 * `layer`'s store of row t's cache at slot pos[t] % n_slots, in the
 * cache's KV type. */
void gf_kv_store(const gf_hparams *hp, int layer, const gf_batch *b, const float *k,
                 const float *v);

/* Floats of scratch gf_attend needs for rows that see at most `max_keys`
 * keys: `per_thread` for each of the pool's threads (one block of scores
 * per query head of a KV group, and the partial results of one row's
 * splits), then `shared` once (the partials of a few rows split across
 * threads). */
int64_t gf_attend_scores_per_thread(const gf_hparams *hp, int64_t max_keys);
int64_t gf_attend_shared_floats(const gf_hparams *hp, int64_t max_keys);

/* For every row and query head: softmax(q·K) V over the keys the layer's
 * mask allows (full: 0..pos; sliding: pos − W + 1..pos), read from the
 * store of hp->kv_source[layer] (f32 or f16 entries); scale 1.0.  q and
 * out are [n][n_heads·d].
 * Flash-style: keys are visited in blocks of GF_ATTN_BLOCK with a running
 * max and sum (online softmax), in splits of GF_ATTN_SPLIT positions
 * merged at the end.  A batch of few rows (one decode token, a small
 * batched step) spreads its (row, KV head, split) items over the pool, so a
 * single token at a long position uses every thread; larger batches spread
 * (row, KV head) items, each running its splits in order.  The query heads
 * of a KV group share each key and value read.
 * `scores` holds gf_threadpool_size(pool) blocks of `scores_per_thread`
 * floats (>= gf_attend_scores_per_thread) followed by
 * gf_attend_shared_floats floats, for rows of at most the max_keys used
 * to size them.  pool may be NULL.
 * Returns 1 when it ran on the pool, 0 when on the calling thread alone. */
int gf_attend(gf_threadpool *pool, const gf_hparams *hp, int layer, const gf_batch *b,
              const float *q, float *out, float *scores, int64_t scores_per_thread);

#endif
