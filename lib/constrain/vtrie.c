/* vtrie.c — building the vocabulary byte trie (see vtrie.h): token bytes
 * into an arena, ids sorted by their bytes, then one pass that opens and
 * closes nodes along the sorted list (shared prefixes share nodes). */
#include "constrain/vtrie.h"

#include <stdlib.h>
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

/* qsort has no context argument: the arena and offsets of the build. */
static const char *sort_arena;
static const uint32_t *sort_off;

static int by_bytes(const void *pa, const void *pb)
{
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    uint32_t la = sort_off[a + 1] - sort_off[a], lb = sort_off[b + 1] - sort_off[b];
    int c = memcmp(sort_arena + sort_off[a], sort_arena + sort_off[b], la < lb ? la : lb);
    if (c)
        return c;
    if (la != lb)
        return la < lb ? -1 : 1;
    return a < b ? -1 : a > b;
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
    sort_arena = v.arena;
    sort_off = v.off;
    qsort(v.ids, n, sizeof *v.ids, by_bytes);

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
