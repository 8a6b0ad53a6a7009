/* session.c — sessions: options, create/free/reset/fork, and the decode
 * entry points with their failure atomicity.
 *
 * A decode computes first and commits last.  New keys/values go to slots of
 * positions beyond n_tokens (full layers) or to ring slots whose previous
 * content is older than the window the committed history still needs
 * (sliding layers, ring of W − 1 + chunk slots).  Only when everything has
 * run are the ids appended, the logits copied and n_tokens advanced, so a
 * decode that fails (context full, invalid id, cancellation) leaves the
 * session as it was.  A decode longer than one chunk wraps the rings over
 * that window; it saves the window first and restores it on failure. */
#include "runtime/session.h"

#include <string.h>

#include "core/alloc.h"
#include "core/status.h"
#include "runtime/context.h"
#include "runtime/gemma3n.h"

/* ------------------------------------------------------------------------
 * Options
 * ---------------------------------------------------------------------- */

GEMFA_API gemfa_status gemfa_session_options_new(gemfa_session_options **out)
{
    if (!out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_session_options_new: out is NULL");
    gemfa_session_options *o = gf_calloc(1, sizeof *o);
    if (!o)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_session_options_new: out of memory");
    *out = o;
    return GEMFA_OK;
}

GEMFA_API void gemfa_session_options_free(gemfa_session_options *opts) { gf_free(opts); }

GEMFA_API gemfa_status gemfa_session_options_set_max_context(gemfa_session_options *opts,
                                                             int64_t n_tokens)
{
    if (!opts)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_session_options_set_max_context: opts is NULL");
    if (n_tokens < 0)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_session_options_set_max_context: %lld is negative",
                        (long long)n_tokens);
    opts->max_context = n_tokens;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_session_options_set_kv_type(gemfa_session_options *opts,
                                                         gemfa_kv_type type)
{
    if (!opts)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_session_options_set_kv_type: opts is NULL");
    if (!gf_kv_elem(type))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_session_options_set_kv_type: unknown KV type %d (f32 = %d, "
                        "f16 = %d)",
                        (int)type, GEMFA_KV_F32, GEMFA_KV_F16);
    opts->kv_type = type;
    opts->kv_type_set = 1;
    return GEMFA_OK;
}

GEMFA_API const char *gemfa_kv_type_name(gemfa_kv_type type)
{
    switch (type) {
    case GEMFA_KV_F32: return "f32";
    case GEMFA_KV_F16: return "f16";
    }
    return "unknown";
}

GEMFA_API gemfa_status gemfa_kv_type_parse(const char *name, gemfa_kv_type *type)
{
    if (!name || !type)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_kv_type_parse: %s is NULL",
                        !name ? "name" : "type");
    if (!strcmp(name, "f32"))
        *type = GEMFA_KV_F32;
    else if (!strcmp(name, "f16"))
        *type = GEMFA_KV_F16;
    else
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_kv_type_parse: unknown KV type '%s' (f32 or f16)", name);
    return GEMFA_OK;
}

/* ------------------------------------------------------------------------
 * Create, free, fork
 * ---------------------------------------------------------------------- */

void gf_session_destroy(gemfa_session *s)
{
    if (!s)
        return;
    gf_kvcache_free(&s->kv);
    gf_free(s->tokens);
    gf_free_aligned(s->logits);
    gf_free(s);
}

/* The session record with its token and logits buffers (no KV cache yet). */
static gemfa_session *session_alloc(gemfa_context *ctx, int64_t max_context)
{
    gemfa_session *s = gf_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->ctx = ctx;
    s->max_context = max_context;
    s->tokens = gf_malloc(gf_mul_size((size_t)max_context, sizeof(int32_t)));
    s->logits = gf_alloc_aligned(gf_mul_size((size_t)ctx->model->hp.vocab_size, sizeof(float)));
    if (!s->tokens || !s->logits) {
        gf_session_destroy(s);
        return NULL;
    }
    return s;
}

int64_t gf_session_default_ring(const gemfa_context *ctx)
{
    return ctx->model->hp.sliding_window - 1 + ctx->chunk;
}

gemfa_status gf_session_create(gemfa_context *ctx, int64_t max_context, int64_t ring_slots,
                               gemfa_kv_type kv_type, gemfa_session **out)
{
    const int64_t keep = ctx->model->hp.sliding_window - 1; /* committed keys a query still sees */
    gemfa_session *s = session_alloc(ctx, max_context);
    if (!s)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");
    gemfa_status st = gf_kvcache_init(&s->kv, &ctx->model->hp, max_context, ring_slots,
                                      kv_type);
    if (st == GEMFA_OK) {
        s->max_chunk = s->kv.ring_slots < max_context ? s->kv.ring_slots - keep : INT64_MAX;
        st = gf_context_reserve(ctx, max_context, gf_kvcache_window_bytes(&s->kv, keep));
    }
    if (st != GEMFA_OK) {
        gf_session_destroy(s);
        return st;
    }
    *out = s;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_session_new(gemfa_context *ctx, const gemfa_session_options *opts,
                                         gemfa_session **out)
{
    if (!ctx || !out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_session_new: %s is NULL",
                        !ctx ? "ctx" : "out");
    const gf_hparams *hp = &ctx->model->hp;
    int64_t max_context = opts ? opts->max_context : 0;
    if (max_context == 0)
        max_context = hp->max_position_embeddings;
    if (max_context > hp->max_position_embeddings)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_session_new: max context %lld is above the model's "
                        "max_position_embeddings %lld",
                        (long long)max_context, (long long)hp->max_position_embeddings);
    gemfa_status st = gf_session_create(ctx, max_context, gf_session_default_ring(ctx),
                                        opts ? opts->kv_type : GEMFA_KV_F32, out);
    return st == GEMFA_OK ? st : gf_error_prefix(st, "gemfa_session_new");
}

GEMFA_API void gemfa_session_free(gemfa_session *session) { gf_session_destroy(session); }

GEMFA_API gemfa_status gemfa_session_fork(const gemfa_session *session, gemfa_session **out)
{
    if (!session || !out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_session_fork: %s is NULL",
                        !session ? "session" : "out");
    gemfa_session *s = session_alloc(session->ctx, session->max_context);
    if (!s)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_session_fork: out of memory");
    gemfa_status st = gf_kvcache_clone(&s->kv, &session->kv, session->n_tokens);
    if (st != GEMFA_OK) {
        gf_session_destroy(s);
        return gf_error_prefix(st, "gemfa_session_fork");
    }
    s->n_tokens = session->n_tokens;
    s->max_chunk = session->max_chunk;
    s->ring_lo = session->ring_lo;
    s->has_logits = session->has_logits;
    memcpy(s->tokens, session->tokens, (size_t)session->n_tokens * sizeof(int32_t));
    if (session->has_logits)
        memcpy(s->logits, session->logits,
               (size_t)session->ctx->model->hp.vocab_size * sizeof(float));
    *out = s;
    return GEMFA_OK;
}

/* ------------------------------------------------------------------------
 * Queries
 * ---------------------------------------------------------------------- */

GEMFA_API void gemfa_session_reset(gemfa_session *session)
{
    if (!session)
        return;
    session->n_tokens = 0; /* old cache entries are simply overwritten later */
    session->has_logits = 0;
    session->ring_lo = 0;
}

GEMFA_API size_t gemfa_session_n_tokens(const gemfa_session *session)
{
    return session ? (size_t)session->n_tokens : 0;
}

GEMFA_API size_t gemfa_session_max_context(const gemfa_session *session)
{
    return session ? (size_t)session->max_context : 0;
}

GEMFA_API gemfa_status gemfa_session_tokens(const gemfa_session *session, const int32_t **ids,
                                            size_t *n)
{
    if (!session || !ids || !n)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_session_tokens: %s is NULL",
                        !session ? "session" : (!ids ? "ids" : "n"));
    *ids = session->tokens;
    *n = (size_t)session->n_tokens;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_session_logits(const gemfa_session *session, const float **logits,
                                            size_t *n_vocab)
{
    if (!session || !logits || !n_vocab)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_session_logits: %s is NULL",
                        !session ? "session" : (!logits ? "logits" : "n_vocab"));
    *logits = session->has_logits ? session->logits : NULL;
    *n_vocab = (size_t)session->ctx->model->hp.vocab_size;
    return GEMFA_OK;
}

GEMFA_API size_t gemfa_session_memory_bytes(const gemfa_session *session)
{
    if (!session)
        return 0;
    return sizeof *session + (size_t)session->max_context * sizeof(int32_t) +
           (size_t)session->ctx->model->hp.vocab_size * sizeof(float) +
           gf_kvcache_bytes(&session->kv);
}

GEMFA_API gemfa_kv_type gemfa_session_kv_type(const gemfa_session *session)
{
    return session ? session->kv.type : GEMFA_KV_F32;
}

GEMFA_API size_t gemfa_session_kv_bytes(const gemfa_session *session)
{
    return session ? session->kv.data_bytes : 0;
}

/* ------------------------------------------------------------------------
 * Decode
 * ---------------------------------------------------------------------- */

static gemfa_status check_room(const gemfa_session *s, size_t n, const char *fn)
{
    if (n > (size_t)(s->max_context - s->n_tokens))
        return gf_error(GEMFA_ERR_CONTEXT_FULL,
                        "%s: %zu tokens at position %lld would pass the session's maximum "
                        "context of %lld tokens",
                        fn, n, (long long)s->n_tokens, (long long)s->max_context);
    return GEMFA_OK;
}

static gemfa_status check_ids(const gemfa_model *m, const int32_t *ids, size_t n, const char *fn)
{
    for (size_t i = 0; i < n; i++) {
        gemfa_status st = gf_check_token(m, ids[i]);
        if (st != GEMFA_OK)
            return gf_error_prefix(st, "%s: ids[%zu]", fn, i);
    }
    return GEMFA_OK;
}

/* Positions below `lo` may have been overwritten in the sliding rings. */
static void ring_advance(gemfa_session *s, int64_t lo)
{
    if (lo > s->ring_lo && s->kv.ring_slots < s->max_context)
        s->ring_lo = lo;
}

int gf_session_rollback_cheap(const gemfa_session *s, int64_t n)
{
    const int64_t keep = s->ctx->model->hp.sliding_window - 1;
    if (n == 0 || s->kv.ring_slots >= s->max_context)
        return 1; /* nothing needed, or no layer is a ring */
    return (n > keep ? n - keep : 0) >= s->ring_lo;
}

/* Runs ids[0..n) (validated, room checked) in chunks, then commits.
 * all_logits: every position's logits go there; NULL: only the last. */
static gemfa_status decode_rows(gemfa_session *s, const int32_t *ids, int64_t n,
                                float *all_logits)
{
    gemfa_context *ctx = s->ctx;
    const int64_t V = ctx->model->hp.vocab_size, keep = ctx->model->hp.sliding_window - 1;
    const int64_t chunk = ctx->chunk < s->max_chunk ? ctx->chunk : s->max_chunk;
    const int backup = n > chunk && gf_kvcache_window_bytes(&s->kv, keep) > 0;
    if (backup)
        gf_kvcache_save_window(&s->kv, s->n_tokens, keep, ctx->kv_backup);
    for (int64_t off = 0; off < n; off += chunk) {
        const int64_t rows = n - off < chunk ? n - off : chunk;
        for (int64_t t = 0; t < rows; t++) {
            ctx->row_pos[t] = s->n_tokens + off + t;
            ctx->row_kv[t] = &s->kv;
        }
        gf_batch b = {.n = rows, .ids = ids + off, .pos = ctx->row_pos, .kv = ctx->row_kv,
                      .logits = NULL, .logits_from = rows};
        if (all_logits) {
            b.logits = all_logits + off * V;
            b.logits_from = 0;
        } else if (off + rows == n) {
            b.logits = ctx->logits_tmp;
            b.logits_from = rows - 1;
        }
        gemfa_status st = gf_forward(ctx, &b);
        if (st != GEMFA_OK) {
            if (backup)
                gf_kvcache_restore_window(&s->kv, s->n_tokens, keep, ctx->kv_backup);
            /* the rows overwrote ring slots older than the committed window */
            ring_advance(s, s->n_tokens - keep);
            return st;
        }
    }
    memcpy(s->tokens + s->n_tokens, ids, (size_t)n * sizeof(int32_t));
    memcpy(s->logits, all_logits ? all_logits + (n - 1) * V : ctx->logits_tmp,
           (size_t)V * sizeof(float));
    s->has_logits = 1;
    s->n_tokens += n;
    ring_advance(s, s->n_tokens - s->kv.ring_slots);
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_decode(gemfa_session *session, const int32_t *ids, size_t n,
                                    const float **logits)
{
    if (!session || !ids || n == 0)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_decode: %s",
                        !session ? "session is NULL" : (!ids ? "ids is NULL" : "n is 0"));
    gemfa_status st = check_room(session, n, "gemfa_decode");
    if (st == GEMFA_OK)
        st = check_ids(session->ctx->model, ids, n, "gemfa_decode");
    if (st == GEMFA_OK)
        st = decode_rows(session, ids, (int64_t)n, NULL);
    if (st == GEMFA_OK && logits)
        *logits = session->logits;
    return st;
}

GEMFA_API gemfa_status gemfa_decode_all(gemfa_session *session, const int32_t *ids, size_t n,
                                        float *all_logits, size_t cap)
{
    if (!session || !ids || n == 0)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_decode_all: %s",
                        !session ? "session is NULL" : (!ids ? "ids is NULL" : "n is 0"));
    gemfa_status st = check_room(session, n, "gemfa_decode_all");
    if (st != GEMFA_OK)
        return st;
    const size_t V = (size_t)session->ctx->model->hp.vocab_size;
    if (cap / V < n) /* n <= max_context here, so n·V does not overflow */
        return gf_error(GEMFA_ERR_BUFFER_TOO_SMALL,
                        "gemfa_decode_all: the buffer holds %zu floats, %zu tokens × %zu logits "
                        "need %zu",
                        cap, n, V, n * V);
    if (!all_logits)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_decode_all: all_logits is NULL");
    st = check_ids(session->ctx->model, ids, n, "gemfa_decode_all");
    if (st == GEMFA_OK)
        st = decode_rows(session, ids, (int64_t)n, all_logits);
    return st;
}

/* One token per session, run as rows of shared forward passes; commits only
 * when every row has run. */
GEMFA_API gemfa_status gemfa_decode_batch(gemfa_context *ctx, gemfa_session *const *sessions,
                                          const int32_t *ids, size_t n)
{
    if (!ctx || !sessions || !ids || n == 0)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_decode_batch: %s",
                        !ctx ? "ctx is NULL"
                             : (!sessions ? "sessions is NULL" : (!ids ? "ids is NULL" : "n is 0")));
    for (size_t i = 0; i < n; i++) {
        const gemfa_session *s = sessions[i];
        if (!s || s->ctx != ctx)
            return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_decode_batch: sessions[%zu] %s", i,
                            !s ? "is NULL" : "belongs to another context");
        for (size_t j = 0; j < i; j++)
            if (sessions[j] == s)
                return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                                "gemfa_decode_batch: sessions[%zu] repeats sessions[%zu]", i, j);
        gemfa_status st = check_room(s, 1, "gemfa_decode_batch");
        if (st == GEMFA_OK)
            st = check_ids(ctx->model, ids + i, 1, "gemfa_decode_batch");
        if (st != GEMFA_OK)
            return gf_error_prefix(st, "sessions[%zu]", i);
    }
    const size_t V = (size_t)ctx->model->hp.vocab_size;
    float *logits = gf_alloc_aligned(gf_mul_size(gf_mul_size(n, V), sizeof(float)));
    if (!logits)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY,
                        "gemfa_decode_batch: cannot allocate logits for %zu sessions", n);
    for (size_t off = 0; off < n; off += (size_t)ctx->chunk) {
        const int64_t rows = (int64_t)(n - off) < ctx->chunk ? (int64_t)(n - off) : ctx->chunk;
        for (int64_t t = 0; t < rows; t++) {
            ctx->row_pos[t] = sessions[off + (size_t)t]->n_tokens;
            ctx->row_kv[t] = &sessions[off + (size_t)t]->kv;
        }
        gf_batch b = {.n = rows, .ids = ids + off, .pos = ctx->row_pos, .kv = ctx->row_kv,
                      .logits = logits + off * V, .logits_from = 0};
        gemfa_status st = gf_forward(ctx, &b);
        if (st != GEMFA_OK) { /* the rows wrote only uncommitted slots (evicting the oldest) */
            for (size_t i = 0; i < n; i++)
                ring_advance(sessions[i], sessions[i]->n_tokens + 1 - sessions[i]->kv.ring_slots);
            gf_free_aligned(logits);
            return st;
        }
    }
    for (size_t i = 0; i < n; i++) {
        gemfa_session *s = sessions[i];
        s->tokens[s->n_tokens++] = ids[i];
        ring_advance(s, s->n_tokens - s->kv.ring_slots);
        memcpy(s->logits, logits + i * V, V * sizeof(float));
        s->has_logits = 1;
    }
    gf_free_aligned(logits);
    return GEMFA_OK;
}

/* ------------------------------------------------------------------------
 * Rollback
 * ---------------------------------------------------------------------- */

/* Rebuilds positions 0..n−1 from the kept ids in a new cache and swaps it
 * in on success (so a cancelled rebuild leaves the session as it was). */
static gemfa_status redecode_prefix(gemfa_session *s, int64_t n)
{
    gemfa_session *t = NULL;
    gemfa_status st = gf_session_create(s->ctx, s->max_context, s->kv.ring_slots, s->kv.type, &t);
    if (st == GEMFA_OK)
        st = decode_rows(t, s->tokens, n, NULL);
    if (st != GEMFA_OK) {
        gf_session_destroy(t);
        return st;
    }
    gf_kvcache swap = s->kv;
    s->kv = t->kv;
    t->kv = swap;
    s->ring_lo = t->ring_lo;
    gf_session_destroy(t);
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_session_truncate(gemfa_session *session, size_t n)
{
    if (!session)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_session_truncate: session is NULL");
    if (n > (size_t)session->n_tokens)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_session_truncate: %zu is more than the session's %lld tokens", n,
                        (long long)session->n_tokens);
    if (n == (size_t)session->n_tokens)
        return GEMFA_OK;
    if (!gf_session_rollback_cheap(session, (int64_t)n)) {
        gemfa_status st = redecode_prefix(session, (int64_t)n);
        if (st != GEMFA_OK)
            return gf_error_prefix(st, "gemfa_session_truncate: re-decoding %zu tokens", n);
    }
    session->n_tokens = (int64_t)n; /* later slots are overwritten by the next decodes */
    session->has_logits = 0;
    if (n == 0)
        session->ring_lo = 0;
    return GEMFA_OK;
}
