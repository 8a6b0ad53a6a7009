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

static int push_text(cli_gen_result *r, const char *s, size_t n)
{
    if (r->text_len + n + 1 > r->text_cap) {
        size_t cap = r->text_cap ? r->text_cap : 256;
        while (cap < r->text_len + n + 1)
            cap *= 2;
        char *p = realloc(r->text, cap);
        if (!p)
            return -1;
        r->text = p;
        r->text_cap = cap;
    }
    memcpy(r->text + r->text_len, s, n);
    r->text_len += n;
    r->text[r->text_len] = '\0';
    return 0;
}

static gemfa_status emit(cli_gen_result *r, FILE *out, const char *s, size_t n)
{
    if (n == 0)
        return GEMFA_OK;
    if (push_text(r, s, n) != 0)
        return GEMFA_ERR_OUT_OF_MEMORY;
    if (out) {
        fwrite(s, 1, n, out);
        fflush(out);
    }
    return GEMFA_OK;
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

/* Passes newly detokenized text through the stop matcher (if any) to the
 * output; sets res->hit_stop when a stop string completes. */
static gemfa_status emit_checked(cli_gen_result *r, const cli_gen_opts *o, FILE *out,
                                 const char *s, size_t n)
{
    if (!o->stop)
        return emit(r, out, s, n);
    const char *released;
    size_t len;
    gemfa_status st = gemfa_stop_matcher_feed(o->stop, s, n, &released, &len, &r->hit_stop);
    if (st == GEMFA_OK)
        st = emit(r, out, released, len);
    return st;
}

gemfa_status cli_generate(const gemfa_model *model, gemfa_session *session, gemfa_sampler *smp,
                          long n_predict, FILE *out, volatile sig_atomic_t *interrupt,
                          cli_gen_result *res)
{
    return cli_generate_opts(model, session, smp, n_predict, out, interrupt, NULL, res);
}

gemfa_status cli_generate_opts(const gemfa_model *model, gemfa_session *session,
                               gemfa_sampler *smp, long n_predict, FILE *out,
                               volatile sig_atomic_t *interrupt, const cli_gen_opts *opts,
                               cli_gen_result *res)
{
    static const cli_gen_opts none = {0};
    const cli_gen_opts *o = opts ? opts : &none;
    gemfa_stop_matcher_reset(o->stop);
    memset(res, 0, sizeof *res);
    if (push_text(res, "", 0) != 0)
        return GEMFA_ERR_OUT_OF_MEMORY;
    gemfa_detok_stream *stream = NULL;
    gemfa_status st = gemfa_detok_stream_new(model, 0, &stream);
    if (st != GEMFA_OK)
        return st;

    const float *logits = NULL;
    size_t n_vocab = 0;
    double t0 = cli_now();
    st = gemfa_session_logits(session, &logits, &n_vocab);
    for (long i = 0; st == GEMFA_OK && i < n_predict; i++) {
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
        const char *piece;
        size_t len;
        st = gemfa_detok_stream_feed(stream, id, &piece, &len);
        if (st == GEMFA_OK)
            st = emit_checked(res, o, out, piece, len);
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
    if (st == GEMFA_OK && !res->hit_stop) {
        const char *tail;
        size_t len;
        st = gemfa_detok_stream_flush(stream, &tail, &len);
        if (st == GEMFA_OK)
            st = emit_checked(res, o, out, tail, len);
        if (st == GEMFA_OK && o->stop && !res->hit_stop) /* held text can no longer stop */
            st = gemfa_stop_matcher_flush(o->stop, &tail, &len);
        if (st == GEMFA_OK && o->stop && !res->hit_stop)
            st = emit(res, out, tail, len);
    }
    gemfa_detok_stream_free(stream);
    return st;
}

void cli_gen_result_free(cli_gen_result *res)
{
    free(res->ids);
    free(res->text);
    free(res->logprobs);
    memset(res, 0, sizeof *res);
}
