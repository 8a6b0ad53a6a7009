/* test_constraint.c — the constraint through its public API: hostile
 * inputs, failure atomicity, masks from the cached trie walk against
 * stepping every token separately (random walks over several schemas, on
 * the tiny tokenizer and, when GEMFA_REAL_TOKENIZER is set, on Gemma's
 * 262k-token one), EOG handling, and the sampler never returning a refused
 * token under any setting. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "constrain/constraint.h"
#include "constrain/mask.h"
#include "core/alloc.h"
#include "gemfa.h"
#include "sampling/rng.h"

static gemfa_model *load(const char *dir, int vocab_only)
{
    gemfa_model_options *o = NULL;
    cr_assert_eq(gemfa_model_options_new(&o), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_set_vocab_only(o, vocab_only), GEMFA_OK);
    gemfa_model *m = NULL;
    gemfa_status st = gemfa_model_load(dir, o, &m);
    gemfa_model_options_free(o);
    cr_assert_eq(st, GEMFA_OK, "loading %s: %s", dir, gemfa_last_error());
    return m;
}

static gemfa_model *tiny(int vocab_only)
{
    const char *d = getenv("GEMFA_TEST_DATA");
    cr_assert_not_null(d);
    char path[1024];
    snprintf(path, sizeof path, "%s/tiny-gemma3n", d);
    return load(path, vocab_only);
}

static gemfa_constraint *make(gemfa_model *m, const char *schema)
{
    gemfa_constraint *c = NULL;
    gemfa_status st = gemfa_constraint_new_json(m, schema, GEMFA_NUL_TERMINATED, &c);
    cr_assert_eq(st, GEMFA_OK, "%s: %s", schema ? schema : "(any)", gemfa_last_error());
    return c;
}

static int32_t id_of(gemfa_model *m, const char *piece)
{
    int32_t id = -1;
    cr_assert_eq(gemfa_token_id(m, piece, strlen(piece), &id), GEMFA_OK);
    return id;
}

Test(constraint, hostile_inputs)
{
    gemfa_model *m = tiny(1);
    gemfa_constraint *c = (gemfa_constraint *)0x1;
    cr_expect_eq(gemfa_constraint_new_json(NULL, NULL, 0, &c), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_constraint_new_json(m, NULL, 0, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_constraint_new_json(m, NULL, 5, &c), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_constraint_new_json(m, "{\"type\":", GEMFA_NUL_TERMINATED, &c),
                 GEMFA_ERR_FORMAT);
    cr_expect_eq(gemfa_constraint_new_json(m, "{\"oneOf\":[]}", GEMFA_NUL_TERMINATED, &c),
                 GEMFA_ERR_UNSUPPORTED);
    cr_expect(strstr(gemfa_last_error(), "oneOf") != NULL, "%s", gemfa_last_error());
    cr_expect_eq(gemfa_constraint_new_json(m, "{\"maxItems\":\"3\"}", GEMFA_NUL_TERMINATED, &c),
                 GEMFA_ERR_INVALID_ARGUMENT);
    /* a schema holding U+0000 in a key, given by length */
    cr_expect_eq(gemfa_constraint_new_json(m, "{\"a\\u0000\":1}", GEMFA_NUL_TERMINATED, &c),
                 GEMFA_ERR_UNSUPPORTED);
    cr_expect_eq(gemfa_constraint_new_json(m, "{\"type\":\"null\"}\0junk", 20, &c),
                 GEMFA_ERR_FORMAT);
    cr_expect_eq(c, (gemfa_constraint *)0x1, "out written on failure");

    gemfa_constraint_free(NULL);
    cr_expect_eq(gemfa_constraint_reset(NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_constraint_accept(NULL, 0), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_constraint_is_complete(NULL), 0);
    size_t n = 0;
    cr_expect_eq(gemfa_constraint_mask(NULL, NULL, 0, &n), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_sampler_set_constraint(NULL, NULL), GEMFA_ERR_INVALID_ARGUMENT);

    c = make(m, NULL);
    cr_expect_eq(gemfa_constraint_mask(c, NULL, 0, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_constraint_mask(c, NULL, 5, &n), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_constraint_mask(c, NULL, 0, &n), GEMFA_ERR_BUFFER_TOO_SMALL);
    cr_expect_eq(n, 1024);
    uint8_t *mask = malloc(n);
    cr_expect_eq(gemfa_constraint_mask(c, mask, n - 1, &n), GEMFA_ERR_BUFFER_TOO_SMALL);
    cr_expect_eq(gemfa_constraint_accept(c, -1), GEMFA_ERR_INVALID_TOKEN);
    cr_expect_eq(gemfa_constraint_accept(c, 1024), GEMFA_ERR_INVALID_TOKEN);
    cr_expect_eq(gemfa_constraint_accept(c, INT32_MAX), GEMFA_ERR_INVALID_TOKEN);
    cr_expect_eq(gemfa_constraint_accept(c, 2), GEMFA_ERR_INVALID_TOKEN); /* <bos>: special */
    int32_t eos = 1;
    cr_expect_eq(gemfa_constraint_accept(c, eos), GEMFA_ERR_INVALID_TOKEN); /* not complete */
    /* a refused token leaves the state as it was */
    int32_t brace = id_of(m, "{");
    cr_assert_geq(brace, 0);
    cr_expect_eq(gemfa_constraint_mask(c, mask, 1024, &n), GEMFA_OK);
    cr_expect_eq(mask[brace], 1);
    cr_expect_eq(mask[eos], 0);
    cr_expect_eq(mask[2], 0);
    cr_expect_eq(gemfa_constraint_accept(c, brace), GEMFA_OK);
    cr_expect_eq(gemfa_constraint_accept(c, brace), GEMFA_ERR_INVALID_TOKEN); /* "{{" */
    cr_expect_eq(gemfa_constraint_mask(c, mask, 1024, &n), GEMFA_OK);
    cr_expect_eq(mask[brace], 0);
    int32_t close = id_of(m, "}");
    cr_assert_geq(close, 0);
    cr_expect_eq(mask[close], 1);
    cr_expect_eq(gemfa_constraint_accept(c, close), GEMFA_OK);
    cr_expect(gemfa_constraint_is_complete(c));
    cr_expect_eq(gemfa_constraint_mask(c, mask, 1024, &n), GEMFA_OK);
    cr_expect_eq(mask[eos], 1);
    cr_expect_eq(mask[brace], 0);
    cr_expect_eq(gemfa_constraint_accept(c, eos), GEMFA_OK);
    cr_expect_eq(gemfa_constraint_mask(c, mask, 1024, &n), GEMFA_OK);
    size_t allowed = 0;
    for (size_t i = 0; i < n; i++)
        allowed += mask[i];
    cr_expect_eq(allowed, 2, "after EOG only the EOG ids (1 and 7)");
    cr_expect_eq(gemfa_constraint_reset(c), GEMFA_OK);
    cr_expect_not(gemfa_constraint_is_complete(c));
    cr_expect_eq(gemfa_constraint_accept(c, brace), GEMFA_OK);
    free(mask);
    gemfa_constraint_free(c);
    gemfa_model_free(m);
}

Test(constraint, allocation_failures)
{
    gemfa_model *m = tiny(1);
    const char *schema = "{\"properties\":{\"a\":{\"enum\":[1,2]},\"b\":{\"maxLength\":3}}}";
    for (long k = 0;; k++) {
        gf_alloc_fail_after(k);
        gemfa_constraint *c = NULL;
        gemfa_status st = gemfa_constraint_new_json(m, schema, GEMFA_NUL_TERMINATED, &c);
        gf_alloc_fail_after(-1);
        if (st == GEMFA_OK) {
            cr_expect_gt(k, 3);
            gemfa_constraint_free(c);
            break;
        }
        cr_expect_eq(st, GEMFA_ERR_OUT_OF_MEMORY, "k=%ld: %s", k, gemfa_last_error());
        cr_expect_null(c);
    }
    gemfa_model_free(m);
}

/* Random walks: at every step the constraint's mask equals the slow one
 * (every token stepped alone), then a random allowed token is accepted. */
static void walks(gemfa_model *m, const char *schema, int n_walks, int max_steps, uint64_t seed)
{
    gemfa_constraint *c = make(m, schema);
    size_t nv = gf_constraint_n_vocab(c), words = gf_mask_words(nv);
    uint64_t *slow = malloc(words * sizeof *slow);
    int32_t *pick = malloc(nv * sizeof *pick);
    gf_rng rng;
    gf_rng_seed(&rng, seed);
    for (int w = 0; w < n_walks; w++) {
        gemfa_constraint_reset(c);
        for (int step = 0; step < max_steps; step++) {
            const uint64_t *bits;
            cr_assert_eq(gf_constraint_bits(c, &bits), GEMFA_OK);
            gf_mask_slow(&c->m, &c->trie, &c->state, slow);
            if (gf_jsm_complete(&c->m, &c->state))
                for (size_t i = 0; i < c->n_eog; i++)
                    slow[c->eog[i] >> 6] |= 1ull << (c->eog[i] & 63);
            size_t n = 0;
            for (size_t i = 0; i < nv; i++) {
                int a = (bits[i >> 6] >> (i & 63)) & 1, b = (slow[i >> 6] >> (i & 63)) & 1;
                if (a != b) {
                    cr_assert_fail("%s walk %d step %d: token %zu fast %d slow %d",
                                   schema ? schema : "any", w, step, i, a, b);
                }
                if (a)
                    pick[n++] = (int32_t)i;
            }
            if (n == 0 && c->n_eog == 0 && gf_jsm_complete(&c->m, &c->state))
                break; /* a vocabulary-only load without end-of-generation ids */
            if (n == 0) {
                fprintf(stderr, "dead end, depth %u, top kind %d sub %d a %u b %u x %llu\n",
                        c->state.depth, c->state.f[c->state.depth - 1].kind,
                        c->state.f[c->state.depth - 1].sub, c->state.f[c->state.depth - 1].a,
                        c->state.f[c->state.depth - 1].b,
                        (unsigned long long)c->state.f[c->state.depth - 1].x);
                cr_assert_fail("%s: dead end at walk %d step %d", schema ? schema : "any", w,
                               step);
            }
            /* prefer structural tokens now and then so walks go deep and end */
            int32_t id = pick[(size_t)(gf_rng_uniform(&rng) * (double)n)];
            if (gf_rng_uniform(&rng) < 0.5) {
                for (int tries = 0; tries < 20; tries++) {
                    int32_t t2 = pick[(size_t)(gf_rng_uniform(&rng) * (double)n)];
                    uint32_t len = c->trie.off[t2 + 1] - c->trie.off[t2];
                    if (len <= 2) {
                        id = t2;
                        break;
                    }
                }
            }
            cr_assert_eq(gemfa_constraint_accept(c, id), GEMFA_OK, "%s", gemfa_last_error());
            if (c->state.finished)
                break;
        }
    }
    free(slow);
    free(pick);
    gemfa_constraint_free(c);
}

static const char *schemas[] = {
    NULL,
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":6},"
    "\"age\":{\"type\":\"integer\",\"minimum\":-5,\"maximum\":150},\"score\":{\"type\":\"number\","
    "\"minimum\":0,\"maximum\":1},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\","
    "\"maxLength\":3},\"maxItems\":3},\"kind\":{\"enum\":[\"a\",\"ab\",1,12,null]},"
    "\"ok\":{\"type\":\"boolean\"}},\"required\":[\"name\",\"ok\"]}",
    "{\"type\":\"array\",\"items\":{\"type\":[\"string\",\"number\",\"null\"],"
    "\"minLength\":1},\"minItems\":1,\"maxItems\":4}",
    "{\"type\":\"object\",\"properties\":{\"o\":{\"type\":\"object\"},\"a\":{\"type\":\"array\"}}}",
};

Test(constraint, mask_equals_slow_tiny)
{
    gemfa_model *m = tiny(1);
    for (size_t i = 0; i < sizeof schemas / sizeof *schemas; i++)
        walks(m, schemas[i], 30, 120, 1234 + i);
    gemfa_model_free(m);
}

Test(constraint, mask_equals_slow_real, .timeout = 600)
{
    const char *dir = getenv("GEMFA_REAL_TOKENIZER");
    if (!dir)
        cr_skip_test("GEMFA_REAL_TOKENIZER is not set (run through with_tokenizer.sh)");
    gemfa_model *m = load(dir, 1);
    for (size_t i = 0; i < sizeof schemas / sizeof *schemas; i++)
        walks(m, schemas[i], 3, 40, 99 + i);
    gemfa_model_free(m);
}

/* The sampler never returns a refused token, whatever its settings. */
Test(constraint, sampler_never_refused)
{
    gemfa_model *m = tiny(1);
    gemfa_constraint *c = make(m, schemas[1]);
    gemfa_constraint *check = make(m, schemas[1]);
    gemfa_sampler *s = NULL;
    cr_assert_eq(gemfa_sampler_new(NULL, &s), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_constraint(s, c), GEMFA_OK);
    float *logits = malloc(1024 * sizeof *logits);
    uint8_t mask[1024];
    gf_rng rng;
    gf_rng_seed(&rng, 7);
    int32_t hist[512];
    size_t n_hist = 0;
    for (int run = 0; run < 40; run++) {
        gemfa_constraint_reset(c);
        gemfa_constraint_reset(check);
        n_hist = 0;
        int setting = run % 6;
        gemfa_sampler_set_temperature(s, setting == 0 ? 0.0f : 1.5f);
        gemfa_sampler_set_top_k(s, setting == 1 ? 3 : setting == 5 ? 1000 : 0);
        gemfa_sampler_set_top_p(s, setting == 2 ? 0.5f : 1.0f);
        gemfa_sampler_set_min_p(s, setting == 3 ? 0.2f : 0.0f);
        gemfa_sampler_set_penalties(s, setting == 4 ? 1.5f : 1.0f, setting == 4 ? 0.5f : 0.0f,
                                    setting == 4 ? -3.0f : 0.0f, 0);
        gemfa_sampler_clear_logit_bias(s);
        /* a huge bias on a token the grammar refuses at the start */
        gemfa_sampler_set_logit_bias(s, id_of(m, "]"), 1e30f);
        gemfa_sampler_set_seed(s, (uint64_t)run);
        for (int step = 0; step < 200 && !check->state.finished; step++) {
            for (int i = 0; i < 1024; i++)
                logits[i] = (float)(gf_rng_uniform(&rng) * 20.0 - 10.0);
            size_t n;
            cr_assert_eq(gemfa_constraint_mask(check, mask, 1024, &n), GEMFA_OK);
            int32_t id;
            gemfa_status st = gemfa_sample(s, logits, 1024, hist, n_hist, &id);
            cr_assert_eq(st, GEMFA_OK, "%s", gemfa_last_error());
            cr_assert_eq(mask[id], 1, "setting %d step %d: refused token %d", setting, step, id);
            cr_assert_eq(gemfa_constraint_accept(check, id), GEMFA_OK);
            cr_assert_eq(memcmp(&c->state, &check->state, sizeof c->state), 0,
                         "the sampler advanced its constraint differently");
            if (n_hist < 512)
                hist[n_hist++] = id;
        }
    }
    /* wrong vocabulary size, and every allowed logit -inf: errors, nothing moves */
    gemfa_constraint_reset(c);
    int32_t id = -5;
    cr_expect_eq(gemfa_sample(s, logits, 1000, NULL, 0, &id), GEMFA_ERR_INVALID_ARGUMENT);
    size_t n;
    cr_assert_eq(gemfa_constraint_mask(c, mask, 1024, &n), GEMFA_OK);
    for (int i = 0; i < 1024; i++)
        logits[i] = mask[i] ? -INFINITY : 5.0f;
    cr_expect_eq(gemfa_sample(s, logits, 1024, NULL, 0, &id), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(id, -5);
    cr_expect_eq(c->state.depth, 1);
    gemfa_sampler_set_constraint(s, NULL);
    cr_expect_eq(gemfa_sample(s, logits, 1000, NULL, 0, &id), GEMFA_OK);
    free(logits);
    gemfa_sampler_free(s);
    gemfa_constraint_free(c);
    gemfa_constraint_free(check);
    gemfa_model_free(m);
}
