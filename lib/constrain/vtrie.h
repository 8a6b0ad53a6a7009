/* vtrie.h — the vocabulary as a byte trie, for walking every token at once.
 *
 * Each token's bytes are what the detokenizer writes for it alone: the
 * piece with the decoder's replacements ("▁" -> " "), or the single byte
 * of a byte-fallback token (<0xD8>).  Special tokens, ids without a piece
 * and pieces that decode to nothing are left out (never allowed).
 *
 * Nodes are stored in preorder: node i's subtree is [i, end[i]), its first
 * child is i + 1 (when end[i] > i + 1) and the next sibling of a child c
 * is end[c].  Walking a subtree is a loop over an array, and a rejected
 * byte skips its whole subtree in one step. */
#ifndef GF_VTRIE_H
#define GF_VTRIE_H

#include <stddef.h>
#include <stdint.h>

#include "gemfa.h"

struct gf_text;

typedef struct gf_vtrie {
    uint8_t *byte;      /* [n_nodes] the byte leading into the node (root: 0) */
    uint32_t *end;      /* [n_nodes] end of the node's subtree */
    uint32_t *tok_first;/* [n_nodes + 1] tokens ending at node i: ids[tok_first[i] ..
                           tok_first[i + 1]) */
    int32_t *ids;       /* token ids in trie order */
    size_t n_nodes, n_ids;
    uint32_t max_len;   /* longest token in bytes */

    /* every id's bytes, for accepting one token */
    char *arena;
    uint32_t *off;      /* [n_vocab + 1]; an id without bytes has off[i] == off[i + 1] */
    size_t n_vocab;
} gf_vtrie;

/* Builds the trie of `text`'s tokens for ids below n_vocab.  Errors:
 * OUT_OF_MEMORY. */
gemfa_status gf_vtrie_build(const struct gf_text *text, size_t n_vocab, gf_vtrie *out);
void gf_vtrie_free(gf_vtrie *t);

#endif
