/* token_bytes.c — gemfa_token_bytes: the bytes one token adds to generated
 * text (for log-probabilities in OpenAI's shape, whose entries carry each
 * token's bytes), read the way the streaming detokenizer reads them. */
#include <string.h>

#include "core/status.h"
#include "loader/model.h"
#include "text/text_buf.h"
#include "text/tokenizer.h"

GEMFA_API gemfa_status gemfa_token_bytes(const gemfa_model *model, int32_t id, char *buf,
                                         size_t cap, size_t *len)
{
    static const char fn[] = "gemfa_token_bytes";
    const gf_text *t = NULL;
    gemfa_status st = gf_model_text(model, &t);
    if (st != GEMFA_OK)
        return st;
    if (!len || (!buf && cap))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !len ? "len" : "buf (with cap > 0)");
    int64_t limit = gf_model_id_limit(model);
    if (id < 0 || id >= limit)
        return gf_error(GEMFA_ERR_INVALID_TOKEN, "%s: id %d is outside the vocabulary [0, %lld)",
                        fn, id, (long long)limit);
    gf_bytes b = {0};
    unsigned char byte;
    if (!gf_text_id_shown(t, id, 0)) {
        /* no piece: nothing */
    } else if (t->pipe.dec_byte_fallback && t->byte_of[id] >= 0) {
        byte = (unsigned char)t->byte_of[id];
        b.data = (char *)&byte; /* borrowed */
        b.len = 1;
    } else if (gf_text_append_replaced(t, id, &b) != 0) {
        gf_bytes_free(&b);
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    if (b.len >= cap) {
        *len = b.len;
        if (b.data != (char *)&byte)
            gf_bytes_free(&b);
        return gf_error(GEMFA_ERR_BUFFER_TOO_SMALL, "%s: %zu bytes and a NUL do not fit in %zu",
                        fn, b.len, cap);
    }
    if (b.len)
        memcpy(buf, b.data, b.len);
    buf[b.len] = '\0';
    *len = b.len;
    if (b.data != (char *)&byte)
        gf_bytes_free(&b);
    return GEMFA_OK;
}
