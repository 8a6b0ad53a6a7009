/* srv_request.h — turns an OpenAI-style JSON request body into a job,
 * checking every field; a bad request gets an OpenAI error (400). */
#ifndef GEMFA_SRV_REQUEST_H
#define GEMFA_SRV_REQUEST_H

#include <stddef.h>

#include "gemfa.h"
#include "srv_job.h"

typedef struct srv_error {
    int status;          /* HTTP status */
    char message[512];
    const char *type;    /* "invalid_request_error", ... */
    char param[64];      /* "" = null */
    const char *code;    /* NULL = null */
} srv_error;

/* Parses a /v1/chat/completions (chat = 1) or /v1/completions body into a
 * new job (prompt tokenized, sampling validated, max_tokens capped by
 * ctx).  Returns the job, or NULL with *err filled in. */
srv_job *srv_request_parse(const gemfa_model *m, size_t ctx, int chat, const char *body,
                           size_t len, srv_error *err);

/* /tokenize and /detokenize: the response JSON in *out, or NULL and *err. */
char *srv_tokenize(const gemfa_model *m, const char *body, size_t len, srv_error *err);
char *srv_detokenize(const gemfa_model *m, const char *body, size_t len, srv_error *err);

#endif
