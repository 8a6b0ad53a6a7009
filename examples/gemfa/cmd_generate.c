/* cmd_generate.c — `gemfa generate`: one prompt, one streamed answer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_bidi.h"
#include "cli_cache.h"
#include "cli_draft.h"
#include "cli_gen.h"
#include "cli_json.h"
#include "cli_sampling.h"
#include "commands.h"

static const char usage[] =
    "usage: gemfa generate -p TEXT [-m DIR] [--chat] [--system TEXT] [-n N] [-c N]\n"
    "                      [--prompt-cache FILE] [sampling options]\n"
    "                      [--json-schema FILE | --json-mode] [--special] [--bidi]\n"
    "                      [--stop TEXT]... [--logprobs N] [--json]\n"
    "                      [--draft SPEC | --draft-model DIR] [--draft-k K]\n"
    "Streams the model's continuation of TEXT to stdout, then prints prompt and decode\n"
    "speed on stderr.\n\n"
    "options:\n"
    "  -p, --prompt TEXT      the prompt (required)\n"
    "  --chat                 wrap the prompt in the model's chat template\n"
    "  --system TEXT          a system prompt (needs --chat)\n"
    "  -n, --max-tokens N     at most N new tokens, 0-1073741824 (default 128)\n"
    "  -c, --ctx N            tokens of context, 1 to the model's context length\n"
    "                         (default: min(4096, the model's))\n"
    "  --json-schema FILE     the answer is JSON valid for the JSON Schema in FILE\n"
    "                         (a subset: see docs/cli.md); ends when the value does\n"
    "  --json-mode            the answer is any JSON value\n"
    "  --prompt-cache FILE    reuse the session state saved in FILE: keep its longest\n"
    "                         common prefix with the prompt, decode only the rest, save\n"
    "                         the state after the prompt there (a state of another\n"
    "                         model or a damaged file is reported and rebuilt)\n"
    "  --special              show special tokens (<end_of_image>, ...) in the text\n"
    "                         (default: hidden, as HF's skip_special_tokens=True)\n"
    "  --bidi                 show each finished line in visual order (right-to-left\n"
    "                         text reordered and joined) for terminals without\n"
    "                         bidirectional support; see docs/cli.md\n"
    "  --stop TEXT            end the answer before TEXT (repeatable; matched across\n"
    "                         tokens; the text shown never includes it)\n"
    "  --logprobs N           with --json: each token's log-probability under the raw\n"
    "                         logits and its N most likely alternatives, 0-20\n"
    CLI_SAMPLING_HELP
    CLI_DRAFT_HELP
    "common options:\n" CLI_COMMON_HELP CLI_KV_HELP
    "With --json, prints one object at the end instead of streaming:\n"
    "  {\"prompt_ids\": [...], \"ids\": [...], \"text\": \"...\", \"prompt_tok_s\": x,\n"
    "   \"decode_tok_s\": y, \"seed\": s,\n"
    "   \"stop\": \"eog\"|\"length\"|\"context_full\"|\"stop_string\"}\n"
    "(ids include the stop id when one ended the run; text leaves it out, and a stop\n"
    "string with what followed it).  With --logprobs, also \"logprobs\": one entry per\n"
    "id, in OpenAI's shape: {\"token\", \"logprob\", \"bytes\", \"top_logprobs\":\n"
    "[{\"token\", \"logprob\", \"bytes\"}]}.  With --json-schema/--json-mode, a stop\n"
    "other than \"eog\" means the JSON was cut.  With a draft, also \"speculative\":\n"
    "{\"k\", \"steps\", \"drafted\", \"accepted\", \"acceptance\", \"tokens_per_step\",\n"
    "\"draft_s\", \"verify_s\"}.\n";

typedef struct gen_args {
    cli_common common;
    cli_sampling sampling;
    cli_draft draft;
    const char *prompt, *system, *prompt_cache;
    const char *json_schema; /* a file, or NULL */
    int chat, special, bidi, json_mode;
    long long n_predict, context;
    const char **stops; /* --stop values (argv strings) */
    size_t n_stops;
    long long logprobs; /* --logprobs N; -1 = off */
} gen_args;

static int parse_args(gen_args *a, int argc, char **argv)
{
    a->n_predict = 128;
    a->logprobs = -1;
    cli_sampling_init(&a->sampling);
    for (int i = 1; i < argc;) {
        int r = cli_common_option(&a->common, argc, argv, &i);
        if (r == 0)
            r = cli_sampling_option(&a->sampling, argc, argv, &i);
        if (r == 0)
            r = cli_draft_option(&a->draft, argc, argv, &i);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        const char *opt = argv[i];
        if (cli_opt(opt, "-p", "--prompt")) {
            if (!(a->prompt = cli_value(argc, argv, &i)))
                return CLI_USAGE;
        } else if (strcmp(opt, "--system") == 0) {
            if (!(a->system = cli_value(argc, argv, &i)))
                return CLI_USAGE;
        } else if (strcmp(opt, "--json-schema") == 0) {
            if (!(a->json_schema = cli_value(argc, argv, &i)))
                return CLI_USAGE;
        } else if (strcmp(opt, "--json-mode") == 0) {
            a->json_mode = 1;
        } else if (strcmp(opt, "--stop") == 0) {
            const char *v = cli_value(argc, argv, &i);
            if (!v)
                return CLI_USAGE;
            const char **p = realloc(a->stops, (a->n_stops + 1) * sizeof *p);
            if (!p)
                return cli_usage_error(argv[0], "out of memory");
            a->stops = p;
            a->stops[a->n_stops++] = v;
        } else if (strcmp(opt, "--logprobs") == 0) {
            const char *v = cli_value(argc, argv, &i);
            if (!v || cli_parse_int(opt, v, 0, CLI_MAX_TOP_LOGPROBS, &a->logprobs) != 0)
                return CLI_USAGE;
        } else if (strcmp(opt, "--chat") == 0) {
            a->chat = 1;
        } else if (strcmp(opt, "--prompt-cache") == 0) {
            if (!(a->prompt_cache = cli_value(argc, argv, &i)))
                return CLI_USAGE;
        } else if (strcmp(opt, "--special") == 0) {
            a->special = 1;
        } else if (strcmp(opt, "--bidi") == 0) {
            a->bidi = 1;
        } else if (cli_opt(opt, "-n", "--max-tokens")) {
            const char *v = cli_value(argc, argv, &i);
            if (!v || cli_parse_int(opt, v, 0, 1 << 30, &a->n_predict) != 0)
                return CLI_USAGE;
        } else if (cli_opt(opt, "-c", "--ctx")) {
            const char *v = cli_value(argc, argv, &i);
            if (!v || cli_parse_int(opt, v, 1, 1 << 30, &a->context) != 0)
                return CLI_USAGE;
        } else {
            return cli_usage_error(argv[0], "unknown option '%s'", opt);
        }
        i++;
    }
    if (a->common.help || a->common.version)
        return CLI_OK;
    if (!a->prompt)
        return cli_usage_error(argv[0], "-p TEXT is required");
    if (a->system && !a->chat)
        return cli_usage_error(argv[0], "--system requires --chat");
    if (a->json_schema && a->json_mode)
        return cli_usage_error(argv[0], "--json-schema and --json-mode exclude each other");
    if (cli_draft_check(argv[0], &a->draft) != CLI_OK)
        return CLI_USAGE;
    if (cli_draft_on(&a->draft) && a->logprobs >= 0)
        return cli_usage_error(argv[0], "--logprobs does not go with a draft (the verified "
                                        "tokens' logits are not kept)");
    if (cli_draft_on(&a->draft) && (a->json_schema || a->json_mode))
        return cli_usage_error(argv[0], "--json-schema and --json-mode do not go with a draft "
                                        "(speculative decoding does not support constraints)");
    if (a->logprobs >= 0 && !a->common.json)
        return cli_usage_error(argv[0], "--logprobs needs --json");
    if (a->bidi && a->common.json)
        return cli_usage_error(argv[0], "--bidi is a display mode: it does not go with --json");
    if (a->bidi && !cli_bidi_available())
        return cli_usage_error(argv[0], "--bidi: this build of gemfa lacks GNU FriBidi "
                                        "(rebuild with libfribidi-dev installed, -Dbidi=enabled)");
    return CLI_OK;
}

/* The prompt's ids: plain text with <bos>, or the rendered chat. */
static gemfa_status prompt_ids(const gemfa_model *m, const gen_args *a, int32_t **ids, size_t *n)
{
    gemfa_message msgs[2];
    size_t n_msgs = 0;
    if (a->system)
        msgs[n_msgs++] = (gemfa_message){"system", a->system, GEMFA_NUL_TERMINATED};
    msgs[n_msgs++] = (gemfa_message){"user", a->prompt, GEMFA_NUL_TERMINATED};
    size_t need = 0;
    gemfa_status st;
    for (int pass = 0; pass < 2; pass++) { /* size query, then fill */
        if (a->chat)
            st = gemfa_chat_tokenize(m, msgs, n_msgs, 1, 0, *ids, need, &need);
        else
            st = gemfa_tokenize(m, a->prompt, GEMFA_NUL_TERMINATED, GEMFA_TOKENIZE_DEFAULT, *ids,
                                need, &need);
        if (st != GEMFA_ERR_BUFFER_TOO_SMALL)
            break;
        *ids = malloc((need ? need : 1) * sizeof **ids);
        if (!*ids)
            return GEMFA_ERR_OUT_OF_MEMORY;
    }
    *n = need;
    return st;
}

/* The constraint of --json-schema FILE / --json-mode; NULL without either
 * (*ok stays 1) or after an error (reported, *ok = 0). */
static gemfa_constraint *make_constraint(const gemfa_model *m, const gen_args *a, int *ok)
{
    *ok = 1;
    if (!a->json_schema && !a->json_mode)
        return NULL;
    char *text = NULL;
    size_t len = 0;
    if (a->json_schema) {
        FILE *f = fopen(a->json_schema, "rb");
        size_t cap = 0, got;
        char buf[4096];
        while (f && (got = fread(buf, 1, sizeof buf, f)) > 0) {
            if (len + got > cap) {
                cap = 2 * (len + got);
                char *t = realloc(text, cap);
                if (!t)
                    break;
                text = t;
            }
            memcpy(text + len, buf, got);
            len += got;
        }
        if (!f || ferror(f)) {
            fprintf(stderr, "gemfa: cannot read the JSON schema %s\n", a->json_schema);
            if (f)
                fclose(f);
            free(text);
            *ok = 0;
            return NULL;
        }
        fclose(f);
    }
    gemfa_constraint *c = NULL;
    gemfa_status st = gemfa_constraint_new_json(m, text, len, &c);
    free(text);
    if (st != GEMFA_OK) {
        cli_report(a->json_schema ? "unusable JSON schema" : "cannot set up --json-mode", st);
        *ok = 0;
    }
    return c;
}

/* {"token": ..., "logprob": ..., "bytes": [...]} members of one token. */
static void print_token_members(const gemfa_model *m, int32_t id, float logprob)
{
    char buf[256];
    size_t len = 0;
    if (gemfa_token_bytes(m, id, buf, sizeof buf, &len) != GEMFA_OK)
        len = 0; /* longer than any Gemma piece: not expected */
    printf("\"token\": ");
    cli_json_string(stdout, buf, len);
    /* JSON has no infinity: -inf (a token the model rules out) is written as
     * -9999.0, OpenAI's value for tokens it cannot rank */
    printf(", \"logprob\": %.9g, \"bytes\": [", logprob == -INFINITY ? -9999.0 : (double)logprob);
    for (size_t i = 0; i < len; i++)
        printf(i ? ", %u" : "%u", (unsigned)(unsigned char)buf[i]);
    printf("]");
}

static void print_logprobs(const gemfa_model *m, const cli_gen_result *r)
{
    printf(", \"logprobs\": [");
    for (size_t i = 0; i < r->n_logprobs; i++) {
        const cli_logprob *lp = &r->logprobs[i];
        printf(i ? ", {" : "{");
        print_token_members(m, lp->id, lp->logprob);
        printf(", \"top_logprobs\": [");
        for (size_t k = 0; k < lp->n_top; k++) {
            printf(k ? ", {" : "{");
            print_token_members(m, lp->top_ids[k], lp->top_logprobs[k]);
            printf("}");
        }
        printf("]}");
    }
    printf("]");
}

static void print_json(const gemfa_model *m, const gen_args *a, const int32_t *pids, size_t n_p,
                       const cli_gen_result *r, double prompt_tps, double decode_tps,
                       const gemfa_speculator *sp)
{
    printf("{\"prompt_ids\": ");
    cli_json_ids(stdout, pids, n_p);
    printf(", \"ids\": ");
    cli_json_ids(stdout, r->ids, r->n_ids);
    printf(", \"text\": ");
    cli_json_string(stdout, r->text, r->text_len);
    if (a->logprobs >= 0)
        print_logprobs(m, r);
    if (sp)
        cli_draft_print_json(stdout, sp, a->draft.k ? (int)a->draft.k : CLI_DRAFT_DEFAULT_K);
    printf(", \"prompt_tok_s\": %.3f, \"decode_tok_s\": %.3f, \"seed\": %llu, "
           "\"stop\": \"%s\"}\n",
           prompt_tps, decode_tps, (unsigned long long)a->sampling.seed,
           r->hit_eog        ? "eog"
           : r->hit_stop     ? "stop_string"
           : r->context_full ? "context_full"
                             : "length");
}

int cmd_generate(int argc, char **argv)
{
    gen_args a = {0};
    int rc = parse_args(&a, argc, argv);
    if (rc != CLI_OK || cli_handle_help(&a.common, usage)) {
        free(a.stops);
        return rc;
    }

    gemfa_model *m = NULL;
    gemfa_context *ctx = NULL;
    gemfa_session *s = NULL;
    gemfa_sampler *smp = NULL;
    gemfa_constraint *json = NULL;
    gemfa_model *draft = NULL;
    gemfa_speculator *spec = NULL;
    int32_t *pids = NULL;
    size_t n_p = 0;
    cli_gen_result res = {0};
    cli_gen_opts gopts = {.logprobs = a.logprobs >= 0,
                          .top_logprobs = a.logprobs > 0 ? (size_t)a.logprobs : 0};
    gemfa_status st;

    if (a.n_stops &&
        (st = gemfa_stop_matcher_new(a.stops, NULL, a.n_stops, &gopts.stop)) != GEMFA_OK) {
        rc = cli_usage_error(argv[0], "--stop: %s", gemfa_last_error());
        free(a.stops);
        return rc;
    }
    if ((rc = cli_load_model(&a.common, 0, &m)) != CLI_OK)
        goto done;
    cli_note_if_tiny(&a.common);
    rc = CLI_ERROR;
    if ((st = prompt_ids(m, &a, &pids, &n_p)) != GEMFA_OK) {
        cli_report("cannot tokenize the prompt", st);
        goto done;
    }
    if ((rc = cli_check_context(argv[0], m, a.context)) != CLI_OK)
        goto done;
    rc = CLI_ERROR;
    if ((st = cli_open_session(&a.common, m, a.context, NULL, NULL, &ctx, &s)) != GEMFA_OK)
        goto done;
    if (!(smp = cli_make_sampler(m, &a.sampling)))
        goto done;
    int json_ok;
    json = make_constraint(m, &a, &json_ok);
    if (!json_ok)
        goto done;
    gemfa_sampler_set_constraint(smp, json); /* the sampler applies and advances it */
    if (cli_draft_on(&a.draft) &&
        cli_draft_open(&a.common, &a.draft, m, s, &draft, &spec) != CLI_OK)
        goto done;
    gopts.spec = spec;

    size_t reused = 0;
    if (a.prompt_cache && n_p > 0)
        cli_cache_load(ctx, &s, a.prompt_cache);
    double t0 = cli_now();
    st = n_p > 0 ? cli_sync_prefix(s, pids, n_p, &reused) : gemfa_decode(s, pids, n_p, NULL);
    if (st != GEMFA_OK) {
        cli_report("cannot decode the prompt", st);
        goto done;
    }
    double prompt_s = cli_now() - t0;
    if (a.prompt_cache) {
        cli_cache_save(s, a.prompt_cache);
        fprintf(stderr, "prompt cache: %zu of %zu prompt tokens reused\n", reused, n_p);
    }
    cli_out out;
    cli_out_init(&out, stdout, a.bidi);
    st = cli_generate_opts(m, s, smp, (long)a.n_predict, a.special, a.common.json ? NULL : &out,
                           NULL, &gopts, &res);
    int newline = !out.at_line_start;
    cli_out_free(&out);
    if (st != GEMFA_OK) {
        cli_gen_report(&res, st);
        goto done;
    }
    double prompt_tps = prompt_s > 0 ? (double)(n_p - reused) / prompt_s : 0;
    double decode_tps = res.decode_s > 0 ? (double)res.n_ids / res.decode_s : 0;
    if (a.common.json) {
        print_json(m, &a, pids, n_p, &res, prompt_tps, decode_tps, spec);
    } else {
        if (newline) /* the statistics on stderr start on a line of their own */
            printf("\n");
        fflush(stdout);
        if (res.hit_stop)
            fprintf(stderr, "note: stopped at a stop string\n");
        if (res.context_full)
            fprintf(stderr, "note: the context (%zu tokens) is full\n",
                    gemfa_session_max_context(s));
        if (json && !res.hit_eog)
            fprintf(stderr, "note: the JSON answer was cut before its end (%s)\n",
                    res.hit_stop ? "stop string" : res.context_full ? "context full"
                                                                    : "token limit");
        fprintf(stderr, "prompt: %zu tokens, %.1f tok/s; generated: %zu tokens, %.1f tok/s\n", n_p,
                prompt_tps, res.n_ids, decode_tps);
        if (spec)
            cli_draft_print_stats(stderr, spec);
    }
    rc = CLI_OK;
done:
    cli_gen_result_free(&res);
    gemfa_stop_matcher_free(gopts.stop);
    free(a.stops);
    free(pids);
    gemfa_sampler_free(smp);
    gemfa_constraint_free(json);
    gemfa_speculator_free(spec);
    gemfa_model_free(draft);
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
    return rc;
}
