/* text_buf.c — growable buffers (see text_buf.h). */
#include "text/text_buf.h"

#include <string.h>

#include "core/alloc.h"

/* New capacity holding `need` elements: doubling, at least 64. */
static size_t grown(size_t cap, size_t need)
{
    size_t c = cap ? cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return need;
        c *= 2;
    }
    return c;
}

int gf_bytes_reserve(gf_bytes *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return -1;
    size_t need = b->len + extra + 1; /* room for a terminating NUL */
    if (need <= b->cap)
        return 0;
    size_t cap = grown(b->cap, need);
    char *p = gf_realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int gf_bytes_append(gf_bytes *b, const void *p, size_t n)
{
    if (gf_bytes_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int gf_bytes_push(gf_bytes *b, char c) { return gf_bytes_append(b, &c, 1); }

void gf_bytes_free(gf_bytes *b)
{
    gf_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int gf_ids_reserve(gf_ids *v, size_t extra)
{
    if (extra > SIZE_MAX / sizeof(int32_t) - v->len)
        return -1;
    size_t need = v->len + extra;
    if (need <= v->cap)
        return 0;
    size_t cap = grown(v->cap, need);
    int32_t *p = gf_realloc(v->data, gf_mul_size(cap, sizeof *p));
    if (!p)
        return -1;
    v->data = p;
    v->cap = cap;
    return 0;
}

int gf_ids_push(gf_ids *v, int32_t id)
{
    if (v->len == v->cap && gf_ids_reserve(v, 1) != 0)
        return -1;
    v->data[v->len++] = id;
    return 0;
}

int gf_ids_append(gf_ids *v, const int32_t *ids, size_t n)
{
    if (gf_ids_reserve(v, n) != 0)
        return -1;
    if (n)
        memcpy(v->data + v->len, ids, n * sizeof *ids);
    v->len += n;
    return 0;
}

void gf_ids_free(gf_ids *v)
{
    gf_free(v->data);
    v->data = NULL;
    v->len = v->cap = 0;
}
