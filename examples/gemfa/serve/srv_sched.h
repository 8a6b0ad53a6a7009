/* srv_sched.h — the scheduler: one thread owns the gemfa_context and the
 * slots' sessions; every step it admits queued jobs into free slots,
 * decodes one prompt chunk, then advances every generating slot by one
 * token with a single gemfa_decode_batch. */
#ifndef GEMFA_SRV_SCHED_H
#define GEMFA_SRV_SCHED_H

#include "gemfa.h"
#include "srv_job.h"

typedef struct srv_sched srv_sched;

typedef struct srv_sched_options {
    int n_slots;          /* --parallel */
    long long ctx;        /* tokens per slot */
    int queue_cap;        /* waiting jobs beyond the busy slots */
    int threads;          /* -t */
    int chunk;            /* prompt tokens per step */
    int deterministic;    /* decode slots one by one: results independent of the batch */
    gemfa_kv_type kv_type; /* --kv-type of every slot's session */
} srv_sched_options;

typedef struct srv_stats {
    long long prompt_tokens, cached_tokens, generated_tokens;
    int queued, busy, slots;
    double busy_seconds;  /* time spent in steps that generated tokens */
    long long steps;
    /* where the steps' time goes (the scheduler's own timing, for /metrics) */
    double decode_seconds;   /* gemfa_decode_batch (or the lone decodes) of generate steps */
    double sample_seconds;   /* sampling, detokenizing, stop strings, publishing to the job */
    long long step_rows;     /* sessions advanced, summed over steps (tokens per step = rows/steps) */
    double prefill_seconds;  /* prompt chunks */
    long long prefill_tokens;
} srv_stats;

/* Creates the context and sessions and starts the thread.  Prints the
 * error and returns NULL on failure. */
srv_sched *srv_sched_start(const gemfa_model *m, const srv_sched_options *o);
/* Stops the thread: running and queued jobs end with an error. */
void srv_sched_stop(srv_sched *s);
/* Frees a stopped scheduler (after the HTTP side is gone). */
void srv_sched_free(srv_sched *s);
/* Queues a job (takes a reference).  Returns 0, or -1 when the queue is
 * full (the job is untouched). */
int srv_sched_submit(srv_sched *s, srv_job *j);
/* Wakes the scheduler (a job was cancelled). */
void srv_sched_poke(srv_sched *s);
void srv_sched_stats(srv_sched *s, srv_stats *out);
size_t srv_sched_ctx(const srv_sched *s);

#endif
