/* hparams.h — the decoder's settings, read from config.json (spec §1).
 * Filled by config.c; read by the forward pass.  Per-layer arrays have
 * n_layers entries and are owned by the struct (gf_hparams_free). */
#ifndef GF_HPARAMS_H
#define GF_HPARAMS_H

#include <stdint.h>

#define GF_MAX_LAYERS 512
#define GF_ALTUP_MAX 8 /* altup_num_inputs upper bound (E4B: 4) */

typedef struct gf_mm_hparams {
    int present;          /* the sub-config exists */
    int64_t vocab_offset; /* first id of the range */
    int64_t vocab_size;   /* ids in the range */
    int64_t hidden_size;  /* width of its embedding table */
    float rms_norm_eps;
} gf_mm_hparams;

typedef struct gf_hparams {
    int64_t hidden_size;        /* H */
    int n_layers;               /* L */
    int n_heads, n_kv_heads;
    int64_t head_dim;           /* d */
    int64_t vocab_size;         /* V: rows of embed_tokens / logits */
    int64_t vocab_size_ple;     /* V_ple */
    int64_t ple_dim;            /* P = hidden_size_per_layer_input */
    int64_t sliding_window;     /* W */
    int n_kv_shared_layers;
    int64_t max_position_embeddings;
    int altup_num_inputs;       /* K */
    int altup_active_idx;
    int altup_correct_scale;    /* bool */
    float altup_coef_clip;      /* 0 = no clamp (config value null) */
    int64_t laurel_rank;
    float rms_norm_eps;
    float rope_theta_global;    /* full layers */
    float rope_theta_local;     /* sliding layers */
    float final_logit_softcapping; /* 0 = none */

    /* per layer */
    int64_t *ffn_width;         /* F_l */
    float *sparsity;            /* activation_sparsity_pattern, 0 = dense */
    uint8_t *is_sliding;        /* 1 sliding, 0 full */
    int *kv_source;             /* layer whose KV cache layer l reads (itself if own) */

    /* MatFormer sub-models (loader/matformer.c): a sliced model keeps the
     * checkpoint's per-layer embedding tables whole, so layer l reads slice
     * base_layer[l] of ple_layers.  NULL / 0 for a model as stored:
     * use gf_hp_base_layer() and gf_hp_ple_layers(). */
    int *base_layer;
    int ple_layers;

    int32_t bos_id, eos_id, pad_id; /* text_config ids, -1 if absent */

    int nested;                 /* settings came from "text_config" (multimodal export) */
    int tie_word_embeddings;    /* LM head = embed_tokens unless lm_head.weight is stored */

    gf_mm_hparams vision, audio;
} gf_hparams;

void gf_hparams_free(gf_hparams *hp);

/* The checkpoint layer that decoder layer l is (l unless sliced). */
static inline int gf_hp_base_layer(const gf_hparams *hp, int l)
{
    return hp->base_layer ? hp->base_layer[l] : l;
}
/* Per-layer slices in the PLE tables (embed_tokens_per_layer columns / P). */
static inline int gf_hp_ple_layers(const gf_hparams *hp)
{
    return hp->ple_layers > 0 ? hp->ple_layers : hp->n_layers;
}

#endif
