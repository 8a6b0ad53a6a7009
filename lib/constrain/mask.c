/* mask.c — allowed-token masks by walking the vocabulary trie (mask.h). */
#include "constrain/mask.h"

#include <string.h>

#include "core/alloc.h"
#include "core/status.h"

#define CACHE_SLOTS 1024 /* power of two */
#define CACHE_MAX 512    /* entries before the cache starts over */

typedef struct walker {
    const gf_jsm *m;
    const gf_vtrie *t;
    gf_jstate s;
    uint64_t *bits;
    uint32_t *deferred;
    size_t n_deferred, cap_deferred;
    int oom;
} walker;

/* What one step can change: the top three frames (a number handing its
 * byte to an object that closes and tells its parent) and the depth. */
typedef struct snapshot {
    uint32_t depth;
    gf_jframe f[3];
} snapshot;

static inline void save(const gf_jstate *s, snapshot *p)
{
    p->depth = s->depth;
    uint32_t k = s->depth < 3 ? s->depth : 3;
    memcpy(p->f + 3 - k, s->f + s->depth - k, k * sizeof *p->f);
}

static inline void restore(gf_jstate *s, const snapshot *p)
{
    s->depth = p->depth;
    uint32_t k = s->depth < 3 ? s->depth : 3;
    memcpy(s->f + s->depth - k, p->f + 3 - k, k * sizeof *p->f);
}

static inline void mark(walker *w, uint32_t node)
{
    const gf_vtrie *t = w->t;
    for (uint32_t k = t->tok_first[node]; k < t->tok_first[node + 1]; k++) {
        uint32_t id = (uint32_t)t->ids[k];
        w->bits[id >> 6] |= 1ull << (id & 63);
    }
}

static void defer(walker *w, uint32_t node)
{
    if (w->n_deferred == w->cap_deferred) {
        size_t cap = w->cap_deferred ? 2 * w->cap_deferred : 256;
        uint32_t *p = gf_realloc(w->deferred, gf_mul_size(cap, sizeof *p));
        if (!p) {
            w->oom = 1;
            return;
        }
        w->deferred = p;
        w->cap_deferred = cap;
    }
    w->deferred[w->n_deferred++] = node;
}

/* Walks the children of `node`; w->s is the state after node's bytes. */
static void walk(walker *w, uint32_t node)
{
    const uint8_t *byte = w->t->byte;
    const uint32_t *end = w->t->end;
    uint32_t stop = end[node];
    for (uint32_t ch = node + 1; ch < stop; ch = end[ch]) {
        snapshot snap;
        save(&w->s, &snap);
        int r = gf_jsm_step(w->m, &w->s, byte[ch]);
        if (r != GF_STEP_REJECT) {
            mark(w, ch);
            if (end[ch] > ch + 1) {
                if (r == GF_STEP_OK)
                    walk(w, ch);
                else
                    defer(w, ch); /* closed the floor element with more bytes to come */
            }
        }
        restore(&w->s, &snap);
    }
}

static uint64_t hash_frame(const gf_jframe *f)
{
    uint64_t h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)f;
    for (size_t i = 0; i < sizeof *f; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

void gf_mask_cache_free(gf_mask_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_slots; i++) {
        gf_free(c->slots[i].bits);
        gf_free(c->slots[i].deferred);
    }
    gf_free(c->slots);
    memset(c, 0, sizeof *c);
}

static void cache_clear(gf_mask_cache *c)
{
    for (size_t i = 0; i < c->n_slots; i++) {
        gf_free(c->slots[i].bits);
        gf_free(c->slots[i].deferred);
        memset(&c->slots[i], 0, sizeof c->slots[i]);
    }
    c->used = 0;
}

/* The entry for `key`, computed on a miss; NULL when out of memory. */
static gf_mask_entry *lookup(gf_mask_cache *c, const gf_jsm *m, const gf_vtrie *t,
                             const gf_jframe *key, uint32_t depth)
{
    if (!c->slots) {
        c->slots = gf_calloc(CACHE_SLOTS, sizeof *c->slots);
        if (!c->slots)
            return NULL;
        c->n_slots = CACHE_SLOTS;
    }
    size_t i = (size_t)hash_frame(key) & (c->n_slots - 1);
    while (c->slots[i].bits) {
        if (memcmp(&c->slots[i].key, key, sizeof *key) == 0) {
            c->hits++;
            return &c->slots[i];
        }
        i = (i + 1) & (c->n_slots - 1);
    }
    if (c->used >= CACHE_MAX) {
        cache_clear(c);
        i = (size_t)hash_frame(key) & (c->n_slots - 1);
    }
    c->misses++;
    size_t words = gf_mask_words(t->n_vocab);
    walker w;
    memset(&w, 0, sizeof w);
    w.m = m;
    w.t = t;
    w.bits = gf_calloc(words, sizeof *w.bits);
    if (!w.bits)
        return NULL;
    /* the element alone, at its real depth, with a floor under it */
    w.s.depth = 1;
    w.s.floor = 1;
    w.s.base = depth - 1;
    w.s.f[0] = *key;
    if (key->kind != GF_JF_STR)
        w.s.f[0].y = 0; /* the depth lives in the key only */
    walk(&w, 0);
    if (w.oom) {
        gf_free(w.bits);
        gf_free(w.deferred);
        return NULL;
    }
    gf_mask_entry *e = &c->slots[i];
    e->key = *key;
    e->bits = w.bits;
    e->deferred = w.deferred;
    e->n_deferred = w.n_deferred;
    c->used++;
    return e;
}

gemfa_status gf_mask_compute(gf_mask_cache *c, const gf_jsm *m, const gf_vtrie *t,
                             const gf_jstate *s, uint64_t *bits)
{
    size_t words = gf_mask_words(t->n_vocab);
    if (s->finished) {
        memset(bits, 0, words * sizeof *bits);
        return GEMFA_OK;
    }
    walker w;
    memset(&w, 0, sizeof w);
    w.m = m;
    w.t = t;
    w.bits = bits;
    gf_jframe key;
    const gf_jframe *top = &s->f[s->depth - 1];
    if (gf_jsm_cache_frame(top, t->max_len + 1, s->depth, &key)) {
        gf_mask_entry *e = lookup(c, m, t, &key, s->depth);
        if (!e)
            return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "constraint: out of memory for a mask");
        memcpy(bits, e->bits, words * sizeof *bits);
        if (e->n_deferred) {
            /* below the element: pop it once, then go on from each node */
            w.s = *s;
            w.s.floor = 0;
            gf_jsm_pop_closed(m, &w.s);
            for (size_t k = 0; k < e->n_deferred; k++)
                walk(&w, e->deferred[k]);
        }
        return GEMFA_OK;
    }
    memset(bits, 0, words * sizeof *bits);
    w.s = *s;
    w.s.floor = 0;
    walk(&w, 0);
    return GEMFA_OK;
}

void gf_mask_slow(const gf_jsm *m, const gf_vtrie *t, const gf_jstate *s, uint64_t *bits)
{
    memset(bits, 0, gf_mask_words(t->n_vocab) * sizeof *bits);
    gf_jstate *c = gf_malloc(sizeof *c);
    if (!c)
        return;
    for (size_t id = 0; id < t->n_vocab; id++) {
        if (t->off[id + 1] == t->off[id])
            continue;
        *c = *s;
        c->floor = 0;
        int ok = 1;
        for (uint32_t i = t->off[id]; i < t->off[id + 1] && ok; i++)
            ok = gf_jsm_step(m, c, (uint8_t)t->arena[i]) == GF_STEP_OK;
        if (ok)
            bits[id >> 6] |= 1ull << (id & 63);
    }
    gf_free(c);
}
