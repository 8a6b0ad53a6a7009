/* test_load.c — reading tokenizer.json: equivalent spellings load to the
 * same tokenizer (merges as "a b" strings, members in another order),
 * components libgemfa does not implement are UNSUPPORTED, broken files are
 * FORMAT with a precise message, and every allocation failure is reported
 * as OUT_OF_MEMORY without leaks (ASan checks that). */
#include <unistd.h>

#include "core/alloc.h"
#include "text_helper.h"

/* ---- writing a gf_json tree back out ---- */

static void write_string(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void write_json(FILE *f, const gf_json *j)
{
    switch (j->type) {
    case GF_JSON_NULL: fputs("null", f); break;
    case GF_JSON_BOOL: fputs(j->boolean ? "true" : "false", f); break;
    case GF_JSON_NUMBER:
        if (j->is_integer)
            fprintf(f, "%lld", (long long)j->integer);
        else
            fprintf(f, "%.17g", j->number);
        break;
    case GF_JSON_STRING: write_string(f, j->str, j->len); break;
    case GF_JSON_ARRAY:
        fputc('[', f);
        for (size_t i = 0; i < j->len; i++) {
            if (i)
                fputc(',', f);
            write_json(f, j->items[i]);
        }
        fputc(']', f);
        break;
    case GF_JSON_OBJECT:
        fputc('{', f);
        for (size_t i = 0; i < j->len; i++) {
            if (i)
                fputc(',', f);
            write_string(f, j->keys[i], j->key_lens[i]);
            fputc(':', f);
            write_json(f, j->items[i]);
        }
        fputc('}', f);
        break;
    }
}

static char tmpdir[64];

static gf_json *tiny_tree(void)
{
    char path[4096], *data;
    size_t len;
    snprintf(path, sizeof path, "%s/tokenizer/tiny/tokenizer.json", tt_data());
    cr_assert_eq(gf_read_file(path, 1 << 24, &data, &len), GEMFA_OK);
    gf_json *j = NULL;
    cr_assert_eq(gf_json_parse(data, len, path, &j), GEMFA_OK);
    gf_free(data);
    return j;
}

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gemfa-load-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
    unlink(path);
    rmdir(tmpdir);
}

static void write_raw(const char *text, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fwrite(text, 1, len, f);
    fclose(f);
}

static void write_tree(const gf_json *j)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    write_json(f, j);
    fclose(f);
}

static gemfa_status try_load(gemfa_model **out)
{
    gemfa_model_options *o = NULL;
    cr_assert_eq(gemfa_model_options_new(&o), GEMFA_OK);
    gemfa_model_options_set_vocab_only(o, 1);
    *out = NULL;
    gemfa_status st = gemfa_model_load(tmpdir, o, out);
    gemfa_model_options_free(o);
    return st;
}

static gf_json *member(gf_json *obj, const char *key)
{
    return (gf_json *)gf_json_get(obj, key);
}

static void set_string(gf_json *j, const char *s)
{
    cr_assert_eq(j->type, GF_JSON_STRING);
    gf_free(j->str);
    j->str = gf_strndup(s, strlen(s));
    j->len = strlen(s);
}

/* Moves member `key` of obj to the front. */
static void move_first(gf_json *obj, const char *key)
{
    for (size_t i = 0; i < obj->len; i++) {
        if (strcmp(obj->keys[i], key) != 0)
            continue;
        gf_json *v = obj->items[i];
        char *k = obj->keys[i];
        size_t kl = obj->key_lens[i];
        memmove(obj->items + 1, obj->items, i * sizeof *obj->items);
        memmove(obj->keys + 1, obj->keys, i * sizeof *obj->keys);
        memmove(obj->key_lens + 1, obj->key_lens, i * sizeof *obj->key_lens);
        obj->items[0] = v;
        obj->keys[0] = k;
        obj->key_lens[0] = kl;
        return;
    }
    cr_assert_fail("no member %s", key);
}

/* Every persian.jsonl text gives the same ids (and decodes alike) in both. */
static void expect_same_tokenizer(const gemfa_model *a, const gemfa_model *b)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/persian.jsonl", tt_data());
    size_t n_recs;
    gf_json **recs = tt_jsonl(path, &n_recs);
    for (size_t r = 0; r < n_recs; r++) {
        const gf_json *text = tt_str(recs[r], "text");
        int32_t ia[4096], ib[4096];
        size_t na, nb;
        cr_assert_eq(gemfa_tokenize(a, text->str, text->len, GEMFA_TOKENIZE_DEFAULT, ia, 4096,
                                    &na), GEMFA_OK);
        cr_assert_eq(gemfa_tokenize(b, text->str, text->len, GEMFA_TOKENIZE_DEFAULT, ib, 4096,
                                    &nb), GEMFA_OK);
        cr_expect(na == nb && memcmp(ia, ib, na * 4) == 0, "%s differs",
                  tt_str(recs[r], "id")->str);
    }
    tt_jsonl_free(recs, n_recs);
}

TestSuite(load, .init = setup, .fini = teardown);

Test(load, equivalent_spellings)
{
    char dir[4096];
    gemfa_model *ref = tt_load(tt_tokenizer_dir(0, dir, sizeof dir)), *m;
    gf_json *j = tiny_tree();
    gf_json *model = member(j, "model");

    /* written back compactly: same tokenizer */
    write_tree(j);
    cr_assert_eq(try_load(&m), GEMFA_OK, "%s", gemfa_last_error());
    expect_same_tokenizer(ref, m);
    gemfa_model_free(m);

    /* merges before vocab, model before added_tokens */
    move_first(model, "merges");
    move_first(j, "model");
    write_tree(j);
    cr_assert_eq(try_load(&m), GEMFA_OK, "%s", gemfa_last_error());
    expect_same_tokenizer(ref, m);
    gemfa_model_free(m);

    /* merges in the older "a b" format */
    gf_json *merges = member(model, "merges");
    for (size_t i = 0; i < merges->len; i++) {
        gf_json *pair = merges->items[i];
        cr_assert(!memchr(pair->items[0]->str, ' ', pair->items[0]->len));
        size_t la = pair->items[0]->len, lb = pair->items[1]->len;
        char *s = gf_malloc(la + lb + 2);
        memcpy(s, pair->items[0]->str, la);
        s[la] = ' ';
        memcpy(s + la + 1, pair->items[1]->str, lb);
        s[la + lb + 1] = '\0';
        gf_json_free(pair);
        gf_json *str = gf_calloc(1, sizeof *str);
        str->type = GF_JSON_STRING;
        str->str = s;
        str->len = la + lb + 1;
        merges->items[i] = str;
    }
    write_tree(j);
    cr_assert_eq(try_load(&m), GEMFA_OK, "%s", gemfa_last_error());
    expect_same_tokenizer(ref, m);
    gemfa_model_free(m);

    gf_json_free(j);
    gemfa_model_free(ref);
}

/* Applies `edit` to a fresh tree, writes it and expects `want` from the load
 * with `words` in the message. */
static void expect_load_error(void (*edit)(gf_json *), gemfa_status want, const char *words)
{
    gf_json *j = tiny_tree();
    edit(j);
    write_tree(j);
    gf_json_free(j);
    gemfa_model *m = (gemfa_model *)1;
    gemfa_status st = try_load(&m);
    cr_expect_eq(st, want, "got %s: %s", gemfa_status_name(st), gemfa_last_error());
    cr_expect(strstr(gemfa_last_error(), words) != NULL, "'%s' does not say '%s'",
              gemfa_last_error(), words);
    cr_expect_null(m, "a failed load sets no model");
}

static void nfkc(gf_json *j) { set_string(member(member(j, "normalizer"), "type"), "NFKC"); }
static void metaspace(gf_json *j) { set_string(member(member(j, "pre_tokenizer"), "type"), "Metaspace"); }
static void unigram(gf_json *j) { set_string(member(member(j, "model"), "type"), "Unigram"); }
static void strip_decoder(gf_json *j)
{
    gf_json *d = member(member(j, "decoder"), "decoders");
    set_string(member(d->items[d->len - 1], "type"), "Strip");
}
static void lstrip(gf_json *j)
{
    gf_json *t = member(j, "added_tokens")->items[3];
    member(t, "lstrip")->boolean = 1;
}
static void dropout(gf_json *j)
{
    gf_json *d = member(member(j, "model"), "dropout");
    d->type = GF_JSON_NUMBER;
    d->number = 0.1;
}
static void truncation(gf_json *j)
{
    gf_json *t = member(j, "truncation");
    t->type = GF_JSON_NUMBER;
    t->is_integer = 1;
    t->integer = 512;
}
static void regex_replace(gf_json *j)
{
    gf_json *pattern = member(member(j, "normalizer"), "pattern");
    gf_free(pattern->keys[0]);
    pattern->keys[0] = gf_strndup("Regex", 5);
    pattern->key_lens[0] = 5;
}
static void unknown_merge(gf_json *j)
{
    set_string(member(member(j, "model"), "merges")->items[5]->items[0], "zzz-not-a-token");
}
static void big_id(gf_json *j)
{
    gf_json *vocab = member(member(j, "model"), "vocab");
    vocab->items[7]->integer = 1 << 24;
    vocab->items[7]->number = 1 << 24;
}
static void twice_id(gf_json *j)
{
    gf_json *vocab = member(member(j, "model"), "vocab");
    vocab->items[7]->integer = 8;
}
static void no_model(gf_json *j) { set_string(member(member(j, "model"), "type"), "BPE"); j->keys[j->len - 1][0] = 'M'; }
static void vocab_list(gf_json *j)
{
    gf_json *vocab = member(member(j, "model"), "vocab");
    vocab->type = GF_JSON_ARRAY;
}

Test(load, unsupported_components)
{
    expect_load_error(nfkc, GEMFA_ERR_UNSUPPORTED, "NFKC");
    expect_load_error(metaspace, GEMFA_ERR_UNSUPPORTED, "Metaspace");
    expect_load_error(unigram, GEMFA_ERR_UNSUPPORTED, "Unigram");
    expect_load_error(strip_decoder, GEMFA_ERR_UNSUPPORTED, "Strip");
    expect_load_error(lstrip, GEMFA_ERR_UNSUPPORTED, "lstrip");
    expect_load_error(dropout, GEMFA_ERR_UNSUPPORTED, "dropout");
    expect_load_error(truncation, GEMFA_ERR_UNSUPPORTED, "truncation");
    expect_load_error(regex_replace, GEMFA_ERR_UNSUPPORTED, "Regex");
}

Test(load, malformed_files)
{
    expect_load_error(unknown_merge, GEMFA_ERR_FORMAT, "merge 5");
    expect_load_error(big_id, GEMFA_ERR_FORMAT, "16777216");
    expect_load_error(twice_id, GEMFA_ERR_FORMAT, "vocab id 8 is used twice");
    expect_load_error(no_model, GEMFA_ERR_FORMAT, "no \"model\"");
    expect_load_error(vocab_list, GEMFA_ERR_FORMAT, "vocab");

    gemfa_model *m;
    static const char truncated[] = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0";
    write_raw(truncated, sizeof truncated - 1);
    cr_expect_eq(try_load(&m), GEMFA_ERR_FORMAT);
    cr_expect(strstr(gemfa_last_error(), "tokenizer.json") != NULL, "%s", gemfa_last_error());
    static const char surrogate[] = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\\ud800\": 0}, "
                                    "\"merges\": []}, \"decoder\": {\"type\": \"Fuse\"}}";
    write_raw(surrogate, sizeof surrogate - 1);
    cr_expect_eq(try_load(&m), GEMFA_ERR_FORMAT);
    cr_expect(strstr(gemfa_last_error(), "surrogate") != NULL, "%s", gemfa_last_error());
    static const char array[] = "[1, 2]";
    write_raw(array, sizeof array - 1);
    cr_expect_eq(try_load(&m), GEMFA_ERR_FORMAT);
    static const char dup[] = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"a\": 1}, "
                              "\"merges\": []}, \"decoder\": {\"type\": \"Fuse\"}}";
    write_raw(dup, sizeof dup - 1);
    cr_expect_eq(try_load(&m), GEMFA_ERR_FORMAT);
    cr_expect(strstr(gemfa_last_error(), "twice") != NULL, "%s", gemfa_last_error());
    /* a minimal tokenizer that is fine */
    static const char minimal[] = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, "
                                  "\"ab\": 2}, \"merges\": [\"a b\"]}, \"decoder\": {\"type\": "
                                  "\"Fuse\"}}";
    write_raw(minimal, sizeof minimal - 1);
    cr_assert_eq(try_load(&m), GEMFA_OK, "%s", gemfa_last_error());
    int32_t ids[8];
    size_t n;
    cr_expect_eq(gemfa_tokenize(m, "abab", 4, GEMFA_TOKENIZE_DEFAULT, ids, 8, &n), GEMFA_OK);
    cr_expect(n == 2 && ids[0] == 2 && ids[1] == 2, "no post-processor: no BOS");
    cr_expect_eq(gemfa_tokenize(m, "abc", 3, 0, ids, 8, &n), GEMFA_ERR_FORMAT,
                 "an unknown character without <unk> or byte fallback");
    gemfa_model_free(m);
}

Test(load, allocation_failures)
{
    char dir[4096];
    tt_tokenizer_dir(0, dir, sizeof dir);
    gemfa_model_options *o = NULL;
    cr_assert_eq(gemfa_model_options_new(&o), GEMFA_OK);
    gemfa_model_options_set_vocab_only(o, 1);
    gf_alloc_fail_after(-1);
    gemfa_model *m = NULL;
    cr_assert_eq(gemfa_model_load(dir, o, &m), GEMFA_OK);
    long total = gf_alloc_fail_after(-1);
    gemfa_model_free(m);
    cr_assert_gt(total, 10);
    int n_oom = 0;
    for (long k = 0; k <= total; k++) {
        m = NULL;
        gf_alloc_fail_after(k);
        gemfa_status st = gemfa_model_load(dir, o, &m);
        gf_alloc_fail_after(-1);
        if (st == GEMFA_OK) {
            gemfa_model_free(m);
            continue;
        }
        n_oom++;
        cr_expect_eq(st, GEMFA_ERR_OUT_OF_MEMORY, "allocation %ld: %s", k, gemfa_last_error());
        cr_expect_null(m);
    }
    cr_expect_geq(n_oom, total / 2);
    gemfa_model_options_free(o);

    /* and in every call that allocates */
    m = tt_load(dir);
    static const char text[] = "سلام <start_of_turn>😀 می‌شود\n\nabc";
    gemfa_message msgs[] = {{"system", "S", 1}, {"user", text, GEMFA_NUL_TERMINATED}};
    int32_t ids[256];
    char buf[1024];
    size_t n_text = 0;
    cr_assert_eq(gemfa_tokenize(m, text, GEMFA_NUL_TERMINATED, 3, ids, 256, &n_text), GEMFA_OK);
    cr_assert_gt(n_text, 10);
    for (int call = 0; call < 5; call++) {
        for (long k = 0;; k++) {
            size_t n = 0;
            gemfa_status st;
            gf_alloc_fail_after(k);
            if (call == 0)
                st = gemfa_tokenize(m, text, GEMFA_NUL_TERMINATED, 3, ids, 256, &n);
            if (call == 0 && st == GEMFA_OK)
                cr_assert_eq(n, n_text);
            else if (call == 1)
                st = gemfa_detokenize(m, ids, n_text, 0, buf, sizeof buf, &n);
            else if (call == 2)
                st = gemfa_apply_chat_template(m, msgs, 2, 1, buf, sizeof buf, &n);
            else if (call == 3)
                st = gemfa_chat_tokenize(m, msgs, 2, 1, GEMFA_CHAT_INJECTION_SAFE, ids, 256, &n);
            else {
                gemfa_detok_stream *s = NULL;
                const char *chunk;
                st = gemfa_detok_stream_new(m, 0, &s);
                for (size_t i = 0; i < n_text && st == GEMFA_OK; i++)
                    st = gemfa_detok_stream_feed(s, ids[i], &chunk, &n);
                gemfa_detok_stream_free(s);
            }
            gf_alloc_fail_after(-1);
            if (st == GEMFA_OK)
                break;
            cr_expect_eq(st, GEMFA_ERR_OUT_OF_MEMORY, "call %d, allocation %ld: %s", call, k,
                         gemfa_last_error());
            cr_assert_lt(k, 10000);
        }
    }
    gemfa_model_free(m);
}
