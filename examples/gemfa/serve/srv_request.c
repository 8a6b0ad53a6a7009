/* srv_request.c — request validation.  Every field OpenAI defines that the
 * server cannot honour (n > 1, tools, images, ...) is refused with 400,
 * never silently ignored; unknown extra fields are ignored as OpenAI's
 * compatible servers do. */
#include "srv_request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "srv_buf.h"

#define MAX_MESSAGES 4096

static int fail(srv_error *e, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(srv_error *e, const char *param, const char *code, const char *fmt, ...)
{
    va_list ap;
    e->status = 400;
    e->type = "invalid_request_error";
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

static yajl_val get(yajl_val obj, const char *key)
{
    const char *path[] = {key, NULL};
    return yajl_tree_get(obj, path, yajl_t_any);
}

/* Nesting depth of the JSON text (outside strings): yajl's tree builder
 * recurses, so deep nesting is refused before parsing. */
static int too_deep(const char *s, size_t n, int max)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return 1;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 0;
}

static yajl_val parse_body(const char *body, size_t len, srv_error *e)
{
    char errbuf[256];
    if (too_deep(body, len, 32)) {
        fail(e, NULL, NULL, "the JSON body is nested more than 32 levels deep");
        return NULL;
    }
    if (memchr(body, '\0', len)) {
        fail(e, NULL, NULL, "the body contains a NUL byte");
        return NULL;
    }
    if (!srv_utf8_valid(body, len)) {
        fail(e, NULL, NULL, "the body is not valid UTF-8");
        return NULL;
    }
    yajl_val root = yajl_tree_parse(body, errbuf, sizeof errbuf);
    if (!root) {
        /* yajl's message spans lines with a caret; keep its first line */
        errbuf[strcspn(errbuf, "\n")] = '\0';
        fail(e, NULL, NULL, "the body is not valid JSON: %s", errbuf);
        return NULL;
    }
    if (!YAJL_IS_OBJECT(root)) {
        yajl_tree_free(root);
        fail(e, NULL, NULL, "the body must be a JSON object");
        return NULL;
    }
    return root;
}

/* A number field within [lo, hi]; absent or null leaves *out. */
static int num(yajl_val root, const char *key, double lo, double hi, int *has, double *out,
               srv_error *e)
{
    yajl_val v = get(root, key);
    if (!v || YAJL_IS_NULL(v))
        return 0;
    if (!YAJL_IS_NUMBER(v))
        return fail(e, key, "invalid_type", "'%s' must be a number", key);
    double d = YAJL_GET_DOUBLE(v);
    if (!isfinite(d) || d < lo || d > hi)
        return fail(e, key, "invalid_value", "'%s' must be between %g and %g, got %g", key, lo, hi, d);
    *out = d;
    if (has)
        *has = 1;
    return 0;
}

static int integer(yajl_val root, const char *key, long long lo, long long hi, int *has,
                   long long *out, srv_error *e)
{
    yajl_val v = get(root, key);
    if (!v || YAJL_IS_NULL(v))
        return 0;
    if (!YAJL_IS_INTEGER(v))
        return fail(e, key, "invalid_type", "'%s' must be an integer between %lld and %lld", key, lo, hi);
    long long i = YAJL_GET_INTEGER(v);
    if (i < lo || i > hi)
        return fail(e, key, "invalid_value", "'%s' must be between %lld and %lld, got %lld", key, lo, hi, i);
    *out = i;
    if (has)
        *has = 1;
    return 0;
}

static int boolean(yajl_val root, const char *key, int *out, srv_error *e)
{
    yajl_val v = get(root, key);
    if (!v || YAJL_IS_NULL(v))
        return 0;
    if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
        return fail(e, key, "invalid_type", "'%s' must be true or false", key);
    *out = YAJL_IS_TRUE(v);
    return 0;
}

/* Fields that would change the answer in ways this server does not
 * implement. */
static int refuse_unsupported(yajl_val root, int chat, srv_error *e)
{
    long long n = 1;
    if (integer(root, "n", 1, 128, NULL, &n, e) != 0)
        return -1;
    if (n != 1)
        return fail(e, "n", "unsupported_value", "only n = 1 is supported (got %lld)", n);
    yajl_val v;
    static const char *const arrays[] = {"tools", "functions"};
    for (size_t i = 0; i < 2; i++)
        if ((v = get(root, arrays[i])) && !YAJL_IS_NULL(v) &&
            !(YAJL_IS_ARRAY(v) && YAJL_GET_ARRAY(v)->len == 0))
            return fail(e, arrays[i], "unsupported_parameter", "'%s' (tool calling) is not supported",
                        arrays[i]);
    static const char *const tool_choice[] = {"tool_choice", "function_call"};
    for (size_t i = 0; i < 2; i++)
        if ((v = get(root, tool_choice[i])) && !YAJL_IS_NULL(v) &&
            !(YAJL_IS_STRING(v) && strcmp(v->u.string, "none") == 0))
            return fail(e, tool_choice[i], "unsupported_parameter",
                        "'%s' (tool calling) is not supported", tool_choice[i]);
#ifndef SRV_HAVE_CONSTRAINT
    if ((v = get(root, "response_format")) && !YAJL_IS_NULL(v)) {
        yajl_val t = YAJL_IS_OBJECT(v) ? get(v, "type") : NULL;
        if (!YAJL_IS_STRING(t) || strcmp(t->u.string, "text") != 0)
            return fail(e, "response_format", "unsupported_parameter",
                        "'response_format' other than {\"type\": \"text\"} is not supported");
    }
#endif
    if ((v = get(root, "audio")) && !YAJL_IS_NULL(v))
        return fail(e, "audio", "unsupported_parameter", "audio output is not supported");
    if ((v = get(root, "modalities")) && YAJL_IS_ARRAY(v))
        for (size_t i = 0; i < YAJL_GET_ARRAY(v)->len; i++) {
            yajl_val m = YAJL_GET_ARRAY(v)->values[i];
            if (!YAJL_IS_STRING(m) || strcmp(m->u.string, "text") != 0)
                return fail(e, "modalities", "unsupported_parameter", "only the text modality is supported");
        }
    if (!chat) {
        int echo = 0;
        long long best_of = 1;
        if (boolean(root, "echo", &echo, e) != 0 ||
            integer(root, "best_of", 1, 128, NULL, &best_of, e) != 0)
            return -1;
        if (echo)
            return fail(e, "echo", "unsupported_parameter", "'echo' is not supported");
        if (best_of != 1)
            return fail(e, "best_of", "unsupported_value", "only best_of = 1 is supported");
        if ((v = get(root, "suffix")) && !YAJL_IS_NULL(v))
            return fail(e, "suffix", "unsupported_parameter", "'suffix' is not supported");
    }
    return 0;
}

#ifdef SRV_HAVE_CONSTRAINT
/* Writes a parsed value back as JSON text (numbers as they were written). */
static void to_json(srv_buf *b, yajl_val v)
{
    if (YAJL_IS_STRING(v)) {
        srv_buf_json_str(b, v->u.string, strlen(v->u.string));
    } else if (YAJL_IS_NUMBER(v)) {
        srv_buf_puts(b, v->u.number.r);
    } else if (YAJL_IS_OBJECT(v)) {
        srv_buf_puts(b, "{");
        for (size_t i = 0; i < v->u.object.len; i++) {
            if (i)
                srv_buf_puts(b, ",");
            srv_buf_json_str(b, v->u.object.keys[i], strlen(v->u.object.keys[i]));
            srv_buf_puts(b, ":");
            to_json(b, v->u.object.values[i]);
        }
        srv_buf_puts(b, "}");
    } else if (YAJL_IS_ARRAY(v)) {
        srv_buf_puts(b, "[");
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (i)
                srv_buf_puts(b, ",");
            to_json(b, v->u.array.values[i]);
        }
        srv_buf_puts(b, "]");
    } else {
        srv_buf_puts(b, YAJL_IS_TRUE(v) ? "true" : YAJL_IS_FALSE(v) ? "false" : "null");
    }
}

/* response_format: text, json_object (any JSON value... an object, as
 * OpenAI's JSON mode), json_schema ({"json_schema": {"schema": {...}}}). */
static int parse_response_format(const gemfa_model *m, yajl_val root, srv_params *p, srv_error *e)
{
    yajl_val v = get(root, "response_format");
    if (!v || YAJL_IS_NULL(v))
        return 0;
    yajl_val t = YAJL_IS_OBJECT(v) ? get(v, "type") : NULL;
    if (!YAJL_IS_STRING(t))
        return fail(e, "response_format", "invalid_type", "'response_format' must be an object with a 'type'");
    const char *type = t->u.string;
    srv_buf schema = {0};
    if (strcmp(type, "text") == 0)
        return 0;
    if (strcmp(type, "json_object") == 0) {
        srv_buf_puts(&schema, "{\"type\":\"object\"}");
    } else if (strcmp(type, "json_schema") == 0) {
        yajl_val js = get(v, "json_schema");
        yajl_val sc = YAJL_IS_OBJECT(js) ? get(js, "schema") : NULL;
        if (!YAJL_IS_OBJECT(sc))
            return fail(e, "response_format", "invalid_value",
                        "'response_format.json_schema.schema' must be a JSON Schema object");
        to_json(&schema, sc);
    } else {
        return fail(e, "response_format", "invalid_value",
                    "'response_format.type' must be text, json_object or json_schema");
    }
    gemfa_constraint *c = NULL;
    gemfa_status st = schema.oom ? GEMFA_ERR_OUT_OF_MEMORY
                                 : gemfa_constraint_new_json(m, schema.data, schema.len, &c);
    srv_buf_free(&schema);
    if (st != GEMFA_OK)
        return fail(e, "response_format", st == GEMFA_ERR_UNSUPPORTED ? "unsupported_schema" : "invalid_value",
                    "cannot use this schema: %s", gemfa_last_error());
    p->constraint = c;
    return 0;
}
#endif

static int parse_sampling(const gemfa_model *m, yajl_val root, int chat, srv_params *p, srv_error *e)
{
    cli_sampling *s = &p->sampling;
    cli_sampling_init(s);
    long long ll;
    int has = 0;
    if (num(root, "temperature", 0, 2, &s->has_temp, &s->temp, e) ||
        num(root, "top_p", 0, 1, &s->has_top_p, &s->top_p, e) ||
        num(root, "min_p", 0, 1, &s->has_min_p, &s->min_p, e) ||
        integer(root, "top_k", 0, 1 << 30, &s->has_top_k, &s->top_k, e) ||
        num(root, "presence_penalty", -2, 2, &s->has_penalties, &s->presence, e) ||
        num(root, "frequency_penalty", -2, 2, &s->has_penalties, &s->frequency, e) ||
        num(root, "repetition_penalty", 0, 100, &s->has_penalties, &s->repeat, e))
        return -1;
    if (s->has_top_p && s->top_p == 0)
        return fail(e, "top_p", "invalid_value", "'top_p' must be above 0");
    if (s->repeat == 0)
        return fail(e, "repetition_penalty", "invalid_value", "'repetition_penalty' must be above 0");
    yajl_val v = get(root, "seed");
    if (v && !YAJL_IS_NULL(v)) {
        if (!YAJL_IS_INTEGER(v))
            return fail(e, "seed", "invalid_type", "'seed' must be a 64-bit integer");
        s->seed = (uint64_t)YAJL_GET_INTEGER(v);
    } else {
        /* a fresh seed per request, as a random client would expect */
        FILE *f = fopen("/dev/urandom", "rb");
        if (!f || fread(&s->seed, sizeof s->seed, 1, f) != 1)
            s->seed = (uint64_t)(uintptr_t)p ^ 0x9E3779B97F4A7C15ull;
        if (f)
            fclose(f);
    }
    s->has_seed = 1;

    /* logit_bias: {"token id": bias in [-100, 100]} */
    v = get(root, "logit_bias");
    if (v && !YAJL_IS_NULL(v)) {
        if (!YAJL_IS_OBJECT(v))
            return fail(e, "logit_bias", "invalid_type", "'logit_bias' must be an object of token id -> bias");
        size_t n = YAJL_GET_OBJECT(v)->len;
        if (n > 1024)
            return fail(e, "logit_bias", "invalid_value", "'logit_bias' has more than 1024 entries");
        int64_t vocab = 0;
        gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &vocab);
        p->bias_ids = malloc((n ? n : 1) * sizeof *p->bias_ids);
        p->bias_vals = malloc((n ? n : 1) * sizeof *p->bias_vals);
        if (!p->bias_ids || !p->bias_vals)
            return fail(e, "logit_bias", NULL, "out of memory");
        for (size_t i = 0; i < n; i++) {
            const char *key = YAJL_GET_OBJECT(v)->keys[i];
            yajl_val b = YAJL_GET_OBJECT(v)->values[i];
            char *end;
            long long id = strtoll(key, &end, 10);
            if (!*key || *end || id < 0 || id >= vocab)
                return fail(e, "logit_bias", "invalid_value",
                            "'logit_bias' key '%.40s' is not a token id in [0, %lld)", key, (long long)vocab);
            if (!YAJL_IS_NUMBER(b) || !isfinite(YAJL_GET_DOUBLE(b)) || fabs(YAJL_GET_DOUBLE(b)) > 100)
                return fail(e, "logit_bias", "invalid_value", "'logit_bias' values must be numbers in [-100, 100]");
            p->bias_ids[i] = (int32_t)id;
            p->bias_vals[i] = (float)YAJL_GET_DOUBLE(b);
        }
        p->n_bias = n;
    }

    /* stop: a string or up to 4 strings */
    v = get(root, "stop");
    if (v && !YAJL_IS_NULL(v)) {
        yajl_val one[1] = {v};
        yajl_val *items = one;
        size_t n = 1;
        if (YAJL_IS_ARRAY(v)) {
            items = YAJL_GET_ARRAY(v)->values;
            n = YAJL_GET_ARRAY(v)->len;
        }
        if (n > SRV_MAX_STOP)
            return fail(e, "stop", "invalid_value", "'stop' has at most %d strings", SRV_MAX_STOP);
        for (size_t i = 0; i < n; i++) {
            const char *str = YAJL_GET_STRING(items[i]);
            if (!str)
                return fail(e, "stop", "invalid_type", "'stop' must be a string or a list of strings");
            size_t sl = strlen(str);
            if (sl == 0 || sl > 256)
                return fail(e, "stop", "invalid_value", "each 'stop' string must have 1 to 256 bytes");
            if (!(p->stop[p->n_stop] = strdup(str)))
                return fail(e, "stop", NULL, "out of memory");
            p->stop_len[p->n_stop++] = sl;
        }
    }

    /* logprobs: chat has a boolean + top_logprobs, completions an integer */
    if (chat) {
        ll = 0;
        if (boolean(root, "logprobs", &p->logprobs, e) ||
            integer(root, "top_logprobs", 0, SRV_MAX_TOP_LOGPROBS, &has, &ll, e))
            return -1;
        if (has && !p->logprobs && ll > 0)
            return fail(e, "top_logprobs", "invalid_value", "'top_logprobs' needs 'logprobs': true");
        p->top_logprobs = (int)ll;
    } else {
        has = 0;
        ll = 0;
        if (integer(root, "logprobs", 0, 5, &has, &ll, e))
            return -1;
        p->logprobs = has;
        p->top_logprobs = (int)ll;
    }

    int stream = 0, usage = 0;
    if (boolean(root, "stream", &stream, e))
        return -1;
    p->stream = stream;
    v = get(root, "stream_options");
    if (v && !YAJL_IS_NULL(v)) {
        if (!YAJL_IS_OBJECT(v))
            return fail(e, "stream_options", "invalid_type", "'stream_options' must be an object");
        if (boolean(v, "include_usage", &usage, e))
            return -1;
        if (!stream)
            return fail(e, "stream_options", "invalid_value", "'stream_options' needs 'stream': true");
    }
    p->include_usage = usage;
#ifdef SRV_HAVE_CONSTRAINT
    if (parse_response_format(m, root, p, e) != 0)
        return -1;
#endif
    return 0;
}

/* The text of a message's content: a string, or a list of text parts
 * joined with "\n"; images and audio are refused. */
static int content_text(yajl_val c, size_t idx, srv_buf *out, srv_error *e)
{
    char param[48];
    snprintf(param, sizeof param, "messages[%zu].content", idx);
    if (YAJL_IS_STRING(c)) {
        srv_buf_puts(out, YAJL_GET_STRING(c));
        return 0;
    }
    if (!YAJL_IS_ARRAY(c))
        return fail(e, param, "invalid_type", "'%s' must be a string or a list of text parts", param);
    for (size_t i = 0; i < YAJL_GET_ARRAY(c)->len; i++) {
        yajl_val part = YAJL_GET_ARRAY(c)->values[i];
        yajl_val type = YAJL_IS_OBJECT(part) ? get(part, "type") : NULL;
        const char *t = YAJL_GET_STRING(type);
        if (!t)
            return fail(e, param, "invalid_type", "each part of '%s' must be an object with a 'type'", param);
        if (strcmp(t, "image_url") == 0 || strcmp(t, "input_image") == 0 || strcmp(t, "image") == 0)
            return fail(e, param, "unsupported_content", "images are not supported (text only)");
        if (strcmp(t, "text") != 0)
            return fail(e, param, "unsupported_content", "content part type '%.40s' is not supported (text only)", t);
        const char *text = YAJL_GET_STRING(get(part, "text"));
        if (!text)
            return fail(e, param, "invalid_type", "a text part of '%s' needs a string 'text'", param);
        if (i)
            srv_buf_puts(out, "\n");
        srv_buf_puts(out, text);
    }
    return 0;
}

static int only_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\n\v\f", s[i]))
            return 0;
    return 1;
}

static int chat_prompt(const gemfa_model *m, yajl_val root, int32_t **ids, size_t *n_ids,
                       srv_error *e)
{
    yajl_val msgs = get(root, "messages");
    if (!msgs)
        return fail(e, "messages", "missing_required_parameter", "'messages' is required");
    if (!YAJL_IS_ARRAY(msgs))
        return fail(e, "messages", "invalid_type", "'messages' must be a list of messages");
    size_t n = YAJL_GET_ARRAY(msgs)->len;
    if (n == 0)
        return fail(e, "messages", "invalid_value", "'messages' must not be empty");
    if (n > MAX_MESSAGES)
        return fail(e, "messages", "invalid_value", "'messages' has more than %d messages", MAX_MESSAGES);
    gemfa_message *gm = calloc(n, sizeof *gm);
    srv_buf *texts = calloc(n, sizeof *texts);
    int rc = -1;
    if (!gm || !texts) {
        fail(e, "messages", NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        yajl_val msg = YAJL_GET_ARRAY(msgs)->values[i];
        char param[48];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!YAJL_IS_OBJECT(msg)) {
            fail(e, param, "invalid_type", "'%s' must be an object with 'role' and 'content'", param);
            goto done;
        }
        const char *role = YAJL_GET_STRING(get(msg, "role"));
        if (!role) {
            fail(e, param, "invalid_type", "'%s.role' must be a string", param);
            goto done;
        }
        if (strcmp(role, "developer") == 0)
            role = "system";
        if (strcmp(role, "tool") == 0 || strcmp(role, "function") == 0) {
            fail(e, param, "unsupported_value", "role '%s' (tool calling) is not supported", role);
            goto done;
        }
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant")) {
            fail(e, param, "invalid_value", "'%s.role' must be system, developer, user or assistant, got '%.40s'",
                 param, role);
            goto done;
        }
        yajl_val tc = get(msg, "tool_calls");
        if (tc && !YAJL_IS_NULL(tc)) {
            fail(e, param, "unsupported_parameter", "'tool_calls' in messages is not supported");
            goto done;
        }
        yajl_val c = get(msg, "content");
        if (!c || YAJL_IS_NULL(c)) {
            fail(e, param, "missing_required_parameter", "'%s.content' is required", param);
            goto done;
        }
        if (content_text(c, i, &texts[i], e) != 0)
            goto done;
        if (texts[i].oom) {
            fail(e, param, NULL, "out of memory");
            goto done;
        }
        if (strcmp(role, "user") == 0 && only_space(texts[i].data ? texts[i].data : "", texts[i].len)) {
            fail(e, param, "invalid_value", "'%s.content' is empty", param);
            goto done;
        }
        if (strcmp(role, "system") == 0 && i > 0) {
            fail(e, param, "invalid_value", "a system message may only come first");
            goto done;
        }
        gm[i] = (gemfa_message){role, texts[i].data ? texts[i].data : "", texts[i].len};
    }
    size_t need = 0;
    gemfa_status st = gemfa_chat_tokenize(m, gm, n, 1, GEMFA_CHAT_INJECTION_SAFE, NULL, 0, &need);
    if (st == GEMFA_ERR_BUFFER_TOO_SMALL) {
        *ids = malloc((need ? need : 1) * sizeof **ids);
        st = *ids ? gemfa_chat_tokenize(m, gm, n, 1, GEMFA_CHAT_INJECTION_SAFE, *ids, need, n_ids)
                  : GEMFA_ERR_OUT_OF_MEMORY;
    }
    if (st == GEMFA_ERR_TEMPLATE) {
        fail(e, "messages", "invalid_value", "%s", gemfa_last_error());
        goto done;
    }
    if (st != GEMFA_OK) {
        fail(e, "messages", NULL, "cannot render the messages: %s: %s", gemfa_status_name(st),
             gemfa_last_error());
        goto done;
    }
    rc = 0;
done:
    for (size_t i = 0; texts && i < n; i++)
        srv_buf_free(&texts[i]);
    free(texts);
    free(gm);
    if (rc != 0) {
        free(*ids);
        *ids = NULL;
    }
    return rc;
}

static int text_prompt(const gemfa_model *m, yajl_val root, int32_t **ids, size_t *n_ids, srv_error *e)
{
    yajl_val v = get(root, "prompt");
    if (YAJL_IS_ARRAY(v) && YAJL_GET_ARRAY(v)->len == 1)
        v = YAJL_GET_ARRAY(v)->values[0];
    const char *text = YAJL_GET_STRING(v);
    if (!v)
        return fail(e, "prompt", "missing_required_parameter", "'prompt' is required");
    if (!text)
        return fail(e, "prompt", "invalid_type", "'prompt' must be a string (or a list of one string)");
    if (!*text)
        return fail(e, "prompt", "invalid_value", "'prompt' is empty");
    size_t need = 0;
    gemfa_status st = gemfa_tokenize(m, text, GEMFA_NUL_TERMINATED, GEMFA_TOKENIZE_DEFAULT, NULL, 0, &need);
    if (st == GEMFA_ERR_BUFFER_TOO_SMALL) {
        *ids = malloc((need ? need : 1) * sizeof **ids);
        st = *ids ? gemfa_tokenize(m, text, GEMFA_NUL_TERMINATED, GEMFA_TOKENIZE_DEFAULT, *ids, need, n_ids)
                  : GEMFA_ERR_OUT_OF_MEMORY;
    }
    if (st != GEMFA_OK) {
        free(*ids);
        *ids = NULL;
        return fail(e, "prompt", NULL, "cannot tokenize the prompt: %s", gemfa_last_error());
    }
    return 0;
}

srv_job *srv_request_parse(const gemfa_model *m, size_t ctx, int chat, const char *body,
                           size_t len, srv_error *err)
{
    memset(err, 0, sizeof *err);
    yajl_val root = parse_body(body, len, err);
    if (!root)
        return NULL;
    srv_job *j = srv_job_new();
    if (!j) {
        yajl_tree_free(root);
        fail(err, NULL, NULL, "out of memory");
        err->status = 500;
        return NULL;
    }
    j->chat = chat;
    yajl_val model = get(root, "model");
    long long max_tokens = 0, mct = 0;
    int has_max = 0, has_mct = 0;
    if (model && !YAJL_IS_STRING(model)) {
        fail(err, "model", "invalid_type", "'model' must be a string");
        goto bad;
    }
    if (refuse_unsupported(root, chat, err) || parse_sampling(m, root, chat, &j->p, err) ||
        integer(root, "max_tokens", 1, 1 << 30, &has_max, &max_tokens, err) ||
        integer(root, "max_completion_tokens", 1, 1 << 30, &has_mct, &mct, err))
        goto bad;
    if (has_mct)
        max_tokens = mct, has_max = 1;
    if ((chat ? chat_prompt(m, root, &j->prompt, &j->n_prompt, err)
              : text_prompt(m, root, &j->prompt, &j->n_prompt, err)) != 0)
        goto bad;
    if (j->n_prompt >= ctx) {
        fail(err, chat ? "messages" : "prompt", "context_length_exceeded",
             "the prompt has %zu tokens; this server's context is %zu tokens per request "
             "(prompt + answer)", j->n_prompt, ctx);
        goto bad;
    }
    long room = (long)(ctx - j->n_prompt);
    j->p.max_tokens = has_max && max_tokens < room ? (long)max_tokens : room;
    yajl_tree_free(root);
    return j;
bad:
    yajl_tree_free(root);
    srv_job_release(j);
    return NULL;
}

char *srv_tokenize(const gemfa_model *m, const char *body, size_t len, srv_error *err)
{
    memset(err, 0, sizeof *err);
    yajl_val root = parse_body(body, len, err);
    if (!root)
        return NULL;
    const char *text = YAJL_GET_STRING(get(root, "text"));
    if (!text)
        text = YAJL_GET_STRING(get(root, "content")); /* llama.cpp's name */
    int add_bos = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    srv_buf out = {0};
    if (!text) {
        fail(err, "text", "invalid_type", "'text' must be a string");
        goto done;
    }
    if (boolean(root, "add_bos", &add_bos, err))
        goto done;
    unsigned flags = GEMFA_TOKENIZE_PARSE_SPECIAL | (add_bos ? GEMFA_TOKENIZE_ADD_BOS : 0);
    gemfa_status st = gemfa_tokenize(m, text, GEMFA_NUL_TERMINATED, flags, NULL, 0, &n);
    if (st == GEMFA_ERR_BUFFER_TOO_SMALL) {
        ids = malloc(n * sizeof *ids);
        st = ids ? gemfa_tokenize(m, text, GEMFA_NUL_TERMINATED, flags, ids, n, &n) : GEMFA_ERR_OUT_OF_MEMORY;
    }
    if (st != GEMFA_OK) {
        fail(err, "text", NULL, "cannot tokenize: %s", gemfa_last_error());
        goto done;
    }
    srv_buf_puts(&out, "{\"ids\":[");
    for (size_t i = 0; i < n; i++)
        srv_buf_printf(&out, i ? ",%d" : "%d", ids[i]);
    srv_buf_puts(&out, "]}");
done:
    free(ids);
    yajl_tree_free(root);
    if (out.oom) {
        srv_buf_free(&out);
        fail(err, NULL, NULL, "out of memory");
    }
    return out.data;
}

char *srv_detokenize(const gemfa_model *m, const char *body, size_t len, srv_error *err)
{
    memset(err, 0, sizeof *err);
    yajl_val root = parse_body(body, len, err);
    if (!root)
        return NULL;
    yajl_val v = get(root, "ids");
    if (!v)
        v = get(root, "tokens"); /* llama.cpp's name */
    int32_t *ids = NULL;
    char *text = NULL;
    srv_buf out = {0};
    if (!YAJL_IS_ARRAY(v)) {
        fail(err, "ids", "invalid_type", "'ids' must be a list of token ids");
        goto done;
    }
    size_t n = YAJL_GET_ARRAY(v)->len;
    int64_t vocab = 0;
    gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &vocab);
    ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) {
        fail(err, NULL, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        yajl_val x = YAJL_GET_ARRAY(v)->values[i];
        if (!YAJL_IS_INTEGER(x) || YAJL_GET_INTEGER(x) < 0 || YAJL_GET_INTEGER(x) >= vocab) {
            fail(err, "ids", "invalid_value", "ids[%zu] is not a token id in [0, %lld)", i, (long long)vocab);
            goto done;
        }
        ids[i] = (int32_t)YAJL_GET_INTEGER(x);
    }
    size_t tl = 0;
    gemfa_status st = gemfa_detokenize(m, ids, n, 0, NULL, 0, &tl);
    if (st == GEMFA_ERR_BUFFER_TOO_SMALL) {
        text = malloc(tl + 1);
        st = text ? gemfa_detokenize(m, ids, n, 0, text, tl + 1, &tl) : GEMFA_ERR_OUT_OF_MEMORY;
    }
    if (st != GEMFA_OK) {
        fail(err, "ids", NULL, "cannot detokenize: %s", gemfa_last_error());
        goto done;
    }
    srv_buf_puts(&out, "{\"text\":");
    srv_buf_json_str(&out, text ? text : "", text ? tl : 0);
    srv_buf_puts(&out, "}");
done:
    free(ids);
    free(text);
    yajl_tree_free(root);
    if (out.oom) {
        srv_buf_free(&out);
        fail(err, NULL, NULL, "out of memory");
    }
    return out.data;
}
