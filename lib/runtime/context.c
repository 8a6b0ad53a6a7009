/* context.c — context options, creation (thread pool, scratch), buffers
 * sized by sessions, and the test hooks. */
#include "runtime/context.h"

#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/status.h"
#include "runtime/attention.h"
#include "runtime/gemma3n.h"
#include "runtime/ops.h"

GEMFA_API gemfa_status gemfa_context_options_new(gemfa_context_options **out)
{
    if (!out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_context_options_new: out is NULL");
    gemfa_context_options *o = gf_calloc(1, sizeof *o);
    if (!o)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_context_options_new: out of memory");
    *out = o;
    return GEMFA_OK;
}

GEMFA_API void gemfa_context_options_free(gemfa_context_options *opts) { gf_free(opts); }

GEMFA_API gemfa_status gemfa_context_options_set_threads(gemfa_context_options *opts,
                                                         int n_threads)
{
    if (!opts)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_context_options_set_threads: opts is NULL");
    if (n_threads < 0 || n_threads > 1024)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_context_options_set_threads: %d is outside [0, 1024]", n_threads);
    opts->n_threads = n_threads;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_context_options_set_cancel(gemfa_context_options *opts,
                                                        gemfa_cancel_fn fn, void *user)
{
    if (!opts)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_context_options_set_cancel: opts is NULL");
    opts->cancel = fn;
    opts->cancel_user = user;
    return GEMFA_OK;
}

static int online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 1024 ? 1024 : (int)n);
}

/* The buffers that depend on the chunk size; all or nothing. */
static gemfa_status alloc_chunk_buffers(gemfa_context *ctx, int64_t chunk)
{
    struct gf_scratch *s = gf_scratch_new(ctx->model, chunk);
    int64_t *pos = gf_malloc(gf_mul_size((size_t)chunk, sizeof *pos));
    gf_kvcache **kv = gf_malloc(gf_mul_size((size_t)chunk, sizeof *kv));
    if (!s || !pos || !kv) {
        gf_scratch_free(s);
        gf_free(pos);
        gf_free(kv);
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY,
                        "context: cannot allocate scratch buffers for %lld rows", (long long)chunk);
    }
    gf_scratch_free(ctx->scratch);
    gf_free(ctx->row_pos);
    gf_free(ctx->row_kv);
    ctx->scratch = s;
    ctx->row_pos = pos;
    ctx->row_kv = kv;
    ctx->chunk = chunk;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_context_new(const gemfa_model *model,
                                         const gemfa_context_options *opts, gemfa_context **out)
{
    if (!model || !out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_context_new: %s is NULL",
                        !model ? "model" : "out");
    if (model->vocab_only)
        return gf_error(GEMFA_ERR_NO_WEIGHTS,
                        "gemfa_context_new: the model was loaded vocabulary-only (no weights)");
    const gf_hparams *hp = &model->hp;
    gemfa_context *ctx = gf_calloc(1, sizeof *ctx);
    if (!ctx)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_context_new: out of memory");
    ctx->model = model;
    ctx->n_threads = opts && opts->n_threads > 0 ? opts->n_threads : online_cores();
    if (opts) {
        ctx->cancel = opts->cancel;
        ctx->cancel_user = opts->cancel_user;
    }
    gemfa_status st = GEMFA_OK;
    ctx->pool = gf_threadpool_new(ctx->n_threads);
    ctx->logits_tmp = gf_alloc_aligned(gf_mul_size((size_t)hp->vocab_size, sizeof(float)));
    ctx->sparsity_z = gf_calloc((size_t)hp->n_layers, sizeof(float));
    if (!ctx->pool || !ctx->logits_tmp || !ctx->sparsity_z)
        st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_context_new: out of memory");
    if (st == GEMFA_OK)
        st = alloc_chunk_buffers(ctx, GF_DEFAULT_CHUNK);
    if (st == GEMFA_OK) /* a session needs at least W keys of scores */
        st = gf_context_reserve(ctx, hp->sliding_window, 0);
    if (st != GEMFA_OK) {
        gemfa_context_free(ctx);
        return st;
    }
    for (int l = 0; l < hp->n_layers; l++)
        ctx->sparsity_z[l] = gf_sparsity_z(hp->sparsity[l]);
    *out = ctx;
    return GEMFA_OK;
}

GEMFA_API void gemfa_context_free(gemfa_context *ctx)
{
    if (!ctx)
        return;
    gf_threadpool_free(ctx->pool);
    gf_scratch_free(ctx->scratch);
    gf_free(ctx->row_pos);
    gf_free(ctx->row_kv);
    gf_free_aligned(ctx->scores);
    gf_free_aligned(ctx->kv_backup);
    gf_free_aligned(ctx->logits_tmp);
    gf_free(ctx->sparsity_z);
    gf_free(ctx);
}

gemfa_status gf_context_reserve(gemfa_context *ctx, int64_t max_keys, size_t backup_bytes)
{
    float *scores = NULL;
    void *backup = NULL;
    const gf_hparams *hp = &ctx->model->hp;
    const int64_t per_thread = gf_attend_scores_per_thread(hp, max_keys);
    if (max_keys > ctx->scores_cap &&
        !(scores = gf_alloc_aligned(gf_mul_size(
              gf_mul_size((size_t)per_thread, (size_t)gf_threadpool_size(ctx->pool)) +
                  (size_t)gf_attend_shared_floats(hp, max_keys),
              sizeof(float)))))
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY,
                        "context: cannot allocate attention scores for %lld keys",
                        (long long)max_keys);
    if (backup_bytes > ctx->kv_backup_cap && !(backup = gf_alloc_aligned(backup_bytes))) {
        gf_free_aligned(scores);
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY,
                        "context: cannot allocate %zu bytes for the KV window backup",
                        backup_bytes);
    }
    if (scores) {
        gf_free_aligned(ctx->scores);
        ctx->scores = scores;
        ctx->scores_cap = max_keys;
        ctx->scores_per_thread = per_thread;
    }
    if (backup) {
        gf_free_aligned(ctx->kv_backup);
        ctx->kv_backup = backup;
        ctx->kv_backup_cap = backup_bytes;
    }
    return GEMFA_OK;
}

gemfa_status gf_context_set_chunk(gemfa_context *ctx, int64_t chunk)
{
    if (!ctx || chunk < 1 || chunk > (1 << 20))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gf_context_set_chunk: bad chunk %lld",
                        (long long)chunk);
    return alloc_chunk_buffers(ctx, chunk);
}

void gf_context_set_dump(gemfa_context *ctx, gf_dump_fn fn, void *user)
{
    ctx->dump = fn;
    ctx->dump_user = user;
}

void gf_context_set_profile(gemfa_context *ctx, gf_profile *p) { ctx->profile = p; }
