/* model.c — the public model calls: options, gemfa_model_load (which runs
 * config -> shards -> bind -> tokenizer -> generation config), free, and the
 * info queries. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/status.h"
#include "loader/config.h"
#include "loader/load.h"
#include "loader/matformer.h"
#include "loader/lora.h"
#include "loader/safetensors.h"
#include "text/text.h"

/* ---------------------------------------------------------------- options */

GEMFA_API gemfa_status gemfa_model_options_new(gemfa_model_options **out)
{
    if (!out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_model_options_new: out is NULL");
    gemfa_model_options *o = gf_calloc(1, sizeof *o);
    if (!o)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_model_options_new: out of memory");
    o->weights = GEMFA_WEIGHTS_AUTO;
    *out = o;
    return GEMFA_OK;
}

GEMFA_API void gemfa_model_options_free(gemfa_model_options *opts)
{
    if (opts) {
        gf_free(opts->matformer);
        gf_lora_requests_free(opts->lora, opts->n_lora);
    }
    gf_free(opts);
}

GEMFA_API gemfa_status gemfa_model_options_set_weights(gemfa_model_options *opts,
                                                       gemfa_weight_type type)
{
    if (!opts)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_model_options_set_weights: opts is NULL");
    if ((unsigned)type > GEMFA_WEIGHTS_Q4)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_model_options_set_weights: %d is not a gemfa_weight_type (0..%d)",
                        (int)type, (int)GEMFA_WEIGHTS_Q4);
    opts->weights = type;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_model_options_set_vocab_only(gemfa_model_options *opts, int on)
{
    if (!opts)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_model_options_set_vocab_only: opts is NULL");
    opts->vocab_only = on != 0;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_model_options_set_progress(gemfa_model_options *opts,
                                                        gemfa_progress_fn fn, void *user)
{
    if (!opts)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_model_options_set_progress: opts is NULL");
    opts->progress = fn;
    opts->progress_user = user;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_model_options_set_threads(gemfa_model_options *opts, int n_threads)
{
    if (!opts)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_model_options_set_threads: opts is NULL");
    if (n_threads < 0)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_model_options_set_threads: %d threads (expected >= 0)", n_threads);
    opts->n_threads = n_threads;
    return GEMFA_OK;
}

/* ------------------------------------------------------------- internals */

gemfa_status gf_progress_report(const gf_progress *p, float fraction, const char *stage)
{
    if (p && p->fn && p->fn(p->user, fraction, stage) != 0)
        return gf_error(GEMFA_ERR_CANCELLED,
                        "loading cancelled by the progress callback at %.0f%% (stage \"%s\")",
                        (double)fraction * 100.0, stage);
    return GEMFA_OK;
}

void *gf_model_alloc(gemfa_model *m, size_t bytes)
{
    size_t n = m->n_owned;
    if ((n & (n - 1)) == 0) { /* grow the list at powers of two */
        void **list = gf_realloc(m->owned, gf_mul_size(n ? n * 2 : 8, sizeof *list));
        if (!list)
            return NULL;
        m->owned = list;
    }
    void *p = gf_alloc_aligned(bytes);
    if (p)
        m->owned[m->n_owned++] = p;
    return p;
}

static int cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

/* The weight type the big matrices ended up in (AUTO resolves to what the
 * files store). */
static gemfa_weight_type resolved_type(const gemfa_model *m, gemfa_weight_type asked)
{
    if (asked != GEMFA_WEIGHTS_AUTO || m->vocab_only || !m->layers)
        return asked;
    int l = 0; /* a MatFormer load leaves skipped layers unbound */
    while (l < m->hp.n_layers - 1 && !m->layers[l].q_proj.data)
        l++;
    switch (m->layers[l].q_proj.dtype) {
    case GF_DTYPE_F32: return GEMFA_WEIGHTS_F32;
    case GF_DTYPE_F16: return GEMFA_WEIGHTS_F16;
    case GF_DTYPE_BF16: return GEMFA_WEIGHTS_BF16;
    case GF_DTYPE_Q8: return GEMFA_WEIGHTS_INT8;
    case GF_DTYPE_Q4: return GEMFA_WEIGHTS_Q4;
    }
    return asked;
}

static int32_t special_id(const gemfa_model *m, const char *piece, int32_t fallback)
{
    if (m->text) {
        int32_t id = gf_text_find(m->text, piece, strlen(piece));
        if (id >= 0)
            return id;
    }
    return fallback;
}

static gemfa_status load(gemfa_model *m, const char *dir, const gemfa_model_options *o)
{
    gf_progress prog = {o->progress, o->progress_user};
    gemfa_status st;
    gf_json *config = NULL;

    if ((st = gf_progress_report(&prog, 0.0f, "config")))
        return st;
    char *config_path = gf_path_join(dir, "config.json");
    if (!config_path)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
    /* vocabulary-only loads work on a bare tokenizer directory, but not on
     * one that has nothing to load */
    int has_config = access(config_path, F_OK) == 0;
    gf_free(config_path);
    if (!o->vocab_only || has_config) {
        config_path = gf_path_join(dir, "config.json");
        st = config_path ? gf_config_load(config_path, &m->hp, &config)
                         : gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
        gf_free(config_path);
    } else {
        char *tok = gf_path_join(dir, "tokenizer.json");
        if (!tok)
            return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
        int has_tok = access(tok, F_OK) == 0;
        gf_free(tok);
        if (!has_tok)
            return gf_error(GEMFA_ERR_NOT_FOUND,
                            "%s: nothing to load: neither config.json nor tokenizer.json is there",
                            dir);
    }

    /* adapters are read and checked before the checkpoint is mapped */
    if (st == GEMFA_OK && !o->vocab_only && o->n_lora &&
        !(st = gf_progress_report(&prog, 0.01f, "lora")))
        st = gf_lora_open(o->lora, o->n_lora, &m->lora);
    if (st == GEMFA_OK && !o->vocab_only) {
        if (!(st = gf_progress_report(&prog, 0.02f, "map")) &&
            !(st = gf_shard_set_open(dir, &m->shards)) &&
            !(st = gf_progress_report(&prog, 0.05f, "validate")))
            st = gf_bind_weights(m, o->weights,
                                 o->n_threads > 0 ? o->n_threads : cpu_count(), &prog, 0.05f,
                                 0.95f, o->matformer);
        if (m->lora) {
            m->n_lora_adapters = (int64_t)m->lora->n_adapters;
            m->n_lora_merged = m->lora->n_merged;
            m->lora_fingerprint = m->lora->fingerprint;
            gf_lora_free(m->lora); /* the adapters' mappings go: merged weights are owned */
            m->lora = NULL;
        }
    }
    m->weight_type = resolved_type(m, o->weights);

    if (st == GEMFA_OK && !(st = gf_progress_report(&prog, 0.95f, "tokenizer")))
        st = gf_text_load(dir, &m->text);

    if (st == GEMFA_OK) {
        int64_t vocab = m->hp.vocab_size;
        if (vocab <= 0 && m->text)
            vocab = gf_text_n_pieces(m->text);
        st = gf_generation_load(dir, config, vocab, m);
    }
    gf_json_free(config);
    if (st != GEMFA_OK)
        return st;

    m->bos_id = special_id(m, "<bos>", m->hp.n_layers ? m->hp.bos_id : -1);
    m->pad_id = special_id(m, "<pad>", m->hp.n_layers ? m->hp.pad_id : -1);
    m->unk_id = special_id(m, "<unk>", -1);
    m->start_of_turn_id = special_id(m, "<start_of_turn>", -1);
    m->end_of_turn_id = special_id(m, "<end_of_turn>", -1);
    return gf_progress_report(&prog, 1.0f, "done");
}

GEMFA_API gemfa_status gemfa_model_load(const char *path, const gemfa_model_options *opts,
                                        gemfa_model **out)
{
    if (!path || !out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_model_load: %s is NULL",
                        !path ? "path" : "out");
    gemfa_model_options defaults = {.weights = GEMFA_WEIGHTS_AUTO};
    const gemfa_model_options *o = opts ? opts : &defaults;
    if ((unsigned)o->weights > GEMFA_WEIGHTS_Q4 || o->n_threads < 0)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_model_load: invalid options");

    struct stat sb;
    if (stat(path, &sb) != 0) {
        int e = errno;
        return gf_error(gf_errno_status(e), "%s: cannot open model directory: %s", path,
                        strerror(e));
    }
    /* a file where the directory should be: no directory by that name */
    if (!S_ISDIR(sb.st_mode))
        return gf_error(GEMFA_ERR_NOT_FOUND,
                        "%s: not a directory (pass the checkpoint directory)", path);

    gemfa_model *m = gf_calloc(1, sizeof *m);
    if (!m)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_model_load: out of memory");
    m->vocab_only = o->vocab_only;
    atomic_init(&m->refs, 1);
    m->bos_id = m->pad_id = m->unk_id = m->start_of_turn_id = m->end_of_turn_id = -1;
    m->path = gf_strndup(path, strlen(path));
    gemfa_status st = m->path ? load(m, path, o)
                              : gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_model_load: out of memory");
    if (st == GEMFA_OK && o->matformer) {
        /* the sub-model keeps the loaded model alive; this handle goes.
         * Binding already left out what the sub-model does not use. */
        gemfa_model *sub = NULL;
        st = o->vocab_only ? gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                                      "gemfa_model_load: the matformer option needs weights, "
                                      "not a vocabulary-only load")
                           : gf_mf_derive_text(m, o->matformer, "gemfa_model_load", &sub);
        if (st == GEMFA_OK) {
            gemfa_model_free(m);
            m = sub;
        }
    }
    if (st != GEMFA_OK) {
        gemfa_model_free(m);
        return st;
    }
    *out = m;
    return GEMFA_OK;
}

GEMFA_API void gemfa_model_free(gemfa_model *m)
{
    if (!m)
        return;
    /* Every model counts its holders: its handle and the sub-models derived
     * from it (which may borrow its weights).  The last one frees it; a
     * freed sub-model then lets go of the model it was derived from. */
    while (m->base) {
        if (atomic_fetch_sub(&m->refs, 1) > 1)
            return;
        gemfa_model *parent = m->base;
        gf_mf_free_derived(m);
        m = parent;
    }
    if (atomic_fetch_sub(&m->refs, 1) > 1)
        return;
    gf_text_free(m->text);
    gf_lora_free(m->lora);
    for (size_t i = 0; i < m->n_owned; i++)
        gf_free_aligned(m->owned[i]);
    gf_free(m->owned);
    gf_shard_set_free(m->shards); /* unmaps: after everything pointing into it */
    gf_free(m->layers);
    gf_free(m->eog_ids);
    gf_free(m->tensor_prefix);
    gf_hparams_free(&m->hp);
    gf_free(m->path);
    gf_free(m->matformer);
    gf_free(m);
}

/* --------------------------------------------------------------- queries */

GEMFA_API gemfa_status gemfa_model_get(const gemfa_model *m, gemfa_model_prop prop,
                                       int64_t *value)
{
    if (!m || !value)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_model_get: %s is NULL",
                        !m ? "model" : "value");
    const gf_hparams *hp = &m->hp;
    int64_t v;
    switch (prop) {
    case GEMFA_PROP_VOCAB_SIZE:
        v = hp->vocab_size > 0 ? hp->vocab_size : m->text ? gf_text_n_pieces(m->text) : 0;
        break;
    case GEMFA_PROP_TOKENIZER_SIZE: v = m->text ? gf_text_n_pieces(m->text) : 0; break;
    case GEMFA_PROP_CONTEXT_LENGTH: v = hp->max_position_embeddings; break;
    case GEMFA_PROP_N_LAYERS: v = hp->n_layers; break;
    case GEMFA_PROP_HIDDEN_SIZE: v = hp->hidden_size; break;
    case GEMFA_PROP_N_HEADS: v = hp->n_heads; break;
    case GEMFA_PROP_N_KV_HEADS: v = hp->n_kv_heads; break;
    case GEMFA_PROP_HEAD_DIM: v = hp->head_dim; break;
    case GEMFA_PROP_SLIDING_WINDOW: v = hp->sliding_window; break;
    case GEMFA_PROP_N_KV_SHARED_LAYERS: v = hp->n_kv_shared_layers; break;
    case GEMFA_PROP_PER_LAYER_INPUT_SIZE: v = hp->ple_dim; break;
    case GEMFA_PROP_VOCAB_SIZE_PER_LAYER_INPUT: v = hp->vocab_size_ple; break;
    case GEMFA_PROP_BOS_ID: v = m->bos_id; break;
    case GEMFA_PROP_EOS_ID: v = m->n_eog_ids ? m->eog_ids[0] : -1; break;
    case GEMFA_PROP_PAD_ID: v = m->pad_id; break;
    case GEMFA_PROP_UNK_ID: v = m->unk_id; break;
    case GEMFA_PROP_START_OF_TURN_ID: v = m->start_of_turn_id; break;
    case GEMFA_PROP_END_OF_TURN_ID: v = m->end_of_turn_id; break;
    case GEMFA_PROP_N_PARAMS: v = m->n_params; break;
    case GEMFA_PROP_N_PARAMS_PLE: v = m->n_params_ple; break;
    case GEMFA_PROP_WEIGHT_BYTES: v = m->weight_bytes; break;
    case GEMFA_PROP_WEIGHT_TYPE: v = m->weight_type; break;
    case GEMFA_PROP_HAS_WEIGHTS: v = !m->vocab_only; break;
    case GEMFA_PROP_HAS_TOKENIZER: v = m->text != NULL; break;
    case GEMFA_PROP_STORED_BYTES_F32: v = m->stored_bytes[GF_DTYPE_F32]; break;
    case GEMFA_PROP_STORED_BYTES_F16: v = m->stored_bytes[GF_DTYPE_F16]; break;
    case GEMFA_PROP_STORED_BYTES_BF16: v = m->stored_bytes[GF_DTYPE_BF16]; break;
    case GEMFA_PROP_STORED_BYTES_INT8: v = m->stored_bytes[GF_DTYPE_Q8]; break;
    case GEMFA_PROP_STORED_BYTES_Q4: v = m->stored_bytes[GF_DTYPE_Q4]; break;
    case GEMFA_PROP_MATFORMER: v = m->base != NULL; break;
    case GEMFA_PROP_BASE_LAYERS: v = gf_model_root(m)->hp.n_layers; break;
    case GEMFA_PROP_SKIPPED_LAYERS: v = gf_model_root(m)->hp.n_layers - hp->n_layers; break;
    case GEMFA_PROP_LORA_ADAPTERS: v = m->n_lora_adapters; break;
    case GEMFA_PROP_LORA_MATRICES: v = m->n_lora_merged; break;
    default:
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_model_get: unknown property %d",
                        (int)prop);
    }
    *value = v;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_model_layer(const gemfa_model *m, int layer, gemfa_layer_type *type,
                                         int *kv_source, int64_t *ffn_width, float *sparsity)
{
    if (!m)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_model_layer: model is NULL");
    if (m->vocab_only)
        return gf_error(GEMFA_ERR_NO_WEIGHTS, "gemfa_model_layer: the model was loaded "
                                              "vocabulary-only");
    if (layer < 0 || layer >= m->hp.n_layers)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_model_layer: layer %d out of range [0, %d)", layer,
                        m->hp.n_layers);
    if (type)
        *type = m->hp.is_sliding[layer] ? GEMFA_LAYER_SLIDING : GEMFA_LAYER_FULL;
    if (kv_source)
        *kv_source = m->hp.kv_source[layer];
    if (ffn_width)
        *ffn_width = m->hp.ffn_width[layer];
    if (sparsity)
        *sparsity = m->hp.sparsity[layer];
    return GEMFA_OK;
}

GEMFA_API int gemfa_model_is_eog(const gemfa_model *m, int32_t id)
{
    if (!m)
        return 0;
    for (size_t i = 0; i < m->n_eog_ids; i++)
        if (m->eog_ids[i] == id)
            return 1;
    return 0;
}

GEMFA_API gemfa_status gemfa_model_eog_ids(const gemfa_model *m, int32_t *ids, size_t cap,
                                           size_t *n)
{
    if (!m || !n || (cap && !ids))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_model_eog_ids: %s is NULL",
                        !m ? "model" : !n ? "n" : "ids");
    if (cap < m->n_eog_ids) {
        *n = m->n_eog_ids;
        return gf_error(GEMFA_ERR_BUFFER_TOO_SMALL,
                        "gemfa_model_eog_ids: %zu ids need a buffer of %zu, got %zu",
                        m->n_eog_ids, m->n_eog_ids, cap);
    }
    if (m->n_eog_ids)
        memcpy(ids, m->eog_ids, m->n_eog_ids * sizeof *ids);
    *n = m->n_eog_ids;
    return GEMFA_OK;
}
