/* attention.h — the KV-cache side of an attention layer: storing the new
 * keys/values of a batch and attending with queries over a cache.  The
 * projections, norms and RoPE happen before (gemma3n.c). */
#ifndef GF_RUNTIME_ATTENTION_H
#define GF_RUNTIME_ATTENTION_H

#include <stdint.h>

#include "loader/hparams.h"
#include "runtime/batch.h"

/* Writes row t's k[t] and v[t] ([n_kv·d] each, head-major) into layer
 * `layer`'s store of row t's cache at slot pos[t] % n_slots. */
void gf_kv_store(const gf_hparams *hp, int layer, const gf_batch *b, const float *k,
                 const float *v);

/* For every row and query head: softmax(q·K) over the keys the layer's mask
 * allows (full: 0..pos; sliding: pos − W + 1..pos), read from the store of
 * hp->kv_source[layer]; scale 1.0.  q and out are [n][n_heads·d].
 * `scores` holds at least max(keys a row may see) floats. */
void gf_attend(const gf_hparams *hp, int layer, const gf_batch *b, const float *q, float *out,
               float *scores);

#endif
