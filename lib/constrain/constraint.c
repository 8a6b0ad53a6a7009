/* constraint.c — the public constraint calls: create from a JSON Schema,
 * accept tokens, report completeness and masks. */
#include "constrain/constraint.h"

#include <string.h>

#include "constrain/schema.h"
#include "core/alloc.h"
#include "core/status.h"
#include "loader/model.h"
#include "text/tokenizer.h"

GEMFA_API void gemfa_constraint_free(gemfa_constraint *c)
{
    if (!c)
        return;
    gf_jsm_free(&c->m);
    gf_vtrie_free(&c->trie);
    gf_mask_cache_free(&c->cache);
    gf_free(c->eog);
    gf_free(c->bits);
    gf_free(c);
}

GEMFA_API gemfa_status gemfa_constraint_new_json(const gemfa_model *model, const char *schema,
                                                 size_t len, gemfa_constraint **out)
{
    const char *fn = "gemfa_constraint_new_json";
    if (!model || !out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !model ? "model" : "out");
    if (!schema && len != 0 && len != GEMFA_NUL_TERMINATED)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: schema is NULL but len is %zu", fn,
                        len);
    if (!model->text)
        return gf_error(GEMFA_ERR_NO_TOKENIZER, "%s: the model was loaded without a tokenizer",
                        fn);
    if (!schema)
        len = 0;
    else if (len == GEMFA_NUL_TERMINATED)
        len = strlen(schema);
    int64_t n_vocab = 0;
    gemfa_model_get(model, GEMFA_PROP_VOCAB_SIZE, &n_vocab);
    if (n_vocab <= 0 || n_vocab > INT32_MAX)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: the model has no vocabulary", fn);

    gemfa_constraint *c = gf_calloc(1, sizeof *c);
    if (!c)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    gemfa_status st = gf_schema_compile(schema, len, &c->m);
    if (st == GEMFA_OK)
        st = gf_vtrie_build(model->text, (size_t)n_vocab, &c->trie);
    if (st == GEMFA_OK)
        st = gf_mask_warm(&c->cache, &c->m, &c->trie);
    if (st == GEMFA_OK) {
        size_t words = gf_mask_words((size_t)n_vocab);
        c->bits = gf_malloc(words * sizeof *c->bits);
        c->eog = gf_malloc((model->n_eog_ids + 1) * sizeof *c->eog);
        if (!c->bits || !c->eog)
            st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    if (st != GEMFA_OK) {
        gemfa_constraint_free(c);
        return st;
    }
    for (size_t i = 0; i < model->n_eog_ids; i++)
        if (model->eog_ids[i] >= 0 && model->eog_ids[i] < n_vocab)
            c->eog[c->n_eog++] = model->eog_ids[i];
    gf_jsm_start(&c->m, &c->state);
    *out = c;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_constraint_reset(gemfa_constraint *c)
{
    if (!c)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_constraint_reset: constraint is NULL");
    gf_jsm_start(&c->m, &c->state);
    c->bits_valid = 0;
    return GEMFA_OK;
}

static int is_eog(const gemfa_constraint *c, int32_t id)
{
    for (size_t i = 0; i < c->n_eog; i++)
        if (c->eog[i] == id)
            return 1;
    return 0;
}

size_t gf_constraint_n_vocab(const gemfa_constraint *c) { return c->trie.n_vocab; }

GEMFA_API gemfa_status gemfa_constraint_accept(gemfa_constraint *c, int32_t id)
{
    const char *fn = "gemfa_constraint_accept";
    if (!c)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: constraint is NULL", fn);
    if (id < 0 || (size_t)id >= c->trie.n_vocab)
        return gf_error(GEMFA_ERR_INVALID_TOKEN, "%s: token id %d is outside the vocabulary "
                        "[0, %zu)", fn, (int)id, c->trie.n_vocab);
    if (is_eog(c, id)) {
        if (!gf_jsm_complete(&c->m, &c->state))
            return gf_error(GEMFA_ERR_INVALID_TOKEN, "%s: end-of-generation token %d before the "
                            "JSON value is complete", fn, (int)id);
        if (!c->state.finished)
            c->bits_valid = 0;
        c->state.finished = 1;
        return GEMFA_OK;
    }
    const gf_vtrie *t = &c->trie;
    uint32_t from = t->off[id], to = t->off[id + 1];
    if (from == to)
        return gf_error(GEMFA_ERR_INVALID_TOKEN, "%s: token %d (special or without text) "
                        "cannot be part of a JSON text", fn, (int)id);
    /* step a copy: a rejected token leaves the constraint as it was */
    gf_jstate local = c->state, *s = &local;
    for (uint32_t i = from; i < to; i++)
        if (gf_jsm_step(&c->m, s, (uint8_t)t->arena[i]) != GF_STEP_OK)
            return gf_error(GEMFA_ERR_INVALID_TOKEN, "%s: token %d cannot continue the JSON text "
                            "here (byte %u of its %u is refused)", fn, (int)id, i - from + 1,
                            to - from);
    c->state = *s;
    c->bits_valid = 0;
    return GEMFA_OK;
}

GEMFA_API int gemfa_constraint_is_complete(const gemfa_constraint *c)
{
    return c ? gf_jsm_complete(&c->m, &c->state) : 0;
}

gemfa_status gf_constraint_bits(gemfa_constraint *c, const uint64_t **bits)
{
    if (!c->bits_valid) {
        gemfa_status st = gf_mask_compute(&c->cache, &c->m, &c->trie, &c->state, c->bits);
        if (st != GEMFA_OK)
            return st;
        if (gf_jsm_complete(&c->m, &c->state))
            for (size_t i = 0; i < c->n_eog; i++)
                c->bits[c->eog[i] >> 6] |= 1ull << (c->eog[i] & 63);
        c->bits_valid = 1;
    }
    *bits = c->bits;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_constraint_mask(gemfa_constraint *c, uint8_t *allowed, size_t cap,
                                             size_t *n)
{
    const char *fn = "gemfa_constraint_mask";
    if (!c || !n || (!allowed && cap > 0))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !c ? "constraint" : !n ? "n" : "allowed");
    size_t nv = c->trie.n_vocab;
    if (cap < nv) {
        *n = nv;
        return gf_error(GEMFA_ERR_BUFFER_TOO_SMALL, "%s: the mask needs %zu entries, cap is %zu",
                        fn, nv, cap);
    }
    const uint64_t *bits;
    gemfa_status st = gf_constraint_bits(c, &bits);
    if (st != GEMFA_OK)
        return st;
    for (size_t i = 0; i < nv; i++)
        allowed[i] = (uint8_t)((bits[i >> 6] >> (i & 63)) & 1);
    *n = nv;
    return GEMFA_OK;
}
