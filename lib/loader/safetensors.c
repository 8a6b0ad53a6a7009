/* safetensors.c — maps safetensors shards and validates their headers. */
#include "loader/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/status.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[GF_ST_N_DTYPES] = {
    [GF_ST_BOOL] = {"BOOL", 1},       [GF_ST_U8] = {"U8", 1},
    [GF_ST_I8] = {"I8", 1},           [GF_ST_F8_E4M3] = {"F8_E4M3", 1},
    [GF_ST_F8_E5M2] = {"F8_E5M2", 1}, [GF_ST_F8_E8M0] = {"F8_E8M0", 1},
    [GF_ST_I16] = {"I16", 2},         [GF_ST_U16] = {"U16", 2},
    [GF_ST_F16] = {"F16", 2},         [GF_ST_BF16] = {"BF16", 2},
    [GF_ST_I32] = {"I32", 4},         [GF_ST_U32] = {"U32", 4},
    [GF_ST_F32] = {"F32", 4},         [GF_ST_I64] = {"I64", 8},
    [GF_ST_U64] = {"U64", 8},         [GF_ST_F64] = {"F64", 8},
};

const char *gf_st_dtype_name(gf_st_dtype dtype)
{
    return (unsigned)dtype < GF_ST_N_DTYPES ? dtypes[dtype].name : "?";
}

size_t gf_st_dtype_size(gf_st_dtype dtype)
{
    return (unsigned)dtype < GF_ST_N_DTYPES ? dtypes[dtype].size : 0;
}

static int dtype_from_name(const char *s, size_t len, gf_st_dtype *out)
{
    for (int i = 0; i < GF_ST_N_DTYPES; i++)
        if (strlen(dtypes[i].name) == len && memcmp(dtypes[i].name, s, len) == 0) {
            *out = (gf_st_dtype)i;
            return 1;
        }
    return 0;
}

const char *gf_st_file_name(const gf_st_file *f)
{
    if (!f || !f->path)
        return "?";
    const char *slash = strrchr(f->path, '/');
    return slash ? slash + 1 : f->path;
}

/* A JSON integer >= 0 (data offsets, dims).  Floats, negatives and values
 * beyond int64 are refused. */
static int as_count(const gf_json *j, uint64_t *out)
{
    int64_t v;
    if (!gf_json_as_int(j, &v) || v < 0)
        return 0;
    *out = (uint64_t)v;
    return 1;
}

/* For messages: a JSON value's text form is not kept, so describe it. */
static const char *json_kind(const gf_json *j)
{
    if (!j)
        return "nothing";
    switch (j->type) {
    case GF_JSON_NULL: return "null";
    case GF_JSON_BOOL: return "a boolean";
    case GF_JSON_NUMBER:
        if (j->is_integer)
            return j->integer < 0 ? "a negative integer" : "an integer";
        return "a non-integer number";
    case GF_JSON_STRING: return "a string";
    case GF_JSON_ARRAY: return "an array";
    case GF_JSON_OBJECT: return "an object";
    }
    return "?";
}

static gemfa_status parse_entry(const gf_json *e, const char *key, const char *what,
                                uint64_t data_size, gf_st_tensor *t)
{
    if (e->type != GF_JSON_OBJECT)
        return gf_error(GEMFA_ERR_FORMAT, "%s: tensor '%s': expected an object, found %s", what,
                        key, json_kind(e));

    const gf_json *dt = gf_json_get(e, "dtype");
    if (!dt || dt->type != GF_JSON_STRING)
        return gf_error(GEMFA_ERR_FORMAT, "%s: tensor '%s': \"dtype\" should be a string, found %s",
                        what, key, json_kind(dt));
    if (!dtype_from_name(dt->str, dt->len, &t->dtype))
        return gf_error(GEMFA_ERR_FORMAT,
                        "%s: tensor '%s': unknown dtype \"%.40s\" (expected one of BOOL, U8, I8, "
                        "F8_E4M3, F8_E5M2, F8_E8M0, I16, U16, F16, BF16, I32, U32, F32, I64, U64, "
                        "F64)",
                        what, key, dt->str);

    const gf_json *sh = gf_json_get(e, "shape");
    if (!sh || sh->type != GF_JSON_ARRAY)
        return gf_error(GEMFA_ERR_FORMAT, "%s: tensor '%s': \"shape\" should be an array, found %s",
                        what, key, json_kind(sh));
    if (sh->len > GF_ST_MAX_DIMS)
        return gf_error(GEMFA_ERR_FORMAT, "%s: tensor '%s': %zu dimensions, at most %d supported",
                        what, key, sh->len, GF_ST_MAX_DIMS);
    t->n_dims = (int)sh->len;
    uint64_t n = 1;
    for (size_t i = 0; i < sh->len; i++) {
        uint64_t d;
        if (!as_count(sh->items[i], &d))
            return gf_error(GEMFA_ERR_FORMAT,
                            "%s: tensor '%s': shape[%zu] should be an integer >= 0, found %s", what,
                            key, i, json_kind(sh->items[i]));
        if (d && n > UINT64_MAX / d)
            return gf_error(GEMFA_ERR_FORMAT, "%s: tensor '%s': shape overflows 64 bits", what, key);
        n *= d;
        t->shape[i] = (int64_t)d;
    }
    t->n_elements = n;
    size_t es = gf_st_dtype_size(t->dtype);
    if (n > UINT64_MAX / es)
        return gf_error(GEMFA_ERR_FORMAT, "%s: tensor '%s': byte size overflows 64 bits", what, key);

    const gf_json *off = gf_json_get(e, "data_offsets");
    if (!off || off->type != GF_JSON_ARRAY || off->len != 2)
        return gf_error(GEMFA_ERR_FORMAT,
                        "%s: tensor '%s': \"data_offsets\" should be an array [begin, end], found %s",
                        what, key, json_kind(off));
    if (!as_count(off->items[0], &t->begin) || !as_count(off->items[1], &t->end))
        return gf_error(GEMFA_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets should be integers >= 0, found %s and %s",
                        what, key, json_kind(off->items[0]), json_kind(off->items[1]));
    if (t->end < t->begin)
        return gf_error(GEMFA_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] end before begin",
                        what, key, t->begin, t->end);
    if (t->end - t->begin != n * es)
        return gf_error(GEMFA_ERR_FORMAT,
                        "%s: tensor '%s': shape and dtype %s need %" PRIu64
                        " bytes, data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64,
                        what, key, gf_st_dtype_name(t->dtype), n * es, t->begin, t->end,
                        t->end - t->begin);
    if (t->end > data_size)
        return gf_error(GEMFA_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                        "] reach past the end of the data section (%" PRIu64
                        " bytes; file truncated?)",
                        what, key, t->begin, t->end, data_size);
    return GEMFA_OK;
}

static int by_begin(const void *a, const void *b)
{
    const gf_st_tensor *x = *(const gf_st_tensor *const *)a, *y = *(const gf_st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int by_name(const void *a, const void *b)
{
    const gf_st_tensor *x = *(const gf_st_tensor *const *)a, *y = *(const gf_st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

/* Byte ranges must not overlap (empty tensors take no room); names must be
 * unique. */
static gemfa_status check_layout(gf_st_file *f, const char *what)
{
    if (f->n_tensors < 2)
        return GEMFA_OK;
    const gf_st_tensor **order = gf_malloc(gf_mul_size(f->n_tensors, sizeof *order));
    if (!order)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    gemfa_status st = GEMFA_OK;
    for (size_t i = 0; i < f->n_tensors; i++)
        order[i] = &f->tensors[i];

    qsort(order, f->n_tensors, sizeof *order, by_name);
    for (size_t i = 1; i < f->n_tensors && st == GEMFA_OK; i++)
        if (strcmp(order[i - 1]->name, order[i]->name) == 0)
            st = gf_error(GEMFA_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", what,
                          order[i]->name);

    qsort(order, f->n_tensors, sizeof *order, by_begin);
    const gf_st_tensor *prev = NULL;
    for (size_t i = 0; i < f->n_tensors && st == GEMFA_OK; i++) {
        const gf_st_tensor *t = order[i];
        if (t->begin == t->end)
            continue;
        if (prev && t->begin < prev->end)
            st = gf_error(GEMFA_ERR_FORMAT,
                          "%s: tensor '%s' bytes [%" PRIu64 ", %" PRIu64
                          ") overlap tensor '%s' bytes [%" PRIu64 ", %" PRIu64 ")",
                          what, t->name, t->begin, t->end, prev->name, prev->begin, prev->end);
        prev = t;
    }
    gf_free(order);
    return st;
}

gemfa_status gf_st_parse(const uint8_t *buf, size_t size, const char *what, gf_st_file *f)
{
    memset(f, 0, sizeof *f);
    if (size < 8)
        return gf_error(GEMFA_ERR_FORMAT,
                        "%s: file is %zu bytes, too short for the 8-byte header length%s", what,
                        size, size == 0 ? " (empty file)" : "");
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | buf[i];
    if (n == 0)
        return gf_error(GEMFA_ERR_FORMAT, "%s: header length is 0", what);
    if (n > size - 8)
        return gf_error(GEMFA_ERR_FORMAT,
                        "%s: header length %" PRIu64 " reaches past the end of the file (%zu bytes "
                        "after the length field)",
                        what, n, size - 8);
    if (n > GF_ST_MAX_HEADER)
        return gf_error(GEMFA_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the limit of %" PRIu64,
                        what, n, GF_ST_MAX_HEADER);

    gf_json *h = NULL;
    char hwhat[512];
    snprintf(hwhat, sizeof hwhat, "%s: header", what);
    gemfa_status st = gf_json_parse((const char *)buf + 8, (size_t)n, hwhat, &h);
    if (st != GEMFA_OK)
        return st;
    if (h->type != GF_JSON_OBJECT) {
        st = gf_error(GEMFA_ERR_FORMAT, "%s: header should be a JSON object, found %s", what,
                      json_kind(h));
        gf_json_free(h);
        return st;
    }

    f->data = buf + 8 + n;
    f->data_size = size - 8 - n;
    f->tensors = gf_calloc(h->len ? h->len : 1, sizeof *f->tensors);
    if (!f->tensors) {
        gf_json_free(h);
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    }
    for (size_t i = 0; i < h->len && st == GEMFA_OK; i++) {
        const char *key = h->keys[i];
        if (strlen(key) != h->key_lens[i]) {
            st = gf_error(GEMFA_ERR_FORMAT, "%s: a tensor name contains U+0000", what);
            break;
        }
        if (strcmp(key, "__metadata__") == 0) {
            if (h->items[i]->type != GF_JSON_OBJECT) {
                st = gf_error(GEMFA_ERR_FORMAT,
                              "%s: \"__metadata__\" should be an object, found %s", what,
                              json_kind(h->items[i]));
                continue;
            }
            const gf_json *q = gf_json_get(h->items[i], "gemfa.quantization");
            if (q && q->type == GF_JSON_STRING && !f->quantization) {
                f->quantization = gf_strndup(q->str, q->len);
                if (!f->quantization)
                    st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
            }
            continue;
        }
        gf_st_tensor *t = &f->tensors[f->n_tensors];
        st = parse_entry(h->items[i], key, what, f->data_size, t);
        if (st != GEMFA_OK)
            break;
        t->name = gf_strndup(key, h->key_lens[i]);
        if (!t->name) {
            st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
            break;
        }
        t->data = f->data + t->begin;
        t->file = f;
        f->n_tensors++;
    }
    gf_json_free(h);
    if (st == GEMFA_OK)
        st = check_layout(f, what);
    if (st != GEMFA_OK)
        gf_st_file_close(f);
    return st;
}

void gf_st_file_close(gf_st_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_tensors; i++)
        gf_free(f->tensors[i].name);
    gf_free(f->tensors);
    gf_free(f->quantization);
    if (f->map)
        munmap(f->map, f->size);
    gf_free(f->path);
    memset(f, 0, sizeof *f);
}

gemfa_status gf_st_file_open(const char *path, gf_st_file *f)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
    if (fd < 0)
        return gf_error(gf_errno_status(errno), "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return gf_error(GEMFA_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return gf_error(GEMFA_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return gf_error(GEMFA_ERR_IO, "%s: too large to map", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = NULL;
    if (size >= 8) { /* mmap refuses length 0; gf_st_parse reports short files */
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return gf_error(GEMFA_ERR_IO, "%s: cannot map %zu bytes: %s", path, size, strerror(e));
        }
    }
    close(fd); /* the mapping keeps the file */

    static const uint8_t none[1];
    gemfa_status st = gf_st_parse(map ? map : none, size, path, f);
    if (st != GEMFA_OK) {
        if (map)
            munmap(map, size);
        return st;
    }
    f->map = map;
    f->size = size;
    f->path = gf_strndup(path, strlen(path));
    if (!f->path) {
        gf_st_file_close(f);
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    return GEMFA_OK;
}

static uintptr_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (uintptr_t)p : 4096;
}

void gf_st_advise_random(const gf_st_tensor *t)
{
    if (!t->file || !t->file->map || t->end == t->begin)
        return;
    uintptr_t ps = page_size(), a = (uintptr_t)t->data & ~(ps - 1);
    uintptr_t b = (uintptr_t)t->data + (t->end - t->begin);
    madvise((void *)a, b - a, MADV_RANDOM);
}

void gf_st_advise_stream(const gf_st_tensor *t)
{
    if (!t->file || !t->file->map || t->end == t->begin)
        return;
    uintptr_t ps = page_size(), a = (uintptr_t)t->data & ~(ps - 1);
    uintptr_t b = (uintptr_t)t->data + (t->end - t->begin);
    madvise((void *)a, b - a, MADV_HUGEPAGE); /* a hint: failure changes nothing */
}

void gf_st_advise_done(const gf_st_tensor *t)
{
    if (!t->file || !t->file->map)
        return;
    /* only whole pages inside the tensor: neighbours may be in use */
    uintptr_t ps = page_size();
    uintptr_t a = ((uintptr_t)t->data + ps - 1) & ~(ps - 1);
    uintptr_t b = ((uintptr_t)t->data + (t->end - t->begin)) & ~(ps - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

/* ------------------------------------------------------------------------ */

void gf_shard_set_free(gf_shard_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n_files; i++)
        gf_st_file_close(&set->files[i]);
    gf_free(set->files);
    gf_free(set->sorted);
    gf_free(set->index_path);
    gf_free(set);
}

const gf_st_tensor *gf_shard_set_find(const gf_shard_set *set, const char *name)
{
    size_t lo = 0, hi = set ? set->n_tensors : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(set->sorted[mid]->name, name);
        if (c == 0)
            return set->sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

uint64_t gf_shard_set_bytes(const gf_shard_set *set)
{
    uint64_t n = 0;
    for (size_t i = 0; set && i < set->n_files; i++)
        n += set->files[i].size;
    return n;
}

/* Opens dir/name as the next file of the set. */
static gemfa_status add_file(gf_shard_set *set, const char *dir, const char *name)
{
    char *path = gf_path_join(dir, name);
    if (!path)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
    gemfa_status st = gf_st_file_open(path, &set->files[set->n_files]);
    gf_free(path);
    if (st == GEMFA_OK)
        set->n_files++;
    return st;
}

/* A shard name from the index must be a plain file name in the directory. */
static int plain_file_name(const char *s, size_t len)
{
    return len > 0 && strlen(s) == len && !strchr(s, '/') && strcmp(s, ".") != 0 &&
           strcmp(s, "..") != 0;
}

static gemfa_status open_indexed(gf_shard_set *set, const char *dir, const char *index_path,
                                 gf_json **index_out)
{
    char *text = NULL;
    size_t len = 0;
    gemfa_status st = gf_read_file(index_path, (size_t)64 << 20, &text, &len);
    if (st != GEMFA_OK)
        return st;
    gf_json *idx = NULL;
    st = gf_json_parse(text, len, index_path, &idx);
    gf_free(text);
    if (st != GEMFA_OK)
        return st;

    const gf_json *wm = gf_json_get(idx, "weight_map");
    if (!wm || wm->type != GF_JSON_OBJECT || wm->len == 0) {
        st = gf_error(GEMFA_ERR_FORMAT, "%s: \"weight_map\" should be a non-empty object, found %s",
                      index_path, json_kind(wm));
        goto done;
    }
    /* Distinct shard names, in order of first appearance. */
    const char **names = gf_calloc(wm->len, sizeof *names);
    set->files = gf_calloc(wm->len, sizeof *set->files);
    if (!names || !set->files) {
        gf_free(names);
        st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", index_path);
        goto done;
    }
    size_t n_names = 0;
    for (size_t i = 0; i < wm->len && st == GEMFA_OK; i++) {
        const gf_json *v = wm->items[i];
        if (v->type != GF_JSON_STRING || !plain_file_name(v->str, v->len)) {
            st = gf_error(GEMFA_ERR_FORMAT,
                          "%s: weight_map[\"%s\"] should name a file in the directory, found %s%s%.80s%s",
                          index_path, wm->keys[i], json_kind(v), v->type == GF_JSON_STRING ? " \"" : "",
                          v->type == GF_JSON_STRING ? v->str : "", v->type == GF_JSON_STRING ? "\"" : "");
            break;
        }
        size_t k = 0;
        while (k < n_names && strcmp(names[k], v->str) != 0)
            k++;
        if (k == n_names)
            names[n_names++] = v->str;
    }
    for (size_t k = 0; k < n_names && st == GEMFA_OK; k++) {
        st = add_file(set, dir, names[k]);
        if (st != GEMFA_OK)
            gf_error_prefix(st, "%s names shard '%s'", index_path, names[k]);
    }
    gf_free(names);
done:
    if (st == GEMFA_OK)
        *index_out = idx;
    else
        gf_json_free(idx);
    return st;
}

/* Every tensor the index lists must be in the shard it names. */
static gemfa_status check_index(const gf_shard_set *set, const gf_json *idx)
{
    const gf_json *wm = gf_json_get(idx, "weight_map");
    for (size_t i = 0; i < wm->len; i++) {
        const gf_st_tensor *t = gf_shard_set_find(set, wm->keys[i]);
        if (!t || strcmp(gf_st_file_name(t->file), wm->items[i]->str) != 0)
            return gf_error(GEMFA_ERR_FORMAT,
                            "%s: tensor '%s' is listed in shard '%s', which does not contain it",
                            set->index_path, wm->keys[i], wm->items[i]->str);
    }
    return GEMFA_OK;
}

static gemfa_status build_lookup(gf_shard_set *set)
{
    size_t n = 0;
    for (size_t k = 0; k < set->n_files; k++)
        n += set->files[k].n_tensors;
    set->sorted = gf_malloc(gf_mul_size(n ? n : 1, sizeof *set->sorted));
    if (!set->sorted)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t k = 0; k < set->n_files; k++)
        for (size_t t = 0; t < set->files[k].n_tensors; t++)
            set->sorted[set->n_tensors++] = &set->files[k].tensors[t];
    qsort(set->sorted, n, sizeof *set->sorted, by_name);
    for (size_t i = 1; i < n; i++)
        if (strcmp(set->sorted[i - 1]->name, set->sorted[i]->name) == 0)
            return gf_error(GEMFA_ERR_FORMAT, "tensor '%s' is stored twice: in %s and in %s",
                            set->sorted[i]->name, set->sorted[i - 1]->file->path,
                            set->sorted[i]->file->path);
    return GEMFA_OK;
}

gemfa_status gf_shard_set_open(const char *dir, gf_shard_set **out)
{
    gf_shard_set *set = gf_calloc(1, sizeof *set);
    char *index_path = gf_path_join(dir, "model.safetensors.index.json");
    char *single_path = gf_path_join(dir, "model.safetensors");
    gemfa_status st = GEMFA_OK;
    gf_json *idx = NULL;
    if (!set || !index_path || !single_path) {
        st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    if (access(index_path, F_OK) == 0) {
        set->index_path = index_path;
        index_path = NULL;
        st = open_indexed(set, dir, set->index_path, &idx);
    } else if (access(single_path, F_OK) == 0) {
        set->files = gf_calloc(1, sizeof *set->files);
        if (!set->files)
            st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
        else
            st = add_file(set, dir, "model.safetensors");
    } else {
        st = gf_error(GEMFA_ERR_NOT_FOUND,
                      "%s: no weights: neither model.safetensors.index.json nor model.safetensors "
                      "is there",
                      dir);
    }
    if (st == GEMFA_OK)
        st = build_lookup(set);
    if (st == GEMFA_OK && idx)
        st = check_index(set, idx);
done:
    gf_json_free(idx);
    gf_free(index_path);
    gf_free(single_path);
    if (st != GEMFA_OK) {
        gf_shard_set_free(set);
        return st;
    }
    *out = set;
    return GEMFA_OK;
}
