/* config.h — config.json into gf_hparams (spec §1), and the id lists that
 * config.json and generation_config.json carry. */
#ifndef GF_CONFIG_H
#define GF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "gemfa.h"
#include "loader/hparams.h"

/* Fills *hp from a parsed config.json (`what` names it in messages).
 * Accepts the decoder settings under "text_config" or at the root; every
 * variant of spec §1 (intermediate_size int or list, legacy or
 * rope_parameters RoPE keys, layer_types / activation_sparsity_pattern /
 * head_dim absent).  Unknown keys and null values of optional fields are
 * ignored.  Computes kv_source (spec §5).
 * Required: hidden_size, num_hidden_layers, num_attention_heads,
 * num_key_value_heads, vocab_size, intermediate_size; the rest default to
 * the Hugging Face Gemma3nTextConfig defaults (E4B values).
 * Errors: CONFIG (missing, wrong type, out of range, inconsistent — the
 * message names the key, expected and found), UNSUPPORTED (a model_type,
 * activation, RoPE scaling or attention bias libgemfa does not implement),
 * OUT_OF_MEMORY.  On error *hp is zeroed and owns nothing. */
gemfa_status gf_config_parse(const gf_json *root, const char *what, gf_hparams *hp);

/* Reads and parses the file `path` (config.json).  *root_out (may be NULL)
 * receives the JSON tree, to be freed by the caller.
 * Errors: IO (missing/unreadable), FORMAT (not JSON), plus those of
 * gf_config_parse. */
gemfa_status gf_config_load(const char *path, gf_hparams *hp, gf_json **root_out);

/* Reads an "eos_token_id"-style value (an integer or a list of integers;
 * null, absent or other types give 0 ids) into a new array *ids (NULL when
 * there are none) of *n entries.  Negative ids are dropped.
 * Errors: OUT_OF_MEMORY. */
gemfa_status gf_config_id_list(const gf_json *value, int32_t **ids, size_t *n);

/* The object holding the decoder settings: root["text_config"] when it is
 * an object, else root. */
const gf_json *gf_config_text_section(const gf_json *root);

#endif
