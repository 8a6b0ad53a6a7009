/* constraint.h — struct gemfa_constraint: a compiled grammar, the
 * vocabulary trie, the current state and the mask cache; and what the
 * sampler calls. */
#ifndef GF_CONSTRAINT_H
#define GF_CONSTRAINT_H

#include <stddef.h>
#include <stdint.h>

#include "constrain/jsm.h"
#include "constrain/mask.h"
#include "constrain/vtrie.h"
#include "gemfa.h"

struct gemfa_constraint {
    gf_jsm m;
    gf_vtrie trie;
    gf_jstate state;
    gf_mask_cache cache;
    int32_t *eog;       /* end-of-generation ids below n_vocab */
    size_t n_eog;
    uint64_t *bits;     /* the mask of `state` when bits_valid */
    int bits_valid;
};

/* The allowed-token bitset of the current state, end-of-generation ids
 * included when the text is complete (valid until the state changes).
 * Errors: OUT_OF_MEMORY. */
gemfa_status gf_constraint_bits(gemfa_constraint *c, const uint64_t **bits);

/* Vocabulary size the constraint was made for. */
size_t gf_constraint_n_vocab(const gemfa_constraint *c);

#endif
