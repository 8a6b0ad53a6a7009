/* tokenizer_load.c — reads tokenizer.json into a gf_text.
 *
 * The real Gemma file is 33 MB (262,144 vocab entries, 514,906 merges): a DOM
 * parse alone takes about a second, so the file is read with yajl's callback
 * API in one pass.  The BPE model's vocab and merges go straight into their
 * hash tables (merges are resolved to ids as they arrive once the vocab is
 * complete, else buffered); the small members (added_tokens, normalizer,
 * pre_tokenizer, post_processor, decoder, truncation, padding) are picked by
 * byte range and parsed with gf_json_parse.  Then the per-id tables, the
 * added-token trie and the pipeline are built (tokenizer_build below). */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/status.h"
#include "text/json_pick.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

#define TOKENIZER_MAX_BYTES ((size_t)1 << 30)

enum { PICK_ADDED, PICK_NORMALIZER, PICK_PRE_TOKENIZER, PICK_POST_PROCESSOR, PICK_DECODER,
       PICK_TRUNCATION, PICK_PADDING, PICK_COUNT };
static const char *const picked_keys[PICK_COUNT] = {
    "added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder",
    "truncation", "padding",
};

enum model_key { MK_OTHER, MK_TYPE, MK_DROPOUT, MK_UNK, MK_PREFIX, MK_SUFFIX, MK_FUSE_UNK,
                 MK_BYTE_FALLBACK, MK_IGNORE_MERGES, MK_VOCAB, MK_MERGES };

typedef struct loader {
    gf_text *t;
    const char *path;
    gf_pick pick;
    int depth;          /* open containers */
    int in_model;       /* the current top-level member is "model" */
    int model_seen;
    enum model_key mkey;
    gemfa_status st;    /* first error found by a callback */

    /* model scalars */
    char type[32];
    char *unk;
    size_t unk_len;
    int has_unk;

    size_t arena_cap;
    size_t vocab_cap;
    uint32_t key_off, key_len; /* the vocab key waiting for its id */
    int have_key;
    int vocab_seen, vocab_done;
    int32_t max_id;

    char *part[2]; /* a merge pair being read (copies) */
    size_t part_len[2];
    int n_parts;
    uint32_t n_merges;
    gf_bytes pending; /* merges seen before the vocab ended: len, bytes, len, bytes */
    gf_bytes concat;  /* scratch for a + b */
} loader;

static int fail(loader *L, gemfa_status st)
{
    if (L->st == GEMFA_OK)
        L->st = st;
    return 0;
}

static int shape(loader *L, const char *what)
{
    if (L->type[0] && strcmp(L->type, "BPE") != 0)
        return fail(L, gf_error(GEMFA_ERR_UNSUPPORTED, "%s: model type '%s' is not supported "
                                "(libgemfa implements BPE)", L->path, L->type));
    return fail(L, gf_error(GEMFA_ERR_FORMAT, "%s: model.%s has an unexpected JSON type",
                            L->path, what));
}

/* ---- vocab ---- */

static int arena_add(loader *L, const char *s, size_t len, uint32_t *off)
{
    gf_text *t = L->t;
    if (len > UINT32_MAX - t->arena_len - 1)
        return fail(L, gf_error(GEMFA_ERR_FORMAT, "%s: more than 4 GiB of token text", L->path));
    if (t->arena_len + len + 1 > L->arena_cap) {
        size_t cap = L->arena_cap ? L->arena_cap * 2 : (size_t)1 << 20;
        while (cap < t->arena_len + len + 1)
            cap *= 2;
        char *p = gf_realloc(t->arena, cap);
        if (!p)
            return fail(L, gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", L->path));
        t->arena = p;
        L->arena_cap = cap;
    }
    memcpy(t->arena + t->arena_len, s, len);
    t->arena[t->arena_len + len] = '\0';
    *off = (uint32_t)t->arena_len;
    t->arena_len += len + 1;
    return 1;
}

static int check_id(loader *L, long long v, const char *what)
{
    if (v < 0 || v >= GF_TEXT_MAX_IDS)
        return fail(L, gf_error(GEMFA_ERR_FORMAT, "%s: %s id %lld is outside [0, %d)", L->path,
                                what, v, GF_TEXT_MAX_IDS));
    return 1;
}

static int vocab_entry(loader *L, long long id)
{
    gf_text *t = L->t;
    if (!L->have_key)
        return shape(L, "vocab");
    L->have_key = 0;
    if (!check_id(L, id, "vocab"))
        return 0;
    if (gf_strmap_get(&t->vocab_map, t->arena, t->vocab, t->arena + L->key_off, L->key_len) >= 0)
        return fail(L, gf_error(GEMFA_ERR_FORMAT, "%s: vocab entry \"%s\" appears twice",
                                L->path, t->arena + L->key_off));
    if (t->n_vocab == L->vocab_cap) {
        size_t cap = L->vocab_cap ? L->vocab_cap * 2 : 4096;
        gf_vocab_entry *v = gf_realloc(t->vocab, gf_mul_size(cap, sizeof *v));
        if (!v)
            return fail(L, gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", L->path));
        t->vocab = v;
        L->vocab_cap = cap;
    }
    t->vocab[t->n_vocab] = (gf_vocab_entry){L->key_off, L->key_len, (int32_t)id};
    if (gf_strmap_put(&t->vocab_map, t->vocab, t->arena, t->n_vocab) != 0)
        return fail(L, gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", L->path));
    t->n_vocab++;
    if (id > L->max_id)
        L->max_id = (int32_t)id;
    return 1;
}

/* ---- merges ---- */

static int resolve_merge(loader *L, const char *a, size_t alen, const char *b, size_t blen,
                         uint32_t rank)
{
    gf_text *t = L->t;
    L->concat.len = 0;
    if (gf_bytes_append(&L->concat, a, alen) != 0 || gf_bytes_append(&L->concat, b, blen) != 0)
        return fail(L, gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", L->path));
    int32_t ia = gf_vocab_id(t, a, alen), ib = gf_vocab_id(t, b, blen);
    int32_t ic = gf_vocab_id(t, L->concat.data, L->concat.len);
    if (ia < 0 || ib < 0 || ic < 0)
        return fail(L, gf_error(GEMFA_ERR_FORMAT, "%s: merge %u (\"%.*s\" + \"%.*s\"): \"%.*s\" "
                                "is not in the vocab", L->path, rank, (int)alen, a, (int)blen, b,
                                ia < 0 ? (int)alen : ib < 0 ? (int)blen : (int)L->concat.len,
                                ia < 0 ? a : ib < 0 ? b : L->concat.data));
    if (gf_merges_put(&t->bpe, ia, ib, rank, ic) != 0)
        return fail(L, gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", L->path));
    return 1;
}

static int add_merge(loader *L, const char *a, size_t alen, const char *b, size_t blen)
{
    if (L->n_merges == UINT32_MAX)
        return fail(L, gf_error(GEMFA_ERR_FORMAT, "%s: too many merges", L->path));
    uint32_t rank = L->n_merges++;
    if (L->vocab_done)
        return resolve_merge(L, a, alen, b, blen, rank);
    uint32_t la = (uint32_t)alen, lb = (uint32_t)blen;
    if (gf_bytes_append(&L->pending, &la, sizeof la) || gf_bytes_append(&L->pending, a, alen) ||
        gf_bytes_append(&L->pending, &lb, sizeof lb) || gf_bytes_append(&L->pending, b, blen))
        return fail(L, gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", L->path));
    return 1;
}

static int resolve_pending(loader *L)
{
    const char *p = L->pending.data;
    size_t left = L->pending.len;
    for (uint32_t rank = 0; left; rank++) {
        uint32_t la, lb;
        memcpy(&la, p, sizeof la);
        const char *a = p + sizeof la;
        memcpy(&lb, a + la, sizeof lb);
        const char *b = a + la + sizeof lb;
        if (!resolve_merge(L, a, la, b, lb, rank))
            return 0;
        size_t used = 2 * sizeof la + la + lb;
        p += used;
        left -= used;
    }
    return 1;
}

/* "a b" (the older merges format): exactly one space, as HF requires. */
static int merge_string(loader *L, const char *s, size_t len)
{
    const char *sp = memchr(s, ' ', len);
    if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp - s) - 1))
        return fail(L, gf_error(GEMFA_ERR_FORMAT, "%s: merge %u \"%.*s\" is not two tokens "
                                "separated by one space", L->path, L->n_merges, (int)len, s));
    return add_merge(L, s, (size_t)(sp - s), sp + 1, len - (size_t)(sp - s) - 1);
}

/* ---- callbacks ---- */

/* A scalar value: where is it? */
static int scalar(loader *L, int type, const char *s, size_t len, long long ival, int bval)
{
    enum { S_NULL, S_BOOL, S_INT, S_DOUBLE, S_STRING };
    if (L->depth == 0)
        return fail(L, gf_error(GEMFA_ERR_FORMAT, "%s: the document is not a JSON object",
                                L->path));
    if (L->depth == 1) {
        gf_pick_value_end(&L->pick);
        if (L->in_model)
            return fail(L, gf_error(GEMFA_ERR_FORMAT, "%s: \"model\" is not an object", L->path));
        return 1;
    }
    if (!L->in_model)
        return 1;
    if (L->depth == 2) {
        switch (L->mkey) {
        case MK_TYPE:
            if (type != S_STRING)
                return shape(L, "type");
            snprintf(L->type, sizeof L->type, "%.*s", (int)(len < 31 ? len : 31), s);
            if (strcmp(L->type, "BPE") != 0)
                return shape(L, "type");
            return 1;
        case MK_DROPOUT:
            if (type == S_NULL || (type == S_INT && ival == 0))
                return 1;
            return fail(L, gf_error(GEMFA_ERR_UNSUPPORTED, "%s: BPE dropout is not supported",
                                    L->path));
        case MK_UNK:
            if (type == S_NULL) {
                L->has_unk = 0;
                return 1;
            }
            if (type != S_STRING)
                return shape(L, "unk_token");
            gf_free(L->unk);
            L->unk = gf_strndup(s, len);
            L->unk_len = len;
            L->has_unk = 1;
            return L->unk ? 1 : fail(L, gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory"));
        case MK_PREFIX:
        case MK_SUFFIX:
            if (type == S_NULL || (type == S_STRING && len == 0))
                return 1;
            return fail(L, gf_error(GEMFA_ERR_UNSUPPORTED, "%s: BPE %s is not supported",
                                    L->path, L->mkey == MK_PREFIX ? "continuing_subword_prefix"
                                                                  : "end_of_word_suffix"));
        case MK_FUSE_UNK:
        case MK_BYTE_FALLBACK:
        case MK_IGNORE_MERGES:
            if (type != S_BOOL)
                return shape(L, "fuse_unk/byte_fallback/ignore_merges");
            if (L->mkey == MK_FUSE_UNK)
                L->t->bpe.fuse_unk = bval;
            else if (L->mkey == MK_BYTE_FALLBACK)
                L->t->bpe.byte_fallback = bval;
            else
                L->t->bpe.ignore_merges = bval;
            return 1;
        case MK_VOCAB:
            return shape(L, "vocab");
        case MK_MERGES:
            return shape(L, "merges");
        case MK_OTHER:
            return 1;
        }
        return 1;
    }
    if (L->depth == 3 && L->mkey == MK_VOCAB) {
        if (type != S_INT)
            return shape(L, "vocab");
        return vocab_entry(L, ival);
    }
    if (L->depth == 3 && L->mkey == MK_MERGES) {
        if (type != S_STRING)
            return shape(L, "merges");
        return merge_string(L, s, len);
    }
    if (L->depth == 4 && L->mkey == MK_MERGES) {
        if (type != S_STRING || L->n_parts >= 2)
            return shape(L, "merges");
        char *copy = gf_strndup(s, len);
        if (!copy)
            return fail(L, gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", L->path));
        L->part[L->n_parts] = copy;
        L->part_len[L->n_parts++] = len;
        return 1;
    }
    return 1;
}

static int on_null(void *ctx) { return scalar(ctx, 0, NULL, 0, 0, 0); }
static int on_bool(void *ctx, int v) { return scalar(ctx, 1, NULL, 0, 0, v); }
static int on_integer(void *ctx, long long v) { return scalar(ctx, 2, NULL, 0, v, 0); }
static int on_double(void *ctx, double v) { (void)v; return scalar(ctx, 3, NULL, 0, 0, 0); }
static int on_string(void *ctx, const unsigned char *s, size_t len)
{
    return scalar(ctx, 4, (const char *)s, len, 0, 0);
}

static int open_container(loader *L, int is_map)
{
    L->depth++;
    if (L->depth == 1 && !is_map)
        return fail(L, gf_error(GEMFA_ERR_FORMAT, "%s: the document is not a JSON object",
                                L->path));
    if (!L->in_model)
        return 1;
    if (L->depth == 2) {
        if (!is_map)
            return fail(L, gf_error(GEMFA_ERR_FORMAT, "%s: \"model\" is not an object", L->path));
        L->model_seen = 1;
    } else if (L->depth == 3) {
        if (L->mkey == MK_VOCAB) {
            if (!is_map)
                return shape(L, "vocab");
            L->vocab_seen = 1;
        } else if (L->mkey == MK_MERGES && is_map) {
            return shape(L, "merges");
        }
    } else if (L->depth == 4) {
        if (L->mkey == MK_VOCAB)
            return shape(L, "vocab");
        if (L->mkey == MK_MERGES) {
            if (is_map)
                return shape(L, "merges");
            L->n_parts = 0;
        }
    } else if (L->depth == 5 && L->mkey == MK_MERGES) {
        return shape(L, "merges");
    }
    return 1;
}

static int on_start_map(void *ctx) { return open_container(ctx, 1); }
static int on_start_array(void *ctx) { return open_container(ctx, 0); }

static int on_end(void *ctx)
{
    loader *L = ctx;
    L->depth--;
    if (L->depth == 1) {
        gf_pick_value_end(&L->pick);
        return 1;
    }
    if (!L->in_model)
        return 1;
    if (L->depth == 2 && L->mkey == MK_VOCAB) {
        L->vocab_done = 1;
    } else if (L->depth == 3 && L->mkey == MK_MERGES) {
        int ok = L->n_parts == 2 ? add_merge(L, L->part[0], L->part_len[0], L->part[1],
                                             L->part_len[1])
                                 : shape(L, "merges");
        for (int i = 0; i < L->n_parts; i++)
            gf_free(L->part[i]);
        L->n_parts = 0;
        return ok;
    }
    return 1;
}

static int on_map_key(void *ctx, const unsigned char *key, size_t len)
{
    loader *L = ctx;
    const char *k = (const char *)key;
    if (L->depth == 1) {
        gf_pick_key(&L->pick, key, len);
        L->in_model = len == 5 && memcmp(k, "model", 5) == 0;
        if (L->in_model && L->model_seen)
            return fail(L, gf_error(GEMFA_ERR_FORMAT, "%s: \"model\" appears twice", L->path));
        return 1;
    }
    if (!L->in_model)
        return 1;
    if (L->depth == 2) {
        static const struct { const char *name; enum model_key key; } keys[] = {
            {"type", MK_TYPE}, {"dropout", MK_DROPOUT}, {"unk_token", MK_UNK},
            {"continuing_subword_prefix", MK_PREFIX}, {"end_of_word_suffix", MK_SUFFIX},
            {"fuse_unk", MK_FUSE_UNK}, {"byte_fallback", MK_BYTE_FALLBACK},
            {"ignore_merges", MK_IGNORE_MERGES}, {"vocab", MK_VOCAB}, {"merges", MK_MERGES},
        };
        L->mkey = MK_OTHER;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (strlen(keys[i].name) == len && memcmp(keys[i].name, k, len) == 0)
                L->mkey = keys[i].key;
        if ((L->mkey == MK_VOCAB && L->vocab_seen) ||
            (L->mkey == MK_MERGES && L->n_merges))
            return fail(L, gf_error(GEMFA_ERR_FORMAT, "%s: model.%.*s appears twice", L->path,
                                    (int)len, k));
        return 1;
    }
    if (L->depth == 3 && L->mkey == MK_VOCAB) {
        if (!arena_add(L, k, len, &L->key_off))
            return 0;
        L->key_len = (uint32_t)len;
        L->have_key = 1;
    }
    return 1;
}

static const yajl_callbacks load_callbacks = {
    on_null, on_bool, on_integer, on_double, NULL, on_string,
    on_start_map, on_map_key, on_end, on_start_array, on_end,
};

/* ---- building the tables ---- */

static gemfa_status read_added(gf_text *t, const gf_json *list, const char *path,
                               int32_t *max_id)
{
    if (!list || list->type == GF_JSON_NULL)
        return GEMFA_OK;
    if (list->type != GF_JSON_ARRAY)
        return gf_error(GEMFA_ERR_FORMAT, "%s: added_tokens is not a list", path);
    t->added_ids = gf_malloc(gf_mul_size(list->len ? list->len : 1, sizeof *t->added_ids));
    if (!t->added_ids)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    for (size_t i = 0; i < list->len; i++) {
        const gf_json *e = list->items[i];
        const gf_json *content = gf_json_get(e, "content");
        int64_t id;
        if (!gf_json_as_int(gf_json_get(e, "id"), &id) || !content ||
            content->type != GF_JSON_STRING)
            return gf_error(GEMFA_ERR_FORMAT, "%s: added_tokens[%zu] needs an integer id and a "
                            "content string", path, i);
        if (id < 0 || id >= GF_TEXT_MAX_IDS)
            return gf_error(GEMFA_ERR_FORMAT, "%s: added_tokens[%zu]: id %lld is outside "
                            "[0, %d)", path, i, (long long)id, GF_TEXT_MAX_IDS);
        if (content->len == 0)
            return gf_error(GEMFA_ERR_FORMAT, "%s: added_tokens[%zu] has empty content", path, i);
        static const char *const unsupported[] = {"lstrip", "rstrip", "single_word",
                                                  "normalized"};
        for (size_t k = 0; k < 4; k++) {
            int on = 0;
            const gf_json *f = gf_json_get(e, unsupported[k]);
            if (f && !gf_json_as_bool(f, &on))
                return gf_error(GEMFA_ERR_FORMAT, "%s: added_tokens[%zu].%s is not a boolean",
                                path, i, unsupported[k]);
            if (on)
                return gf_error(GEMFA_ERR_UNSUPPORTED, "%s: added token \"%s\" has %s=true, "
                                "which libgemfa does not implement", path, content->str,
                                unsupported[k]);
        }
        int special = 0;
        const gf_json *sp = gf_json_get(e, "special");
        if (sp && !gf_json_as_bool(sp, &special))
            return gf_error(GEMFA_ERR_FORMAT, "%s: added_tokens[%zu].special is not a boolean",
                            path, i);
        int rc = gf_trie_add(&t->trie, content->str, content->len, (int32_t)id);
        if (rc == -1)
            return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        if (rc == -2)
            return gf_error(GEMFA_ERR_FORMAT, "%s: added token \"%s\" appears twice", path,
                            content->str);
        t->added_ids[t->n_added++] = (int32_t)id;
        if (id > *max_id)
            *max_id = (int32_t)id;
        (void)special; /* the per-id flags are set once n_ids is known */
    }
    return GEMFA_OK;
}

/* Byte a ByteFallback decoder reads from a token string (HF: six bytes
 * "<0x" + two hex digits parsed by u8::from_str_radix + ">"), or -1. */
static int fallback_byte(const char *s, size_t len)
{
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : (i == 3 && c == '+') ? 0 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static gemfa_status build_id_tables(gf_text *t, const gf_json *added, const char *path)
{
    size_t n = (size_t)t->n_ids;
    t->piece = gf_malloc(gf_mul_size(n, sizeof *t->piece));
    t->flags = gf_calloc(n, 1);
    t->byte_of = gf_malloc(gf_mul_size(n, sizeof *t->byte_of));
    if (!t->piece || !t->flags || !t->byte_of)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        t->piece[i].off = 0;
        t->piece[i].len = GF_NO_PIECE;
    }
    for (size_t i = 0; i < t->n_vocab; i++) {
        gf_vocab_entry *e = &t->vocab[i];
        if (t->piece[e->id].len != GF_NO_PIECE)
            return gf_error(GEMFA_ERR_FORMAT, "%s: vocab id %d is used twice (\"%s\" and "
                            "\"%s\")", path, e->id, t->arena + t->piece[e->id].off,
                            t->arena + e->off);
        t->piece[e->id] = (gf_span){e->off, e->len};
    }
    /* added tokens: their content is the piece HF shows for the id; a
     * content that differs from the vocab string goes into the arena */
    size_t extra = 0; /* room for every content: two added tokens may share an id,
                         and the second then compares with the first one's copy */
    for (size_t i = 0; added && i < added->len; i++) {
        const gf_json *content = gf_json_get(added->items[i], "content");
        if (content->len > UINT32_MAX - extra)
            return gf_error(GEMFA_ERR_FORMAT, "%s: more than 4 GiB of token text", path);
        extra += content->len + 1;
    }
    if (extra > UINT32_MAX - t->arena_len)
        return gf_error(GEMFA_ERR_FORMAT, "%s: more than 4 GiB of token text", path);
    if (extra) {
        char *a = gf_realloc(t->arena, t->arena_len + extra);
        if (!a)
            return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        t->arena = a;
    }
    for (size_t i = 0; added && i < added->len; i++) {
        const gf_json *e = added->items[i];
        const gf_json *content = gf_json_get(e, "content");
        int32_t id = t->added_ids[i];
        int special = 0;
        gf_json_as_bool(gf_json_get(e, "special"), &special);
        gf_span *p = &t->piece[id];
        if (p->len == GF_NO_PIECE || p->len != content->len ||
            memcmp(t->arena + p->off, content->str, content->len) != 0) {
            memcpy(t->arena + t->arena_len, content->str, content->len);
            t->arena[t->arena_len + content->len] = '\0';
            *p = (gf_span){(uint32_t)t->arena_len, (uint32_t)content->len};
            t->arena_len += content->len + 1;
        }
        t->flags[id] |= GF_ID_ADDED | (special ? GF_ID_SPECIAL : 0);
    }
    /* the byte each piece stands for, after the decoder's Replace steps */
    gf_bytes scratch = {0};
    for (size_t i = 0; i < n; i++) {
        t->byte_of[i] = -1;
        const gf_span *p = &t->piece[i];
        if (p->len == GF_NO_PIECE)
            continue;
        if (t->pipe.n_dec_replace == 0) {
            t->byte_of[i] = (int16_t)fallback_byte(t->arena + p->off, p->len);
            continue;
        }
        scratch.len = 0;
        if (gf_replace_apply(t->pipe.dec_replace, t->pipe.n_dec_replace, t->arena + p->off,
                             p->len, &scratch) != 0) {
            gf_bytes_free(&scratch);
            return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        }
        t->byte_of[i] = (int16_t)fallback_byte(scratch.data, scratch.len);
    }
    gf_bytes_free(&scratch);
    return GEMFA_OK;
}

static gemfa_status build_bpe_tables(gf_text *t, loader *L)
{
    gf_bpe *b = &t->bpe;
    for (size_t i = 0; i < t->n_vocab; i++) {
        const gf_vocab_entry *e = &t->vocab[i];
        const unsigned char *s = (const unsigned char *)t->arena + e->off;
        size_t bad;
        if (e->len == 0 || gf_utf8_seq_len(s[0]) != e->len || !gf_utf8_valid((const char *)s,
                                                                             e->len, &bad))
            continue; /* not a single character */
        uint32_t cp = gf_utf8_decode(s, e->len);
        int32_t **page = &b->cp_page[cp >> 8];
        if (!*page) {
            *page = gf_malloc(256 * sizeof **page);
            if (!*page)
                return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", L->path);
            for (int k = 0; k < 256; k++)
                (*page)[k] = -1;
        }
        (*page)[cp & 0xFF] = e->id;
    }
    for (int byte = 0; byte < 256; byte++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", byte);
        b->byte_id[byte] = gf_vocab_id(t, name, 6);
    }
    b->unk_id = L->has_unk ? gf_vocab_id(t, L->unk, L->unk_len) : -1;
    return GEMFA_OK;
}

static gemfa_status build(gf_text *t, loader *L)
{
    const char *path = L->path;
    gf_json *parts[PICK_COUNT] = {0};
    gemfa_status st = GEMFA_OK;
    if (!L->model_seen)
        return gf_error(GEMFA_ERR_FORMAT, "%s: no \"model\" object", path);
    if (!L->type[0] && !L->vocab_seen)
        return gf_error(GEMFA_ERR_FORMAT, "%s: model has no type and no vocab", path);
    if (!L->vocab_seen)
        return gf_error(GEMFA_ERR_FORMAT, "%s: model has no vocab", path);
    if (!L->vocab_done)
        L->vocab_done = 1;
    if (L->pending.len && !resolve_pending(L))
        return L->st;

    for (int i = 0; i < PICK_COUNT && st == GEMFA_OK; i++)
        st = gf_pick_tree(&L->pick, (size_t)i, path, &parts[i]);
    int32_t max_id = L->max_id;
    if (st == GEMFA_OK && parts[PICK_TRUNCATION] && parts[PICK_TRUNCATION]->type != GF_JSON_NULL)
        st = gf_error(GEMFA_ERR_UNSUPPORTED, "%s: truncation settings are not supported", path);
    if (st == GEMFA_OK && parts[PICK_PADDING] && parts[PICK_PADDING]->type != GF_JSON_NULL)
        st = gf_error(GEMFA_ERR_UNSUPPORTED, "%s: padding settings are not supported", path);
    if (st == GEMFA_OK)
        st = read_added(t, parts[PICK_ADDED], path, &max_id);
    if (st == GEMFA_OK && max_id < 0)
        st = gf_error(GEMFA_ERR_FORMAT, "%s: the vocabulary is empty", path);
    if (st == GEMFA_OK) {
        t->n_ids = max_id + 1;
        st = gf_pipeline_normalizer(&t->pipe, parts[PICK_NORMALIZER]);
    }
    if (st == GEMFA_OK)
        st = gf_pipeline_pre_tokenizer(&t->pipe, parts[PICK_PRE_TOKENIZER]);
    if (st == GEMFA_OK)
        st = gf_pipeline_post_processor(&t->pipe, parts[PICK_POST_PROCESSOR], t->n_ids);
    if (st == GEMFA_OK)
        st = gf_pipeline_decoder(&t->pipe, parts[PICK_DECODER]);
    if (st == GEMFA_OK)
        st = build_id_tables(t, parts[PICK_ADDED], path);
    if (st == GEMFA_OK)
        st = build_bpe_tables(t, L);
    for (int i = 0; i < PICK_COUNT; i++)
        gf_json_free(parts[i]);
    return st;
}

static gemfa_status parse_tokenizer_json(gf_text *t, const char *path, const char *data,
                                         size_t len)
{
    gemfa_status st = gf_json_check_surrogates(data, len, path);
    if (st != GEMFA_OK)
        return st;
    loader L = {.t = t, .path = path, .max_id = -1};
    gf_pick_init(&L.pick, data, len, picked_keys, PICK_COUNT);
    if (gf_strmap_init(&t->vocab_map, 1024) != 0)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    yajl_handle h = yajl_alloc(&load_callbacks, NULL, &L);
    if (!h)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    L.pick.h = h;
    yajl_status ys = yajl_parse(h, (const unsigned char *)data, len);
    if (ys == yajl_status_ok)
        ys = yajl_complete_parse(h);
    if (L.st != GEMFA_OK) {
        st = L.st;
    } else if (ys != yajl_status_ok) {
        unsigned char *msg = yajl_get_error(h, 0, NULL, 0);
        char clean[200];
        snprintf(clean, sizeof clean, "%s", msg ? (const char *)msg : "parse error");
        for (char *c = clean; *c; c++)
            if (*c == '\n')
                *c = ' ';
        st = gf_error(GEMFA_ERR_FORMAT, "%s: invalid JSON near byte %zu: %s", path,
                      yajl_get_bytes_consumed(h), clean);
        if (msg)
            yajl_free_error(h, msg);
    } else {
        st = build(t, &L);
    }
    yajl_free(h);
    for (int i = 0; i < L.n_parts; i++)
        gf_free(L.part[i]);
    gf_free(L.unk);
    gf_bytes_free(&L.pending);
    gf_bytes_free(&L.concat);
    return st;
}

/* ---- text.h ---- */

gemfa_status gf_text_load(const char *dir, gf_text **out)
{
    if (!dir || !out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gf_text_load: NULL argument");
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "model path too long: %s", dir);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        *out = NULL;
        return GEMFA_OK;
    }
    char *data = NULL;
    size_t len = 0;
    gemfa_status st = gf_read_file(path, TOKENIZER_MAX_BYTES, &data, &len);
    if (st != GEMFA_OK)
        return st;
    gf_text *t = gf_calloc(1, sizeof *t);
    if (!t) {
        gf_free(data);
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    gf_trie_init(&t->trie);
    st = parse_tokenizer_json(t, path, data, len);
    gf_free(data);
    if (st == GEMFA_OK)
        st = gf_chat_info_load(&t->chat, dir);
    if (st != GEMFA_OK) {
        gf_text_free(t);
        return st;
    }
    *out = t;
    return GEMFA_OK;
}

void gf_text_free(gf_text *t)
{
    if (!t)
        return;
    gf_free(t->arena);
    gf_free(t->piece);
    gf_free(t->flags);
    gf_free(t->byte_of);
    gf_free(t->vocab);
    gf_strmap_free(&t->vocab_map);
    gf_free(t->added_ids);
    gf_trie_free(&t->trie);
    gf_bpe_free(&t->bpe);
    gf_pipeline_free(&t->pipe);
    gf_chat_info_free(&t->chat);
    gf_free(t);
}

int64_t gf_text_n_pieces(const gf_text *t) { return t ? t->n_ids : 0; }

int32_t gf_text_find(const gf_text *t, const char *piece, size_t len)
{
    if (!t || (!piece && len))
        return -1;
    /* HF's token_to_id: added tokens first, then the model's vocab */
    int32_t id = gf_trie_find(&t->trie, piece, len);
    return id >= 0 ? id : gf_vocab_id(t, piece, len);
}
