/* fixture.c — see fixture.h. */
#include "fixture.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"
#include "kernels/linear.h"

const char *tl_tiny_dir(void)
{
    static char buf[4096];
    const char *data = getenv("GEMFA_TEST_DATA");
    cr_assert_not_null(data, "GEMFA_TEST_DATA is not set (run through meson test)");
    snprintf(buf, sizeof buf, "%s/tiny-gemma3n", data);
    return buf;
}

char *tl_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/gemfa-loader-XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    cr_assert_not_null(d, "mkdtemp failed");
    return strdup(d);
}

char *tl_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    cr_assert_not_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

void tl_rmtree(char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char *p = tl_path(dir, e->d_name);
            unlink(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

char *tl_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = (size_t)n;
    return buf;
}

void tl_write(const char *dir, const char *name, const void *data, size_t len)
{
    char *p = tl_path(dir, name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f, "cannot create %s", p);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
    free(p);
}

void tl_write_str(const char *dir, const char *name, const char *text)
{
    tl_write(dir, name, text, strlen(text));
}

void tl_link_tiny(const char *dir, const char *const *except)
{
    const char *tiny = tl_tiny_dir();
    DIR *d = opendir(tiny);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "golden"))
            continue;
        int skip = 0;
        for (size_t i = 0; except && except[i]; i++)
            skip |= !strcmp(except[i], e->d_name);
        if (skip)
            continue;
        char *src = tl_path(tiny, e->d_name), *dst = tl_path(dir, e->d_name);
        cr_assert_eq(symlink(src, dst), 0, "symlink %s", dst);
        free(src);
        free(dst);
    }
    closedir(d);
}

/* ----------------------------------------------------------- safetensors */

static uint64_t read_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

tl_tensor *tl_read_tensors(const char *path, size_t *n_out)
{
    size_t len;
    char *buf = tl_read(path, &len);
    uint64_t hlen = read_u64le((const uint8_t *)buf);
    gf_json *h = NULL;
    cr_assert_eq(gf_json_parse(buf + 8, (size_t)hlen, path, &h), GEMFA_OK);
    tl_tensor *t = calloc(h->len, sizeof *t);
    size_t n = 0;
    const uint8_t *data = (const uint8_t *)buf + 8 + hlen;
    for (size_t i = 0; i < h->len; i++) {
        if (!strcmp(h->keys[i], "__metadata__"))
            continue;
        const gf_json *e = h->items[i];
        tl_tensor *x = &t[n++];
        snprintf(x->name, sizeof x->name, "%s", h->keys[i]);
        snprintf(x->dtype, sizeof x->dtype, "%s", gf_json_get(e, "dtype")->str);
        const gf_json *sh = gf_json_get(e, "shape");
        x->n_dims = (int)sh->len;
        for (size_t k = 0; k < sh->len; k++)
            x->shape[k] = sh->items[k]->integer;
        const gf_json *off = gf_json_get(e, "data_offsets");
        int64_t b = off->items[0]->integer, en = off->items[1]->integer;
        x->nbytes = (size_t)(en - b);
        x->data = malloc(x->nbytes ? x->nbytes : 1);
        memcpy(x->data, data + b, x->nbytes);
    }
    gf_json_free(h);
    free(buf);
    *n_out = n;
    return t;
}

void tl_free_tensors(tl_tensor *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(t[i].data);
    free(t);
}

const tl_tensor *tl_find(const tl_tensor *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t[i].name, name))
            return &t[i];
    return NULL;
}

float tl_value(const tl_tensor *t, size_t i)
{
    if (!strcmp(t->dtype, "F32")) {
        float f;
        memcpy(&f, t->data + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, t->data + 2 * i, 2);
    return !strcmp(t->dtype, "F16") ? gf_f16_to_f32(h) : gf_bf16_to_f32(h);
}

static void append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = realloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

void tl_write_safetensors(const char *path, const tl_tensor *t, size_t n, size_t pad)
{
    char *h = NULL, item[1024];
    size_t hl = 0, hc = 0, off = 0;
    append(&h, &hl, &hc, "{\"__metadata__\": {\"format\": \"pt\"}");
    if (pad) {
        snprintf(item, sizeof item, ", \"pad\": {\"dtype\": \"U8\", \"shape\": [%zu], "
                 "\"data_offsets\": [0, %zu]}", pad, pad);
        append(&h, &hl, &hc, item);
        off = pad;
    }
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(item, sizeof item, ", \"%s\": {\"dtype\": \"%s\", \"shape\": [", t[i].name,
                         t[i].dtype);
        for (int d = 0; d < t[i].n_dims; d++)
            k += snprintf(item + k, sizeof item - (size_t)k, "%s%lld", d ? ", " : "",
                          (long long)t[i].shape[d]);
        snprintf(item + k, sizeof item - (size_t)k, "], \"data_offsets\": [%zu, %zu]}", off,
                 off + t[i].nbytes);
        append(&h, &hl, &hc, item);
        off += t[i].nbytes;
    }
    append(&h, &hl, &hc, "}");
    /* pad the header with spaces to a multiple of 8, as the reference writer does */
    while ((8 + hl) % 8)
        append(&h, &hl, &hc, " ");

    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    uint8_t len8[8];
    put_u64le(len8, hl);
    fwrite(len8, 1, 8, f);
    fwrite(h, 1, hl, f);
    for (size_t i = 0; i < pad; i++)
        fputc(0x5a, f);
    for (size_t i = 0; i < n; i++)
        fwrite(t[i].data, 1, t[i].nbytes, f);
    cr_assert_eq(fclose(f), 0);
    free(h);
}

void tl_rewrite_header(const char *src, const char *dst, const char *from, const char *to)
{
    size_t len;
    char *buf = tl_read(src, &len);
    uint64_t hlen = read_u64le((const uint8_t *)buf);
    char *header = malloc(hlen + 1);
    memcpy(header, buf + 8, hlen);
    header[hlen] = '\0';
    header = tl_replace(header, from, to);
    size_t nh = strlen(header);
    FILE *f = fopen(dst, "wb");
    cr_assert_not_null(f, "cannot create %s", dst);
    uint8_t len8[8];
    put_u64le(len8, nh);
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, nh, f);
    fwrite(buf + 8 + hlen, 1, len - 8 - hlen, f);
    cr_assert_eq(fclose(f), 0);
    free(header);
    free(buf);
}

void tl_write_raw_safetensors(const char *path, const char *header, size_t data_len,
                              uint64_t len_override)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    uint8_t len8[8];
    put_u64le(len8, len_override ? len_override : strlen(header));
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    for (size_t i = 0; i < data_len; i++)
        fputc(0, f);
    cr_assert_eq(fclose(f), 0);
}

/* ------------------------------------------------------------ JSON text */

char *tl_replace(char *s, const char *from, const char *to)
{
    char *at = strstr(s, from);
    cr_assert_not_null(at, "'%s' not found", from);
    size_t a = (size_t)(at - s), fl = strlen(from), tlen = strlen(to), n = strlen(s);
    char *r = malloc(n - fl + tlen + 1);
    memcpy(r, s, a);
    memcpy(r + a, to, tlen);
    memcpy(r + a + tlen, at + fl, n - a - fl + 1);
    free(s);
    return r;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

static const char *skip_string(const char *p) /* p at '"' */
{
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\')
            p++;
    return p + 1;
}

/* End of the JSON value starting at p (after whitespace). */
static const char *skip_value(const char *p)
{
    p = skip_ws(p);
    if (*p == '"')
        return skip_string(p);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        do {
            if (*p == '"') {
                p = skip_string(p);
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (*p == '}' || *p == ']')
                depth--;
            p++;
        } while (depth > 0 && *p);
        return p;
    }
    while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n')
        p++;
    return p;
}

/* Finds member `key` of the object starting at obj ('{'): sets *mstart to
 * the key's quote, *vstart and *vend to the value; returns 0 when absent. */
static int find_member(const char *obj, const char *key, const char **mstart,
                       const char **vstart, const char **vend)
{
    const char *p = skip_ws(obj + 1);
    size_t kl = strlen(key);
    while (*p == '"') {
        const char *ks = p, *ke = skip_string(p);
        p = skip_ws(ke);
        cr_assert_eq(*p, ':');
        const char *vs = skip_ws(p + 1), *ve = skip_value(vs);
        if ((size_t)(ke - ks - 2) == kl && !strncmp(ks + 1, key, kl)) {
            *mstart = ks;
            *vstart = vs;
            *vend = ve;
            return 1;
        }
        p = skip_ws(ve);
        if (*p == ',')
            p = skip_ws(p + 1);
    }
    return 0;
}

/* Resolves "a.b" to the object holding the final key. */
static const char *holder(const char *doc, const char *path, const char **key)
{
    const char *obj = skip_ws(doc);
    const char *dot = strchr(path, '.');
    if (!dot) {
        *key = path;
        return obj;
    }
    char first[128];
    snprintf(first, sizeof first, "%.*s", (int)(dot - path), path);
    const char *ms, *vs, *ve;
    cr_assert(find_member(obj, first, &ms, &vs, &ve), "no member '%s'", first);
    *key = dot + 1;
    return vs;
}

static char *splice(char *doc, const char *from, const char *to, const char *insert)
{
    size_t a = (size_t)(from - doc), n = strlen(doc), il = strlen(insert);
    size_t b = (size_t)(to - doc);
    char *r = malloc(n - (b - a) + il + 1);
    memcpy(r, doc, a);
    memcpy(r + a, insert, il);
    memcpy(r + a + il, doc + b, n - b + 1);
    free(doc);
    return r;
}

char *tl_json_set(char *doc, const char *path, const char *value)
{
    const char *key, *obj = holder(doc, path, &key), *ms, *vs, *ve;
    if (find_member(obj, key, &ms, &vs, &ve))
        return splice(doc, vs, ve, value);
    char *ins = malloc(strlen(key) + strlen(value) + 8);
    sprintf(ins, "\"%s\": %s, ", key, value);
    const char *at = skip_ws(obj + 1);
    if (*at == '}')
        ins[strlen(ins) - 2] = '\0'; /* empty object: no comma */
    char *r = splice(doc, at, at, ins);
    free(ins);
    return r;
}

char *tl_json_del(char *doc, const char *path)
{
    const char *key, *obj = holder(doc, path, &key), *ms, *vs, *ve;
    cr_assert(find_member(obj, key, &ms, &vs, &ve), "no member '%s'", path);
    const char *after = skip_ws(ve);
    if (*after == ',')
        return splice(doc, ms, skip_ws(after + 1), "");
    /* last member: remove the comma before it */
    const char *before = ms;
    while (before > obj && before[-1] != ',' && before[-1] != '{')
        before--;
    if (before > obj && before[-1] == ',')
        before--;
    return splice(doc, before, ve, "");
}

char *tl_json_get(const char *doc, const char *path)
{
    const char *key, *obj = holder(doc, path, &key), *ms, *vs, *ve;
    cr_assert(find_member(obj, key, &ms, &vs, &ve), "no member '%s'", path);
    return strndup(vs, (size_t)(ve - vs));
}
