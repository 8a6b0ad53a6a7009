/* bind.c — finds every tensor the config implies, checks its shape and
 * dtype, and binds it into struct gemfa_model: in place (mapped) or
 * converted into a model-owned buffer, depending on the weight type.
 *
 * The walk over the tensor list runs twice: a dry pass that only validates
 * and adds up the conversion work (so a bad checkpoint fails before any
 * expensive conversion, and progress fractions are exact), then the pass
 * that binds. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"
#include "kernels/q4_format.h"
#include "kernels/q8_format.h"
#include "kernels/weights.h"
#include "loader/load.h"
#include "loader/lora.h"
#include "loader/matformer.h"
#include "loader/quantize.h"
#include "loader/safetensors.h"

/* How a matrix is kept. */
typedef enum role {
    ROLE_LINEAR, /* follows the weight type */
    ROLE_SMALL,  /* follows the weight type, but int8 (not 4-bit) under Q4: an untied
                    lm_head, the AltUp and LAuReL matrices, the multimodal embedders
                    (docs/architecture.md) */
    ROLE_EMBED,  /* embed_tokens: as stored except F32 (-> f32), INT8 and Q4 (-> Q8) */
                 /* (any role: pre-quantized int8 is used as Q8, place_q8; 4-bit as Q4) */
    ROLE_TABLE,  /* per-layer embeddings: always mapped as stored, read row by row */
    ROLE_UNUSED  /* checked when present, never bound (k/v of KV-shared layers) */
} role;

typedef struct binder {
    gemfa_model *m;
    const gf_shard_set *set;
    const char *prefix;
    gemfa_weight_type type;
    int n_threads;
    const gf_progress *prog;
    float f0, f1;
    int dry;                 /* validate and count only */
    uint64_t work_total;     /* elements to convert (dry pass result) */
    uint64_t work_done;
    int layers_done;
    /* A MatFormer load (matformer.h): layers the plan skips are validated
     * but never bound; a converted gate/up/down of a narrowed layer is
     * converted at the kept width only.  NULL = the whole model. */
    const gf_mf_plan *plan;
    int64_t keep_rows, keep_cols; /* the matrix being bound: its used part (0 = all) */
} binder;

static const char *weights_source(const binder *b)
{
    if (b->set->index_path)
        return b->set->index_path;
    return b->set->n_files ? b->set->files[0].path : "?";
}

static void format_shape(char *buf, size_t cap, const int64_t *dims, int n)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "[");
    for (int i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, i ? ", " : "", dims[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

/* Looks `name` up; a missing required tensor is an error. */
static gemfa_status find(const binder *b, const char *name, int optional, const gf_st_tensor **out)
{
    *out = gf_shard_set_find(b->set, name);
    if (!*out && !optional)
        return gf_error(GEMFA_ERR_TENSOR_MISSING,
                        "%s: tensor '%s' is missing (the config implies it: %d layers, hidden size "
                        "%" PRId64 ")",
                        weights_source(b), name, b->m->hp.n_layers, b->m->hp.hidden_size);
    return GEMFA_OK;
}

static gemfa_status check_shape(const gf_st_tensor *t, const int64_t *dims, int n, const char *hint)
{
    int ok = t->n_dims == n;
    for (int i = 0; ok && i < n; i++)
        ok = t->shape[i] == dims[i];
    if (ok)
        return GEMFA_OK;
    char want[128], got[128];
    format_shape(want, sizeof want, dims, n);
    format_shape(got, sizeof got, t->shape, t->n_dims);
    return gf_error(GEMFA_ERR_TENSOR_SHAPE, "%s: tensor '%s': expected shape %s%s%s, found %s",
                    t->file->path, t->name, want, hint ? " " : "", hint ? hint : "", got);
}

static gemfa_status stored_dtype(const gf_st_tensor *t, gf_dtype *out)
{
    switch (t->dtype) {
    case GF_ST_F32: *out = GF_DTYPE_F32; return GEMFA_OK;
    case GF_ST_F16: *out = GF_DTYPE_F16; return GEMFA_OK;
    case GF_ST_BF16: *out = GF_DTYPE_BF16; return GEMFA_OK;
    default: break;
    }
    return gf_error(GEMFA_ERR_TENSOR_SHAPE,
                    "%s: tensor '%s': dtype %s cannot be used (expected BF16, F16 or F32)",
                    t->file->path, t->name, gf_st_dtype_name(t->dtype));
}

static size_t dtype_bytes(gf_dtype d) { return d == GF_DTYPE_F32 ? 4 : 2; } /* stored dtypes */

static gf_dtype target_dtype(const binder *b, role r, gf_dtype stored, int64_t cols)
{
    int q8_ok = cols % GF_Q8_BLOCK == 0;
    switch (r) {
    case ROLE_TABLE:
    case ROLE_UNUSED: return stored;
    case ROLE_EMBED:
        if (b->type == GEMFA_WEIGHTS_F32)
            return GF_DTYPE_F32;
        if ((b->type == GEMFA_WEIGHTS_INT8 || b->type == GEMFA_WEIGHTS_Q4) && q8_ok)
            return GF_DTYPE_Q8;
        return stored;
    case ROLE_SMALL:
        if (b->type == GEMFA_WEIGHTS_Q4)
            return q8_ok ? GF_DTYPE_Q8 : stored;
        break;
    case ROLE_LINEAR: break;
    }
    switch (b->type) {
    case GEMFA_WEIGHTS_Q4: return q8_ok ? GF_DTYPE_Q4 : stored;
    case GEMFA_WEIGHTS_F32: return GF_DTYPE_F32;
    case GEMFA_WEIGHTS_F16: return GF_DTYPE_F16;
    case GEMFA_WEIGHTS_BF16: return GF_DTYPE_BF16;
    case GEMFA_WEIGHTS_INT8: return q8_ok ? GF_DTYPE_Q8 : stored;
    case GEMFA_WEIGHTS_AUTO: break;
    }
    return stored;
}

/* Progress moves with the layers bound and, when weights are converted,
 * with the elements converted (which is where the time goes). */
static gemfa_status report(binder *b)
{
    double layers = b->m->hp.n_layers ? (double)b->layers_done / b->m->hp.n_layers : 1.0;
    double done = layers;
    if (b->work_total)
        done = 0.1 * layers + 0.9 * ((double)b->work_done / (double)b->work_total);
    return gf_progress_report(b->prog, b->f0 + (b->f1 - b->f0) * (float)done,
                              b->work_total ? "convert" : "bind");
}

/* Tells the kernel how a tensor used in place will be read: rows gathered
 * (the per-layer table) or streamed whole on every token (the rest). */
static void advise_in_place(const gf_st_tensor *t, role r)
{
    if (r == ROLE_TABLE)
        gf_st_advise_random(t);
    else
        gf_st_advise_stream(t);
}

/* Binds a validated [rows][cols] tensor as `target` into *out. */
static gemfa_status place_matrix(binder *b, const gf_st_tensor *t, role r, gf_dtype stored,
                                 gf_dtype target, int64_t rows, int64_t cols, gf_matrix *out)
{
    size_t align = dtype_bytes(stored);
    int aligned = ((uintptr_t)t->data % align) == 0;
    uint64_t n = (uint64_t)rows * (uint64_t)cols;
    if (target == stored && aligned) {
        if (!b->dry)
            *out = (gf_matrix){t->data, NULL, stored, rows, cols};
        if (!b->dry)
            advise_in_place(t, r);
        b->m->weight_bytes += (int64_t)(n * align);
        return GEMFA_OK;
    }
    size_t bytes = gf_convert_bytes(target, rows, cols);
    if (b->dry) {
        b->work_total += n;
        return GEMFA_OK;
    }
    void *buf = gf_model_alloc(b->m, bytes);
    if (!buf)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY,
                        "tensor '%s': out of memory converting %" PRId64 "x%" PRId64
                        " to %zu bytes",
                        t->name, rows, cols, bytes);
    gf_convert_matrix(t->data, stored, buf, target, rows, cols, b->n_threads);
    gf_st_advise_done(t); /* keeps resident memory at the converted copy */
    *out = (gf_matrix){buf, NULL, target, rows, cols};
    gf_matrix_set_scales(out);
    b->m->weight_bytes += gf_matrix_payload_bytes(target, rows, cols);
    b->work_done += n;
    return report(b);
}

/* A converted matrix of which a MatFormer sub-model uses only the first
 * `keep_rows` rows (gate/up) or `keep_cols` columns (down_proj): only that
 * part is read and converted.  Conversion works row by row and Q8 keeps
 * whole blocks and 16-row groups (the plan asks for W % 32 == 0), so the
 * result is bit for bit the used part of the whole matrix converted. */
static gemfa_status place_part(binder *b, const gf_st_tensor *t, gf_dtype stored,
                               gf_dtype target, int64_t rows, int64_t cols, gf_matrix *out)
{
    const int64_t R = b->keep_rows ? b->keep_rows : rows, C = b->keep_cols ? b->keep_cols : cols;
    const uint64_t n = (uint64_t)R * (uint64_t)C;
    b->m->weight_bytes += gf_matrix_payload_bytes(target, R, C);
    if (b->dry) {
        b->work_total += n;
        return GEMFA_OK;
    }
    void *buf = gf_model_alloc(b->m, gf_convert_bytes(target, R, C));
    if (!buf)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY,
                        "tensor '%s': out of memory converting %" PRId64 "x%" PRId64, t->name, R,
                        C);
    const void *src = t->data; /* rows: a prefix of the data */
    char *tmp = NULL;
    if (C < cols) { /* columns: gather the strided rows first, as stored */
        const size_t es = dtype_bytes(stored), row = (size_t)C * es;
        if (!(tmp = gf_malloc(gf_mul_size((size_t)R, row))))
            return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory", t->name);
        for (int64_t r = 0; r < R; r++)
            memcpy(tmp + (size_t)r * row, (const char *)t->data + (size_t)r * (size_t)cols * es,
                   row);
        src = tmp;
    }
    gf_convert_matrix(src, stored, buf, target, R, C, b->n_threads);
    gf_free(tmp);
    gf_st_advise_done(t);
    *out = (gf_matrix){buf, NULL, target, R, C};
    gf_matrix_set_scales(out);
    b->work_done += n;
    return report(b);
}

/* A pre-quantized matrix (gemfa quantize, quantize.h): int8 `t` and its
 * F16 scales `<name>_scale` [rows][cols/32].  Used in place with --weights
 * auto or int8 (copied if the file misaligns the scales); other weight
 * types would need the dequantized values, which the loader does not
 * make.  Errors: TENSOR_MISSING (no scales), TENSOR_SHAPE, UNSUPPORTED. */
/* How the int8 bytes of a pre-quantized file are ordered (its metadata). */
typedef enum q8_scheme { Q8_ROWS, Q8_INTERLEAVED, Q8_UNKNOWN } q8_scheme;

static gemfa_status place_q8(binder *b, const gf_st_tensor *t, role r, int64_t rows,
                             int64_t cols, gf_matrix *out)
{
    char name[300];
    snprintf(name, sizeof name, "%s%s", t->name, GF_Q8_SCALE_SUFFIX);
    const gf_st_tensor *s = gf_shard_set_find(b->set, name);
    const int64_t dims[2] = {rows, cols / GF_Q8_BLOCK};
    gemfa_status st;
    if (cols % GF_Q8_BLOCK != 0)
        return gf_error(GEMFA_ERR_TENSOR_SHAPE,
                        "%s: tensor '%s': int8 with %" PRId64 " columns (a multiple of %d needed)",
                        t->file->path, t->name, cols, GF_Q8_BLOCK);
    if (!s)
        return gf_error(GEMFA_ERR_TENSOR_MISSING,
                        "%s: tensor '%s' is int8 but its scales '%s' are missing",
                        t->file->path, t->name, name);
    if ((st = check_shape(s, dims, 2, "(rows, columns / 32)")))
        return st;
    if (s->dtype != GF_ST_F16)
        return gf_error(GEMFA_ERR_TENSOR_SHAPE, "%s: tensor '%s': dtype %s (expected F16)",
                        s->file->path, s->name, gf_st_dtype_name(s->dtype));
    const char *qs = t->file->quantization;
    const int q4_file = qs && strcmp(qs, GF_Q4_SCHEME) == 0; /* int8 parts of a q4 file */
    if (b->type != GEMFA_WEIGHTS_AUTO && b->type != GEMFA_WEIGHTS_INT8 &&
        !(b->type == GEMFA_WEIGHTS_Q4 && q4_file))
        return gf_error(GEMFA_ERR_UNSUPPORTED,
                        "%s: tensor '%s' is pre-quantized int8 (gemfa quantize); load this "
                        "checkpoint with weights auto or int8",
                        t->file->path, t->name);
    const q8_scheme scheme = !qs || strcmp(qs, GF_Q8_SCHEME_ROWS) == 0 ? Q8_ROWS
                             : strcmp(qs, GF_Q8_SCHEME) == 0 || q4_file ? Q8_INTERLEAVED
                                                                        : Q8_UNKNOWN;
    if (scheme == Q8_UNKNOWN)
        return gf_error(GEMFA_ERR_UNSUPPORTED,
                        "%s: tensor '%s' is int8 in an unknown quantization scheme \"%.120s\" "
                        "(metadata gemfa.quantization)",
                        t->file->path, t->name, qs);
    const uint64_t n = (uint64_t)rows * (uint64_t)cols;
    if (r != ROLE_UNUSED)
        b->m->weight_bytes += (int64_t)(n + n / GF_Q8_BLOCK * 2);
    if (b->dry || r == ROLE_UNUSED) {
        if (!b->dry)
            *out = (gf_matrix){NULL, NULL, GF_DTYPE_Q8, rows, cols};
        return GEMFA_OK;
    }
    const int interleaved = scheme == Q8_INTERLEAVED;
    if (interleaved && (uintptr_t)s->data % 2 == 0) {
        *out = (gf_matrix){t->data, s->data, GF_DTYPE_Q8, rows, cols};
        advise_in_place(t, r);
        advise_in_place(s, r);
        return GEMFA_OK;
    }
    /* copied: scales at an odd address, or plain rows to interleave */
    const size_t off = gf_q8_scales_offset(rows, cols), sb = (size_t)(n / GF_Q8_BLOCK * 2);
    uint8_t *buf = gf_model_alloc(b->m, off + sb);
    if (!buf)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory", t->name);
    memcpy(buf + off, s->data, sb); /* aligned now, and in place if already interleaved */
    if (interleaved) {
        memcpy(buf, t->data, (size_t)n);
    } else {
        uint16_t *plain = gf_malloc(sb ? sb : 1);
        if (!plain)
            return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory", t->name);
        memcpy(plain, buf + off, sb);
        gf_q8_interleave((const int8_t *)t->data, plain, rows, cols, (int8_t *)buf,
                         (uint16_t *)(buf + off));
        gf_free(plain);
        gf_st_advise_done(t);
    }
    *out = (gf_matrix){buf, (const uint16_t *)(buf + off), GF_DTYPE_Q8, rows, cols};
    return GEMFA_OK;
}

/* A pre-quantized 4-bit matrix (gemfa quantize --type q4): U8 `t` of shape
 * [rows][cols/2] in the Q4 layout and its F16 scales `<name>_scale`
 * [rows][cols/32], in a file whose metadata names GF_Q4_SCHEME (any other
 * or none: refused, never guessed).  Used in place with --weights auto or
 * q4 (copied if the file misaligns the scales).  Errors: TENSOR_MISSING,
 * TENSOR_SHAPE, UNSUPPORTED. */
static gemfa_status place_q4(binder *b, const gf_st_tensor *t, role r, int64_t rows,
                             int64_t cols, gf_matrix *out, const char *hint)
{
    char name[300];
    snprintf(name, sizeof name, "%s%s", t->name, GF_Q8_SCALE_SUFFIX);
    const gf_st_tensor *s = gf_shard_set_find(b->set, name);
    const int64_t dims[2] = {rows, cols / 2}, sdims[2] = {rows, cols / GF_Q4_BLOCK};
    const char *qs = t->file->quantization;
    gemfa_status st;
    if (!qs || strcmp(qs, GF_Q4_SCHEME) != 0)
        return gf_error(GEMFA_ERR_UNSUPPORTED,
                        "%s: tensor '%s' is U8 but the file names no known 4-bit scheme "
                        "(metadata gemfa.quantization \"%.120s\")",
                        t->file->path, t->name, qs ? qs : "");
    if (cols % GF_Q4_BLOCK != 0)
        return gf_error(GEMFA_ERR_TENSOR_SHAPE,
                        "%s: tensor '%s': 4-bit with %" PRId64 " columns (a multiple of %d needed)",
                        t->file->path, t->name, cols, GF_Q4_BLOCK);
    if ((st = check_shape(t, dims, 2, hint)))
        return st;
    if (!s)
        return gf_error(GEMFA_ERR_TENSOR_MISSING,
                        "%s: tensor '%s' is 4-bit but its scales '%s' are missing",
                        t->file->path, t->name, name);
    if ((st = check_shape(s, sdims, 2, "(rows, columns / 32)")))
        return st;
    if (s->dtype != GF_ST_F16)
        return gf_error(GEMFA_ERR_TENSOR_SHAPE, "%s: tensor '%s': dtype %s (expected F16)",
                        s->file->path, s->name, gf_st_dtype_name(s->dtype));
    if (b->type != GEMFA_WEIGHTS_AUTO && b->type != GEMFA_WEIGHTS_Q4)
        return gf_error(GEMFA_ERR_UNSUPPORTED,
                        "%s: tensor '%s' is pre-quantized 4-bit (gemfa quantize --type q4); "
                        "load this checkpoint with weights auto or q4",
                        t->file->path, t->name);
    if (r != ROLE_UNUSED)
        b->m->weight_bytes += gf_matrix_payload_bytes(GF_DTYPE_Q4, rows, cols);
    if (b->dry || r == ROLE_UNUSED) {
        if (!b->dry)
            *out = (gf_matrix){NULL, NULL, GF_DTYPE_Q4, rows, cols};
        return GEMFA_OK;
    }
    if ((uintptr_t)s->data % 2 == 0) {
        *out = (gf_matrix){t->data, s->data, GF_DTYPE_Q4, rows, cols};
        advise_in_place(t, r);
        advise_in_place(s, r);
        return GEMFA_OK;
    }
    const size_t bytes = gf_convert_bytes(GF_DTYPE_Q4, rows, cols);
    uint8_t *buf = gf_model_alloc(b->m, bytes);
    if (!buf)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory", t->name);
    *out = (gf_matrix){buf, NULL, GF_DTYPE_Q4, rows, cols};
    gf_matrix_set_scales(out);
    memcpy(buf, t->data, (size_t)(t->end - t->begin));
    memcpy((void *)out->scales, s->data, gf_matrix_scales_bytes(out));
    return GEMFA_OK;
}

/* A matrix LoRA adapters change (lora.h): widened to f32, W + s·B·A added
 * there, then converted to the weight type like any converted matrix.
 * Only linear layers; k/v of KV-shared layers are checked and skipped. */
static gemfa_status place_lora(binder *b, const gf_st_tensor *t, gf_lora_target *lt, role r,
                               int64_t rows, int64_t cols, gf_matrix *out)
{
    gf_dtype stored = GF_DTYPE_BF16;
    gemfa_status st;
    if (t->dtype == GF_ST_I8 || t->dtype == GF_ST_U8)
        return gf_error(GEMFA_ERR_UNSUPPORTED,
                        "%s: tensor '%s' is pre-quantized %s; LoRA adapters merge into "
                        "BF16/F16/F32 checkpoints only (load the original checkpoint with "
                        "--weights %s instead)",
                        t->file->path, t->name, t->dtype == GF_ST_I8 ? "int8" : "4-bit",
                        t->dtype == GF_ST_I8 ? "int8" : "q4");
    if ((st = stored_dtype(t, &stored)) ||
        (st = gf_lora_check_shape(b->m->lora, lt, rows, cols)))
        return st;
    if (r != ROLE_LINEAR && r != ROLE_SMALL && r != ROLE_UNUSED)
        return gf_error(GEMFA_ERR_UNSUPPORTED, "LoRA module '%s': tensor '%s' is not a linear "
                        "layer's weight", lt->module, t->name);
    lt->claimed = 1;
    if (r == ROLE_UNUSED) { /* a KV-shared layer never runs its k/v_proj */
        if (!b->dry)
            *out = (gf_matrix){NULL, NULL, stored, rows, cols};
        return GEMFA_OK;
    }
    const gf_dtype target = target_dtype(b, r, stored, cols);
    const uint64_t n = (uint64_t)rows * (uint64_t)cols;
    b->m->weight_bytes += gf_matrix_payload_bytes(target, rows, cols);
    if (b->dry) {
        b->work_total += n;
        return GEMFA_OK;
    }
    const size_t bytes = gf_convert_bytes(target, rows, cols);
    void *buf = gf_model_alloc(b->m, bytes);
    float *w = target == GF_DTYPE_F32 ? buf : gf_lora_scratch(b->m->lora, (size_t)n);
    if (!buf || !w)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY,
                        "tensor '%s': out of memory merging LoRA (%" PRId64 "x%" PRId64 ")",
                        t->name, rows, cols);
    gf_convert_matrix(t->data, stored, w, GF_DTYPE_F32, rows, cols, b->n_threads);
    st = gf_lora_merge(lt, w, rows, cols, b->n_threads);
    if (!st && target != GF_DTYPE_F32)
        gf_convert_matrix(w, GF_DTYPE_F32, buf, target, rows, cols, b->n_threads);
    if (st)
        return st;
    gf_st_advise_done(t);
    *out = (gf_matrix){buf, NULL, target, rows, cols};
    gf_matrix_set_scales(out);
    b->m->lora->n_merged++;
    b->work_done += n;
    return report(b);
}

/* A 2-D weight [rows][cols].  *present (may be NULL) says whether an
 * optional tensor was found. */
static gemfa_status matrix(binder *b, const char *name, int64_t rows, int64_t cols, role r,
                           int optional, gf_matrix *out, int *present, const char *hint)
{
    const gf_st_tensor *t;
    gf_dtype stored = GF_DTYPE_BF16;
    gemfa_status st = find(b, name, optional, &t);
    if (present)
        *present = t != NULL;
    if (st != GEMFA_OK || !t)
        return st;
    gf_lora_target *lt = b->m->lora ? gf_lora_find(b->m->lora, t->name) : NULL;
    if (t->dtype == GF_ST_U8) { /* 4-bit: its own shape; LoRA refuses it */
        if (b->dry) /* the MatFormer plan's record, as below */
            *out = (gf_matrix){NULL, NULL, GF_DTYPE_Q4, rows, cols};
        return lt ? place_lora(b, t, lt, r, rows, cols, out)
                  : place_q4(b, t, r, rows, cols, out, hint);
    }
    int64_t dims[2] = {rows, cols};
    if ((st = check_shape(t, dims, 2, hint)))
        return st;
    /* The dry pass records the type a matrix will have (the MatFormer plan
     * checks it), not its data. */
    if (b->dry)
        *out = (gf_matrix){NULL, NULL,
                           t->dtype == GF_ST_I8           ? GF_DTYPE_Q8
                           : stored_dtype(t, &stored) != 0 ? GF_DTYPE_BF16
                           : r == ROLE_UNUSED              ? stored
                                                           : target_dtype(b, r, stored, cols),
                           rows, cols};
    if (lt)
        return place_lora(b, t, lt, r, rows, cols, out);
    if (t->dtype == GF_ST_I8)
        return place_q8(b, t, r, rows, cols, out);
    if ((st = stored_dtype(t, &stored)))
        return st;
    if (r == ROLE_UNUSED) {
        if (!b->dry)
            *out = (gf_matrix){NULL, NULL, stored, rows, cols};
        return GEMFA_OK;
    }
    const gf_dtype target = target_dtype(b, r, stored, cols);
    /* used in place, the whole matrix stays mapped and the sub-model cuts it */
    if ((b->keep_rows || b->keep_cols) &&
        !(target == stored && (uintptr_t)t->data % dtype_bytes(stored) == 0))
        return place_part(b, t, stored, target, rows, cols, out);
    return place_matrix(b, t, r, stored, target, rows, cols, out);
}

/* A small f32 array copied out of the file (norm gains, AltUp coefs):
 * `dims` of n entries.  Optional tensors that are absent give NULL. */
static gemfa_status vector(binder *b, const char *name, const int64_t *dims, int n, int optional,
                           const float **out, const char *hint)
{
    const gf_st_tensor *t;
    gf_dtype stored = GF_DTYPE_BF16;
    gemfa_status st = find(b, name, optional, &t);
    if (st != GEMFA_OK || !t)
        return st;
    if ((st = check_shape(t, dims, n, hint)) || (st = stored_dtype(t, &stored)))
        return st;
    b->m->weight_bytes += (int64_t)(t->n_elements * 4);
    if (b->dry)
        return GEMFA_OK;
    float *v = gf_model_alloc(b->m, gf_mul_size((size_t)t->n_elements, sizeof *v));
    if (!v)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory", t->name);
    for (uint64_t i = 0; i < t->n_elements; i++) {
        /* the file may place the data at any byte offset: read bytes */
        if (stored == GF_DTYPE_F32) {
            memcpy(&v[i], (const uint8_t *)t->data + i * 4, 4);
        } else {
            uint16_t h;
            memcpy(&h, (const uint8_t *)t->data + i * 2, 2);
            v[i] = gf_stored_to_f32(&h, stored, 0);
        }
    }
    *out = v;
    return GEMFA_OK;
}

static gemfa_status vec1(binder *b, const char *name, int64_t n, int optional, const float **out)
{
    return vector(b, name, &n, 1, optional, out, NULL);
}

/* Builds prefix + suffix (suffix printf-style) into buf. */
static const char *tname(char *buf, size_t cap, const binder *b, const char *fmt, ...)
    GF_PRINTF(4, 5);
static const char *tname(char *buf, size_t cap, const binder *b, const char *fmt, ...)
{
    int k = snprintf(buf, cap, "%s", b->prefix);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + k, cap - (size_t)k, fmt, ap);
    va_end(ap);
    return buf;
}

#define NAME(...) tname(name, sizeof name, b, __VA_ARGS__)

/* gate/up ([F, H], by_cols 0) or down_proj ([H, F], by_cols 1) of layer l:
 * with a MatFormer plan narrowing the layer, only its first W rows or
 * columns are converted. */
static gemfa_status ffn_matrix(binder *b, const char *name, int l, int by_cols, gf_matrix *out,
                               const char *hint)
{
    const int64_t H = b->m->hp.hidden_size, F = b->m->hp.ffn_width[l];
    const int64_t W = b->plan ? b->plan->width[l] : F;
    if (W < F)
        *(by_cols ? &b->keep_cols : &b->keep_rows) = W;
    gemfa_status st = matrix(b, name, by_cols ? H : F, by_cols ? F : H, ROLE_LINEAR, 0, out, NULL,
                             hint);
    b->keep_rows = b->keep_cols = 0;
    return st;
}

static gemfa_status bind_layer(binder *b, int l)
{
    gemfa_model *m = b->m;
    const gf_hparams *hp = &m->hp;
    gf_layer *ly = &m->layers[l];
    char name[256], hint[160];
    const int64_t H = hp->hidden_size, d = hp->head_dim, F = hp->ffn_width[l];
    const int64_t q_rows = hp->n_heads * d, kv_rows = hp->n_kv_heads * d;
    const int64_t K = hp->altup_num_inputs, P = hp->ple_dim, R = hp->laurel_rank;
    const int shared = hp->kv_source[l] != l;
    gemfa_status st;

    snprintf(hint, sizeof hint, "(intermediate_size[%d] = %" PRId64 ", hidden_size = %" PRId64 ")",
             l, F, H);
    if ((st = matrix(b, NAME("layers.%d.self_attn.q_proj.weight", l), q_rows, H, ROLE_LINEAR, 0,
                     &ly->q_proj, NULL, "(num_attention_heads x head_dim, hidden_size)")) ||
        (st = matrix(b, NAME("layers.%d.self_attn.k_proj.weight", l), kv_rows, H,
                     shared ? ROLE_UNUSED : ROLE_LINEAR, shared, &ly->k_proj, NULL,
                     "(num_key_value_heads x head_dim, hidden_size)")) ||
        (st = matrix(b, NAME("layers.%d.self_attn.v_proj.weight", l), kv_rows, H,
                     shared ? ROLE_UNUSED : ROLE_LINEAR, shared, &ly->v_proj, NULL,
                     "(num_key_value_heads x head_dim, hidden_size)")) ||
        (st = matrix(b, NAME("layers.%d.self_attn.o_proj.weight", l), H, q_rows, ROLE_LINEAR, 0,
                     &ly->o_proj, NULL, "(hidden_size, num_attention_heads x head_dim)")) ||
        (st = vec1(b, NAME("layers.%d.self_attn.q_norm.weight", l), d, 0, &ly->q_norm)) ||
        (st = vec1(b, NAME("layers.%d.self_attn.k_norm.weight", l), d, shared, &ly->k_norm)) ||
        (st = vec1(b, NAME("layers.%d.input_layernorm.weight", l), H, 0, &ly->input_norm)) ||
        (st = vec1(b, NAME("layers.%d.post_attention_layernorm.weight", l), H, 0,
                   &ly->post_attn_norm)) ||
        (st = vec1(b, NAME("layers.%d.pre_feedforward_layernorm.weight", l), H, 0,
                   &ly->pre_ffn_norm)) ||
        (st = vec1(b, NAME("layers.%d.post_feedforward_layernorm.weight", l), H, 0,
                   &ly->post_ffn_norm)) ||
        (st = ffn_matrix(b, NAME("layers.%d.mlp.gate_proj.weight", l), l, 0, &ly->gate_proj,
                         hint)) ||
        (st = ffn_matrix(b, NAME("layers.%d.mlp.up_proj.weight", l), l, 0, &ly->up_proj,
                         hint)) ||
        (st = ffn_matrix(b, NAME("layers.%d.mlp.down_proj.weight", l), l, 1, &ly->down_proj,
                         hint)))
        return st;

    int64_t kk[2] = {K, K}, pred[2] = {K * K, K};
    if ((st = vec1(b, NAME("layers.%d.altup.correct_output_scale", l), H, 0,
                   &ly->altup_correct_output_scale)) ||
        (st = vector(b, NAME("layers.%d.altup.correction_coefs.weight", l), kk, 2, 0,
                     &ly->altup_correction_coefs, "(altup_num_inputs, altup_num_inputs)")) ||
        (st = vector(b, NAME("layers.%d.altup.prediction_coefs.weight", l), pred, 2, 0,
                     &ly->altup_prediction_coefs, "(altup_num_inputs^2, altup_num_inputs)")) ||
        (st = matrix(b, NAME("layers.%d.altup.modality_router.weight", l), K, H, ROLE_SMALL, 0,
                     &ly->altup_router, NULL, "(altup_num_inputs, hidden_size)")) ||
        (st = vec1(b, NAME("layers.%d.altup.router_norm.weight", l), H, 0,
                   &ly->altup_router_norm)) ||
        (st = matrix(b, NAME("layers.%d.laurel.linear_left.weight", l), R, H, ROLE_SMALL, 0,
                     &ly->laurel_left, NULL, "(laurel_rank, hidden_size)")) ||
        (st = matrix(b, NAME("layers.%d.laurel.linear_right.weight", l), H, R, ROLE_SMALL, 0,
                     &ly->laurel_right, NULL, "(hidden_size, laurel_rank)")) ||
        (st = vec1(b, NAME("layers.%d.laurel.post_laurel_norm.weight", l), H, 0,
                   &ly->post_laurel_norm)) ||
        (st = matrix(b, NAME("layers.%d.per_layer_input_gate.weight", l), P, H, ROLE_LINEAR, 0,
                     &ly->ple_gate, NULL, "(hidden_size_per_layer_input, hidden_size)")) ||
        (st = matrix(b, NAME("layers.%d.per_layer_projection.weight", l), H, P, ROLE_LINEAR, 0,
                     &ly->ple_proj, NULL, "(hidden_size, hidden_size_per_layer_input)")) ||
        (st = vec1(b, NAME("layers.%d.post_per_layer_input_norm.weight", l), H, 0,
                   &ly->post_ple_norm)))
        return st;

    /* HF clamps the correction coefficients even at inference (spec §4.7). */
    if (!b->dry && hp->altup_coef_clip > 0) {
        float *c = (float *)ly->altup_correction_coefs, clip = hp->altup_coef_clip;
        for (int64_t i = 0; i < K * K; i++)
            c[i] = c[i] > clip ? clip : c[i] < -clip ? -clip : c[i];
    }
    return GEMFA_OK;
}

static gemfa_status bind_globals(binder *b)
{
    gemfa_model *m = b->m;
    const gf_hparams *hp = &m->hp;
    char name[256];
    const int64_t H = hp->hidden_size, LP = (int64_t)hp->n_layers * hp->ple_dim;
    gemfa_status st;

    /* embed_tokens may have fewer rows than vocab_size (spec §11) */
    const gf_st_tensor *t;
    if ((st = find(b, NAME("embed_tokens.weight"), 0, &t)))
        return st;
    int64_t rows = t->n_dims == 2 ? t->shape[0] : 0;
    if (rows < 1 || rows > hp->vocab_size) {
        char hint[96];
        snprintf(hint, sizeof hint, "(vocab_size = %" PRId64 " rows or fewer)", hp->vocab_size);
        int64_t dims[2] = {hp->vocab_size, H};
        return check_shape(t, dims, 2, hint);
    }
    if ((st = matrix(b, name, rows, H, ROLE_EMBED, 0, &m->embed_tokens, NULL,
                     "(rows <= vocab_size, hidden_size)")))
        return st;

    int has_lm_head = 0;
    char lm_hint[96];
    snprintf(lm_hint, sizeof lm_hint, "(vocab_size = %" PRId64 ", hidden_size = %" PRId64 ")",
             hp->vocab_size, H);
    /* lm_head.weight sits outside the decoder prefix */
    const char *saved = b->prefix;
    b->prefix = "";
    st = matrix(b, NAME("lm_head.weight"), hp->vocab_size, H, ROLE_SMALL, 1, &m->lm_head,
                &has_lm_head, lm_hint);
    b->prefix = saved;
    if (st)
        return st;
    if (!has_lm_head && !hp->tie_word_embeddings)
        return gf_error(GEMFA_ERR_TENSOR_MISSING,
                        "%s: tensor 'lm_head.weight' is missing and the config sets "
                        "tie_word_embeddings to false",
                        weights_source(b));
    m->lm_head_tied = !has_lm_head;
    if (!b->dry && m->lm_head_tied)
        m->lm_head = m->embed_tokens;

    char hint[160];
    snprintf(hint, sizeof hint,
             "(vocab_size_per_layer_input = %" PRId64 ", num_hidden_layers x "
             "hidden_size_per_layer_input = %" PRId64 ")",
             hp->vocab_size_ple, LP);
    if ((st = matrix(b, NAME("embed_tokens_per_layer.weight"), hp->vocab_size_ple, LP, ROLE_TABLE,
                     0, &m->embed_per_layer, NULL, hint)) ||
        (st = matrix(b, NAME("per_layer_model_projection.weight"), LP, H, ROLE_LINEAR, 0,
                     &m->per_layer_model_proj, NULL,
                     "(num_hidden_layers x hidden_size_per_layer_input, hidden_size)")) ||
        (st = vec1(b, NAME("per_layer_projection_norm.weight"), hp->ple_dim, 0,
                   &m->per_layer_proj_norm)) ||
        (st = vec1(b, NAME("norm.weight"), H, 0, &m->final_norm)))
        return st;
    for (int k = 0; k < hp->altup_num_inputs - 1; k++)
        if ((st = matrix(b, NAME("altup_projections.%d.weight", k), H, H, ROLE_SMALL, 0,
                         &m->altup_proj[k], NULL, "(hidden_size, hidden_size)")) ||
            (st = matrix(b, NAME("altup_unembed_projections.%d.weight", k), H, H, ROLE_SMALL, 0,
                         &m->altup_unembed[k], NULL, "(hidden_size, hidden_size)")))
            return st;
    return GEMFA_OK;
}

/* model.embed_vision / model.embed_audio: bound when the config describes
 * the range and the checkpoint has the embedding; then shapes must agree. */
static gemfa_status bind_embedder(binder *b, const char *what, const gf_mm_hparams *mh,
                                  gf_mm_embedder *e)
{
    if (!mh->present)
        return GEMFA_OK;
    static const char *const roots[] = {"model.", "", NULL};
    char name[256];
    const char *saved = b->prefix;
    const gf_st_tensor *t = NULL;
    const char *root = NULL;
    for (int i = 0; roots[i] && !t; i++) {
        snprintf(name, sizeof name, "%s%s.embedding.weight", roots[i], what);
        t = gf_shard_set_find(b->set, name);
        root = roots[i];
    }
    if (!t)
        return GEMFA_OK;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s%s.", root, what);
    b->prefix = prefix;
    const int64_t Hm = mh->hidden_size;
    gemfa_status st;
    int present = 0;
    if (!(st = matrix(b, NAME("embedding.weight"), mh->vocab_size, Hm, ROLE_SMALL, 0,
                      &e->embedding, &present, "(sub-config vocab_size, hidden_size)")) &&
        !(st = vec1(b, NAME("hard_embedding_norm.weight"), Hm, 0, &e->hard_norm)))
        st = matrix(b, NAME("embedding_projection.weight"), b->m->hp.hidden_size, Hm, ROLE_SMALL,
                    0, &e->projection, NULL, "(text hidden_size, sub-config hidden_size)");
    b->prefix = saved;
    if (!st && !b->dry)
        e->present = 1;
    return st;
}

/* A tensor of a layer the config does not have means config and weights
 * disagree (e.g. num_hidden_layers too small). */
static gemfa_status check_extra_layers(const binder *b)
{
    size_t plen = strlen(b->prefix);
    for (size_t i = 0; i < b->set->n_tensors; i++) {
        const char *n = b->set->sorted[i]->name;
        if (strncmp(n, b->prefix, plen) != 0 || strncmp(n + plen, "layers.", 7) != 0)
            continue;
        char *end;
        long l = strtol(n + plen + 7, &end, 10);
        if (end != n + plen + 7 && *end == '.' && l >= b->m->hp.n_layers)
            return gf_error(GEMFA_ERR_CONFIG,
                            "config.json says num_hidden_layers %d, but %s has tensor '%s' of "
                            "layer %ld",
                            b->m->hp.n_layers, b->set->sorted[i]->file->path, n, l);
    }
    return GEMFA_OK;
}

static gemfa_status walk(binder *b)
{
    gemfa_model *m = b->m;
    m->weight_bytes = 0;
    gemfa_status st = bind_globals(b);
    b->layers_done = 0;
    for (int l = 0; l < m->hp.n_layers && st == GEMFA_OK; l++) {
        if (b->plan && !b->plan->keep[l]) /* validated by the first dry pass */
            memset(&m->layers[l], 0, sizeof m->layers[l]);
        else
            st = bind_layer(b, l);
        b->layers_done = l + 1;
        if (st == GEMFA_OK && !b->dry)
            st = report(b);
    }
    if (st == GEMFA_OK)
        st = bind_embedder(b, "embed_vision", &m->hp.vision, &m->embed_vision);
    if (st == GEMFA_OK)
        st = bind_embedder(b, "embed_audio", &m->hp.audio, &m->embed_audio);
    return st;
}

/* The decoder's tensors: those under the prefix, the multimodal parts
 * excluded, plus lm_head.weight. */
static int is_decoder_tensor(const binder *b, const char *n)
{
    if (strcmp(n, "lm_head.weight") == 0)
        return 1;
    size_t plen = strlen(b->prefix);
    if (strncmp(n, b->prefix, plen) != 0)
        return 0;
    static const char *const mm[] = {"vision_tower.", "audio_tower.", "embed_vision.",
                                     "embed_audio.", "multi_modal_projector.", NULL};
    for (int i = 0; mm[i]; i++)
        if (strncmp(n + plen, mm[i], strlen(mm[i])) == 0)
            return 0;
    return 1;
}

/* The scales of a pre-quantized matrix: not parameters of their own (and
 * a 4-bit matrix's U8 tensor counts half its parameters: fixed in count). */
static int is_q8_scales(const binder *b, const gf_st_tensor *t)
{
    const size_t n = strlen(t->name), k = strlen(GF_Q8_SCALE_SUFFIX);
    if (t->dtype != GF_ST_F16 || n <= k || strcmp(t->name + n - k, GF_Q8_SCALE_SUFFIX) != 0)
        return 0;
    char base[300];
    snprintf(base, sizeof base, "%.*s", (int)(n - k), t->name);
    const gf_st_tensor *w = gf_shard_set_find(b->set, base);
    return w && (w->dtype == GF_ST_I8 || w->dtype == GF_ST_U8);
}

static void count(binder *b)
{
    gemfa_model *m = b->m;
    char ple[256];
    snprintf(ple, sizeof ple, "%sembed_tokens_per_layer.weight", b->prefix);
    m->n_params = m->n_params_ple = 0;
    memset(m->stored_bytes, 0, sizeof m->stored_bytes);
    for (size_t i = 0; i < b->set->n_tensors; i++) {
        const gf_st_tensor *t = b->set->sorted[i];
        if (!is_decoder_tensor(b, t->name))
            continue;
        if (!is_q8_scales(b, t))
            m->n_params += (int64_t)t->n_elements * (t->dtype == GF_ST_U8 ? 2 : 1);
        if (strcmp(t->name, ple) == 0)
            m->n_params_ple += (int64_t)t->n_elements;
        int64_t bytes = (int64_t)(t->end - t->begin);
        switch (t->dtype) {
        case GF_ST_F32: m->stored_bytes[GF_DTYPE_F32] += bytes; break;
        case GF_ST_F16: m->stored_bytes[GF_DTYPE_F16] += bytes; break;
        case GF_ST_BF16: m->stored_bytes[GF_DTYPE_BF16] += bytes; break;
        case GF_ST_I8: m->stored_bytes[GF_DTYPE_Q8] += bytes; break;
        case GF_ST_U8: m->stored_bytes[GF_DTYPE_Q4] += bytes; break;
        default: break;
        }
    }
}

/* Text-only exports name tensors model.*, multimodal ones
 * model.language_model.*, very old conversions language_model.model.*. */
static gemfa_status find_prefix(binder *b)
{
    static const char *const prefixes[] = {"model.language_model.", "model.",
                                           "language_model.model.", NULL};
    char name[256];
    for (int i = 0; prefixes[i]; i++) {
        snprintf(name, sizeof name, "%sembed_tokens.weight", prefixes[i]);
        if (gf_shard_set_find(b->set, name)) {
            b->prefix = prefixes[i];
            return GEMFA_OK;
        }
    }
    return gf_error(GEMFA_ERR_TENSOR_MISSING,
                    "%s: tensor 'model.language_model.embed_tokens.weight' is missing (also looked "
                    "for 'model.embed_tokens.weight' and 'language_model.model.embed_tokens.weight')",
                    weights_source(b));
}

/* The plan of a MatFormer load, made once the dry pass has recorded the
 * type every matrix will have. */
static gemfa_status make_plan(binder *b, const char *spec, gf_mf_plan **out)
{
    gf_mf_spec *parsed = gf_malloc(sizeof *parsed);
    gf_mf_plan *plan = gf_malloc(sizeof *plan);
    gemfa_status st;
    if (!parsed || !plan)
        st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_model_load: out of memory");
    else if (!(st = gf_mf_parse(spec, "gemfa_model_load", parsed)))
        st = gf_mf_plan_make(b->m, parsed, "gemfa_model_load", plan);
    gf_free(parsed);
    if (st) {
        gf_free(plan);
        return st;
    }
    *out = plan;
    return GEMFA_OK;
}

gemfa_status gf_bind_weights(gemfa_model *m, gemfa_weight_type type, int n_threads,
                             const gf_progress *p, float f0, float f1, const char *matformer)
{
    binder b = {.m = m, .set = m->shards, .type = type, .n_threads = n_threads, .prog = p,
                .f0 = f0, .f1 = f1};
    gemfa_status st = find_prefix(&b);
    if (!st && m->lora)
        st = gf_lora_resolve(m->lora, b.prefix);
    if (st)
        return st;
    m->tensor_prefix = gf_strndup(b.prefix, strlen(b.prefix));
    m->layers = gf_calloc((size_t)m->hp.n_layers, sizeof *m->layers);
    if (!m->tensor_prefix || !m->layers)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
    if ((st = check_extra_layers(&b)))
        return st;
    b.dry = 1;
    if ((st = walk(&b)) || (m->lora && (st = gf_lora_check_claimed(m->lora))))
        return st;
    gf_mf_plan *plan = NULL;
    if (matformer) { /* second dry pass: the work of what the sub-model uses */
        if ((st = make_plan(&b, matformer, &plan)))
            return st;
        b.plan = plan;
        b.work_total = 0;
        st = walk(&b);
    }
    b.dry = 0;
    b.layers_done = 0;
    if (!st && !(st = report(&b)) && !(st = walk(&b)))
        count(&b);
    gf_free(plan);
    return st;
}
