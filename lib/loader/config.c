/* config.c — reads config.json into gf_hparams (spec §1) and derives the
 * KV-sharing map (spec §5). */
#include "loader/config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"

/* Where a value lives, for messages: "config.json: text_config.hidden_size". */
typedef struct where {
    const char *what;   /* file */
    const char *prefix; /* "text_config." or "" */
} where;

/* Describes a JSON value in a message ("an integer 7", "a string", ...). */
static const char *found(const gf_json *j, char *buf, size_t cap)
{
    if (!j)
        return "nothing (absent)";
    switch (j->type) {
    case GF_JSON_NULL: return "null";
    case GF_JSON_BOOL: return j->boolean ? "true" : "false";
    case GF_JSON_NUMBER:
        if (j->is_integer)
            snprintf(buf, cap, "%" PRId64, j->integer);
        else
            snprintf(buf, cap, "%.9g", j->number);
        return buf;
    case GF_JSON_STRING: snprintf(buf, cap, "\"%.60s\"", j->str); return buf;
    case GF_JSON_ARRAY: snprintf(buf, cap, "an array of %zu", j->len); return buf;
    case GF_JSON_OBJECT: return "an object";
    }
    return "?";
}

static int present(const gf_json *j) { return j && j->type != GF_JSON_NULL; }

/* An integer in [min, max]; `def` when absent or null unless required. */
static gemfa_status get_int(const where *w, const gf_json *obj, const char *key, int required,
                            int64_t def, int64_t min, int64_t max, int64_t *out)
{
    const gf_json *j = gf_json_get(obj, key);
    char buf[96];
    if (!present(j)) {
        if (required)
            return gf_error(GEMFA_ERR_CONFIG, "%s: %s%s is required (an integer in [%" PRId64
                            ", %" PRId64 "]), found %s",
                            w->what, w->prefix, key, min, max, found(j, buf, sizeof buf));
        *out = def;
        return GEMFA_OK;
    }
    int64_t v;
    if (!gf_json_as_int(j, &v) || v < min || v > max)
        return gf_error(GEMFA_ERR_CONFIG,
                        "%s: %s%s: expected an integer in [%" PRId64 ", %" PRId64 "], found %s",
                        w->what, w->prefix, key, min, max, found(j, buf, sizeof buf));
    *out = v;
    return GEMFA_OK;
}

/* A finite number in [min, max] (open at min when min_open). */
static gemfa_status get_float(const where *w, const gf_json *obj, const char *key, double def,
                              double min, int min_open, double max, float *out)
{
    const gf_json *j = gf_json_get(obj, key);
    char buf[96];
    if (!present(j)) {
        *out = (float)def;
        return GEMFA_OK;
    }
    double v;
    if (!gf_json_as_double(j, &v) || !isfinite(v) || v < min || (min_open && v == min) ||
        v > max)
        return gf_error(GEMFA_ERR_CONFIG, "%s: %s%s: expected a number in %c%g, %g], found %s",
                        w->what, w->prefix, key, min_open ? '(' : '[', min, max,
                        found(j, buf, sizeof buf));
    *out = (float)v;
    return GEMFA_OK;
}

static gemfa_status get_bool(const where *w, const gf_json *obj, const char *key, int def,
                             int *out)
{
    const gf_json *j = gf_json_get(obj, key);
    char buf[96];
    if (!present(j)) {
        *out = def;
        return GEMFA_OK;
    }
    if (!gf_json_as_bool(j, out))
        return gf_error(GEMFA_ERR_CONFIG, "%s: %s%s: expected true or false, found %s", w->what,
                        w->prefix, key, found(j, buf, sizeof buf));
    return GEMFA_OK;
}

/* A string member, or NULL when absent/null; CONFIG for another type. */
static gemfa_status get_string(const where *w, const gf_json *obj, const char *key,
                               const char **out)
{
    const gf_json *j = gf_json_get(obj, key);
    char buf[96];
    *out = NULL;
    if (!present(j))
        return GEMFA_OK;
    if (j->type != GF_JSON_STRING)
        return gf_error(GEMFA_ERR_CONFIG, "%s: %s%s: expected a string, found %s", w->what,
                        w->prefix, key, found(j, buf, sizeof buf));
    *out = j->str;
    return GEMFA_OK;
}

/* An optional token id: absent, null or out of int32 range gives -1 (the
 * decoder does not depend on it).  Lists give their first entry. */
static int32_t get_id(const gf_json *obj, const char *key)
{
    const gf_json *j = gf_json_get(obj, key);
    if (j && j->type == GF_JSON_ARRAY)
        j = gf_json_at(j, 0);
    int64_t v;
    if (!gf_json_as_int(j, &v) || v < 0 || v > INT32_MAX)
        return -1;
    return (int32_t)v;
}

const gf_json *gf_config_text_section(const gf_json *root)
{
    const gf_json *tc = gf_json_get(root, "text_config");
    return tc && tc->type == GF_JSON_OBJECT ? tc : root;
}

void gf_hparams_free(gf_hparams *hp)
{
    if (!hp)
        return;
    gf_free(hp->ffn_width);
    gf_free(hp->sparsity);
    gf_free(hp->is_sliding);
    gf_free(hp->kv_source);
    gf_free(hp->base_layer);
    memset(hp, 0, sizeof *hp);
}

/* Bounds: generous for any real Gemma 3n, tight enough that products of
 * them (tensor sizes) stay far from overflow. */
#define MAX_WIDTH ((int64_t)1 << 16)  /* hidden, head_dim, P, rank */
#define MAX_FFN ((int64_t)1 << 20)
#define MAX_VOCAB ((int64_t)1 << 24)
#define MAX_HEADS 1024
#define MAX_POSITIONS ((int64_t)1 << 31)

static gemfa_status parse_ffn(const where *w, const gf_json *tc, gf_hparams *hp)
{
    const gf_json *j = gf_json_get(tc, "intermediate_size");
    char buf[96];
    int L = hp->n_layers;
    if (j && j->type == GF_JSON_ARRAY) {
        if (j->len != (size_t)L)
            return gf_error(GEMFA_ERR_CONFIG,
                            "%s: %sintermediate_size: expected %d entries (one per layer), found %zu",
                            w->what, w->prefix, L, j->len);
        for (int l = 0; l < L; l++) {
            int64_t v;
            if (!gf_json_as_int(j->items[l], &v) || v < 1 || v > MAX_FFN)
                return gf_error(GEMFA_ERR_CONFIG,
                                "%s: %sintermediate_size[%d]: expected an integer in [1, %" PRId64
                                "], found %s",
                                w->what, w->prefix, l, MAX_FFN, found(j->items[l], buf, sizeof buf));
            hp->ffn_width[l] = v;
        }
        return GEMFA_OK;
    }
    int64_t v;
    gemfa_status st = get_int(w, tc, "intermediate_size", 1, 0, 1, MAX_FFN, &v);
    if (st != GEMFA_OK)
        return st;
    for (int l = 0; l < L; l++)
        hp->ffn_width[l] = v;
    return GEMFA_OK;
}

static gemfa_status parse_layer_types(const where *w, const gf_json *tc, gf_hparams *hp)
{
    const gf_json *j = gf_json_get(tc, "layer_types");
    char buf[96];
    int L = hp->n_layers;
    if (!present(j)) { /* spec §1: every fifth layer is full */
        for (int l = 0; l < L; l++)
            hp->is_sliding[l] = (l + 1) % 5 != 0;
        return GEMFA_OK;
    }
    if (j->type != GF_JSON_ARRAY || j->len != (size_t)L)
        return gf_error(GEMFA_ERR_CONFIG,
                        "%s: %slayer_types: expected an array of %d entries, found %s", w->what,
                        w->prefix, L, found(j, buf, sizeof buf));
    for (int l = 0; l < L; l++) {
        const gf_json *e = j->items[l];
        if (e->type == GF_JSON_STRING && strcmp(e->str, "sliding_attention") == 0)
            hp->is_sliding[l] = 1;
        else if (e->type == GF_JSON_STRING && strcmp(e->str, "full_attention") == 0)
            hp->is_sliding[l] = 0;
        else
            return gf_error(GEMFA_ERR_CONFIG,
                            "%s: %slayer_types[%d]: expected \"sliding_attention\" or "
                            "\"full_attention\", found %s",
                            w->what, w->prefix, l, found(e, buf, sizeof buf));
    }
    return GEMFA_OK;
}

static gemfa_status parse_sparsity(const where *w, const gf_json *tc, gf_hparams *hp)
{
    const gf_json *j = gf_json_get(tc, "activation_sparsity_pattern");
    char buf[96];
    int L = hp->n_layers;
    if (!present(j)) { /* spec §1: 0.95 on the first 10 layers when L > 10 */
        for (int l = 0; l < L; l++)
            hp->sparsity[l] = (L > 10 && l < 10) ? 0.95f : 0.0f;
        return GEMFA_OK;
    }
    if (j->type != GF_JSON_ARRAY || j->len != (size_t)L)
        return gf_error(GEMFA_ERR_CONFIG,
                        "%s: %sactivation_sparsity_pattern: expected an array of %d entries, found %s",
                        w->what, w->prefix, L, found(j, buf, sizeof buf));
    for (int l = 0; l < L; l++) {
        double v;
        /* 1.0 would put the threshold at +infinity */
        if (!gf_json_as_double(j->items[l], &v) || !(v >= 0.0 && v < 1.0))
            return gf_error(GEMFA_ERR_CONFIG,
                            "%s: %sactivation_sparsity_pattern[%d]: expected a number in [0, 1), "
                            "found %s",
                            w->what, w->prefix, l, found(j->items[l], buf, sizeof buf));
        hp->sparsity[l] = (float)v;
    }
    return GEMFA_OK;
}

/* rope_type must be absent, null or "default" (Gemma 3n uses no scaling). */
static gemfa_status check_rope_type(const where *w, const gf_json *obj, const char *key)
{
    if (!present(obj))
        return GEMFA_OK;
    char buf[96];
    if (obj->type != GF_JSON_OBJECT)
        return gf_error(GEMFA_ERR_CONFIG, "%s: %s%s: expected an object or null, found %s",
                        w->what, w->prefix, key, found(obj, buf, sizeof buf));
    const char *names[] = {"rope_type", "type"};
    for (int i = 0; i < 2; i++) {
        const gf_json *t = gf_json_get(obj, names[i]);
        if (present(t) && !(t->type == GF_JSON_STRING && strcmp(t->str, "default") == 0))
            return gf_error(GEMFA_ERR_UNSUPPORTED,
                            "%s: %s%s.%s: only \"default\" RoPE is implemented, found %s",
                            w->what, w->prefix, key, names[i], found(t, buf, sizeof buf));
    }
    return GEMFA_OK;
}

/* Legacy keys rope_theta / rope_local_base_freq, or the newer
 * rope_parameters {full_attention: {rope_theta}, sliding_attention: {...}}
 * (which wins when both are there). */
static gemfa_status parse_rope(const where *w, const gf_json *tc, gf_hparams *hp)
{
    gemfa_status st;
    if ((st = get_float(w, tc, "rope_theta", 1e6, 0, 1, 1e30, &hp->rope_theta_global)) ||
        (st = get_float(w, tc, "rope_local_base_freq", 1e4, 0, 1, 1e30, &hp->rope_theta_local)) ||
        (st = check_rope_type(w, gf_json_get(tc, "rope_scaling"), "rope_scaling")))
        return st;

    const gf_json *rp = gf_json_get(tc, "rope_parameters");
    if (!present(rp))
        return GEMFA_OK;
    char buf[96];
    if (rp->type != GF_JSON_OBJECT)
        return gf_error(GEMFA_ERR_CONFIG, "%s: %srope_parameters: expected an object, found %s",
                        w->what, w->prefix, found(rp, buf, sizeof buf));
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%srope_parameters.", w->prefix);
    where wr = {w->what, prefix};
    const gf_json *full = gf_json_get(rp, "full_attention");
    const gf_json *sliding = gf_json_get(rp, "sliding_attention");
    if (!present(full) && !present(sliding)) /* one set for every layer type */
        return (st = check_rope_type(w, rp, "rope_parameters")) ? st
               : get_float(&wr, rp, "rope_theta", hp->rope_theta_global, 0, 1, 1e30,
                           &hp->rope_theta_global);
    char pf[96], ps[96];
    snprintf(pf, sizeof pf, "%sfull_attention.", prefix);
    snprintf(ps, sizeof ps, "%ssliding_attention.", prefix);
    where wf = {w->what, pf}, ws = {w->what, ps};
    if ((st = check_rope_type(&wr, full, "full_attention")) ||
        (st = check_rope_type(&wr, sliding, "sliding_attention")) ||
        (st = get_float(&wf, full, "rope_theta", hp->rope_theta_global, 0, 1, 1e30,
                        &hp->rope_theta_global)) ||
        (st = get_float(&ws, sliding, "rope_theta", hp->rope_theta_local, 0, 1, 1e30,
                        &hp->rope_theta_local)))
        return st;
    return GEMFA_OK;
}

/* Spec §5: a layer i >= S = L - num_kv_shared_layers reads the KV cache of
 * the last layer before S with the same attention type. */
static gemfa_status compute_kv_source(const where *w, gf_hparams *hp)
{
    int L = hp->n_layers, S = L - hp->n_kv_shared_layers;
    for (int i = 0; i < L; i++) {
        if (i < S) {
            hp->kv_source[i] = i;
            continue;
        }
        int src = -1;
        for (int j = S - 1; j >= 0 && src < 0; j--)
            if (hp->is_sliding[j] == hp->is_sliding[i])
                src = j;
        if (src < 0)
            return gf_error(GEMFA_ERR_CONFIG,
                            "%s: %snum_kv_shared_layers %d: layer %d (%s) shares a KV cache, but "
                            "none of layers 0..%d is a %s layer to share from",
                            w->what, w->prefix, hp->n_kv_shared_layers, i,
                            hp->is_sliding[i] ? "sliding" : "full", S - 1,
                            hp->is_sliding[i] ? "sliding" : "full");
        hp->kv_source[i] = src;
    }
    return GEMFA_OK;
}

static void parse_mm(const gf_json *root, const char *key, int64_t def_offset, gf_mm_hparams *mm)
{
    /* Only the multimodal embedders use these; malformed values just mark
     * the range unusable instead of failing a text load. */
    const gf_json *c = gf_json_get(root, key);
    memset(mm, 0, sizeof *mm);
    if (!c || c->type != GF_JSON_OBJECT)
        return;
    int64_t v;
    double d;
    mm->vocab_offset = def_offset;
    mm->vocab_size = 128;
    mm->rms_norm_eps = 1e-6f;
    mm->hidden_size = 0;
    if (gf_json_as_int(gf_json_get(c, "vocab_offset"), &v))
        mm->vocab_offset = v;
    if (gf_json_as_int(gf_json_get(c, "vocab_size"), &v))
        mm->vocab_size = v;
    if (gf_json_as_int(gf_json_get(c, "hidden_size"), &v))
        mm->hidden_size = v;
    if (gf_json_as_double(gf_json_get(c, "rms_norm_eps"), &d) && isfinite(d) && d > 0 && d < 1)
        mm->rms_norm_eps = (float)d;
    mm->present = mm->vocab_offset >= 0 && mm->vocab_offset <= MAX_VOCAB && mm->vocab_size > 0 &&
                  mm->vocab_size <= MAX_VOCAB && mm->hidden_size > 0 &&
                  mm->hidden_size <= MAX_WIDTH;
}

static gemfa_status parse_all(const gf_json *root, const char *what, gf_hparams *hp)
{
    char buf[96];
    if (!root || root->type != GF_JSON_OBJECT)
        return gf_error(GEMFA_ERR_CONFIG, "%s: expected a JSON object, found %s", what,
                        found(root, buf, sizeof buf));
    const gf_json *tc = gf_config_text_section(root);
    hp->nested = tc != root;
    where w = {what, hp->nested ? "text_config." : ""};
    where wroot = {what, ""};
    gemfa_status st;

    /* model_type: only Gemma 3n (absent is tolerated: some exports drop it). */
    const char *mt = NULL, *tmt = NULL;
    if ((st = get_string(&wroot, root, "model_type", &mt)) ||
        (hp->nested && (st = get_string(&w, tc, "model_type", &tmt))))
        return st;
    if (mt && strcmp(mt, "gemma3n") != 0 && strcmp(mt, "gemma3n_text") != 0)
        return gf_error(GEMFA_ERR_UNSUPPORTED,
                        "%s: model_type \"%s\" is not Gemma 3n (expected \"gemma3n\" or "
                        "\"gemma3n_text\")",
                        what, mt);
    if (tmt && strcmp(tmt, "gemma3n_text") != 0)
        return gf_error(GEMFA_ERR_UNSUPPORTED,
                        "%s: text_config.model_type \"%s\": expected \"gemma3n_text\"", what, tmt);

    int64_t v;
    if ((st = get_int(&w, tc, "hidden_size", 1, 0, 1, MAX_WIDTH, &hp->hidden_size)) ||
        (st = get_int(&w, tc, "num_hidden_layers", 1, 0, 1, GF_MAX_LAYERS, &v)))
        return st;
    hp->n_layers = (int)v;
    if ((st = get_int(&w, tc, "num_attention_heads", 1, 0, 1, MAX_HEADS, &v)))
        return st;
    hp->n_heads = (int)v;
    if ((st = get_int(&w, tc, "num_key_value_heads", 1, 0, 1, hp->n_heads, &v)))
        return st;
    hp->n_kv_heads = (int)v;
    if (hp->n_heads % hp->n_kv_heads != 0)
        return gf_error(GEMFA_ERR_CONFIG,
                        "%s: %snum_attention_heads %d is not a multiple of num_key_value_heads %d",
                        what, w.prefix, hp->n_heads, hp->n_kv_heads);
    /* spec §1: head_dim absent -> H / n_h */
    int64_t def_hd = hp->hidden_size / hp->n_heads;
    if ((st = get_int(&w, tc, "head_dim", 0, def_hd, 2, MAX_WIDTH, &hp->head_dim)))
        return st;
    if (hp->head_dim % 2 != 0) /* RoPE rotates pairs (j, j + d/2) */
        return gf_error(GEMFA_ERR_CONFIG, "%s: %shead_dim: expected an even number, found %" PRId64,
                        what, w.prefix, hp->head_dim);
    if ((st = get_int(&w, tc, "vocab_size", 1, 0, 1, MAX_VOCAB, &hp->vocab_size)) ||
        (st = get_int(&w, tc, "vocab_size_per_layer_input", 0, 262144, 1, MAX_VOCAB,
                      &hp->vocab_size_ple)) ||
        (st = get_int(&w, tc, "hidden_size_per_layer_input", 0, 256, 1, MAX_WIDTH, &hp->ple_dim)) ||
        (st = get_int(&w, tc, "sliding_window", 0, 512, 1, MAX_POSITIONS, &hp->sliding_window)) ||
        (st = get_int(&w, tc, "max_position_embeddings", 0, 32768, 1, MAX_POSITIONS,
                      &hp->max_position_embeddings)) ||
        (st = get_int(&w, tc, "num_kv_shared_layers", 0, 15, 0, hp->n_layers - 1, &v)))
        return st;
    hp->n_kv_shared_layers = (int)v;
    if ((st = get_int(&w, tc, "altup_num_inputs", 0, 4, 2, GF_ALTUP_MAX, &v)))
        return st;
    hp->altup_num_inputs = (int)v;
    if ((st = get_int(&w, tc, "altup_active_idx", 0, 0, 0, hp->altup_num_inputs - 1, &v)))
        return st;
    hp->altup_active_idx = (int)v;
    if ((st = get_bool(&w, tc, "altup_correct_scale", 1, &hp->altup_correct_scale)) ||
        (st = get_float(&w, tc, "altup_coef_clip", 0, 0, 1, 1e30, &hp->altup_coef_clip)) ||
        (st = get_int(&w, tc, "laurel_rank", 0, 64, 1, MAX_WIDTH, &hp->laurel_rank)) ||
        (st = get_float(&w, tc, "rms_norm_eps", 1e-6, 0, 1, 1, &hp->rms_norm_eps)) ||
        (st = get_float(&w, tc, "final_logit_softcapping", 0, 0, 0, 1e30,
                        &hp->final_logit_softcapping)) ||
        (st = get_bool(&w, tc, "tie_word_embeddings", 1, &hp->tie_word_embeddings)))
        return st;
    /* HF's default clip is 120 when the key is absent; null disables it. */
    if (!gf_json_get(tc, "altup_coef_clip"))
        hp->altup_coef_clip = 120.0f;
    if (!gf_json_get(tc, "final_logit_softcapping"))
        hp->final_logit_softcapping = 30.0f;
    /* tie_word_embeddings may sit at the root of a multimodal export */
    if (hp->nested && !gf_json_get(tc, "tie_word_embeddings") &&
        (st = get_bool(&wroot, root, "tie_word_embeddings", 1, &hp->tie_word_embeddings)))
        return st;

    const char *act = NULL;
    if ((st = get_string(&w, tc, "hidden_activation", &act)))
        return st;
    if (act && strcmp(act, "gelu_pytorch_tanh") != 0)
        return gf_error(GEMFA_ERR_UNSUPPORTED,
                        "%s: %shidden_activation \"%s\": only \"gelu_pytorch_tanh\" is implemented",
                        what, w.prefix, act);
    int bias = 0;
    if ((st = get_bool(&w, tc, "attention_bias", 0, &bias)))
        return st;
    if (bias)
        return gf_error(GEMFA_ERR_UNSUPPORTED, "%s: %sattention_bias true: Gemma 3n has no biases",
                        what, w.prefix);

    int L = hp->n_layers;
    hp->ffn_width = gf_calloc((size_t)L, sizeof *hp->ffn_width);
    hp->sparsity = gf_calloc((size_t)L, sizeof *hp->sparsity);
    hp->is_sliding = gf_calloc((size_t)L, sizeof *hp->is_sliding);
    hp->kv_source = gf_calloc((size_t)L, sizeof *hp->kv_source);
    if (!hp->ffn_width || !hp->sparsity || !hp->is_sliding || !hp->kv_source)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    if ((st = parse_ffn(&w, tc, hp)) || (st = parse_layer_types(&w, tc, hp)) ||
        (st = parse_sparsity(&w, tc, hp)) || (st = parse_rope(&w, tc, hp)) ||
        (st = compute_kv_source(&w, hp)))
        return st;

    hp->bos_id = get_id(tc, "bos_token_id");
    hp->eos_id = get_id(tc, "eos_token_id");
    hp->pad_id = get_id(tc, "pad_token_id");
    if (hp->nested) {
        if (hp->bos_id < 0)
            hp->bos_id = get_id(root, "bos_token_id");
        if (hp->eos_id < 0)
            hp->eos_id = get_id(root, "eos_token_id");
        if (hp->pad_id < 0)
            hp->pad_id = get_id(root, "pad_token_id");
    }
    parse_mm(root, "vision_config", 262144, &hp->vision);
    parse_mm(root, "audio_config", 262272, &hp->audio);
    return GEMFA_OK;
}

gemfa_status gf_config_parse(const gf_json *root, const char *what, gf_hparams *hp)
{
    memset(hp, 0, sizeof *hp);
    gemfa_status st = parse_all(root, what, hp);
    if (st != GEMFA_OK)
        gf_hparams_free(hp);
    return st;
}

gemfa_status gf_config_load(const char *path, gf_hparams *hp, gf_json **root_out)
{
    char *text = NULL;
    size_t len = 0;
    gemfa_status st = gf_read_file(path, (size_t)16 << 20, &text, &len);
    if (st != GEMFA_OK)
        return st;
    if (len == 0) {
        gf_free(text);
        return gf_error(GEMFA_ERR_FORMAT, "%s: the file is empty (expected a JSON object)", path);
    }
    gf_json *root = NULL;
    st = gf_json_parse(text, len, path, &root);
    gf_free(text);
    if (st != GEMFA_OK)
        return st;
    st = gf_config_parse(root, path, hp);
    if (st == GEMFA_OK && root_out)
        *root_out = root;
    else
        gf_json_free(root);
    return st;
}

gemfa_status gf_config_id_list(const gf_json *value, int32_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    if (!value)
        return GEMFA_OK;
    size_t count = value->type == GF_JSON_ARRAY ? value->len : 1;
    int32_t *out = gf_malloc(gf_mul_size(count ? count : 1, sizeof *out));
    if (!out)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        const gf_json *e = value->type == GF_JSON_ARRAY ? value->items[i] : value;
        int64_t v;
        if (!gf_json_as_int(e, &v) || v < 0 || v > INT32_MAX)
            continue;
        int dup = 0;
        for (size_t m = 0; m < k; m++)
            dup |= out[m] == (int32_t)v;
        if (!dup)
            out[k++] = (int32_t)v;
    }
    if (k == 0) {
        gf_free(out);
        return GEMFA_OK;
    }
    *ids = out;
    *n = k;
    return GEMFA_OK;
}
