/* context.h — struct gemfa_context: what a forward pass needs besides the
 * model and the session: the thread pool, scratch buffers for up to `chunk`
 * rows, the cancel callback, and test hooks. */
#ifndef GF_RUNTIME_CONTEXT_H
#define GF_RUNTIME_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "gemfa.h"
#include "kernels/threadpool.h"
#include "loader/model.h"
#include "runtime/kvcache.h"

/* Rows per forward pass when the context is created: prompts longer than
 * this run in chunks (bounds scratch memory; sliding rings hold W − 1 +
 * chunk slots). */
#define GF_DEFAULT_CHUNK 256

struct gf_scratch; /* gemma3n.c */

/* Test hook: receives the intermediate tensors of the forward pass.
 * `data` holds n_streams blocks (stream s at data + s·stream_stride) of
 * n_rows × width floats.  `layer` is −1 for tensors outside the layers.
 * Names follow the golden dumps: "inputs_embeds", "per_layer_inputs",
 * "streams_init", "predictions", "attn_out", "laurel_out", "attn_laurel",
 * "ffn_out", "ple_injection", "streams_out", "final_hidden", "logits_raw". */
typedef void (*gf_dump_fn)(void *user, const char *name, int layer, const float *data,
                           int n_streams, int64_t stream_stride, int64_t n_rows, int64_t width);

/* Where forward passes spend their time (benchmark hook, gf_context_set_profile):
 * seconds and calls per part, accumulated over passes. */
typedef enum gf_prof_part {
    GF_PROF_EMBED,     /* embedding and per-layer-table rows gathered */
    GF_PROF_MATMUL,    /* gf_linear / gf_linear_multi, LM head excluded */
    GF_PROF_ATTENTION, /* K/V stores and attention over the caches */
    GF_PROF_ROWS,      /* norms, RoPE, AltUp mixing, GELU, sparsity: the row passes */
    GF_PROF_LM_HEAD,   /* the LM head product and the softcapping */
    GF_PROF_COUNT
} gf_prof_part;

typedef struct gf_profile {
    double seconds[GF_PROF_COUNT];
    int64_t calls[GF_PROF_COUNT];
    int64_t dispatches; /* thread-pool runs issued (matrix products estimated, see gemma3n.c) */
    int64_t passes, rows;
    double total;       /* wall time of the passes */
} gf_profile;

struct gemfa_context_options {
    int n_threads; /* 0 = all cores */
    gemfa_cancel_fn cancel;
    void *cancel_user;
};

struct gemfa_context {
    const gemfa_model *model;
    gf_threadpool *pool;
    int n_threads;
    gemfa_cancel_fn cancel;
    void *cancel_user;

    int64_t chunk;              /* rows the scratch holds */
    struct gf_scratch *scratch; /* forward-pass buffers for `chunk` rows */
    int64_t *row_pos;           /* [chunk] positions of a batch being built */
    gf_kvcache **row_kv;        /* [chunk] caches of a batch being built */
    float *scores;              /* attention scratch: per thread scores_per_thread floats, then
                                   gf_attend_shared_floats(scores_cap) */
    int64_t scores_cap;         /* keys the scores hold per query head */
    int64_t scores_per_thread;
    void *kv_backup;            /* ring window saved during multi-chunk decodes */
    size_t kv_backup_cap;       /* bytes */
    float *logits_tmp;          /* [vocab]: last logits before they are committed */
    float *sparsity_z;          /* [n_layers] z of the gaussian top-k, 0 = dense */
    uint64_t fingerprint;       /* gf_model_fingerprint of the model, once has_fingerprint */
    int has_fingerprint;        /* computed by the first state save or load */

    gf_dump_fn dump;            /* test hook, NULL normally */
    void *dump_user;
    gf_profile *profile;        /* benchmark hook, NULL normally */
};

/* Grows the buffers whose size depends on a session: attention scores for
 * `max_keys` keys and a ring-window backup of `backup_bytes`.
 * Errors: OUT_OF_MEMORY (the context keeps its old buffers). */
gemfa_status gf_context_reserve(gemfa_context *ctx, int64_t max_keys, size_t backup_bytes);

/* Test hooks.  gf_context_set_chunk changes the rows per forward pass
 * (reallocating the scratch); sessions created afterwards size their rings
 * for it, older sessions keep chunks within their own ring.
 * Errors: INVALID_ARGUMENT, OUT_OF_MEMORY (context unchanged). */
gemfa_status gf_context_set_chunk(gemfa_context *ctx, int64_t chunk);
void gf_context_set_dump(gemfa_context *ctx, gf_dump_fn fn, void *user);
/* Accumulates the time of every later forward pass into *p (NULL: stop). */
void gf_context_set_profile(gemfa_context *ctx, gf_profile *p);

/* Nonzero when the cancel callback asks to stop. */
static inline int gf_context_cancelled(const gemfa_context *ctx)
{
    return ctx->cancel && ctx->cancel(ctx->cancel_user);
}

#endif
