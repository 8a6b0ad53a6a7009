/* sampler.c — STUB until the sampler lands (issue 5). */
#include "core/stub.h"
#include "gemfa.h"

GEMFA_API gemfa_status gemfa_sampler_new(const gemfa_model *m, gemfa_sampler **out) { (void)m; (void)out; return GF_STUB(__func__); }
GEMFA_API void gemfa_sampler_free(gemfa_sampler *s) { (void)s; }
GEMFA_API gemfa_status gemfa_sampler_set_temperature(gemfa_sampler *s, float t) { (void)s; (void)t; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_sampler_set_top_k(gemfa_sampler *s, int32_t k) { (void)s; (void)k; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_sampler_set_top_p(gemfa_sampler *s, float p) { (void)s; (void)p; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_sampler_set_min_p(gemfa_sampler *s, float p) { (void)s; (void)p; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_sampler_set_penalties(gemfa_sampler *s, float r, float f, float p, int32_t n) { (void)s; (void)r; (void)f; (void)p; (void)n; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_sampler_set_logit_bias(gemfa_sampler *s, int32_t id, float b) { (void)s; (void)id; (void)b; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_sampler_clear_logit_bias(gemfa_sampler *s) { (void)s; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_sampler_set_seed(gemfa_sampler *s, uint64_t seed) { (void)s; (void)seed; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_sample(gemfa_sampler *s, const float *l, size_t n, const int32_t *h, size_t nh, int32_t *id) { (void)s; (void)l; (void)n; (void)h; (void)nh; (void)id; return GF_STUB(__func__); }
