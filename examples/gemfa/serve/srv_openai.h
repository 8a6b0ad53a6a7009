/* srv_openai.h — OpenAI wire format: completion bodies, stream chunks and
 * error objects. */
#ifndef GEMFA_SRV_OPENAI_H
#define GEMFA_SRV_OPENAI_H

#include "gemfa.h"
#include "srv_buf.h"
#include "srv_job.h"
#include "srv_request.h"

extern const char *srv_model_name; /* the served model's id in responses */

void srv_openai_error(srv_buf *b, const srv_error *e);
/* The whole (non-streamed) response of a finished job; caller holds j->mu. */
void srv_openai_body(srv_buf *b, const gemfa_model *m, const srv_job *j);
/* One SSE event "data: {chunk}\n\n" with text[from..to) and logprobs
 * lps[lp_from..lp_to); role adds the assistant role; finish adds the
 * finish reason.  Caller holds j->mu. */
void srv_openai_chunk(srv_buf *b, const gemfa_model *m, const srv_job *j, size_t from, size_t to,
                      size_t lp_from, size_t lp_to, int role, int finish);
/* The last usage chunk (stream_options.include_usage). */
void srv_openai_usage_chunk(srv_buf *b, const srv_job *j);
const char *srv_finish_name(srv_finish f);

#endif
