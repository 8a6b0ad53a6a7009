/* detokenize.c — ids to text with Hugging Face's decoder semantics for
 * Sequence[Replace..., ByteFallback, Fuse]: each shown piece goes through the
 * Replace steps ("▁" -> " "); each maximal run of byte tokens (<0xXX>) is
 * joined into UTF-8 when the whole run is valid, else it becomes one U+FFFD
 * per byte of the run; the rest is concatenated.  Ids without a piece and,
 * with SKIP_SPECIAL, special tokens are left out before any of this, so they
 * never split a byte run. */
#include "core/status.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

int gf_text_id_shown(const gf_text *t, int32_t id, unsigned flags)
{
    if (id < 0 || id >= t->n_ids || t->piece[id].len == GF_NO_PIECE)
        return 0;
    return !((flags & GEMFA_DETOKENIZE_SKIP_SPECIAL) && (t->flags[id] & GF_ID_SPECIAL));
}

int gf_text_append_replaced(const gf_text *t, int32_t id, gf_bytes *out)
{
    const gf_span *p = &t->piece[id];
    return gf_replace_apply(t->pipe.dec_replace, t->pipe.n_dec_replace, t->arena + p->off,
                            p->len, out);
}

/* Appends a finished byte run: as UTF-8 if valid, else U+FFFD per byte. */
static int flush_run(gf_bytes *out, const char *run, size_t n)
{
    size_t bad;
    if (gf_utf8_valid(run, n, &bad))
        return gf_bytes_append(out, run, n);
    for (size_t i = 0; i < n; i++)
        if (gf_bytes_append(out, GF_UTF8_REPLACEMENT, 3) != 0)
            return -1;
    return 0;
}

gemfa_status gf_text_decode(const gf_text *t, const int32_t *ids, size_t n, unsigned flags,
                            gf_bytes *out)
{
    gf_bytes run = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int32_t id = ids[i];
        if (!gf_text_id_shown(t, id, flags))
            continue;
        if (t->pipe.dec_byte_fallback && t->byte_of[id] >= 0) {
            rc = gf_bytes_push(&run, (char)t->byte_of[id]);
            continue;
        }
        if (run.len) {
            rc = flush_run(out, run.data, run.len);
            run.len = 0;
        }
        if (rc == 0)
            rc = gf_text_append_replaced(t, id, out);
    }
    if (rc == 0 && run.len)
        rc = flush_run(out, run.data, run.len);
    gf_bytes_free(&run);
    if (rc != 0)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "detokenize: out of memory");
    return GEMFA_OK;
}
