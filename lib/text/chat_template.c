/* chat_template.c — the Gemma 3n chat format; see chat_template.h. */
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"
#include "text/chat_template.h"
#include "text/utf8.h"

#define ROLE_ERROR "Conversation roles must alternate user/assistant/user/assistant/..."

void gf_chat_render_out_free(gf_chat_render_out *out)
{
    gf_bytes_free(&out->text);
    gf_free(out->spans);
    memset(out, 0, sizeof *out);
}

/* Appends s[0..len) as markup or content (merging with the previous span
 * of the same kind). */
static int put(gf_chat_render_out *o, const char *s, size_t len, int is_content)
{
    if (len == 0)
        return 0;
    size_t start = o->text.len;
    if (gf_bytes_append(&o->text, s, len) != 0)
        return -1;
    if (o->n_spans && o->spans[o->n_spans - 1].is_content == is_content) {
        o->spans[o->n_spans - 1].end = o->text.len;
        return 0;
    }
    if (o->n_spans == o->cap_spans) {
        size_t cap = o->cap_spans ? o->cap_spans * 2 : 16;
        gf_chat_span *p = gf_realloc(o->spans, gf_mul_size(cap, sizeof *p));
        if (!p)
            return -1;
        o->spans = p;
        o->cap_spans = cap;
    }
    o->spans[o->n_spans++] = (gf_chat_span){start, o->text.len, is_content};
    return 0;
}

static int put_trimmed(gf_chat_render_out *o, const char *s, size_t len)
{
    size_t a, b;
    gf_py_strip(s, len, &a, &b);
    return put(o, s + a, b - a, 1);
}

static gemfa_status check_utf8(const char *s, size_t len, size_t msg, const char *what)
{
    size_t bad;
    if (!gf_utf8_valid(s, len, &bad))
        return gf_error(GEMFA_ERR_INVALID_UTF8, "chat template: messages[%zu] %s is not valid "
                        "UTF-8 (byte %zu)", msg, what, bad);
    return GEMFA_OK;
}

static gemfa_status validate(const gf_chat_message *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const gf_chat_message *m = &msgs[i];
        if (!m->role)
            return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "chat template: messages[%zu].role is "
                            "NULL", i);
        gemfa_status st = check_utf8(m->role, strlen(m->role), i, "role");
        if (st == GEMFA_OK && !m->is_list) {
            if (!m->content && m->content_len)
                return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "chat template: messages[%zu]."
                                "content is NULL", i);
            if (m->content)
                st = check_utf8(m->content, m->content_len, i, "content");
        }
        for (size_t k = 0; st == GEMFA_OK && m->is_list && k < m->n_parts; k++) {
            const gf_chat_part *p = &m->parts[k];
            if (p->type == GF_CHAT_PART_TEXT && p->text)
                st = check_utf8(p->text, p->len, i, "content text");
        }
        if (st != GEMFA_OK)
            return st;
    }
    return GEMFA_OK;
}

gemfa_status gf_chat_render(const gf_text *t, const gf_chat_message *msgs, size_t n,
                            int add_generation_prompt, gf_chat_render_out *o)
{
    memset(o, 0, sizeof *o);
    if (n == 0)
        return gf_error(GEMFA_ERR_TEMPLATE, "chat template: no messages");
    gemfa_status st = validate(msgs, n);
    if (st != GEMFA_OK)
        return st;

    const char *prefix = "";
    size_t prefix_len = 0, first = 0;
    if (strcmp(msgs[0].role, "system") == 0) {
        const gf_chat_message *sys = &msgs[0];
        if (!sys->is_list) {
            prefix = sys->content ? sys->content : "";
            prefix_len = sys->content_len;
        } else if (sys->n_parts && sys->parts[0].type == GF_CHAT_PART_TEXT && sys->parts[0].text) {
            prefix = sys->parts[0].text;
            prefix_len = sys->parts[0].len;
        } else {
            /* the template reads messages[0]['content'][0]['text'] */
            return gf_error(GEMFA_ERR_TEMPLATE, "chat template: a system message given as a "
                            "list must start with a text item");
        }
        first = 1;
    }
    for (size_t i = first; i < n; i++)
        if ((strcmp(msgs[i].role, "user") == 0) != ((i - first) % 2 == 0))
            return gf_error(GEMFA_ERR_TEMPLATE, "chat template: " ROLE_ERROR
                            " (messages[%zu] has role '%s')", i, msgs[i].role);

    int rc = put(o, t->chat.bos, t->chat.bos_len, 0);
    for (size_t i = first; i < n && rc == 0; i++) {
        const gf_chat_message *m = &msgs[i];
        const char *role = strcmp(m->role, "assistant") == 0 ? "model" : m->role;
        rc = put(o, "<start_of_turn>", 15, 0);
        if (rc == 0)
            rc = put(o, role, strlen(role), 1);
        if (rc == 0)
            rc = put(o, "\n", 1, 0);
        if (rc == 0 && i == first && first == 1) {
            rc = put(o, prefix, prefix_len, 1);
            if (rc == 0)
                rc = put(o, "\n\n", 2, 1);
        }
        if (!m->is_list) {
            if (rc == 0 && m->content)
                rc = put_trimmed(o, m->content, m->content_len);
        } else {
            for (size_t k = 0; k < m->n_parts && rc == 0; k++) {
                const gf_chat_part *p = &m->parts[k];
                if (p->type == GF_CHAT_PART_TEXT && p->text)
                    rc = put_trimmed(o, p->text, p->len);
                else if (p->type == GF_CHAT_PART_IMAGE)
                    rc = put(o, "<image_soft_token>", 18, 0);
                else if (p->type == GF_CHAT_PART_AUDIO)
                    rc = put(o, "<audio_soft_token>", 18, 0);
            }
        }
        if (rc == 0)
            rc = put(o, "<end_of_turn>\n", 14, 0);
    }
    if (rc == 0 && add_generation_prompt)
        rc = put(o, "<start_of_turn>model\n", 21, 0);
    if (rc == 0 && !o->text.data)
        rc = gf_bytes_reserve(&o->text, 0);
    if (rc != 0)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "chat template: out of memory");
    return GEMFA_OK;
}

gemfa_status gf_chat_encode(const gf_text *t, const gf_chat_render_out *r, unsigned flags,
                            gf_ids *out)
{
    if (!(flags & GEMFA_CHAT_INJECTION_SAFE))
        return gf_text_encode(t, r->text.data, r->text.len, GEMFA_TOKENIZE_PARSE_SPECIAL, out);
    for (size_t i = 0; i < r->n_spans; i++) {
        const gf_chat_span *s = &r->spans[i];
        unsigned f = s->is_content ? 0 : GEMFA_TOKENIZE_PARSE_SPECIAL;
        gemfa_status st = gf_text_encode(t, r->text.data + s->start, s->end - s->start, f, out);
        if (st != GEMFA_OK)
            return st;
    }
    return GEMFA_OK;
}
