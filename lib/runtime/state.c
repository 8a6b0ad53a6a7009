/* state.c — saving a session's state and loading it into a new session
 * (format: docs/session-state.md).
 *
 * Layout: a 96-byte little-endian header, then the payload: token ids
 * (i32), the last logits (f32, when flagged), and for each layer that owns
 * a KV cache, in layer order, K then V as [n_kv_heads][positions][head_dim]
 * in the session's KV type (f32 or f16) -- all positions for full layers, positions ring_start..n−1 for
 * sliding layers.  Positions, not ring slots, are stored, so the state does
 * not depend on the ring size.  The header carries CRC32C of itself and of
 * the payload; loading checks the header against the model and the data
 * size before it allocates anything. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "core/status.h"
#include "kernels/convert.h"
#include "runtime/context.h"
#include "runtime/fingerprint.h"
#include "runtime/gemma3n.h"
#include "runtime/session.h"

#define STATE_MAGIC "GFSTATE\x1a"
#define STATE_VERSION 1
#define HEADER_BYTES 96
#define FLAG_LOGITS 1u
#define KNOWN_FLAGS FLAG_LOGITS

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_BIG_ENDIAN 1
#else
#define HOST_BIG_ENDIAN 0
#endif

typedef struct header {
    uint32_t version, header_bytes;
    uint64_t fingerprint;
    uint32_t kv_type, flags;
    uint64_t n_tokens, ring_start, max_context;
    uint32_t n_layers, n_kv_heads, head_dim, sliding_window;
    uint64_t vocab_size, payload_bytes;
    uint32_t payload_crc, header_crc;
} header;

/* ------------------------------------------------------------------------
 * Header encoding
 * ---------------------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void encode_header(const header *h, unsigned char *b)
{
    memcpy(b, STATE_MAGIC, 8);
    put32(b + 8, h->version);
    put32(b + 12, h->header_bytes);
    put64(b + 16, h->fingerprint);
    put32(b + 24, h->kv_type);
    put32(b + 28, h->flags);
    put64(b + 32, h->n_tokens);
    put64(b + 40, h->ring_start);
    put64(b + 48, h->max_context);
    put32(b + 56, h->n_layers);
    put32(b + 60, h->n_kv_heads);
    put32(b + 64, h->head_dim);
    put32(b + 68, h->sliding_window);
    put64(b + 72, h->vocab_size);
    put64(b + 80, h->payload_bytes);
    put32(b + 88, h->payload_crc);
    put32(b + 92, gf_crc32c(0, b, 92));
}

static void decode_header(const unsigned char *b, header *h)
{
    h->version = get32(b + 8);
    h->header_bytes = get32(b + 12);
    h->fingerprint = get64(b + 16);
    h->kv_type = get32(b + 24);
    h->flags = get32(b + 28);
    h->n_tokens = get64(b + 32);
    h->ring_start = get64(b + 40);
    h->max_context = get64(b + 48);
    h->n_layers = get32(b + 56);
    h->n_kv_heads = get32(b + 60);
    h->head_dim = get32(b + 64);
    h->sliding_window = get32(b + 68);
    h->vocab_size = get64(b + 72);
    h->payload_bytes = get64(b + 80);
    h->payload_crc = get32(b + 88);
    h->header_crc = get32(b + 92);
}

static uint64_t model_fingerprint(gemfa_context *ctx)
{
    if (!ctx->has_fingerprint) {
        ctx->fingerprint = gf_model_fingerprint(ctx->model);
        ctx->has_fingerprint = 1;
    }
    return ctx->fingerprint;
}

static int owns_kv(const gf_hparams *hp, int l) { return hp->kv_source[l] == l; }

/* Payload bytes for n tokens with sliding layers stored from ring_start
 * (n, ring_start <= the model's context, so nothing overflows 64 bits). */
static uint64_t payload_bytes(const gf_hparams *hp, uint64_t n, uint64_t ring_start, int logits,
                              size_t elem)
{
    const uint64_t row = 2 * (uint64_t)hp->n_kv_heads * (uint64_t)hp->head_dim * elem;
    uint64_t b = n * sizeof(int32_t) + (logits ? (uint64_t)hp->vocab_size * sizeof(float) : 0);
    for (int l = 0; l < hp->n_layers; l++)
        if (owns_kv(hp, l))
            b += row * (hp->is_sliding[l] ? n - ring_start : n);
    return b;
}

/* ------------------------------------------------------------------------
 * Save
 * ---------------------------------------------------------------------- */

/* Where the payload goes: a buffer or a file; the CRC runs along. */
typedef struct sink {
    unsigned char *buf;
    FILE *f;
    uint32_t crc;
    int failed;
} sink;

static void sink_put(sink *k, const void *p, size_t n)
{
    k->crc = gf_crc32c(k->crc, p, n);
    if (k->buf) {
        memcpy(k->buf, p, n);
        k->buf += n;
    } else if (!k->failed && fwrite(p, 1, n, k->f) != n) {
        k->failed = 1;
    }
}

/* Positions stored contiguously from `slot` on: up to `left`, until the
 * ring wraps (slots of a head are contiguous, position p in p % n_slots). */
static int64_t slot_run(const gf_kv_layer *L, int64_t slot, int64_t left)
{
    return left < L->n_slots - slot ? left : L->n_slots - slot;
}

/* First position the state stores for sliding layers: every one the rings
 * still hold (so a loaded session rolls back as cheaply as the original). */
static int64_t ring_start_of(const gemfa_session *s)
{
    if (s->kv.ring_slots >= s->max_context)
        return 0;
    int64_t lo = s->n_tokens - s->kv.ring_slots;
    if (s->ring_lo > lo)
        lo = s->ring_lo;
    return lo > 0 ? lo : 0;
}

static void make_header(gemfa_context *ctx, const gemfa_session *s, header *h)
{
    const gf_hparams *hp = &ctx->model->hp;
    memset(h, 0, sizeof *h);
    h->version = STATE_VERSION;
    h->header_bytes = HEADER_BYTES;
    h->fingerprint = model_fingerprint(ctx);
    h->kv_type = (uint32_t)s->kv.type;
    h->flags = s->has_logits ? FLAG_LOGITS : 0;
    h->n_tokens = (uint64_t)s->n_tokens;
    h->ring_start = (uint64_t)ring_start_of(s);
    h->max_context = (uint64_t)s->max_context;
    h->n_layers = (uint32_t)hp->n_layers;
    h->n_kv_heads = (uint32_t)hp->n_kv_heads;
    h->head_dim = (uint32_t)hp->head_dim;
    h->sliding_window = (uint32_t)hp->sliding_window;
    h->vocab_size = (uint64_t)hp->vocab_size;
    h->payload_bytes = payload_bytes(hp, h->n_tokens, h->ring_start, s->has_logits, s->kv.elem);
}

static void write_payload(const gemfa_session *s, const header *h, sink *k)
{
    const gf_hparams *hp = &s->ctx->model->hp;
    const gf_kvcache *kv = &s->kv;
    const size_t row = (size_t)kv->head_dim * kv->elem;
    sink_put(k, s->tokens, (size_t)s->n_tokens * sizeof(int32_t));
    if (h->flags & FLAG_LOGITS)
        sink_put(k, s->logits, (size_t)hp->vocab_size * sizeof(float));
    for (int l = 0; l < hp->n_layers; l++) {
        if (!owns_kv(hp, l))
            continue;
        const gf_kv_layer *L = &kv->layers[l];
        const int64_t first = hp->is_sliding[l] ? (int64_t)h->ring_start : 0;
        for (int kind = 0; kind < 2; kind++)
            for (int64_t g = 0; g < kv->n_kv_heads; g++)
                for (int64_t p = first, run; p < s->n_tokens; p += run) {
                    const int64_t slot = gf_kv_slot(L, p);
                    run = slot_run(L, slot, s->n_tokens - p);
                    sink_put(k, kind ? gf_kv_value(kv, L, g, slot) : gf_kv_key(kv, L, g, slot),
                             row * (size_t)run);
                }
    }
}

/* The OS said the path does not exist (gemfa.h: NOT_FOUND, else IO). */
static int missing(int e) { return e == ENOENT || e == ENOTDIR; }

static gemfa_status check_save_host(const char *fn)
{
    if (HOST_BIG_ENDIAN)
        return gf_error(GEMFA_ERR_UNSUPPORTED, "%s: session states are little-endian; this host "
                                               "is big-endian", fn);
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_session_save(const gemfa_session *session, void *buf, size_t cap,
                                          size_t *len)
{
    if (!session || !len || (!buf && cap > 0))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_session_save: %s is NULL",
                        !session ? "session" : (!len ? "len" : "buf"));
    gemfa_status st = check_save_host("gemfa_session_save");
    if (st != GEMFA_OK)
        return st;
    header h;
    make_header(session->ctx, session, &h);
    const uint64_t total = HEADER_BYTES + h.payload_bytes;
    if (total > SIZE_MAX)
        return gf_error(GEMFA_ERR_UNSUPPORTED, "gemfa_session_save: %llu bytes do not fit in memory",
                        (unsigned long long)total);
    if (cap < total) {
        *len = (size_t)total;
        return gf_error(GEMFA_ERR_BUFFER_TOO_SMALL,
                        "gemfa_session_save: the buffer holds %zu bytes, the state needs %llu", cap,
                        (unsigned long long)total);
    }
    unsigned char *b = buf;
    sink k = {.buf = b + HEADER_BYTES};
    write_payload(session, &h, &k);
    h.payload_crc = k.crc;
    encode_header(&h, b);
    *len = (size_t)total;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_session_save_file(const gemfa_session *session, const char *path)
{
    if (!session || !path)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_session_save_file: %s is NULL",
                        !session ? "session" : "path");
    gemfa_status st = check_save_host("gemfa_session_save_file");
    if (st != GEMFA_OK)
        return st;
    /* A new file next to path (mode 0666 minus the umask, like any new file),
     * renamed over path once complete. */
    const size_t plen = strlen(path);
    char *tmp = gf_malloc(plen + 48);
    if (!tmp)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_session_save_file: out of memory");
    static atomic_uint counter;
    int fd = -1;
    for (int attempt = 0; fd < 0 && attempt < 100; attempt++) {
        snprintf(tmp, plen + 48, "%s.tmp%ld.%u", path, (long)getpid(),
                 atomic_fetch_add(&counter, 1));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        const int e = errno;
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        gf_free(tmp);
        return gf_error(missing(e) ? GEMFA_ERR_NOT_FOUND : GEMFA_ERR_IO,
                        "gemfa_session_save_file: cannot create a file next to %s: %s", path,
                        strerror(e));
    }
    header h;
    make_header(session->ctx, session, &h);
    unsigned char hb[HEADER_BYTES] = {0};
    sink k = {.f = f};
    int failed = fwrite(hb, 1, HEADER_BYTES, f) != HEADER_BYTES; /* placeholder */
    write_payload(session, &h, &k);
    h.payload_crc = k.crc;
    encode_header(&h, hb);
    failed = failed || k.failed || fseek(f, 0, SEEK_SET) != 0 ||
             fwrite(hb, 1, HEADER_BYTES, f) != HEADER_BYTES || fflush(f) != 0;
    const int e = errno;
    failed = (fclose(f) != 0) || failed;
    if (!failed && rename(tmp, path) != 0)
        failed = 1;
    if (failed) {
        const int e2 = errno ? errno : e;
        unlink(tmp);
        gf_free(tmp);
        return gf_error(GEMFA_ERR_IO, "gemfa_session_save_file: cannot write %s: %s", path,
                        strerror(e2));
    }
    gf_free(tmp);
    return GEMFA_OK;
}

/* ------------------------------------------------------------------------
 * Load
 * ---------------------------------------------------------------------- */

/* Checks a header against the model and the data size; on success *mc is
 * the new session's max context.  `fn` names the call in messages. */
static gemfa_status check_header(gemfa_context *ctx, const gemfa_session_options *opts,
                                 const unsigned char *b, uint64_t size, header *h, int64_t *mc,
                                 const char *fn)
{
    const gf_hparams *hp = &ctx->model->hp;
    if (size < 16 || memcmp(b, STATE_MAGIC, 8) != 0)
        return gf_error(GEMFA_ERR_FORMAT, "%s: not a libgemfa session state (%s)", fn,
                        size < 16 ? "too short" : "wrong magic bytes");
    const uint32_t version = get32(b + 8), header_bytes = get32(b + 12);
    if (version == 0)
        return gf_error(GEMFA_ERR_FORMAT, "%s: format version 0 is invalid", fn);
    if (version > STATE_VERSION)
        return gf_error(GEMFA_ERR_UNSUPPORTED,
                        "%s: format version %u is newer than this libgemfa reads (%d)", fn,
                        version, STATE_VERSION);
    if (header_bytes != HEADER_BYTES)
        return gf_error(GEMFA_ERR_FORMAT, "%s: header size %u, version %d has %d", fn,
                        header_bytes, STATE_VERSION, HEADER_BYTES);
    if (size < HEADER_BYTES)
        return gf_error(GEMFA_ERR_FORMAT, "%s: truncated: %llu bytes, the header alone has %d", fn,
                        (unsigned long long)size, HEADER_BYTES);
    decode_header(b, h);
    if (gf_crc32c(0, b, 92) != h->header_crc)
        return gf_error(GEMFA_ERR_FORMAT, "%s: header checksum mismatch (damaged or edited)", fn);
    if (h->n_layers != (uint32_t)hp->n_layers || h->n_kv_heads != (uint32_t)hp->n_kv_heads ||
        h->head_dim != (uint32_t)hp->head_dim || h->vocab_size != (uint64_t)hp->vocab_size ||
        h->sliding_window != (uint32_t)hp->sliding_window)
        return gf_error(GEMFA_ERR_MODEL_MISMATCH,
                        "%s: the state is of another model (%u layers, %u KV heads of %u, "
                        "window %u, vocabulary %llu; this model: %d, %d of %lld, %lld, %lld)",
                        fn, h->n_layers, h->n_kv_heads, h->head_dim, h->sliding_window,
                        (unsigned long long)h->vocab_size, hp->n_layers, hp->n_kv_heads,
                        (long long)hp->head_dim, (long long)hp->sliding_window,
                        (long long)hp->vocab_size);
    const uint64_t fpr = model_fingerprint(ctx);
    if (h->fingerprint != fpr)
        return gf_error(GEMFA_ERR_MODEL_MISMATCH,
                        "%s: the state is of another model (fingerprint %016llx, this model's "
                        "%016llx: other weights, weight type or settings)",
                        fn, (unsigned long long)h->fingerprint, (unsigned long long)fpr);
    if (h->kv_type > GEMFA_KV_F16 || !gf_kv_elem((gemfa_kv_type)h->kv_type))
        return gf_error(GEMFA_ERR_UNSUPPORTED, "%s: KV type %u is not known to this libgemfa", fn,
                        h->kv_type);
    if (opts && opts->kv_type_set && (uint32_t)opts->kv_type != h->kv_type)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "%s: the state's KV cache is %s, the options ask for %s (states are not "
                        "converted: load it without a KV type, or with %s)",
                        fn, gemfa_kv_type_name((gemfa_kv_type)h->kv_type),
                        gemfa_kv_type_name(opts->kv_type),
                        gemfa_kv_type_name((gemfa_kv_type)h->kv_type));
    if (h->flags & ~KNOWN_FLAGS)
        return gf_error(GEMFA_ERR_UNSUPPORTED, "%s: flags 0x%x are not known to this libgemfa", fn,
                        h->flags & ~KNOWN_FLAGS);
    const uint64_t model_max = (uint64_t)hp->max_position_embeddings;
    const uint64_t keep = (uint64_t)hp->sliding_window - 1;
    if (h->max_context == 0 || h->max_context > model_max || h->n_tokens > h->max_context)
        return gf_error(GEMFA_ERR_FORMAT,
                        "%s: %llu tokens in a context of %llu (the model allows %llu)", fn,
                        (unsigned long long)h->n_tokens, (unsigned long long)h->max_context,
                        (unsigned long long)model_max);
    if (h->ring_start > h->n_tokens || (h->ring_start > 0 && h->n_tokens - h->ring_start < keep))
        return gf_error(GEMFA_ERR_FORMAT,
                        "%s: sliding layers stored from position %llu of %llu; the next token "
                        "needs the last %llu",
                        fn, (unsigned long long)h->ring_start, (unsigned long long)h->n_tokens,
                        (unsigned long long)keep);
    const uint64_t want = payload_bytes(hp, h->n_tokens, h->ring_start, h->flags & FLAG_LOGITS,
                                        gf_kv_elem((gemfa_kv_type)h->kv_type));
    if (h->payload_bytes != want)
        return gf_error(GEMFA_ERR_FORMAT, "%s: payload size %llu, the header's fields imply %llu",
                        fn, (unsigned long long)h->payload_bytes, (unsigned long long)want);
    if (size - HEADER_BYTES != want)
        return gf_error(GEMFA_ERR_FORMAT, "%s: %s: %llu bytes, the header describes %llu", fn,
                        size - HEADER_BYTES < want ? "truncated" : "trailing bytes",
                        (unsigned long long)size, (unsigned long long)(HEADER_BYTES + want));
    int64_t m = opts ? opts->max_context : 0;
    if (m > hp->max_position_embeddings)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "%s: max context %lld is above the model's max_position_embeddings %lld",
                        fn, (long long)m, (long long)hp->max_position_embeddings);
    if (m == 0)
        m = (int64_t)h->max_context;
    if (h->n_tokens > (uint64_t)m)
        return gf_error(GEMFA_ERR_CONTEXT_FULL,
                        "%s: the state holds %llu tokens, the session's maximum context is %lld",
                        fn, (unsigned long long)h->n_tokens, (long long)m);
    *mc = m;
    return GEMFA_OK;
}

/* Where the payload comes from: a buffer or a file; the CRC runs along. */
typedef struct source {
    const unsigned char *buf;
    FILE *f;
    uint32_t crc;
    int failed;
    int crc_checked; /* a buffer's CRC was verified before: not again */
} source;

static void source_get(source *r, void *p, size_t n)
{
    if (r->buf) {
        memcpy(p, r->buf, n);
        r->buf += n;
    } else if (r->failed || fread(p, 1, n, r->f) != n) {
        r->failed = 1;
        memset(p, 0, n);
    }
    if (!r->crc_checked)
        r->crc = gf_crc32c(r->crc, p, n);
}

/* Fills the new session s from the payload (sizes already checked). */
static void read_payload(gemfa_session *s, const header *h, source *r)
{
    const gf_hparams *hp = &s->ctx->model->hp;
    gf_kvcache *kv = &s->kv;
    const int64_t n = (int64_t)h->n_tokens;
    const size_t row = (size_t)kv->head_dim * kv->elem;
    source_get(r, s->tokens, (size_t)n * sizeof(int32_t));
    if (h->flags & FLAG_LOGITS)
        source_get(r, s->logits, (size_t)hp->vocab_size * sizeof(float));
    for (int l = 0; l < hp->n_layers; l++) {
        if (!owns_kv(hp, l))
            continue;
        gf_kv_layer *L = &kv->layers[l];
        const int64_t first = hp->is_sliding[l] ? (int64_t)h->ring_start : 0;
        for (int kind = 0; kind < 2; kind++)
            for (int64_t g = 0; g < kv->n_kv_heads; g++)
                for (int64_t p = first, run; p < n; p += run) {
                    /* in a ring smaller than the stored positions, later
                     * runs overwrite the oldest */
                    const int64_t slot = gf_kv_slot(L, p);
                    run = slot_run(L, slot, n - p);
                    source_get(r, kind ? gf_kv_value(kv, L, g, slot) : gf_kv_key(kv, L, g, slot),
                               row * (size_t)run);
                }
    }
    int64_t lo = 0;
    if (kv->ring_slots < s->max_context) {
        lo = (int64_t)h->ring_start;
        if (n - kv->ring_slots > lo)
            lo = n - kv->ring_slots;
    }
    s->ring_lo = lo;
}

/* Largest |key| and |value| entry layer l can produce: keys are RMS-normed
 * per head (|x_i| / rms <= sqrt(d)), scaled by k_norm and rotated in pairs
 * (at most sqrt(2) growth); values are RMS-normed without gain.  With 1%
 * slack for rounding.  A state beyond these (or NaN) was not made by this
 * model and could drive the attention to non-finite scores. */
static void kv_bounds(const gemfa_model *m, int l, float *kmax, float *vmax)
{
    const int64_t d = m->hp.head_dim;
    const float *g = m->layers[l].k_norm;
    float gmax = g ? 0.0f : 1.0f;
    for (int64_t i = 0; g && i < d; i++)
        gmax = fabsf(g[i]) > gmax ? fabsf(g[i]) : gmax;
    *kmax = sqrtf(2.0f * (float)d) * gmax * 1.01f + 1e-6f;
    *vmax = sqrtf((float)d) * 1.01f + 1e-6f;
}

/* Checks the K/V the session now holds for positions [.., n) against
 * kv_bounds; FORMAT naming the first offender. */
static gemfa_status check_kv_range(const gemfa_session *s, const header *h, const char *fn)
{
    const gemfa_model *m = s->ctx->model;
    const gf_hparams *hp = &m->hp;
    const gf_kvcache *kv = &s->kv;
    const int64_t n = (int64_t)h->n_tokens, d = kv->head_dim;
    for (int l = 0; l < hp->n_layers; l++) {
        if (!owns_kv(hp, l))
            continue;
        const gf_kv_layer *L = &kv->layers[l];
        int64_t first = hp->is_sliding[l] ? (int64_t)h->ring_start : 0;
        if (n - L->n_slots > first)
            first = n - L->n_slots; /* older positions were overwritten while reading */
        float bound[2];
        kv_bounds(m, l, &bound[0], &bound[1]);
        for (int kind = 0; kind < 2; kind++)
            for (int64_t g = 0; g < kv->n_kv_heads; g++)
                for (int64_t p = first; p < n; p++) {
                    const int64_t slot = gf_kv_slot(L, p);
                    const void *row = kind ? gf_kv_value(kv, L, g, slot) : gf_kv_key(kv, L, g, slot);
                    for (int64_t i = 0; i < d; i++) {
                        const float x = kv->type == GEMFA_KV_F16
                                            ? gf_f16_to_f32(((const uint16_t *)row)[i])
                                            : ((const float *)row)[i];
                        if (!(fabsf(x) <= bound[kind])) /* NaN fails too */
                            return gf_error(GEMFA_ERR_FORMAT,
                                            "%s: layer %d, KV head %lld, position %lld: a %s "
                                            "entry of %g, beyond what the model produces "
                                            "(|x| <= %g)",
                                            fn, l, (long long)g, (long long)p,
                                            kind ? "value" : "key", (double)x,
                                            (double)bound[kind]);
                    }
                }
    }
    return GEMFA_OK;
}

/* Creates the session of header h and fills it from r; the payload CRC
 * and the token ids are checked at the end (before anything is returned). */
static gemfa_status load_into_new(gemfa_context *ctx, const header *h, int64_t mc, source *r,
                                  gemfa_session **out, const char *fn)
{
    gemfa_session *s = NULL;
    gemfa_status st = gf_session_create(ctx, mc, gf_session_default_ring(ctx),
                                        (gemfa_kv_type)h->kv_type, &s);
    if (st != GEMFA_OK)
        return gf_error_prefix(st, "%s", fn);
    read_payload(s, h, r);
    if (r->failed)
        st = gf_error(GEMFA_ERR_IO, "%s: read error: %s", fn, strerror(errno));
    else if (!r->crc_checked && r->crc != h->payload_crc)
        st = gf_error(GEMFA_ERR_FORMAT, "%s: payload checksum mismatch (damaged or edited)", fn);
    if (st == GEMFA_OK)
        st = check_kv_range(s, h, fn);
    for (int64_t i = 0; st == GEMFA_OK && i < (int64_t)h->n_tokens; i++) {
        st = gf_check_token(ctx->model, s->tokens[i]);
        if (st != GEMFA_OK)
            st = gf_error_prefix(GEMFA_ERR_FORMAT, "%s: token %lld", fn, (long long)i);
    }
    if (st != GEMFA_OK) {
        gf_session_destroy(s);
        return st;
    }
    s->n_tokens = (int64_t)h->n_tokens;
    s->has_logits = (h->flags & FLAG_LOGITS) != 0;
    *out = s;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_session_load(gemfa_context *ctx, const gemfa_session_options *opts,
                                          const void *data, size_t size, gemfa_session **out)
{
    static const char fn[] = "gemfa_session_load";
    if (!ctx || !data || !out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !ctx ? "ctx" : (!data ? "data" : "out"));
    if (HOST_BIG_ENDIAN)
        return check_save_host(fn);
    header h;
    int64_t mc;
    gemfa_status st = check_header(ctx, opts, data, size, &h, &mc, fn);
    if (st != GEMFA_OK)
        return st;
    const unsigned char *payload = (const unsigned char *)data + HEADER_BYTES;
    if (gf_crc32c(0, payload, (size_t)h.payload_bytes) != h.payload_crc) /* before allocating */
        return gf_error(GEMFA_ERR_FORMAT, "%s: payload checksum mismatch (damaged or edited)", fn);
    source r = {.buf = payload, .crc_checked = 1};
    return load_into_new(ctx, &h, mc, &r, out, fn);
}

GEMFA_API gemfa_status gemfa_session_load_file(gemfa_context *ctx,
                                               const gemfa_session_options *opts,
                                               const char *path, gemfa_session **out)
{
    static const char fn[] = "gemfa_session_load_file";
    if (!ctx || !path || !out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !ctx ? "ctx" : (!path ? "path" : "out"));
    if (HOST_BIG_ENDIAN)
        return check_save_host(fn);
    /* O_NONBLOCK: opening a FIFO nobody writes must not hang; only regular
     * files are read. */
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return gf_error(missing(errno) ? GEMFA_ERR_NOT_FOUND : GEMFA_ERR_IO,
                        "%s: cannot open %s: %s", fn, path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return gf_error(GEMFA_ERR_IO, "%s: %s is not a regular file", fn, path);
    }
    FILE *f = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        const int e = errno;
        close(fd);
        return gf_error(GEMFA_ERR_IO, "%s: cannot read %s: %s", fn, path, strerror(e));
    }
    unsigned char hb[HEADER_BYTES] = {0};
    gemfa_status st = GEMFA_OK;
    const size_t got = fread(hb, 1, HEADER_BYTES, f);
    if (st == GEMFA_OK && got < HEADER_BYTES && ferror(f))
        st = gf_error(GEMFA_ERR_IO, "%s: cannot read %s: %s", fn, path, strerror(errno));
    header h;
    int64_t mc = 0;
    if (st == GEMFA_OK) {
        /* a short file still gets its magic and version checked */
        const uint64_t size = (uint64_t)sb.st_size < got ? got : (uint64_t)sb.st_size;
        st = check_header(ctx, opts, hb, got < HEADER_BYTES ? got : size, &h, &mc, fn);
        if (st != GEMFA_OK)
            st = gf_error_prefix(st, "%s", path);
    }
    if (st == GEMFA_OK) {
        source r = {.f = f};
        st = load_into_new(ctx, &h, mc, &r, out, fn);
        if (st != GEMFA_OK)
            st = gf_error_prefix(st, "%s", path);
    }
    fclose(f);
    return st;
}
