/* encode.c — text to ids, in Hugging Face's order: split on added tokens
 * (leftmost-longest, on the raw text), then for each stretch between them
 * normalize, pre-tokenize and run BPE on each word; the post-processor's
 * ids go around the whole when add-special is on. */
#include "core/status.h"
#include "text/tokenizer.h"

typedef struct encoder {
    const gf_text *t;
    gf_bytes norm;
    gf_bpe_scratch bpe;
    gf_ids *out;
} encoder;

static gemfa_status encode_stretch(encoder *e, const char *s, size_t len)
{
    if (len == 0)
        return GEMFA_OK;
    if (gf_pipeline_normalize(&e->t->pipe, s, len, &e->norm) != 0)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "tokenize: out of memory");
    const char *n = e->norm.data;
    size_t left = e->norm.len;
    while (left) {
        size_t w = gf_pipeline_next_word(&e->t->pipe, n, left);
        gemfa_status st = gf_bpe_word(e->t, &e->bpe, n, w, e->out);
        if (st != GEMFA_OK)
            return st;
        n += w;
        left -= w;
    }
    return GEMFA_OK;
}

gemfa_status gf_text_encode(const gf_text *t, const char *s, size_t len, unsigned flags,
                            gf_ids *out)
{
    encoder e = {.t = t, .out = out};
    gemfa_status st = GEMFA_OK;
    int add_special = (flags & GEMFA_TOKENIZE_ADD_BOS) != 0;
    int parse_special = (flags & GEMFA_TOKENIZE_PARSE_SPECIAL) != 0;
    if (add_special && gf_ids_append(out, t->pipe.prefix_ids, t->pipe.n_prefix) != 0)
        st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "tokenize: out of memory");

    size_t done = 0, from = 0, start, end;
    int32_t id;
    while (st == GEMFA_OK && gf_trie_next(&t->trie, s, len, from, &start, &end, &id)) {
        from = end;
        /* Like HF with split_special_tokens: a special match is skipped as a
         * whole (the search goes on after it) and stays ordinary text. */
        if (!parse_special && (t->flags[id] & GF_ID_SPECIAL))
            continue;
        st = encode_stretch(&e, s + done, start - done);
        if (st == GEMFA_OK && gf_ids_push(out, id) != 0)
            st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "tokenize: out of memory");
        done = end;
    }
    if (st == GEMFA_OK)
        st = encode_stretch(&e, s + done, len - done);
    if (st == GEMFA_OK && add_special &&
        gf_ids_append(out, t->pipe.suffix_ids, t->pipe.n_suffix) != 0)
        st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "tokenize: out of memory");
    gf_bytes_free(&e.norm);
    gf_bpe_scratch_free(&e.bpe);
    return st;
}
