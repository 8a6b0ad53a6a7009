/* srv_http.c — request routing and responses.  Each connection has its own
 * thread, so a handler may block: a non-streamed completion waits for its
 * job, a streamed one blocks in the content callback until tokens arrive.
 * Both poll the socket so a client that hangs up cancels its job. */
#define _GNU_SOURCE
#include "srv_http.h"

#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../cli_gen.h"
#include "srv_buf.h"
#include "srv_openai.h"
#include "srv_request.h"

extern const unsigned char srv_page_html[];
extern const size_t srv_page_html_len;

#define N_STATUS 600

struct srv_http {
    struct MHD_Daemon *d;
    const gemfa_model *model;
    srv_sched *sched;
    srv_http_options o;
    atomic_llong by_status[N_STATUS];
    atomic_llong ids;
    atomic_int streams;     /* streamed responses not yet finished */
    pthread_mutex_t log_mu;
};

typedef struct conn {
    srv_buf body;
    int too_large;
    int status;
    double t0;
    char method[8];
    char path[96];
} conn;

/* ---- helpers --------------------------------------------------------------- */

/* Waits on the job's condition for at most 100 ms (j->mu held), so the
 * caller can look at its client between wake-ups. */
static void wait_a_tick(srv_job *j)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&j->cv, &j->mu, &ts);
}

static int client_gone(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static enum MHD_Result send_buf(struct MHD_Connection *c, conn *cs, int status, const char *type,
                                const char *data, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data, mode);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    if (status == 503)
        MHD_add_response_header(r, "Retry-After", "1");
    if (status == 401)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    cs->status = status;
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *c, conn *cs, int status, srv_buf *b)
{
    if (b->oom || !b->data) {
        srv_buf_free(b);
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                                  "\"param\":null,\"code\":null}}";
        return send_buf(c, cs, 500, "application/json", oom, sizeof oom - 1, MHD_RESPMEM_PERSISTENT);
    }
    enum MHD_Result ok = send_buf(c, cs, status, "application/json", b->data, b->len, MHD_RESPMEM_MUST_FREE);
    b->data = NULL; /* MHD frees it */
    srv_buf_free(b);
    return ok;
}

static enum MHD_Result send_error(struct MHD_Connection *c, conn *cs, const srv_error *e)
{
    srv_buf b = {0};
    srv_openai_error(&b, e);
    return send_json(c, cs, e->status ? e->status : 400, &b);
}

static enum MHD_Result simple_error(struct MHD_Connection *c, conn *cs, int status, const char *type,
                                    const char *code, const char *msg)
{
    srv_error e = {.status = status, .type = type, .code = code};
    snprintf(e.message, sizeof e.message, "%s", msg);
    return send_error(c, cs, &e);
}

/* Constant-time comparison: the time does not depend on where they differ. */
static int same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < lb; i++)
        diff |= (unsigned char)(a[i < la ? i : 0] ^ b[i]);
    return diff == 0 && la == lb;
}

static int authorized(srv_http *h, struct MHD_Connection *c)
{
    if (!h->o.api_key)
        return 1;
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!auth || strncmp(auth, "Bearer ", 7) != 0)
        return 0;
    return same_secret(auth + 7, h->o.api_key);
}

/* ---- completions ------------------------------------------------------------- */

typedef struct stream {
    srv_http *h;
    srv_job *job;
    struct MHD_Connection *c;
    srv_buf out;
    size_t out_pos, sent_text, sent_lps;
    int role_sent, ended;
} stream;

static void stream_free(void *cls)
{
    stream *st = cls;
    if (!st->ended) { /* the client went away before the end */
        atomic_store(&st->job->cancelled, 1);
        srv_sched_poke(st->h->sched);
    }
    srv_job_release(st->job);
    srv_buf_free(&st->out);
    atomic_fetch_sub(&st->h->streams, 1);
    free(st);
}

/* Formats what the job produced since the last call; caller holds the lock. */
static void stream_collect(stream *st)
{
    srv_job *j = st->job;
    size_t ready = j->text_ready, lps = j->n_lps;
    if (!st->role_sent) {
        if (j->chat)
            srv_openai_chunk(&st->out, st->h->model, j, 0, 0, 0, 0, 1, 0);
        st->role_sent = 1;
    }
    if (ready > st->sent_text || (j->p.logprobs && lps > st->sent_lps)) {
        srv_openai_chunk(&st->out, st->h->model, j, st->sent_text, ready, st->sent_lps, lps, 0, 0);
        st->sent_text = ready;
        st->sent_lps = lps;
    }
    if (j->finish != SRV_RUNNING) {
        if (j->finish == SRV_ERROR || j->finish == SRV_CANCELLED) {
            srv_error e = {.status = 500, .type = "server_error"};
            snprintf(e.message, sizeof e.message, "%s", j->error[0] ? j->error : "generation failed");
            srv_buf_puts(&st->out, "data: ");
            srv_openai_error(&st->out, &e);
            srv_buf_puts(&st->out, "\n\n");
        } else {
            srv_openai_chunk(&st->out, st->h->model, j, ready, ready, lps, lps, 0, 1);
            if (j->p.include_usage)
                srv_openai_usage_chunk(&st->out, j);
        }
        srv_buf_puts(&st->out, "data: [DONE]\n\n");
        st->ended = 1;
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream *st = cls;
    srv_job *j = st->job;
    (void)pos;
    for (;;) {
        if (st->out_pos < st->out.len) {
            size_t n = st->out.len - st->out_pos;
            if (n > max)
                n = max;
            memcpy(buf, st->out.data + st->out_pos, n);
            st->out_pos += n;
            return (ssize_t)n;
        }
        srv_buf_clear(&st->out);
        st->out_pos = 0;
        if (st->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&j->mu);
        while (j->finish == SRV_RUNNING && st->role_sent && j->text_ready == st->sent_text &&
               (!j->p.logprobs || j->n_lps == st->sent_lps)) {
            wait_a_tick(j);
            if (j->finish == SRV_RUNNING && client_gone(st->c)) {
                pthread_mutex_unlock(&j->mu);
                return MHD_CONTENT_READER_END_WITH_ERROR; /* stream_free cancels */
            }
        }
        stream_collect(st);
        pthread_mutex_unlock(&j->mu);
        if (st->ended) /* a client that stops reading the rest is dropped again */
            MHD_set_connection_option(st->c, MHD_CONNECTION_OPTION_TIMEOUT, st->h->o.timeout_s);
        if (st->out.oom)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

/* Waits for a non-streamed job; returns 0 when it finished, -1 when the
 * client went away (the job is then cancelled). */
static int wait_job(srv_http *h, struct MHD_Connection *c, srv_job *j)
{
    pthread_mutex_lock(&j->mu);
    while (j->finish == SRV_RUNNING) {
        wait_a_tick(j);
        if (j->finish == SRV_RUNNING && client_gone(c)) {
            pthread_mutex_unlock(&j->mu);
            atomic_store(&j->cancelled, 1);
            srv_sched_poke(h->sched);
            return -1;
        }
    }
    pthread_mutex_unlock(&j->mu);
    return 0;
}

static enum MHD_Result completion(srv_http *h, struct MHD_Connection *c, conn *cs, int chat)
{
    srv_error e;
    srv_job *j = srv_request_parse(h->model, srv_sched_ctx(h->sched), chat,
                                   cs->body.data ? cs->body.data : "", cs->body.len, &e);
    if (!j)
        return send_error(c, cs, &e);
    unsigned long long rnd = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&rnd, sizeof rnd, 1, f) != 1)
        rnd = (unsigned long long)time(NULL);
    if (f)
        fclose(f);
    snprintf(j->id, sizeof j->id, "%s-%llx%04llx", chat ? "chatcmpl" : "cmpl", rnd & 0xFFFFFFFFFFFull,
             (unsigned long long)(atomic_fetch_add(&h->ids, 1) & 0xFFFF));
    j->created = (long long)time(NULL);
    if (srv_sched_submit(h->sched, j) != 0) {
        srv_job_release(j);
        return simple_error(c, cs, 503, "server_error", "server_busy",
                            "the server is busy (every slot and the queue are full); retry later");
    }
    /* The idle timeout guards the reading of requests (slowloris); while the
     * job waits and runs, this thread watches the socket itself, so the
     * connection must not time out however long the queue or the answer. */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    if (j->p.stream) {
        stream *st = calloc(1, sizeof *st);
        if (!st) {
            atomic_store(&j->cancelled, 1);
            srv_job_release(j);
            return simple_error(c, cs, 500, "server_error", NULL, "out of memory");
        }
        st->h = h;
        atomic_fetch_add(&h->streams, 1);
        st->job = j;
        st->c = c;
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
                                                                    stream_read, st, stream_free);
        if (!r) {
            stream_free(st);
            return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", "text/event-stream; charset=utf-8");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        MHD_add_response_header(r, "X-Accel-Buffering", "no"); /* nginx: do not buffer */
        cs->status = 200;
        enum MHD_Result ok = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ok;
    }
    if (wait_job(h, c, j) != 0) {
        srv_job_release(j);
        cs->status = 499; /* nginx's "client closed request", for the log */
        return MHD_NO;
    }
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, h->o.timeout_s);
    srv_buf b = {0};
    pthread_mutex_lock(&j->mu);
    int failed = j->finish == SRV_ERROR || j->finish == SRV_CANCELLED;
    if (failed) {
        srv_error err = {.status = 500, .type = "server_error"};
        snprintf(err.message, sizeof err.message, "%s", j->error);
        srv_openai_error(&b, &err);
    } else {
        srv_openai_body(&b, h->model, j);
    }
    pthread_mutex_unlock(&j->mu);
    srv_job_release(j);
    return send_json(c, cs, failed ? 500 : 200, &b);
}

/* ---- the other endpoints --------------------------------------------------- */

static enum MHD_Result metrics(srv_http *h, struct MHD_Connection *c, conn *cs)
{
    srv_stats s;
    srv_sched_stats(h->sched, &s);
    srv_buf b = {0};
    srv_buf_puts(&b, "# HELP gemfa_requests_total HTTP requests answered, by status code.\n"
                     "# TYPE gemfa_requests_total counter\n");
    for (int i = 100; i < N_STATUS; i++) {
        long long n = atomic_load(&h->by_status[i]);
        if (n)
            srv_buf_printf(&b, "gemfa_requests_total{code=\"%d\"} %lld\n", i, n);
    }
    srv_buf_printf(&b,
        "# HELP gemfa_prompt_tokens_total Prompt tokens of admitted requests.\n"
        "# TYPE gemfa_prompt_tokens_total counter\ngemfa_prompt_tokens_total %lld\n"
        "# HELP gemfa_prompt_tokens_cached_total Prompt tokens reused from a slot's cache.\n"
        "# TYPE gemfa_prompt_tokens_cached_total counter\ngemfa_prompt_tokens_cached_total %lld\n"
        "# HELP gemfa_generated_tokens_total Tokens generated.\n"
        "# TYPE gemfa_generated_tokens_total counter\ngemfa_generated_tokens_total %lld\n"
        "# HELP gemfa_queue_depth Requests waiting for a slot.\n"
        "# TYPE gemfa_queue_depth gauge\ngemfa_queue_depth %d\n"
        "# HELP gemfa_slots_busy Slots serving a request.\n"
        "# TYPE gemfa_slots_busy gauge\ngemfa_slots_busy %d\n"
        "# HELP gemfa_slots Slots (--parallel).\n"
        "# TYPE gemfa_slots gauge\ngemfa_slots %d\n"
        "# HELP gemfa_decode_steps_total Batched decode steps.\n"
        "# TYPE gemfa_decode_steps_total counter\ngemfa_decode_steps_total %lld\n"
        "# HELP gemfa_generation_tokens_per_second Generated tokens per second of decode time.\n"
        "# TYPE gemfa_generation_tokens_per_second gauge\ngemfa_generation_tokens_per_second %.3f\n",
        s.prompt_tokens, s.cached_tokens, s.generated_tokens, s.queued, s.busy, s.slots, s.steps,
        s.busy_seconds > 0 ? (double)s.generated_tokens / s.busy_seconds : 0.0);
    srv_buf_printf(&b,
        "# HELP gemfa_step_seconds_total Scheduler time: decode (the batched decode of generate steps),\n"
        "# sample (sampling, detokenizing, stop strings, handing text to the HTTP threads), prefill (prompt chunks).\n"
        "# TYPE gemfa_step_seconds_total counter\n"
        "gemfa_step_seconds_total{part=\"decode\"} %.6f\n"
        "gemfa_step_seconds_total{part=\"sample\"} %.6f\n"
        "gemfa_step_seconds_total{part=\"prefill\"} %.6f\n"
        "# HELP gemfa_decode_rows_total Sessions advanced by decode steps (rows / steps = mean batch).\n"
        "# TYPE gemfa_decode_rows_total counter\ngemfa_decode_rows_total %lld\n"
        "# HELP gemfa_prefill_tokens_total Prompt tokens decoded (not taken from a cache).\n"
        "# TYPE gemfa_prefill_tokens_total counter\ngemfa_prefill_tokens_total %lld\n",
        s.decode_seconds, s.sample_seconds, s.prefill_seconds, s.step_rows, s.prefill_tokens);
    if (b.oom || !b.data)
        return simple_error(c, cs, 500, "server_error", NULL, "out of memory");
    enum MHD_Result ok = send_buf(c, cs, 200, "text/plain; version=0.0.4", b.data, b.len, MHD_RESPMEM_MUST_FREE);
    return ok;
}

static enum MHD_Result route(srv_http *h, struct MHD_Connection *c, conn *cs, const char *url,
                             const char *method)
{
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    int post = strcmp(method, "POST") == 0;
    if (strncmp(url, "/v1/", 4) == 0 && !authorized(h, c))
        return simple_error(c, cs, 401, "invalid_request_error", "invalid_api_key",
                            "missing or wrong API key (send 'Authorization: Bearer KEY')");
    if (cs->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", h->o.body_limit);
        return simple_error(c, cs, 413, "invalid_request_error", "body_too_large", msg);
    }
    struct { const char *path; int post; } known[] = {
        {"/", 0}, {"/health", 0}, {"/metrics", 0}, {"/v1/models", 0},
        {"/v1/chat/completions", 1}, {"/v1/completions", 1}, {"/tokenize", 1}, {"/detokenize", 1},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(url, known[i].path) != 0)
            continue;
        if (known[i].post ? !post : !get)
            return simple_error(c, cs, 405, "invalid_request_error", "method_not_allowed",
                                known[i].post ? "use POST" : "use GET");
        switch (i) {
        case 0:
            return send_buf(c, cs, 200, "text/html; charset=utf-8", (const char *)srv_page_html,
                            srv_page_html_len, MHD_RESPMEM_PERSISTENT);
        case 1: {
            srv_stats s;
            srv_sched_stats(h->sched, &s);
            srv_buf b = {0};
#ifdef SRV_HAVE_TRUNCATE
            const char *reuse = "common_prefix";
#else
            const char *reuse = "whole_cache";
#endif
            srv_buf_printf(&b, "{\"status\":\"ok\",\"slots\":%d,\"busy\":%d,\"queued\":%d,"
                               "\"prefix_reuse\":\"%s\"}", s.slots, s.busy, s.queued, reuse);
            return send_json(c, cs, 200, &b);
        }
        case 2:
            return metrics(h, c, cs);
        case 3: {
            srv_buf b = {0};
            srv_buf_puts(&b, "{\"object\":\"list\",\"data\":[{\"id\":");
            srv_buf_json_str(&b, srv_model_name, strlen(srv_model_name));
            srv_buf_puts(&b, ",\"object\":\"model\",\"created\":0,\"owned_by\":\"gemfa\"}]}");
            return send_json(c, cs, 200, &b);
        }
        case 4:
        case 5:
            return completion(h, c, cs, i == 4);
        default: {
            srv_error e;
            const char *body = cs->body.data ? cs->body.data : "";
            char *out = i == 6 ? srv_tokenize(h->model, body, cs->body.len, &e)
                               : srv_detokenize(h->model, body, cs->body.len, &e);
            if (!out)
                return send_error(c, cs, &e);
            return send_buf(c, cs, 200, "application/json", out, strlen(out), MHD_RESPMEM_MUST_FREE);
        }
        }
    }
    return simple_error(c, cs, 404, "invalid_request_error", "not_found", "no such endpoint");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    srv_http *h = cls;
    conn *cs = *con_cls;
    (void)version;
    if (!cs) {
        if (!(cs = calloc(1, sizeof *cs)))
            return MHD_NO;
        cs->t0 = cli_now();
        snprintf(cs->method, sizeof cs->method, "%s", method);
        snprintf(cs->path, sizeof cs->path, "%s", url);
        *con_cls = cs;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > h->o.body_limit)
            cs->too_large = 1;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!cs->too_large && cs->body.len + *upload_size > h->o.body_limit) {
            cs->too_large = 1;
            srv_buf_free(&cs->body);
        }
        if (!cs->too_large)
            srv_buf_put(&cs->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (cs->body.oom)
        return simple_error(c, cs, 500, "server_error", NULL, "out of memory");
    return route(h, c, cs, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    srv_http *h = cls;
    conn *cs = *con_cls;
    (void)c;
    if (!cs)
        return;
    int status = cs->status ? cs->status : 499;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && status == 200)
        status = 499;
    if (status >= 100 && status < N_STATUS)
        atomic_fetch_add(&h->by_status[status], 1);
    double ms = (cli_now() - cs->t0) * 1000;
    pthread_mutex_lock(&h->log_mu);
    if (h->o.json_log) {
        srv_buf b = {0};
        srv_buf_printf(&b, "{\"time\":%lld,\"method\":", (long long)time(NULL));
        srv_buf_json_str(&b, cs->method, strlen(cs->method));
        srv_buf_puts(&b, ",\"path\":");
        srv_buf_json_str(&b, cs->path, strlen(cs->path));
        srv_buf_printf(&b, ",\"status\":%d,\"ms\":%.1f}\n", status, ms);
        if (b.data)
            fputs(b.data, stderr);
        srv_buf_free(&b);
    } else {
        /* the path is printed with control characters replaced */
        char path[96];
        size_t i = 0;
        for (; cs->path[i] && i + 1 < sizeof path; i++)
            path[i] = (unsigned char)cs->path[i] < 0x20 || cs->path[i] == 0x7F ? '?' : cs->path[i];
        path[i] = '\0';
        fprintf(stderr, "gemfa serve: %s %s %d %.1f ms\n", cs->method, path, status, ms);
    }
    pthread_mutex_unlock(&h->log_mu);
    srv_buf_free(&cs->body);
    free(cs);
    *con_cls = NULL;
}

srv_http *srv_http_start(int fd, const gemfa_model *m, srv_sched *sched, const srv_http_options *o)
{
    srv_http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->model = m;
    h->sched = sched;
    h->o = *o;
    pthread_mutex_init(&h->log_mu, NULL);
    h->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD |
                                MHD_USE_ITC,
                            0, NULL, NULL, on_request, h,
                            MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_CONNECTION_TIMEOUT, o->timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, o->max_connections,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                            MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_END);
    if (!h->d) {
        pthread_mutex_destroy(&h->log_mu);
        free(h);
        return NULL;
    }
    return h;
}

void srv_http_quiesce(srv_http *h)
{
    if (h) {
        int fd = MHD_quiesce_daemon(h->d);
        if (fd >= 0)
            close(fd);
    }
}

void srv_http_stop(srv_http *h)
{
    if (!h)
        return;
    /* let the streams send their last (error) event before the sockets close */
    for (int i = 0; i < 300 && atomic_load(&h->streams) > 0; i++)
        usleep(10 * 1000);
    MHD_stop_daemon(h->d);
    pthread_mutex_destroy(&h->log_mu);
    free(h);
}
