/* strmap.c — string -> model.vocab entry hash (open addressing, linear
 * probing; the 32-bit hash kept in the slot lets growth skip the strings). */
#include <string.h>

#include "core/alloc.h"
#include "text/tokenizer.h"

uint32_t gf_str_hash(const char *s, size_t len)
{
    /* FNV-1a: pieces are short, so a byte loop is fast enough */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

int gf_strmap_init(gf_strmap *m, size_t min_slots)
{
    size_t n = 64;
    while (n < min_slots)
        n *= 2;
    m->slots = gf_calloc(n, sizeof *m->slots);
    if (!m->slots)
        return -1;
    m->mask = n - 1;
    m->count = 0;
    return 0;
}

void gf_strmap_free(gf_strmap *m)
{
    gf_free(m->slots);
    m->slots = NULL;
    m->mask = m->count = 0;
}

int64_t gf_strmap_get(const gf_strmap *m, const char *arena, const gf_vocab_entry *entries,
                      const char *s, size_t len)
{
    if (!m->slots)
        return -1;
    uint32_t h = gf_str_hash(s, len);
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        uint64_t v = m->slots[i];
        if (!v)
            return -1;
        if ((uint32_t)(v >> 32) == h) {
            size_t idx = (size_t)(uint32_t)v - 1;
            const gf_vocab_entry *e = &entries[idx];
            if (e->len == len && memcmp(arena + e->off, s, len) == 0)
                return (int64_t)idx;
        }
    }
}

static void insert_slot(uint64_t *slots, size_t mask, uint64_t v)
{
    size_t i = (uint32_t)(v >> 32) & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = v;
}

int gf_strmap_put(gf_strmap *m, const gf_vocab_entry *entries, const char *arena, size_t index)
{
    if ((m->count + 1) * 2 > m->mask + 1) { /* keep the load under 1/2 */
        size_t n = (m->mask + 1) * 2;
        uint64_t *slots = gf_calloc(n, sizeof *slots);
        if (!slots)
            return -1;
        for (size_t i = 0; i <= m->mask; i++)
            if (m->slots[i])
                insert_slot(slots, n - 1, m->slots[i]);
        gf_free(m->slots);
        m->slots = slots;
        m->mask = n - 1;
    }
    const gf_vocab_entry *e = &entries[index];
    uint64_t h = gf_str_hash(arena + e->off, e->len);
    insert_slot(m->slots, m->mask, (h << 32) | (uint64_t)(index + 1));
    m->count++;
    return 0;
}

int32_t gf_vocab_id(const gf_text *t, const char *s, size_t len)
{
    int64_t idx = gf_strmap_get(&t->vocab_map, t->arena, t->vocab, s, len);
    return idx < 0 ? -1 : t->vocab[idx].id;
}
