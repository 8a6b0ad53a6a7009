/* json_pick.h — pick a few top-level members out of a big JSON object
 * without building a tree of the rest: a yajl callback parse records where
 * each wanted member's value starts and ends, and only those byte ranges
 * are parsed into gf_json trees.  The tokenizer.json reader drives the same
 * picker from its own callbacks (it also streams the BPE model). */
#ifndef GF_TEXT_JSON_PICK_H
#define GF_TEXT_JSON_PICK_H

#include <stddef.h>
#include <yajl/yajl_parse.h>

#include "core/json.h"
#include "gemfa.h"

#define GF_PICK_MAX 8

typedef struct gf_pick {
    const char *text; /* the whole document, parsed by one yajl_parse call */
    size_t len;
    const char *const *keys; /* wanted top-level keys */
    size_t n_keys;
    size_t start[GF_PICK_MAX], end[GF_PICK_MAX];
    int found[GF_PICK_MAX];
    int active; /* key whose value is being read, -1 none */
    yajl_handle h;
} gf_pick;

void gf_pick_init(gf_pick *p, const char *text, size_t len, const char *const *keys,
                  size_t n_keys);
/* Call from the map-key callback when depth (open containers) is 1. */
void gf_pick_key(gf_pick *p, const unsigned char *key, size_t len);
/* Call after a value ends at top-level member depth: after a scalar when
 * depth is 1, or after a container closes and depth is back to 1. */
void gf_pick_value_end(gf_pick *p);

/* Parses picked member i into *out (NULL when it was absent).
 * Errors as gf_json_parse. */
gemfa_status gf_pick_tree(const gf_pick *p, size_t i, const char *what, gf_json **out);

/* Standalone: picks keys from text (a JSON object) and parses them into
 * out[0..n_keys) (NULL when absent).  Errors: FORMAT (the document is not a
 * JSON object or is malformed), OUT_OF_MEMORY. */
gemfa_status gf_json_pick(const char *text, size_t len, const char *what,
                          const char *const *keys, size_t n_keys, gf_json **out);

#endif
