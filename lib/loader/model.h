/* model.h — struct gemfa_model: the weights the forward pass reads, bound
 * from the checkpoint by the loader.  Everything here is read-only after
 * gemfa_model_load() returns.
 * The matrices are gf_matrix (kernels/weights.h). */
#ifndef GF_MODEL_H
#define GF_MODEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "gemfa.h"
#include "kernels/weights.h" /* gf_matrix and the weight formats */
#include "loader/hparams.h"

typedef struct gf_layer {
    /* attention */
    gf_matrix q_proj, k_proj, v_proj, o_proj; /* k/v .data NULL when KV-shared (unused) */
    const float *q_norm, *k_norm;             /* [head_dim] */
    const float *input_norm, *post_attn_norm; /* [H] */
    const float *pre_ffn_norm, *post_ffn_norm;
    /* MLP */
    gf_matrix gate_proj, up_proj, down_proj;  /* [F,H], [F,H], [H,F] */
    /* AltUp */
    const float *altup_correct_output_scale;  /* [H] */
    const float *altup_correction_coefs;      /* [K][K] (clamped to ±coef_clip at load) */
    const float *altup_prediction_coefs;      /* [K*K][K] */
    gf_matrix altup_router;                   /* modality_router [K, H] */
    const float *altup_router_norm;           /* [H] */
    /* LAuReL */
    gf_matrix laurel_left, laurel_right;      /* [rank,H], [H,rank] */
    const float *post_laurel_norm;            /* [H] */
    /* per-layer input (PLE) injection */
    gf_matrix ple_gate;                       /* per_layer_input_gate [P, H] */
    gf_matrix ple_proj;                       /* per_layer_projection [H, P] */
    const float *post_ple_norm;               /* [H] */
} gf_layer;

/* Multimodal token embedder (model.embed_vision / model.embed_audio). */
typedef struct gf_mm_embedder {
    int present;
    gf_matrix embedding;            /* [n, Hm] */
    const float *hard_norm;         /* hard_embedding_norm [Hm] */
    gf_matrix projection;           /* embedding_projection [H, Hm] */
} gf_mm_embedder;

/* Sampling defaults from generation_config.json (has_* = key present). */
typedef struct gf_generation_defaults {
    int has_do_sample, do_sample;
    int has_temperature; float temperature;
    int has_top_k; int32_t top_k;
    int has_top_p; float top_p;
    int has_min_p; float min_p;
    int has_repetition_penalty; float repetition_penalty;
} gf_generation_defaults;

struct gf_text;       /* tokenizer + chat template (lib/text) */
struct gf_shard_set;  /* mapped safetensors files (lib/loader) */

struct gemfa_model {
    char *path;
    int vocab_only;
    gf_hparams hp;
    gemfa_weight_type weight_type; /* resolved: AUTO becomes the stored type (stays AUTO
                                      only for a vocabulary-only load) */

    /* global tensors */
    gf_matrix embed_tokens;          /* [V or fewer rows, H]; missing rows read as zeros
                                        (embed_tokens.rows < hp.vocab_size, spec §11):
                                        their logits are 0 and they must never be sampled */
    gf_matrix lm_head;               /* = embed_tokens unless lm_head.weight is stored */
    int lm_head_tied;                /* lm_head is embed_tokens */
    gf_matrix embed_per_layer;       /* [V_ple, L*P]: mapped, gathered row by row */
    gf_matrix per_layer_model_proj;  /* [L*P, H] */
    const float *per_layer_proj_norm;/* [P] */
    gf_matrix altup_proj[GF_ALTUP_MAX - 1];    /* [H,H], K-1 of them */
    gf_matrix altup_unembed[GF_ALTUP_MAX - 1]; /* [H,H] */
    const float *final_norm;         /* [H] */
    gf_layer *layers;                /* n_layers */
    gf_mm_embedder embed_vision, embed_audio;

    /* parameter and byte counts (text decoder) */
    int64_t n_params, n_params_ple, weight_bytes;
    int64_t stored_bytes[4];         /* by gf_dtype, as stored in the files */

    /* special ids: from the tokenizer when it has the token, else config.json; -1 = none */
    int32_t bos_id, pad_id, unk_id, start_of_turn_id, end_of_turn_id;

    /* end-of-generation ids */
    int32_t *eog_ids;
    size_t n_eog_ids;
    gf_generation_defaults gen;

    struct gf_text *text;            /* NULL when the directory has no tokenizer */
    struct gf_shard_set *shards;     /* NULL for a vocabulary-only model */
    char *tensor_prefix;             /* "model.language_model.", "model." or
                                        "language_model.model." */
    struct gf_lora_set *lora;        /* LoRA adapters: set during gemfa_model_load only */
    int64_t n_lora_adapters, n_lora_merged; /* adapters applied, matrices they changed */
    uint64_t lora_fingerprint;       /* of the adapters' contents and scales (0: none) */
    void **owned;                    /* buffers owned by the model (converted weights) */
    size_t n_owned;

    /* MatFormer sub-models (loader/matformer.c).  A derived model owns its
     * hp arrays, layers[] and `owned` (sliced down_proj copies) and borrows
     * everything else (shards, text, eog_ids, path, tensor_prefix, the
     * global tensors, matrices of `base` it did not cut) from `base`, which
     * it keeps alive through base->refs. */
    struct gemfa_model *base;        /* the model it was derived from; NULL when loaded */
    atomic_int refs;                 /* holders: its own handle + models derived from it */
    char *matformer;                 /* the canonical spec it was sliced with; NULL if none */
};

/* The loaded model at the root of a chain of derived models. */
static inline const struct gemfa_model *gf_model_root(const struct gemfa_model *m)
{
    while (m->base)
        m = m->base;
    return m;
}

#endif
