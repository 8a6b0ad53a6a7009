#define _GNU_SOURCE /* memmem */
/* tokenizer_config.c — the chat side of a checkpoint directory: the chat
 * template (chat_template.jinja, else tokenizer_config.json's
 * "chat_template", as transformers reads them) and the bos_token text the
 * template writes.  libgemfa renders the Gemma 3n format natively; the
 * template text only tells whether that is what the checkpoint expects. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/status.h"
#include "text/json_pick.h"
#include "text/tokenizer.h"

#define CONFIG_MAX_BYTES ((size_t)256 << 20)

/* A token written as "<bos>" or as {"content": "<bos>", ...}. */
static const gf_json *token_text(const gf_json *j)
{
    if (j && j->type == GF_JSON_OBJECT)
        j = gf_json_get(j, "content");
    return j && j->type == GF_JSON_STRING ? j : NULL;
}

/* tokenizer_config.json's chat_template: a string, or a list of
 * {"name", "template"} of which "default" is the one used. */
static const gf_json *config_template(const gf_json *j)
{
    if (j && j->type == GF_JSON_ARRAY) {
        for (size_t i = 0; i < j->len; i++) {
            const gf_json *name = gf_json_get(j->items[i], "name");
            if (name && name->type == GF_JSON_STRING && strcmp(name->str, "default") == 0)
                j = gf_json_get(j->items[i], "template");
        }
    }
    return j && j->type == GF_JSON_STRING ? j : NULL;
}

static int looks_like_gemma(const char *s, size_t len)
{
    static const char *const marks[] = {"<start_of_turn>", "<end_of_turn>", "first_user_prefix"};
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
        if (!memmem(s, len, marks[i], strlen(marks[i])))
            return 0;
    return 1;
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

gemfa_status gf_chat_info_load(gf_chat_info *c, const char *dir)
{
    memset(c, 0, sizeof *c);
    char *path = gf_path_join(dir, "tokenizer_config.json");
    char *jinja_path = gf_path_join(dir, "chat_template.jinja");

    gf_json *picked[2] = {NULL, NULL};
    char *data = NULL, *jinja = NULL;
    size_t len = 0, jinja_len = 0;
    gemfa_status st = GEMFA_OK;
    if (!path || !jinja_path)
        st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
    if (st == GEMFA_OK && file_exists(path)) {
        st = gf_read_file(path, CONFIG_MAX_BYTES, &data, &len);
        if (st == GEMFA_OK) {
            static const char *const keys[] = {"bos_token", "chat_template"};
            st = gf_json_pick(data, len, path, keys, 2, picked);
        }
    }
    if (st == GEMFA_OK && file_exists(jinja_path))
        st = gf_read_file(jinja_path, CONFIG_MAX_BYTES, &jinja, &jinja_len);
    if (st != GEMFA_OK)
        goto done;

    const gf_json *bos = token_text(picked[0]);
    c->bos = bos ? gf_strndup(bos->str, bos->len) : gf_strndup("<bos>", 5);
    c->bos_len = bos ? bos->len : 5;
    if (!c->bos) {
        st = gf_error(GEMFA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        goto done;
    }
    const char *source = NULL, *tpl = NULL;
    size_t tpl_len = 0;
    const gf_json *from_config = config_template(picked[1]);
    if (jinja) {
        source = jinja_path;
        tpl = jinja;
        tpl_len = jinja_len;
    } else if (from_config) {
        source = path;
        tpl = from_config->str;
        tpl_len = from_config->len;
    }
    c->has_template = tpl != NULL;
    c->gemma_like = tpl && looks_like_gemma(tpl, tpl_len);
    if (!tpl)
        gf_log(GEMFA_LOG_INFO, "%s: no chat template found; chats use the Gemma 3n format", dir);
    else if (!c->gemma_like)
        gf_log(GEMFA_LOG_WARN, "%s: the chat template does not look like a Gemma 3/3n template; "
               "libgemfa renders the Gemma 3n format anyway", source);
done:
    gf_json_free(picked[0]);
    gf_json_free(picked[1]);
    gf_free(data);
    gf_free(jinja);
    gf_free(path);
    gf_free(jinja_path);
    if (st != GEMFA_OK)
        gf_chat_info_free(c);
    return st;
}

void gf_chat_info_free(gf_chat_info *c)
{
    gf_free(c->bos);
    memset(c, 0, sizeof *c);
}
