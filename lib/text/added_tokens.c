/* added_tokens.c — the added-token trie.  Hugging Face splits text on added
 * tokens with Aho-Corasick in LeftmostLongest mode: the match that starts
 * first wins, and of those the longest.  Walking a trie from each candidate
 * start position gives exactly that; added tokens are short (Gemma: at most
 * 93 bytes), and a table of possible first bytes skips most positions. */
#include <string.h>

#include "core/alloc.h"
#include "text/tokenizer.h"

void gf_trie_init(gf_trie *tr)
{
    memset(tr, 0, sizeof *tr);
    for (int i = 0; i < 256; i++)
        tr->root_child[i] = -1;
}

void gf_trie_free(gf_trie *tr)
{
    gf_free(tr->nodes);
    gf_trie_init(tr);
}

static int32_t new_node(gf_trie *tr, uint8_t byte)
{
    if (tr->n_nodes == tr->cap) {
        size_t cap = tr->cap ? tr->cap * 2 : 256;
        gf_trie_node *p = gf_realloc(tr->nodes, gf_mul_size(cap, sizeof *p));
        if (!p)
            return -1;
        tr->nodes = p;
        tr->cap = cap;
    }
    gf_trie_node *n = &tr->nodes[tr->n_nodes];
    n->first_child = n->next_sibling = -1;
    n->token = -1;
    n->byte = byte;
    return (int32_t)tr->n_nodes++;
}

static int32_t child_of(const gf_trie *tr, int32_t node, uint8_t byte)
{
    int32_t c = tr->nodes[node].first_child;
    while (c >= 0 && tr->nodes[c].byte != byte)
        c = tr->nodes[c].next_sibling;
    return c;
}

int gf_trie_add(gf_trie *tr, const char *s, size_t len, int32_t id)
{
    const uint8_t *p = (const uint8_t *)s;
    int32_t node = tr->root_child[p[0]];
    if (node < 0) {
        if ((node = new_node(tr, p[0])) < 0)
            return -1;
        tr->root_child[p[0]] = node;
    }
    for (size_t i = 1; i < len; i++) {
        int32_t c = child_of(tr, node, p[i]);
        if (c < 0) {
            if ((c = new_node(tr, p[i])) < 0)
                return -1;
            tr->nodes[c].next_sibling = tr->nodes[node].first_child;
            tr->nodes[node].first_child = c;
        }
        node = c;
    }
    if (tr->nodes[node].token >= 0)
        return -2;
    tr->nodes[node].token = id;
    return 0;
}

int32_t gf_trie_find(const gf_trie *tr, const char *s, size_t len)
{
    if (len == 0)
        return -1;
    const uint8_t *p = (const uint8_t *)s;
    int32_t node = tr->root_child[p[0]];
    for (size_t i = 1; i < len && node >= 0; i++)
        node = child_of(tr, node, p[i]);
    return node < 0 ? -1 : tr->nodes[node].token;
}

int gf_trie_next(const gf_trie *tr, const char *s, size_t len, size_t from, size_t *start,
                 size_t *end, int32_t *id)
{
    const uint8_t *p = (const uint8_t *)s;
    for (size_t i = from; i < len; i++) {
        int32_t node = tr->root_child[p[i]];
        if (node < 0)
            continue;
        int32_t best = -1;
        size_t best_end = 0;
        for (size_t k = i;;) {
            if (tr->nodes[node].token >= 0) {
                best = tr->nodes[node].token;
                best_end = k + 1;
            }
            if (++k >= len)
                break;
            node = child_of(tr, node, p[k]);
            if (node < 0)
                break;
        }
        if (best >= 0) {
            *start = i;
            *end = best_end;
            *id = best;
            return 1;
        }
    }
    return 0;
}
