/* attention.c — see attention.h.  Plain loops: one query row and head at a
 * time over contiguous keys of its KV head. */
#include "runtime/attention.h"

#include <string.h>

#include "runtime/ops.h"

void gf_kv_store(const gf_hparams *hp, int layer, const gf_batch *b, const float *k,
                 const float *v)
{
    const int64_t d = hp->head_dim, n_kv = hp->n_kv_heads;
    for (int64_t t = 0; t < b->n; t++) {
        gf_kvcache *kv = b->kv[t];
        const gf_kv_layer *L = &kv->layers[layer];
        const int64_t slot = gf_kv_slot(L, b->pos[t]);
        for (int64_t g = 0; g < n_kv; g++) {
            memcpy(gf_kv_key(kv, L, g, slot), k + (t * n_kv + g) * d, (size_t)d * sizeof(float));
            memcpy(gf_kv_value(kv, L, g, slot), v + (t * n_kv + g) * d, (size_t)d * sizeof(float));
        }
    }
}

void gf_attend(const gf_hparams *hp, int layer, const gf_batch *b, const float *q, float *out,
               float *scores)
{
    const int64_t d = hp->head_dim, n_heads = hp->n_heads;
    const int64_t group = n_heads / hp->n_kv_heads; /* query heads per KV head */
    const int src = hp->kv_source[layer];
    for (int64_t t = 0; t < b->n; t++) {
        const gf_kvcache *kv = b->kv[t];
        const gf_kv_layer *L = &kv->layers[src];
        const int64_t pos = b->pos[t];
        /* Sliding: W keys including the current one (spec §4.3). */
        int64_t first = 0;
        if (hp->is_sliding[layer] && pos - hp->sliding_window + 1 > 0)
            first = pos - hp->sliding_window + 1;
        const int64_t n_keys = pos - first + 1;
        for (int64_t h = 0; h < n_heads; h++) {
            const int64_t g = h / group;
            const float *qh = q + (t * n_heads + h) * d;
            for (int64_t j = 0; j < n_keys; j++) {
                const float *kj = gf_kv_key(kv, L, g, gf_kv_slot(L, first + j));
                float dot = 0.0f;
                for (int64_t i = 0; i < d; i++)
                    dot += qh[i] * kj[i];
                scores[j] = dot; /* scale 1.0: the q/k norms take that role */
            }
            gf_softmax(scores, n_keys);
            float *oh = out + (t * n_heads + h) * d;
            memset(oh, 0, (size_t)d * sizeof(float));
            for (int64_t j = 0; j < n_keys; j++) {
                const float *vj = gf_kv_value(kv, L, g, gf_kv_slot(L, first + j));
                const float p = scores[j];
                for (int64_t i = 0; i < d; i++)
                    oh[i] += p * vj[i];
            }
        }
    }
}
