#define _GNU_SOURCE /* memmem */
/* components.c — the parts of tokenizer.json around the BPE model: the
 * normalizer, the pre-tokenizer, the post-processor and the decoder.
 * libgemfa implements what Gemma's tokenizer uses (and close relatives);
 * anything else is GEMFA_ERR_UNSUPPORTED rather than an approximation:
 *   normalizer      null | Replace(String) | Sequence of those
 *   pre_tokenizer   null | Split(String, MergedWithPrevious, invert false)
 *   post_processor  null | TemplateProcessing (its "single" template)
 *   decoder         null-free Sequence of Replace(String)..., ByteFallback, Fuse
 *                   (each optional, in that order), or one of them alone */
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"
#include "text/tokenizer.h"

#define WHAT "tokenizer.json"

static const char *type_of(const gf_json *j)
{
    const gf_json *t = gf_json_get(j, "type");
    return t && t->type == GF_JSON_STRING ? t->str : NULL;
}

static int is_null(const gf_json *j) { return !j || j->type == GF_JSON_NULL; }

static void replace_free(gf_replace *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        gf_free(r[i].pattern);
        gf_free(r[i].content);
    }
    gf_free(r);
}

/* Reads {"type": "Replace", "pattern": {"String": s}, "content": c}. */
static gemfa_status read_replace(const gf_json *j, const char *part, gf_replace *out)
{
    const gf_json *pat = gf_json_get(j, "pattern");
    const gf_json *s = gf_json_get(pat, "String");
    const gf_json *c = gf_json_get(j, "content");
    if (pat && gf_json_get(pat, "Regex"))
        return gf_error(GEMFA_ERR_UNSUPPORTED, WHAT ": %s: Replace with a Regex pattern is not "
                        "supported", part);
    if (!s || s->type != GF_JSON_STRING || !c || c->type != GF_JSON_STRING)
        return gf_error(GEMFA_ERR_FORMAT, WHAT ": %s: Replace needs pattern.String and content "
                        "strings", part);
    if (s->len == 0)
        return gf_error(GEMFA_ERR_UNSUPPORTED, WHAT ": %s: Replace with an empty pattern is not "
                        "supported", part);
    out->pattern = gf_strndup(s->str, s->len);
    out->content = gf_strndup(c->str, c->len);
    out->pattern_len = s->len;
    out->content_len = c->len;
    if (!out->pattern || !out->content) {
        gf_free(out->pattern);
        gf_free(out->content);
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, WHAT ": out of memory");
    }
    return GEMFA_OK;
}

/* Appends Replace steps from `list` (n items) to *steps. */
static gemfa_status read_replaces(const gf_json *const *list, size_t n, const char *part,
                                  gf_replace **steps, size_t *n_steps)
{
    gf_replace *r = gf_calloc(n ? n : 1, sizeof *r);
    if (!r)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, WHAT ": out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *type = type_of(list[i]);
        gemfa_status st;
        if (!type)
            st = gf_error(GEMFA_ERR_FORMAT, WHAT ": %s: step %zu has no type", part, i);
        else if (strcmp(type, "Replace") != 0)
            st = gf_error(GEMFA_ERR_UNSUPPORTED, WHAT ": %s type '%s' is not supported (only "
                          "Replace)", part, type);
        else
            st = read_replace(list[i], part, &r[i]);
        if (st != GEMFA_OK) {
            replace_free(r, i);
            return st;
        }
    }
    *steps = r;
    *n_steps = n;
    return GEMFA_OK;
}

gemfa_status gf_pipeline_normalizer(gf_pipeline *p, const gf_json *j)
{
    if (is_null(j))
        return GEMFA_OK;
    const char *type = type_of(j);
    if (type && strcmp(type, "Sequence") == 0) {
        const gf_json *list = gf_json_get(j, "normalizers");
        if (!list || list->type != GF_JSON_ARRAY)
            return gf_error(GEMFA_ERR_FORMAT, WHAT ": normalizer: Sequence without normalizers");
        return read_replaces((const gf_json *const *)list->items, list->len, "normalizer",
                             &p->norm, &p->n_norm);
    }
    return read_replaces(&j, 1, "normalizer", &p->norm, &p->n_norm);
}

gemfa_status gf_pipeline_pre_tokenizer(gf_pipeline *p, const gf_json *j)
{
    if (is_null(j))
        return GEMFA_OK;
    const char *type = type_of(j);
    if (!type || strcmp(type, "Split") != 0)
        return gf_error(GEMFA_ERR_UNSUPPORTED, WHAT ": pre_tokenizer type '%s' is not supported "
                        "(only Split)", type ? type : "?");
    const gf_json *s = gf_json_get(gf_json_get(j, "pattern"), "String");
    const gf_json *behavior = gf_json_get(j, "behavior");
    const gf_json *invert = gf_json_get(j, "invert");
    int inv = 0;
    if (!s || s->type != GF_JSON_STRING || s->len == 0)
        return gf_error(GEMFA_ERR_UNSUPPORTED, WHAT ": pre_tokenizer: only Split with a "
                        "non-empty String pattern is supported");
    if (!behavior || behavior->type != GF_JSON_STRING ||
        strcmp(behavior->str, "MergedWithPrevious") != 0 ||
        (invert && !gf_json_as_bool(invert, &inv)) || inv)
        return gf_error(GEMFA_ERR_UNSUPPORTED, WHAT ": pre_tokenizer: only Split with behavior "
                        "MergedWithPrevious and invert false is supported");
    p->split = gf_strndup(s->str, s->len);
    if (!p->split)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, WHAT ": out of memory");
    p->split_len = s->len;
    return GEMFA_OK;
}

/* Appends the ids of special_tokens[name].ids to *ids. */
static gemfa_status template_ids(const gf_json *special, const gf_json *name, int32_t n_ids,
                                 int32_t **ids, size_t *n)
{
    if (!name || name->type != GF_JSON_STRING)
        return gf_error(GEMFA_ERR_FORMAT, WHAT ": post_processor: SpecialToken without an id");
    const gf_json *entry = NULL;
    if (special && special->type == GF_JSON_OBJECT)
        for (size_t i = 0; i < special->len; i++)
            if (special->key_lens[i] == name->len &&
                memcmp(special->keys[i], name->str, name->len) == 0)
                entry = special->items[i];
    const gf_json *list = gf_json_get(entry, "ids");
    if (!list || list->type != GF_JSON_ARRAY)
        return gf_error(GEMFA_ERR_FORMAT, WHAT ": post_processor: special token '%s' has no "
                        "ids", name->str);
    int32_t *grown = gf_realloc(*ids, gf_mul_size(*n + list->len + 1, sizeof *grown));
    if (!grown)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, WHAT ": out of memory");
    *ids = grown;
    for (size_t i = 0; i < list->len; i++) {
        int64_t v;
        if (!gf_json_as_int(list->items[i], &v) || v < 0 || v >= n_ids)
            return gf_error(GEMFA_ERR_FORMAT, WHAT ": post_processor: special token '%s' has an "
                            "id outside the vocabulary", name->str);
        grown[(*n)++] = (int32_t)v;
    }
    return GEMFA_OK;
}

gemfa_status gf_pipeline_post_processor(gf_pipeline *p, const gf_json *j, int32_t n_ids)
{
    if (is_null(j))
        return GEMFA_OK;
    const char *type = type_of(j);
    if (!type || strcmp(type, "TemplateProcessing") != 0)
        return gf_error(GEMFA_ERR_UNSUPPORTED, WHAT ": post_processor type '%s' is not "
                        "supported (only TemplateProcessing)", type ? type : "?");
    const gf_json *single = gf_json_get(j, "single");
    const gf_json *special = gf_json_get(j, "special_tokens");
    if (!single || single->type != GF_JSON_ARRAY)
        return gf_error(GEMFA_ERR_FORMAT, WHAT ": post_processor: no single template");
    int seen_sequence = 0;
    for (size_t i = 0; i < single->len; i++) {
        const gf_json *item = single->items[i];
        const gf_json *tok = gf_json_get(item, "SpecialToken");
        const gf_json *seq = gf_json_get(item, "Sequence");
        gemfa_status st = GEMFA_OK;
        if (tok) {
            if (seen_sequence)
                st = template_ids(special, gf_json_get(tok, "id"), n_ids, &p->suffix_ids,
                                  &p->n_suffix);
            else
                st = template_ids(special, gf_json_get(tok, "id"), n_ids, &p->prefix_ids,
                                  &p->n_prefix);
        } else if (seq) {
            const gf_json *id = gf_json_get(seq, "id");
            if (seen_sequence || !id || id->type != GF_JSON_STRING || strcmp(id->str, "A") != 0)
                st = gf_error(GEMFA_ERR_UNSUPPORTED, WHAT ": post_processor: the single "
                              "template must hold sequence A exactly once");
            seen_sequence = 1;
        } else {
            st = gf_error(GEMFA_ERR_FORMAT, WHAT ": post_processor: template item %zu is "
                          "neither SpecialToken nor Sequence", i);
        }
        if (st != GEMFA_OK)
            return st;
    }
    if (!seen_sequence)
        return gf_error(GEMFA_ERR_UNSUPPORTED, WHAT ": post_processor: the single template "
                        "has no sequence");
    return GEMFA_OK;
}

gemfa_status gf_pipeline_decoder(gf_pipeline *p, const gf_json *j)
{
    if (is_null(j))
        return gf_error(GEMFA_ERR_UNSUPPORTED, WHAT ": a tokenizer without a decoder is not "
                        "supported");
    const gf_json *const *steps = &j;
    size_t n = 1;
    const char *type = type_of(j);
    if (type && strcmp(type, "Sequence") == 0) {
        const gf_json *list = gf_json_get(j, "decoders");
        if (!list || list->type != GF_JSON_ARRAY)
            return gf_error(GEMFA_ERR_FORMAT, WHAT ": decoder: Sequence without decoders");
        steps = (const gf_json *const *)list->items;
        n = list->len;
    }
    /* Replace*, then ByteFallback?, then Fuse? */
    size_t n_replace = 0, i = 0;
    while (i < n && type_of(steps[i]) && strcmp(type_of(steps[i]), "Replace") == 0)
        i++;
    n_replace = i;
    if (i < n && type_of(steps[i]) && strcmp(type_of(steps[i]), "ByteFallback") == 0) {
        p->dec_byte_fallback = 1;
        i++;
    }
    if (i < n && type_of(steps[i]) && strcmp(type_of(steps[i]), "Fuse") == 0)
        i++;
    if (i < n) {
        const char *t = type_of(steps[i]);
        return gf_error(GEMFA_ERR_UNSUPPORTED, WHAT ": decoder step %zu ('%s') is not "
                        "supported: libgemfa implements Replace..., ByteFallback, Fuse in that "
                        "order", i, t ? t : "?");
    }
    return read_replaces(steps, n_replace, "decoder", &p->dec_replace, &p->n_dec_replace);
}

void gf_pipeline_free(gf_pipeline *p)
{
    replace_free(p->norm, p->n_norm);
    replace_free(p->dec_replace, p->n_dec_replace);
    gf_free(p->split);
    gf_free(p->prefix_ids);
    gf_free(p->suffix_ids);
    memset(p, 0, sizeof *p);
}

int gf_replace_apply(const gf_replace *steps, size_t n, const char *s, size_t len,
                     gf_bytes *out)
{
    if (n == 0)
        return gf_bytes_append(out, s, len);
    /* one step at a time; intermediate results go through a scratch buffer */
    gf_bytes cur = {0}, next = {0};
    const char *src = s;
    size_t src_len = len;
    int rc = 0;
    for (size_t k = 0; k < n && rc == 0; k++) {
        const gf_replace *r = &steps[k];
        gf_bytes *dst = (k + 1 == n) ? out : &next;
        if (dst == &next)
            next.len = 0;
        size_t i = 0;
        while (i < src_len && rc == 0) {
            const char *hit = src_len - i >= r->pattern_len
                ? memmem(src + i, src_len - i, r->pattern, r->pattern_len) : NULL;
            size_t stop = hit ? (size_t)(hit - src) : src_len;
            rc = gf_bytes_append(dst, src + i, stop - i);
            if (hit && rc == 0)
                rc = gf_bytes_append(dst, r->content, r->content_len);
            i = hit ? stop + r->pattern_len : src_len;
        }
        if (dst == &next) {
            gf_bytes tmp = cur;
            cur = next;
            next = tmp;
            src = cur.data ? cur.data : "";
            src_len = cur.len;
        }
    }
    gf_bytes_free(&cur);
    gf_bytes_free(&next);
    return rc;
}

int gf_pipeline_normalize(const gf_pipeline *p, const char *s, size_t len, gf_bytes *out)
{
    out->len = 0;
    return gf_replace_apply(p->norm, p->n_norm, s, len, out);
}

size_t gf_pipeline_next_word(const gf_pipeline *p, const char *s, size_t len)
{
    if (!p->split || len < p->split_len)
        return len;
    const char *hit = memmem(s, len, p->split, p->split_len);
    return hit ? (size_t)(hit - s) + p->split_len : len;
}
