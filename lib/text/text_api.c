/* text_api.c — STUB until the tokenizer lands (issue 3). */
#include "core/stub.h"
#include "gemfa.h"
#include "text/text.h"

gemfa_status gf_text_load(const char *dir, gf_text **out) { (void)dir; *out = NULL; return GEMFA_OK; }
void gf_text_free(gf_text *t) { (void)t; }
int64_t gf_text_n_pieces(const gf_text *t) { (void)t; return 0; }
int32_t gf_text_find(const gf_text *t, const char *p, size_t l) { (void)t; (void)p; (void)l; return -1; }

GEMFA_API gemfa_status gemfa_tokenize(const gemfa_model *m, const char *t, size_t l, unsigned f, int32_t *ids, size_t cap, size_t *n) { (void)m; (void)t; (void)l; (void)f; (void)ids; (void)cap; (void)n; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_detokenize(const gemfa_model *m, const int32_t *ids, size_t n, unsigned f, char *b, size_t cap, size_t *len) { (void)m; (void)ids; (void)n; (void)f; (void)b; (void)cap; (void)len; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_token_piece(const gemfa_model *m, int32_t id, char *b, size_t cap, size_t *len) { (void)m; (void)id; (void)b; (void)cap; (void)len; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_token_id(const gemfa_model *m, const char *p, size_t l, int32_t *id) { (void)m; (void)p; (void)l; (void)id; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_detok_stream_new(const gemfa_model *m, unsigned f, gemfa_detok_stream **out) { (void)m; (void)f; (void)out; return GF_STUB(__func__); }
GEMFA_API void gemfa_detok_stream_free(gemfa_detok_stream *s) { (void)s; }
GEMFA_API void gemfa_detok_stream_reset(gemfa_detok_stream *s) { (void)s; }
GEMFA_API gemfa_status gemfa_detok_stream_feed(gemfa_detok_stream *s, int32_t id, const char **t, size_t *l) { (void)s; (void)id; (void)t; (void)l; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_detok_stream_flush(gemfa_detok_stream *s, const char **t, size_t *l) { (void)s; (void)t; (void)l; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_apply_chat_template(const gemfa_model *m, const gemfa_message *msg, size_t n, int g, char *b, size_t cap, size_t *len) { (void)m; (void)msg; (void)n; (void)g; (void)b; (void)cap; (void)len; return GF_STUB(__func__); }
GEMFA_API gemfa_status gemfa_chat_tokenize(const gemfa_model *m, const gemfa_message *msg, size_t n, int g, unsigned f, int32_t *ids, size_t cap, size_t *ni) { (void)m; (void)msg; (void)n; (void)g; (void)f; (void)ids; (void)cap; (void)ni; return GF_STUB(__func__); }
