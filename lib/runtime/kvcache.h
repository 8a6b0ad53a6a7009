/* kvcache.h — the per-session key/value cache.
 *
 * Layers that own their K/V (those before L − num_kv_shared_layers) get a
 * store; KV-shared layers get none (they read their source layer's).
 *  - full layers: one slot per position, max_context slots;
 *  - sliding layers: a ring of `ring_slots` slots, position p in slot
 *    p % ring_slots.  The session picks ring_slots = W − 1 + chunk (capped
 *    at max_context), so writing a chunk of up to `chunk` new positions
 *    never overwrites a key that a query of the chunk, or the committed
 *    history (the W − 1 positions before the chunk), still needs.
 * Keys are stored after RoPE, values after their norm, each contiguous per
 * KV head: k[head][slot][head_dim], as f32 or f16 (gemfa_kv_type; `elem`
 * bytes per entry). */
#ifndef GF_RUNTIME_KVCACHE_H
#define GF_RUNTIME_KVCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "gemfa.h"
#include "loader/hparams.h"

typedef struct gf_kv_layer {
    void *k, *v;     /* [n_kv_heads][n_slots][head_dim]; NULL for KV-shared layers */
    int64_t n_slots; /* positions map to slot pos % n_slots */
    int is_ring;     /* n_slots < max_context: old positions get overwritten */
} gf_kv_layer;

typedef struct gf_kvcache {
    int n_layers;
    gf_kv_layer *layers; /* [n_layers] */
    int64_t n_kv_heads, head_dim, max_context, ring_slots;
    gemfa_kv_type type;
    size_t elem;         /* bytes per entry: 4 (f32) or 2 (f16) */
    unsigned char *data; /* one allocation holding every layer's K and V */
    size_t data_bytes;
} gf_kvcache;

/* Bytes per entry of a KV type (0 for an unknown one). */
static inline size_t gf_kv_elem(gemfa_kv_type t)
{
    return t == GEMFA_KV_F32 ? 4 : t == GEMFA_KV_F16 ? 2 : 0;
}

/* Allocates the stores for a session of `max_context` positions whose
 * sliding layers keep `ring_slots` slots (clamped to max_context), entries
 * of `type`.  Errors: OUT_OF_MEMORY (kv left zeroed). */
gemfa_status gf_kvcache_init(gf_kvcache *kv, const gf_hparams *hp, int64_t max_context,
                             int64_t ring_slots, gemfa_kv_type type);
void gf_kvcache_free(gf_kvcache *kv);
/* A deep copy of src (holding positions 0..n_past−1) into the empty dst;
 * only the slots in use are copied.  Errors: OUT_OF_MEMORY (dst zeroed). */
gemfa_status gf_kvcache_clone(gf_kvcache *dst, const gf_kvcache *src, int64_t n_past);
/* Bytes allocated for K/V and bookkeeping. */
size_t gf_kvcache_bytes(const gf_kvcache *kv);

static inline int64_t gf_kv_slot(const gf_kv_layer *l, int64_t pos) { return pos % l->n_slots; }
/* The key / value row of (head, slot): `elem` bytes per entry. */
static inline void *gf_kv_key(const gf_kvcache *kv, const gf_kv_layer *l, int64_t head,
                              int64_t slot)
{
    return (unsigned char *)l->k + (size_t)((head * l->n_slots + slot) * kv->head_dim) * kv->elem;
}
static inline void *gf_kv_value(const gf_kvcache *kv, const gf_kv_layer *l, int64_t head,
                                int64_t slot)
{
    return (unsigned char *)l->v + (size_t)((head * l->n_slots + slot) * kv->head_dim) * kv->elem;
}
/* Writes n f32 values into a row of the cache's type (f16: round to
 * nearest even) and reads one back as f32. */
void gf_kv_put_row(const gf_kvcache *kv, void *dst, const float *src, int64_t n);
void gf_kv_get_row(const gf_kvcache *kv, const void *src, float *dst, int64_t n);

/* Failure atomicity for decodes longer than one chunk: those wrap the ring
 * past the committed window.  Before such a decode the session saves, for
 * every ring layer, the last `n_keep` committed positions (n_past − n_keep
 * .. n_past − 1, those that exist) and restores them if the decode fails.
 * gf_kvcache_window_bytes gives the buffer size needed for n_keep. */
size_t gf_kvcache_window_bytes(const gf_kvcache *kv, int64_t n_keep);
void gf_kvcache_save_window(const gf_kvcache *kv, int64_t n_past, int64_t n_keep, void *buf);
void gf_kvcache_restore_window(gf_kvcache *kv, int64_t n_past, int64_t n_keep, const void *buf);

#endif
