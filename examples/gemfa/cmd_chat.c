/* cmd_chat.c — `gemfa chat`: a multi-turn conversation that keeps the KV
 * cache between turns.  After every turn the whole conversation is rendered
 * with the chat template; only the ids past what the session already holds
 * are decoded, so the cache always equals what the template renders. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_bidi.h"
#include "cli_cache.h"
#include "cli_gen.h"
#include "cli_draft.h"
#include "cli_json.h"
#include "cli_sampling.h"
#include "commands.h"

static const char usage[] =
    "usage: gemfa chat [-m DIR] [--system TEXT] [-n N] [-c N] [--prompt-cache FILE]\n"
    "                  [sampling options] [--special] [--bidi] [--json]\n"
    "                  [--draft SPEC | --draft-model DIR] [--draft-k K]\n"
    "An interactive chat (or one message per line on piped stdin; answers on stdout).\n"
    "Commands: /undo removes the last exchange, /retry answers the last message again,\n"
    "/reset forgets the conversation, /exit quits (so does end of input); blank lines\n"
    "are skipped.  Ctrl-C stops the current answer.  When the context fills, the oldest\n"
    "turns are dropped (the system prompt is kept) and the rest is decoded again.\n\n"
    "options:\n"
    "  --system TEXT          system prompt\n"
    "  -n, --max-tokens N     at most N new tokens per answer, 1-1073741824\n"
    "                         (default 512)\n"
    "  -c, --ctx N            tokens of context, 1 to the model's context length\n"
    "                         (default: min(4096, the model's))\n"
    "  --prompt-cache FILE    start from the session state saved in FILE (its common\n"
    "                         prefix with the first prompt, e.g. a long system prompt,\n"
    "                         is not decoded again); save the state there after every\n"
    "                         prompt\n"
    "  --special              show special tokens (<end_of_image>, ...) in answers\n"
    "  --bidi                 show each finished line in visual order (right-to-left\n"
    "                         text reordered and joined) for terminals without\n"
    "                         bidirectional support; see docs/cli.md\n"
    CLI_SAMPLING_HELP
    CLI_DRAFT_HELP
    "common options:\n" CLI_COMMON_HELP CLI_KV_HELP
    "With --json, prints one object per message line instead of the answer:\n"
    "  {\"prompt_ids\": [the whole rendered conversation], \"ids\": [...], \"text\": \"...\",\n"
    "   \"reused\": cached ids kept, \"decoded\": ids decoded for the prompt, \"dropped_turns\": n}\n"
    "(with a draft also \"speculative\": the counters so far, as in generate)\n"
    "or, for a line that cannot be answered (not UTF-8, too long for the context),\n"
    "  {\"error\": \"...\"} and the chat goes on.\n";

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int cancel_cb(void *user)
{
    (void)user;
    return interrupted != 0;
}

typedef struct conversation {
    gemfa_message *msgs; /* contents are malloc'd copies; roles are literals */
    size_t n, cap;
    int has_system;
} conversation;

static int conv_add(conversation *c, const char *role, const char *text, size_t len)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        gemfa_message *p = realloc(c->msgs, cap * sizeof *p);
        if (!p)
            return -1;
        c->msgs = p;
        c->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, text, len);
    copy[len] = '\0';
    c->msgs[c->n++] = (gemfa_message){role, copy, len};
    return 0;
}

/* Removes n messages starting at index `at`. */
static void conv_remove(conversation *c, size_t at, size_t n)
{
    for (size_t i = at; i < at + n; i++)
        free((char *)c->msgs[i].content);
    memmove(c->msgs + at, c->msgs + at + n, (c->n - at - n) * sizeof *c->msgs);
    c->n -= n;
}

static void conv_clear_turns(conversation *c)
{
    size_t keep = c->has_system ? 1 : 0;
    conv_remove(c, keep, c->n - keep);
}

/* Renders and tokenizes the conversation plus the generation prompt. */
static gemfa_status render_ids(const gemfa_model *m, const conversation *c, int32_t **ids,
                               size_t *cap, size_t *n)
{
    gemfa_status st = gemfa_chat_tokenize(m, c->msgs, c->n, 1, 0, *ids, *cap, n);
    if (st == GEMFA_ERR_BUFFER_TOO_SMALL) {
        int32_t *p = realloc(*ids, (*n + 64) * sizeof *p);
        if (!p)
            return GEMFA_ERR_OUT_OF_MEMORY;
        *ids = p;
        *cap = *n + 64;
        st = gemfa_chat_tokenize(m, c->msgs, c->n, 1, 0, *ids, *cap, n);
    }
    return st;
}

typedef struct chat_state {
    const gemfa_model *model;
    gemfa_session *session; /* the live conversation */
    gemfa_session *anchor;  /* copy taken right after the last prompt was decoded */
    size_t reused, decoded; /* of the last sync: ids kept from the cache, ids decoded */
    size_t dropped;         /* turns dropped by the last fit_context */
} chat_state;

/* Brings the session to exactly ids[0..n): keeps its common prefix with ids
 * (truncating the rest), or restarts from the anchor when that holds more of
 * it, and decodes what is missing. */
static gemfa_status sync_session(chat_state *cs, const int32_t *ids, size_t n)
{
    size_t common = cli_common_prefix(cs->session, ids, n);
    if (cs->anchor && common < gemfa_session_n_tokens(cs->session)) {
        size_t n_anchor = gemfa_session_n_tokens(cs->anchor);
        if (n_anchor > common && cli_common_prefix(cs->anchor, ids, n) == n_anchor) {
            gemfa_session *copy = NULL; /* a longer answer than the ring keeps: no re-decode */
            gemfa_status st = gemfa_session_fork(cs->anchor, &copy);
            if (st != GEMFA_OK)
                return st;
            gemfa_session_free(cs->session);
            cs->session = copy;
        }
    }
    size_t reused = 0;
    gemfa_status st = cli_sync_prefix(cs->session, ids, n, &reused);
    if (st == GEMFA_OK) {
        cs->reused = reused;
        cs->decoded = n - reused;
    }
    return st;
}

/* Drops the oldest user/model pairs until ids + reserve fit the context. */
static gemfa_status fit_context(chat_state *cs, conversation *conv, int32_t **ids, size_t *cap,
                                size_t *n, size_t reserve)
{
    size_t max = gemfa_session_max_context(cs->session), dropped = 0;
    size_t first = conv->has_system ? 1 : 0;
    /* A message that cannot fit even alone (with the system prompt) is
     * refused before any turn is dropped: the conversation stays as it was. */
    gemfa_message alone[2];
    conversation minimal = {alone, 0, 2, conv->has_system};
    if (first)
        alone[minimal.n++] = conv->msgs[0];
    alone[minimal.n++] = conv->msgs[conv->n - 1];
    gemfa_status st = render_ids(cs->model, &minimal, ids, cap, n);
    cs->dropped = 0;
    if (st == GEMFA_OK && *n >= max)
        return GEMFA_ERR_CONTEXT_FULL;
    if (st == GEMFA_OK)
        st = render_ids(cs->model, conv, ids, cap, n);
    while (st == GEMFA_OK && *n + reserve > max && conv->n - first >= 3) {
        conv_remove(conv, first, 2);
        dropped++;
        st = render_ids(cs->model, conv, ids, cap, n);
    }
    cs->dropped = dropped;
    if (dropped)
        fprintf(stderr, "note: the context was full: dropped the %zu oldest turn%s\n", dropped,
                dropped == 1 ? "" : "s");
    if (st == GEMFA_OK && *n >= max)
        return GEMFA_ERR_CONTEXT_FULL;
    return st;
}

/* A line of whitespace only (or nothing) is no message. */
static int blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!line[i] || !strchr(" \t\r\v\f", line[i]))
            return 0;
    return 1;
}

/* A message line that gets no answer: an error record with --json (one
 * record per message line), a note on stderr otherwise. */
static void skip_line(int json, const char *why)
{
    if (json) {
        fputs("{\"error\": ", stdout);
        cli_json_string(stdout, why, strlen(why));
        fputs("}\n", stdout);
        fflush(stdout);
    } else {
        fprintf(stderr, "gemfa chat: %s\n", why);
    }
}

/* One line without its '\n' (and a '\r' before it); *len its length (a
 * line may hold NUL bytes). */
static char *read_line(FILE *in, int *eof, size_t *out_len)
{
    size_t cap = 256, len = 0;
    char *buf = malloc(cap);
    *eof = 0;
    if (!buf)
        return NULL;
    for (;;) {
        int ch = fgetc(in);
        if (ch == EOF) {
            if (ferror(in) && errno == EINTR) {
                clearerr(in);
                free(buf);
                return NULL; /* Ctrl-C at the prompt */
            }
            *eof = len == 0;
            break;
        }
        if (ch == '\n')
            break;
        if (len + 2 > cap) {
            char *p = realloc(buf, cap *= 2);
            if (!p) {
                free(buf);
                return NULL;
            }
            buf = p;
        }
        buf[len++] = (char)ch;
    }
    if (len && buf[len - 1] == '\r')
        len--;
    buf[len] = '\0';
    *out_len = len;
    return buf;
}

int cmd_chat(int argc, char **argv)
{
    cli_common common = {0};
    cli_sampling sampling;
    cli_draft draft_opts = {0};
    const char *system = NULL, *prompt_cache = NULL;
    long long n_predict = 512, context = 0;
    int special = 0, bidi = 0;
    cli_sampling_init(&sampling);
    for (int i = 1; i < argc;) {
        int r = cli_common_option(&common, argc, argv, &i);
        if (r == 0)
            r = cli_sampling_option(&sampling, argc, argv, &i);
        if (r == 0)
            r = cli_draft_option(&draft_opts, argc, argv, &i);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        const char *opt = argv[i], *v;
        if (strcmp(opt, "--system") == 0) {
            if (!(system = cli_value(argc, argv, &i)))
                return CLI_USAGE;
        } else if (strcmp(opt, "--prompt-cache") == 0) {
            if (!(prompt_cache = cli_value(argc, argv, &i)))
                return CLI_USAGE;
        } else if (strcmp(opt, "--special") == 0) {
            special = 1;
        } else if (strcmp(opt, "--bidi") == 0) {
            bidi = 1;
        } else if (cli_opt(opt, "-n", "--max-tokens")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(opt, v, 1, 1 << 30, &n_predict))
                return CLI_USAGE;
        } else if (cli_opt(opt, "-c", "--ctx")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(opt, v, 1, 1 << 30, &context))
                return CLI_USAGE;
        } else {
            return cli_usage_error(argv[0], "unknown option '%s'", opt);
        }
        i++;
    }
    if (cli_handle_help(&common, usage))
        return CLI_OK;
    if (cli_draft_check(argv[0], &draft_opts) != CLI_OK)
        return CLI_USAGE;
    if (bidi && common.json)
        return cli_usage_error(argv[0], "--bidi is a display mode: it does not go with --json");
    if (bidi && !cli_bidi_available())
        return cli_usage_error(argv[0], "--bidi: this build of gemfa lacks GNU FriBidi "
                                        "(rebuild with libfribidi-dev installed, -Dbidi=enabled)");

    gemfa_model *m = NULL;
    gemfa_context *ctx = NULL;
    gemfa_sampler *smp = NULL;
    gemfa_model *draft = NULL;
    gemfa_speculator *spec = NULL;
    gemfa_session *spec_target = NULL; /* the session `spec` was made for */
    chat_state cs = {0};
    conversation conv = {0};
    int32_t *ids = NULL;
    size_t ids_cap = 0, n_ids = 0;
    int rc = cli_load_model(&common, 0, &m);
    if (rc != CLI_OK)
        return rc;
    cli_note_if_tiny(&common);
    if ((rc = cli_check_context(argv[0], m, context)) != CLI_OK)
        goto done;
    rc = CLI_ERROR;
    cs.model = m;
    if (cli_open_session(&common, m, context, cancel_cb, NULL, &ctx, &cs.session) != GEMFA_OK)
        goto done;
    if (prompt_cache)
        cli_cache_load(ctx, &cs.session, prompt_cache);
    if (!(smp = cli_make_sampler(m, &sampling)))
        goto done;
    if (cli_draft_on(&draft_opts) && cli_draft_model(&common, &draft_opts, m, &draft) != CLI_OK)
        goto done;
    if (system) {
        if (conv_add(&conv, "system", system, strlen(system)) != 0)
            goto done;
        conv.has_system = 1;
    }

    struct sigaction sa = {0};
    sa.sa_handler = on_sigint; /* no SA_RESTART: Ctrl-C at the prompt returns from read */
    sigaction(SIGINT, &sa, NULL);
    int tty = isatty(STDIN_FILENO);
    size_t max_ctx = gemfa_session_max_context(cs.session);
    size_t reserve = (size_t)n_predict < max_ctx / 4 ? (size_t)n_predict : max_ctx / 4;
    if (tty)
        fprintf(stderr, "chat: type a message; /undo, /retry, /reset forgets, /exit quits, "
                        "Ctrl-C stops an answer\n");

    for (;;) {
        if (tty)
            fprintf(stderr, "> ");
        interrupted = 0;
        int eof;
        size_t line_len = 0;
        char *line = read_line(stdin, &eof, &line_len);
        if (!line) {
            if (eof)
                break;
            fprintf(stderr, "\n(type /exit or press Ctrl-D to quit)\n");
            continue;
        }
        if (eof || strcmp(line, "/exit") == 0) {
            free(line);
            break;
        }
        if (strcmp(line, "/reset") == 0) {
            conv_clear_turns(&conv);
            gemfa_session_reset(cs.session);
            gemfa_session_free(cs.anchor);
            cs.anchor = NULL;
            fprintf(stderr, "(conversation cleared)\n");
            free(line);
            continue;
        }
        if (blank(line, line_len)) {
            free(line);
            continue;
        }
        const size_t first = conv.has_system ? 1 : 0;
        if (strcmp(line, "/undo") == 0 || strcmp(line, "/retry") == 0) {
            const int retry = line[1] == 'r';
            free(line);
            if (conv.n < first + 2) {
                fprintf(stderr, "(nothing to %s)\n", retry ? "retry" : "undo");
                continue;
            }
            conv_remove(&conv, conv.n - (retry ? 1 : 2), retry ? 1 : 2);
            if (!retry) { /* drop the exchange from the cache now; the next turn reuses the rest */
                size_t n_keep = 0;
                if (conv.n > 0 && render_ids(m, &conv, &ids, &ids_cap, &n_ids) == GEMFA_OK)
                    n_keep = cli_common_prefix(cs.session, ids, n_ids);
                gemfa_status ust = gemfa_session_truncate(cs.session, n_keep);
                if (ust != GEMFA_OK)
                    cli_report("cannot undo", ust);
                fprintf(stderr, "(last exchange removed)\n");
                continue;
            }
        } else {
            if (!cli_utf8_valid(line, line_len)) {
                free(line);
                skip_line(common.json, "the line is not valid UTF-8");
                continue;
            }
            int add = conv_add(&conv, "user", line, line_len);
            free(line);
            if (add != 0)
                goto done;
        }

        gemfa_status st = fit_context(&cs, &conv, &ids, &ids_cap, &n_ids, reserve);
        if (st == GEMFA_OK)
            st = sync_session(&cs, ids, n_ids);
        if (st != GEMFA_OK) {
            char why[600];
            if (st == GEMFA_ERR_CANCELLED)
                snprintf(why, sizeof why, "interrupted");
            else if (st == GEMFA_ERR_CONTEXT_FULL)
                snprintf(why, sizeof why, "the message does not fit in the context (%zu tokens "
                         "rendered, context %zu tokens)", n_ids, max_ctx);
            else
                snprintf(why, sizeof why, "cannot process the message: %s: %s",
                         gemfa_status_name(st), gemfa_last_error());
            conv_remove(&conv, conv.n - 1, 1); /* forget the message; the session is unchanged */
            skip_line(common.json, why);
            continue;
        }
        if (prompt_cache)
            cli_cache_save(cs.session, prompt_cache);
        gemfa_session_free(cs.anchor);
        cs.anchor = NULL;
        if (gemfa_session_fork(cs.session, &cs.anchor) != GEMFA_OK)
            cs.anchor = NULL; /* only an optimisation */

        cli_gen_result res;
        cli_out out;
        cli_out_init(&out, stdout, bidi);
        cli_gen_opts gopts = {0};
        if (draft && spec_target != cs.session) { /* sync_session may replace the session */
            gemfa_speculator_free(spec);
            spec = NULL;
            spec_target = NULL;
            if (cli_draft_speculator(&draft_opts, draft, cs.session, &spec) != CLI_OK)
                goto done;
            spec_target = cs.session;
        }
        gopts.spec = spec;
        st = cli_generate_opts(m, cs.session, smp, (long)n_predict, special,
                               common.json ? NULL : &out, &interrupted, &gopts, &res);
        cli_out_free(&out);
        if (common.json) {
            printf("{\"prompt_ids\": ");
            cli_json_ids(stdout, ids, n_ids);
            printf(", \"ids\": ");
            cli_json_ids(stdout, res.ids, res.n_ids);
            printf(", \"text\": ");
            cli_json_string(stdout, res.text ? res.text : "", res.text_len);
            printf(", \"reused\": %zu, \"decoded\": %zu, \"dropped_turns\": %zu", cs.reused,
                   cs.decoded, cs.dropped);
            if (spec)
                cli_draft_print_json(stdout, spec,
                                     draft_opts.k ? (int)draft_opts.k : CLI_DRAFT_DEFAULT_K);
            printf("}");
        }
        fputc('\n', stdout);
        fflush(stdout);
        if (res.interrupted)
            fprintf(stderr, "(answer stopped)\n");
        if (res.context_full)
            fprintf(stderr, "note: the context is full; older turns are dropped next time\n");
        if (st != GEMFA_OK)
            cli_gen_report(&res, st);
        /* the model's turn is everything it said, special tokens included even
         * when hidden, so the next render matches the cache */
        int ok = conv_add(&conv, "assistant", res.full.data ? res.full.data : "", res.full.len);
        cli_gen_result_free(&res);
        if (ok != 0)
            goto done;
    }
    rc = CLI_OK;
done:
    free(ids);
    while (conv.n)
        conv_remove(&conv, conv.n - 1, 1);
    free(conv.msgs);
    gemfa_session_free(cs.anchor);
    gemfa_speculator_free(spec);
    gemfa_session_free(cs.session);
    gemfa_model_free(draft);
    gemfa_sampler_free(smp);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
    return rc;
}
