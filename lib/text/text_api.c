/* text_api.c — the public tokenizer and chat-template calls: argument
 * checks, the size-query buffer protocol, and the model -> tokenizer link.
 * The work is done in encode.c, detokenize.c and chat_template.c. */
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"
#include "loader/model.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

gemfa_status gf_model_text(const gemfa_model *m, const gf_text **t)
{
    if (!m)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "model is NULL");
    if (!m->text)
        return gf_error(GEMFA_ERR_NO_TOKENIZER, "the model was loaded without a tokenizer "
                        "(no tokenizer.json in %s)", m->path ? m->path : "its directory");
    *t = m->text;
    return GEMFA_OK;
}

int64_t gf_model_id_limit(const gemfa_model *m)
{
    int64_t n = m->text ? m->text->n_ids : 0;
    return m->hp.vocab_size > n ? m->hp.vocab_size : n;
}

/* Resolves GEMFA_NUL_TERMINATED and rejects NULL text with a length. */
static gemfa_status text_arg(const char *fn, const char *name, const char *s, size_t *len)
{
    if (!s) {
        if (*len == 0)
            return GEMFA_OK;
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, name);
    }
    if (*len == GEMFA_NUL_TERMINATED)
        *len = strlen(s);
    return GEMFA_OK;
}

static gemfa_status copy_ids(const char *fn, const gf_ids *v, int32_t *ids, size_t cap,
                             size_t *n_ids)
{
    if (v->len > cap) {
        *n_ids = v->len;
        return gf_error(GEMFA_ERR_BUFFER_TOO_SMALL, "%s: %zu ids do not fit in %zu", fn, v->len,
                        cap);
    }
    if (v->len)
        memcpy(ids, v->data, v->len * sizeof *ids);
    *n_ids = v->len;
    return GEMFA_OK;
}

static gemfa_status copy_text(const char *fn, const gf_bytes *b, char *buf, size_t cap,
                              size_t *len)
{
    if (b->len >= cap) {
        *len = b->len;
        return gf_error(GEMFA_ERR_BUFFER_TOO_SMALL, "%s: %zu bytes and a NUL do not fit in %zu",
                        fn, b->len, cap);
    }
    if (b->len)
        memcpy(buf, b->data, b->len);
    buf[b->len] = '\0';
    *len = b->len;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_tokenize(const gemfa_model *model, const char *text, size_t len,
                                      unsigned flags, int32_t *ids, size_t cap, size_t *n_ids)
{
    static const char fn[] = "gemfa_tokenize";
    const gf_text *t = NULL;
    gemfa_status st = gf_model_text(model, &t);
    if (st != GEMFA_OK)
        return st;
    if (!n_ids || (!ids && cap))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !n_ids ? "n_ids" : "ids (with cap > 0)");
    if (flags & ~(unsigned)GEMFA_TOKENIZE_DEFAULT)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: unknown flags 0x%x", fn,
                        flags & ~(unsigned)GEMFA_TOKENIZE_DEFAULT);
    if ((st = text_arg(fn, "text", text, &len)) != GEMFA_OK)
        return st;
    size_t bad;
    if (len && !gf_utf8_valid(text, len, &bad))
        return gf_error(GEMFA_ERR_INVALID_UTF8, "%s: text is not valid UTF-8 at byte %zu", fn,
                        bad);
    gf_ids v = {0};
    st = gf_text_encode(t, text ? text : "", len, flags, &v);
    if (st == GEMFA_OK)
        st = copy_ids(fn, &v, ids, cap, n_ids);
    gf_ids_free(&v);
    return st;
}

static gemfa_status check_ids(const char *fn, const gemfa_model *model, const int32_t *ids,
                              size_t n)
{
    int64_t limit = gf_model_id_limit(model);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= limit)
            return gf_error(GEMFA_ERR_INVALID_TOKEN, "%s: id %d at position %zu is outside the "
                            "vocabulary [0, %lld)", fn, ids[i], i, (long long)limit);
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_detokenize(const gemfa_model *model, const int32_t *ids, size_t n,
                                        unsigned flags, char *buf, size_t cap, size_t *len)
{
    static const char fn[] = "gemfa_detokenize";
    const gf_text *t = NULL;
    gemfa_status st = gf_model_text(model, &t);
    if (st != GEMFA_OK)
        return st;
    if (!len || (!ids && n) || (!buf && cap))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !len ? "len" : !buf && cap ? "buf (with cap > 0)" : "ids (with n > 0)");
    if (flags & ~GEMFA_DETOKENIZE_SKIP_SPECIAL)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: unknown flags 0x%x", fn,
                        flags & ~GEMFA_DETOKENIZE_SKIP_SPECIAL);
    if ((st = check_ids(fn, model, ids, n)) != GEMFA_OK)
        return st;
    gf_bytes b = {0};
    st = gf_text_decode(t, ids, n, flags, &b);
    if (st == GEMFA_OK)
        st = copy_text(fn, &b, buf, cap, len);
    gf_bytes_free(&b);
    return st;
}

GEMFA_API gemfa_status gemfa_token_piece(const gemfa_model *model, int32_t id, char *buf,
                                         size_t cap, size_t *len)
{
    static const char fn[] = "gemfa_token_piece";
    const gf_text *t = NULL;
    gemfa_status st = gf_model_text(model, &t);
    if (st != GEMFA_OK)
        return st;
    if (!len || (!buf && cap))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !len ? "len" : "buf (with cap > 0)");
    if ((st = check_ids(fn, model, &id, 1)) != GEMFA_OK)
        return st;
    gf_bytes piece = {0};
    if (id < t->n_ids && t->piece[id].len != GF_NO_PIECE) {
        piece.data = t->arena + t->piece[id].off; /* borrowed: not freed */
        piece.len = t->piece[id].len;
    }
    return copy_text(fn, &piece, buf, cap, len);
}

GEMFA_API gemfa_status gemfa_token_id(const gemfa_model *model, const char *piece, size_t len,
                                      int32_t *id)
{
    static const char fn[] = "gemfa_token_id";
    const gf_text *t = NULL;
    gemfa_status st = gf_model_text(model, &t);
    if (st != GEMFA_OK)
        return st;
    if (!id)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: id is NULL", fn);
    if ((st = text_arg(fn, "piece", piece, &len)) != GEMFA_OK)
        return st;
    *id = gf_text_find(t, piece ? piece : "", len);
    return GEMFA_OK;
}

/* ---- chat ---- */

static gemfa_status render(const char *fn, const gemfa_model *model,
                           const gemfa_message *messages, size_t n, int add_gen,
                           const gf_text **t, gf_chat_render_out *out)
{
    gemfa_status st = gf_model_text(model, t);
    if (st != GEMFA_OK)
        return st;
    if (!messages && n)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: messages is NULL", fn);
    if (n > SIZE_MAX / sizeof(gf_chat_message))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: %zu messages is too many", fn, n);
    gf_chat_message *msgs = n ? gf_calloc(n, sizeof *msgs) : NULL;
    if (n && !msgs)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    for (size_t i = 0; i < n && st == GEMFA_OK; i++) {
        size_t len = messages[i].content_len;
        if (messages[i].content && len == GEMFA_NUL_TERMINATED)
            len = strlen(messages[i].content);
        else if (!messages[i].content && len)
            st = gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: messages[%zu].content is NULL", fn, i);
        msgs[i] = (gf_chat_message){.role = messages[i].role, .content = messages[i].content,
                                    .content_len = len};
    }
    if (st == GEMFA_OK)
        st = gf_chat_render(*t, msgs, n, add_gen, out);
    gf_free(msgs);
    return st;
}

GEMFA_API gemfa_status gemfa_apply_chat_template(const gemfa_model *model,
                                                 const gemfa_message *messages, size_t n_messages,
                                                 int add_generation_prompt, char *buf, size_t cap,
                                                 size_t *len)
{
    static const char fn[] = "gemfa_apply_chat_template";
    if (!len || (!buf && cap))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !len ? "len" : "buf (with cap > 0)");
    const gf_text *t = NULL;
    gf_chat_render_out r = {0};
    gemfa_status st = render(fn, model, messages, n_messages, add_generation_prompt, &t, &r);
    if (st == GEMFA_OK)
        st = copy_text(fn, &r.text, buf, cap, len);
    gf_chat_render_out_free(&r);
    return st;
}

GEMFA_API gemfa_status gemfa_chat_tokenize(const gemfa_model *model,
                                           const gemfa_message *messages, size_t n_messages,
                                           int add_generation_prompt, unsigned flags,
                                           int32_t *ids, size_t cap, size_t *n_ids)
{
    static const char fn[] = "gemfa_chat_tokenize";
    if (!n_ids || (!ids && cap))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !n_ids ? "n_ids" : "ids (with cap > 0)");
    if (flags & ~GEMFA_CHAT_INJECTION_SAFE)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: unknown flags 0x%x", fn,
                        flags & ~GEMFA_CHAT_INJECTION_SAFE);
    const gf_text *t = NULL;
    gf_chat_render_out r = {0};
    gemfa_status st = render(fn, model, messages, n_messages, add_generation_prompt, &t, &r);
    gf_ids v = {0};
    if (st == GEMFA_OK)
        st = gf_chat_encode(t, &r, flags, &v);
    if (st == GEMFA_OK)
        st = copy_ids(fn, &v, ids, cap, n_ids);
    gf_ids_free(&v);
    gf_chat_render_out_free(&r);
    return st;
}
