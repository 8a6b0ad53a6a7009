/* matformer.h — MatFormer sub-models (docs/matformer.md): the spec text
 * (matformer_spec.c), checking it against a model and building a derived
 * model that borrows the base model's weights (matformer.c). */
#ifndef GF_MATFORMER_H
#define GF_MATFORMER_H

#include <stdint.h>

#include "gemfa.h"
#include "loader/hparams.h"

struct gemfa_model;

/* A named configuration from Google's slicing table. */
typedef struct gf_mf_preset {
    const char *name;
    int base_layers;       /* the checkpoint it slices: layers ... */
    int base_kv_shared;    /* ... num_kv_shared_layers ... */
    int64_t min_ffn;       /* ... and at least this FFN width in every layer */
    int64_t width;         /* every kept layer's width */
    int skip_first, skip_last; /* layers skipped (inclusive range) */
} gf_mf_preset;

/* A parsed spec: a preset, or widths (0, 1 or one per kept layer) and the
 * layers to skip, sorted ascending. */
typedef struct gf_mf_spec {
    const gf_mf_preset *preset;
    int n_widths;
    int64_t widths[GF_MAX_LAYERS];
    int n_skips;
    int skips[GF_MAX_LAYERS];
} gf_mf_spec;

/* Parses `text` (syntax only; see docs/matformer.md).  `who` names the
 * caller in messages.  Errors: INVALID_ARGUMENT (NULL/empty/garbage text,
 * numbers out of range, repeated skip indices, too many entries). */
gemfa_status gf_mf_parse(const char *text, const char *who, gf_mf_spec *out);

/* The slicing of one model's layers: keep[l] and width[l] per layer l of
 * `m` (widths of skipped layers unused). */
typedef struct gf_mf_plan {
    int n_layers;
    uint8_t keep[GF_MAX_LAYERS];
    int64_t width[GF_MAX_LAYERS];
} gf_mf_plan;

/* Checks a parsed spec against `m` and makes the plan.  Errors:
 * NO_WEIGHTS (vocabulary-only model), MODEL_MISMATCH (a preset for another
 * shape), INVALID_ARGUMENT (width 0 or above the layer's, width count,
 * skip index out of range, a skipped layer whose KV cache a kept layer
 * reads, nothing left), UNSUPPORTED (a partial width of a weight format
 * that cannot be sliced, or not at that width). */
gemfa_status gf_mf_plan_make(const struct gemfa_model *m, const gf_mf_spec *spec,
                             const char *who, gf_mf_plan *plan);

/* Builds the sub-model of `src` (a loaded or derived model) for `plan`;
 * `spec_text` is recorded for gemfa info.  Takes a reference on `src`
 * (the sub-model may borrow its matrices).  Errors: OUT_OF_MEMORY (nothing changed then). */
gemfa_status gf_mf_derive(const struct gemfa_model *src, const gf_mf_plan *plan,
                          const char *spec_text, struct gemfa_model **out);

/* Parse + plan + derive: what gemfa_model_derive_submodel and a load with
 * the matformer option run.  Errors: those of the three steps. */
gemfa_status gf_mf_derive_text(const struct gemfa_model *base, const char *spec, const char *who,
                               struct gemfa_model **out);

/* Frees what a derived model owns (not what it borrows) and the struct. */
void gf_mf_free_derived(struct gemfa_model *d);

#endif
