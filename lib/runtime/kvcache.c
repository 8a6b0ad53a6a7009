/* kvcache.c — see kvcache.h. */
#include "runtime/kvcache.h"

#include <string.h>

#include "core/alloc.h"
#include "core/status.h"
#include "kernels/convert.h"

static int owns_kv(const gf_hparams *hp, int l) { return hp->kv_source[l] == l; }

gemfa_status gf_kvcache_init(gf_kvcache *kv, const gf_hparams *hp, int64_t max_context,
                             int64_t ring_slots, gemfa_kv_type type)
{
    memset(kv, 0, sizeof *kv);
    kv->type = type;
    kv->elem = gf_kv_elem(type);
    if (ring_slots > max_context)
        ring_slots = max_context;
    kv->n_layers = hp->n_layers;
    kv->n_kv_heads = hp->n_kv_heads;
    kv->head_dim = hp->head_dim;
    kv->max_context = max_context;
    kv->ring_slots = ring_slots;
    kv->layers = gf_calloc((size_t)hp->n_layers, sizeof *kv->layers);
    if (!kv->layers)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "KV cache: cannot allocate %d layer records",
                        hp->n_layers);
    const size_t per_slot = (size_t)(hp->n_kv_heads * hp->head_dim);
    size_t total = 0;
    for (int l = 0; l < hp->n_layers; l++) {
        if (!owns_kv(hp, l))
            continue;
        const int64_t slots = hp->is_sliding[l] ? ring_slots : max_context;
        kv->layers[l].n_slots = slots;
        kv->layers[l].is_ring = slots < max_context;
        total += 2 * per_slot * (size_t)slots;
    }
    const size_t bytes = gf_mul_size(total, kv->elem);
    kv->data = total ? gf_alloc_aligned(bytes) : NULL;
    if (total && !kv->data) {
        gf_free(kv->layers);
        memset(kv, 0, sizeof *kv);
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "KV cache: cannot allocate %zu bytes", bytes);
    }
    kv->data_bytes = total * kv->elem;
    unsigned char *p = kv->data;
    for (int l = 0; l < hp->n_layers; l++) {
        gf_kv_layer *L = &kv->layers[l];
        if (!L->n_slots)
            continue;
        L->k = p;
        p += per_slot * (size_t)L->n_slots * kv->elem;
        L->v = p;
        p += per_slot * (size_t)L->n_slots * kv->elem;
    }
    return GEMFA_OK;
}

void gf_kvcache_free(gf_kvcache *kv)
{
    if (!kv)
        return;
    gf_free_aligned(kv->data);
    gf_free(kv->layers);
    memset(kv, 0, sizeof *kv);
}

gemfa_status gf_kvcache_clone(gf_kvcache *dst, const gf_kvcache *src, int64_t n_past)
{
    *dst = *src;
    dst->layers = gf_malloc(gf_mul_size((size_t)src->n_layers, sizeof *dst->layers));
    dst->data = src->data_bytes ? gf_alloc_aligned(src->data_bytes) : NULL;
    if (!dst->layers || (src->data_bytes && !dst->data)) {
        gf_free(dst->layers);
        gf_free_aligned(dst->data);
        memset(dst, 0, sizeof *dst);
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "KV cache: cannot allocate %zu bytes for a copy",
                        src->data_bytes);
    }
    for (int l = 0; l < src->n_layers; l++) {
        const gf_kv_layer *S = &src->layers[l];
        gf_kv_layer *D = &dst->layers[l];
        *D = *S;
        if (!S->k)
            continue;
        /* same offsets in the new block */
        D->k = dst->data + ((unsigned char *)S->k - src->data);
        D->v = dst->data + ((unsigned char *)S->v - src->data);
        /* Copy only the slots in use, so an untouched store stays untouched memory. */
        const int64_t used = n_past < S->n_slots ? n_past : S->n_slots;
        const size_t bytes = (size_t)(used * src->head_dim) * src->elem;
        for (int64_t h = 0; h < src->n_kv_heads; h++) {
            memcpy(gf_kv_key(dst, D, h, 0), gf_kv_key(src, S, h, 0), bytes);
            memcpy(gf_kv_value(dst, D, h, 0), gf_kv_value(src, S, h, 0), bytes);
        }
    }
    return GEMFA_OK;
}

size_t gf_kvcache_bytes(const gf_kvcache *kv)
{
    return kv->data_bytes + (size_t)kv->n_layers * sizeof(gf_kv_layer);
}

void gf_kv_put_row(const gf_kvcache *kv, void *dst, const float *src, int64_t n)
{
    if (kv->type == GEMFA_KV_F16) {
        uint16_t *h = dst;
        for (int64_t i = 0; i < n; i++)
            h[i] = gf_f32_to_f16(src[i]);
    } else {
        memcpy(dst, src, (size_t)n * sizeof(float));
    }
}

void gf_kv_get_row(const gf_kvcache *kv, const void *src, float *dst, int64_t n)
{
    if (kv->type == GEMFA_KV_F16) {
        const uint16_t *h = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = gf_f16_to_f32(h[i]);
    } else {
        memcpy(dst, src, (size_t)n * sizeof(float));
    }
}

size_t gf_kvcache_window_bytes(const gf_kvcache *kv, int64_t n_keep)
{
    size_t n = 0;
    for (int l = 0; l < kv->n_layers; l++)
        if (kv->layers[l].is_ring)
            n += 2 * (size_t)(kv->n_kv_heads * kv->head_dim * n_keep) * kv->elem;
    return n;
}

/* Copies positions [first, n_past) of every ring layer between the cache
 * and buf (to_buf: cache → buf). */
static void copy_window(gf_kvcache *kv, int64_t n_past, int64_t n_keep, unsigned char *buf,
                        int to_buf)
{
    const int64_t first = n_past > n_keep ? n_past - n_keep : 0;
    const size_t row = (size_t)kv->head_dim * kv->elem;
    for (int l = 0; l < kv->n_layers; l++) {
        const gf_kv_layer *L = &kv->layers[l];
        if (!L->is_ring)
            continue;
        for (int kind = 0; kind < 2; kind++)
            for (int64_t h = 0; h < kv->n_kv_heads; h++)
                for (int64_t p = first; p < n_past; p++) {
                    const int64_t slot = gf_kv_slot(L, p);
                    void *cell = kind ? gf_kv_value(kv, L, h, slot) : gf_kv_key(kv, L, h, slot);
                    if (to_buf)
                        memcpy(buf, cell, row);
                    else
                        memcpy(cell, buf, row);
                    buf += row;
                }
    }
}

void gf_kvcache_save_window(const gf_kvcache *kv, int64_t n_past, int64_t n_keep, void *buf)
{
    copy_window((gf_kvcache *)kv, n_past, n_keep, buf, 1);
}

void gf_kvcache_restore_window(gf_kvcache *kv, int64_t n_past, int64_t n_keep, const void *buf)
{
    copy_window(kv, n_past, n_keep, (unsigned char *)buf, 0);
}
