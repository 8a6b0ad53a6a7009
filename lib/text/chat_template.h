/* chat_template.h — the Gemma 3n chat format (spec §9.2), rendered natively
 * instead of through a Jinja engine, with the template's exact behaviour:
 *
 *   {{ bos_token }}
 *   system first?  prefix = its text (string, or its first item's "text")
 *                  + "\n\n", NOT trimmed; the message is dropped
 *   each message i: roles must alternate (role == "user") == (i even),
 *                  else "Conversation roles must alternate user/assistant/..."
 *                  "<start_of_turn>" + ("model" if assistant else role) + "\n"
 *                  + (prefix if i == 0) + content + "<end_of_turn>\n"
 *                  content: string -> trimmed (Python str.strip());
 *                           list   -> concatenation of trimmed text items,
 *                                     "<image_soft_token>" / "<audio_soft_token>"
 *   add_generation_prompt: "<start_of_turn>model\n"
 *
 * The renderer also records which output bytes are message content, so
 * the injection-safe tokenization can keep special tokens out of them. */
#ifndef GF_TEXT_CHAT_TEMPLATE_H
#define GF_TEXT_CHAT_TEMPLATE_H

#include <stddef.h>

#include "text/tokenizer.h"

typedef enum gf_chat_part_type {
    GF_CHAT_PART_TEXT,
    GF_CHAT_PART_IMAGE,
    GF_CHAT_PART_AUDIO,
    GF_CHAT_PART_OTHER /* an item type the template ignores */
} gf_chat_part_type;

typedef struct gf_chat_part {
    gf_chat_part_type type;
    const char *text; /* GF_CHAT_PART_TEXT: may be NULL (a missing "text" renders as "") */
    size_t len;
} gf_chat_part;

typedef struct gf_chat_message {
    const char *role; /* NUL-terminated */
    int is_list;      /* content is parts[0..n_parts), else content[0..content_len) */
    const char *content;
    size_t content_len;
    const gf_chat_part *parts;
    size_t n_parts;
} gf_chat_message;

/* A byte range of the rendered text: template markup or message content. */
typedef struct gf_chat_span {
    size_t start, end;
    int is_content;
} gf_chat_span;

typedef struct gf_chat_render_out {
    gf_bytes text;
    gf_chat_span *spans;
    size_t n_spans, cap_spans;
} gf_chat_render_out;

/* Renders messages into out (which the caller frees with
 * gf_chat_render_out_free, also on error).  Errors: INVALID_ARGUMENT (NULL
 * role), INVALID_UTF8, TEMPLATE, OUT_OF_MEMORY. */
gemfa_status gf_chat_render(const gf_text *t, const gf_chat_message *msgs, size_t n,
                            int add_generation_prompt, gf_chat_render_out *out);
void gf_chat_render_out_free(gf_chat_render_out *out);

/* Tokenizes a rendering without adding BOS: as one text with special tokens
 * parsed (HF), or, with GEMFA_CHAT_INJECTION_SAFE, markup with special
 * tokens and content as plain text.  Errors: OUT_OF_MEMORY, FORMAT. */
gemfa_status gf_chat_encode(const gf_text *t, const gf_chat_render_out *r, unsigned flags,
                            gf_ids *out);

#endif
