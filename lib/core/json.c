/* json.c — JSON tree on yajl callbacks; see json.h for why. */
#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_parse.h>

#include "alloc.h"
#include "status.h"

typedef struct builder {
    gf_json *root;
    gf_json **stack; /* open containers */
    size_t depth;
    char *pending_key; /* key waiting for its value (objects) */
    size_t pending_key_len;
    int oom;
    int too_deep;
} builder;

static void json_free_node(gf_json *j);

void gf_json_free(gf_json *j) { json_free_node(j); }

static void json_free_node(gf_json *j)
{
    if (!j)
        return;
    /* Depth is bounded by GF_JSON_MAX_DEPTH, so recursion is safe. */
    for (size_t i = 0; i < j->len && j->items; i++)
        json_free_node(j->items[i]);
    if (j->keys)
        for (size_t i = 0; i < j->len; i++)
            gf_free(j->keys[i]);
    gf_free(j->items);
    gf_free(j->keys);
    gf_free(j->key_lens);
    gf_free(j->str);
    gf_free(j);
}

/* Appends `node` to the innermost open container (or makes it the root). */
static int attach(builder *b, gf_json *node)
{
    if (!node) {
        b->oom = 1;
        return 0;
    }
    if (b->depth == 0) {
        b->root = node;
        return 1;
    }
    gf_json *parent = b->stack[b->depth - 1];
    size_t n = parent->len;
    if ((n & (n - 1)) == 0) { /* grow at powers of two */
        size_t cap = n ? n * 2 : 4;
        gf_json **items = gf_realloc(parent->items, gf_mul_size(cap, sizeof *items));
        if (!items)
            goto fail;
        parent->items = items;
        if (parent->type == GF_JSON_OBJECT) {
            char **keys = gf_realloc(parent->keys, gf_mul_size(cap, sizeof *keys));
            if (!keys)
                goto fail;
            parent->keys = keys;
            size_t *lens = gf_realloc(parent->key_lens, gf_mul_size(cap, sizeof *lens));
            if (!lens)
                goto fail;
            parent->key_lens = lens;
        }
    }
    parent->items[n] = node;
    if (parent->type == GF_JSON_OBJECT) {
        parent->keys[n] = b->pending_key;
        parent->key_lens[n] = b->pending_key_len;
        b->pending_key = NULL;
    }
    parent->len = n + 1;
    return 1;
fail:
    json_free_node(node);
    b->oom = 1;
    return 0;
}

static gf_json *new_node(gf_json_type type)
{
    gf_json *j = gf_calloc(1, sizeof *j);
    if (j)
        j->type = type;
    return j;
}

static int on_null(void *ctx) { return attach(ctx, new_node(GF_JSON_NULL)); }

static int on_bool(void *ctx, int v)
{
    gf_json *j = new_node(GF_JSON_BOOL);
    if (j)
        j->boolean = v != 0;
    return attach(ctx, j);
}

static int on_number(void *ctx, const char *s, size_t len)
{
    gf_json *j = new_node(GF_JSON_NUMBER);
    char buf[64];
    if (j) {
        size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
        memcpy(buf, s, n);
        buf[n] = '\0';
        j->number = strtod(buf, NULL);
        if (!memchr(s, '.', len) && !memchr(s, 'e', len) && !memchr(s, 'E', len)) {
            errno = 0;
            long long v = strtoll(buf, NULL, 10);
            if (errno == 0 && len < sizeof buf) {
                j->is_integer = 1;
                j->integer = v;
            }
        }
    }
    return attach(ctx, j);
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
    gf_json *j = new_node(GF_JSON_STRING);
    if (j) {
        j->str = gf_strndup((const char *)s, len);
        j->len = len; /* strings have no items, so free never walks this */
        if (!j->str) {
            gf_free(j);
            j = NULL;
        }
    }
    return attach(ctx, j);
}

static int open_container(builder *b, gf_json_type type)
{
    if (b->depth >= GF_JSON_MAX_DEPTH) {
        b->too_deep = 1;
        return 0;
    }
    gf_json *j = new_node(type);
    if (!attach(b, j))
        return 0;
    b->stack[b->depth++] = j;
    return 1;
}

static int on_start_map(void *ctx) { return open_container(ctx, GF_JSON_OBJECT); }
static int on_start_array(void *ctx) { return open_container(ctx, GF_JSON_ARRAY); }

static int on_end(void *ctx)
{
    builder *b = ctx;
    b->depth--;
    return 1;
}

static int on_map_key(void *ctx, const unsigned char *key, size_t len)
{
    builder *b = ctx;
    gf_free(b->pending_key);
    b->pending_key = gf_strndup((const char *)key, len);
    b->pending_key_len = len;
    if (!b->pending_key) {
        b->oom = 1;
        return 0;
    }
    return 1;
}

static const yajl_callbacks tree_callbacks = {
    on_null, on_bool, NULL, NULL, on_number, on_string,
    on_start_map, on_map_key, on_end, on_start_array, on_end,
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Value of the \uXXXX escape at text[i] (pointing at the backslash), or -1. */
static long escape_at(const char *text, size_t len, size_t i)
{
    if (i + 6 > len || text[i] != '\\' || text[i + 1] != 'u')
        return -1;
    long v = 0;
    for (int k = 2; k < 6; k++) {
        int h = hexval(text[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

gemfa_status gf_json_check_surrogates(const char *text, size_t len, const char *what)
{
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!in_string) {
            if (c == '"')
                in_string = 1;
            continue;
        }
        if (c == '"') {
            in_string = 0;
        } else if (c == '\\') {
            long v = escape_at(text, len, i);
            if (v < 0) {
                i++; /* some other escape: skip the escaped character */
                continue;
            }
            if (v >= 0xD800 && v <= 0xDBFF) {
                long lo = escape_at(text, len, i + 6);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return gf_error(GEMFA_ERR_FORMAT,
                                    "%s: byte %zu: unpaired surrogate escape \\u%04lX "
                                    "(not valid Unicode)", what, i, v);
                i += 11;
            } else if (v >= 0xDC00 && v <= 0xDFFF) {
                return gf_error(GEMFA_ERR_FORMAT,
                                "%s: byte %zu: unpaired surrogate escape \\u%04lX "
                                "(not valid Unicode)", what, i, v);
            } else {
                i += 5;
            }
        }
    }
    return GEMFA_OK;
}

gemfa_status gf_json_parse(const char *text, size_t len, const char *what, gf_json **out)
{
    gemfa_status st = gf_json_check_surrogates(text, len, what);
    if (st != GEMFA_OK)
        return st;

    builder b = {0};
    b.stack = gf_malloc(sizeof *b.stack * GF_JSON_MAX_DEPTH);
    yajl_handle h = b.stack ? yajl_alloc(&tree_callbacks, NULL, &b) : NULL;
    if (!h) {
        gf_free(b.stack);
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory while parsing JSON", what);
    }
    yajl_status ys = yajl_parse(h, (const unsigned char *)text, len);
    if (ys == yajl_status_ok)
        ys = yajl_complete_parse(h);

    if (ys != yajl_status_ok || b.oom || b.too_deep || !b.root) {
        if (b.oom) {
            st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory while parsing JSON", what);
        } else if (b.too_deep) {
            st = gf_error(GEMFA_ERR_FORMAT, "%s: JSON nested deeper than %d levels", what,
                          GF_JSON_MAX_DEPTH);
        } else if (ys == yajl_status_ok) {
            st = gf_error(GEMFA_ERR_FORMAT, "%s: empty JSON document", what);
        } else {
            unsigned char *msg = yajl_get_error(h, 0, NULL, 0);
            size_t at = yajl_get_bytes_consumed(h);
            char clean[256];
            snprintf(clean, sizeof clean, "%s", msg ? (const char *)msg : "parse error");
            for (char *p = clean; *p; p++)
                if (*p == '\n')
                    *p = ' ';
            size_t n = strlen(clean);
            while (n && clean[n - 1] == ' ')
                clean[--n] = '\0';
            st = gf_error(GEMFA_ERR_FORMAT, "%s: invalid JSON near byte %zu: %s", what, at, clean);
            if (msg)
                yajl_free_error(h, msg);
        }
        /* the root holds everything attached so far */
        json_free_node(b.root);
        gf_free(b.pending_key);
        gf_free(b.stack);
        yajl_free(h);
        return st;
    }
    yajl_free(h);
    gf_free(b.pending_key);
    gf_free(b.stack);
    *out = b.root;
    return GEMFA_OK;
}

const gf_json *gf_json_get(const gf_json *obj, const char *key)
{
    if (!obj || obj->type != GF_JSON_OBJECT)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = obj->len; i-- > 0;)
        if (obj->key_lens[i] == klen && memcmp(obj->keys[i], key, klen) == 0)
            return obj->items[i];
    return NULL;
}

const gf_json *gf_json_at(const gf_json *arr, size_t i)
{
    if (!arr || arr->type != GF_JSON_ARRAY || i >= arr->len)
        return NULL;
    return arr->items[i];
}

int gf_json_as_int(const gf_json *j, int64_t *out)
{
    if (!j || j->type != GF_JSON_NUMBER)
        return 0;
    if (j->is_integer) {
        *out = j->integer;
        return 1;
    }
    /* accept 16384.0, reject 1.5 and out-of-range values */
    if (j->number >= -9.2e18 && j->number <= 9.2e18 && j->number == (double)(int64_t)j->number) {
        *out = (int64_t)j->number;
        return 1;
    }
    return 0;
}

int gf_json_as_double(const gf_json *j, double *out)
{
    if (!j || j->type != GF_JSON_NUMBER)
        return 0;
    *out = j->number;
    return 1;
}

int gf_json_as_bool(const gf_json *j, int *out)
{
    if (!j || j->type != GF_JSON_BOOL)
        return 0;
    *out = j->boolean;
    return 1;
}

gemfa_status gf_read_file(const char *path, size_t max_bytes, char **data, size_t *len)
{
    /* O_NONBLOCK: a FIFO in an untrusted model directory must not block the
     * open (it is then refused as not a regular file); regular files ignore it */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return gf_error(gf_errno_status(e), "%s: cannot open: %s", path, strerror(e));
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return gf_error(GEMFA_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > max_bytes) {
        fclose(f);
        return gf_error(GEMFA_ERR_FORMAT, "%s: file is %lld bytes, more than the %zu allowed",
                        path, (long long)sb.st_size, max_bytes);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = gf_malloc(n + 1);
    if (!buf) {
        fclose(f);
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (got != n || err) {
        gf_free(buf);
        return gf_error(GEMFA_ERR_IO, "%s: read %zu of %zu bytes", path, got, n);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return GEMFA_OK;
}
