/* load.h — what the loader's files share: the options object, progress
 * reporting, model-owned buffers, and the steps gemfa_model_load runs. */
#ifndef GF_LOAD_H
#define GF_LOAD_H

#include <stddef.h>

#include "core/json.h"
#include "gemfa.h"
#include "loader/model.h"

struct gemfa_model_options {
    gemfa_weight_type weights;
    int vocab_only;
    gemfa_progress_fn progress;
    void *progress_user;
    int n_threads; /* 0 = all cores */
    char *matformer; /* MatFormer spec (loader/matformer.c); NULL = the whole model */
    struct gf_lora_request *lora; /* gemfa_model_options_add_lora, in order (lora.h) */
    size_t n_lora;
};

/* Progress of one load: the callback plus the fraction range the current
 * step covers. */
typedef struct gf_progress {
    gemfa_progress_fn fn;
    void *user;
} gf_progress;

/* Calls the progress callback; returns GEMFA_ERR_CANCELLED (with a message)
 * when it asks to stop, else GEMFA_OK. */
gemfa_status gf_progress_report(const gf_progress *p, float fraction, const char *stage);

/* A 64-byte aligned buffer owned by the model (freed by gemfa_model_free).
 * NULL on allocation failure (nothing is recorded then). */
void *gf_model_alloc(gemfa_model *m, size_t bytes);

/* bind.c: validates every tensor the config implies and binds (or converts)
 * it into m; m->hp and m->shards must be set.  Also counts parameters and
 * bytes.  Errors: TENSOR_MISSING, TENSOR_SHAPE, CONFIG (tensors beyond the
 * configured layers), OUT_OF_MEMORY, CANCELLED.  Progress covers
 * [f0, f1].  `matformer` (NULL = none): the spec of a sub-model load; then
 * m stays the whole model by its shapes, but layers the spec skips are left
 * unbound (zeroed) and converted gate/up/down of narrowed layers hold only
 * their first W rows/columns; gf_mf_derive cuts the rest.  Errors then also
 * those of gf_mf_plan_make. */
gemfa_status gf_bind_weights(gemfa_model *m, gemfa_weight_type type, int n_threads,
                             const gf_progress *p, float f0, float f1, const char *matformer);

/* generation.c: reads dir/generation_config.json (optional) into m->gen and
 * sets m->eog_ids from its eos_token_id, else from config.json (root, then
 * text_config; `config` may be NULL).  Ids outside [0, vocab) are dropped
 * when vocab > 0.  Errors: IO (unreadable), FORMAT (not JSON or not an
 * object), OUT_OF_MEMORY. */
gemfa_status gf_generation_load(const char *dir, const gf_json *config, int64_t vocab,
                                gemfa_model *m);

#endif
