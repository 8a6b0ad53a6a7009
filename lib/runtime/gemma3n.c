/* gemma3n.c — the forward pass, top to bottom as spec §3–§6 describe it.
 * Every matrix product goes through gf_linear (lib/kernels); the rest are
 * plain loops over rows.  Activations of a batch live in the context's
 * scratch: row-major [rows][width], AltUp streams as [K][rows][H]. */
#include "runtime/gemma3n.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"
#include "kernels/linear.h"
#include "runtime/attention.h"
#include "runtime/ops.h"

struct gf_scratch {
    int64_t rows;                /* capacity */
    float *x;                    /* [rows][H] input embeddings */
    float *pli;                  /* [rows][L·P] per-layer inputs */
    float *streams;              /* [K][rows][H] AltUp streams (layer input, then output) */
    float *pred;                 /* [K][rows][H] AltUp predictions */
    float *a_n;                  /* [rows][H] normed active prediction */
    float *q, *k, *v;            /* [rows][n_h·d], [rows][n_kv·d] ×2 */
    float *heads;                /* [rows][n_h·d] attention output per head */
    float *attn;                 /* [rows][H] o_proj output */
    float *laurel_mid, *laurel;  /* [rows][rank], [rows][H] */
    float *attn_laurel;          /* [rows][H] */
    float *ffn_in;               /* [rows][H] pre-FFN normed; final hidden at the end */
    float *gate, *up;            /* [rows][F_max] */
    float *ffn, *out;            /* [rows][H] down_proj output, layer output */
    float *router;               /* [rows][K] router coefficients */
    float *ple_gate;             /* [rows][P] */
    float *inj;                  /* [rows][H] PLE injection */
    float *tmp;                  /* [rows][max(H, L·P, H_mm)] */
    float *rope_cos[2], *rope_sin[2]; /* [rows][d/2]: [0] sliding θ, [1] full θ */
    float *block;                /* the one allocation all of the above point into */
    size_t floats;
};

/* ------------------------------------------------------------------------
 * Scratch
 * ---------------------------------------------------------------------- */

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

struct gf_scratch *gf_scratch_new(const gemfa_model *m, int64_t rows)
{
    const gf_hparams *hp = &m->hp;
    const int64_t H = hp->hidden_size, LP = (int64_t)hp->n_layers * hp->ple_dim;
    const int64_t K = hp->altup_num_inputs, d = hp->head_dim;
    int64_t f_max = 0;
    for (int l = 0; l < hp->n_layers; l++)
        f_max = max64(f_max, hp->ffn_width[l]);
    int64_t tmp_width = max64(H, LP);
    if (m->embed_vision.present)
        tmp_width = max64(tmp_width, m->embed_vision.embedding.cols);
    if (m->embed_audio.present)
        tmp_width = max64(tmp_width, m->embed_audio.embedding.cols);

    struct gf_scratch *s = gf_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->rows = rows;
    struct { float **p; int64_t width; } parts[] = {
        {&s->x, H}, {&s->pli, LP}, {&s->streams, K * H}, {&s->pred, K * H}, {&s->a_n, H},
        {&s->q, hp->n_heads * d}, {&s->k, hp->n_kv_heads * d}, {&s->v, hp->n_kv_heads * d},
        {&s->heads, hp->n_heads * d}, {&s->attn, H}, {&s->laurel_mid, hp->laurel_rank},
        {&s->laurel, H}, {&s->attn_laurel, H}, {&s->ffn_in, H}, {&s->gate, f_max},
        {&s->up, f_max}, {&s->ffn, H}, {&s->out, H}, {&s->router, K}, {&s->ple_gate, hp->ple_dim},
        {&s->inj, H}, {&s->tmp, tmp_width}, {&s->rope_cos[0], d / 2}, {&s->rope_sin[0], d / 2},
        {&s->rope_cos[1], d / 2}, {&s->rope_sin[1], d / 2},
    };
    const size_t n_parts = sizeof parts / sizeof parts[0];
    size_t total = 0;
    for (size_t i = 0; i < n_parts; i++) /* each part starts on a 64-byte line */
        total += (gf_mul_size((size_t)rows, (size_t)parts[i].width) + 15) & ~(size_t)15;
    s->block = gf_alloc_aligned(gf_mul_size(total, sizeof(float)));
    if (!s->block) {
        gf_free(s);
        return NULL;
    }
    s->floats = total;
    float *p = s->block;
    for (size_t i = 0; i < n_parts; i++) {
        *parts[i].p = p;
        p += ((size_t)rows * (size_t)parts[i].width + 15) & ~(size_t)15;
    }
    return s;
}

void gf_scratch_free(struct gf_scratch *s)
{
    if (!s)
        return;
    gf_free_aligned(s->block);
    gf_free(s);
}

/* ------------------------------------------------------------------------
 * Tokens and embeddings (spec §3)
 * ---------------------------------------------------------------------- */

/* The multimodal embedder for an id >= V_ple (HF: audio from its offset
 * on, vision from its offset up to the audio offset), or NULL when the
 * checkpoint cannot embed it. */
static const gf_mm_embedder *mm_embedder(const gemfa_model *m, int64_t id,
                                         const gf_mm_hparams **mh)
{
    const gf_hparams *hp = &m->hp;
    const gf_mm_embedder *e = NULL;
    if (hp->audio.present && id >= hp->audio.vocab_offset) {
        *mh = &hp->audio;
        e = m->embed_audio.present ? &m->embed_audio : NULL;
    } else if (hp->vision.present && id >= hp->vision.vocab_offset) {
        *mh = &hp->vision;
        e = m->embed_vision.present ? &m->embed_vision : NULL;
    }
    if (e && id - (*mh)->vocab_offset >= e->embedding.rows)
        e = NULL; /* beyond the embedder's table */
    return e;
}

gemfa_status gf_check_token(const gemfa_model *m, int32_t id)
{
    const gf_hparams *hp = &m->hp;
    if (id < 0 || id >= hp->vocab_size)
        return gf_error(GEMFA_ERR_INVALID_TOKEN, "token id %d is outside the vocabulary [0, %lld)",
                        (int)id, (long long)hp->vocab_size);
    const gf_mm_hparams *mh = NULL;
    if (id >= hp->vocab_size_ple && !mm_embedder(m, id, &mh))
        return gf_error(GEMFA_ERR_INVALID_TOKEN,
                        "token id %d is a multimodal id (>= vocab_size_per_layer_input %lld) and "
                        "the checkpoint has no embed_vision/embed_audio row for it",
                        (int)id, (long long)hp->vocab_size_ple);
    return GEMFA_OK;
}

/* x = E[id]·sqrt(H) for text ids (zeros for rows the table lacks); for
 * multimodal ids the HF hard embedding, unscaled:
 * RMSNorm_noscale(Wproj · RMSNorm(emb[id − offset]; hard_norm)). */
static void embed_row(gemfa_context *ctx, int32_t id, float *x, float *tmp)
{
    const gemfa_model *m = ctx->model;
    const int64_t H = m->hp.hidden_size;
    if (id >= m->hp.vocab_size_ple) {
        const gf_mm_hparams *mh = NULL;
        const gf_mm_embedder *e = mm_embedder(m, id, &mh);
        gf_matrix_row_f32(&e->embedding, id - mh->vocab_offset, tmp);
        gf_rmsnorm(tmp, e->hard_norm, e->embedding.cols, mh->rms_norm_eps, tmp);
        gf_linear(ctx->pool, &e->projection, tmp, 1, x);
        gf_rmsnorm(x, NULL, H, mh->rms_norm_eps, x);
        return;
    }
    if (id >= m->embed_tokens.rows) {
        memset(x, 0, (size_t)H * sizeof(float));
        return;
    }
    const float scale = (float)sqrt((double)H);
    gf_matrix_row_f32(&m->embed_tokens, id, x);
    for (int64_t i = 0; i < H; i++)
        x[i] *= scale;
}

/* pli[t][l] = (RMSNorm(Wplp·x / sqrt(H) sliced per layer; proj_norm) +
 *              Eple[id']·sqrt(P)) / sqrt(2), id' = id for text, 0 otherwise.
 * The per-layer table is gathered one row per token from its mapping. */
static void per_layer_inputs(gemfa_context *ctx, const gf_batch *b)
{
    const gemfa_model *m = ctx->model;
    const gf_hparams *hp = &m->hp;
    struct gf_scratch *S = ctx->scratch;
    const int64_t P = hp->ple_dim, LP = (int64_t)hp->n_layers * P;
    const float table_scale = (float)sqrt((double)P);
    const float proj_scale = (float)(1.0 / sqrt((double)hp->hidden_size));
    const float inv_sqrt2 = (float)(1.0 / sqrt(2.0));

    for (int64_t t = 0; t < b->n; t++) {
        const int64_t id = b->ids[t] < hp->vocab_size_ple ? b->ids[t] : 0; /* HF: pad row */
        float *e = S->pli + t * LP;
        if (id < m->embed_per_layer.rows) {
            gf_matrix_row_f32(&m->embed_per_layer, id, e);
            for (int64_t i = 0; i < LP; i++)
                e[i] *= table_scale;
        } else {
            memset(e, 0, (size_t)LP * sizeof(float));
        }
    }
    gf_linear(ctx->pool, &m->per_layer_model_proj, S->x, b->n, S->tmp);
    for (int64_t t = 0; t < b->n; t++)
        for (int l = 0; l < hp->n_layers; l++) {
            float *q = S->tmp + t * LP + l * P, *e = S->pli + t * LP + l * P;
            for (int64_t i = 0; i < P; i++)
                q[i] *= proj_scale;
            gf_rmsnorm(q, m->per_layer_proj_norm, P, hp->rms_norm_eps, q);
            for (int64_t i = 0; i < P; i++)
                e[i] = (q[i] + e[i]) * inv_sqrt2;
        }
}

/* s_0 = x, s_k = match(Waltup_{k−1}·x, x) for k >= 1 (spec §3.3). */
static void initial_streams(gemfa_context *ctx, int64_t n)
{
    const gemfa_model *m = ctx->model;
    struct gf_scratch *S = ctx->scratch;
    const int64_t H = m->hp.hidden_size, stride = S->rows * H;
    memcpy(S->streams, S->x, (size_t)(n * H) * sizeof(float));
    for (int k = 1; k < m->hp.altup_num_inputs; k++) {
        float *s = S->streams + k * stride;
        gf_linear(ctx->pool, &m->altup_proj[k - 1], S->x, n, s);
        for (int64_t t = 0; t < n; t++)
            gf_match_magnitude(s + t * H, H, gf_rms(S->x + t * H, H));
    }
}

static void rope_tables(gemfa_context *ctx, const gf_batch *b)
{
    const gf_hparams *hp = &ctx->model->hp;
    struct gf_scratch *S = ctx->scratch;
    const int64_t half = hp->head_dim / 2;
    for (int64_t t = 0; t < b->n; t++) {
        gf_rope_angles(b->pos[t], hp->head_dim, hp->rope_theta_local, S->rope_cos[0] + t * half,
                       S->rope_sin[0] + t * half);
        gf_rope_angles(b->pos[t], hp->head_dim, hp->rope_theta_global,
                       S->rope_cos[1] + t * half, S->rope_sin[1] + t * half);
    }
}

/* ------------------------------------------------------------------------
 * One decoder layer (spec §4)
 * ---------------------------------------------------------------------- */

static void dump(gemfa_context *ctx, const char *name, int layer, const float *data,
                 int n_streams, int64_t n_rows, int64_t width)
{
    if (ctx->dump)
        ctx->dump(ctx->dump_user, name, layer, data, n_streams, ctx->scratch->rows * width,
                  n_rows, width);
}

/* router(z) = tanh(Wrouter · RMSNorm(z; router_norm) / H) → S->router [n][K]. */
static void altup_router(gemfa_context *ctx, const gf_layer *L, const float *z, int64_t n)
{
    const gf_hparams *hp = &ctx->model->hp;
    struct gf_scratch *S = ctx->scratch;
    const int64_t H = hp->hidden_size, K = hp->altup_num_inputs;
    const float inv_h = (float)(1.0 / (double)H);
    for (int64_t t = 0; t < n; t++) {
        float *y = S->tmp + t * H;
        gf_rmsnorm(z + t * H, L->altup_router_norm, H, hp->rms_norm_eps, y);
        for (int64_t i = 0; i < H; i++)
            y[i] *= inv_h;
    }
    gf_linear(ctx->pool, &L->altup_router, S->tmp, n, S->router);
    for (int64_t i = 0; i < n * K; i++)
        S->router[i] = tanhf(S->router[i]);
}

/* p_j = s_j + Σ_i C[j][i]·s_i with C = Wpred · router(s_active) (§4.2). */
static void altup_predict(gemfa_context *ctx, const gf_layer *L, int64_t n)
{
    const gf_hparams *hp = &ctx->model->hp;
    struct gf_scratch *S = ctx->scratch;
    const int64_t H = hp->hidden_size, K = hp->altup_num_inputs, stride = S->rows * H;
    altup_router(ctx, L, S->streams + hp->altup_active_idx * stride, n);
    for (int64_t t = 0; t < n; t++) {
        const float *r = S->router + t * K;
        float C[GF_ALTUP_MAX][GF_ALTUP_MAX];
        for (int64_t j = 0; j < K; j++)
            for (int64_t i = 0; i < K; i++) {
                const float *w = L->altup_prediction_coefs + (j * K + i) * K;
                float c = 0.0f;
                for (int64_t q = 0; q < K; q++)
                    c += w[q] * r[q];
                C[j][i] = c;
            }
        for (int64_t j = 0; j < K; j++) {
            float *p = S->pred + j * stride + t * H;
            memcpy(p, S->streams + j * stride + t * H, (size_t)H * sizeof(float));
            for (int64_t i = 0; i < K; i++) {
                const float *s = S->streams + i * stride + t * H;
                for (int64_t e = 0; e < H; e++)
                    p[e] += C[j][i] * s[e];
            }
        }
    }
}

/* Per-head RMSNorm with gain `w` (NULL: none), then RoPE when cos_t given. */
static void norm_heads(float *x, int64_t n, int64_t n_heads, int64_t d, const float *w,
                       float eps, const float *cos_t, const float *sin_t)
{
    for (int64_t t = 0; t < n; t++)
        for (int64_t h = 0; h < n_heads; h++) {
            float *v = x + (t * n_heads + h) * d;
            gf_rmsnorm(v, w, d, eps, v);
            if (cos_t)
                gf_rope_apply(v, d, cos_t + t * (d / 2), sin_t + t * (d / 2));
        }
}

/* Queries always; keys/values only in layers that own a cache (§4.3, §5). */
static void attention(gemfa_context *ctx, const gf_batch *b, int l)
{
    const gf_hparams *hp = &ctx->model->hp;
    const gf_layer *L = &ctx->model->layers[l];
    struct gf_scratch *S = ctx->scratch;
    const int64_t n = b->n, d = hp->head_dim;
    const int type = hp->is_sliding[l] ? 0 : 1;
    const float *cos_t = S->rope_cos[type], *sin_t = S->rope_sin[type];

    gf_linear(ctx->pool, &L->q_proj, S->a_n, n, S->q);
    norm_heads(S->q, n, hp->n_heads, d, L->q_norm, hp->rms_norm_eps, cos_t, sin_t);
    if (hp->kv_source[l] == l) {
        gf_linear(ctx->pool, &L->k_proj, S->a_n, n, S->k);
        norm_heads(S->k, n, hp->n_kv_heads, d, L->k_norm, hp->rms_norm_eps, cos_t, sin_t);
        gf_linear(ctx->pool, &L->v_proj, S->a_n, n, S->v);
        norm_heads(S->v, n, hp->n_kv_heads, d, NULL, hp->rms_norm_eps, NULL, NULL);
        gf_kv_store(hp, l, b, S->k, S->v);
    }
    gf_attend(hp, l, b, S->q, S->heads, ctx->scores);
    gf_linear(ctx->pool, &L->o_proj, S->heads, n, S->attn);
}

/* laurel = a_n + RMSNorm(Wright·(Wleft·a_n); post_laurel_norm) (§4.4). */
static void laurel(gemfa_context *ctx, const gf_layer *L, int64_t n)
{
    const gf_hparams *hp = &ctx->model->hp;
    struct gf_scratch *S = ctx->scratch;
    const int64_t H = hp->hidden_size;
    gf_linear(ctx->pool, &L->laurel_left, S->a_n, n, S->laurel_mid);
    gf_linear(ctx->pool, &L->laurel_right, S->laurel_mid, n, S->laurel);
    for (int64_t t = 0; t < n; t++) {
        float *y = S->laurel + t * H;
        const float *a = S->a_n + t * H;
        gf_rmsnorm(y, L->post_laurel_norm, H, hp->rms_norm_eps, y);
        for (int64_t i = 0; i < H; i++)
            y[i] += a[i];
    }
}

/* out = attn_laurel + RMSNorm(Wdown·(gelu(sparse(Wgate·h)) ⊙ Wup·h)) with
 * h = RMSNorm(attn_laurel; pre_ffn_norm) (§4.6). */
static void mlp(gemfa_context *ctx, int l, int64_t n)
{
    const gf_hparams *hp = &ctx->model->hp;
    const gf_layer *L = &ctx->model->layers[l];
    struct gf_scratch *S = ctx->scratch;
    const int64_t H = hp->hidden_size, F = hp->ffn_width[l];
    const float z = ctx->sparsity_z[l];
    for (int64_t t = 0; t < n; t++)
        gf_rmsnorm(S->attn_laurel + t * H, L->pre_ffn_norm, H, hp->rms_norm_eps,
                   S->ffn_in + t * H);
    gf_linear(ctx->pool, &L->gate_proj, S->ffn_in, n, S->gate);
    if (z > 0.0f)
        for (int64_t t = 0; t < n; t++)
            gf_gaussian_topk(S->gate + t * F, F, z);
    gf_linear(ctx->pool, &L->up_proj, S->ffn_in, n, S->up);
    for (int64_t i = 0; i < n * F; i++)
        S->gate[i] = gf_gelu_tanh(S->gate[i]) * S->up[i];
    gf_linear(ctx->pool, &L->down_proj, S->gate, n, S->ffn);
    dump(ctx, "ffn_out", l, S->ffn, 1, n, H);
    for (int64_t t = 0; t < n; t++) {
        float *o = S->out + t * H;
        const float *al = S->attn_laurel + t * H;
        gf_rmsnorm(S->ffn + t * H, L->post_ffn_norm, H, hp->rms_norm_eps, o);
        for (int64_t i = 0; i < H; i++)
            o[i] += al[i];
    }
}

/* c_k = p_k + b_k·(out − p_active), b = clamp(Wcorr)·router(out) + 1 (§4.7);
 * written over the layer's input streams. */
static void altup_correct(gemfa_context *ctx, const gf_layer *L, int64_t n)
{
    const gf_hparams *hp = &ctx->model->hp;
    struct gf_scratch *S = ctx->scratch;
    const int64_t H = hp->hidden_size, K = hp->altup_num_inputs, stride = S->rows * H;
    const float clip = hp->altup_coef_clip;
    altup_router(ctx, L, S->out, n);
    for (int64_t t = 0; t < n; t++) {
        const float *r = S->router + t * K;
        float bk[GF_ALTUP_MAX];
        for (int64_t k = 0; k < K; k++) {
            float c = 0.0f;
            for (int64_t i = 0; i < K; i++) {
                float w = L->altup_correction_coefs[k * K + i];
                if (clip > 0.0f)
                    w = w > clip ? clip : (w < -clip ? -clip : w);
                c += w * r[i];
            }
            bk[k] = c + 1.0f;
        }
        const float *o = S->out + t * H, *pa = S->pred + hp->altup_active_idx * stride + t * H;
        for (int64_t k = 0; k < K; k++) {
            const float *p = S->pred + k * stride + t * H;
            float *c = S->streams + k * stride + t * H;
            for (int64_t i = 0; i < H; i++)
                c[i] = p[i] + bk[k] * (o[i] - pa[i]);
        }
    }
}

/* f = RMSNorm(Wproj·(gelu(Wgate·(c_active ⊙ scale)) ⊙ pli_l)); streams
 * 1..K−1 += f, as HF does (§4.8). */
static void ple_injection(gemfa_context *ctx, int l, int64_t n)
{
    const gf_hparams *hp = &ctx->model->hp;
    const gf_layer *L = &ctx->model->layers[l];
    struct gf_scratch *S = ctx->scratch;
    const int64_t H = hp->hidden_size, K = hp->altup_num_inputs, P = hp->ple_dim;
    const int64_t stride = S->rows * H, LP = (int64_t)hp->n_layers * P;
    const float *active = S->streams + hp->altup_active_idx * stride;
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < H; i++)
            S->tmp[t * H + i] = hp->altup_correct_scale
                                    ? active[t * H + i] * L->altup_correct_output_scale[i]
                                    : active[t * H + i];
    gf_linear(ctx->pool, &L->ple_gate, S->tmp, n, S->ple_gate);
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < P; i++)
            S->ple_gate[t * P + i] =
                gf_gelu_tanh(S->ple_gate[t * P + i]) * S->pli[t * LP + l * P + i];
    gf_linear(ctx->pool, &L->ple_proj, S->ple_gate, n, S->inj);
    for (int64_t t = 0; t < n; t++)
        gf_rmsnorm(S->inj + t * H, L->post_ple_norm, H, hp->rms_norm_eps, S->inj + t * H);
    dump(ctx, "ple_injection", l, S->inj, 1, n, H);
    for (int64_t k = 1; k < K; k++)
        for (int64_t i = 0; i < n * H; i++)
            S->streams[k * stride + i] += S->inj[i];
}

static void decoder_layer(gemfa_context *ctx, const gf_batch *b, int l)
{
    const gf_hparams *hp = &ctx->model->hp;
    const gf_layer *L = &ctx->model->layers[l];
    struct gf_scratch *S = ctx->scratch;
    const int64_t n = b->n, H = hp->hidden_size, K = hp->altup_num_inputs;
    const float *a = S->pred + hp->altup_active_idx * S->rows * H;
    const float inv_sqrt2 = (float)(1.0 / sqrt(2.0));

    altup_predict(ctx, L, n);
    dump(ctx, "predictions", l, S->pred, (int)K, n, H);
    for (int64_t t = 0; t < n; t++)
        gf_rmsnorm(a + t * H, L->input_norm, H, hp->rms_norm_eps, S->a_n + t * H);
    laurel(ctx, L, n);
    dump(ctx, "laurel_out", l, S->laurel, 1, n, H);
    attention(ctx, b, l);
    dump(ctx, "attn_out", l, S->attn, 1, n, H);
    for (int64_t t = 0; t < n; t++) { /* (a + RMSNorm(attn) + laurel) / sqrt(2) (§4.5) */
        float *y = S->attn_laurel + t * H;
        gf_rmsnorm(S->attn + t * H, L->post_attn_norm, H, hp->rms_norm_eps, y);
        for (int64_t i = 0; i < H; i++)
            y[i] = (a[t * H + i] + y[i] + S->laurel[t * H + i]) * inv_sqrt2;
    }
    dump(ctx, "attn_laurel", l, S->attn_laurel, 1, n, H);
    mlp(ctx, l, n);
    altup_correct(ctx, L, n);
    ple_injection(ctx, l, n);
    dump(ctx, "streams_out", l, S->streams, (int)K, n, H);
}

/* ------------------------------------------------------------------------
 * Output (spec §6), for rows [from, n)
 * ---------------------------------------------------------------------- */

static void output_logits(gemfa_context *ctx, const gf_batch *b)
{
    const gemfa_model *m = ctx->model;
    const gf_hparams *hp = &m->hp;
    struct gf_scratch *S = ctx->scratch;
    const int64_t H = hp->hidden_size, K = hp->altup_num_inputs, V = hp->vocab_size;
    const int64_t from = b->logits_from, rows = b->n - from, stride = S->rows * H;
    if (rows <= 0)
        return;
    const float *s0 = S->streams + from * H;
    float *acc = S->out, *h = S->ffn_in;
    memcpy(acc, s0, (size_t)(rows * H) * sizeof(float));
    for (int64_t k = 1; k < K; k++) {
        gf_linear(ctx->pool, &m->altup_unembed[k - 1], S->streams + k * stride + from * H, rows,
                  S->tmp);
        for (int64_t t = 0; t < rows; t++) {
            float *y = S->tmp + t * H;
            gf_match_magnitude(y, H, gf_rms(s0 + t * H, H));
            for (int64_t i = 0; i < H; i++)
                acc[t * H + i] += y[i];
        }
    }
    for (int64_t t = 0; t < rows; t++) {
        for (int64_t i = 0; i < H; i++)
            acc[t * H + i] /= (float)K;
        gf_rmsnorm(acc + t * H, m->final_norm, H, hp->rms_norm_eps, h + t * H);
    }
    dump(ctx, "final_hidden", -1, h, 1, rows, H);
    if (m->lm_head.rows == V) {
        gf_linear(ctx->pool, &m->lm_head, h, rows, b->logits);
    } else { /* a table with fewer rows than the vocabulary: the rest are zeros */
        for (int64_t t = 0; t < rows; t++) {
            float *z = b->logits + t * V;
            gf_linear(ctx->pool, &m->lm_head, h + t * H, 1, z);
            memset(z + m->lm_head.rows, 0, (size_t)(V - m->lm_head.rows) * sizeof(float));
        }
    }
    if (ctx->dump)
        ctx->dump(ctx->dump_user, "logits_raw", -1, b->logits, 1, rows * V, rows, V);
    gf_softcap(b->logits, rows * V, hp->final_logit_softcapping);
}

/* ------------------------------------------------------------------------
 * The whole pass
 * ---------------------------------------------------------------------- */

static gemfa_status cancelled(int where)
{
    if (where < 0)
        return gf_error(GEMFA_ERR_CANCELLED, "decode cancelled by the callback before the output");
    return gf_error(GEMFA_ERR_CANCELLED, "decode cancelled by the callback before layer %d", where);
}

gemfa_status gf_forward(gemfa_context *ctx, const gf_batch *b)
{
    const gf_hparams *hp = &ctx->model->hp;
    struct gf_scratch *S = ctx->scratch;
    const int64_t H = hp->hidden_size, K = hp->altup_num_inputs;

    for (int64_t t = 0; t < b->n; t++)
        embed_row(ctx, b->ids[t], S->x + t * H, S->tmp);
    dump(ctx, "inputs_embeds", -1, S->x, 1, b->n, H);
    per_layer_inputs(ctx, b);
    dump(ctx, "per_layer_inputs", -1, S->pli, 1, b->n, (int64_t)hp->n_layers * hp->ple_dim);
    initial_streams(ctx, b->n);
    dump(ctx, "streams_init", -1, S->streams, (int)K, b->n, H);
    rope_tables(ctx, b);
    for (int l = 0; l < hp->n_layers; l++) {
        if (gf_context_cancelled(ctx))
            return cancelled(l);
        decoder_layer(ctx, b, l);
    }
    if (b->logits_from < b->n && gf_context_cancelled(ctx))
        return cancelled(-1);
    output_logits(ctx, b);
    return GEMFA_OK;
}
