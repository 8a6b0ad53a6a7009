/* bpe.c — byte-pair encoding of one word, merge for merge as Hugging Face
 * tokenizers does (models/bpe/word.rs):
 *  - start from one symbol per character (its one-character piece), or the
 *    character's UTF-8 bytes as <0xXX> tokens when the piece is missing
 *    (byte fallback), or <unk> (runs fused when fuse_unk);
 *  - repeatedly apply the merge of lowest rank, leftmost first, taken from a
 *    min-heap of (rank, position); an entry is stale when the pair now at its
 *    position no longer merges into the same id.
 * A word can be a whole line of text (Gemma has no whitespace pre-split),
 * so everything is O(n log n) in the word length. */
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

typedef struct gf_bpe_symbol {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    uint32_t len;       /* bytes covered; 0 once merged into its left neighbour */
} gf_bpe_symbol;

typedef struct gf_bpe_merge {
    uint64_t key; /* rank << 32 | position: smaller is applied first */
    int32_t id;   /* the merged id */
} gf_bpe_merge;

/* ---- merge table ---- */

static inline size_t pair_hash(uint32_t a, uint32_t b)
{
    uint64_t k = ((uint64_t)a << 32 | b) * 0x9E3779B97F4A7C15ull;
    return (size_t)(k >> 32 ^ k);
}

static int merges_grow(gf_bpe *b)
{
    size_t n = b->slots ? (b->mask + 1) * 2 : 1024;
    gf_merge_slot *slots = gf_malloc(gf_mul_size(n, sizeof *slots));
    if (!slots)
        return -1;
    for (size_t i = 0; i < n; i++)
        slots[i].a = UINT32_MAX;
    if (b->slots) {
        for (size_t i = 0; i <= b->mask; i++) {
            gf_merge_slot s = b->slots[i];
            if (s.a == UINT32_MAX)
                continue;
            size_t j = pair_hash(s.a, s.b) & (n - 1);
            while (slots[j].a != UINT32_MAX)
                j = (j + 1) & (n - 1);
            slots[j] = s;
        }
        gf_free(b->slots);
    }
    b->slots = slots;
    b->mask = n - 1;
    return 0;
}

int gf_merges_put(gf_bpe *b, int32_t a, int32_t c, uint32_t rank, int32_t id)
{
    if ((!b->slots || (b->count + 1) * 4 > (b->mask + 1) * 3) && merges_grow(b) != 0)
        return -1;
    size_t j = pair_hash((uint32_t)a, (uint32_t)c) & b->mask;
    for (;; j = (j + 1) & b->mask) {
        gf_merge_slot *s = &b->slots[j];
        if (s->a == UINT32_MAX) {
            s->a = (uint32_t)a;
            s->b = (uint32_t)c;
            b->count++;
            break;
        }
        if (s->a == (uint32_t)a && s->b == (uint32_t)c)
            break; /* a repeated merge: the later one wins, as in HF's map */
    }
    b->slots[j].rank = rank;
    b->slots[j].id = id;
    return 0;
}

const gf_merge_slot *gf_merges_get(const gf_bpe *b, int32_t a, int32_t c)
{
    if (!b->slots)
        return NULL;
    for (size_t j = pair_hash((uint32_t)a, (uint32_t)c) & b->mask;; j = (j + 1) & b->mask) {
        const gf_merge_slot *s = &b->slots[j];
        if (s->a == (uint32_t)a && s->b == (uint32_t)c)
            return s;
        if (s->a == UINT32_MAX)
            return NULL;
    }
}

void gf_bpe_free(gf_bpe *b)
{
    gf_free(b->slots);
    b->slots = NULL;
    for (size_t i = 0; i < GF_CP_PAGES; i++) {
        gf_free(b->cp_page[i]);
        b->cp_page[i] = NULL;
    }
}

void gf_bpe_scratch_free(gf_bpe_scratch *s)
{
    gf_free(s->sym);
    gf_free(s->heap);
    memset(s, 0, sizeof *s);
}

/* ---- the min-heap of candidate merges ---- */

static void heap_push(gf_bpe_merge *h, size_t *n, gf_bpe_merge m)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h[parent].key <= m.key)
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = m;
}

static gf_bpe_merge heap_pop(gf_bpe_merge *h, size_t *n)
{
    gf_bpe_merge top = h[0], last = h[--(*n)];
    size_t i = 0, count = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= count)
            break;
        if (c + 1 < count && h[c + 1].key < h[c].key)
            c++;
        if (last.key <= h[c].key)
            break;
        h[i] = h[c];
        i = c;
    }
    if (count)
        h[i] = last;
    return top;
}

/* ---- one word ---- */

static int32_t cp_id(const gf_bpe *b, uint32_t cp)
{
    const int32_t *page = b->cp_page[cp >> 8];
    return page ? page[cp & 0xFF] : -1;
}

static int reserve(gf_bpe_scratch *s, size_t n)
{
    if (n > s->sym_cap) {
        size_t cap = s->sym_cap ? s->sym_cap : 64;
        while (cap < n)
            cap *= 2;
        gf_bpe_symbol *sym = gf_realloc(s->sym, gf_mul_size(cap, sizeof *sym));
        if (!sym)
            return -1;
        s->sym = sym;
        s->sym_cap = cap;
    }
    /* each merge pushes at most two entries, plus the initial pairs */
    size_t hn = 3 * n + 4;
    if (hn > s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap : 256;
        while (cap < hn)
            cap *= 2;
        gf_bpe_merge *h = gf_realloc(s->heap, gf_mul_size(cap, sizeof *h));
        if (!h)
            return -1;
        s->heap = h;
        s->heap_cap = cap;
    }
    return 0;
}

static void add_symbol(gf_bpe_symbol *sym, size_t *n, int32_t id, uint32_t len)
{
    size_t i = (*n)++;
    sym[i].id = id;
    sym[i].len = len;
    sym[i].prev = (int32_t)i - 1;
    sym[i].next = (int32_t)i + 1; /* fixed for the last one below */
}

gemfa_status gf_bpe_word(const gf_text *t, gf_bpe_scratch *s, const char *w, size_t len,
                         gf_ids *out)
{
    const gf_bpe *b = &t->bpe;
    if (len == 0)
        return GEMFA_OK;
    if (b->ignore_merges) {
        int32_t whole = gf_vocab_id(t, w, len);
        if (whole >= 0)
            return gf_ids_push(out, whole) == 0 ? GEMFA_OK
                   : gf_error(GEMFA_ERR_OUT_OF_MEMORY, "tokenize: out of memory");
    }
    /* at most one symbol per byte */
    if (reserve(s, len) != 0)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "tokenize: out of memory for a %zu-byte word",
                        len);
    gf_bpe_symbol *sym = s->sym;
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)w;
    int32_t unk_len = 0; /* bytes of a pending <unk> run */
    for (size_t i = 0; i < len;) {
        size_t cl = gf_utf8_seq_len(p[i]);
        if (cl > len - i)
            cl = len - i;
        int32_t id = cp_id(b, gf_utf8_decode(p + i, cl));
        if (id >= 0) {
            if (unk_len) {
                add_symbol(sym, &n, b->unk_id, (uint32_t)unk_len);
                unk_len = 0;
            }
            add_symbol(sym, &n, id, (uint32_t)cl);
        } else {
            int bytes_ok = b->byte_fallback;
            for (size_t k = 0; k < cl && bytes_ok; k++)
                bytes_ok = b->byte_id[p[i + k]] >= 0;
            if (bytes_ok) {
                /* HF adds the bytes without flushing a pending <unk> run */
                for (size_t k = 0; k < cl; k++)
                    add_symbol(sym, &n, b->byte_id[p[i + k]], 1);
            } else {
                if (b->unk_id < 0)
                    return gf_error(GEMFA_ERR_FORMAT,
                                    "tokenize: character at byte %zu of a word is not in the "
                                    "vocabulary and the tokenizer has no <unk> token", i);
                if (unk_len && !b->fuse_unk) {
                    add_symbol(sym, &n, b->unk_id, (uint32_t)unk_len);
                    unk_len = 0;
                }
                unk_len += (int32_t)cl;
            }
        }
        i += cl;
    }
    if (unk_len)
        add_symbol(sym, &n, b->unk_id, (uint32_t)unk_len);
    sym[n - 1].next = -1;

    gf_bpe_merge *heap = s->heap;
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        const gf_merge_slot *m = gf_merges_get(b, sym[i].id, sym[i + 1].id);
        if (m)
            heap_push(heap, &hn, (gf_bpe_merge){(uint64_t)m->rank << 32 | i, m->id});
    }
    while (hn) {
        gf_bpe_merge top = heap_pop(heap, &hn);
        size_t pos = (uint32_t)top.key;
        gf_bpe_symbol *cur = &sym[pos];
        if (cur->len == 0 || cur->next < 0)
            continue;
        gf_bpe_symbol *right = &sym[cur->next];
        const gf_merge_slot *m = gf_merges_get(b, cur->id, right->id);
        if (!m || m->id != top.id)
            continue; /* stale: the pair at pos changed */
        cur->id = top.id;
        cur->len += right->len;
        right->len = 0;
        cur->next = right->next;
        if (cur->next >= 0)
            sym[cur->next].prev = (int32_t)pos;
        if (cur->prev >= 0) {
            const gf_merge_slot *l = gf_merges_get(b, sym[cur->prev].id, cur->id);
            if (l)
                heap_push(heap, &hn, (gf_bpe_merge){(uint64_t)l->rank << 32 | (uint32_t)cur->prev,
                                                   l->id});
        }
        if (cur->next >= 0) {
            const gf_merge_slot *r = gf_merges_get(b, cur->id, sym[cur->next].id);
            if (r)
                heap_push(heap, &hn, (gf_bpe_merge){(uint64_t)r->rank << 32 | pos, r->id});
        }
    }
    if (gf_ids_reserve(out, n) != 0)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "tokenize: out of memory");
    for (int32_t i = 0; i >= 0; i = sym[i].next)
        out->data[out->len++] = sym[i].id;
    return GEMFA_OK;
}
