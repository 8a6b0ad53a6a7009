/* gemma3n.c — the forward pass, top to bottom as spec §3–§6 describe it.
 * Every matrix product goes through gf_linear_multi (lib/kernels), fused
 * where matrices share their input (q/k/v with LAuReL's left, gate/up,
 * the AltUp projections).  Between the products, "row passes" do the
 * per-token work (norms, RoPE, AltUp mixing, GELU, sparsity) with the
 * vectorised helpers of vec.h, spread over the thread pool when the batch
 * is large enough.  Activations of a batch live in the context's scratch:
 * row-major [rows][width], AltUp streams as [K][rows][H]. */
#include "runtime/gemma3n.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/status.h"
#include "kernels/linear.h"
#include "runtime/attention.h"
#include "runtime/ops.h"
#include "runtime/vec.h"

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
    const int64_t H = hp->hidden_size, LP = (int64_t)gf_hp_ple_layers(hp) * hp->ple_dim;
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

/* ------------------------------------------------------------------------
 * Running a pass: per-pass state, row passes, matrix products, timing
 * ---------------------------------------------------------------------- */

/* What every step of one pass reads (on the caller's stack). */
typedef struct fwd {
    gemfa_context *ctx;
    const gemfa_model *m;
    const gf_hparams *hp;
    struct gf_scratch *S;
    const gf_vec_ops *vec;
    const gf_batch *b;
    int l;              /* current layer */
    const gf_layer *L;
    int64_t from;       /* output rows start here (output_logits) */
} fwd;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double prof_begin(const fwd *f) { return f->ctx->profile ? now_s() : 0; }
static void prof_end(const fwd *f, gf_prof_part part, double t0, int dispatches)
{
    gf_profile *p = f->ctx->profile;
    if (!p)
        return;
    p->seconds[part] += now_s() - t0;
    p->calls[part]++;
    p->dispatches += dispatches;
}

typedef void (*row_fn)(const fwd *f, int64_t t);

typedef struct rows_job {
    const fwd *f;
    row_fn fn;
    int64_t n;
    atomic_llong next;
} rows_job;

static void rows_task(void *arg, int i, int n_threads)
{
    (void)i;
    (void)n_threads;
    rows_job *job = arg;
    for (;;) {
        const int64_t t = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
        if (t >= job->n)
            break;
        job->fn(job->f, t);
    }
}

/* Below this many floats touched (~0.25 ms of work), a row pass runs on
 * the calling thread: a decode step's rows, even 4 of them, and the light
 * passes of a prompt cost less than waking a worker, which takes 0.1-0.5
 * ms when neighbours load the cores (a few µs when they do not). */
#define ROWS_PARALLEL_MIN_FLOATS (1 << 20)

/* fn(f, t) for t < n, spread over the pool when the rows are worth it;
 * `width` is roughly the floats each row touches. */
static void for_rows(const fwd *f, int64_t n, int64_t width, row_fn fn)
{
    const double t0 = prof_begin(f);
    rows_job job = {.f = f, .fn = fn, .n = n};
    atomic_init(&job.next, 0);
    const int parallel = n > 1 && gf_threadpool_size(f->ctx->pool) > 1 &&
                         n * width >= ROWS_PARALLEL_MIN_FLOATS;
    if (parallel)
        gf_threadpool_run(f->ctx->pool, rows_task, &job);
    else
        rows_task(&job, 0, 1);
    prof_end(f, GF_PROF_ROWS, t0, parallel);
}

/* Products of at most this many multiply-adds run on the calling thread
 * (pool NULL): a decode step's LAuReL right and PLE gate/projection
 * (≤ 0.5 M, ~25 µs of int8 work; 105 of the step's pool runs).  A pool run
 * costs a few µs when the workers spin, but 0.1-0.5 ms when other jobs
 * hold the cores; A/B on E4B int8 while a build ran: 549-588 ms per step
 * against 580-674 (3 pairs of 4 faster); a quiet machine loses ~1 ms. */
#define SMALL_PRODUCT_MACS ((int64_t)1 << 19)

/* Thread-pool runs gf_linear issues for these shapes: 2 on the GEMM path
 * (pack, multiply), 1 on the row kernels unless the product is small
 * (lib/kernels/linear.c); an estimate for the profile only. */
static int linear_dispatches(const fwd *f, const gf_matrix *W, int64_t rows, int64_t n)
{
    if (gf_threadpool_size(f->ctx->pool) == 1 || rows * W->cols * n <= SMALL_PRODUCT_MACS)
        return 0;
    if (n >= gf_gemm_min_tokens(W->dtype))
        return 2;
    return rows * W->cols * n >= (1 << 16);
}

/* y[i] = W[i]·x for matrices sharing their input: one pass over the
 * threads (and one activation quantization) per group of up to
 * GF_LINEAR_MAX_MATS. */
static void linear_multi(const fwd *f, int n_mats, const gf_matrix *const *W, const float *x,
                         int64_t n, float *const *y, gf_prof_part part)
{
    for (int i = 0; i < n_mats; i += GF_LINEAR_MAX_MATS) {
        const int k = n_mats - i < GF_LINEAR_MAX_MATS ? n_mats - i : GF_LINEAR_MAX_MATS;
        int64_t rows = 0;
        for (int j = 0; j < k; j++)
            rows += W[i + j]->rows;
        const double t0 = prof_begin(f);
        gf_linear_multi(rows * W[i]->cols * n <= SMALL_PRODUCT_MACS ? NULL : f->ctx->pool, k,
                        W + i, x, n, y + i);
        prof_end(f, part, t0, linear_dispatches(f, W[i], rows, n));
    }
}

static void linear(const fwd *f, const gf_matrix *W, const float *x, int64_t n, float *y)
{
    linear_multi(f, 1, &W, x, n, &y, GF_PROF_MATMUL);
}

static void dump(const fwd *f, const char *name, int layer, const float *data, int n_streams,
                 int64_t n_rows, int64_t width)
{
    if (f->ctx->dump)
        f->ctx->dump(f->ctx->dump_user, name, layer, data, n_streams, f->S->rows * width, n_rows,
                     width);
}

/* ------------------------------------------------------------------------
 * Tokens and embeddings (spec §3)
 * ---------------------------------------------------------------------- */

/* x = E[id]·sqrt(H) for text ids (zeros for rows the table lacks); for
 * multimodal ids the HF hard embedding, unscaled:
 * RMSNorm_noscale(Wproj · RMSNorm(emb[id − offset]; hard_norm)). */
static void embed_row(const fwd *f, int32_t id, float *x, float *tmp)
{
    const gemfa_model *m = f->m;
    const int64_t H = m->hp.hidden_size;
    if (id >= m->hp.vocab_size_ple) {
        const gf_mm_hparams *mh = NULL;
        const gf_mm_embedder *e = mm_embedder(m, id, &mh);
        gf_matrix_row_f32(&e->embedding, id - mh->vocab_offset, tmp);
        gf_rmsnorm(tmp, e->hard_norm, e->embedding.cols, mh->rms_norm_eps, tmp);
        gf_linear(f->ctx->pool, &e->projection, tmp, 1, x);
        gf_rmsnorm(x, NULL, H, mh->rms_norm_eps, x);
        return;
    }
    if (id >= m->embed_tokens.rows) {
        memset(x, 0, (size_t)H * sizeof(float));
        return;
    }
    gf_matrix_row_f32(&m->embed_tokens, id, x);
    f->vec->scale(x, (float)sqrt((double)H), NULL, H, x);
}

/* The embeddings and the per-layer table rows of every token, gathered
 * from their mappings (only the rows used are ever read). */
static void gather_rows(const fwd *f)
{
    const gemfa_model *m = f->m;
    const gf_hparams *hp = f->hp;
    struct gf_scratch *S = f->S;
    const int64_t H = hp->hidden_size, LP = (int64_t)gf_hp_ple_layers(hp) * hp->ple_dim;
    const float table_scale = (float)sqrt((double)hp->ple_dim);
    const double t0 = prof_begin(f);
    for (int64_t t = 0; t < f->b->n; t++) {
        embed_row(f, f->b->ids[t], S->x + t * H, S->tmp);
        const int64_t id = f->b->ids[t] < hp->vocab_size_ple ? f->b->ids[t] : 0; /* HF: pad row */
        float *e = S->pli + t * LP;
        if (id < m->embed_per_layer.rows) {
            gf_matrix_row_f32(&m->embed_per_layer, id, e);
            f->vec->scale(e, table_scale, NULL, LP, e);
        } else {
            memset(e, 0, (size_t)LP * sizeof(float));
        }
    }
    prof_end(f, GF_PROF_EMBED, t0, 0);
}

/* pli[t][l] = (RMSNorm(Wplp·x / sqrt(H) sliced per layer; proj_norm) +
 *              Eple[id']·sqrt(P)) / sqrt(2), id' = id for text, 0 otherwise. */
static void per_layer_inputs_row(const fwd *f, int64_t t)
{
    const gf_hparams *hp = f->hp;
    const int64_t P = hp->ple_dim, LP = (int64_t)gf_hp_ple_layers(hp) * P;
    const float proj_scale = (float)(1.0 / sqrt((double)hp->hidden_size));
    const float inv_sqrt2 = (float)(1.0 / sqrt(2.0));
    for (int l = 0; l < gf_hp_ple_layers(hp); l++) {
        float *q = f->S->tmp + t * LP + l * P, *e = f->S->pli + t * LP + l * P;
        f->vec->scale(q, proj_scale, NULL, P, q);
        gf_rmsnorm(q, f->m->per_layer_proj_norm, P, hp->rms_norm_eps, q);
        for (int64_t i = 0; i < P; i++)
            e[i] = (q[i] + e[i]) * inv_sqrt2;
    }
}

/* s_k = match(Waltup_{k−1}·x, x) for k >= 1 (spec §3.3); s_0 = x. */
static void initial_streams_row(const fwd *f, int64_t t)
{
    const int64_t H = f->hp->hidden_size, stride = f->S->rows * H;
    const float target = gf_rms(f->S->x + t * H, H);
    memcpy(f->S->streams + t * H, f->S->x + t * H, (size_t)H * sizeof(float));
    for (int k = 1; k < f->hp->altup_num_inputs; k++)
        gf_match_magnitude(f->S->streams + k * stride + t * H, H, target);
}

static void embed_and_streams(const fwd *f)
{
    const gf_hparams *hp = f->hp;
    struct gf_scratch *S = f->S;
    const int64_t n = f->b->n, H = hp->hidden_size, LP = (int64_t)gf_hp_ple_layers(hp) * hp->ple_dim;
    const int K = hp->altup_num_inputs;
    gather_rows(f);
    dump(f, "inputs_embeds", -1, S->x, 1, n, H);
    linear(f, &f->m->per_layer_model_proj, S->x, n, S->tmp);
    for_rows(f, n, 2 * LP, per_layer_inputs_row);
    dump(f, "per_layer_inputs", -1, S->pli, 1, n, LP);
    const gf_matrix *W[GF_ALTUP_MAX];
    float *y[GF_ALTUP_MAX];
    for (int k = 1; k < K; k++) {
        W[k - 1] = &f->m->altup_proj[k - 1];
        y[k - 1] = S->streams + k * S->rows * H;
    }
    if (K > 1)
        linear_multi(f, K - 1, W, S->x, n, y, GF_PROF_MATMUL);
    for_rows(f, n, K * H, initial_streams_row);
    dump(f, "streams_init", -1, S->streams, K, n, H);
}

static void rope_tables(const fwd *f)
{
    const gf_hparams *hp = f->hp;
    struct gf_scratch *S = f->S;
    const int64_t half = hp->head_dim / 2;
    for (int64_t t = 0; t < f->b->n; t++) {
        gf_rope_angles(f->b->pos[t], hp->head_dim, hp->rope_theta_local, S->rope_cos[0] + t * half,
                       S->rope_sin[0] + t * half);
        gf_rope_angles(f->b->pos[t], hp->head_dim, hp->rope_theta_global,
                       S->rope_cos[1] + t * half, S->rope_sin[1] + t * half);
    }
}

/* ------------------------------------------------------------------------
 * One decoder layer (spec §4), as row passes between matrix products
 * ---------------------------------------------------------------------- */

/* tmp[t] = RMSNorm(z[t]; router_norm) / H: the router's input (§4.2). */
static void router_input(const fwd *f, int64_t t, const float *z)
{
    const int64_t H = f->hp->hidden_size;
    float *y = f->S->tmp + t * H;
    gf_rmsnorm(z + t * H, f->L->altup_router_norm, H, f->hp->rms_norm_eps, y);
    f->vec->scale(y, (float)(1.0 / (double)H), NULL, H, y);
}

static void router_input_active_row(const fwd *f, int64_t t)
{
    router_input(f, t, f->S->streams + f->hp->altup_active_idx * f->S->rows * f->hp->hidden_size);
}

/* p_j = s_j + Σ_i C[j][i]·s_i with C = Wpred · tanh(router) (§4.2); then
 * the active prediction normed for the attention: a_n. */
static void predict_row(const fwd *f, int64_t t)
{
    const gf_hparams *hp = f->hp;
    const gf_layer *L = f->L;
    struct gf_scratch *S = f->S;
    const int64_t H = hp->hidden_size, K = hp->altup_num_inputs, stride = S->rows * H;
    float r[GF_ALTUP_MAX], C[GF_ALTUP_MAX][GF_ALTUP_MAX];
    for (int64_t q = 0; q < K; q++)
        r[q] = tanhf(S->router[t * K + q]);
    for (int64_t j = 0; j < K; j++)
        for (int64_t i = 0; i < K; i++) {
            const float *w = L->altup_prediction_coefs + (j * K + i) * K;
            float c = 0.0f;
            for (int64_t q = 0; q < K; q++)
                c += w[q] * r[q];
            C[j][i] = c;
        }
    const float *s[GF_ALTUP_MAX];
    for (int64_t i = 0; i < K; i++)
        s[i] = S->streams + i * stride + t * H;
    for (int64_t j = 0; j < K; j++)
        f->vec->mix(S->pred + j * stride + t * H, s[j], C[j], s, (int)K, H);
    gf_rmsnorm(S->pred + hp->altup_active_idx * stride + t * H, L->input_norm, H,
               hp->rms_norm_eps, S->a_n + t * H);
}

/* Per-head RMSNorm with gain `w` (NULL: none), then RoPE when cos_t given. */
static void norm_heads(float *x, int64_t n_heads, int64_t d, const float *w, float eps,
                       const float *cos_t, const float *sin_t)
{
    for (int64_t h = 0; h < n_heads; h++) {
        float *v = x + h * d;
        gf_rmsnorm(v, w, d, eps, v);
        if (cos_t)
            gf_rope_apply(v, d, cos_t, sin_t);
    }
}

static void qkv_row(const fwd *f, int64_t t)
{
    const gf_hparams *hp = f->hp;
    const gf_layer *L = f->L;
    struct gf_scratch *S = f->S;
    const int64_t d = hp->head_dim, half = d / 2;
    const int type = hp->is_sliding[f->l] ? 0 : 1;
    const float *c = S->rope_cos[type] + t * half, *s = S->rope_sin[type] + t * half;
    norm_heads(S->q + t * hp->n_heads * d, hp->n_heads, d, L->q_norm, hp->rms_norm_eps, c, s);
    if (hp->kv_source[f->l] == f->l) {
        norm_heads(S->k + t * hp->n_kv_heads * d, hp->n_kv_heads, d, L->k_norm, hp->rms_norm_eps,
                   c, s);
        norm_heads(S->v + t * hp->n_kv_heads * d, hp->n_kv_heads, d, NULL, hp->rms_norm_eps, NULL,
                   NULL);
    }
}

/* laurel = a_n + RMSNorm(Wright·(Wleft·a_n); post_laurel_norm) (§4.4);
 * attn_laurel = (a + RMSNorm(attn; post_attn_norm) + laurel) / sqrt(2)
 * (§4.5); ffn_in = RMSNorm(attn_laurel; pre_ffn_norm) (§4.6). */
static void post_attention_row(const fwd *f, int64_t t)
{
    const gf_hparams *hp = f->hp;
    const gf_layer *L = f->L;
    struct gf_scratch *S = f->S;
    const int64_t H = hp->hidden_size;
    const float inv_sqrt2 = (float)(1.0 / sqrt(2.0));
    float *lr = S->laurel + t * H, *y = S->attn_laurel + t * H;
    const float *a = S->pred + hp->altup_active_idx * S->rows * H + t * H;
    gf_rmsnorm(lr, L->post_laurel_norm, H, hp->rms_norm_eps, lr);
    f->vec->axpy(lr, 1.0f, S->a_n + t * H, H);
    gf_rmsnorm(S->attn + t * H, L->post_attn_norm, H, hp->rms_norm_eps, y);
    for (int64_t i = 0; i < H; i++)
        y[i] = (a[i] + y[i] + lr[i]) * inv_sqrt2;
    gf_rmsnorm(y, L->pre_ffn_norm, H, hp->rms_norm_eps, S->ffn_in + t * H);
}

/* gelu(sparse(gate)) ⊙ up (§4.6). */
static void ffn_act_row(const fwd *f, int64_t t)
{
    const int64_t F = f->hp->ffn_width[f->l];
    const float z = f->ctx->sparsity_z[f->l];
    float *g = f->S->gate + t * F;
    if (z > 0.0f)
        gf_gaussian_topk(g, F, z);
    f->vec->gelu_mul(g, f->S->up + t * F, F);
}

/* out = attn_laurel + RMSNorm(down; post_ffn_norm) (§4.6); then the
 * router input of the correction (§4.7). */
static void post_ffn_row(const fwd *f, int64_t t)
{
    const gf_hparams *hp = f->hp;
    struct gf_scratch *S = f->S;
    const int64_t H = hp->hidden_size;
    float *o = S->out + t * H;
    gf_rmsnorm(S->ffn + t * H, f->L->post_ffn_norm, H, hp->rms_norm_eps, o);
    f->vec->axpy(o, 1.0f, S->attn_laurel + t * H, H);
    router_input(f, t, S->out);
}

/* c_k = p_k + b_k·(out − p_active), b = clamp(Wcorr)·tanh(router) + 1
 * (§4.7), written over the layer's input streams; then the PLE gate's
 * input: c_active ⊙ scale (§4.8). */
static void correct_row(const fwd *f, int64_t t)
{
    const gf_hparams *hp = f->hp;
    const gf_layer *L = f->L;
    struct gf_scratch *S = f->S;
    const int64_t H = hp->hidden_size, K = hp->altup_num_inputs, stride = S->rows * H;
    const float clip = hp->altup_coef_clip;
    float r[GF_ALTUP_MAX], bk[GF_ALTUP_MAX];
    for (int64_t q = 0; q < K; q++)
        r[q] = tanhf(S->router[t * K + q]);
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
    const float *active = S->streams + hp->altup_active_idx * stride + t * H;
    if (hp->altup_correct_scale)
        f->vec->scale(active, 1.0f, L->altup_correct_output_scale, H, S->tmp + t * H);
    else
        memcpy(S->tmp + t * H, active, (size_t)H * sizeof(float));
}

/* gelu(Wgate·c) ⊙ pli_l (§4.8). */
static void ple_gate_row(const fwd *f, int64_t t)
{
    const int64_t P = f->hp->ple_dim, LP = (int64_t)gf_hp_ple_layers(f->hp) * P;
    const int64_t slice = gf_hp_base_layer(f->hp, f->l); /* a sliced model skips slices */
    f->vec->gelu_mul(f->S->ple_gate + t * P, f->S->pli + t * LP + slice * P, P);
}

/* f = RMSNorm(Wproj·…; post_ple_norm); streams 1..K−1 += f, as HF does. */
static void ple_inject_row(const fwd *f, int64_t t)
{
    const gf_hparams *hp = f->hp;
    struct gf_scratch *S = f->S;
    const int64_t H = hp->hidden_size;
    float *inj = S->inj + t * H;
    gf_rmsnorm(inj, f->L->post_ple_norm, H, hp->rms_norm_eps, inj);
    for (int64_t k = 1; k < hp->altup_num_inputs; k++)
        f->vec->axpy(S->streams + k * S->rows * H + t * H, 1.0f, inj, H);
}

static void attention(const fwd *f)
{
    gemfa_context *ctx = f->ctx;
    struct gf_scratch *S = f->S;
    const double t0 = prof_begin(f);
    if (f->hp->kv_source[f->l] == f->l)
        gf_kv_store(f->hp, f->l, f->b, S->k, S->v);
    const int runs = gf_attend(ctx->pool, f->hp, f->l, f->b, S->q, S->heads, ctx->scores,
                               ctx->scores_per_thread);
    prof_end(f, GF_PROF_ATTENTION, t0, runs);
}

static void decoder_layer(fwd *f, int l)
{
    const gf_hparams *hp = f->hp;
    const gf_layer *L = &f->m->layers[l];
    struct gf_scratch *S = f->S;
    const int64_t n = f->b->n, H = hp->hidden_size, K = hp->altup_num_inputs;
    const int64_t F = hp->ffn_width[l], P = hp->ple_dim;
    f->l = l;
    f->L = L;

    for_rows(f, n, 2 * H, router_input_active_row);
    linear(f, &L->altup_router, S->tmp, n, S->router);
    for_rows(f, n, 2 * K * H, predict_row);
    dump(f, "predictions", l, S->pred, (int)K, n, H);

    /* Everything that reads a_n: queries, keys, values and LAuReL's left. */
    const gf_matrix *in_a[4] = {&L->q_proj, &L->laurel_left, &L->k_proj, &L->v_proj};
    float *out_a[4] = {S->q, S->laurel_mid, S->k, S->v};
    linear_multi(f, hp->kv_source[l] == l ? 4 : 2, in_a, S->a_n, n, out_a, GF_PROF_MATMUL);
    for_rows(f, n, (hp->n_heads + 2 * hp->n_kv_heads) * hp->head_dim, qkv_row);
    linear(f, &L->laurel_right, S->laurel_mid, n, S->laurel);
    attention(f);
    linear(f, &L->o_proj, S->heads, n, S->attn);
    for_rows(f, n, 6 * H, post_attention_row);
    dump(f, "laurel_out", l, S->laurel, 1, n, H);
    dump(f, "attn_out", l, S->attn, 1, n, H);
    dump(f, "attn_laurel", l, S->attn_laurel, 1, n, H);

    const gf_matrix *in_ffn[2] = {&L->gate_proj, &L->up_proj};
    float *out_ffn[2] = {S->gate, S->up};
    linear_multi(f, 2, in_ffn, S->ffn_in, n, out_ffn, GF_PROF_MATMUL);
    for_rows(f, n, 2 * F, ffn_act_row);
    linear(f, &L->down_proj, S->gate, n, S->ffn);
    dump(f, "ffn_out", l, S->ffn, 1, n, H);

    for_rows(f, n, 3 * H, post_ffn_row);
    linear(f, &L->altup_router, S->tmp, n, S->router);
    for_rows(f, n, 3 * K * H, correct_row);
    linear(f, &L->ple_gate, S->tmp, n, S->ple_gate);
    for_rows(f, n, 2 * P, ple_gate_row);
    linear(f, &L->ple_proj, S->ple_gate, n, S->inj);
    for_rows(f, n, K * H, ple_inject_row);
    dump(f, "ple_injection", l, S->inj, 1, n, H);
    dump(f, "streams_out", l, S->streams, (int)K, n, H);
}

/* ------------------------------------------------------------------------
 * Output (spec §6), for rows [from, n)
 * ---------------------------------------------------------------------- */

/* h = RMSNorm((s_0 + Σ_k match(Wunembed_k·s_k, s_0)) / K; final_norm);
 * the unembedded streams wait in pred (row r − from of stream k − 1). */
static void final_hidden_row(const fwd *f, int64_t r)
{
    const gf_hparams *hp = f->hp;
    struct gf_scratch *S = f->S;
    const int64_t H = hp->hidden_size, K = hp->altup_num_inputs, stride = S->rows * H;
    const float *s0 = S->streams + (f->from + r) * H;
    float *acc = S->out + r * H;
    const float target = gf_rms(s0, H);
    memcpy(acc, s0, (size_t)H * sizeof(float));
    for (int64_t k = 1; k < K; k++) {
        float *y = S->pred + (k - 1) * stride + r * H;
        gf_match_magnitude(y, H, target);
        f->vec->axpy(acc, 1.0f, y, H);
    }
    for (int64_t i = 0; i < H; i++)
        acc[i] /= (float)K;
    gf_rmsnorm(acc, f->m->final_norm, H, hp->rms_norm_eps, S->ffn_in + r * H);
}

static void output_logits(fwd *f)
{
    const gemfa_model *m = f->m;
    const gf_hparams *hp = f->hp;
    struct gf_scratch *S = f->S;
    const gf_batch *b = f->b;
    const int64_t H = hp->hidden_size, K = hp->altup_num_inputs, V = hp->vocab_size;
    const int64_t from = b->logits_from, rows = b->n - from, stride = S->rows * H;
    if (rows <= 0)
        return;
    f->from = from;
    for (int64_t k = 1; k < K; k++)
        linear(f, &m->altup_unembed[k - 1], S->streams + k * stride + from * H, rows,
               S->pred + (k - 1) * stride);
    for_rows(f, rows, 2 * K * H, final_hidden_row);
    const float *h = S->ffn_in;
    dump(f, "final_hidden", -1, h, 1, rows, H);
    const gf_matrix *head = &m->lm_head;
    if (head->rows == V) {
        float *y = b->logits;
        linear_multi(f, 1, &head, h, rows, &y, GF_PROF_LM_HEAD);
    } else { /* a table with fewer rows than the vocabulary: the rest are zeros */
        for (int64_t t = 0; t < rows; t++) {
            float *z = b->logits + t * V;
            linear_multi(f, 1, &head, h + t * H, 1, &z, GF_PROF_LM_HEAD);
            memset(z + head->rows, 0, (size_t)(V - head->rows) * sizeof(float));
        }
    }
    if (f->ctx->dump)
        f->ctx->dump(f->ctx->dump_user, "logits_raw", -1, b->logits, 1, rows * V, rows, V);
    const double t0 = prof_begin(f);
    gf_softcap(b->logits, rows * V, hp->final_logit_softcapping);
    prof_end(f, GF_PROF_LM_HEAD, t0, 0);
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
    fwd f = {.ctx = ctx, .m = ctx->model, .hp = &ctx->model->hp, .S = ctx->scratch,
             .vec = gf_vec(), .b = b};
    const double t0 = prof_begin(&f);
    gemfa_status st = GEMFA_OK;
    embed_and_streams(&f);
    rope_tables(&f);
    for (int l = 0; l < f.hp->n_layers && st == GEMFA_OK; l++) {
        if (gf_context_cancelled(ctx))
            st = cancelled(l);
        else
            decoder_layer(&f, l);
    }
    if (st == GEMFA_OK && b->logits_from < b->n && gf_context_cancelled(ctx))
        st = cancelled(-1);
    if (st == GEMFA_OK)
        output_logits(&f);
    if (ctx->profile) {
        ctx->profile->total += now_s() - t0;
        ctx->profile->passes++;
        ctx->profile->rows += b->n;
    }
    return st;
}
