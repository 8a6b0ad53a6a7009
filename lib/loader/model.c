/* model.c — STUB until the loader lands (issue 2). */
#include "core/stub.h"
#include "gemfa.h"

GEMFA_API gemfa_status gemfa_model_options_new(gemfa_model_options **out) { (void)out; return GF_STUB(__func__); }
GEMFA_API void gemfa_model_options_free(gemfa_model_options *opts) { (void)opts; }
GEMFA_API gemfa_status gemfa_model_options_set_weights(gemfa_model_options *o, gemfa_weight_type t) { (void)o; (void)t; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_model_options_set_vocab_only(gemfa_model_options *o, int on) { (void)o; (void)on; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_model_options_set_progress(gemfa_model_options *o, gemfa_progress_fn fn, void *u) { (void)o; (void)fn; (void)u; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_model_options_set_threads(gemfa_model_options *o, int n) { (void)o; (void)n; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_model_load(const char *p, const gemfa_model_options *o, gemfa_model **out) { (void)p; (void)o; (void)out; return GF_STUB(__func__); }
GEMFA_API void gemfa_model_free(gemfa_model *m) { (void)m; }
GEMFA_API gemfa_status gemfa_model_get(const gemfa_model *m, gemfa_model_prop p, int64_t *v) { (void)m; (void)p; (void)v; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_model_layer(const gemfa_model *m, int l, gemfa_layer_type *t, int *k, int64_t *f, float *s) { (void)m; (void)l; (void)t; (void)k; (void)f; (void)s; return GF_STUB(__func__); }
GEMFA_API int gemfa_model_is_eog(const gemfa_model *m, int32_t id) { (void)m; (void)id; return 0; }
GEMFA_API gemfa_status gemfa_model_eog_ids(const gemfa_model *m, int32_t *ids, size_t cap, size_t *n) { (void)m; (void)ids; (void)cap; (void)n; return GF_STUB(__func__); }
