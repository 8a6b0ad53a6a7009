/* json_pick.c — see json_pick.h. */
#include "text/json_pick.h"

#include <stdio.h>
#include <string.h>

#include "core/status.h"

void gf_pick_init(gf_pick *p, const char *text, size_t len, const char *const *keys,
                  size_t n_keys)
{
    memset(p, 0, sizeof *p);
    p->text = text;
    p->len = len;
    p->keys = keys;
    p->n_keys = n_keys < GF_PICK_MAX ? n_keys : GF_PICK_MAX;
    p->active = -1;
}

void gf_pick_key(gf_pick *p, const unsigned char *key, size_t len)
{
    p->active = -1;
    for (size_t i = 0; i < p->n_keys; i++) {
        if (strlen(p->keys[i]) == len && memcmp(p->keys[i], key, len) == 0) {
            /* the value starts after the colon that follows the key */
            size_t at = yajl_get_bytes_consumed(p->h);
            while (at < p->len && (p->text[at] == ' ' || p->text[at] == '\t' ||
                                   p->text[at] == '\n' || p->text[at] == '\r' ||
                                   p->text[at] == ':'))
                at++;
            p->start[i] = at;
            p->active = (int)i;
            return;
        }
    }
}

void gf_pick_value_end(gf_pick *p)
{
    if (p->active < 0)
        return;
    p->end[p->active] = yajl_get_bytes_consumed(p->h);
    p->found[p->active] = 1; /* a repeated key: the last one wins */
    p->active = -1;
}

gemfa_status gf_pick_tree(const gf_pick *p, size_t i, const char *what, gf_json **out)
{
    *out = NULL;
    if (i >= p->n_keys || !p->found[i])
        return GEMFA_OK;
    char part[160];
    snprintf(part, sizeof part, "%s (\"%s\")", what, p->keys[i]);
    return gf_json_parse(p->text + p->start[i], p->end[i] - p->start[i], part, out);
}

/* ---- standalone picker ---- */

typedef struct pick_ctx {
    gf_pick pick;
    int depth;
    int not_object;
} pick_ctx;

static int scalar(pick_ctx *c)
{
    if (c->depth == 0)
        c->not_object = 1;
    if (c->depth == 1)
        gf_pick_value_end(&c->pick);
    return !c->not_object;
}
static int on_null(void *ctx) { return scalar(ctx); }
static int on_bool(void *ctx, int v) { (void)v; return scalar(ctx); }
static int on_number(void *ctx, const char *s, size_t l) { (void)s; (void)l; return scalar(ctx); }
static int on_string(void *ctx, const unsigned char *s, size_t l)
{
    (void)s;
    (void)l;
    return scalar(ctx);
}
static int on_start_map(void *ctx)
{
    pick_ctx *c = ctx;
    c->depth++;
    return 1;
}
static int on_start_array(void *ctx)
{
    pick_ctx *c = ctx;
    if (c->depth == 0)
        c->not_object = 1;
    c->depth++;
    return !c->not_object;
}
static int on_end(void *ctx)
{
    pick_ctx *c = ctx;
    if (--c->depth == 1)
        gf_pick_value_end(&c->pick);
    return 1;
}
static int on_key(void *ctx, const unsigned char *k, size_t l)
{
    pick_ctx *c = ctx;
    if (c->depth == 1)
        gf_pick_key(&c->pick, k, l);
    return 1;
}

static const yajl_callbacks pick_callbacks = {
    on_null, on_bool, NULL, NULL, on_number, on_string,
    on_start_map, on_key, on_end, on_start_array, on_end,
};

gemfa_status gf_json_pick(const char *text, size_t len, const char *what,
                          const char *const *keys, size_t n_keys, gf_json **out)
{
    for (size_t i = 0; i < n_keys; i++)
        out[i] = NULL;
    gemfa_status st = gf_json_check_surrogates(text, len, what);
    if (st != GEMFA_OK)
        return st;
    pick_ctx c = {0};
    gf_pick_init(&c.pick, text, len, keys, n_keys);
    yajl_handle h = yajl_alloc(&pick_callbacks, NULL, &c);
    if (!h)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    c.pick.h = h;
    yajl_status ys = yajl_parse(h, (const unsigned char *)text, len);
    if (ys == yajl_status_ok)
        ys = yajl_complete_parse(h);
    if (c.not_object) {
        yajl_free(h);
        return gf_error(GEMFA_ERR_FORMAT, "%s: the document is not a JSON object", what);
    }
    if (ys != yajl_status_ok) {
        size_t at = yajl_get_bytes_consumed(h);
        yajl_free(h);
        return gf_error(GEMFA_ERR_FORMAT, "%s: invalid JSON near byte %zu", what, at);
    }
    yajl_free(h);
    for (size_t i = 0; i < c.pick.n_keys; i++) {
        st = gf_pick_tree(&c.pick, i, what, &out[i]);
        if (st != GEMFA_OK) {
            for (size_t k = 0; k < i; k++) {
                gf_json_free(out[k]);
                out[k] = NULL;
            }
            return st;
        }
    }
    return GEMFA_OK;
}
