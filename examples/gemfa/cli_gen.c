/* cli_gen.c — the decode → sample → stream loop of the CLI. */
#include "cli_gen.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int push_id(cli_gen_result *r, int32_t id)
{
    if (r->n_ids == r->cap_ids) {
        size_t cap = r->cap_ids ? r->cap_ids * 2 : 64;
        int32_t *p = realloc(r->ids, cap * sizeof *p);
        if (!p)
            return -1;
        r->ids = p;
        r->cap_ids = cap;
    }
    r->ids[r->n_ids++] = id;
    return 0;
}

static int push_text(cli_text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *p = realloc(t->data, cap);
        if (!p)
            return -1;
        t->data = p;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
    return 0;
}

static gemfa_status push_logprob(cli_gen_result *r, const cli_gen_opts *o, const float *logits,
                                 size_t n_vocab, int32_t id)
{
    if (r->n_logprobs == r->cap_logprobs) {
        size_t cap = r->cap_logprobs ? r->cap_logprobs * 2 : 64;
        cli_logprob *p = realloc(r->logprobs, cap * sizeof *p);
        if (!p)
            return GEMFA_ERR_OUT_OF_MEMORY;
        r->logprobs = p;
        r->cap_logprobs = cap;
    }
    cli_logprob *lp = &r->logprobs[r->n_logprobs];
    lp->id = id;
    lp->n_top = 0;
    gemfa_status st = gemfa_logprobs(logits, n_vocab, id, &lp->logprob, o->top_logprobs,
                                     lp->top_ids, lp->top_logprobs, &lp->n_top);
    if (st == GEMFA_OK)
        r->n_logprobs++;
    return st;
}

/* Appends shown text to the result and to `out`. */
static gemfa_status show(cli_gen_result *r, cli_out *out, const char *piece, size_t len)
{
    if (push_text(&r->shown, piece, len) != 0)
        return GEMFA_ERR_OUT_OF_MEMORY;
    r->text = r->shown.data;
    r->text_len = r->shown.len;
    if (out && len && cli_out_write(out, piece, len) != 0) {
        r->write_failed = 1;
        return GEMFA_ERR_IO;
    }
    return GEMFA_OK;
}

/* Shows a piece through the stop matcher, if any: only what can no longer
 * become a stop string, nothing from a stop string on (sets hit_stop); at
 * the end (flush) also what the matcher still holds. */
static gemfa_status show_checked(cli_gen_result *r, const cli_gen_opts *o, cli_out *out,
                                 const char *piece, size_t len, int flush)
{
    if (!o->stop)
        return show(r, out, piece, len);
    if (r->hit_stop)
        return GEMFA_OK;
    gemfa_status st = gemfa_stop_matcher_feed(o->stop, piece, len, &piece, &len, &r->hit_stop);
    if (st == GEMFA_OK)
        st = show(r, out, piece, len);
    if (st == GEMFA_OK && flush && !r->hit_stop) {
        st = gemfa_stop_matcher_flush(o->stop, &piece, &len);
        if (st == GEMFA_OK)
            st = show(r, out, piece, len);
    }
    return st;
}

/* Feeds `id` (or, with flush, ends) both detokenizer streams: the full text
 * and the shown one, which also goes to `out` (through the stop matcher). */
static gemfa_status feed(cli_gen_result *r, const cli_gen_opts *o, gemfa_detok_stream *full,
                         gemfa_detok_stream *shown, cli_out *out, int32_t id, int flush)
{
    const char *piece;
    size_t len;
    gemfa_status st = flush ? gemfa_detok_stream_flush(full, &piece, &len)
                            : gemfa_detok_stream_feed(full, id, &piece, &len);
    if (st != GEMFA_OK)
        return st;
    if (push_text(&r->full, piece, len) != 0)
        return GEMFA_ERR_OUT_OF_MEMORY;
    st = flush ? gemfa_detok_stream_flush(shown, &piece, &len)
               : gemfa_detok_stream_feed(shown, id, &piece, &len);
    if (st != GEMFA_OK)
        return st;
    return show_checked(r, o, out, piece, len, flush);
}

/* The loop of cli_generate_opts with a speculator: each step gives 1..k+1
 * tokens, used one by one as the plain loop uses its sampled token.  At the
 * end the session is cut back to what the plain loop would hold: every
 * used token but the last (drafts past an end-of-generation id, a stop
 * string or the limit are dropped). */
static gemfa_status generate_spec(const gemfa_model *model, gemfa_session *session,
                                  gemfa_sampler *smp, long n_predict, const cli_gen_opts *o,
                                  gemfa_detok_stream *full, gemfa_detok_stream *shown,
                                  cli_out *out, volatile sig_atomic_t *interrupt,
                                  cli_gen_result *res)
{
    size_t start = gemfa_session_n_tokens(session), used = 0, returned = 0;
    int32_t ids[GEMFA_SPECULATOR_MAX_K + 1];
    gemfa_status st = GEMFA_OK;
    int done = n_predict <= 0;
    while (!done) {
        if (interrupt && *interrupt) {
            res->interrupted = 1;
            break;
        }
        size_t n = 0;
        st = gemfa_speculator_step(o->spec, smp, ids, sizeof ids / sizeof ids[0], &n);
        if (st == GEMFA_ERR_CONTEXT_FULL) {
            res->context_full = 1;
            st = GEMFA_OK;
            break;
        }
        if (st == GEMFA_ERR_CANCELLED) {
            res->interrupted = 1;
            st = GEMFA_OK;
            break;
        }
        if (st != GEMFA_OK)
            break;
        returned += n;
        for (size_t i = 0; i < n && !done; i++) {
            int32_t id = ids[i];
            if (push_id(res, id) != 0) {
                st = GEMFA_ERR_OUT_OF_MEMORY;
                done = 1;
                break;
            }
            used++;
            if (gemfa_model_is_eog(model, id)) {
                res->hit_eog = 1;
                done = 1;
                break;
            }
            st = feed(res, o, full, shown, out, id, 0);
            if (st != GEMFA_OK || res->hit_stop || (long)used == n_predict)
                done = 1;
        }
    }
    res->n_decoded = used ? used - 1 : 0;
    /* the speculator keeps the last returned token pending: drop it, and
     * any tokens decoded past the last one used */
    gemfa_speculator_reset(o->spec);
    size_t keep = start + (used ? used - 1 : 0);
    if (returned > used && gemfa_session_n_tokens(session) > keep) {
        gemfa_status tst = gemfa_session_truncate(session, keep);
        if (st == GEMFA_OK)
            st = tst;
    }
    return st;
}

gemfa_status cli_generate(const gemfa_model *model, gemfa_session *session, gemfa_sampler *smp,
                          long n_predict, int show_special, cli_out *out,
                          volatile sig_atomic_t *interrupt, cli_gen_result *res)
{
    return cli_generate_opts(model, session, smp, n_predict, show_special, out, interrupt, NULL,
                             res);
}

gemfa_status cli_generate_opts(const gemfa_model *model, gemfa_session *session,
                               gemfa_sampler *smp, long n_predict, int show_special,
                               cli_out *out, volatile sig_atomic_t *interrupt,
                               const cli_gen_opts *opts, cli_gen_result *res)
{
    static const cli_gen_opts none = {0};
    const cli_gen_opts *o = opts ? opts : &none;
    gemfa_stop_matcher_reset(o->stop);
    memset(res, 0, sizeof *res);
    if (push_text(&res->full, "", 0) != 0 || push_text(&res->shown, "", 0) != 0)
        return GEMFA_ERR_OUT_OF_MEMORY;
    res->text = res->shown.data;
    gemfa_detok_stream *full = NULL, *shown = NULL;
    gemfa_status st = gemfa_detok_stream_new(model, 0, &full);
    if (st == GEMFA_OK)
        st = gemfa_detok_stream_new(model, show_special ? 0 : GEMFA_DETOKENIZE_SKIP_SPECIAL,
                                    &shown);
    if (st != GEMFA_OK) {
        gemfa_detok_stream_free(full);
        return st;
    }

    const float *logits = NULL;
    size_t n_vocab = 0;
    double t0 = cli_now();
    st = gemfa_session_logits(session, &logits, &n_vocab);
    if (st == GEMFA_OK && o->spec)
        st = generate_spec(model, session, smp, n_predict, o, full, shown, out, interrupt, res);
    for (long i = 0; st == GEMFA_OK && !o->spec && i < n_predict; i++) {
        if (interrupt && *interrupt) {
            res->interrupted = 1;
            break;
        }
        const int32_t *history;
        size_t n_history;
        int32_t id;
        st = gemfa_session_tokens(session, &history, &n_history);
        if (st == GEMFA_OK)
            st = gemfa_sample(smp, logits, n_vocab, history, n_history, &id);
        if (st != GEMFA_OK)
            break;
        if (push_id(res, id) != 0) {
            st = GEMFA_ERR_OUT_OF_MEMORY;
            break;
        }
        if (o->logprobs && (st = push_logprob(res, o, logits, n_vocab, id)) != GEMFA_OK)
            break;
        if (gemfa_model_is_eog(model, id)) {
            res->hit_eog = 1;
            break;
        }
        st = feed(res, o, full, shown, out, id, 0);
        if (st != GEMFA_OK || res->hit_stop || i + 1 == n_predict)
            break; /* the last token needs no decode: nothing will sample after it */
        if (gemfa_session_n_tokens(session) >= gemfa_session_max_context(session)) {
            res->context_full = 1;
            break;
        }
        st = gemfa_decode(session, &id, 1, &logits);
        if (st == GEMFA_ERR_CANCELLED) {
            res->interrupted = 1;
            st = GEMFA_OK;
            break;
        }
        res->n_decoded++;
    }
    res->decode_s = cli_now() - t0;
    if (st == GEMFA_OK)
        st = feed(res, o, full, shown, out, 0, 1);
    /* the unfinished bidi line is shown even after a failure */
    if (out && cli_out_finish(out) != 0 && st == GEMFA_OK) {
        res->write_failed = 1;
        st = GEMFA_ERR_IO;
    }
    gemfa_detok_stream_free(full);
    gemfa_detok_stream_free(shown);
    return st;
}

void cli_gen_result_free(cli_gen_result *res)
{
    free(res->ids);
    free(res->full.data);
    free(res->shown.data);
    free(res->logprobs);
    memset(res, 0, sizeof *res);
}

void cli_gen_report(const cli_gen_result *res, gemfa_status st)
{
    if (res->write_failed)
        fprintf(stderr, "gemfa: generation failed: cannot write the output\n");
    else
        fprintf(stderr, "gemfa: generation failed: %s: %s\n", gemfa_status_name(st),
                gemfa_last_error());
}
