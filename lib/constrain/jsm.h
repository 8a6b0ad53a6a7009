/* jsm.h — the JSON byte machine: a pushdown automaton that reads a JSON
 * text one byte at a time and says whether each byte can continue it.
 *
 * The grammar is a tree of nodes compiled from a JSON Schema (schema.c);
 * "any JSON value" is the schema {}.  The runtime state is a stack of
 * frames, one per open element (the document, an object, an array, a
 * string, a number, a literal).  Every frame is 32 bytes and every field
 * that matters is in it, so a frame can be hashed (mask.c caches masks by
 * the top frame).
 *
 * What the machine accepts is a subset of JSON chosen so that every text it
 * accepts parses, and every state can still be completed (no dead ends):
 *  - whitespace between elements: at most 1 + 2 * depth bytes per gap (at
 *    most GF_JSM_MAX_WS), so a generation cannot spin on spaces;
 *  - numbers: at most 19 integer digits, 19 fraction digits and 3 exponent
 *    digits; no exponent when the schema bounds the value;
 *  - strings: valid UTF-8, no raw control bytes, \uXXXX escapes outside the
 *    surrogate range (D800-DFFF);
 *  - nesting: at most GF_JSM_MAX_DEPTH open elements. */
#ifndef GF_JSM_H
#define GF_JSM_H

#include <stddef.h>
#include <stdint.h>

#include "gemfa.h"

#define GF_JSM_MAX_DEPTH 64
#define GF_JSM_MAX_WS 15
#define GF_JSM_NONE UINT32_MAX
#define GF_JSM_MAX_PROPS 64 /* properties per object (a 64-bit set per key-trie node) */
#define GF_NUM_DIGITS 19    /* integer and fraction digits of a number */
#define GF_NUM_EXP_DIGITS 3

typedef __int128 gf_i128;
/* Numbers are compared exactly as integers scaled by 10^19. */

typedef enum gf_jnode_kind {
    GF_JN_STRING,
    GF_JN_NUMBER,
    GF_JN_OBJECT,
    GF_JN_ARRAY,
    GF_JN_LITERAL, /* one of a set of exact texts (enum, const, true/false/null) */
    GF_JN_UNION    /* chosen by the first byte: string, number, object, array, literal */
} gf_jnode_kind;

typedef struct gf_jnode {
    uint8_t kind;
    uint8_t integer;          /* NUMBER: integers only */
    uint8_t has_lo, has_hi;   /* NUMBER: bounds (inclusive, scaled by 10^19) */
    uint8_t open;             /* OBJECT: no "properties": any keys, any values */
    gf_i128 lo, hi;
    uint32_t min_len, max_len;/* STRING chars, ARRAY items; max GF_JSM_NONE = unbounded */
    uint32_t items;           /* ARRAY: node of the items */
    uint32_t first_prop, n_props; /* OBJECT: props[first_prop ..] in schema order */
    uint64_t required;        /* OBJECT: bit i = property i is required */
    uint32_t lit_root;        /* LITERAL: literal-trie node; OBJECT: key-trie root */
    uint32_t alt[5];          /* UNION: node for '"', number, '{', '[', literal; NONE */
} gf_jnode;

/* Trie over literal texts (enum values, property keys with their quotes). */
typedef struct gf_lnode {
    uint32_t first_child, next_sibling; /* GF_JSM_NONE when absent */
    uint32_t value;                     /* a text ends here: its index (keys: the property),
                                           else GF_JSM_NONE */
    uint64_t below;                     /* keys: the property indexes ending in this subtree */
    uint8_t byte;
} gf_lnode;

typedef struct gf_jsm {
    gf_jnode *nodes;
    size_t n_nodes, cap_nodes;
    uint32_t *props;          /* value node of each property */
    size_t n_props, cap_props;
    gf_lnode *lit;
    size_t n_lit, cap_lit;
    uint32_t root;            /* node of the document's value */
    uint32_t root_any;        /* node of any JSON value (open objects, arrays without items) */
} gf_jsm;

/* Frame kinds */
enum { GF_JF_ROOT, GF_JF_OBJ, GF_JF_ARR, GF_JF_STR, GF_JF_NUM, GF_JF_LIT };

/* One open element.  Unused fields stay 0 so frames compare with memcmp. */
typedef struct gf_jframe {
    uint8_t kind, sub, ws, ws_max;
    uint32_t node;
    uint32_t a, b; /* STR: chars still allowed / still required; ARR: items the same;
                      OBJ: next property index (a), key-trie node (b);
                      LIT: literal-trie node (a); NUM: digit counts (a), flags (b) */
    uint64_t x, y; /* NUM: integer and fraction digits as integers */
} gf_jframe;

typedef struct gf_jstate {
    uint32_t depth; /* frames in f[] */
    uint32_t floor; /* frames below this index may not be popped (mask.c's cached walks) */
    uint32_t base;  /* frames under f[0] that are not stored (cached walks start mid-stack) */
    int finished;   /* an end-of-generation token was accepted */
    gf_jframe f[GF_JSM_MAX_DEPTH];
} gf_jstate;

/* Results of gf_jsm_step. */
enum {
    GF_STEP_REJECT = 0,
    GF_STEP_OK = 1,
    GF_STEP_FLOOR = 2 /* the byte was consumed and closed the frame at the floor */
};

/* The state before the first byte of a document. */
void gf_jsm_start(const gf_jsm *m, gf_jstate *s);
/* Feeds one byte.  On REJECT the state may have been changed (callers
 * step a copy or restore a snapshot). */
int gf_jsm_step(const gf_jsm *m, gf_jstate *s, uint8_t byte);
/* Nonzero when the text so far is a complete document (it may go on). */
int gf_jsm_complete(const gf_jsm *m, const gf_jstate *s);
/* Pops the floor frame after a GF_STEP_FLOOR (state with floor 0). */
void gf_jsm_pop_closed(const gf_jsm *m, gf_jstate *s);

/* The frame to key a cache with: counts clamped to `clamp` (a token of at
 * most clamp - 1 bytes cannot tell the clamped frame from the real one) and,
 * for containers, whose children depend on it, the stack depth in y;
 * returns 0 when the frame is not worth caching (numbers, literals). */
int gf_jsm_cache_frame(const gf_jframe *f, uint32_t clamp, uint32_t depth, gf_jframe *key);

/* Strings: nonzero when f is a string frame between characters (not in an
 * escape or a UTF-8 sequence); and how many characters a string frame that
 * had a == a0 between characters has started since (a character counts from
 * its first byte). */
int gf_jsm_str_between(const gf_jframe *f);
uint32_t gf_jsm_str_started(const gf_jframe *f, uint32_t a0);

void gf_jsm_free(gf_jsm *m);

/* ---- num.c ---- */
/* Starts a number frame with its first byte ('-' or a digit). */
int gf_num_begin(const gf_jnode *n, gf_jframe *f, uint8_t byte);
/* 1 consumed, 0 the byte is not part of the number. */
int gf_num_step(const gf_jnode *n, gf_jframe *f, uint8_t byte);
int gf_num_complete(const gf_jnode *n, const gf_jframe *f);
/* A double as the bound of a number node, rounded inward (lower bounds up,
 * upper bounds down) to the 10^-19 grid; returns 0 when beyond every
 * number the machine writes (the bound then binds nothing). */
int gf_num_bound(double v, int upper, gf_i128 *out);

#endif
