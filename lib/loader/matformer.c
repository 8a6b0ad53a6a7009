/* matformer.c — MatFormer sub-models (docs/matformer.md): a spec checked
 * against a model, and a derived gemfa_model that borrows the base model's
 * weights.  gate/up keep their first W rows in place (a prefix of rows is a
 * prefix of the data in every layout, Q8's groups of 16 included when
 * W % 16 == 0); down_proj's first W columns are strided, so they are the
 * only bytes copied (one memcpy per row, or per 16-row group for Q8). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"
#include "kernels/q4_format.h"
#include "kernels/q8_format.h"
#include "loader/load.h"
#include "loader/matformer.h"

/* ------------------------------------------------------------- the plan */

/* Can matrix `w` ([F, H] sliced by rows or [H, F] by columns) be cut to
 * `width`?  Float rows and columns: any width; Q8: whole blocks of 32. */
static gemfa_status sliceable(const gf_matrix *w, int64_t width, int layer, const char *who)
{
    switch (w->dtype) {
    case GF_DTYPE_F32:
    case GF_DTYPE_F16:
    case GF_DTYPE_BF16: return GEMFA_OK;
    case GF_DTYPE_Q8:
        if (width % GF_Q8_BLOCK == 0)
            return GEMFA_OK;
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "%s: layer %d: FFN width %lld: with int8 weights a width must be a "
                        "multiple of %d (the quantization block)",
                        who, layer, (long long)width, GF_Q8_BLOCK);
    case GF_DTYPE_Q4:
        if (width % GF_Q4_BLOCK == 0)
            return GEMFA_OK;
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "%s: layer %d: FFN width %lld: with q4 weights a width must be a "
                        "multiple of %d (the quantization block)",
                        who, layer, (long long)width, GF_Q4_BLOCK);
    }
    return gf_error(GEMFA_ERR_UNSUPPORTED,
                    "%s: layer %d: this weight format cannot be sliced to FFN width %lld", who,
                    layer, (long long)width);
}

static gemfa_status check_preset(const gemfa_model *m, const gf_mf_preset *p, const char *who)
{
    const gf_hparams *hp = &m->hp;
    int fits = hp->n_layers == p->base_layers && hp->n_kv_shared_layers == p->base_kv_shared;
    for (int l = 0; fits && l < hp->n_layers; l++)
        fits = hp->ffn_width[l] >= p->min_ffn;
    if (!fits)
        return gf_error(GEMFA_ERR_MODEL_MISMATCH,
                        "%s: matformer preset \"%s\" slices an E4B-style checkpoint (%d layers, "
                        "%d of them KV-shared, FFN width >= %lld); this model has %d layers, %d "
                        "KV-shared (use the general form ffn=W[,W...][:skip=I[,I...]])",
                        who, p->name, p->base_layers, p->base_kv_shared, (long long)p->min_ffn,
                        hp->n_layers, hp->n_kv_shared_layers);
    return GEMFA_OK;
}

gemfa_status gf_mf_plan_make(const gemfa_model *m, const gf_mf_spec *spec, const char *who,
                             gf_mf_plan *plan)
{
    if (m->vocab_only)
        return gf_error(GEMFA_ERR_NO_WEIGHTS, "%s: the model was loaded vocabulary-only", who);
    const gf_hparams *hp = &m->hp;
    const int L = hp->n_layers;
    gf_mf_spec preset_spec;
    if (spec->preset) {
        gemfa_status st = check_preset(m, spec->preset, who);
        if (st)
            return st;
        memset(&preset_spec, 0, sizeof preset_spec);
        preset_spec.n_widths = 1;
        preset_spec.widths[0] = spec->preset->width;
        for (int l = spec->preset->skip_first; l <= spec->preset->skip_last; l++)
            preset_spec.skips[preset_spec.n_skips++] = l;
        spec = &preset_spec;
    }

    plan->n_layers = L;
    memset(plan->keep, 1, sizeof plan->keep);
    for (int i = 0; i < spec->n_skips; i++) {
        int s = spec->skips[i];
        if (s >= L)
            return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                            "%s: matformer skip=%d: the model has layers 0..%d", who, s, L - 1);
        plan->keep[s] = 0;
    }
    int kept = 0;
    for (int l = 0; l < L; l++)
        kept += plan->keep[l];
    if (kept == 0)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: matformer skip= removes every layer",
                        who);
    /* A kept layer that reads another layer's KV cache needs that layer
     * (MatFormer Lab reserves the two source layers for the same reason). */
    for (int l = 0; l < L; l++)
        if (plan->keep[l] && !plan->keep[hp->kv_source[l]])
            return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                            "%s: matformer skip=%d: layer %d reads the KV cache of layer %d "
                            "(num_kv_shared_layers), so layer %d cannot be skipped",
                            who, hp->kv_source[l], l, hp->kv_source[l], hp->kv_source[l]);
    if (spec->n_widths > 1 && spec->n_widths != kept)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "%s: matformer ffn= lists %d widths for %d kept layers (give one width "
                        "for every layer, or one per kept layer in order)",
                        who, spec->n_widths, kept);
    for (int l = 0, k = 0; l < L; l++) {
        plan->width[l] = hp->ffn_width[l];
        if (!plan->keep[l])
            continue;
        const int64_t W = spec->n_widths == 0   ? hp->ffn_width[l]
                          : spec->n_widths == 1 ? spec->widths[0]
                                                : spec->widths[k];
        k++;
        if (W < 1 || W > hp->ffn_width[l])
            return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                            "%s: matformer ffn=%lld for layer %d: expected 1..%lld (the layer's "
                            "FFN width)",
                            who, (long long)W, l, (long long)hp->ffn_width[l]);
        if (W < hp->ffn_width[l]) {
            const gf_layer *Ly = &m->layers[l];
            gemfa_status st;
            if ((st = sliceable(&Ly->gate_proj, W, l, who)) ||
                (st = sliceable(&Ly->up_proj, W, l, who)) ||
                (st = sliceable(&Ly->down_proj, W, l, who)))
                return st;
        }
        plan->width[l] = W;
    }
    return GEMFA_OK;
}

/* ------------------------------------------------------------ derivation */

/* Bytes of one element of a float matrix (the only ones copied element-wise). */
static size_t elem_bytes(gf_dtype t)
{
    return t == GF_DTYPE_F32 ? 4 : t == GF_DTYPE_Q8 ? 1 : 2;
}

static int64_t matrix_bytes(const gf_matrix *w)
{
    return w->data ? gf_matrix_payload_bytes(w->dtype, w->rows, w->cols) : 0;
}

/* The first `width` columns of `src` into model-owned memory. */
static gemfa_status copy_columns(gemfa_model *d, const gf_matrix *src, int64_t width,
                                 gf_matrix *out)
{
    const int64_t R = src->rows, C = src->cols;
    *out = *src;
    out->cols = width;
    if (src->dtype == GF_DTYPE_Q4) {
        /* Q4 (kernels/q4_format.h): inside a group of h rows, columns < width
         * are the group's first width*h/2 bytes; the scales as Q8's. */
        const int64_t nb = C / GF_Q4_BLOCK, wb = width / GF_Q4_BLOCK;
        const size_t bytes = gf_convert_bytes(GF_DTYPE_Q4, R, width);
        uint8_t *q = bytes != SIZE_MAX ? gf_model_alloc(d, bytes) : NULL;
        if (!q)
            return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "matformer: out of memory");
        out->data = q;
        gf_matrix_set_scales(out);
        uint16_t *s = (uint16_t *)out->scales;
        for (int64_t g0 = 0; g0 < R; g0 += GF_Q4_GROUP) {
            const int64_t h = gf_q4_group_rows(R, g0);
            memcpy(q + g0 * width / 2, (const uint8_t *)src->data + g0 * C / 2,
                   (size_t)(width * h / 2));
            memcpy(s + g0 * wb, src->scales + g0 * nb, (size_t)(wb * h) * sizeof *s);
        }
        return GEMFA_OK;
    }
    if (src->dtype != GF_DTYPE_Q8) {
        const size_t row = (size_t)width * elem_bytes(src->dtype);
        char *dst = gf_model_alloc(d, gf_mul_size((size_t)R, row));
        if (!dst)
            return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "matformer: out of memory");
        for (int64_t r = 0; r < R; r++)
            memcpy(dst + (size_t)r * row,
                   (const char *)src->data + (size_t)r * (size_t)C * elem_bytes(src->dtype), row);
        out->data = dst;
        return GEMFA_OK;
    }
    /* Q8: inside a group of h rows, columns < width are the group's first
     * width*h bytes and blocks < width/32 its first (width/32)*h scales. */
    const int64_t nb = C / GF_Q8_BLOCK, wb = width / GF_Q8_BLOCK;
    const size_t bytes = gf_convert_bytes(GF_DTYPE_Q8, R, width);
    int8_t *q = bytes != SIZE_MAX ? gf_model_alloc(d, bytes) : NULL;
    if (!q)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "matformer: out of memory");
    out->data = q;
    gf_matrix_set_scales(out); /* the scales follow the data, as the loader lays them out */
    uint16_t *s = (uint16_t *)out->scales;
    for (int64_t g0 = 0; g0 < R; g0 += GF_Q8_GROUP) {
        const int64_t h = gf_q8_group_rows(R, g0);
        memcpy(q + g0 * width, (const int8_t *)src->data + g0 * C, (size_t)(width * h));
        memcpy(s + g0 * wb, src->scales + g0 * nb, (size_t)(wb * h) * sizeof *s);
    }
    return GEMFA_OK;
}

/* Parameters of one decoder layer as stored (k/v of shared layers too). */
static int64_t layer_params(const gf_hparams *hp, int l)
{
    const int64_t H = hp->hidden_size, d = hp->head_dim, K = hp->altup_num_inputs;
    return H * d * (2 * hp->n_heads + 2 * hp->n_kv_heads) + 3 * H * hp->ffn_width[l] +
           K * H + 2 * hp->laurel_rank * H + 2 * hp->ple_dim * H + 2 * d + 9 * H + K * K +
           K * K * K;
}

/* Bytes of one layer's weights as bound (matrices bound, f32 vectors
 * present), which is what bind.c counted: 0 for a layer a MatFormer load
 * left unbound. */
static int64_t layer_bytes(const gf_hparams *hp, const gf_layer *Ly)
{
    const int64_t H = hp->hidden_size, d = hp->head_dim, K = hp->altup_num_inputs;
    const gf_matrix *m[] = {&Ly->q_proj,    &Ly->k_proj,      &Ly->v_proj,       &Ly->o_proj,
                            &Ly->gate_proj, &Ly->up_proj,     &Ly->down_proj,    &Ly->altup_router,
                            &Ly->laurel_left, &Ly->laurel_right, &Ly->ple_gate, &Ly->ple_proj};
    const float *hv[] = {Ly->input_norm,   Ly->post_attn_norm, Ly->pre_ffn_norm,
                         Ly->post_ffn_norm, Ly->altup_correct_output_scale,
                         Ly->altup_router_norm, Ly->post_laurel_norm, Ly->post_ple_norm};
    int64_t b = 4 * (d * (!!Ly->q_norm + !!Ly->k_norm) + K * K * !!Ly->altup_correction_coefs +
                     K * K * K * !!Ly->altup_prediction_coefs);
    for (size_t i = 0; i < sizeof hv / sizeof hv[0]; i++)
        b += hv[i] ? 4 * H : 0;
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        b += matrix_bytes(m[i]);
    return b;
}

void gf_mf_free_derived(gemfa_model *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_owned; i++)
        gf_free_aligned(d->owned[i]);
    gf_free(d->owned);
    gf_free(d->layers);
    gf_hparams_free(&d->hp);
    gf_free(d->matformer);
    gf_free(d);
}

static gemfa_status build(gemfa_model *d, const gemfa_model *src, const gf_mf_plan *plan)
{
    const gf_hparams *sh = &src->hp;
    gf_hparams *hp = &d->hp;
    int kept = 0, map[GF_MAX_LAYERS];
    for (int l = 0; l < plan->n_layers; l++)
        map[l] = plan->keep[l] ? kept++ : -1;
    const size_t n = (size_t)kept;
    hp->ffn_width = gf_calloc(n, sizeof *hp->ffn_width);
    hp->sparsity = gf_calloc(n, sizeof *hp->sparsity);
    hp->is_sliding = gf_calloc(n, sizeof *hp->is_sliding);
    hp->kv_source = gf_calloc(n, sizeof *hp->kv_source);
    hp->base_layer = gf_calloc(n, sizeof *hp->base_layer);
    d->layers = gf_calloc(n, sizeof *d->layers);
    if (!hp->ffn_width || !hp->sparsity || !hp->is_sliding || !hp->kv_source ||
        !hp->base_layer || !d->layers)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "matformer: out of memory");

    const int S = sh->n_layers - sh->n_kv_shared_layers;
    hp->n_layers = kept;
    hp->n_kv_shared_layers = 0;
    hp->ple_layers = gf_hp_ple_layers(sh);
    for (int l = 0; l < plan->n_layers; l++) {
        if (!plan->keep[l]) {
            d->n_params -= layer_params(sh, l) + sh->ple_dim * (sh->vocab_size_ple + sh->hidden_size);
            d->n_params_ple -= sh->ple_dim * sh->vocab_size_ple;
            d->weight_bytes -= layer_bytes(sh, &src->layers[l]);
            continue;
        }
        const int j = map[l];
        const int64_t W = plan->width[l], F = sh->ffn_width[l];
        hp->ffn_width[j] = W;
        hp->sparsity[j] = sh->sparsity[l]; /* each layer keeps its own (MatFormer Lab: same) */
        hp->is_sliding[j] = sh->is_sliding[l];
        hp->kv_source[j] = map[sh->kv_source[l]];
        hp->base_layer[j] = gf_hp_base_layer(sh, l);
        hp->n_kv_shared_layers += l >= S;
        gf_layer *Ly = &d->layers[j];
        *Ly = src->layers[l];
        if (W == F)
            continue;
        /* A MatFormer load (bind.c) converted gate/up/down at width W
         * already; matrices used in place come whole and are cut here. */
        if (Ly->gate_proj.rows > W)
            Ly->gate_proj.rows = W; /* a prefix of rows: same data */
        if (Ly->up_proj.rows > W)
            Ly->up_proj.rows = W;
        if (src->layers[l].down_proj.cols > W) {
            gemfa_status st = copy_columns(d, &src->layers[l].down_proj, W, &Ly->down_proj);
            if (st)
                return st;
        }
        d->n_params -= 3 * (F - W) * sh->hidden_size;
        d->weight_bytes -= layer_bytes(sh, &src->layers[l]) - layer_bytes(hp, Ly);
    }
    return GEMFA_OK;
}

gemfa_status gf_mf_derive(const gemfa_model *src, const gf_mf_plan *plan, const char *spec_text,
                          gemfa_model **out)
{
    gemfa_model *parent = (gemfa_model *)src; /* refs is the one mutable field */
    gemfa_model *d = gf_calloc(1, sizeof *d);
    if (!d)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "matformer: out of memory");
    /* Borrow everything, then replace what the sub-model owns. */
    memcpy(d, src, sizeof *d);
    d->owned = NULL;
    d->n_owned = 0;
    d->layers = NULL;
    d->base = parent;
    atomic_init(&d->refs, 1);
    d->matformer = gf_strndup(spec_text, strlen(spec_text));
    gf_hparams *hp = &d->hp;
    hp->ffn_width = NULL;
    hp->sparsity = NULL;
    hp->is_sliding = NULL;
    hp->kv_source = NULL;
    hp->base_layer = NULL;
    gemfa_status st = d->matformer ? build(d, src, plan)
                                   : gf_error(GEMFA_ERR_OUT_OF_MEMORY, "matformer: out of memory");
    if (st) {
        gf_mf_free_derived(d);
        return st;
    }
    atomic_fetch_add(&parent->refs, 1);
    *out = d;
    return GEMFA_OK;
}

/* ------------------------------------------------------------ public API */

GEMFA_API gemfa_status gemfa_model_options_set_matformer(gemfa_model_options *opts,
                                                         const char *spec)
{
    static const char who[] = "gemfa_model_options_set_matformer";
    if (!opts)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: opts is NULL", who);
    char *copy = NULL;
    if (spec && *spec) {
        gf_mf_spec *parsed = gf_malloc(sizeof *parsed);
        if (!parsed)
            return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", who);
        gemfa_status st = gf_mf_parse(spec, who, parsed);
        gf_free(parsed);
        if (st)
            return st;
        if (!(copy = gf_strndup(spec, strlen(spec))))
            return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", who);
    }
    gf_free(opts->matformer);
    opts->matformer = copy;
    return GEMFA_OK;
}

gemfa_status gf_mf_derive_text(const gemfa_model *base, const char *spec, const char *who,
                               gemfa_model **out)
{
    gf_mf_spec *parsed = gf_malloc(sizeof *parsed);
    gf_mf_plan *plan = gf_malloc(sizeof *plan);
    gemfa_status st;
    if (!parsed || !plan)
        st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", who);
    else if (!(st = gf_mf_parse(spec, who, parsed)) &&
             !(st = gf_mf_plan_make(base, parsed, who, plan)))
        st = gf_mf_derive(base, plan, spec, out);
    gf_free(parsed);
    gf_free(plan);
    return st;
}

GEMFA_API gemfa_status gemfa_model_derive_submodel(const gemfa_model *base, const char *spec,
                                                   gemfa_model **out)
{
    static const char who[] = "gemfa_model_derive_submodel";
    if (!base || !spec || !out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: %s is NULL", who,
                        !base ? "base" : !spec ? "spec" : "out");
    return gf_mf_derive_text(base, spec, who, out);
}

GEMFA_API gemfa_status gemfa_model_base_layer(const gemfa_model *m, int layer, int *base_layer)
{
    if (!m || !base_layer)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_model_base_layer: %s is NULL",
                        !m ? "model" : "base_layer");
    if (layer < 0 || layer >= m->hp.n_layers)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_model_base_layer: layer %d out of range [0, %d)", layer,
                        m->hp.n_layers);
    *base_layer = gf_hp_base_layer(&m->hp, layer);
    return GEMFA_OK;
}

GEMFA_API const char *gemfa_model_matformer(const gemfa_model *m)
{
    return m ? m->matformer : NULL;
}
