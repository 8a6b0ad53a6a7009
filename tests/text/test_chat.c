/* test_chat.c — the Gemma 3n chat template against chat.expected.jsonl
 * (rendered by @huggingface/jinja and Python jinja2 from the real template),
 * on the tiny and the real tokenizer; the injection-safe mode; the
 * template-detection warning; trimming and role rules. */
#include <stdatomic.h>
#include <unistd.h>

#include "text/chat_template.h"
#include "text_helper.h"

/* Converts a JSON message list into gf_chat_message (pointers into j). */
static gf_chat_message *messages_of(const gf_json *list, size_t *n)
{
    cr_assert(list && list->type == GF_JSON_ARRAY);
    gf_chat_message *msgs = calloc(list->len + 1, sizeof *msgs);
    for (size_t i = 0; i < list->len; i++) {
        const gf_json *m = list->items[i];
        msgs[i].role = tt_str(m, "role")->str;
        const gf_json *c = gf_json_get(m, "content");
        if (c->type == GF_JSON_STRING) {
            msgs[i].content = c->str;
            msgs[i].content_len = c->len;
            continue;
        }
        cr_assert_eq(c->type, GF_JSON_ARRAY);
        gf_chat_part *parts = calloc(c->len + 1, sizeof *parts);
        for (size_t k = 0; k < c->len; k++) {
            const char *type = tt_str(c->items[k], "type")->str;
            const gf_json *text = gf_json_get(c->items[k], "text");
            parts[k].type = strcmp(type, "text") == 0    ? GF_CHAT_PART_TEXT
                            : strcmp(type, "image") == 0 ? GF_CHAT_PART_IMAGE
                            : strcmp(type, "audio") == 0 ? GF_CHAT_PART_AUDIO
                                                         : GF_CHAT_PART_OTHER;
            if (text) {
                parts[k].text = text->str;
                parts[k].len = text->len;
            }
        }
        msgs[i].is_list = 1;
        msgs[i].parts = parts;
        msgs[i].n_parts = c->len;
    }
    *n = list->len;
    return msgs;
}

static void free_messages(gf_chat_message *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((void *)msgs[i].parts);
    free(msgs);
}

static int has_list_content(const gf_chat_message *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (msgs[i].is_list)
            return 1;
    return 0;
}

static size_t count(const gf_ids *v, int32_t id)
{
    size_t c = 0;
    for (size_t i = 0; i < v->len; i++)
        c += v->data[i] == id;
    return c;
}

static void run_chat(int real)
{
    char dir[4096], path[4096];
    gemfa_model *m = tt_load(tt_tokenizer_dir(real, dir, sizeof dir));
    const gf_text *t = NULL;
    cr_assert_eq(gf_model_text(m, &t), GEMFA_OK);
    snprintf(path, sizeof path, "%s/tokenizer/%s", tt_data(),
             real ? "chat.expected.jsonl" : "tiny.chat.expected.jsonl");
    size_t n_recs;
    gf_json **recs = tt_jsonl(path, &n_recs);
    cr_assert_geq(n_recs, 13);
    size_t n_errors = 0, n_lists = 0;
    for (size_t r = 0; r < n_recs; r++) {
        const gf_json *rec = recs[r];
        const char *id = tt_str(rec, "id")->str;
        size_t n;
        gf_chat_message *msgs = messages_of(gf_json_get(rec, "messages"), &n);
        int gen = 0;
        cr_assert(gf_json_as_bool(gf_json_get(rec, "add_generation_prompt"), &gen));
        gf_chat_render_out out;
        gemfa_status st = gf_chat_render(t, msgs, n, gen, &out);
        const gf_json *error = gf_json_get(rec, "error");
        if (error) {
            n_errors++;
            cr_expect_eq(st, GEMFA_ERR_TEMPLATE, "%s: expected a template error", id);
            cr_expect(strstr(gemfa_last_error(), error->str) != NULL,
                      "%s: error '%s' does not say '%s'", id, gemfa_last_error(), error->str);
        } else {
            cr_assert_eq(st, GEMFA_OK, "%s: %s", id, gemfa_last_error());
            const gf_json *want = tt_str(rec, "rendered");
            cr_expect(out.text.len == want->len && memcmp(out.text.data, want->str,
                                                          want->len) == 0,
                      "%s: rendered\n%s\nexpected\n%s", id, out.text.data, want->str);
            size_t n_want;
            int32_t *ids_want = tt_ids(gf_json_get(rec, "ids"), &n_want);
            gf_ids ids = {0}, safe = {0};
            cr_assert_eq(gf_chat_encode(t, &out, 0, &ids), GEMFA_OK);
            cr_expect(ids.len == n_want && !memcmp(ids.data, ids_want, n_want * 4),
                      "%s: chat ids differ from the reference", id);
            cr_assert_eq(gf_chat_encode(t, &out, GEMFA_CHAT_INJECTION_SAFE, &safe), GEMFA_OK);
            if (strstr(id, "special-strings")) {
                /* the typed markers stay text: one user turn, one prompt */
                int32_t sot = gf_text_find(t, "<start_of_turn>", 15);
                int32_t eot = gf_text_find(t, "<end_of_turn>", 13);
                cr_expect_eq(count(&safe, sot), 2, "%s: injected <start_of_turn>", id);
                cr_expect_eq(count(&safe, eot), 1, "%s: injected <end_of_turn>", id);
                cr_expect_gt(count(&ids, eot), 1, "%s: HF mode parses the typed marker", id);
            } else {
                cr_expect(safe.len == n_want && !memcmp(safe.data, ids_want, n_want * 4),
                          "%s: injection-safe ids differ although nothing is injected", id);
            }
            /* exactly one BOS either way */
            cr_expect_eq(count(&ids, 2), 1, "%s", id);
            cr_expect_eq(count(&safe, 2), 1, "%s", id);
            gf_ids_free(&ids);
            gf_ids_free(&safe);
            free(ids_want);
        }
        gf_chat_render_out_free(&out);

        /* the public calls agree (they take string contents only) */
        if (has_list_content(msgs, n)) {
            n_lists++;
        } else {
            gemfa_message *pm = calloc(n + 1, sizeof *pm);
            for (size_t i = 0; i < n; i++)
                pm[i] = (gemfa_message){msgs[i].role, msgs[i].content, msgs[i].content_len};
            size_t len = 0;
            st = gemfa_apply_chat_template(m, pm, n, gen, NULL, 0, &len);
            if (error) {
                cr_expect_eq(st, GEMFA_ERR_TEMPLATE, "%s", id);
            } else {
                cr_expect_eq(st, GEMFA_ERR_BUFFER_TOO_SMALL, "%s", id);
                char *buf = malloc(len + 1);
                cr_expect_eq(gemfa_apply_chat_template(m, pm, n, gen, buf, len + 1, &len),
                             GEMFA_OK);
                cr_expect_str_eq(buf, tt_str(rec, "rendered")->str, "%s", id);
                free(buf);
                size_t n_want, n_ids;
                int32_t *ids_want = tt_ids(gf_json_get(rec, "ids"), &n_want);
                int32_t *ids = malloc((n_want + 1) * sizeof *ids);
                cr_expect_eq(gemfa_chat_tokenize(m, pm, n, gen, 0, ids, n_want, &n_ids),
                             GEMFA_OK, "%s: %s", id, gemfa_last_error());
                cr_expect(n_ids == n_want && !memcmp(ids, ids_want, n_want * 4), "%s", id);
                free(ids);
                free(ids_want);
            }
            free(pm);
        }
        free_messages(msgs, n);
    }
    cr_expect_geq(n_errors, 1);
    cr_expect_geq(n_lists, 1);
    tt_jsonl_free(recs, n_recs);
    gemfa_model_free(m);
}

Test(chat, tiny_golden) { run_chat(0); }
Test(chat, real_golden, .timeout = 60) { run_chat(1); }

static gemfa_model *tiny(void)
{
    char dir[4096];
    return tt_load(tt_tokenizer_dir(0, dir, sizeof dir));
}

static char *render(const gemfa_model *m, const gemfa_message *msgs, size_t n, int gen,
                    gemfa_status *st)
{
    static char buf[4096];
    size_t len = 0;
    *st = gemfa_apply_chat_template(m, msgs, n, gen, buf, sizeof buf, &len);
    return buf;
}

Test(chat, spec_example_and_trim)
{
    gemfa_model *m = tiny();
    gemfa_status st;
    gemfa_message ex[] = {{"system", "S", GEMFA_NUL_TERMINATED},
                          {"user", "  Hi \n", GEMFA_NUL_TERMINATED}};
    cr_expect_str_eq(render(m, ex, 2, 1, &st),
                     "<bos><start_of_turn>user\nS\n\nHi<end_of_turn>\n<start_of_turn>model\n");
    cr_expect_eq(st, GEMFA_OK);
    /* Python's strip(): U+001C and U+0085 are whitespace, U+FEFF and ZWNJ are not */
    gemfa_message tr[] = {{"user", "\x1c\xc2\x85 \xe2\x80\x8c\xd8\xb3 \xef\xbb\xbf\t",
                           GEMFA_NUL_TERMINATED}};
    cr_expect_str_eq(render(m, tr, 1, 0, &st),
                     "<bos><start_of_turn>user\n\xe2\x80\x8c\xd8\xb3 \xef\xbb\xbf<end_of_turn>\n");
    /* the system text is not trimmed; "model" and other roles are kept */
    gemfa_message sys[] = {{"system", " s\n", GEMFA_NUL_TERMINATED},
                           {"user", "u", GEMFA_NUL_TERMINATED},
                           {"model", "a", GEMFA_NUL_TERMINATED},
                           {"user", "\0x", 2}};
    char *out = render(m, sys, 4, 0, &st);
    cr_expect_eq(st, GEMFA_OK);
    cr_expect(memcmp(out, "<bos><start_of_turn>user\n s\n\n\nu<end_of_turn>\n"
                          "<start_of_turn>model\na<end_of_turn>\n<start_of_turn>user\n\0x"
                          "<end_of_turn>\n", 99) == 0);
    gemfa_model_free(m);
}

Test(chat, role_errors)
{
    gemfa_model *m = tiny();
    gemfa_status st;
    gemfa_message two_users[] = {{"user", "a", 1}, {"user", "b", 1}};
    render(m, two_users, 2, 1, &st);
    cr_expect_eq(st, GEMFA_ERR_TEMPLATE);
    cr_expect(strstr(gemfa_last_error(), "Conversation roles must alternate") != NULL);
    gemfa_message starts_with_model[] = {{"assistant", "a", 1}};
    render(m, starts_with_model, 1, 1, &st);
    cr_expect_eq(st, GEMFA_ERR_TEMPLATE);
    gemfa_message late_system[] = {{"user", "a", 1}, {"assistant", "b", 1}, {"system", "c", 1}};
    render(m, late_system, 3, 1, &st);
    cr_expect_eq(st, GEMFA_ERR_TEMPLATE);
    render(m, NULL, 0, 1, &st);
    cr_expect_eq(st, GEMFA_ERR_TEMPLATE);
    gemfa_message system_only[] = {{"system", "ignored", GEMFA_NUL_TERMINATED}};
    cr_expect_str_eq(render(m, system_only, 1, 1, &st), "<bos><start_of_turn>model\n");
    cr_expect_eq(st, GEMFA_OK);
    gemfa_model_free(m);
}

Test(chat, argument_errors)
{
    gemfa_model *m = tiny();
    char buf[64];
    size_t len = 7;
    int32_t ids[4];
    gemfa_message ok[] = {{"user", "hi", 2}};
    gemfa_message null_role[] = {{NULL, "hi", 2}};
    gemfa_message null_content[] = {{"user", NULL, 3}};
    gemfa_message bad_utf8[] = {{"user", "a\xff", 2}};
    cr_expect_eq(gemfa_apply_chat_template(NULL, ok, 1, 1, buf, 64, &len),
                 GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_apply_chat_template(m, NULL, 1, 1, buf, 64, &len),
                 GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_apply_chat_template(m, ok, 1, 1, buf, 64, NULL),
                 GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_apply_chat_template(m, ok, 1, 1, NULL, 64, &len),
                 GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_apply_chat_template(m, null_role, 1, 1, buf, 64, &len),
                 GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_apply_chat_template(m, null_content, 1, 1, buf, 64, &len),
                 GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_apply_chat_template(m, bad_utf8, 1, 1, buf, 64, &len),
                 GEMFA_ERR_INVALID_UTF8);
    cr_expect(strstr(gemfa_last_error(), "byte 1") != NULL, "%s", gemfa_last_error());
    cr_expect_eq(len, 7, "failed calls leave *len alone");
    cr_expect_eq(gemfa_apply_chat_template(m, ok, 1, 1, buf, 10, &len),
                 GEMFA_ERR_BUFFER_TOO_SMALL);
    cr_expect_eq(len, strlen("<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"));
    cr_expect_eq(gemfa_chat_tokenize(m, ok, 1, 1, 0x80, ids, 4, &len),
                 GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_chat_tokenize(m, ok, 1, 1, 0, ids, 4, &len), GEMFA_ERR_BUFFER_TOO_SMALL);
    cr_expect_gt(len, 4);
    cr_expect_eq(gemfa_chat_tokenize(m, ok, 1, 1, 0, NULL, 0, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_model_free(m);
}

Test(chat, list_content_items)
{
    gemfa_model *m = tiny();
    const gf_text *t = NULL;
    cr_assert_eq(gf_model_text(m, &t), GEMFA_OK);
    gf_chat_part user_parts[] = {{GF_CHAT_PART_TEXT, " a ", 3},
                                 {GF_CHAT_PART_IMAGE, NULL, 0},
                                 {GF_CHAT_PART_AUDIO, NULL, 0},
                                 {GF_CHAT_PART_OTHER, NULL, 0},
                                 {GF_CHAT_PART_TEXT, NULL, 0},
                                 {GF_CHAT_PART_TEXT, "\nb", 2}};
    gf_chat_part sys_parts[] = {{GF_CHAT_PART_TEXT, " S ", 3}, {GF_CHAT_PART_TEXT, "ignored", 7}};
    gf_chat_message msgs[] = {{.role = "system", .is_list = 1, .parts = sys_parts, .n_parts = 2},
                              {.role = "user", .is_list = 1, .parts = user_parts, .n_parts = 6}};
    gf_chat_render_out out;
    cr_assert_eq(gf_chat_render(t, msgs, 2, 0, &out), GEMFA_OK, "%s", gemfa_last_error());
    cr_expect_str_eq(out.text.data, "<bos><start_of_turn>user\n S \n\na<image_soft_token>"
                                    "<audio_soft_token>b<end_of_turn>\n");
    gf_chat_render_out_free(&out);
    /* the template reads the system list's first item's text */
    gf_chat_part image_first[] = {{GF_CHAT_PART_IMAGE, NULL, 0}};
    msgs[0].parts = image_first;
    msgs[0].n_parts = 1;
    cr_expect_eq(gf_chat_render(t, msgs, 2, 0, &out), GEMFA_ERR_TEMPLATE);
    gf_chat_render_out_free(&out);
    gemfa_model_free(m);
}

/* ---- which template the directory has ---- */

static atomic_int n_warnings, n_infos;
static char last_log[1024];

static void on_log(void *user, gemfa_log_level level, const char *msg)
{
    (void)user;
    if (level == GEMFA_LOG_WARN)
        n_warnings++;
    if (level == GEMFA_LOG_INFO)
        n_infos++;
    snprintf(last_log, sizeof last_log, "%s", msg);
}

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    cr_assert(a && b);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        fwrite(buf, 1, n, b);
    fclose(a);
    fclose(b);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

Test(chat, template_detection)
{
    char dir[] = "/tmp/gemfa-chat-XXXXXX", from[4096], p[4096];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(from, sizeof from, "%s/tokenizer/tiny/tokenizer.json", tt_data());
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    copy_file(from, p);
    gemfa_set_log_callback(on_log, NULL, GEMFA_LOG_DEBUG);

    /* no template at all: an info line, Gemma format */
    n_warnings = n_infos = 0;
    gemfa_model *m = tt_load(dir);
    cr_expect_eq(n_warnings, 0);
    cr_expect_eq(n_infos, 1);
    gemfa_status st;
    gemfa_message hi[] = {{"user", "hi", 2}};
    cr_expect_str_eq(render(m, hi, 1, 0, &st), "<bos><start_of_turn>user\nhi<end_of_turn>\n");
    gemfa_model_free(m);

    /* a ChatML template in chat_template.jinja wins over tokenizer_config.json */
    snprintf(from, sizeof from, "%s/tokenizer/tiny/tokenizer_config.json", tt_data());
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    copy_file(from, p);
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
    write_file(p, "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
                  "{% endfor %}");
    n_warnings = n_infos = 0;
    m = tt_load(dir);
    cr_expect_eq(n_warnings, 1);
    cr_expect(strstr(last_log, "does not look like a Gemma") != NULL, "%s", last_log);
    cr_expect_str_eq(render(m, hi, 1, 0, &st), "<bos><start_of_turn>user\nhi<end_of_turn>\n");
    gemfa_model_free(m);

    /* the Gemma 3n template from tokenizer_config.json: silent */
    unlink(p);
    n_warnings = n_infos = 0;
    m = tt_load(dir);
    cr_expect_eq(n_warnings + n_infos, 0, "%s", last_log);
    gemfa_model_free(m);

    gemfa_set_log_callback(NULL, NULL, GEMFA_LOG_WARN);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    unlink(p);
    rmdir(dir);
}
