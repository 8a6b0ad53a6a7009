/* schema.c — JSON Schema (a practical subset, see schema.h) to byte-machine
 * nodes.  Node 0 is always the unbounded string (keys of open objects);
 * nodes 0..5 are the parts of "any JSON value". */
#include "constrain/schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/status.h"
#include "text/text_buf.h"

#define WHAT "gemfa_constraint_new_json"

/* A schema nested deeper than this is refused (JSON itself allows 256). */
#define MAX_SCHEMA_DEPTH 32

enum { ANY_STRING, ANY_NUMBER, ANY_OBJECT, ANY_ARRAY, ANY_LITERAL, ANY_VALUE };

typedef struct compiler {
    gf_jsm *m;
    char path[256]; /* where we are, for messages: "properties.a.items" */
} compiler;

static gemfa_status oom(void)
{
    return gf_error(GEMFA_ERR_OUT_OF_MEMORY, WHAT ": out of memory compiling the schema");
}

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    void *p = gf_realloc(*arr, gf_mul_size(c, size));
    if (!p)
        return -1;
    *arr = p;
    *cap = c;
    return 0;
}

static uint32_t new_node(gf_jsm *m, uint8_t kind)
{
    if (grow((void **)&m->nodes, &m->cap_nodes, m->n_nodes, sizeof *m->nodes))
        return GF_JSM_NONE;
    gf_jnode *n = &m->nodes[m->n_nodes];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->max_len = GF_JSM_NONE;
    n->items = GF_JSM_NONE;
    n->lit_root = GF_JSM_NONE;
    for (int i = 0; i < 5; i++)
        n->alt[i] = GF_JSM_NONE;
    return (uint32_t)m->n_nodes++;
}

static uint32_t new_lit(gf_jsm *m, uint8_t byte)
{
    if (grow((void **)&m->lit, &m->cap_lit, m->n_lit, sizeof *m->lit))
        return GF_JSM_NONE;
    gf_lnode *l = &m->lit[m->n_lit];
    l->first_child = l->next_sibling = l->value = GF_JSM_NONE;
    l->below = 0;
    l->byte = byte;
    return (uint32_t)m->n_lit++;
}

/* Adds text[0..len) below literal root `root` with `value`; -1 when out of
 * memory.  A text already there keeps its first value. */
static int lit_add(gf_jsm *m, uint32_t root, const char *text, size_t len, uint32_t value)
{
    uint32_t at = root;
    if (value < 64)
        m->lit[at].below |= 1ull << value;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)text[i];
        uint32_t ch = m->lit[at].first_child;
        while (ch != GF_JSM_NONE && m->lit[ch].byte != c)
            ch = m->lit[ch].next_sibling;
        if (ch == GF_JSM_NONE) {
            ch = new_lit(m, c);
            if (ch == GF_JSM_NONE)
                return -1;
            m->lit[ch].next_sibling = m->lit[at].first_child;
            m->lit[at].first_child = ch;
        }
        at = ch;
        if (value < 64)
            m->lit[at].below |= 1ull << value;
    }
    if (m->lit[at].value == GF_JSM_NONE)
        m->lit[at].value = value;
    return 0;
}

/* ---- serializing enum values (one canonical text per value) ---- */

static int put_string(gf_bytes *b, const char *s, size_t len)
{
    if (gf_bytes_push(b, '"'))
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        const char *e = NULL;
        if (c == '"')
            e = "\\\"";
        else if (c == '\\')
            e = "\\\\";
        else if (c == '\n')
            e = "\\n";
        else if (c == '\t')
            e = "\\t";
        else if (c == '\r')
            e = "\\r";
        else if (c == '\b')
            e = "\\b";
        else if (c == '\f')
            e = "\\f";
        else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            e = esc;
        }
        if (e ? gf_bytes_append(b, e, strlen(e)) : gf_bytes_push(b, (char)c))
            return -1;
    }
    return gf_bytes_push(b, '"');
}

static int put_value(gf_bytes *b, const gf_json *j)
{
    char buf[40];
    switch (j->type) {
    case GF_JSON_NULL:
        return gf_bytes_append(b, "null", 4);
    case GF_JSON_BOOL:
        return j->boolean ? gf_bytes_append(b, "true", 4) : gf_bytes_append(b, "false", 5);
    case GF_JSON_NUMBER:
        if (j->is_integer) {
            snprintf(buf, sizeof buf, "%lld", (long long)j->integer);
        } else {
            for (int prec = 1; prec <= 17; prec++) { /* shortest text that reads back */
                snprintf(buf, sizeof buf, "%.*g", prec, j->number);
                if (strtod(buf, NULL) == j->number)
                    break;
            }
        }
        return gf_bytes_append(b, buf, strlen(buf));
    case GF_JSON_STRING:
        return put_string(b, j->str, j->len);
    case GF_JSON_ARRAY:
        if (gf_bytes_push(b, '['))
            return -1;
        for (size_t i = 0; i < j->len; i++)
            if ((i && gf_bytes_push(b, ',')) || put_value(b, j->items[i]))
                return -1;
        return gf_bytes_push(b, ']');
    case GF_JSON_OBJECT:
        if (gf_bytes_push(b, '{'))
            return -1;
        for (size_t i = 0; i < j->len; i++)
            if ((i && gf_bytes_push(b, ',')) || put_string(b, j->keys[i], j->key_lens[i]) ||
                gf_bytes_push(b, ':') || put_value(b, j->items[i]))
                return -1;
        return gf_bytes_push(b, '}');
    }
    return -1;
}

/* ---- types ---- */

enum { T_STRING = 1, T_NUMBER = 2, T_INTEGER = 4, T_OBJECT = 8, T_ARRAY = 16, T_BOOLEAN = 32,
       T_NULL = 64, T_ALL = 127 };

static unsigned type_bit(const gf_json *j)
{
    if (j->type != GF_JSON_STRING)
        return 0;
    static const char *names[] = {"string", "number", "integer", "object", "array", "boolean",
                                  "null"};
    for (unsigned i = 0; i < 7; i++)
        if (strcmp(j->str, names[i]) == 0)
            return 1u << i;
    return 0;
}

static unsigned json_type_of(const gf_json *v)
{
    switch (v->type) {
    case GF_JSON_NULL: return T_NULL;
    case GF_JSON_BOOL: return T_BOOLEAN;
    case GF_JSON_NUMBER: {
        int64_t i;
        return T_NUMBER | (gf_json_as_int(v, &i) ? T_INTEGER : 0);
    }
    case GF_JSON_STRING: return T_STRING;
    case GF_JSON_ARRAY: return T_ARRAY;
    case GF_JSON_OBJECT: return T_OBJECT;
    }
    return 0;
}

static const char *const annotations[] = {"title", "description", "default", "examples",
                                          "$schema", "$id", "$comment", "readOnly",
                                          "writeOnly", "deprecated", NULL};
static const char *const supported[] = {
    "type", "properties", "required", "additionalProperties", "items", "enum", "const",
    "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minItems", "maxItems", NULL};

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

static gemfa_status compile(compiler *c, const gf_json *j, int depth, uint32_t *out);

static const char *where(const compiler *c) { return c->path[0] ? c->path : "the schema root"; }

/* Appends ".name" to the path; returns the old length to restore. */
static size_t path_push(compiler *c, const char *name)
{
    size_t old = strlen(c->path);
    snprintf(c->path + old, sizeof c->path - old, "%s%s", old ? "." : "", name);
    return old;
}

/* A non-negative integer keyword, or GF_JSM_NONE when absent. */
static gemfa_status count_kw(compiler *c, const gf_json *j, const char *kw, uint32_t *out)
{
    const gf_json *v = gf_json_get(j, kw);
    *out = GF_JSM_NONE;
    if (!v)
        return GEMFA_OK;
    int64_t i;
    if (!gf_json_as_int(v, &i) || i < 0 || i >= (int64_t)GF_JSM_NONE)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        WHAT ": \"%s\" at %s must be a non-negative integer", kw, where(c));
    *out = (uint32_t)i;
    return GEMFA_OK;
}

static gemfa_status len_bounds(compiler *c, const gf_json *j, const char *min_kw,
                               const char *max_kw, gf_jnode *n)
{
    uint32_t lo, hi;
    gemfa_status st = count_kw(c, j, min_kw, &lo);
    if (st == GEMFA_OK)
        st = count_kw(c, j, max_kw, &hi);
    if (st != GEMFA_OK)
        return st;
    n->min_len = lo == GF_JSM_NONE ? 0 : lo;
    n->max_len = hi;
    if (hi != GF_JSM_NONE && n->min_len > hi)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, WHAT ": %s %u > %s %u at %s: nothing fits",
                        min_kw, n->min_len, max_kw, hi, where(c));
    return GEMFA_OK;
}

/* One bound of a number node: kw (inclusive) or its exclusive form. */
static gemfa_status num_bound(compiler *c, const gf_json *j, int upper, gf_jnode *n)
{
    const char *kw = upper ? "maximum" : "minimum";
    const char *ex_kw = upper ? "exclusiveMaximum" : "exclusiveMinimum";
    const gf_json *v = gf_json_get(j, kw), *ex = gf_json_get(j, ex_kw);
    double bound = upper ? INFINITY : -INFINITY;
    int have = 0;
    int ex_bool = 0;
    if (ex && ex->type == GF_JSON_BOOL) {
        ex_bool = ex->boolean; /* draft 4: makes `kw` exclusive */
        ex = NULL;
    } else if (ex && ex->type != GF_JSON_NUMBER) {
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, WHAT ": \"%s\" at %s must be a number",
                        ex_kw, where(c));
    }
    if (v) {
        if (v->type != GF_JSON_NUMBER || !isfinite(v->number))
            return gf_error(GEMFA_ERR_INVALID_ARGUMENT, WHAT ": \"%s\" at %s must be a number",
                            kw, where(c));
        bound = ex_bool ? nextafter(v->number, upper ? -INFINITY : INFINITY) : v->number;
        have = 1;
    }
    if (ex && isfinite(ex->number)) {
        /* v < e holds for every text that parses to at most the double below e */
        double e = nextafter(ex->number, upper ? -INFINITY : INFINITY);
        if (!have || (upper ? e < bound : e > bound))
            bound = e;
        have = 1;
    }
    if (!have)
        return GEMFA_OK;
    gf_i128 q;
    int r = gf_num_bound(bound, upper, &q);
    if (r == 0)
        return GEMFA_OK;
    if (r < 0)
        return gf_error(GEMFA_ERR_UNSUPPORTED,
                        WHAT ": the %s at %s is beyond the 19 integer digits numbers are "
                        "written with", kw, where(c));
    if (n->integer) { /* to whole numbers, inward */
        const gf_i128 S = (gf_i128)10000000000000000000ULL;
        gf_i128 w = q / S, rem = q % S;
        if (rem != 0 && (upper ? q < 0 : q > 0))
            w += upper ? -1 : 1;
        q = w * S;
    }
    if (upper) {
        n->has_hi = 1;
        n->hi = q;
    } else {
        n->has_lo = 1;
        n->lo = q;
    }
    return GEMFA_OK;
}

static gemfa_status compile_number(compiler *c, const gf_json *j, int integer, uint32_t *out)
{
    uint32_t id = new_node(c->m, GF_JN_NUMBER);
    if (id == GF_JSM_NONE)
        return oom();
    gf_jnode *n = &c->m->nodes[id];
    n->integer = (uint8_t)integer;
    gemfa_status st = num_bound(c, j, 0, n);
    if (st == GEMFA_OK)
        st = num_bound(c, j, 1, n);
    if (st != GEMFA_OK)
        return st;
    if (n->has_lo && n->has_hi && n->lo > n->hi)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        WHAT ": the bounds at %s leave no %s", where(c),
                        integer ? "integer" : "number");
    *out = id;
    return GEMFA_OK;
}

static gemfa_status compile_object(compiler *c, const gf_json *j, int depth, uint32_t *out)
{
    gf_jsm *m = c->m;
    const gf_json *props = gf_json_get(j, "properties"), *req = gf_json_get(j, "required");
    const gf_json *addl = gf_json_get(j, "additionalProperties");
    if (addl && addl->type != GF_JSON_BOOL && addl->type != GF_JSON_OBJECT)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        WHAT ": \"additionalProperties\" at %s must be a boolean or a schema",
                        where(c));
    if (props && props->type != GF_JSON_OBJECT)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        WHAT ": \"properties\" at %s must be an object", where(c));
    if (req && req->type != GF_JSON_ARRAY)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        WHAT ": \"required\" at %s must be an array", where(c));
    if (!props && (!req || req->len == 0)) {
        *out = ANY_OBJECT;
        return GEMFA_OK;
    }
    size_t np = props ? props->len : 0;
    if (np > GF_JSM_MAX_PROPS)
        return gf_error(GEMFA_ERR_UNSUPPORTED,
                        WHAT ": %zu properties at %s; at most %d are supported", np, where(c),
                        GF_JSM_MAX_PROPS);
    for (size_t i = 0; i < np; i++)
        for (size_t k = 0; k < i; k++)
            if (props->key_lens[i] == props->key_lens[k] &&
                memcmp(props->keys[i], props->keys[k], props->key_lens[i]) == 0)
                return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                                WHAT ": property \"%s\" appears twice at %s", props->keys[i],
                                where(c));
    uint64_t required = 0;
    for (size_t r = 0; req && r < req->len; r++) {
        const gf_json *name = req->items[r];
        if (name->type != GF_JSON_STRING)
            return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                            WHAT ": \"required\" at %s must list strings", where(c));
        size_t i = 0;
        while (i < np && !(props->key_lens[i] == name->len &&
                           memcmp(props->keys[i], name->str, name->len) == 0))
            i++;
        if (i == np)
            return gf_error(GEMFA_ERR_UNSUPPORTED,
                            WHAT ": required property \"%s\" at %s has no schema in "
                            "\"properties\"", name->str, where(c));
        required |= 1ull << i;
    }
    /* reserve the property slots first: compiling values adds more */
    size_t first = m->n_props;
    for (size_t i = 0; i < np; i++) {
        if (grow((void **)&m->props, &m->cap_props, m->n_props, sizeof *m->props))
            return oom();
        m->props[m->n_props++] = GF_JSM_NONE;
    }
    uint32_t root = new_lit(m, 0);
    if (root == GF_JSM_NONE)
        return oom();
    gf_bytes key = {0};
    for (size_t i = 0; i < np; i++) {
        key.len = 0;
        if (put_string(&key, props->keys[i], props->key_lens[i]) ||
            lit_add(m, root, key.data, key.len, (uint32_t)i)) {
            gf_bytes_free(&key);
            return oom();
        }
        size_t old = path_push(c, "properties");
        path_push(c, props->keys[i]);
        uint32_t v;
        gemfa_status st = compile(c, props->items[i], depth + 1, &v);
        c->path[old] = '\0';
        if (st != GEMFA_OK) {
            gf_bytes_free(&key);
            return st;
        }
        m->props[first + i] = v;
    }
    gf_bytes_free(&key);
    uint32_t id = new_node(m, GF_JN_OBJECT);
    if (id == GF_JSM_NONE)
        return oom();
    gf_jnode *n = &m->nodes[id];
    n->first_prop = (uint32_t)first;
    n->n_props = (uint32_t)np;
    n->required = required;
    n->lit_root = root;
    *out = id;
    return GEMFA_OK;
}

static gemfa_status compile_array(compiler *c, const gf_json *j, int depth, uint32_t *out)
{
    const gf_json *items = gf_json_get(j, "items");
    uint32_t it = ANY_VALUE;
    if (items) {
        if (items->type == GF_JSON_ARRAY)
            return gf_error(GEMFA_ERR_UNSUPPORTED,
                            WHAT ": \"items\" as a list (tuple) at %s is not supported",
                            where(c));
        size_t old = path_push(c, "items");
        gemfa_status st = compile(c, items, depth + 1, &it);
        c->path[old] = '\0';
        if (st != GEMFA_OK)
            return st;
    }
    uint32_t id = new_node(c->m, GF_JN_ARRAY);
    if (id == GF_JSM_NONE)
        return oom();
    c->m->nodes[id].items = it;
    gemfa_status st = len_bounds(c, j, "minItems", "maxItems", &c->m->nodes[id]);
    if (st != GEMFA_OK)
        return st;
    *out = id;
    return GEMFA_OK;
}

static gemfa_status compile_enum(compiler *c, const gf_json *j, unsigned types, uint32_t *out)
{
    const gf_json *en = gf_json_get(j, "enum"), *cst = gf_json_get(j, "const");
    if (en && en->type != GF_JSON_ARRAY)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, WHAT ": \"enum\" at %s must be an array",
                        where(c));
    uint32_t root = new_lit(c->m, 0);
    if (root == GF_JSM_NONE)
        return oom();
    gf_bytes text = {0};
    size_t kept = 0;
    size_t n_values = cst ? 1 : en->len;
    for (size_t i = 0; i < n_values; i++) {
        const gf_json *v = cst ? cst : en->items[i];
        unsigned t = json_type_of(v);
        if (!(t & types))
            continue; /* a value of another type can never validate */
        text.len = 0;
        if (put_value(&text, v) || lit_add(c->m, root, text.data, text.len, 0)) {
            gf_bytes_free(&text);
            return oom();
        }
        kept++;
    }
    gf_bytes_free(&text);
    if (kept == 0)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        WHAT ": \"%s\" at %s has no value of the schema's type",
                        cst ? "const" : "enum",
                        where(c));
    uint32_t id = new_node(c->m, GF_JN_LITERAL);
    if (id == GF_JSM_NONE)
        return oom();
    c->m->nodes[id].lit_root = root;
    *out = id;
    return GEMFA_OK;
}

/* A literal node holding true/false/null as `types` asks. */
static gemfa_status compile_words(compiler *c, unsigned types, uint32_t *out)
{
    uint32_t root = new_lit(c->m, 0);
    if (root == GF_JSM_NONE)
        return oom();
    if (((types & T_BOOLEAN) && (lit_add(c->m, root, "true", 4, 0) ||
                                 lit_add(c->m, root, "false", 5, 0))) ||
        ((types & T_NULL) && lit_add(c->m, root, "null", 4, 0)))
        return oom();
    uint32_t id = new_node(c->m, GF_JN_LITERAL);
    if (id == GF_JSM_NONE)
        return oom();
    c->m->nodes[id].lit_root = root;
    *out = id;
    return GEMFA_OK;
}

static gemfa_status compile(compiler *c, const gf_json *j, int depth, uint32_t *out)
{
    if (depth > MAX_SCHEMA_DEPTH)
        return gf_error(GEMFA_ERR_UNSUPPORTED, WHAT ": the schema nests deeper than %d at %s",
                        MAX_SCHEMA_DEPTH, where(c));
    if (j->type == GF_JSON_BOOL) {
        if (!j->boolean)
            return gf_error(GEMFA_ERR_UNSUPPORTED,
                            WHAT ": the schema false at %s accepts no value", where(c));
        *out = ANY_VALUE;
        return GEMFA_OK;
    }
    if (j->type != GF_JSON_OBJECT)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        WHAT ": a schema must be an object or a boolean (at %s)", where(c));
    for (size_t i = 0; i < j->len; i++) {
        if (strlen(j->keys[i]) != j->key_lens[i] ||
            (!in_list(supported, j->keys[i]) && !in_list(annotations, j->keys[i])))
            return gf_error(GEMFA_ERR_UNSUPPORTED,
                            WHAT ": keyword \"%s\" at %s is not supported (supported: type, "
                            "properties, required, additionalProperties, items, enum, const, "
                            "minLength, maxLength, minimum, maximum, exclusiveMinimum, "
                            "exclusiveMaximum, minItems, maxItems)", j->keys[i], where(c));
    }
    const gf_json *type = gf_json_get(j, "type");
    unsigned types = 0;
    if (type && type->type == GF_JSON_ARRAY) {
        for (size_t i = 0; i < type->len; i++) {
            unsigned t = type_bit(type->items[i]);
            if (!t)
                return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                                WHAT ": \"type\" at %s must name JSON Schema types", where(c));
            types |= t;
        }
        if (!types)
            return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                            WHAT ": \"type\" at %s is an empty list", where(c));
    } else if (type) {
        types = type_bit(type);
        if (!types)
            return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                            WHAT ": \"type\" at %s must name a JSON Schema type", where(c));
    } else if (gf_json_get(j, "enum") || gf_json_get(j, "const")) {
        types = T_ALL;
    } else if (gf_json_get(j, "properties") || gf_json_get(j, "required")) {
        types = T_OBJECT;
    } else if (gf_json_get(j, "items") || gf_json_get(j, "minItems") ||
               gf_json_get(j, "maxItems")) {
        types = T_ARRAY;
    } else if (gf_json_get(j, "minLength") || gf_json_get(j, "maxLength")) {
        types = T_STRING;
    } else if (gf_json_get(j, "minimum") || gf_json_get(j, "maximum") ||
               gf_json_get(j, "exclusiveMinimum") || gf_json_get(j, "exclusiveMaximum")) {
        types = T_NUMBER;
    } else {
        *out = ANY_VALUE;
        return GEMFA_OK;
    }
    if (types & T_NUMBER)
        types &= ~(unsigned)T_INTEGER; /* a number may be an integer */
    if (gf_json_get(j, "enum") || gf_json_get(j, "const"))
        return compile_enum(c, j, types & T_NUMBER ? types | T_INTEGER : types, out);

    uint32_t alt[5] = {GF_JSM_NONE, GF_JSM_NONE, GF_JSM_NONE, GF_JSM_NONE, GF_JSM_NONE};
    gemfa_status st = GEMFA_OK;
    if (types & T_STRING) {
        uint32_t id = new_node(c->m, GF_JN_STRING);
        if (id == GF_JSM_NONE)
            return oom();
        st = len_bounds(c, j, "minLength", "maxLength", &c->m->nodes[id]);
        alt[0] = id;
    }
    if (st == GEMFA_OK && (types & (T_NUMBER | T_INTEGER)))
        st = compile_number(c, j, !(types & T_NUMBER), &alt[1]);
    if (st == GEMFA_OK && (types & T_OBJECT))
        st = compile_object(c, j, depth, &alt[2]);
    if (st == GEMFA_OK && (types & T_ARRAY))
        st = compile_array(c, j, depth, &alt[3]);
    if (st == GEMFA_OK && (types & (T_BOOLEAN | T_NULL)))
        st = compile_words(c, types, &alt[4]);
    if (st != GEMFA_OK)
        return st;
    int count = 0;
    for (int i = 0; i < 5; i++)
        if (alt[i] != GF_JSM_NONE) {
            count++;
            *out = alt[i];
        }
    if (count == 1)
        return GEMFA_OK;
    uint32_t id = new_node(c->m, GF_JN_UNION);
    if (id == GF_JSM_NONE)
        return oom();
    memcpy(c->m->nodes[id].alt, alt, sizeof alt);
    *out = id;
    return GEMFA_OK;
}

/* Nodes 0..5: any string, any number, any object, any array, the words
 * true/false/null, any value. */
static gemfa_status build_any(gf_jsm *m)
{
    if (new_node(m, GF_JN_STRING) != ANY_STRING || new_node(m, GF_JN_NUMBER) != ANY_NUMBER ||
        new_node(m, GF_JN_OBJECT) != ANY_OBJECT || new_node(m, GF_JN_ARRAY) != ANY_ARRAY)
        return oom();
    m->nodes[ANY_OBJECT].open = 1;
    m->nodes[ANY_ARRAY].items = ANY_VALUE;
    compiler c = {.m = m};
    uint32_t words;
    gemfa_status st = compile_words(&c, T_BOOLEAN | T_NULL, &words);
    if (st != GEMFA_OK)
        return st;
    if (words != ANY_LITERAL || new_node(m, GF_JN_UNION) != ANY_VALUE)
        return oom();
    uint32_t alt[5] = {ANY_STRING, ANY_NUMBER, ANY_OBJECT, ANY_ARRAY, ANY_LITERAL};
    memcpy(m->nodes[ANY_VALUE].alt, alt, sizeof alt);
    m->root_any = ANY_VALUE;
    return GEMFA_OK;
}

gemfa_status gf_schema_compile(const char *text, size_t len, gf_jsm *m)
{
    memset(m, 0, sizeof *m);
    gemfa_status st = build_any(m);
    gf_json *j = NULL;
    if (st == GEMFA_OK && len > 0)
        st = gf_json_parse(text, len, "JSON schema", &j);
    if (st == GEMFA_OK) {
        compiler c = {.m = m};
        m->root = ANY_VALUE;
        if (j)
            st = compile(&c, j, 0, &m->root);
    }
    gf_json_free(j);
    if (st != GEMFA_OK)
        gf_jsm_free(m);
    return st;
}
