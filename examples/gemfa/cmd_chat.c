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
#include "cli_cache.h"
#include "cli_gen.h"
#include "cli_json.h"
#include "cli_sampling.h"
#include "commands.h"

static const char usage[] =
    "usage: gemfa chat [-m DIR] [--system TEXT] [-n N] [-c CONTEXT] [--prompt-cache FILE]\n"
    "                  [sampling options]\n"
    "An interactive chat (or one message per line on piped stdin; answers on stdout).\n"
    "Commands: /undo removes the last exchange, /retry answers the last message again,\n"
    "/reset forgets the conversation, /exit quits (so does end of input).\n"
    "Ctrl-C stops the current answer.  When the context fills, the oldest turns are\n"
    "dropped (the system prompt is kept) and the rest is decoded again.\n"
    "With --json, prints one object per turn instead of the answer:\n"
    "  {\"prompt_ids\": [the whole rendered conversation], \"ids\": [...], \"text\": \"...\",\n"
    "   \"reused\": cached ids kept, \"decoded\": ids decoded for the prompt, \"dropped_turns\": n}\n\n"
    "  --system TEXT     system prompt\n"
    "  -n N              at most N new tokens per answer (default 512)\n"
    "  -c CONTEXT        session context size (default: min(4096, the model's))\n"
    "  --prompt-cache FILE  start from the session state saved in FILE (its common\n"
    "                    prefix with the first prompt, e.g. a long system prompt, is not\n"
    "                    decoded again) and save the state there after every prompt\n"
    CLI_SAMPLING_HELP CLI_COMMON_HELP;

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
    gemfa_status st = render_ids(cs->model, conv, ids, cap, n);
    size_t first = conv->has_system ? 1 : 0;
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

static char *read_line(FILE *in, int *eof)
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
    buf[len] = '\0';
    return buf;
}

int cmd_chat(int argc, char **argv)
{
    cli_common common = {0};
    cli_sampling sampling = {0};
    const char *system = NULL, *prompt_cache = NULL;
    long long n_predict = 512, context = 0;
    for (int i = 1; i < argc;) {
        int r = cli_common_option(&common, argc, argv, &i);
        if (r == 0)
            r = cli_sampling_option(&sampling, argc, argv, &i);
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
        } else if (strcmp(opt, "-n") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(opt, v, 1, 1 << 30, &n_predict))
                return CLI_USAGE;
        } else if (strcmp(opt, "-c") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(opt, v, 1, 1 << 30, &context))
                return CLI_USAGE;
        } else {
            return cli_usage_error(argv[0], "unknown option '%s'", opt);
        }
        i++;
    }
    if (cli_handle_help(&common, usage))
        return CLI_OK;

    gemfa_model *m = NULL;
    gemfa_context *ctx = NULL;
    gemfa_sampler *smp = NULL;
    chat_state cs = {0};
    conversation conv = {0};
    int32_t *ids = NULL;
    size_t ids_cap = 0, n_ids = 0;
    int rc = cli_load_model(&common, 0, &m);
    if (rc != CLI_OK)
        return rc;
    cli_note_if_tiny(&common);
    rc = CLI_ERROR;
    cs.model = m;
    if (cli_open_session(&common, m, context, cancel_cb, NULL, &ctx, &cs.session) != GEMFA_OK)
        goto done;
    if (prompt_cache)
        cli_cache_load(ctx, &cs.session, prompt_cache);
    if (!(smp = cli_make_sampler(m, &sampling)))
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
        char *line = read_line(stdin, &eof);
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
        if (line[0] == '\0') {
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
            int add = conv_add(&conv, "user", line, strlen(line));
            free(line);
            if (add != 0)
                goto done;
        }

        gemfa_status st = fit_context(&cs, &conv, &ids, &ids_cap, &n_ids, reserve);
        if (st == GEMFA_OK)
            st = sync_session(&cs, ids, n_ids);
        if (st != GEMFA_OK) {
            if (st == GEMFA_ERR_CANCELLED)
                fprintf(stderr, "(interrupted)\n");
            else
                cli_report("cannot process the message", st);
            conv_remove(&conv, conv.n - 1, 1); /* forget the message; the session is unchanged */
            continue;
        }
        if (prompt_cache)
            cli_cache_save(cs.session, prompt_cache);
        gemfa_session_free(cs.anchor);
        cs.anchor = NULL;
        if (gemfa_session_fork(cs.session, &cs.anchor) != GEMFA_OK)
            cs.anchor = NULL; /* only an optimisation */

        cli_gen_result res;
        st = cli_generate(m, cs.session, smp, (long)n_predict, common.json ? NULL : stdout,
                          &interrupted, &res);
        if (common.json) {
            printf("{\"prompt_ids\": ");
            cli_json_ids(stdout, ids, n_ids);
            printf(", \"ids\": ");
            cli_json_ids(stdout, res.ids, res.n_ids);
            printf(", \"text\": ");
            cli_json_string(stdout, res.text ? res.text : "", res.text_len);
            printf(", \"reused\": %zu, \"decoded\": %zu, \"dropped_turns\": %zu}", cs.reused,
                   cs.decoded, cs.dropped);
        }
        fputc('\n', stdout);
        fflush(stdout);
        if (res.interrupted)
            fprintf(stderr, "(answer stopped)\n");
        if (res.context_full)
            fprintf(stderr, "note: the context is full; older turns are dropped next time\n");
        if (st != GEMFA_OK)
            cli_report("generation failed", st);
        int ok = conv_add(&conv, "assistant", res.text ? res.text : "", res.text_len);
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
    gemfa_session_free(cs.session);
    gemfa_sampler_free(smp);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
    return rc;
}
