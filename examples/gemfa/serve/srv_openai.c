/* srv_openai.c — JSON bodies in OpenAI's shapes. */
#include "srv_openai.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *srv_model_name = "gemfa";

void srv_openai_error(srv_buf *b, const srv_error *e)
{
    srv_buf_puts(b, "{\"error\":{\"message\":");
    srv_buf_json_str(b, e->message, strlen(e->message));
    srv_buf_printf(b, ",\"type\":\"%s\",\"param\":", e->type ? e->type : "invalid_request_error");
    if (e->param[0])
        srv_buf_json_str(b, e->param, strlen(e->param));
    else
        srv_buf_puts(b, "null");
    srv_buf_puts(b, ",\"code\":");
    if (e->code)
        srv_buf_json_str(b, e->code, strlen(e->code));
    else
        srv_buf_puts(b, "null");
    srv_buf_puts(b, "}}");
}

const char *srv_finish_name(srv_finish f)
{
    switch (f) {
    case SRV_STOP: return "stop";
    case SRV_LENGTH: return "length";
    default: return "error";
    }
}

/* A token's text and bytes for logprobs (a byte-fallback piece "<0xE2>"
 * is the byte itself, shown as text only when it is a whole character). */
static void token_fields(srv_buf *b, const gemfa_model *m, int32_t id)
{
#ifdef SRV_HAVE_TOKEN_BYTES
    char raw[256];
    size_t rl = 0;
    if (gemfa_token_bytes(m, id, raw, sizeof raw, &rl) == GEMFA_OK) {
        srv_buf_puts(b, "\"token\":");
        srv_buf_json_str(b, raw, rl); /* a lone byte of a character shows as U+FFFD */
        srv_buf_puts(b, ",\"bytes\":[");
        for (size_t i = 0; i < rl; i++)
            srv_buf_printf(b, i ? ",%u" : "%u", (unsigned char)raw[i]);
        srv_buf_puts(b, "]");
        return;
    }
#endif
    char piece[256], text[256];
    size_t pl = 0, tl = 0;
    unsigned byte;
    int is_byte = gemfa_token_piece(m, id, piece, sizeof piece, &pl) == GEMFA_OK && pl == 6 &&
                  sscanf(piece, "<0x%2X>", &byte) == 1;
    if (gemfa_detokenize(m, &id, 1, 0, text, sizeof text, &tl) != GEMFA_OK)
        tl = 0;
    srv_buf_puts(b, "\"token\":");
    srv_buf_json_str(b, text, tl);
    srv_buf_puts(b, ",\"bytes\":[");
    if (is_byte)
        srv_buf_printf(b, "%u", byte);
    else
        for (size_t i = 0; i < tl; i++)
            srv_buf_printf(b, i ? ",%u" : "%u", (unsigned char)text[i]);
    srv_buf_puts(b, "]");
}

static void lp_number(srv_buf *b, float v)
{
    if (isfinite(v))
        srv_buf_printf(b, "%.6g", (double)v);
    else
        srv_buf_puts(b, "-9999.0"); /* JSON has no -inf; OpenAI uses -9999 */
}

/* Chat format: {"content": [{token, logprob, bytes, top_logprobs}...]} */
static void chat_logprobs(srv_buf *b, const gemfa_model *m, const srv_job *j, size_t from, size_t to)
{
    srv_buf_puts(b, "{\"content\":[");
    for (size_t i = from; i < to; i++) {
        const srv_logprob *lp = &j->lps[i];
        srv_buf_puts(b, i > from ? ",{" : "{");
        token_fields(b, m, lp->id);
        srv_buf_puts(b, ",\"logprob\":");
        lp_number(b, lp->logprob);
        srv_buf_puts(b, ",\"top_logprobs\":[");
        for (int t = 0; t < lp->n_top; t++) {
            srv_buf_puts(b, t ? ",{" : "{");
            token_fields(b, m, lp->top_id[t]);
            srv_buf_puts(b, ",\"logprob\":");
            lp_number(b, lp->top_lp[t]);
            srv_buf_puts(b, "}");
        }
        srv_buf_puts(b, "]}");
    }
    srv_buf_puts(b, "]}");
}

/* Legacy completions format: {tokens, token_logprobs, top_logprobs, text_offset} */
static void text_logprobs(srv_buf *b, const gemfa_model *m, const srv_job *j, size_t from, size_t to)
{
    char text[256];
    size_t tl;
    srv_buf_puts(b, "{\"tokens\":[");
    for (size_t i = from; i < to; i++) {
        if (gemfa_detokenize(m, &j->lps[i].id, 1, 0, text, sizeof text, &tl) != GEMFA_OK)
            tl = 0;
        if (i > from)
            srv_buf_puts(b, ",");
        srv_buf_json_str(b, text, tl);
    }
    srv_buf_puts(b, "],\"token_logprobs\":[");
    for (size_t i = from; i < to; i++) {
        if (i > from)
            srv_buf_puts(b, ",");
        lp_number(b, j->lps[i].logprob);
    }
    srv_buf_puts(b, "],\"top_logprobs\":[");
    for (size_t i = from; i < to; i++) {
        srv_buf_puts(b, i > from ? ",{" : "{");
        for (int t = 0; t < j->lps[i].n_top; t++) {
            if (gemfa_detokenize(m, &j->lps[i].top_id[t], 1, 0, text, sizeof text, &tl) != GEMFA_OK)
                tl = 0;
            if (t)
                srv_buf_puts(b, ",");
            srv_buf_json_str(b, text, tl);
            srv_buf_puts(b, ":");
            lp_number(b, j->lps[i].top_lp[t]);
        }
        srv_buf_puts(b, "}");
    }
    srv_buf_puts(b, "]}");
}

static void usage(srv_buf *b, const srv_job *j)
{
    srv_buf_printf(b, "{\"prompt_tokens\":%zu,\"completion_tokens\":%zu,\"total_tokens\":%zu,"
                      "\"prompt_tokens_details\":{\"cached_tokens\":%zu}}",
                   j->n_prompt, j->n_completion, j->n_prompt + j->n_completion, j->n_cached);
}

static void head(srv_buf *b, const srv_job *j, const char *object)
{
    srv_buf_printf(b, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", j->id, object,
                   j->created);
    srv_buf_json_str(b, srv_model_name, strlen(srv_model_name));
    srv_buf_puts(b, ",\"system_fingerprint\":\"gemfa-" GEMFA_VERSION_STRING "\",\"choices\":[{\"index\":0,");
}

void srv_openai_body(srv_buf *b, const gemfa_model *m, const srv_job *j)
{
    head(b, j, j->chat ? "chat.completion" : "text_completion");
    if (j->chat) {
        srv_buf_puts(b, "\"message\":{\"role\":\"assistant\",\"content\":");
        srv_buf_json_str(b, j->text.data ? j->text.data : "", j->text.len);
        srv_buf_puts(b, "},\"logprobs\":");
        if (j->p.logprobs)
            chat_logprobs(b, m, j, 0, j->n_lps);
        else
            srv_buf_puts(b, "null");
    } else {
        srv_buf_puts(b, "\"text\":");
        srv_buf_json_str(b, j->text.data ? j->text.data : "", j->text.len);
        srv_buf_puts(b, ",\"logprobs\":");
        if (j->p.logprobs)
            text_logprobs(b, m, j, 0, j->n_lps);
        else
            srv_buf_puts(b, "null");
    }
    srv_buf_printf(b, ",\"finish_reason\":\"%s\"}],\"usage\":", srv_finish_name(j->finish));
    usage(b, j);
    srv_buf_puts(b, "}");
}

void srv_openai_chunk(srv_buf *b, const gemfa_model *m, const srv_job *j, size_t from, size_t to,
                      size_t lp_from, size_t lp_to, int role, int finish)
{
    srv_buf_puts(b, "data: ");
    head(b, j, j->chat ? "chat.completion.chunk" : "text_completion");
    const char *text = j->text.data ? j->text.data + from : "";
    if (j->chat) {
        srv_buf_puts(b, "\"delta\":{");
        if (role)
            srv_buf_puts(b, "\"role\":\"assistant\",");
        if (role || to > from) {
            srv_buf_puts(b, "\"content\":");
            srv_buf_json_str(b, text, to - from);
        } else if (b->len && b->data[b->len - 1] == ',') {
            b->len--;
        }
        srv_buf_puts(b, "},\"logprobs\":");
        if (j->p.logprobs && lp_to > lp_from)
            chat_logprobs(b, m, j, lp_from, lp_to);
        else
            srv_buf_puts(b, "null");
    } else {
        srv_buf_puts(b, "\"text\":");
        srv_buf_json_str(b, text, to - from);
        srv_buf_puts(b, ",\"logprobs\":");
        if (j->p.logprobs && lp_to > lp_from)
            text_logprobs(b, m, j, lp_from, lp_to);
        else
            srv_buf_puts(b, "null");
    }
    if (finish)
        srv_buf_printf(b, ",\"finish_reason\":\"%s\"}]", srv_finish_name(j->finish));
    else
        srv_buf_puts(b, ",\"finish_reason\":null}]");
    if (j->p.include_usage)
        srv_buf_puts(b, ",\"usage\":null");
    srv_buf_puts(b, "}\n\n");
}

void srv_openai_usage_chunk(srv_buf *b, const srv_job *j)
{
    srv_buf_printf(b, "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", j->id,
                   j->chat ? "chat.completion.chunk" : "text_completion", j->created);
    srv_buf_json_str(b, srv_model_name, strlen(srv_model_name));
    srv_buf_puts(b, ",\"choices\":[],\"usage\":");
    usage(b, j);
    srv_buf_puts(b, "}\n\n");
}
