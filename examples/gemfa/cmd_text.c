/* cmd_text.c — `gemfa tokenize | detokenize | template`: JSON Lines in on
 * stdin, one JSON object out per input line.  The model is loaded
 * vocabulary-only, so a directory holding just tokenizer.json (and
 * tokenizer_config.json) is enough.  A bad line gets {"error": "..."} and the
 * run goes on; exit 0 once all input was read, 1 on a fatal error (the model
 * does not load, output fails), 2 on a usage error.
 *
 * `template` uses the library's internal renderer (text/chat_template.h)
 * because content lists with image/audio items have no public form yet. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_json.h"
#include "commands.h"
#include "core/json.h"
#include "text/chat_template.h"

/* Only the vocabulary is loaded and output is always JSON: -t, --weights
 * and --json are accepted, for scripts that pass them to every subcommand,
 * and change nothing. */
#define CLI_VOCAB_NOTE \
    "(-t, --weights and --json are accepted and ignored: only the vocabulary is\n" \
    "loaded, and the output is always JSON Lines.)\n"

static const char tokenize_usage[] =
    "usage: gemfa tokenize [-m DIR] [--no-bos] [--no-special]\n"
    "\n"
    "Reads JSON Lines {\"text\": \"...\"} on stdin and writes {\"ids\": [...]} per line,\n"
    "exactly as the Hugging Face tokenizer encodes (other fields are ignored).\n"
    "A bad line gets {\"error\": \"...\"} and the run goes on.\n"
    "\n"
    "options:\n"
    "  --no-bos               do not prepend <bos>\n"
    "  --no-special           special-token text such as <start_of_turn> stays plain text\n"
    CLI_VOCAB_HELP CLI_VOCAB_NOTE;

static const char detokenize_usage[] =
    "usage: gemfa detokenize [-m DIR] [--skip-special]\n"
    "\n"
    "Reads JSON Lines {\"ids\": [...]} on stdin and writes {\"text\": \"...\"} per line.\n"
    "A bad line (not JSON, an id outside the vocabulary) gets {\"error\": \"...\"}.\n"
    "\n"
    "options:\n"
    "  --skip-special         leave out special tokens (<bos>, <end_of_turn>, ...)\n"
    CLI_VOCAB_HELP CLI_VOCAB_NOTE;

static const char template_usage[] =
    "usage: gemfa template [-m DIR]\n"
    "\n"
    "Reads JSON Lines {\"messages\": [{\"role\": ..., \"content\": ...}, ...],\n"
    "\"add_generation_prompt\": true|false} (default true) and writes\n"
    "{\"text\": <the Gemma 3n chat rendering>, \"ids\": [...]} per line.  A content is a\n"
    "string or a list of {\"type\": \"text\", \"text\": ...}, {\"type\": \"image\"} and\n"
    "{\"type\": \"audio\"} items.  Bad lines (roles out of order, ...) get {\"error\": ...}.\n"
    "\n"
    "options:\n" CLI_VOCAB_HELP CLI_VOCAB_NOTE;

/* What a line handler reports: 0 written, or an error message for the line. */
typedef int (*line_fn)(const gemfa_model *m, const gf_json *rec, unsigned flags, char *err,
                       size_t cap);

static int fail_line(char *err, size_t cap, const char *what)
{
    snprintf(err, cap, "%s", what);
    return -1;
}

static int fail_status(char *err, size_t cap, gemfa_status st)
{
    snprintf(err, cap, "%s: %s", gemfa_status_name(st), gemfa_last_error());
    return -1;
}

static int tokenize_line(const gemfa_model *m, const gf_json *rec, unsigned flags, char *err,
                         size_t cap)
{
    const gf_json *text = gf_json_get(rec, "text");
    if (!text || text->type != GF_JSON_STRING)
        return fail_line(err, cap, "the record needs a \"text\" string");
    size_t n = 0;
    gemfa_status st = gemfa_tokenize(m, text->str, text->len, flags, NULL, 0, &n);
    if (st != GEMFA_OK && st != GEMFA_ERR_BUFFER_TOO_SMALL)
        return fail_status(err, cap, st);
    int32_t *ids = malloc((n + 1) * sizeof *ids);
    if (!ids)
        return fail_line(err, cap, "out of memory");
    st = gemfa_tokenize(m, text->str, text->len, flags, ids, n, &n);
    if (st != GEMFA_OK) {
        free(ids);
        return fail_status(err, cap, st);
    }
    fputs("{\"ids\":", stdout);
    cli_json_ids(stdout, ids, n);
    fputs("}\n", stdout);
    free(ids);
    return 0;
}

static int detokenize_line(const gemfa_model *m, const gf_json *rec, unsigned flags, char *err,
                           size_t cap)
{
    const gf_json *list = gf_json_get(rec, "ids");
    if (!list || list->type != GF_JSON_ARRAY)
        return fail_line(err, cap, "the record needs an \"ids\" list");
    int32_t *ids = malloc((list->len + 1) * sizeof *ids);
    if (!ids)
        return fail_line(err, cap, "out of memory");
    for (size_t i = 0; i < list->len; i++) {
        int64_t v;
        if (!gf_json_as_int(list->items[i], &v) || v < INT32_MIN || v > INT32_MAX) {
            free(ids);
            snprintf(err, cap, "ids[%zu] is not a 32-bit integer", i);
            return -1;
        }
        ids[i] = (int32_t)v;
    }
    size_t len = 0;
    gemfa_status st = gemfa_detokenize(m, ids, list->len, flags, NULL, 0, &len);
    char *text = NULL;
    if (st == GEMFA_ERR_BUFFER_TOO_SMALL) {
        text = malloc(len + 1);
        st = text ? gemfa_detokenize(m, ids, list->len, flags, text, len + 1, &len)
                  : GEMFA_ERR_OUT_OF_MEMORY;
    }
    free(ids);
    if (st != GEMFA_OK) {
        free(text);
        return fail_status(err, cap, st);
    }
    fputs("{\"text\":", stdout);
    cli_json_string(stdout, text, len);
    fputs("}\n", stdout);
    free(text);
    return 0;
}

/* Fills msg from one JSON message; parts (caller frees) for list content. */
static int read_message(const gf_json *j, size_t i, gf_chat_message *msg, char *err, size_t cap)
{
    const gf_json *role = gf_json_get(j, "role");
    const gf_json *content = gf_json_get(j, "content");
    if (!role || role->type != GF_JSON_STRING || strlen(role->str) != role->len) {
        snprintf(err, cap, "messages[%zu] needs a \"role\" string", i);
        return -1;
    }
    msg->role = role->str;
    if (content && content->type == GF_JSON_STRING) {
        msg->content = content->str;
        msg->content_len = content->len;
        return 0;
    }
    if (!content || content->type != GF_JSON_ARRAY) {
        snprintf(err, cap, "messages[%zu].content must be a string or a list", i);
        return -1;
    }
    gf_chat_part *parts = calloc(content->len + 1, sizeof *parts);
    if (!parts)
        return fail_line(err, cap, "out of memory");
    msg->is_list = 1;
    msg->parts = parts;
    msg->n_parts = content->len;
    for (size_t k = 0; k < content->len; k++) {
        const gf_json *item = content->items[k];
        if (!item || item->type != GF_JSON_OBJECT) {
            snprintf(err, cap, "messages[%zu].content[%zu] is not an object", i, k);
            return -1;
        }
        const gf_json *type = gf_json_get(item, "type");
        const gf_json *text = gf_json_get(item, "text");
        const char *t = type && type->type == GF_JSON_STRING ? type->str : "";
        parts[k].type = strcmp(t, "text") == 0    ? GF_CHAT_PART_TEXT
                        : strcmp(t, "image") == 0 ? GF_CHAT_PART_IMAGE
                        : strcmp(t, "audio") == 0 ? GF_CHAT_PART_AUDIO
                                                  : GF_CHAT_PART_OTHER;
        if (parts[k].type == GF_CHAT_PART_TEXT && text) {
            if (text->type != GF_JSON_STRING) {
                snprintf(err, cap, "messages[%zu].content[%zu].text is not a string", i, k);
                return -1;
            }
            parts[k].text = text->str;
            parts[k].len = text->len;
        }
    }
    return 0;
}

static int template_line(const gemfa_model *m, const gf_json *rec, unsigned flags, char *err,
                         size_t cap)
{
    (void)flags;
    const gf_json *list = gf_json_get(rec, "messages");
    const gf_json *gen = gf_json_get(rec, "add_generation_prompt");
    int add_gen = 1;
    if (!list || list->type != GF_JSON_ARRAY)
        return fail_line(err, cap, "the record needs a \"messages\" list");
    if (gen && !gf_json_as_bool(gen, &add_gen))
        return fail_line(err, cap, "\"add_generation_prompt\" must be true or false");
    const gf_text *t = NULL;
    gemfa_status st = gf_model_text(m, &t);
    if (st != GEMFA_OK)
        return fail_status(err, cap, st);
    gf_chat_message *msgs = calloc(list->len + 1, sizeof *msgs);
    if (!msgs)
        return fail_line(err, cap, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < list->len && rc == 0; i++)
        rc = read_message(list->items[i], i, &msgs[i], err, cap);
    gf_chat_render_out out = {0};
    gf_ids ids = {0};
    if (rc == 0) {
        st = gf_chat_render(t, msgs, list->len, add_gen, &out);
        if (st == GEMFA_OK)
            st = gf_chat_encode(t, &out, 0, &ids);
        if (st != GEMFA_OK)
            rc = fail_status(err, cap, st);
    }
    if (rc == 0) {
        fputs("{\"text\":", stdout);
        cli_json_string(stdout, out.text.data, out.text.len);
        fputs(",\"ids\":", stdout);
        cli_json_ids(stdout, ids.data, ids.len);
        fputs("}\n", stdout);
    }
    gf_ids_free(&ids);
    gf_chat_render_out_free(&out);
    for (size_t i = 0; i < list->len; i++)
        free((void *)msgs[i].parts);
    free(msgs);
    return rc;
}

/* Reads stdin line by line and answers each. */
static int run_lines(const gemfa_model *m, line_fn fn, unsigned flags)
{
    char *line = NULL, err[1200];
    size_t cap = 0, line_no = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        line_no++;
        size_t n = (size_t)len;
        if (n && line[n - 1] == '\n')
            n--;
        char what[64];
        snprintf(what, sizeof what, "line %zu", line_no);
        gf_json *rec = NULL;
        gemfa_status st = gf_json_parse(line, n, what, &rec);
        int rc;
        if (st != GEMFA_OK)
            rc = fail_line(err, sizeof err, gemfa_last_error());
        else if (rec->type != GF_JSON_OBJECT)
            rc = fail_line(err, sizeof err, "the record is not a JSON object");
        else
            rc = fn(m, rec, flags, err, sizeof err);
        gf_json_free(rec);
        if (rc != 0) {
            fputs("{\"error\":", stdout);
            cli_json_string(stdout, err, strlen(err));
            fputs("}\n", stdout);
        }
        /* answer each line at once, so the CLI works as a pipe coprocess */
        if (fflush(stdout) != 0)
            break;
    }
    free(line);
    if (ferror(stdin) || ferror(stdout)) {
        fprintf(stderr, "gemfa: %s failed\n", ferror(stdin) ? "reading stdin" : "writing stdout");
        return CLI_ERROR;
    }
    return CLI_OK;
}

typedef struct text_option {
    const char *name;
    unsigned bit; /* set (or, with `clear`, cleared) in flags */
    int clear;
} text_option;

static int run(int argc, char **argv, const char *usage, const text_option *opts, size_t n_opts,
               unsigned flags, line_fn fn)
{
    cli_common c = {0};
    for (int i = 1; i < argc;) {
        int r = cli_common_option(&c, argc, argv, &i);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        size_t k = 0;
        while (k < n_opts && strcmp(argv[i], opts[k].name) != 0)
            k++;
        if (k == n_opts)
            return cli_usage_error(argv[0], "unexpected argument '%s'", argv[i]);
        flags = opts[k].clear ? flags & ~opts[k].bit : flags | opts[k].bit;
        i++;
    }
    if (cli_handle_help(&c, usage))
        return CLI_OK;
    gemfa_model *m = NULL;
    int rc = cli_load_model(&c, 1, &m);
    if (rc != CLI_OK)
        return rc;
    int has_tokenizer = 0;
    int64_t v = 0;
    if (gemfa_model_get(m, GEMFA_PROP_HAS_TOKENIZER, &v) == GEMFA_OK)
        has_tokenizer = v != 0;
    if (!has_tokenizer) {
        fprintf(stderr, "gemfa %s: %s has no tokenizer.json\n", argv[0], cli_model_dir(&c));
        gemfa_model_free(m);
        return CLI_ERROR;
    }
    rc = run_lines(m, fn, flags);
    gemfa_model_free(m);
    return rc;
}

int cmd_tokenize(int argc, char **argv)
{
    static const text_option opts[] = {{"--no-bos", GEMFA_TOKENIZE_ADD_BOS, 1},
                                       {"--no-special", GEMFA_TOKENIZE_PARSE_SPECIAL, 1}};
    return run(argc, argv, tokenize_usage, opts, 2, GEMFA_TOKENIZE_DEFAULT, tokenize_line);
}

int cmd_detokenize(int argc, char **argv)
{
    static const text_option opts[] = {{"--skip-special", GEMFA_DETOKENIZE_SKIP_SPECIAL, 0}};
    return run(argc, argv, detokenize_usage, opts, 1, 0, detokenize_line);
}

int cmd_template(int argc, char **argv)
{
    return run(argc, argv, template_usage, NULL, 0, 0, template_line);
}
