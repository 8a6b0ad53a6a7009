/* detok_stream.c — the streaming detokenizer: one id in, only complete
 * UTF-8 out.  Byte tokens are fed through a small UTF-8 state machine that
 * holds back the start of a character until it completes.  A held-back
 * sequence that proves invalid (a byte that cannot continue it, or a
 * non-byte token arriving) comes out as one U+FFFD per held byte; a byte
 * that can never start a character is one U+FFFD at once.
 *
 * For byte runs that are valid UTF-8 (all the tokenizer itself produces) the
 * chunks concatenate to exactly what gemfa_detokenize returns.  For an
 * invalid run the batch decoder replaces the WHOLE run by U+FFFD per byte,
 * which a stream cannot do once it has shown the valid start of the run;
 * here only the invalid bytes become U+FFFD. */
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"
#include "loader/model.h"
#include "text/tokenizer.h"

struct gemfa_detok_stream {
    const gemfa_model *model;
    const gf_text *t;
    unsigned flags;
    unsigned char held[4];
    size_t n_held;
    gf_bytes out;
};

GEMFA_API gemfa_status gemfa_detok_stream_new(const gemfa_model *model, unsigned flags,
                                              gemfa_detok_stream **out)
{
    const gf_text *t = NULL;
    gemfa_status st = gf_model_text(model, &t);
    if (st != GEMFA_OK)
        return st;
    if (!out)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_detok_stream_new: out is NULL");
    if (flags & ~GEMFA_DETOKENIZE_SKIP_SPECIAL)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_detok_stream_new: unknown flags 0x%x",
                        flags & ~GEMFA_DETOKENIZE_SKIP_SPECIAL);
    gemfa_detok_stream *s = gf_calloc(1, sizeof *s);
    if (!s)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_detok_stream_new: out of memory");
    s->model = model;
    s->t = t;
    s->flags = flags;
    *out = s;
    return GEMFA_OK;
}

GEMFA_API void gemfa_detok_stream_free(gemfa_detok_stream *s)
{
    if (!s)
        return;
    gf_bytes_free(&s->out);
    gf_free(s);
}

GEMFA_API void gemfa_detok_stream_reset(gemfa_detok_stream *s)
{
    if (!s)
        return;
    s->n_held = 0;
    s->out.len = 0;
}

static int emit_replacements(gf_bytes *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (gf_bytes_append(out, "\xEF\xBF\xBD", 3) != 0)
            return -1;
    return 0;
}

/* Allowed range of the byte after `lead` (RFC 3629 table). */
static void second_byte_range(unsigned char lead, unsigned char *lo, unsigned char *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (lead == 0xE0)
        *lo = 0xA0;
    else if (lead == 0xED)
        *hi = 0x9F;
    else if (lead == 0xF0)
        *lo = 0x90;
    else if (lead == 0xF4)
        *hi = 0x8F;
}

/* Feeds one byte into the held sequence; appends whatever completes. */
static int feed_byte(gemfa_detok_stream *s, unsigned char b)
{
    if (s->n_held) {
        unsigned char lead = s->held[0], lo = 0x80, hi = 0xBF;
        if (s->n_held == 1)
            second_byte_range(lead, &lo, &hi);
        if (b >= lo && b <= hi) {
            s->held[s->n_held++] = b;
            size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            if (s->n_held == need) {
                s->n_held = 0;
                return gf_bytes_append(&s->out, s->held, need);
            }
            return 0;
        }
        if (emit_replacements(&s->out, s->n_held) != 0)
            return -1;
        s->n_held = 0; /* b starts afresh */
    }
    if (b < 0x80)
        return gf_bytes_push(&s->out, (char)b);
    if (b >= 0xC2 && b <= 0xF4) {
        s->held[s->n_held++] = b;
        return 0;
    }
    return emit_replacements(&s->out, 1);
}

static gemfa_status finish(gemfa_detok_stream *s, int rc, const char **text, size_t *len)
{
    if (rc != 0)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "detokenizer stream: out of memory");
    *text = s->out.data ? s->out.data : "";
    *len = s->out.len;
    return GEMFA_OK;
}

GEMFA_API gemfa_status gemfa_detok_stream_feed(gemfa_detok_stream *s, int32_t id,
                                               const char **text, size_t *len)
{
    if (!s || !text || !len)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_detok_stream_feed: %s is NULL",
                        !s ? "stream" : !text ? "text" : "len");
    int64_t limit = gf_model_id_limit(s->model);
    if (id < 0 || id >= limit)
        return gf_error(GEMFA_ERR_INVALID_TOKEN, "gemfa_detok_stream_feed: id %d is outside "
                        "the vocabulary [0, %lld)", id, (long long)limit);
    const gf_text *t = s->t;
    unsigned char saved[4];
    size_t saved_n = s->n_held;
    memcpy(saved, s->held, sizeof saved);
    s->out.len = 0;
    int rc = 0;
    if (gf_text_id_shown(t, id, s->flags)) {
        if (t->pipe.dec_byte_fallback && t->byte_of[id] >= 0) {
            rc = feed_byte(s, (unsigned char)t->byte_of[id]);
        } else {
            rc = emit_replacements(&s->out, s->n_held);
            s->n_held = 0;
            if (rc == 0)
                rc = gf_text_append_replaced(t, id, &s->out);
        }
    }
    if (rc != 0) { /* a failed call leaves the stream as it was */
        memcpy(s->held, saved, sizeof saved);
        s->n_held = saved_n;
    }
    return finish(s, rc, text, len);
}

GEMFA_API gemfa_status gemfa_detok_stream_flush(gemfa_detok_stream *s, const char **text,
                                                size_t *len)
{
    if (!s || !text || !len)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_detok_stream_flush: %s is NULL",
                        !s ? "stream" : !text ? "text" : "len");
    s->out.len = 0;
    int rc = emit_replacements(&s->out, s->n_held);
    if (rc == 0)
        s->n_held = 0;
    return finish(s, rc, text, len);
}
