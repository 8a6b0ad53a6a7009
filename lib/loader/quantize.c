/* quantize.c — see quantize.h.
 *
 * Plan, then write.  The plan lists the output tensors in file order:
 * 4-byte tensors (F32) first, then the rest by name, each quantized matrix
 * as its scales (F16) directly followed by its int8 data.  Every size after
 * the F32 block is even (a scales block is rows·cols/16 bytes with
 * cols % 32 == 0), so each tensor lands aligned to its element size and the
 * loader can use all of them in place; offsets are contiguous as the
 * safetensors format wants.  Then the header is written, and the data
 * streamed tensor by tensor (a quantized one goes through one buffer of
 * gf_convert_bytes, the largest being the embedding table). */
#include "loader/quantize.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/status.h"
#include "kernels/q8_format.h"
#include "kernels/weights.h"
#include "loader/safetensors.h"

typedef struct out_tensor {
    const gf_st_tensor *src;
    int quantized;  /* written as the pair (scales, int8) */
    uint64_t begin; /* offset of its first byte (scales first when quantized) */
    uint64_t bytes; /* all its bytes (both parts when quantized) */
} out_tensor;

typedef struct plan {
    out_tensor *t;
    size_t n;
    uint64_t data_bytes;
    const char *prefix;
} plan;

static const char *const text_prefixes[] = {"model.language_model.", "model.",
                                            "language_model.model.", NULL};

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }
static int ends_with(const char *s, const char *p)
{
    size_t a = strlen(s), b = strlen(p);
    return a >= b && strcmp(s + a - b, p) == 0;
}

/* The decoder's tensors and the multimodal token embedders; not the towers. */
static int keep(const char *name, const char *prefix)
{
    if (strcmp(name, "lm_head.weight") == 0)
        return 1;
    static const char *const embedders[] = {"model.embed_vision.", "model.embed_audio.",
                                            "embed_vision.", "embed_audio.", NULL};
    for (int i = 0; embedders[i]; i++)
        if (starts_with(name, embedders[i]))
            return 1;
    if (!starts_with(name, prefix))
        return 0;
    static const char *const towers[] = {"vision_tower.", "audio_tower.", "embed_vision.",
                                         "embed_audio.", "multi_modal_projector.", NULL};
    for (int i = 0; towers[i]; i++)
        if (starts_with(name + strlen(prefix), towers[i]))
            return 0;
    return 1;
}

/* Exactly the matrices an int8 load quantizes: 2-D float tensors whose
 * rows split into blocks of 32, except the per-layer embedding table
 * (always gathered as stored) and the AltUp coefficient tables (copied to
 * f32 vectors). */
static int quantizable(const gf_st_tensor *t)
{
    if (t->n_dims != 2 || t->shape[1] % 32 != 0 || t->shape[0] < 1 || t->shape[1] < 32)
        return 0;
    if (t->dtype != GF_ST_F32 && t->dtype != GF_ST_F16 && t->dtype != GF_ST_BF16)
        return 0;
    return !ends_with(t->name, "embed_tokens_per_layer.weight") &&
           !ends_with(t->name, "altup.correction_coefs.weight") &&
           !ends_with(t->name, "altup.prediction_coefs.weight");
}

static gf_dtype model_dtype(gf_st_dtype d)
{
    return d == GF_ST_F32 ? GF_DTYPE_F32 : d == GF_ST_F16 ? GF_DTYPE_F16 : GF_DTYPE_BF16;
}

static uint64_t scales_bytes(const gf_st_tensor *t)
{
    return (uint64_t)t->shape[0] * (uint64_t)(t->shape[1] / 32) * 2;
}

static gemfa_status make_plan(const gf_shard_set *set, plan *p)
{
    p->prefix = NULL;
    for (int i = 0; text_prefixes[i] && !p->prefix; i++) {
        char name[128];
        snprintf(name, sizeof name, "%sembed_tokens.weight", text_prefixes[i]);
        if (gf_shard_set_find(set, name))
            p->prefix = text_prefixes[i];
    }
    if (!p->prefix)
        return gf_error(GEMFA_ERR_TENSOR_MISSING,
                        "quantize: the source has no embed_tokens.weight (looked under "
                        "model.language_model., model. and language_model.model.)");
    p->t = gf_calloc(set->n_tensors ? set->n_tensors : 1, sizeof *p->t);
    if (!p->t)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "quantize: out of memory");
    p->n = 0;
    for (int pass = 0; pass < 2; pass++) /* 4-byte elements first */
        for (size_t i = 0; i < set->n_tensors; i++) {
            const gf_st_tensor *t = set->sorted[i];
            if (!keep(t->name, p->prefix))
                continue;
            if (t->dtype == GF_ST_I8)
                return gf_error(GEMFA_ERR_UNSUPPORTED,
                                "quantize: %s: tensor '%s' is already int8 (a quantized "
                                "checkpoint cannot be quantized again)",
                                gf_st_file_name(t->file), t->name);
            const int q = quantizable(t);
            if ((pass == 0) != (!q && gf_st_dtype_size(t->dtype) == 4))
                continue;
            out_tensor *o = &p->t[p->n++];
            o->src = t;
            o->quantized = q;
            o->bytes = q ? scales_bytes(t) + t->n_elements : t->end - t->begin;
        }
    uint64_t off = 0;
    for (size_t i = 0; i < p->n; i++) {
        p->t[i].begin = off;
        off += p->t[i].bytes;
    }
    p->data_bytes = off;
    return GEMFA_OK;
}

/* ---- header ---- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int failed;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) GF_PRINTF(2, 3);
static void put(sbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *s = gf_realloc(b->s, cap);
        if (!s) {
            b->failed = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

/* Tensor names are plain ASCII in practice; escape anyway. */
static void put_name(sbuf *b, const char *name, const char *suffix)
{
    put(b, "\"");
    for (const char *c = name; *c; c++) {
        if (*c == '"' || *c == '\\')
            put(b, "\\%c", *c);
        else if ((unsigned char)*c < 0x20)
            put(b, "\\u%04x", (unsigned)(unsigned char)*c);
        else
            put(b, "%c", *c);
    }
    put(b, "%s\"", suffix);
}

static void put_entry(sbuf *b, const char *name, const char *suffix, const char *dtype,
                      const int64_t *shape, int n_dims, uint64_t begin, uint64_t end)
{
    put(b, ",");
    put_name(b, name, suffix);
    put(b, ":{\"dtype\":\"%s\",\"shape\":[", dtype);
    for (int d = 0; d < n_dims; d++)
        put(b, "%s%" PRId64, d ? "," : "", shape[d]);
    put(b, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", begin, end);
}

/* The header JSON, padded with spaces so the data starts 64-byte aligned
 * in the file (8-byte length + header). */
static gemfa_status make_header(const plan *p, sbuf *b)
{
    put(b, "{\"__metadata__\":{\"format\":\"pt\",\"gemfa.quantization\":\"%s\"}", GF_Q8_SCHEME);
    for (size_t i = 0; i < p->n; i++) {
        const out_tensor *o = &p->t[i];
        const gf_st_tensor *t = o->src;
        if (o->quantized) {
            const uint64_t sb = scales_bytes(t);
            const int64_t sshape[2] = {t->shape[0], t->shape[1] / 32};
            put_entry(b, t->name, GF_Q8_SCALE_SUFFIX, "F16", sshape, 2, o->begin, o->begin + sb);
            put_entry(b, t->name, "", "I8", t->shape, 2, o->begin + sb, o->begin + o->bytes);
        } else {
            put_entry(b, t->name, "", gf_st_dtype_name(t->dtype), t->shape, t->n_dims, o->begin,
                      o->begin + o->bytes);
        }
    }
    put(b, "}");
    while (!b->failed && (8 + b->len) % 64 != 0)
        put(b, " ");
    if (b->failed)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "quantize: out of memory for the header");
    return GEMFA_OK;
}

/* ---- files ---- */

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = gf_malloc(a + b + 2);
    if (p)
        snprintf(p, a + b + 2, "%s/%s", dir, name);
    return p;
}

static gemfa_status write_all(FILE *f, const void *data, size_t n, const char *path)
{
    if (n && fwrite(data, 1, n, f) != n)
        return gf_error(GEMFA_ERR_IO, "quantize: cannot write %s: %s", path, strerror(errno));
    return GEMFA_OK;
}

static gemfa_status copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    gemfa_status st = GEMFA_OK;
    if (!in || !out) {
        st = gf_error(GEMFA_ERR_IO, "quantize: cannot copy %s to %s: %s", from, to,
                      strerror(errno));
    } else {
        char buf[1 << 16];
        size_t n;
        while (st == GEMFA_OK && (n = fread(buf, 1, sizeof buf, in)) > 0)
            st = write_all(out, buf, n, to);
        if (st == GEMFA_OK && ferror(in))
            st = gf_error(GEMFA_ERR_IO, "quantize: cannot read %s", from);
    }
    if (in)
        fclose(in);
    if (out && fclose(out) != 0 && st == GEMFA_OK)
        st = gf_error(GEMFA_ERR_IO, "quantize: cannot write %s: %s", to, strerror(errno));
    return st;
}

/* Every regular file of src but the weights (config, tokenizer, template…). */
static gemfa_status copy_side_files(const char *src, const char *dst)
{
    DIR *d = opendir(src);
    if (!d)
        return gf_error(gf_errno_status(errno), "quantize: cannot list %s: %s", src,
                        strerror(errno));
    gemfa_status st = GEMFA_OK;
    struct dirent *e;
    while (st == GEMFA_OK && (e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (n[0] == '.' || ends_with(n, ".safetensors") ||
            strcmp(n, "model.safetensors.index.json") == 0)
            continue;
        char *from = join(src, n), *to = join(dst, n);
        struct stat sb;
        if (!from || !to)
            st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "quantize: out of memory");
        else if (stat(from, &sb) == 0 && S_ISREG(sb.st_mode))
            st = copy_file(from, to);
        gf_free(from);
        gf_free(to);
    }
    closedir(d);
    return st;
}

static gemfa_status report(gemfa_progress_fn fn, void *user, double fraction)
{
    if (fn && fn(user, (float)fraction, "quantize"))
        return gf_error(GEMFA_ERR_CANCELLED, "quantize: cancelled by the progress callback");
    return GEMFA_OK;
}

static gemfa_status write_data(const plan *p, FILE *f, const char *path, int n_threads,
                               gemfa_progress_fn fn, void *user, gf_quantize_stats *stats)
{
    size_t cap = 0;
    void *buf = NULL;
    gemfa_status st = GEMFA_OK;
    uint64_t done = 0;
    for (size_t i = 0; i < p->n && st == GEMFA_OK; i++) {
        const out_tensor *o = &p->t[i];
        const gf_st_tensor *t = o->src;
        if (!o->quantized) {
            st = write_all(f, t->data, (size_t)o->bytes, path);
            gf_st_advise_done(t);
            stats->n_copied++;
        } else {
            const int64_t rows = t->shape[0], cols = t->shape[1];
            const size_t need = gf_convert_bytes(GF_DTYPE_Q8, rows, cols);
            if (need > cap) {
                gf_free_aligned(buf);
                cap = 0;
                if (need == SIZE_MAX || !(buf = gf_alloc_aligned(need)))
                    return gf_error(GEMFA_ERR_OUT_OF_MEMORY,
                                    "quantize: out of memory for tensor '%s' (%zu bytes)",
                                    t->name, need);
                cap = need;
            }
            gf_convert_matrix(t->data, model_dtype(t->dtype), buf, GF_DTYPE_Q8, rows, cols,
                              n_threads);
            gf_st_advise_done(t);
            st = write_all(f, (const uint8_t *)buf + gf_q8_scales_offset(rows, cols),
                           (size_t)scales_bytes(t), path);
            if (st == GEMFA_OK)
                st = write_all(f, buf, (size_t)t->n_elements, path);
            stats->n_quantized++;
        }
        done += o->bytes;
        if (st == GEMFA_OK)
            st = report(fn, user, p->data_bytes ? (double)done / (double)p->data_bytes : 1.0);
    }
    gf_free_aligned(buf);
    return st;
}

static int same_dir(const char *a, const char *b)
{
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

gemfa_status gf_quantize_checkpoint(const char *src_dir, const char *dst_dir, int n_threads,
                                    gemfa_progress_fn progress, void *user,
                                    gf_quantize_stats *stats)
{
    if (!src_dir || !dst_dir || !stats)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "quantize: %s is NULL",
                        !src_dir ? "src_dir" : !dst_dir ? "dst_dir" : "stats");
    memset(stats, 0, sizeof *stats);
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c < 1 ? 1 : c > 64 ? 64 : (int)c;
    }
    if (mkdir(dst_dir, 0777) != 0 && errno != EEXIST)
        return gf_error(GEMFA_ERR_IO, "quantize: cannot create %s: %s", dst_dir, strerror(errno));
    if (same_dir(src_dir, dst_dir))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "quantize: the destination %s is the source directory", dst_dir);
    char *index = join(dst_dir, "model.safetensors.index.json");
    char *final_path = join(dst_dir, "model.safetensors");
    char *tmp_path = join(dst_dir, "model.safetensors.tmp");
    gf_shard_set *set = NULL;
    plan p = {0};
    sbuf header = {0};
    FILE *f = NULL;
    gemfa_status st = GEMFA_OK;
    if (!index || !final_path || !tmp_path)
        st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "quantize: out of memory");
    else if (access(index, F_OK) == 0)
        st = gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                      "quantize: %s exists; it would take precedence over the quantized "
                      "model.safetensors (remove it or choose another directory)",
                      index);
    if (st == GEMFA_OK)
        st = gf_shard_set_open(src_dir, &set);
    if (st == GEMFA_OK)
        st = make_plan(set, &p);
    if (st == GEMFA_OK)
        st = make_header(&p, &header);
    if (st == GEMFA_OK && !(f = fopen(tmp_path, "wb")))
        st = gf_error(GEMFA_ERR_IO, "quantize: cannot create %s: %s", tmp_path, strerror(errno));
    if (st == GEMFA_OK) {
        uint8_t len[8];
        for (int i = 0; i < 8; i++)
            len[i] = (uint8_t)((uint64_t)header.len >> (8 * i));
        st = write_all(f, len, 8, tmp_path);
        if (st == GEMFA_OK)
            st = write_all(f, header.s, header.len, tmp_path);
    }
    if (st == GEMFA_OK)
        st = write_data(&p, f, tmp_path, n_threads, progress, user, stats);
    if (f && fclose(f) != 0 && st == GEMFA_OK)
        st = gf_error(GEMFA_ERR_IO, "quantize: cannot write %s: %s", tmp_path, strerror(errno));
    if (st == GEMFA_OK)
        st = copy_side_files(src_dir, dst_dir);
    if (st == GEMFA_OK && rename(tmp_path, final_path) != 0)
        st = gf_error(GEMFA_ERR_IO, "quantize: cannot rename %s to %s: %s", tmp_path, final_path,
                      strerror(errno));
    if (st != GEMFA_OK && f)
        unlink(tmp_path);
    if (st == GEMFA_OK)
        stats->bytes_written = (int64_t)(8 + header.len + p.data_bytes);
    gf_free(header.s);
    gf_free(p.t);
    gf_shard_set_free(set);
    gf_free(index);
    gf_free(final_path);
    gf_free(tmp_path);
    return st;
}
