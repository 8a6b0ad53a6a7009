/* vtrie.c — building the vocabulary byte trie (see vtrie.h): token bytes
 * into an arena, ids sorted by their bytes, then one pass that opens and
 * closes nodes along the sorted list (shared prefixes share nodes). */
#include "constrain/vtrie.h"

#include <string.h>

#include "core/alloc.h"
#include "core/status.h"
#include "text/tokenizer.h"

#define WHAT "gemfa_constraint_new_json"

void gf_vtrie_free(gf_vtrie *t)
{
    if (!t)
        return;
    gf_free(t->byte);
    gf_free(t->end);
    gf_free(t->tok_first);
    gf_free(t->ids);
    gf_free(t->arena);
    gf_free(t->off);
    memset(t, 0, sizeof *t);
}

/* Byte d of token id, or -1 past its end (a prefix sorts first). */
static inline int byte_at(const gf_vtrie *v, int32_t id, size_t d)
{
    uint32_t len = v->off[id + 1] - v->off[id];
    return d < len ? (unsigned char)v->arena[v->off[id] + d] : -1;
}

static int less_from(const gf_vtrie *v, int32_t a, int32_t b, size_t d)
{
    for (;; d++) {
        int x = byte_at(v, a, d), y = byte_at(v, b, d);
        if (x != y)
            return x < y;
        if (x < 0)
            return 0;
    }
}

static void swap_ids(int32_t *a, size_t i, size_t j)
{
    int32_t t = a[i];
    a[i] = a[j];
    a[j] = t;
}

/* Sorts ids by their bytes, all equal before depth d: multikey quicksort
 * (three-way partition on byte d; the equal part moves on to byte d + 1). */
static void sort_by_bytes(const gf_vtrie *v, int32_t *a, size_t n, size_t d)
{
    while (n > 1) {
        if (n < 12) {
            for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && less_from(v, a[j], a[j - 1], d); j--)
                    swap_ids(a, j, j - 1);
            return;
        }
        int p = byte_at(v, a[n / 2], d);
        size_t lt = 0, i = 0, gt = n; /* [0,lt) < p, [lt,i) == p, [gt,n) > p */
        while (i < gt) {
            int c = byte_at(v, a[i], d);
            if (c < p)
                swap_ids(a, lt++, i++);
            else if (c > p)
                swap_ids(a, i, --gt);
            else
                i++;
        }
        sort_by_bytes(v, a, lt, d);
        sort_by_bytes(v, a + gt, n - gt, d);
        if (p < 0)
            return; /* the equal part are identical strings */
        a += lt;
        n = gt - lt;
        d++;
    }
}

static gemfa_status token_bytes(const gf_text *t, size_t n_vocab, gf_vtrie *v)
{
    gf_bytes arena = {0};
    v->off = gf_malloc(gf_mul_size(n_vocab + 1, sizeof *v->off));
    if (!v->off)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, WHAT ": out of memory (token table)");
    for (size_t id = 0; id < n_vocab; id++) {
        v->off[id] = (uint32_t)arena.len;
        if ((int64_t)id >= t->n_ids || t->piece[id].len == GF_NO_PIECE ||
            (t->flags[id] & GF_ID_SPECIAL))
            continue;
        int rc = t->pipe.dec_byte_fallback && t->byte_of[id] >= 0
                     ? gf_bytes_push(&arena, (char)t->byte_of[id])
                     : gf_text_append_replaced(t, (int32_t)id, &arena);
        if (rc != 0 || arena.len > UINT32_MAX / 2) {
            gf_bytes_free(&arena);
            return gf_error(GEMFA_ERR_OUT_OF_MEMORY, WHAT ": out of memory (token bytes)");
        }
    }
    v->off[n_vocab] = (uint32_t)arena.len;
    v->arena = arena.data ? arena.data : gf_malloc(1);
    if (!v->arena)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, WHAT ": out of memory (token bytes)");
    v->n_vocab = n_vocab;
    return GEMFA_OK;
}

gemfa_status gf_vtrie_build(const gf_text *t, size_t n_vocab, gf_vtrie *out)
{
    gf_vtrie v;
    memset(&v, 0, sizeof v);
    gemfa_status st = token_bytes(t, n_vocab, &v);
    if (st != GEMFA_OK) {
        gf_vtrie_free(&v);
        return st;
    }
    size_t n = 0, total = 0;
    for (size_t id = 0; id < n_vocab; id++)
        if (v.off[id + 1] > v.off[id]) {
            n++;
            total += v.off[id + 1] - v.off[id];
        }
    v.ids = gf_malloc(gf_mul_size(n ? n : 1, sizeof *v.ids));
    /* at most one node per byte, plus the root */
    v.byte = gf_malloc(total + 1);
    v.end = gf_malloc(gf_mul_size(total + 1, sizeof *v.end));
    v.tok_first = gf_malloc(gf_mul_size(total + 2, sizeof *v.tok_first));
    uint32_t *path = gf_malloc(gf_mul_size(total + 1, sizeof *path));
    uint32_t *node_of = gf_malloc(gf_mul_size(n ? n : 1, sizeof *node_of));
    if (!v.ids || !v.byte || !v.end || !v.tok_first || !path || !node_of) {
        gf_free(path);
        gf_free(node_of);
        gf_vtrie_free(&v);
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, WHAT ": out of memory (token trie)");
    }
    n = 0;
    for (size_t id = 0; id < n_vocab; id++)
        if (v.off[id + 1] > v.off[id])
            v.ids[n++] = (int32_t)id;
    sort_by_bytes(&v, v.ids, n, 0);

    /* preorder: path[d] is the open node at depth d */
    size_t nodes = 1, plen = 0;
    const char *prev = NULL;
    v.byte[0] = 0;
    path[0] = 0;
    uint32_t max_len = 0;
    for (size_t k = 0; k < n; k++) {
        const char *s = v.arena + v.off[v.ids[k]];
        size_t len = v.off[v.ids[k] + 1] - v.off[v.ids[k]];
        if (len > max_len)
            max_len = (uint32_t)len;
        size_t l = 0;
        while (prev && l < plen && l < len && prev[l] == s[l])
            l++;
        for (size_t d = plen; d > l; d--)
            v.end[path[d]] = (uint32_t)nodes;
        for (size_t d = l + 1; d <= len; d++) {
            v.byte[nodes] = (uint8_t)s[d - 1];
            path[d] = (uint32_t)nodes++;
        }
        /* sorted order is preorder: node_of never decreases */
        node_of[k] = path[len];
        prev = s;
        plen = len;
    }
    for (size_t d = plen; d >= 1; d--)
        v.end[path[d]] = (uint32_t)nodes;
    v.end[0] = (uint32_t)nodes;
    gf_free(path);
    v.n_nodes = nodes;
    v.n_ids = n;
    v.max_len = max_len;
    size_t k = 0;
    for (size_t i = 0; i < nodes; i++) {
        v.tok_first[i] = (uint32_t)k;
        while (k < n && node_of[k] == i)
            k++;
    }
    v.tok_first[nodes] = (uint32_t)n;
    gf_free(node_of);
    out[0] = v;
    return GEMFA_OK;
}
