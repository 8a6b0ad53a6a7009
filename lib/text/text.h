/* text.h — the model's text side as the loader sees it: tokenizer,
 * chat template and special tokens, loaded from a checkpoint directory. */
#ifndef GF_TEXT_H
#define GF_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "gemfa.h"

typedef struct gf_text gf_text;

/* Loads tokenizer.json (+ tokenizer_config.json, chat_template.jinja,
 * special_tokens_map.json when present) from `dir`.  A directory without
 * tokenizer.json is not an error: *out = NULL and GEMFA_OK.  Errors: IO,
 * FORMAT, UNSUPPORTED (a tokenizer type or component libgemfa does not
 * implement), OUT_OF_MEMORY; messages name the file. */
gemfa_status gf_text_load(const char *dir, gf_text **out);
void gf_text_free(gf_text *text);

/* Ids that have a piece (vocab + added tokens): 262145 for Gemma 3n. */
int64_t gf_text_n_pieces(const gf_text *text);

/* Id of an exact piece or added-token content, or -1. */
int32_t gf_text_find(const gf_text *text, const char *piece, size_t len);

#endif
