/* lora.c — reading PEFT LoRA adapters and merging them into weights
 * (lora.h; the rules are in docs/lora.md). */
#include "loader/lora.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/status.h"
#include "kernels/convert.h"

#define CONFIG_NAME "adapter_config.json"
#define WEIGHTS_NAME "adapter_model.safetensors"
#define CONFIG_MAX_BYTES ((size_t)16 << 20)

/* Linear modules of Gemma 3n's text decoder (and its multimodal embedders)
 * that a target_modules list may name. */
static const char *const known_modules[] = {
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
    "linear_left", "linear_right", "per_layer_input_gate", "per_layer_projection",
    "modality_router", "per_layer_model_projection", "embedding_projection", "lm_head",
    "self_attn", "mlp", "laurel", "altup", NULL};

/* Parts of the checkpoint libgemfa never runs: their pairs are ignored. */
static const char *const tower_parts[] = {"vision_tower.", "audio_tower.",
                                          "multi_modal_projector.", NULL};

/* Prefixes under which a Gemma 3n checkpoint keeps the decoder (bind.c),
 * longest first so "model." does not shadow "model.language_model.". */
static const char *const decoder_prefixes[] = {"model.language_model.", "language_model.model.",
                                               "model.", "language_model.", NULL};

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int ends_with(const char *s, const char *p)
{
    size_t n = strlen(s), k = strlen(p);
    return n >= k && strcmp(s + n - k, p) == 0;
}

/* ------------------------------------------------------------ the config */

typedef struct adapter_config {
    int64_t r;
    double alpha;
    int rslora;
    const gf_json *targets; /* list, string or NULL */
} adapter_config;

/* A key that must be absent, null, false, empty or equal to `ok` (a
 * string) for libgemfa to read the adapter the way PEFT would run it. */
static int is_unset(const gf_json *v)
{
    if (!v || v->type == GF_JSON_NULL)
        return 1;
    if (v->type == GF_JSON_BOOL)
        return !v->boolean;
    if (v->type == GF_JSON_ARRAY || v->type == GF_JSON_OBJECT)
        return v->len == 0;
    if (v->type == GF_JSON_STRING)
        return v->len == 0;
    return 0;
}

static gemfa_status read_config(const char *dir, const char *path, adapter_config *c,
                                gf_json **tree)
{
    char *text = NULL;
    size_t len = 0;
    gemfa_status st = gf_read_file(path, CONFIG_MAX_BYTES, &text, &len);
    if (st)
        return gf_error_prefix(st, "LoRA adapter %s", dir);
    st = gf_json_parse(text, len, path, tree);
    gf_free(text);
    if (st)
        return st;
    const gf_json *j = *tree;
    if (j->type != GF_JSON_OBJECT)
        return gf_error(GEMFA_ERR_FORMAT, "%s: not a JSON object", path);

    const gf_json *v = gf_json_get(j, "peft_type");
    if (v && v->type != GF_JSON_NULL &&
        (v->type != GF_JSON_STRING || strcmp(v->str, "LORA") != 0))
        return gf_error(GEMFA_ERR_UNSUPPORTED,
                        "%s: peft_type %s%.40s%s: libgemfa reads LoRA adapters only (\"LORA\")",
                        path, v->type == GF_JSON_STRING ? "\"" : "",
                        v->type == GF_JSON_STRING ? v->str : "(not a string)",
                        v->type == GF_JSON_STRING ? "\"" : "");
    /* PEFT's defaults: r 8, lora_alpha 8, use_rslora false */
    c->r = 8;
    c->alpha = 8;
    c->rslora = 0;
    if ((v = gf_json_get(j, "r")) && !gf_json_as_int(v, &c->r))
        return gf_error(GEMFA_ERR_CONFIG, "%s: r must be an integer", path);
    if (c->r < 1 || c->r > 65536)
        return gf_error(GEMFA_ERR_CONFIG, "%s: r = %" PRId64 " (a rank of 1 to 65536 expected)",
                        path, c->r);
    if ((v = gf_json_get(j, "lora_alpha")) && !gf_json_as_double(v, &c->alpha))
        return gf_error(GEMFA_ERR_CONFIG, "%s: lora_alpha must be a number", path);
    if (!isfinite(c->alpha))
        return gf_error(GEMFA_ERR_CONFIG, "%s: lora_alpha is not finite", path);
    if ((v = gf_json_get(j, "use_rslora")) && v->type != GF_JSON_NULL &&
        !gf_json_as_bool(v, &c->rslora))
        return gf_error(GEMFA_ERR_CONFIG, "%s: use_rslora must be true or false", path);

    /* what libgemfa cannot apply: refused rather than silently dropped */
    static const struct { const char *key, *why; } refused[] = {
        {"modules_to_save", "modules_to_save (whole modules trained and saved with the "
                            "adapter) is not supported; merge the adapter with PEFT instead"},
        {"use_dora", "DoRA (use_dora) is not supported"},
        {"rank_pattern", "per-module ranks (rank_pattern) are not supported"},
        {"alpha_pattern", "per-module alphas (alpha_pattern) are not supported"},
        {"lora_bias", "LoRA biases (lora_bias) are not supported"},
        {"target_parameters", "target_parameters (LoRA on parameters) is not supported"},
        {"trainable_token_indices", "trainable_token_indices is not supported"},
        {"use_qalora", "QA-LoRA (use_qalora) is not supported"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (!is_unset(gf_json_get(j, refused[i].key)))
            return gf_error(GEMFA_ERR_UNSUPPORTED, "%s: %s", path, refused[i].why);
    /* fan_in_fan_out only concerns GPT-2 style Conv1D weights: PEFT turns it
     * off for torch.nn.Linear (all of Gemma 3n), so the tensors are the
     * usual A [r][in], B [out][r]; the shape checks catch anything else. */
    int fifo = 0;
    if ((v = gf_json_get(j, "fan_in_fan_out")) && v->type != GF_JSON_NULL &&
        !gf_json_as_bool(v, &fifo))
        return gf_error(GEMFA_ERR_CONFIG, "%s: fan_in_fan_out must be true or false", path);
    if (fifo)
        gf_log(GEMFA_LOG_WARN,
               "%s: fan_in_fan_out is true, which PEFT ignores for nn.Linear (every Gemma 3n "
               "target): read as false",
               path);

    c->targets = gf_json_get(j, "target_modules");
    if (c->targets && c->targets->type == GF_JSON_NULL)
        c->targets = NULL;
    if (c->targets && c->targets->type != GF_JSON_STRING && c->targets->type != GF_JSON_ARRAY)
        return gf_error(GEMFA_ERR_CONFIG, "%s: target_modules must be a list or a string", path);
    if (c->targets && c->targets->type == GF_JSON_ARRAY)
        for (size_t i = 0; i < c->targets->len; i++)
            if (c->targets->items[i]->type != GF_JSON_STRING ||
                strlen(c->targets->items[i]->str) != c->targets->items[i]->len)
                return gf_error(GEMFA_ERR_CONFIG,
                                "%s: target_modules[%zu] is not a string", path, i);
    return GEMFA_OK;
}

/* PEFT's rule for a list: the module's name equals an entry or ends with
 * "." + entry.  A string is a Python regular expression PEFT matched when
 * the adapter was made; libgemfa does not evaluate it (the tensors saved
 * are exactly those of the matched modules). */
static int entry_matches(const char *e, const char *module)
{
    size_t n = strlen(module), k = strlen(e);
    return strcmp(module, e) == 0 || (n > k && module[n - k - 1] == '.' && ends_with(module, e));
}

static int list_matches(const gf_json *list, const char *module)
{
    for (size_t i = 0; i < list->len; i++)
        if (entry_matches(list->items[i]->str, module))
            return 1;
    return 0;
}

/* ------------------------------------------------------------- tensors */

static void free_target(gf_lora_target *t)
{
    gf_free(t->module);
    gf_free(t->weight);
    gf_free(t->pairs);
}

void gf_lora_free(gf_lora_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_targets; i++)
        free_target(&s->targets[i]);
    gf_free(s->targets);
    for (size_t i = 0; i < s->n_adapters; i++) {
        gf_st_file_close(&s->files[i]);
        gf_free(s->dirs[i]);
    }
    gf_free(s->files);
    gf_free(s->dirs);
    gf_free_aligned(s->scratch);
    gf_free(s);
}

float *gf_lora_scratch(gf_lora_set *s, size_t n)
{
    if (n > s->scratch_cap) {
        float *p = gf_alloc_aligned(gf_mul_size(n, sizeof *p));
        if (!p)
            return NULL;
        gf_free_aligned(s->scratch);
        s->scratch = p;
        s->scratch_cap = n;
    }
    return s->scratch;
}

/* Splits a PEFT tensor name "[base_model.model.]<module>.lora_A.weight"
 * into the module (a copy) and which half it is ('A' or 'B'). */
static gemfa_status parse_name(const char *path, const char *name, char **module, char *half)
{
    static const char *const halves[] = {".lora_A.weight", ".lora_B.weight"};
    const char *n = starts_with(name, "base_model.model.") ? name + 17 : name;
    for (int h = 0; h < 2; h++)
        if (ends_with(n, halves[h]) && strlen(n) > strlen(halves[h])) {
            *module = gf_strndup(n, strlen(n) - strlen(halves[h]));
            *half = h ? 'B' : 'A';
            return *module ? GEMFA_OK : gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
        }
    const char *why = strstr(name, "lora_magnitude_vector") ? " (DoRA)"
                      : strstr(name, "lora_embedding_")     ? " (LoRA on an embedding)"
                      : strstr(name, "modules_to_save") || !strstr(name, "lora_")
                          ? " (a whole module saved with the adapter, modules_to_save)"
                          : "";
    return gf_error(GEMFA_ERR_UNSUPPORTED,
                    "%s: tensor '%s' is not the lora_A/lora_B weight of a linear layer%s; "
                    "libgemfa merges plain LoRA pairs only",
                    path, name, why);
}

typedef struct half_entry {
    char *module;
    char half;
    const gf_st_tensor *t;
} half_entry;

static int cmp_half(const void *x, const void *y)
{
    const half_entry *a = x, *b = y;
    int c = strcmp(a->module, b->module);
    return c ? c : (a->half > b->half) - (a->half < b->half);
}

static int float_dtype(gf_st_dtype d) { return d == GF_ST_F32 || d == GF_ST_F16 || d == GF_ST_BF16; }

/* The pairs of adapter `k` (file f, config c) appended to s->targets. */
static gemfa_status collect_pairs(gf_lora_set *s, size_t k, const char *path,
                                  const adapter_config *c)
{
    const gf_st_file *f = &s->files[k];
    half_entry *e = gf_calloc(f->n_tensors ? f->n_tensors : 1, sizeof *e);
    if (!e)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
    gemfa_status st = GEMFA_OK;
    size_t n = 0;
    for (; n < f->n_tensors && !st; n++) {
        e[n].t = &f->tensors[n];
        st = parse_name(path, f->tensors[n].name, &e[n].module, &e[n].half);
    }
    if (st)
        goto out;
    if (!n) {
        st = gf_error(GEMFA_ERR_TENSOR_MISSING, "%s: the adapter holds no tensors", path);
        goto out;
    }
    qsort(e, n, sizeof *e, cmp_half);

    gf_lora_target *grown =
        gf_realloc(s->targets, gf_mul_size(s->n_targets + n, sizeof *s->targets));
    if (!grown) {
        st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
        goto out;
    }
    s->targets = grown;
    for (size_t i = 0; i < n && !st;) {
        size_t j = i;
        while (j < n && strcmp(e[j].module, e[i].module) == 0)
            j++;
        const half_entry *a = e[i].half == 'A' ? &e[i] : NULL;
        const half_entry *b = j - i > 1 && e[i + 1].half == 'B' ? &e[i + 1]
                              : e[i].half == 'B'                ? &e[i]
                                                                : NULL;
        if (j - i > 2 || (j - i == 2 && (!a || !b))) {
            st = gf_error(GEMFA_ERR_FORMAT, "%s: module '%s' has more than one %s pair", path,
                          e[i].module, "lora_A/lora_B");
            break;
        }
        if (!a || !b) {
            st = gf_error(GEMFA_ERR_TENSOR_MISSING,
                          "%s: module '%s' has lora_%c.weight but lora_%c.weight is missing",
                          path, e[i].module, a ? 'A' : 'B', a ? 'B' : 'A');
            break;
        }
        const gf_st_tensor *ta = a->t, *tb = b->t;
        if (ta->n_dims != 2 || tb->n_dims != 2 || !float_dtype(ta->dtype) ||
            !float_dtype(tb->dtype)) {
            st = gf_error(GEMFA_ERR_TENSOR_SHAPE,
                          "%s: module '%s': lora_A and lora_B must be 2-D F32/F16/BF16 "
                          "(found %dD %s and %dD %s)",
                          path, e[i].module, ta->n_dims, gf_st_dtype_name(ta->dtype),
                          tb->n_dims, gf_st_dtype_name(tb->dtype));
            break;
        }
        if (ta->shape[0] != tb->shape[1] || ta->shape[0] < 1 || ta->shape[1] < 1 ||
            tb->shape[0] < 1) {
            st = gf_error(GEMFA_ERR_TENSOR_SHAPE,
                          "%s: module '%s': lora_A [%" PRId64 ", %" PRId64
                          "] and lora_B [%" PRId64 ", %" PRId64 "] do not multiply "
                          "(B's columns must equal A's rows, the rank)",
                          path, e[i].module, ta->shape[0], ta->shape[1], tb->shape[0],
                          tb->shape[1]);
            break;
        }
        if (ta->shape[0] != c->r) {
            st = gf_error(GEMFA_ERR_CONFIG,
                          "%s: module '%s' has rank %" PRId64 " but adapter_config.json says "
                          "r = %" PRId64,
                          path, e[i].module, ta->shape[0], c->r);
            break;
        }
        gf_lora_pair *p = gf_calloc(1, sizeof *p);
        if (!p) {
            st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
        *p = (gf_lora_pair){ta, tb, 0.0f, ta->shape[0], k};
        gf_lora_target *t = &s->targets[s->n_targets++];
        *t = (gf_lora_target){e[i].module, NULL, p, 1, 0, 0};
        e[i].module = NULL; /* owned by the target now */
        i = j;
    }
out:
    for (size_t i = 0; i < n; i++)
        gf_free(e[i].module);
    gf_free(e);
    return st;
}

/* Entries of a target_modules list must name modules Gemma 3n has (or
 * modules the adapter's own tensors use). */
static gemfa_status check_list(const gf_lora_set *s, size_t first, const char *path,
                               const adapter_config *c)
{
    if (!c->targets || c->targets->type != GF_JSON_ARRAY)
        return GEMFA_OK;
    for (size_t i = 0; i < c->targets->len; i++) {
        const char *e = c->targets->items[i]->str;
        int ok = 0;
        for (size_t k = 0; known_modules[k] && !ok; k++)
            ok = entry_matches(known_modules[k], e);
        if (strcmp(e, "all-linear") == 0)
            ok = 1;
        for (size_t t = first; t < s->n_targets && !ok; t++)
            ok = entry_matches(e, s->targets[t].module);
        if (!ok)
            return gf_error(GEMFA_ERR_MODEL_MISMATCH,
                            "%s: target_modules names '%.80s', which is not a module of Gemma "
                            "3n's text decoder (an adapter for another model?)",
                            path, e);
    }
    for (size_t t = first; t < s->n_targets; t++)
        if (!list_matches(c->targets, s->targets[t].module))
            return gf_error(GEMFA_ERR_FORMAT,
                            "%s: the adapter has a pair for module '%s', which is not among "
                            "its target_modules",
                            path, s->targets[t].module);
    return GEMFA_OK;
}

static gemfa_status open_one(gf_lora_set *s, size_t k, const gf_lora_request *req)
{
    char *cpath = gf_path_join(req->dir, CONFIG_NAME);
    char *wpath = gf_path_join(req->dir, WEIGHTS_NAME);
    gf_json *tree = NULL;
    adapter_config c = {0};
    size_t first = s->n_targets;
    gemfa_status st = cpath && wpath ? GEMFA_OK
                                     : gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
    if (!st && !(st = read_config(req->dir, cpath, &c, &tree))) {
        st = gf_st_file_open(wpath, &s->files[k]);
        if (st)
            gf_error_prefix(st, "LoRA adapter %s", req->dir);
    }
    if (!st)
        st = collect_pairs(s, k, wpath, &c);
    if (!st)
        st = check_list(s, first, cpath, &c);
    if (!st) {
        double factor = req->scale * c.alpha / (c.rslora ? sqrt((double)c.r) : (double)c.r);
        float f = (float)factor;
        if (!isfinite(factor) || !isfinite(f))
            st = gf_error(GEMFA_ERR_CONFIG,
                          "%s: scale %g × lora_alpha %g / %s%" PRId64 " is not a finite float",
                          cpath, req->scale, c.alpha, c.rslora ? "sqrt " : "", c.r);
        for (size_t t = first; t < s->n_targets; t++)
            s->targets[t].pairs[0].scale = f;
    }
    gf_json_free(tree);
    gf_free(cpath);
    gf_free(wpath);
    return st;
}

gemfa_status gf_lora_open(const gf_lora_request *req, size_t n, gf_lora_set **out)
{
    gf_lora_set *s = gf_calloc(1, sizeof *s);
    if (!s)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
    s->files = gf_calloc(n ? n : 1, sizeof *s->files);
    s->dirs = gf_calloc(n ? n : 1, sizeof *s->dirs);
    gemfa_status st = s->files && s->dirs ? GEMFA_OK
                                          : gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t k = 0; k < n && !st; k++) {
        s->n_adapters = k + 1;
        s->dirs[k] = gf_strndup(req[k].dir, strlen(req[k].dir));
        st = s->dirs[k] ? open_one(s, k, &req[k])
                        : gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (st) {
        gf_lora_free(s);
        return st;
    }
    /* what a saved session state must match (runtime/fingerprint.c) */
    uint64_t h = GF_FNV64_INIT;
    for (size_t i = 0; i < s->n_targets; i++) {
        const gf_lora_target *t = &s->targets[i];
        const gf_lora_pair *p = &t->pairs[0];
        h = gf_fnv64(h, t->module, strlen(t->module) + 1);
        h = gf_fnv64(h, &p->adapter, sizeof p->adapter);
        h = gf_fnv64(h, &p->scale, sizeof p->scale);
        uint32_t crc = gf_crc32c(0, p->a->data, (size_t)(p->a->end - p->a->begin));
        crc = gf_crc32c(crc, p->b->data, (size_t)(p->b->end - p->b->begin));
        h = gf_fnv64(h, &crc, sizeof crc);
    }
    s->fingerprint = gf_hash_finish(h);
    *out = s;
    return GEMFA_OK;
}

/* ----------------------------------------------------- resolving names */

static int cmp_target(const void *x, const void *y)
{
    const gf_lora_target *a = x, *b = y;
    int c = strcmp(a->weight, b->weight);
    if (c)
        return c;
    /* the same tensor from several adapters: keep request order */
    return (a->pairs[0].adapter > b->pairs[0].adapter) - (a->pairs[0].adapter < b->pairs[0].adapter);
}

static gemfa_status resolve_one(gf_lora_target *t, const char *tensor_prefix)
{
    const char *m = t->module, *rest = m;
    for (int i = 0; tower_parts[i]; i++)
        if (strstr(m, tower_parts[i]) == m ||
            (starts_with(m, "model.") && starts_with(m + 6, tower_parts[i])))
            t->ignored = 1;
    const char *root = "";
    if (strcmp(m, "lm_head") == 0) {
        rest = "lm_head";
    } else if (starts_with(m, "model.embed_vision.") || starts_with(m, "model.embed_audio.")) {
        rest = m; /* bound from the checkpoint root (bind.c, bind_embedder) */
    } else {
        for (int i = 0; decoder_prefixes[i]; i++)
            if (starts_with(m, decoder_prefixes[i])) {
                rest = m + strlen(decoder_prefixes[i]);
                break;
            }
        root = tensor_prefix;
    }
    size_t n = strlen(root) + strlen(rest) + 8;
    t->weight = gf_malloc(n);
    if (!t->weight)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
    snprintf(t->weight, n, "%s%s.weight", root, rest);
    return GEMFA_OK;
}

gemfa_status gf_lora_resolve(gf_lora_set *s, const char *tensor_prefix)
{
    for (size_t i = 0; i < s->n_targets; i++)
        if (!s->targets[i].weight) {
            gemfa_status st = resolve_one(&s->targets[i], tensor_prefix);
            if (st)
                return st;
        }
    if (s->n_targets > 1)
        qsort(s->targets, s->n_targets, sizeof *s->targets, cmp_target);
    /* fold the pairs of one tensor (several adapters) into its first target */
    size_t w = 0;
    for (size_t i = 0; i < s->n_targets;) {
        size_t j = i + 1, np = s->targets[i].n_pairs;
        while (j < s->n_targets && strcmp(s->targets[j].weight, s->targets[i].weight) == 0)
            np += s->targets[j++].n_pairs;
        gf_lora_target t = s->targets[i];
        if (j - i > 1) {
            gf_lora_pair *p = gf_realloc(t.pairs, gf_mul_size(np, sizeof *p));
            if (!p)
                return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
            t.pairs = p;
            for (size_t k = i + 1; k < j; k++) {
                const gf_lora_target *o = &s->targets[k];
                if (o->pairs[0].adapter == t.pairs[t.n_pairs - 1].adapter) {
                    s->targets[i].pairs = t.pairs; /* keep ownership consistent */
                    return gf_error(GEMFA_ERR_FORMAT,
                                    "LoRA adapter %s: modules '%s' and '%s' both change tensor "
                                    "'%s'",
                                    s->dirs[o->pairs[0].adapter], t.module, o->module, t.weight);
                }
                memcpy(t.pairs + t.n_pairs, o->pairs, o->n_pairs * sizeof *p);
                t.n_pairs += o->n_pairs;
            }
            for (size_t k = i + 1; k < j; k++) {
                s->targets[k].n_pairs = 0;
                free_target(&s->targets[k]);
            }
        }
        s->targets[w++] = t;
        i = j;
    }
    s->n_targets = w;
    return GEMFA_OK;
}

gf_lora_target *gf_lora_find(gf_lora_set *s, const char *name)
{
    size_t lo = 0, hi = s->n_targets;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->targets[mid].weight, name);
        if (c == 0)
            return &s->targets[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

gemfa_status gf_lora_check_shape(const gf_lora_set *s, const gf_lora_target *t, int64_t rows,
                                 int64_t cols)
{
    for (size_t i = 0; i < t->n_pairs; i++) {
        const gf_lora_pair *p = &t->pairs[i];
        if (p->a->shape[1] != cols || p->b->shape[0] != rows)
            return gf_error(GEMFA_ERR_MODEL_MISMATCH,
                            "LoRA adapter %s: module '%s' is for a [%" PRId64 ", %" PRId64
                            "] weight (lora_B rows, lora_A columns) but the model's '%s' is "
                            "[%" PRId64 ", %" PRId64 "] (an adapter for another model size?)",
                            s->dirs[p->adapter], t->module, p->b->shape[0], p->a->shape[1],
                            t->weight, rows, cols);
    }
    return GEMFA_OK;
}

gemfa_status gf_lora_check_claimed(const gf_lora_set *s)
{
    for (size_t i = 0; i < s->n_targets; i++) {
        const gf_lora_target *t = &s->targets[i];
        if (t->claimed || t->ignored)
            continue;
        const char *dir = s->dirs[t->pairs[0].adapter];
        if (strcmp(t->weight, "lm_head.weight") == 0)
            return gf_error(GEMFA_ERR_UNSUPPORTED,
                            "LoRA adapter %s: module 'lm_head' is tied to embed_tokens in this "
                            "checkpoint; merging into a tied head is not supported",
                            dir);
        return gf_error(GEMFA_ERR_MODEL_MISMATCH,
                        "LoRA adapter %s: module '%s' (tensor '%s') is not a linear layer of "
                        "this model's text decoder (an adapter for another model or layer "
                        "count?)",
                        dir, t->module, t->weight);
    }
    return GEMFA_OK;
}

/* --------------------------------------------------------------- merge */

/* Stored A/B widened to f32. */
static float *widen(const gf_st_tensor *t)
{
    size_t n = (size_t)t->n_elements;
    float *out = gf_malloc(gf_mul_size(n ? n : 1, sizeof *out));
    if (!out)
        return NULL;
    const uint8_t *p = t->data;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        switch (t->dtype) {
        case GF_ST_F32: memcpy(&out[i], p + i * 4, 4); break;
        case GF_ST_F16: memcpy(&h, p + i * 2, 2); out[i] = gf_f16_to_f32(h); break;
        default: memcpy(&h, p + i * 2, 2); out[i] = gf_bf16_to_f32(h); break;
        }
    }
    return out;
}

typedef struct merge_job {
    const float *a, *b;
    float scale;
    int64_t rank, cols, r0, r1;
    float *w;
    float *acc; /* cols floats */
} merge_job;

/* Bit-exact with the numpy merge: products and sums rounded to f32 one at
 * a time, never fused into an FMA. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#define GF_NO_FMA
#elif defined(__GNUC__)
#define GF_NO_FMA __attribute__((optimize("fp-contract=off")))
#else
#define GF_NO_FMA
#endif
/* Wider vectors where the CPU has them (the same IEEE operations in the
 * same order, so the same bits), chosen at the call.  Not target_clones:
 * its ifunc resolver runs while the dynamic loader relocates, before a
 * sanitizer runtime is up (TSan builds crashed there). */
#define MERGE_ROWS_BODY(j)                                                                       \
    for (int64_t i = (j)->r0; i < (j)->r1; i++) {                                                \
        float *acc = (j)->acc, *w = (j)->w + i * (j)->cols;                                      \
        for (int64_t c = 0; c < (j)->cols; c++)                                                  \
            acc[c] = 0.0f;                                                                       \
        for (int64_t k = 0; k < (j)->rank; k++) {                                                \
            const float bik = (j)->b[i * (j)->rank + k], *ak = (j)->a + k * (j)->cols;          \
            for (int64_t c = 0; c < (j)->cols; c++) {                                            \
                float p = bik * ak[c];                                                           \
                acc[c] = acc[c] + p;                                                             \
            }                                                                                    \
        }                                                                                        \
        for (int64_t c = 0; c < (j)->cols; c++) {                                                \
            float d = (j)->scale * acc[c];                                                       \
            w[c] = w[c] + d;                                                                     \
        }                                                                                        \
    }

GF_NO_FMA static void merge_rows_generic(const merge_job *j) { MERGE_ROWS_BODY(j) }

#if defined(__GNUC__) && defined(__x86_64__) && !defined(GF_SIMD_DISABLED)
GF_NO_FMA __attribute__((target("avx2"))) static void merge_rows_avx2(const merge_job *j)
{
    MERGE_ROWS_BODY(j)
}
GF_NO_FMA __attribute__((target("avx512f"))) static void merge_rows_avx512(const merge_job *j)
{
    MERGE_ROWS_BODY(j)
}
#endif

static void merge_rows(const merge_job *j)
{
#if defined(__GNUC__) && defined(__x86_64__) && !defined(GF_SIMD_DISABLED)
    if (__builtin_cpu_supports("avx512f"))
        return merge_rows_avx512(j);
    if (__builtin_cpu_supports("avx2"))
        return merge_rows_avx2(j);
#endif
    merge_rows_generic(j);
}

static void *merge_thread(void *arg)
{
    merge_rows(arg);
    return NULL;
}

#define MAX_THREADS 64

gemfa_status gf_lora_merge(const gf_lora_target *t, float *w, int64_t rows, int64_t cols,
                           int n_threads)
{
    if (n_threads < 1)
        n_threads = 1;
    if (n_threads > MAX_THREADS)
        n_threads = MAX_THREADS;
    /* below ~4 M multiply-adds a thread costs more than it saves */
    const int64_t rank = t->n_pairs ? t->pairs[0].rank : 1;
    int64_t work = rows * cols * rank;
    if (work < ((int64_t)4 << 20))
        n_threads = 1;
    if (n_threads > rows)
        n_threads = (int)rows;
    float *acc = gf_malloc(gf_mul_size(gf_mul_size((size_t)n_threads, (size_t)cols), sizeof *acc));
    if (!acc)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory merging LoRA into '%s'",
                        t->weight);
    gemfa_status st = GEMFA_OK;
    for (size_t i = 0; i < t->n_pairs && !st; i++) {
        const gf_lora_pair *p = &t->pairs[i];
        float *a = widen(p->a), *b = widen(p->b);
        if (!a || !b) {
            st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory merging LoRA into '%s'",
                          t->weight);
        } else {
            merge_job jobs[MAX_THREADS];
            pthread_t tids[MAX_THREADS];
            int started[MAX_THREADS] = {0};
            for (int k = 0; k < n_threads; k++)
                jobs[k] = (merge_job){a, b, p->scale, p->rank, cols, rows * k / n_threads,
                                      rows * (k + 1) / n_threads, w, acc + (size_t)k * (size_t)cols};
            for (int k = 1; k < n_threads; k++)
                started[k] = pthread_create(&tids[k], NULL, merge_thread, &jobs[k]) == 0;
            merge_rows(&jobs[0]);
            for (int k = 1; k < n_threads; k++) {
                if (started[k])
                    pthread_join(tids[k], NULL);
                else
                    merge_rows(&jobs[k]); /* no thread: do its rows here */
            }
        }
        gf_free(a);
        gf_free(b);
    }
    gf_free(acc);
    return st;
}
