/* session.c — STUB until the forward pass lands (issue 4). */
#include "core/stub.h"
#include "gemfa.h"

GEMFA_API gemfa_status gemfa_context_options_new(gemfa_context_options **out) { (void)out; return GF_STUB(__func__); }
GEMFA_API void gemfa_context_options_free(gemfa_context_options *o) { (void)o; }
GEMFA_API gemfa_status gemfa_context_options_set_threads(gemfa_context_options *o, int n) { (void)o; (void)n; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_context_options_set_cancel(gemfa_context_options *o, gemfa_cancel_fn fn, void *u) { (void)o; (void)fn; (void)u; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_context_new(const gemfa_model *m, const gemfa_context_options *o, gemfa_context **out) { (void)m; (void)o; (void)out; return GF_STUB(__func__); }
GEMFA_API void gemfa_context_free(gemfa_context *c) { (void)c; }
GEMFA_API gemfa_status gemfa_session_options_new(gemfa_session_options **out) { (void)out; return GF_STUB(__func__); }
GEMFA_API void gemfa_session_options_free(gemfa_session_options *o) { (void)o; }
GEMFA_API gemfa_status gemfa_session_options_set_max_context(gemfa_session_options *o, int64_t n) { (void)o; (void)n; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_session_new(gemfa_context *c, const gemfa_session_options *o, gemfa_session **out) { (void)c; (void)o; (void)out; return GF_STUB(__func__); }
GEMFA_API void gemfa_session_free(gemfa_session *s) { (void)s; }
GEMFA_API gemfa_status gemfa_decode(gemfa_session *s, const int32_t *ids, size_t n, const float **l) { (void)s; (void)ids; (void)n; (void)l; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_decode_all(gemfa_session *s, const int32_t *ids, size_t n, float *a, size_t cap) { (void)s; (void)ids; (void)n; (void)a; (void)cap; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_decode_batch(gemfa_context *c, gemfa_session *const *s, const int32_t *ids, size_t n) { (void)c; (void)s; (void)ids; (void)n; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_session_logits(const gemfa_session *s, const float **l, size_t *n) { (void)s; (void)l; (void)n; return GF_STUB(__func__); }
GEMFA_API void gemfa_session_reset(gemfa_session *s) { (void)s; }
GEMFA_API size_t gemfa_session_n_tokens(const gemfa_session *s) { (void)s; return 0; }
GEMFA_API size_t gemfa_session_max_context(const gemfa_session *s) { (void)s; return 0; }
GEMFA_API gemfa_status gemfa_session_tokens(const gemfa_session *s, const int32_t **ids, size_t *n) { (void)s; (void)ids; (void)n; return GF_STUB(__func__); }
GEMFA_API size_t gemfa_session_memory_bytes(const gemfa_session *s) { (void)s; return 0; }
GEMFA_API gemfa_status gemfa_session_fork(const gemfa_session *s, gemfa_session **out) { (void)s; (void)out; return GF_STUB(__func__); }
