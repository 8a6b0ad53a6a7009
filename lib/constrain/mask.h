/* mask.h — the set of tokens allowed in a state, as a bitset over the
 * vocabulary (bit id of word id / 64).
 *
 * A walk steps the byte machine down the vocabulary trie: a rejected byte
 * skips its subtree, so shared prefixes are checked once.  Masks are cached
 * by the top frame of the state (clamped by gf_jsm_cache_frame): a cached
 * walk starts from that frame alone with a floor under it, so it sees only
 * what happens inside the element.  The tokens that close the element and go
 * on (a string's closing quote followed by ",") are recorded as deferred
 * trie nodes; they are walked again in the real state, below the element,
 * each time the entry is used.  Inside a string nearly every token is
 * allowed; the entry then costs a copy of the bitset plus the few hundred
 * deferred continuations.
 *
 * Strings between characters share one counted entry whatever their node,
 * room or required length: the walk runs with unlimited room and records
 * how many characters each token starts; the tokens that stay inside go to
 * cumulative sets by that count, the tokens that close the string (and the
 * deferred nodes) keep their count.  The mask for room r and minimum m is
 * then the set for r plus the closing tokens with m <= count <= r. */
#ifndef GF_MASK_H
#define GF_MASK_H

#include <stddef.h>
#include <stdint.h>

#include "constrain/jsm.h"
#include "constrain/vtrie.h"

typedef struct gf_mask_entry {
    gf_jframe key;
    uint64_t *bits;
    uint32_t *deferred;
    size_t n_deferred;
    /* The counted string entry: cum + k * words holds the tokens that stay
     * inside the string and start at most k characters (k < n_counts); the
     * closing tokens and deferred nodes come with their counts. */
    uint64_t *cum;
    uint32_t n_counts;
    int32_t *close_ids;
    uint8_t *close_count, *def_count;
    size_t n_close;
} gf_mask_entry;

typedef struct gf_mask_cache {
    gf_mask_entry *slots; /* open addressing; bits == NULL: empty */
    size_t n_slots, used;
    size_t hits, misses;  /* statistics for the benchmark */
} gf_mask_cache;

/* Words of a bitset over n ids. */
static inline size_t gf_mask_words(size_t n) { return (n + 63) / 64; }

/* Writes the allowed tokens of state `s` (end-of-generation ids not
 * included) into bits[0 .. gf_mask_words(t->n_vocab)).  Errors:
 * OUT_OF_MEMORY (bits then unspecified, the cache consistent). */
gemfa_status gf_mask_compute(gf_mask_cache *cache, const gf_jsm *m, const gf_vtrie *t,
                             const gf_jstate *s, uint64_t *bits);

/* Reference for tests: the same set by stepping every token separately. */
void gf_mask_slow(const gf_jsm *m, const gf_vtrie *t, const gf_jstate *s, uint64_t *bits);

/* Computes the shared string entry now (creation time rather than the
 * first string of a generation).  Errors: OUT_OF_MEMORY. */
gemfa_status gf_mask_warm(gf_mask_cache *cache, const gf_jsm *m, const gf_vtrie *t);

void gf_mask_cache_free(gf_mask_cache *cache);

#endif
