/* json.h — a small JSON tree built on yajl's callback parser.
 *
 * Why not yajl_tree or cJSON: strings may hold U+0000 (user text, token
 * pieces), so every string carries its byte length.  Parsing is strict:
 * UTF-8 is validated by yajl and escaped lone surrogates ("\ud800"), which
 * yajl would silently turn into '?', are rejected here. */
#ifndef GF_JSON_H
#define GF_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "gemfa.h"

typedef enum gf_json_type {
    GF_JSON_NULL,
    GF_JSON_BOOL,
    GF_JSON_NUMBER,
    GF_JSON_STRING,
    GF_JSON_ARRAY,
    GF_JSON_OBJECT
} gf_json_type;

typedef struct gf_json gf_json;
struct gf_json {
    gf_json_type type;
    int boolean;         /* GF_JSON_BOOL */
    double number;       /* GF_JSON_NUMBER */
    int is_integer;      /* the number was written without fraction/exponent and fits int64 */
    int64_t integer;     /* valid when is_integer */
    char *str;           /* GF_JSON_STRING: NUL-terminated copy, may contain NULs */
    size_t len;          /* string length in bytes, or number of children */
    gf_json **items;     /* array elements or object values */
    char **keys;         /* object keys (NUL-terminated) */
    size_t *key_lens;
};

/* Nesting deeper than this is rejected (keeps every walk non-recursive-safe). */
#define GF_JSON_MAX_DEPTH 256

/* Parses text[0..len).  `what` names the document in error messages
 * ("config.json").  Errors: FORMAT (with yajl's message and the byte offset),
 * OUT_OF_MEMORY. */
gemfa_status gf_json_parse(const char *text, size_t len, const char *what, gf_json **out);
void gf_json_free(gf_json *j);

/* Rejects "\uD800"-style escapes that do not form a valid surrogate pair.
 * Exposed for the streaming tokenizer.json reader. */
gemfa_status gf_json_check_surrogates(const char *text, size_t len, const char *what);

/* Member `key` of an object (the last one if repeated); NULL when `obj` is
 * not an object or has no such key. */
const gf_json *gf_json_get(const gf_json *obj, const char *key);
/* Element i of an array; NULL when out of range or not an array. */
const gf_json *gf_json_at(const gf_json *arr, size_t i);

/* Typed readers: return 1 and store the value when `j` has that type. */
int gf_json_as_int(const gf_json *j, int64_t *out);
int gf_json_as_double(const gf_json *j, double *out);
int gf_json_as_bool(const gf_json *j, int *out);

/* Reads a whole file into a NUL-terminated buffer (freed with gf_free).
 * Errors: IO (message names the path), OUT_OF_MEMORY, FORMAT (over max_bytes). */
gemfa_status gf_read_file(const char *path, size_t max_bytes, char **data, size_t *len);

#endif
