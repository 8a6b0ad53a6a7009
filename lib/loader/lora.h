/* lora.h — PEFT LoRA adapters merged into the weights at load
 * (docs/lora.md).
 *
 * gf_lora_open reads every adapter (adapter_config.json and
 * adapter_model.safetensors) and validates what needs no model: config
 * values, tensor names, dtypes, A/B pairs and their ranks.  The binder
 * (bind.c) then resolves the adapters' module names against the
 * checkpoint's tensor prefix, claims each target while it validates the
 * checkpoint (shapes checked there), and merges W + s·B·A in f32 into the
 * matrices it converts.  Nothing of the model is touched before every
 * adapter has been checked. */
#ifndef GF_LORA_H
#define GF_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "gemfa.h"
#include "loader/safetensors.h"

/* One adapter asked for with gemfa_model_options_add_lora. */
typedef struct gf_lora_request {
    char *dir;
    double scale; /* the user's factor; PEFT's alpha/r (or alpha/sqrt(r)) is applied on top */
} gf_lora_request;

/* Frees a request list (lora_options.c). */
void gf_lora_requests_free(gf_lora_request *req, size_t n);

/* One A/B pair of one adapter: delta = scale * B[rows][r] · A[r][cols]. */
typedef struct gf_lora_pair {
    const gf_st_tensor *a, *b;
    float scale;      /* user scale × alpha / r (or / sqrt(r) with use_rslora), rounded to f32 */
    int64_t rank;
    size_t adapter;   /* index in the request list */
} gf_lora_pair;

/* All pairs that change one checkpoint tensor, in request order. */
typedef struct gf_lora_target {
    char *module;     /* the adapter's module name, as stored (for messages) */
    char *weight;     /* the checkpoint tensor it changes (set by gf_lora_resolve) */
    gf_lora_pair *pairs;
    size_t n_pairs;
    int claimed;      /* the binder found and accepted it */
    int ignored;      /* a module libgemfa never runs (vision/audio towers) */
} gf_lora_target;

typedef struct gf_lora_set {
    gf_st_file *files;   /* one adapter_model.safetensors per request */
    char **dirs;
    size_t n_adapters;
    gf_lora_target *targets;
    size_t n_targets;
    int64_t n_merged;    /* matrices changed (after the binding pass) */
    uint64_t fingerprint;/* the adapters' scales, names and A/B bytes, in order */
    float *scratch;      /* f32 copy of the matrix being merged, reused (gf_lora_scratch) */
    size_t scratch_cap;  /* floats */
} gf_lora_set;

/* Reads and validates the adapters `req[0..n)`.  Errors (the message names
 * the adapter directory, the file and the tensor):
 *   NOT_FOUND / IO  adapter_config.json or adapter_model.safetensors absent
 *                   or unreadable;
 *   FORMAT          malformed JSON or safetensors (truncated, bad header),
 *                   a config value of the wrong JSON type;
 *   CONFIG          r < 1 or not an integer, a non-finite alpha or total
 *                   scale, a tensor whose rank disagrees with r;
 *   TENSOR_MISSING  the A or B half of a pair absent;
 *   TENSOR_SHAPE    a non-2-D or non-float A/B, A and B ranks disagreeing;
 *   UNSUPPORTED     another PEFT method, DoRA, modules_to_save,
 *                   rank/alpha patterns, embedding LoRA, other tensors;
 *   MODEL_MISMATCH  a target_modules entry Gemma 3n does not have;
 *   OUT_OF_MEMORY. */
gemfa_status gf_lora_open(const gf_lora_request *req, size_t n, gf_lora_set **out);
void gf_lora_free(gf_lora_set *s);

/* Maps every target's module onto the checkpoint tensor it changes, given
 * the decoder prefix the checkpoint uses ("model.language_model.", ...).
 * Errors: MODEL_MISMATCH (a module outside the text decoder's naming),
 * OUT_OF_MEMORY. */
gemfa_status gf_lora_resolve(gf_lora_set *s, const char *tensor_prefix);

/* The target that changes checkpoint tensor `name`, or NULL. */
gf_lora_target *gf_lora_find(gf_lora_set *s, const char *name);

/* Checks the pairs of `t` against the matrix they change ([rows][cols]).
 * Errors: MODEL_MISMATCH (naming adapter, module, expected vs found). */
gemfa_status gf_lora_check_shape(const gf_lora_set *s, const gf_lora_target *t, int64_t rows,
                                 int64_t cols);

/* After the validating pass: every target must have been claimed.
 * Errors: MODEL_MISMATCH (a module the model does not have: another
 * architecture, a layer beyond num_hidden_layers), UNSUPPORTED (a tied
 * lm_head). */
gemfa_status gf_lora_check_claimed(const gf_lora_set *s);

/* A 64-byte aligned buffer of at least n floats, owned by s and reused
 * from one matrix to the next (no fresh pages to fault in per matrix);
 * NULL when out of memory. */
float *gf_lora_scratch(gf_lora_set *s, size_t n);

/* w[rows][cols] (f32) += Σ pair.scale · B·A, pairs in order; each pair's
 * product is summed over the rank in order (k = 0..r-1) into an f32
 * accumulator, then scaled and added: exactly what tests/tools/make_lora.py
 * does in numpy.  Errors: OUT_OF_MEMORY. */
gemfa_status gf_lora_merge(const gf_lora_target *t, float *w, int64_t rows, int64_t cols,
                           int n_threads);

#endif
