/* cli_gen.h — the generation loop shared by `generate` and `chat`:
 * sample → stop? → stream text → decode, until a stop id, the token limit,
 * a full context or an interrupt. */
#ifndef GEMFA_CLI_GEN_H
#define GEMFA_CLI_GEN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli_out.h"
#include "gemfa.h"

typedef struct cli_text {
    char *data; /* NUL-terminated */
    size_t len, cap;
} cli_text;

/* Most alternatives --logprobs reports per token (OpenAI's limit). */
#define CLI_MAX_TOP_LOGPROBS 20

/* Log-probabilities of one sampled token under the raw logits. */
typedef struct cli_logprob {
    int32_t id;
    float logprob;
    size_t n_top;
    int32_t top_ids[CLI_MAX_TOP_LOGPROBS];
    float top_logprobs[CLI_MAX_TOP_LOGPROBS];
} cli_logprob;

/* Optional extras of a generation (a zeroed struct: none). */
typedef struct cli_gen_opts {
    gemfa_stop_matcher *stop; /* stop strings over the shown text (NULL: none); reset here */
    int logprobs;             /* record a cli_logprob per sampled id */
    size_t top_logprobs;      /* alternatives per token, <= CLI_MAX_TOP_LOGPROBS */
    gemfa_speculator *spec;   /* speculative decoding on the session (NULL: plain); not with
                                 logprobs.  Left reset, the session as after the plain loop */
} cli_gen_opts;

typedef struct cli_gen_result {
    int32_t *ids;        /* sampled ids, the stop id included when one ended the run */
    size_t n_ids, cap_ids;
    char *text;          /* the streamed answer (stop id left out; special tokens only
                            with show_special), NUL-terminated */
    size_t text_len;
    cli_text shown;      /* holds `text` */
    cli_text full;       /* the answer with its special tokens, whatever was shown */
    size_t n_decoded;    /* tokens decoded after the prompt */
    double decode_s;     /* seconds spent sampling and decoding them */
    int hit_eog, context_full, interrupted;
    int write_failed;    /* writing `out` failed (the status is then GEMFA_ERR_IO) */
    int hit_stop;        /* a stop string ended the run: `text` ends before it (`full`
                            holds everything decoded) */
    cli_logprob *logprobs; /* with opts->logprobs: one per entry of ids */
    size_t n_logprobs, cap_logprobs;
} cli_gen_result;

/* Generates up to n_predict tokens after the session's last logits.  Text is
 * written to `out` (may be NULL) as it completes, never splitting a UTF-8
 * character; special tokens (<end_of_image>, ...) are left out of it unless
 * show_special, as Hugging Face's skip_special_tokens and the Python
 * binding's generate do.  `out` is finished (cli_out_finish) at the end.  `interrupt` (may be NULL) is polled between tokens.  Returns
 * GEMFA_OK, or the status of a failed library call (result still valid for
 * what was produced).  Free the result with cli_gen_result_free. */
gemfa_status cli_generate(const gemfa_model *model, gemfa_session *session, gemfa_sampler *smp,
                          long n_predict, int show_special, cli_out *out,
                          volatile sig_atomic_t *interrupt,
                          cli_gen_result *res);
/* cli_generate with extras (opts may be NULL): stop strings, logprobs. */
gemfa_status cli_generate_opts(const gemfa_model *model, gemfa_session *session,
                               gemfa_sampler *smp, long n_predict, int show_special,
                               cli_out *out, volatile sig_atomic_t *interrupt,
                               const cli_gen_opts *opts, cli_gen_result *res);
void cli_gen_result_free(cli_gen_result *res);

/* Reports a failed cli_generate on stderr. */
void cli_gen_report(const cli_gen_result *res, gemfa_status st);

/* Seconds on a monotonic clock. */
double cli_now(void);

#endif
