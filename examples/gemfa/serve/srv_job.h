/* srv_job.h — one completion request as it travels from an HTTP thread to
 * the scheduler thread and back: the parsed request (read-only once
 * submitted) and the output the scheduler appends under the job's lock. */
#ifndef GEMFA_SRV_JOB_H
#define GEMFA_SRV_JOB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "../cli_sampling.h"
#include "gemfa.h"
#include "srv_buf.h"

#define SRV_MAX_STOP 4
#define SRV_MAX_TOP_LOGPROBS 20

/* One generated token's log-probabilities (of the model's distribution,
 * before temperature and penalties). */
typedef struct srv_logprob {
    int32_t id;
    float logprob;
    int n_top;
    int32_t top_id[SRV_MAX_TOP_LOGPROBS];
    float top_lp[SRV_MAX_TOP_LOGPROBS];
} srv_logprob;

typedef struct srv_params {
    cli_sampling sampling;  /* has_seed always set */
    int32_t *bias_ids;      /* logit_bias */
    float *bias_vals;
    size_t n_bias;
    long max_tokens;        /* already capped by the context */
    char *stop[SRV_MAX_STOP];
    size_t stop_len[SRV_MAX_STOP];
    int n_stop;
    int logprobs;           /* record srv_logprob per token */
    int top_logprobs;       /* 0..SRV_MAX_TOP_LOGPROBS */
    int stream, include_usage;
    void *constraint;       /* gemfa_constraint * (response_format json), owned by the job */
} srv_params;

typedef enum srv_finish { SRV_RUNNING = 0, SRV_STOP, SRV_LENGTH, SRV_ERROR, SRV_CANCELLED } srv_finish;

typedef struct srv_job {
    /* request: set before submission, then read-only */
    int chat;               /* chat.completion (1) or text_completion (0) */
    int32_t *prompt;
    size_t n_prompt;
    srv_params p;
    char id[48];
    long long created;
    double t_submit;        /* monotonic seconds */

    /* output, under mu; cv signalled on every change */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_buf text;           /* generated text (stop strings cut off) */
    size_t text_ready;      /* bytes of `text` that may be shown (the rest may begin a stop string) */
    srv_logprob *lps;       /* one per generated token when p.logprobs */
    size_t n_lps, cap_lps;
    size_t n_completion;    /* tokens sampled */
    size_t n_cached;        /* prompt tokens reused from a slot's cache */
    double t_first;         /* monotonic time of the first token, 0 before */
    srv_finish finish;
    char error[256];
    int own_stop;           /* job_append matches p.stop itself (no library matcher) */

    atomic_int cancelled;   /* set by the HTTP side: client gone */
    atomic_int refs;        /* HTTP side + scheduler */
    struct srv_job *next;   /* queue link (scheduler lock) */
} srv_job;

srv_job *srv_job_new(void);
/* Drops one reference; the last frees the job. */
void srv_job_release(srv_job *j);

#endif
