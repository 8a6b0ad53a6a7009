/* cli.c — common options, model loading and error reporting for gemfa. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
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

int cli_parse_int(const char *opt, const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "gemfa: %s: expected an integer in [%lld, %lld], got '%s'\n", opt, min,
                max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *opt, const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || isnan(v) || v < min || v > max) {
        fprintf(stderr, "gemfa: %s: expected a number in [%g, %g], got '%s'\n", opt, min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_weights(const char *s, gemfa_weight_type *out)
{
    static const struct { const char *name; gemfa_weight_type type; } names[] = {
        {"auto", GEMFA_WEIGHTS_AUTO}, {"f32", GEMFA_WEIGHTS_F32}, {"f16", GEMFA_WEIGHTS_F16},
        {"bf16", GEMFA_WEIGHTS_BF16}, {"int8", GEMFA_WEIGHTS_INT8},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].type;
            return 0;
        }
    return -1;
}

int cli_common_option(cli_common *c, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *v;
    long long n;
    if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) {
        if (!(v = cli_value(argc, argv, i)))
            return -1;
        c->model_dir = v;
    } else if (strcmp(a, "-t") == 0 || strcmp(a, "--threads") == 0) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 0, 1024, &n) != 0)
            return -1;
        c->threads = (int)n;
    } else if (strcmp(a, "--weights") == 0) {
        if (!(v = cli_value(argc, argv, i)))
            return -1;
        if (parse_weights(v, &c->weights) != 0) {
            cli_usage_error(argv[0], "--weights takes auto|f32|f16|bf16|int8, not '%s'", v);
            return -1;
        }
    } else if (strcmp(a, "--json") == 0) {
        c->json = 1;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
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

int cli_load_model(const cli_common *c, int vocab_only, gemfa_model **out)
{
    gemfa_model_options *opts = NULL;
    gemfa_status st = gemfa_model_options_new(&opts);
    if (st == GEMFA_OK)
        st = gemfa_model_options_set_weights(opts, c->weights);
    if (st == GEMFA_OK)
        st = gemfa_model_options_set_vocab_only(opts, vocab_only);
    if (st == GEMFA_OK && c->threads > 0)
        st = gemfa_model_options_set_threads(opts, c->threads);
    if (st == GEMFA_OK)
        st = gemfa_model_load(cli_model_dir(c), opts, out);
    gemfa_model_options_free(opts);
    if (st != GEMFA_OK) {
        cli_report("cannot load model", st);
        return CLI_ERROR;
    }
    return CLI_OK;
}
