/* srv_sched.c — continuous batching over a fixed set of slots.  Only the
 * scheduler thread touches the context, sessions, samplers and detokenizer
 * streams; HTTP threads only queue jobs and read their output. */
#include "srv_sched.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli.h"
#include "../cli_gen.h"

typedef struct slot {
    gemfa_session *session;
    gemfa_detok_stream *detok;
    gemfa_sampler *sampler;
#ifdef SRV_HAVE_STOP_MATCHER
    gemfa_stop_matcher *stop; /* the job's stop strings, NULL without any */
#endif
    srv_job *job;           /* NULL when free */
    size_t prefilled;       /* prompt tokens in the session */
    int generating;         /* prompt done, `pending` to decode next */
    int32_t pending;
    long long last_used;
} slot;

struct srv_sched {
    const gemfa_model *model;
    gemfa_context *ctx;
    srv_sched_options o;
    slot *slots;
    size_t max_ctx;
    pthread_t thread;
    pthread_mutex_t mu;     /* queue, stopping, stats */
    pthread_cond_t cv;
    srv_job *head, *tail;
    int n_queued, stopping;
    srv_stats stats;
    long long clock;
    /* scratch */
    gemfa_session **batch_sessions;
    int32_t *batch_ids;
    int *batch_slots;
};

srv_job *srv_job_new(void)
{
    srv_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    atomic_init(&j->refs, 1);
    atomic_init(&j->cancelled, 0);
    return j;
}

void srv_job_release(srv_job *j)
{
    if (!j || atomic_fetch_sub(&j->refs, 1) != 1)
        return;
#ifdef SRV_HAVE_CONSTRAINT
    gemfa_constraint_free(j->p.constraint);
#endif
    free(j->prompt);
    free(j->p.bias_ids);
    free(j->p.bias_vals);
    for (int i = 0; i < j->p.n_stop; i++)
        free(j->p.stop[i]);
    srv_buf_free(&j->text);
    free(j->lps);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

/* ---- output (scheduler side) ------------------------------------------- */

static void job_finish(srv_job *j, srv_finish f, const char *error)
{
    pthread_mutex_lock(&j->mu);
    if (j->finish == SRV_RUNNING) {
        j->finish = f;
        if (error)
            snprintf(j->error, sizeof j->error, "%s", error);
        j->text_ready = j->text.len; /* a held-back partial stop string is text after all */
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* Appends a text piece, cutting at the first stop string; returns 1 when a
 * stop string ended the answer. */
static int job_append(srv_job *j, const char *piece, size_t len)
{
    int stopped = 0;
    int n_stop = j->own_stop ? j->p.n_stop : 0;
    pthread_mutex_lock(&j->mu);
    size_t before = j->text.len;
    srv_buf_put(&j->text, piece, len);
    size_t hold = 0;
    for (int k = 0; k < n_stop && !stopped; k++) {
        size_t sl = j->p.stop_len[k];
        /* a match can start up to sl-1 bytes before the new piece */
        size_t from = before >= sl ? before - sl + 1 : 0;
        for (size_t i = from; i + sl <= j->text.len; i++)
            if (memcmp(j->text.data + i, j->p.stop[k], sl) == 0) {
                j->text.len = i;
                j->text.data[i] = '\0';
                stopped = 1;
                break;
            }
    }
    if (!stopped) /* hold back the longest tail that begins a stop string */
        for (int k = 0; k < n_stop; k++) {
            size_t sl = j->p.stop_len[k];
            for (size_t t = sl - 1; t > hold; t--)
                if (t <= j->text.len &&
                    memcmp(j->text.data + j->text.len - t, j->p.stop[k], t) == 0) {
                    hold = t;
                    break;
                }
        }
    j->text_ready = j->text.len - hold;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return stopped;
}

/* log-softmax of the raw logits for the chosen id and the top n. */
static void job_logprob(srv_job *j, const float *logits, size_t n_vocab, int32_t id)
{
#ifdef SRV_HAVE_LOGPROBS
    srv_logprob lp = {.id = id};
    size_t n_top = 0;
    if (gemfa_logprobs(logits, n_vocab, id, &lp.logprob, (size_t)j->p.top_logprobs, lp.top_id,
                       lp.top_lp, &n_top) != GEMFA_OK)
        return;
    lp.n_top = (int)n_top;
#else
    float mx = -INFINITY;
    for (size_t i = 0; i < n_vocab; i++)
        if (logits[i] > mx)
            mx = logits[i];
    double sum = 0;
    for (size_t i = 0; i < n_vocab; i++)
        sum += exp((double)logits[i] - mx);
    double lse = mx + log(sum);
    srv_logprob lp = {.id = id, .logprob = (float)(logits[id] - lse)};
    int k = j->p.top_logprobs;
    for (size_t i = 0; i < n_vocab && k > 0; i++) { /* insertion into a sorted top-k */
        float v = logits[i];
        if (lp.n_top == k && v <= lp.top_lp[k - 1])
            continue;
        int at = lp.n_top < k ? lp.n_top++ : k - 1;
        while (at > 0 && lp.top_lp[at - 1] < v) {
            lp.top_lp[at] = lp.top_lp[at - 1];
            lp.top_id[at] = lp.top_id[at - 1];
            at--;
        }
        lp.top_lp[at] = v;
        lp.top_id[at] = (int32_t)i;
    }
    for (int t = 0; t < lp.n_top; t++)
        lp.top_lp[t] = (float)(lp.top_lp[t] - lse);
#endif
    pthread_mutex_lock(&j->mu);
    if (j->n_lps == j->cap_lps) {
        size_t cap = j->cap_lps ? 2 * j->cap_lps : 32;
        srv_logprob *p = realloc(j->lps, cap * sizeof *p);
        if (p) {
            j->lps = p;
            j->cap_lps = cap;
        }
    }
    if (j->n_lps < j->cap_lps)
        j->lps[j->n_lps++] = lp;
    pthread_mutex_unlock(&j->mu);
}

/* ---- slots --------------------------------------------------------------- */

static void slot_release(srv_sched *s, slot *sl, srv_finish f, const char *error)
{
    pthread_mutex_lock(&s->mu); /* before the client hears of it: /health agrees */
    s->stats.busy--;
    pthread_mutex_unlock(&s->mu);
    gemfa_sampler_free(sl->sampler); /* first: it points at the job's constraint */
    sl->sampler = NULL;
    job_finish(sl->job, f, error);
    srv_job_release(sl->job);
    sl->job = NULL;
    sl->generating = 0;
#ifdef SRV_HAVE_STOP_MATCHER
    gemfa_stop_matcher_free(sl->stop);
    sl->stop = NULL;
#endif
}

/* Tokens of the slot's cache that can be kept for `j`, never the prompt's
 * last token (it must be decoded to get logits).  Without truncation only
 * a cache that is wholly a prefix of the prompt counts; with it, the common
 * prefix, when the tail to drop is short enough for a cheap truncate (a
 * longer rollback would re-decode the kept tokens in one blocking pass:
 * a reset and a chunked prefill are kinder to the running streams). */
static size_t reusable(const slot *sl, const srv_job *j, size_t chunk)
{
    const int32_t *have;
    size_t n, common = 0;
    if (gemfa_session_tokens(sl->session, &have, &n) != GEMFA_OK)
        return 0;
    while (common < n && common + 1 < j->n_prompt && have[common] == j->prompt[common])
        common++;
    if (common == n)
        return n;
#ifdef SRV_HAVE_TRUNCATE
    if (n - common <= chunk)
        return common;
#endif
    (void)chunk;
    return 0;
}

static gemfa_sampler *make_sampler(srv_sched *s, srv_job *j)
{
    gemfa_sampler *smp = NULL;
    cli_sampling cs = j->p.sampling;
    if (!(smp = cli_make_sampler(s->model, &cs)))
        return NULL;
#ifdef SRV_HAVE_CONSTRAINT
    if (j->p.constraint && gemfa_sampler_set_constraint(smp, j->p.constraint) != GEMFA_OK) {
        gemfa_sampler_free(smp);
        return NULL;
    }
#endif
    for (size_t i = 0; i < j->p.n_bias; i++)
        if (gemfa_sampler_set_logit_bias(smp, j->p.bias_ids[i], j->p.bias_vals[i]) != GEMFA_OK) {
            gemfa_sampler_free(smp);
            return NULL;
        }
    return smp;
}

/* Moves queued jobs into free slots, each to the slot whose cache it can
 * reuse most (else the least recently used one).  Called with s->mu. */
static void admit(srv_sched *s)
{
    while (s->head) {
        srv_job *j = s->head;
        if (atomic_load(&j->cancelled)) { /* its client left while it waited */
            s->head = j->next;
            if (!s->head)
                s->tail = NULL;
            s->n_queued--;
            job_finish(j, SRV_CANCELLED, "cancelled");
            srv_job_release(j);
            continue;
        }
        int best = -1;
        size_t best_keep = 0;
        for (int i = 0; i < s->o.n_slots; i++) {
            slot *sl = &s->slots[i];
            if (sl->job)
                continue;
            size_t keep = s->o.deterministic ? 0 : reusable(sl, j, (size_t)s->o.chunk);
            if (best < 0 || keep > best_keep ||
                (keep == best_keep && sl->last_used < s->slots[best].last_used)) {
                best = i;
                best_keep = keep;
            }
        }
        if (best < 0)
            return;
        s->head = j->next;
        if (!s->head)
            s->tail = NULL;
        j->next = NULL;
        s->n_queued--;
        s->stats.busy++;
        slot *sl = &s->slots[best];
        sl->job = j;
        sl->last_used = ++s->clock;
        if (best_keep == 0)
            gemfa_session_reset(sl->session);
#ifdef SRV_HAVE_TRUNCATE
        else if (best_keep < gemfa_session_n_tokens(sl->session) &&
                 gemfa_session_truncate(sl->session, best_keep) != GEMFA_OK)
            gemfa_session_reset(sl->session), best_keep = 0;
#endif
        sl->prefilled = best_keep;
        sl->generating = 0;
        j->n_cached = best_keep;
        s->stats.prompt_tokens += (long long)j->n_prompt;
        s->stats.cached_tokens += (long long)best_keep;
    }
}

/* Publishes a piece of the answer; returns 1 when a stop string ended it.
 * With the library's matcher the job only ever sees released text. */
static int emit(slot *sl, const char *piece, size_t len)
{
#ifdef SRV_HAVE_STOP_MATCHER
    if (sl->stop) {
        const char *out;
        size_t n;
        int hit = 0;
        if (gemfa_stop_matcher_feed(sl->stop, piece, len, &out, &n, &hit) != GEMFA_OK)
            return job_append(sl->job, piece, len); /* out of memory: own matching */
        job_append(sl->job, out, n);
        return hit;
    }
#endif
    return job_append(sl->job, piece, len);
}

/* The answer ends: what the detokenizer and the stop matcher held back. */
static int emit_end(slot *sl)
{
    const char *piece;
    size_t len;
    int stopped = 0;
    if (gemfa_detok_stream_flush(sl->detok, &piece, &len) == GEMFA_OK && len)
        stopped = emit(sl, piece, len);
#ifdef SRV_HAVE_STOP_MATCHER
    if (sl->stop && !stopped && gemfa_stop_matcher_flush(sl->stop, &piece, &len) == GEMFA_OK && len)
        job_append(sl->job, piece, len);
#endif
    return stopped;
}

/* Samples the slot's next token from its session's logits and publishes
 * it; finishes the job on a stop id, stop string, max_tokens or a full
 * context. */
static void sample_next(srv_sched *s, slot *sl)
{
    srv_job *j = sl->job;
    const float *logits;
    size_t n_vocab, n_hist;
    const int32_t *hist;
    int32_t id;
    gemfa_status st = gemfa_session_logits(sl->session, &logits, &n_vocab);
    if (st == GEMFA_OK)
        st = gemfa_session_tokens(sl->session, &hist, &n_hist);
    if (st == GEMFA_OK)
        st = gemfa_sample(sl->sampler, logits, n_vocab, hist, n_hist, &id);
    if (st != GEMFA_OK) {
        char msg[200];
        snprintf(msg, sizeof msg, "sampling failed: %s: %s", gemfa_status_name(st), gemfa_last_error());
        slot_release(s, sl, SRV_ERROR, msg);
        return;
    }
    if (j->p.logprobs)
        job_logprob(j, logits, n_vocab, id);
    pthread_mutex_lock(&j->mu);
    j->n_completion++;
    if (j->t_first == 0)
        j->t_first = cli_now();
    pthread_mutex_unlock(&j->mu);
    pthread_mutex_lock(&s->mu);
    s->stats.generated_tokens++;
    pthread_mutex_unlock(&s->mu);
    if (gemfa_model_is_eog(s->model, id)) {
        emit_end(sl);
        slot_release(s, sl, SRV_STOP, NULL);
        return;
    }
    const char *piece;
    size_t len;
    int stopped = 0;
    if (gemfa_detok_stream_feed(sl->detok, id, &piece, &len) == GEMFA_OK && len)
        stopped = emit(sl, piece, len);
    int full = gemfa_session_n_tokens(sl->session) >= s->max_ctx;
    if (stopped || (long)j->n_completion >= j->p.max_tokens || full) {
        if (!stopped)
            stopped = emit_end(sl);
        slot_release(s, sl, stopped ? SRV_STOP : SRV_LENGTH, NULL);
        return;
    }
    sl->pending = id;
    sl->generating = 1;
}

/* Decodes the next chunk of one slot's prompt; returns 1 if it did. */
static int prefill_step(srv_sched *s)
{
    slot *sl = NULL;
    long long oldest = 0;
    for (int i = 0; i < s->o.n_slots; i++) { /* the oldest admitted prompt first */
        slot *c = &s->slots[i];
        if (c->job && !c->generating && (!sl || c->last_used < oldest)) {
            sl = c;
            oldest = c->last_used;
        }
    }
    if (!sl)
        return 0;
    srv_job *j = sl->job;
    if (sl->prefilled == j->n_cached) { /* first chunk: fresh sampler and detokenizer */
        gemfa_detok_stream_reset(sl->detok);
        if (!(sl->sampler = make_sampler(s, j))) {
            slot_release(s, sl, SRV_ERROR, "cannot create the sampler");
            return 1;
        }
        j->own_stop = 1;
#ifdef SRV_HAVE_STOP_MATCHER
        if (j->p.n_stop && gemfa_stop_matcher_new((const char *const *)j->p.stop, j->p.stop_len,
                                                  (size_t)j->p.n_stop, &sl->stop) == GEMFA_OK)
            j->own_stop = 0;
#endif
    }
    size_t n = j->n_prompt - sl->prefilled;
    if (n > (size_t)s->o.chunk)
        n = (size_t)s->o.chunk;
    double t0 = cli_now();
    gemfa_status st = gemfa_decode(sl->session, j->prompt + sl->prefilled, n, NULL);
    double dt = cli_now() - t0;
    pthread_mutex_lock(&s->mu);
    s->stats.prefill_seconds += dt;
    s->stats.prefill_tokens += (long long)n;
    pthread_mutex_unlock(&s->mu);
    if (st != GEMFA_OK) {
        char msg[200];
        snprintf(msg, sizeof msg, "cannot decode the prompt: %s: %s", gemfa_status_name(st),
                 gemfa_last_error());
        gemfa_session_reset(sl->session);
        slot_release(s, sl, SRV_ERROR, msg);
        return 1;
    }
    sl->prefilled += n;
    if (sl->prefilled == j->n_prompt)
        sample_next(s, sl);
    return 1;
}

/* One token for every generating slot. */
static int generate_step(srv_sched *s)
{
    size_t n = 0;
    for (int i = 0; i < s->o.n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->job && sl->generating) {
            s->batch_sessions[n] = sl->session;
            s->batch_ids[n] = sl->pending;
            s->batch_slots[n++] = i;
        }
    }
    if (!n)
        return 0;
    double t0 = cli_now();
    gemfa_status st = GEMFA_OK;
    if (s->o.deterministic || n == 1) {
        for (size_t k = 0; k < n; k++) {
            slot *sl = &s->slots[s->batch_slots[k]];
            st = gemfa_decode(sl->session, &s->batch_ids[k], 1, NULL);
            if (st != GEMFA_OK) {
                char msg[200];
                snprintf(msg, sizeof msg, "decode failed: %s: %s", gemfa_status_name(st), gemfa_last_error());
                slot_release(s, sl, SRV_ERROR, msg);
            }
        }
        st = GEMFA_OK;
    } else {
        st = gemfa_decode_batch(s->ctx, s->batch_sessions, s->batch_ids, n);
    }
    double t1 = cli_now();
    for (size_t k = 0; k < n; k++) {
        slot *sl = &s->slots[s->batch_slots[k]];
        if (!sl->job)
            continue;
        if (st != GEMFA_OK) {
            char msg[200];
            snprintf(msg, sizeof msg, "decode failed: %s: %s", gemfa_status_name(st), gemfa_last_error());
            slot_release(s, sl, SRV_ERROR, msg);
        } else {
            sample_next(s, sl);
        }
    }
    double t2 = cli_now();
    pthread_mutex_lock(&s->mu);
    s->stats.busy_seconds += t2 - t0;
    s->stats.decode_seconds += t1 - t0;
    s->stats.sample_seconds += t2 - t1;
    s->stats.steps++;
    s->stats.step_rows += (long long)n;
    pthread_mutex_unlock(&s->mu);
    return 1;
}

static void *run(void *arg)
{
    srv_sched *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        for (;;) {
            int active = 0;
            for (int i = 0; i < s->o.n_slots; i++)
                active |= s->slots[i].job != NULL;
            if (s->stopping || active || s->head)
                break;
            pthread_cond_wait(&s->cv, &s->mu);
        }
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        admit(s);
        pthread_mutex_unlock(&s->mu);
        for (int i = 0; i < s->o.n_slots; i++) {
            slot *sl = &s->slots[i];
            if (sl->job && atomic_load(&sl->job->cancelled))
                slot_release(s, sl, SRV_CANCELLED, "cancelled");
        }
        prefill_step(s);
        generate_step(s);
    }
    /* shutdown: every job ends with an error */
    for (int i = 0; i < s->o.n_slots; i++)
        if (s->slots[i].job)
            slot_release(s, &s->slots[i], SRV_ERROR, "the server is shutting down");
    pthread_mutex_lock(&s->mu);
    while (s->head) {
        srv_job *j = s->head;
        s->head = j->next;
        job_finish(j, SRV_ERROR, "the server is shutting down");
        srv_job_release(j);
    }
    s->tail = NULL;
    s->n_queued = 0;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void destroy(srv_sched *s)
{
    if (s->slots)
        for (int i = 0; i < s->o.n_slots; i++) {
            gemfa_session_free(s->slots[i].session);
            gemfa_detok_stream_free(s->slots[i].detok);
            gemfa_sampler_free(s->slots[i].sampler);
        }
    free(s->slots);
    free(s->batch_sessions);
    free(s->batch_ids);
    free(s->batch_slots);
    gemfa_context_free(s->ctx);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

srv_sched *srv_sched_start(const gemfa_model *m, const srv_sched_options *o)
{
    srv_sched *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->model = m;
    s->o = *o;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->slots = calloc((size_t)o->n_slots, sizeof *s->slots);
    s->batch_sessions = calloc((size_t)o->n_slots, sizeof *s->batch_sessions);
    s->batch_ids = calloc((size_t)o->n_slots, sizeof *s->batch_ids);
    s->batch_slots = calloc((size_t)o->n_slots, sizeof *s->batch_slots);
    gemfa_context_options *co = NULL;
    gemfa_session_options *so = NULL;
    gemfa_status st = GEMFA_ERR_OUT_OF_MEMORY;
    if (s->slots && s->batch_sessions && s->batch_ids && s->batch_slots)
        st = gemfa_context_options_new(&co);
    if (st == GEMFA_OK)
        st = gemfa_context_options_set_threads(co, o->threads);
    if (st == GEMFA_OK)
        st = gemfa_context_new(m, co, &s->ctx);
    if (st == GEMFA_OK)
        st = gemfa_session_options_new(&so);
    if (st == GEMFA_OK)
        st = gemfa_session_options_set_max_context(so, o->ctx);
    if (st == GEMFA_OK)
        st = gemfa_session_options_set_kv_type(so, o->kv_type);
    for (int i = 0; st == GEMFA_OK && i < o->n_slots; i++) {
        st = gemfa_session_new(s->ctx, so, &s->slots[i].session);
        if (st == GEMFA_OK)
            st = gemfa_detok_stream_new(m, GEMFA_DETOKENIZE_SKIP_SPECIAL, &s->slots[i].detok);
    }
    gemfa_context_options_free(co);
    gemfa_session_options_free(so);
    if (st != GEMFA_OK) {
        cli_report("cannot create the slots", st);
        destroy(s);
        return NULL;
    }
    s->max_ctx = gemfa_session_max_context(s->slots[0].session);
    s->stats.slots = o->n_slots;
    if (pthread_create(&s->thread, NULL, run, s) != 0) {
        fprintf(stderr, "gemfa serve: cannot start the scheduler thread\n");
        destroy(s);
        return NULL;
    }
    return s;
}

void srv_sched_stop(srv_sched *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
}

void srv_sched_free(srv_sched *s)
{
    if (s)
        destroy(s);
}

int srv_sched_submit(srv_sched *s, srv_job *j)
{
    pthread_mutex_lock(&s->mu);
    int free_slots = s->o.n_slots - s->stats.busy;
    if (s->stopping || s->n_queued - free_slots >= s->o.queue_cap) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    atomic_fetch_add(&j->refs, 1);
    j->t_submit = cli_now();
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    s->n_queued++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void srv_sched_poke(srv_sched *s)
{
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void srv_sched_stats(srv_sched *s, srv_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    out->queued = s->n_queued;
    pthread_mutex_unlock(&s->mu);
}

size_t srv_sched_ctx(const srv_sched *s)
{
    return s->max_ctx;
}
