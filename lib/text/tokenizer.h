/* tokenizer.h — struct gf_text (the loaded tokenizer, chat template facts)
 * and the internal calls the public text functions are built from.
 *
 * Data flow (the same order as Hugging Face tokenizers):
 *   encode: text ─► added-token split (added_tokens.c, leftmost-longest)
 *                 ─► normalizer + pre-tokenizer (components.c)
 *                 ─► BPE per word (bpe.c) ─► post-processor ids (encode.c)
 *   decode: ids ─► pieces ─► decoder Replace steps ─► byte-fallback runs
 *                 (detokenize.c; detok_stream.c does it one id at a time)
 * Everything here is immutable after gf_text_load, so any number of threads
 * may use one gf_text; scratch memory belongs to each call. */
#ifndef GF_TEXT_TOKENIZER_H
#define GF_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "gemfa.h"
#include "text/text.h"
#include "text/text_buf.h"

/* A string in gf_text.arena. */
typedef struct gf_span {
    uint32_t off, len;
} gf_span;
#define GF_NO_PIECE UINT32_MAX /* gf_span.len of an id without a piece */

/* Ids are limited so that a hostile file cannot make us allocate huge tables. */
#define GF_TEXT_MAX_IDS (1 << 24)

/* gf_text.flags bits per id */
#define GF_ID_ADDED 0x1u   /* an added token (matched before BPE) */
#define GF_ID_SPECIAL 0x2u /* an added token with special=true */

/* model.vocab entry: its string and id. */
typedef struct gf_vocab_entry {
    uint32_t off, len;
    int32_t id;
} gf_vocab_entry;

/* String -> entry index, open addressing; a slot holds (hash32 << 32) |
 * (index + 1), 0 when empty. */
typedef struct gf_strmap {
    uint64_t *slots;
    size_t mask, count;
} gf_strmap;

/* Added tokens: a byte trie walked for leftmost-longest matches. */
typedef struct gf_trie_node {
    int32_t first_child, next_sibling;
    int32_t token; /* id when a token ends here, else -1 */
    uint8_t byte;
} gf_trie_node;

typedef struct gf_trie {
    gf_trie_node *nodes; /* node 0 is the root */
    size_t n_nodes, cap;
    int32_t root_child[256]; /* children of the root by byte, -1 none */
} gf_trie;

/* BPE merges: (left id, right id) -> (rank, merged id). */
typedef struct gf_merge_slot {
    uint32_t a, b; /* a == UINT32_MAX: empty */
    uint32_t rank;
    int32_t id;
} gf_merge_slot;

#define GF_CP_PAGES (0x110000 >> 8)

typedef struct gf_bpe {
    gf_merge_slot *slots;
    size_t mask, count;
    int32_t *cp_page[GF_CP_PAGES]; /* code point -> id of its one-character piece */
    int32_t byte_id[256];          /* id of "<0xXX>", -1 when missing */
    int32_t unk_id;                /* -1 when there is none */
    int fuse_unk, byte_fallback, ignore_merges;
} gf_bpe;

/* A Replace(String pattern -> content) step. */
typedef struct gf_replace {
    char *pattern, *content;
    size_t pattern_len, content_len;
} gf_replace;

typedef struct gf_pipeline {
    gf_replace *norm; /* normalizer: Replace steps in order (none: identity) */
    size_t n_norm;
    char *split; /* pre-tokenizer Split(String, MergedWithPrevious); NULL: none */
    size_t split_len;
    int32_t *prefix_ids, *suffix_ids; /* post-processor: ids around the sequence */
    size_t n_prefix, n_suffix;
    gf_replace *dec_replace; /* decoder Replace steps (before ByteFallback) */
    size_t n_dec_replace;
    int dec_byte_fallback;
} gf_pipeline;

/* What tokenizer_config.json / chat_template.jinja say about chatting. */
typedef struct gf_chat_info {
    char *bos; /* the template's bos_token text ("<bos>") */
    size_t bos_len;
    int has_template; /* a template was found */
    int gemma_like;   /* it looks like a Gemma 3 / 3n template */
} gf_chat_info;

struct gf_text {
    char *arena; /* every piece, NUL-separated */
    size_t arena_len;
    int32_t n_ids;   /* max id + 1 over vocab and added tokens */
    gf_span *piece;  /* [n_ids] token string (added content wins), GF_NO_PIECE: none */
    uint8_t *flags;  /* [n_ids] GF_ID_* */
    int16_t *byte_of;/* [n_ids] byte a ByteFallback decoder reads from the piece, or -1 */

    gf_vocab_entry *vocab; /* model.vocab */
    size_t n_vocab;
    gf_strmap vocab_map;

    int32_t *added_ids; /* added tokens in file order */
    size_t n_added;
    gf_trie trie;

    gf_bpe bpe;
    gf_pipeline pipe;
    gf_chat_info chat;
};

/* ---- strmap.c ---- */
uint32_t gf_str_hash(const char *s, size_t len);
int gf_strmap_init(gf_strmap *m, size_t min_slots);
void gf_strmap_free(gf_strmap *m);
/* Index of the entry whose string is s[0..len), or -1. */
int64_t gf_strmap_get(const gf_strmap *m, const char *arena, const gf_vocab_entry *entries,
                      const char *s, size_t len);
/* Inserts entry `index` (its string must not be in the map yet).
 * Returns 0, or -1 when out of memory. */
int gf_strmap_put(gf_strmap *m, const gf_vocab_entry *entries, const char *arena,
                  size_t index);
/* model.vocab id of s[0..len), or -1. */
int32_t gf_vocab_id(const gf_text *t, const char *s, size_t len);

/* ---- added_tokens.c ---- */
/* Adds token `id` with content s[0..len) (len > 0) to the trie.
 * Returns 0, -1 when out of memory, -2 when that content is already there. */
int gf_trie_add(gf_trie *tr, const char *s, size_t len, int32_t id);
void gf_trie_init(gf_trie *tr);
void gf_trie_free(gf_trie *tr);
/* Exact lookup: the id of an added token with this content, or -1. */
int32_t gf_trie_find(const gf_trie *tr, const char *s, size_t len);
/* The leftmost-longest added-token match in s[from..len): returns 1 with
 * [*start, *end) and *id, or 0 when there is none. */
int gf_trie_next(const gf_trie *tr, const char *s, size_t len, size_t from, size_t *start,
                 size_t *end, int32_t *id);

/* ---- bpe.c ---- */
/* Merge table: insert (later duplicates win, as in HF) and look up. */
int gf_merges_put(gf_bpe *b, int32_t a, int32_t c, uint32_t rank, int32_t id);
const gf_merge_slot *gf_merges_get(const gf_bpe *b, int32_t a, int32_t c);
void gf_bpe_free(gf_bpe *b);

/* Per-call scratch memory of the BPE. */
typedef struct gf_bpe_scratch {
    struct gf_bpe_symbol *sym;
    size_t sym_cap;
    struct gf_bpe_merge *heap;
    size_t heap_cap;
} gf_bpe_scratch;
void gf_bpe_scratch_free(gf_bpe_scratch *s);
/* Encodes one word (valid UTF-8, already normalized) and appends its ids.
 * Errors: OUT_OF_MEMORY, FORMAT (an unknown character needs <unk> and the
 * vocabulary has none). */
gemfa_status gf_bpe_word(const gf_text *t, gf_bpe_scratch *s, const char *w, size_t len,
                         gf_ids *out);

/* ---- components.c: normalizer, pre-tokenizer, post-processor, decoder ---- */
/* Each reads its part of tokenizer.json (j may be NULL or a JSON null).
 * Errors: UNSUPPORTED (a type libgemfa does not implement), FORMAT, OUT_OF_MEMORY. */
gemfa_status gf_pipeline_normalizer(gf_pipeline *p, const gf_json *j);
gemfa_status gf_pipeline_pre_tokenizer(gf_pipeline *p, const gf_json *j);
gemfa_status gf_pipeline_post_processor(gf_pipeline *p, const gf_json *j, int32_t n_ids);
gemfa_status gf_pipeline_decoder(gf_pipeline *p, const gf_json *j);
void gf_pipeline_free(gf_pipeline *p);
/* Applies the normalizer's Replace steps to s[0..len), into out (reset first). */
int gf_pipeline_normalize(const gf_pipeline *p, const char *s, size_t len, gf_bytes *out);
/* Length of the next pre-tokenized word starting at s[0..len). */
size_t gf_pipeline_next_word(const gf_pipeline *p, const char *s, size_t len);
/* Applies Replace steps to s[0..len), appending to out.  -1: out of memory. */
int gf_replace_apply(const gf_replace *steps, size_t n, const char *s, size_t len,
                     gf_bytes *out);

/* ---- tokenizer_config.c ---- */
/* Reads tokenizer_config.json, chat_template.jinja (both optional) from dir. */
gemfa_status gf_chat_info_load(gf_chat_info *c, const char *dir);
void gf_chat_info_free(gf_chat_info *c);

/* ---- encode.c ---- */
/* Encodes valid UTF-8 s[0..len) as gemfa_tokenize does (flags
 * GEMFA_TOKENIZE_*), appending to out.  Errors: OUT_OF_MEMORY, FORMAT. */
gemfa_status gf_text_encode(const gf_text *t, const char *s, size_t len, unsigned flags,
                            gf_ids *out);

/* ---- detokenize.c ---- */
/* Appends the decoded text of ids (all < t->n_ids or pieceless; the caller
 * checked the range) to out.  Errors: OUT_OF_MEMORY. */
gemfa_status gf_text_decode(const gf_text *t, const int32_t *ids, size_t n, unsigned flags,
                            gf_bytes *out);
/* Appends one piece after the decoder's Replace steps (no byte fallback). */
int gf_text_append_replaced(const gf_text *t, int32_t id, gf_bytes *out);
/* 1 when the decoder shows this id (it has a piece and is not skipped). */
int gf_text_id_shown(const gf_text *t, int32_t id, unsigned flags);

/* The text side of a model: model->text, or an error status. */
struct gemfa_model;
gemfa_status gf_model_text(const struct gemfa_model *m, const gf_text **t);
/* Ids valid for decoding: max(the model's vocabulary size, the tokenizer's). */
int64_t gf_model_id_limit(const struct gemfa_model *m);

#endif
