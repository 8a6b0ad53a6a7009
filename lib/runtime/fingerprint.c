/* fingerprint.c — see fingerprint.h.  The recipe (field order, sampling) is
 * part of the saved-state format (docs/session-state.md): change it only
 * together with GF_FINGERPRINT_RECIPE. */
#include "runtime/fingerprint.h"

#include <string.h>

#include "core/hash.h"

#define SAMPLE_WINDOWS 16
#define SAMPLE_BYTES 32

typedef struct fp {
    uint64_t h;
} fp;

static void put_bytes(fp *f, const void *p, size_t n) { f->h = gf_fnv64(f->h, p, n); }
static void put_i64(fp *f, int64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)v >> (8 * i));
    put_bytes(f, b, 8);
}
static void put_f32(fp *f, float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    put_i64(f, u);
}
static void put_tag(fp *f, const char *tag) { put_bytes(f, tag, strlen(tag) + 1); }

/* A small f32 vector, whole; NULL hashes as a marker. */
static void put_vec(fp *f, const char *tag, const float *v, int64_t n)
{
    put_tag(f, tag);
    put_i64(f, v ? n : -1);
    if (v)
        put_bytes(f, v, (size_t)n * sizeof(float));
}

/* SAMPLE_WINDOWS windows spread evenly over bytes[0..n). */
static void put_sample(fp *f, const void *bytes, size_t n)
{
    const unsigned char *p = bytes;
    if (n <= SAMPLE_WINDOWS * SAMPLE_BYTES) {
        put_bytes(f, p, n);
        return;
    }
    for (size_t i = 0; i < SAMPLE_WINDOWS; i++)
        put_bytes(f, p + i * ((n - SAMPLE_BYTES) / (SAMPLE_WINDOWS - 1)), SAMPLE_BYTES);
}

static void put_matrix(fp *f, const char *tag, const gf_matrix *m)
{
    put_tag(f, tag);
    put_i64(f, m->data ? (int64_t)m->dtype : -1);
    put_i64(f, m->rows);
    put_i64(f, m->cols);
    if (!m->data)
        return;
    put_sample(f, m->data, gf_matrix_row_bytes(m) * (size_t)m->rows);
    if (m->scales && gf_matrix_scales_bytes(m))
        put_sample(f, m->scales, gf_matrix_scales_bytes(m));
}

static void put_hparams(fp *f, const gf_hparams *hp)
{
    put_tag(f, "hparams");
    const int64_t ints[] = {hp->hidden_size, hp->n_layers, hp->n_heads, hp->n_kv_heads,
                            hp->head_dim, hp->vocab_size, hp->vocab_size_ple, hp->ple_dim,
                            hp->sliding_window, hp->n_kv_shared_layers,
                            hp->max_position_embeddings, hp->altup_num_inputs,
                            hp->altup_active_idx, hp->altup_correct_scale, hp->laurel_rank};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        put_i64(f, ints[i]);
    put_f32(f, hp->altup_coef_clip);
    put_f32(f, hp->rms_norm_eps);
    put_f32(f, hp->rope_theta_global);
    put_f32(f, hp->rope_theta_local);
    put_f32(f, hp->final_logit_softcapping);
    for (int l = 0; l < hp->n_layers; l++) {
        put_i64(f, hp->ffn_width[l]);
        put_f32(f, hp->sparsity[l]);
        put_i64(f, hp->is_sliding[l]);
        put_i64(f, hp->kv_source[l]);
    }
    const gf_mm_hparams *mm[2] = {&hp->vision, &hp->audio};
    for (int i = 0; i < 2; i++) {
        put_i64(f, mm[i]->present);
        put_i64(f, mm[i]->vocab_offset);
        put_i64(f, mm[i]->vocab_size);
        put_i64(f, mm[i]->hidden_size);
        put_f32(f, mm[i]->rms_norm_eps);
    }
}

static void put_embedder(fp *f, const char *tag, const gf_mm_embedder *e, int64_t width)
{
    put_tag(f, tag);
    put_i64(f, e->present);
    if (!e->present)
        return;
    put_matrix(f, "embedding", &e->embedding);
    put_vec(f, "hard_norm", e->hard_norm, width);
    put_matrix(f, "projection", &e->projection);
}

uint64_t gf_model_fingerprint(const gemfa_model *m)
{
    const gf_hparams *hp = &m->hp;
    const int64_t H = hp->hidden_size, K = hp->altup_num_inputs;
    fp f = {GF_FNV64_INIT};
    put_tag(&f, "libgemfa model fingerprint");
    put_i64(&f, GF_FINGERPRINT_RECIPE);
    put_hparams(&f, hp);
    put_i64(&f, (int64_t)m->weight_type);
    put_i64(&f, m->lm_head_tied);
    put_matrix(&f, "embed_tokens", &m->embed_tokens);
    if (!m->lm_head_tied)
        put_matrix(&f, "lm_head", &m->lm_head);
    put_matrix(&f, "embed_per_layer", &m->embed_per_layer);
    put_matrix(&f, "per_layer_model_proj", &m->per_layer_model_proj);
    put_vec(&f, "per_layer_proj_norm", m->per_layer_proj_norm, hp->ple_dim);
    for (int64_t i = 0; i + 1 < K; i++) {
        put_matrix(&f, "altup_proj", &m->altup_proj[i]);
        put_matrix(&f, "altup_unembed", &m->altup_unembed[i]);
    }
    put_vec(&f, "final_norm", m->final_norm, H);
    for (int l = 0; l < hp->n_layers; l++) {
        const gf_layer *y = &m->layers[l];
        put_i64(&f, l);
        put_matrix(&f, "q_proj", &y->q_proj);
        put_matrix(&f, "k_proj", &y->k_proj);
        put_matrix(&f, "v_proj", &y->v_proj);
        put_matrix(&f, "o_proj", &y->o_proj);
        put_vec(&f, "q_norm", y->q_norm, hp->head_dim);
        put_vec(&f, "k_norm", y->k_norm, hp->head_dim);
        put_vec(&f, "input_norm", y->input_norm, H);
        put_vec(&f, "post_attn_norm", y->post_attn_norm, H);
        put_vec(&f, "pre_ffn_norm", y->pre_ffn_norm, H);
        put_vec(&f, "post_ffn_norm", y->post_ffn_norm, H);
        put_matrix(&f, "gate_proj", &y->gate_proj);
        put_matrix(&f, "up_proj", &y->up_proj);
        put_matrix(&f, "down_proj", &y->down_proj);
        put_vec(&f, "altup_correct_output_scale", y->altup_correct_output_scale, H);
        put_vec(&f, "altup_correction_coefs", y->altup_correction_coefs, K * K);
        put_vec(&f, "altup_prediction_coefs", y->altup_prediction_coefs, K * K * K);
        put_matrix(&f, "altup_router", &y->altup_router);
        put_vec(&f, "altup_router_norm", y->altup_router_norm, H);
        put_matrix(&f, "laurel_left", &y->laurel_left);
        put_matrix(&f, "laurel_right", &y->laurel_right);
        put_vec(&f, "post_laurel_norm", y->post_laurel_norm, H);
        put_matrix(&f, "ple_gate", &y->ple_gate);
        put_matrix(&f, "ple_proj", &y->ple_proj);
        put_vec(&f, "post_ple_norm", y->post_ple_norm, H);
    }
    put_embedder(&f, "embed_vision", &m->embed_vision, hp->vision.hidden_size);
    put_embedder(&f, "embed_audio", &m->embed_audio, hp->audio.hidden_size);
    if (m->n_lora_adapters) { /* LoRA adapters merged at load (docs/lora.md) */
        put_tag(&f, "lora");
        put_i64(&f, m->n_lora_adapters);
        put_i64(&f, (int64_t)m->lora_fingerprint);
    }
    /* Options that will change weights or the cache (LoRA adapters and their
     * scales, a MatFormer selection, the KV type) are appended here as they
     * arrive.  A MatFormer sub-model: the checkpoint layers it runs (its
     * widths are in the settings above). */
    if (m->hp.base_layer) {
        put_tag(&f, "variant:matformer");
        for (int l = 0; l < m->hp.n_layers; l++)
            put_i64(&f, m->hp.base_layer[l]);
    } else {
        put_tag(&f, "variant:none");
    }
    return gf_hash_finish(f.h);
}
