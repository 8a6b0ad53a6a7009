/* cli.c — common options, model loading and error reporting for gemfa. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "gemfa %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'gemfa %s --help')\n", cmd);
    return CLI_USAGE;
}

const char *cli_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        cli_usage_error(argv[0], "option %s needs a value", argv[*i]);
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

int cli_opt(const char *arg, const char *short_form, const char *long_form)
{
    return (short_form && strcmp(arg, short_form) == 0) || strcmp(arg, long_form) == 0;
}

int cli_parse_int(const char *opt, const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "gemfa: %s: expected an integer in [%lld, %lld], got '%s'\n", opt, min,
                max, s);
        fprintf(stderr, "(see --help)\n");
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_float(const char *opt, const char *s, double min, int open_min, double max,
                       double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || isnan(v) || v < min || (open_min && v == min) || v > max) {
        fprintf(stderr, "gemfa: %s: expected a number in %c%g, %g], got '%s'\n(see --help)\n", opt,
                open_min ? '(' : '[', min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *opt, const char *s, double min, double max, double *out)
{
    return parse_float(opt, s, min, 0, max, out);
}

int cli_parse_positive(const char *opt, const char *s, double max, double *out)
{
    return parse_float(opt, s, 0, 1, max, out);
}

static int parse_weights(const char *s, gemfa_weight_type *out)
{
    static const struct { const char *name; gemfa_weight_type type; } names[] = {
        {"auto", GEMFA_WEIGHTS_AUTO}, {"f32", GEMFA_WEIGHTS_F32}, {"f16", GEMFA_WEIGHTS_F16},
        {"bf16", GEMFA_WEIGHTS_BF16}, {"int8", GEMFA_WEIGHTS_INT8}, {"q4", GEMFA_WEIGHTS_Q4},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].type;
            return 0;
        }
    return -1;
}

int cli_parse_lora(const char *arg, cli_lora *out)
{
    size_t n = strlen(arg);
    float scale = 1.0f;
    const char *colon = strrchr(arg, ':');
    if (colon && colon[1]) {
        char *end;
        double v = strtod(colon + 1, &end);
        if (!*end && !(isfinite(v) && isfinite((float)v))) {
            fprintf(stderr, "gemfa: --lora: the scale in '%s' is not a finite float\n"
                            "(see --help)\n", arg);
            return -1;
        }
        if (!*end) { /* an underflow (ERANGE) is a tiny scale, not a name */
            scale = (float)v;
            n = (size_t)(colon - arg);
        }
    }
    if (n == 0) {
        fprintf(stderr, "gemfa: --lora: expected DIR or DIR:SCALE, got '%s'\n(see --help)\n",
                arg);
        return -1;
    }
    out->dir_len = n;
    out->arg = arg;
    out->scale = scale;
    return 0;
}

int cli_common_option(cli_common *c, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *v;
    long long n;
    if (cli_opt(a, "-m", "--model")) {
        if (!(v = cli_value(argc, argv, i)))
            return -1;
        c->model_dir = v;
    } else if (cli_opt(a, "-t", "--threads")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 0, 1024, &n) != 0)
            return -1;
        c->threads = (int)n;
    } else if (strcmp(a, "--weights") == 0) {
        if (!(v = cli_value(argc, argv, i)))
            return -1;
        if (parse_weights(v, &c->weights) != 0) {
            cli_usage_error(argv[0], "--weights takes " CLI_WEIGHT_NAMES ", not '%s'", v);
            return -1;
        }
    } else if (strcmp(a, "--kv-type") == 0) {
        if (!(v = cli_value(argc, argv, i)))
            return -1;
        if (gemfa_kv_type_parse(v, &c->kv_type) != GEMFA_OK) {
            cli_usage_error(argv[0], "--kv-type takes f32 or f16, not '%s'", v);
            return -1;
        }
    } else if (strcmp(a, "--matformer") == 0) {
        if (!(v = cli_value(argc, argv, i)))
            return -1;
        c->matformer = v; /* checked by the library at load */
    } else if (strcmp(a, "--lora") == 0) {
        if (!(v = cli_value(argc, argv, i)))
            return -1;
        if (c->n_lora >= CLI_MAX_LORA) {
            cli_usage_error(argv[0], "--lora: at most %d adapters", CLI_MAX_LORA);
            return -1;
        }
        if (cli_parse_lora(v, &c->lora[c->n_lora]) != 0)
            return -1;
        c->n_lora++;
    } else if (strcmp(a, "--json") == 0) {
        c->json = 1;
    } else if (cli_opt(a, "-h", "--help")) {
        c->help = 1;
    } else if (strcmp(a, "--version") == 0) {
        c->version = 1;
    } else {
        return 0;
    }
    *i += 1;
    return 1;
}

int cli_handle_help(const cli_common *c, const char *usage)
{
    if (c->help) {
        fputs(usage, stdout);
        return 1;
    }
    if (c->version) {
        printf("gemfa %s\n", gemfa_version_string());
        return 1;
    }
    return 0;
}

const char *cli_model_dir(const cli_common *c)
{
    if (c->model_dir)
        return c->model_dir;
    /* The source tree's copy when run from a build, else the installed one. */
    if (access(GEMFA_TINY_MODEL_DIR "/config.json", R_OK) == 0)
        return GEMFA_TINY_MODEL_DIR;
    return GEMFA_INSTALLED_TINY_MODEL_DIR;
}

void cli_report(const char *what, gemfa_status st)
{
    fprintf(stderr, "gemfa: %s: %s: %s\n", what, gemfa_status_name(st), gemfa_last_error());
}

/* Load progress: a redrawn bar on a terminal, a line per stage otherwise. */
typedef struct progress_state {
    int tty;
    char stage[32];
    int last_pct;
    double start;
} progress_state;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Loads that finish within this many seconds show no progress at all. */
#define PROGRESS_QUIET_S 0.5

static int on_progress(void *user, float fraction, const char *stage)
{
    progress_state *p = user;
    if (now_s() - p->start < PROGRESS_QUIET_S)
        return 0;
    int pct = (int)(fraction * 100.0f + 0.5f);
    if (pct < 0)
        pct = 0;
    if (pct > 100)
        pct = 100;
    if (p->tty) {
        if (pct == p->last_pct && strcmp(stage, p->stage) == 0)
            return 0;
        int filled = pct * 30 / 100;
        fprintf(stderr, "\rloading %-10.10s [%.*s%*s] %3d%%", stage, filled,
                "##############################", 30 - filled, "", pct);
        if (pct == 100)
            fputc('\n', stderr);
    } else if (strcmp(stage, p->stage) != 0) {
        fprintf(stderr, "loading: %s\n", stage);
    }
    snprintf(p->stage, sizeof p->stage, "%s", stage);
    p->last_pct = pct;
    fflush(stderr);
    return 0;
}

int cli_load_model(const cli_common *c, int vocab_only, gemfa_model **out)
{
    progress_state progress = {isatty(STDERR_FILENO), "", -1, now_s()};
    gemfa_model_options *opts = NULL;
    gemfa_status st = gemfa_model_options_new(&opts);
    if (st == GEMFA_OK)
        st = gemfa_model_options_set_weights(opts, c->weights);
    if (st == GEMFA_OK)
        st = gemfa_model_options_set_vocab_only(opts, vocab_only);
    if (st == GEMFA_OK && c->threads > 0)
        st = gemfa_model_options_set_threads(opts, c->threads);
    for (int k = 0; st == GEMFA_OK && !vocab_only && k < c->n_lora; k++) {
        char *dir = strndup(c->lora[k].arg, c->lora[k].dir_len);
        st = dir ? gemfa_model_options_add_lora(opts, dir, c->lora[k].scale)
                 : GEMFA_ERR_OUT_OF_MEMORY;
        free(dir);
    }
    if (st == GEMFA_OK && !vocab_only)
        st = gemfa_model_options_set_matformer(opts, c->matformer);
    if (st == GEMFA_OK && !vocab_only)
        st = gemfa_model_options_set_progress(opts, on_progress, &progress);
    if (st == GEMFA_OK)
        st = gemfa_model_load(cli_model_dir(c), opts, out);
    gemfa_model_options_free(opts);
    if (st != GEMFA_OK) {
        cli_report("cannot load model", st);
        return CLI_ERROR;
    }
    return CLI_OK;
}

int cli_check_context(const char *cmd, const gemfa_model *m, long long context)
{
    int64_t model_ctx = 0;
    if (context <= 0 || gemfa_model_get(m, GEMFA_PROP_CONTEXT_LENGTH, &model_ctx) != GEMFA_OK)
        return CLI_OK;
    if (context > model_ctx)
        return cli_usage_error(cmd, "-c/--ctx: expected an integer in [1, %lld] (the model's "
                                    "context length), got %lld",
                               (long long)model_ctx, context);
    return CLI_OK;
}

void cli_note_if_tiny(const cli_common *c)
{
    if (c->model_dir)
        return;
    fprintf(stderr,
            "note: this is the bundled tiny model with random weights, so the answer is\n"
            "      nonsense words. Run with -m DIR, DIR being a Hugging Face Gemma 3n directory\n"
            "      (such as gemma-3n-E4B-persian), for real answers.\n");
}

gemfa_status cli_open_session(const cli_common *c, const gemfa_model *m, long long context,
                              gemfa_cancel_fn cancel, void *cancel_user, gemfa_context **ctx,
                              gemfa_session **s)
{
    gemfa_context_options *copts = NULL;
    gemfa_session_options *sopts = NULL;
    int64_t model_ctx = 0;
    gemfa_status st = gemfa_model_get(m, GEMFA_PROP_CONTEXT_LENGTH, &model_ctx);
    if (context <= 0)
        context = model_ctx < 4096 ? model_ctx : 4096;
    if (st == GEMFA_OK)
        st = gemfa_context_options_new(&copts);
    if (st == GEMFA_OK)
        st = gemfa_context_options_set_threads(copts, c->threads);
    if (st == GEMFA_OK && cancel)
        st = gemfa_context_options_set_cancel(copts, cancel, cancel_user);
    if (st == GEMFA_OK)
        st = gemfa_context_new(m, copts, ctx);
    if (st == GEMFA_OK)
        st = gemfa_session_options_new(&sopts);
    if (st == GEMFA_OK)
        st = gemfa_session_options_set_max_context(sopts, context);
    if (st == GEMFA_OK)
        st = gemfa_session_options_set_kv_type(sopts, c->kv_type);
    if (st == GEMFA_OK)
        st = gemfa_session_new(*ctx, sopts, s);
    gemfa_context_options_free(copts);
    gemfa_session_options_free(sopts);
    if (st != GEMFA_OK)
        cli_report("cannot create a session", st);
    return st;
}
