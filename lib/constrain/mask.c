/* mask.c — allowed-token masks by walking the vocabulary trie (mask.h). */
#include "constrain/mask.h"

#include <string.h>

#include "core/alloc.h"
#include "core/status.h"

#define CACHE_SLOTS 1024 /* power of two */
#define CACHE_MAX 512    /* entries before the cache starts over */

/* Room given to a counted walk: more than any token can use. */
#define COUNT_ROOM (1u << 20)

typedef struct walker {
    const gf_jsm *m;
    const gf_vtrie *t;
    gf_jstate s;
    uint64_t *bits;
    uint32_t *deferred;
    uint8_t *def_count;   /* counted walks: characters before each deferred node's quote */
    size_t n_deferred, cap_deferred;
    uint8_t *count;       /* counted walks: characters each token starts, by id */
    int32_t *close_ids;   /* counted walks: tokens ending at the closing quote */
    uint8_t *close_count;
    size_t n_close, cap_close;
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

/* Characters the floor string has started in this walk. */
static uint8_t started(const walker *w)
{
    return (uint8_t)gf_jsm_str_started(&w->s.f[0], COUNT_ROOM);
}

static inline void mark(walker *w, uint32_t node)
{
    const gf_vtrie *t = w->t;
    for (uint32_t k = t->tok_first[node]; k < t->tok_first[node + 1]; k++) {
        uint32_t id = (uint32_t)t->ids[k];
        w->bits[id >> 6] |= 1ull << (id & 63);
        if (w->count)
            w->count[id] = started(w);
    }
}

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? 2 * *cap : 256;
    void *q = gf_realloc(*p, gf_mul_size(c, size));
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* Counted walks: tokens ending at the string's closing quote. */
static void mark_closing(walker *w, uint32_t node)
{
    const gf_vtrie *t = w->t;
    for (uint32_t k = t->tok_first[node]; k < t->tok_first[node + 1]; k++) {
        size_t cap = w->cap_close;
        if (grow((void **)&w->close_ids, &cap, w->n_close, sizeof *w->close_ids) ||
            grow((void **)&w->close_count, &w->cap_close, w->n_close, 1)) {
            w->oom = 1;
            return;
        }
        w->close_ids[w->n_close] = t->ids[k];
        w->close_count[w->n_close++] = started(w);
    }
}

static void defer(walker *w, uint32_t node)
{
    size_t cap = w->cap_deferred;
    if (grow((void **)&w->deferred, &cap, w->n_deferred, sizeof *w->deferred) ||
        (w->count && grow((void **)&w->def_count, &w->cap_deferred, w->n_deferred, 1))) {
        w->oom = 1;
        return;
    }
    w->cap_deferred = cap;
    if (w->count)
        w->def_count[w->n_deferred] = started(w);
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
        if (r == GF_STEP_OK) {
            mark(w, ch);
            if (end[ch] > ch + 1)
                walk(w, ch);
        } else if (r == GF_STEP_FLOOR) {
            /* closed the floor element: the rest depends on what lies below */
            if (w->count)
                mark_closing(w, ch);
            else
                mark(w, ch);
            if (end[ch] > ch + 1)
                defer(w, ch);
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

static void entry_free(gf_mask_entry *e)
{
    gf_free(e->bits);
    gf_free(e->deferred);
    gf_free(e->cum);
    gf_free(e->close_ids);
    gf_free(e->close_count);
    gf_free(e->def_count);
    memset(e, 0, sizeof *e);
}

void gf_mask_cache_free(gf_mask_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_slots; i++)
        entry_free(&c->slots[i]);
    gf_free(c->slots);
    memset(c, 0, sizeof *c);
}

/* Turns a counted walk's per-token counts into cumulative sets. */
static int build_counts(walker *w, gf_mask_entry *e)
{
    size_t words = gf_mask_words(w->t->n_vocab);
    uint32_t n_counts = w->t->max_len + 1;
    e->cum = gf_calloc(gf_mul_size(n_counts, words), sizeof *e->cum);
    if (!e->cum)
        return -1;
    for (size_t id = 0; id < w->t->n_vocab; id++)
        if ((w->bits[id >> 6] >> (id & 63)) & 1)
            e->cum[w->count[id] * words + (id >> 6)] |= 1ull << (id & 63);
    for (uint32_t k = 1; k < n_counts; k++)
        for (size_t i = 0; i < words; i++)
            e->cum[k * words + i] |= e->cum[(k - 1) * words + i];
    e->n_counts = n_counts;
    return 0;
}

/* The entry for `key`, computed on a miss; NULL when out of memory. */
static gf_mask_entry *lookup(gf_mask_cache *c, const gf_jsm *m, const gf_vtrie *t,
                             const gf_jframe *key, uint32_t depth, int counted)
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
        for (size_t k = 0; k < c->n_slots; k++)
            entry_free(&c->slots[k]);
        c->used = 0;
        i = (size_t)hash_frame(key) & (c->n_slots - 1);
    }
    c->misses++;
    walker w;
    memset(&w, 0, sizeof w);
    w.m = m;
    w.t = t;
    w.bits = gf_calloc(gf_mask_words(t->n_vocab), sizeof *w.bits);
    if (counted)
        w.count = gf_malloc(t->n_vocab);
    if (!w.bits || (counted && !w.count)) {
        gf_free(w.bits);
        gf_free(w.count);
        return NULL;
    }
    /* the element alone, at its real depth, with a floor under it */
    w.s.depth = 1;
    w.s.floor = 1;
    w.s.base = depth - 1;
    w.s.f[0] = *key;
    w.s.f[0].y = 0; /* the depth (containers) or the counted mark (strings) */
    if (counted)
        w.s.f[0].a = COUNT_ROOM;
    walk(&w, 0);
    gf_mask_entry *e = &c->slots[i];
    e->key = *key;
    e->bits = w.bits;
    e->deferred = w.deferred;
    e->def_count = w.def_count;
    e->n_deferred = w.n_deferred;
    e->close_ids = w.close_ids;
    e->close_count = w.close_count;
    e->n_close = w.n_close;
    int failed = w.oom || (counted && build_counts(&w, e) != 0);
    gf_free(w.count);
    if (failed) {
        entry_free(e);
        return NULL;
    }
    c->used++;
    return e;
}

/* The key of the shared string entry. */
static gf_jframe string_key(void)
{
    gf_jframe k;
    memset(&k, 0, sizeof k);
    k.kind = GF_JF_STR;
    k.y = 1;
    return k;
}

gemfa_status gf_mask_warm(gf_mask_cache *c, const gf_jsm *m, const gf_vtrie *t)
{
    gf_jframe key = string_key();
    if (!lookup(c, m, t, &key, 1, 1))
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "constraint: out of memory for a mask");
    return GEMFA_OK;
}

static void set_bit(uint64_t *bits, int32_t id) { bits[id >> 6] |= 1ull << (id & 63); }

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
    int counted = gf_jsm_str_between(top);
    if (counted)
        key = string_key();
    if (counted || gf_jsm_cache_frame(top, t->max_len + 1, s->depth, &key)) {
        gf_mask_entry *e = lookup(c, m, t, &key, s->depth, counted);
        if (!e)
            return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "constraint: out of memory for a mask");
        uint32_t room = 0, need = 0;
        if (counted) {
            room = top->a < e->n_counts - 1 ? top->a : e->n_counts - 1;
            need = top->b;
            memcpy(bits, e->cum + (size_t)room * words, words * sizeof *bits);
            for (size_t k = 0; k < e->n_close; k++)
                if (e->close_count[k] >= need && e->close_count[k] <= room)
                    set_bit(bits, e->close_ids[k]);
        } else {
            memcpy(bits, e->bits, words * sizeof *bits);
        }
        if (e->n_deferred) {
            /* below the element: pop it once, then go on from each node */
            w.s = *s;
            w.s.floor = 0;
            gf_jsm_pop_closed(m, &w.s);
            for (size_t k = 0; k < e->n_deferred; k++)
                if (!counted || (e->def_count[k] >= need && e->def_count[k] <= room))
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
