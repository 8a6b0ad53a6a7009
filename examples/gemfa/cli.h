/* cli.h — what every gemfa subcommand shares: the common options
 * (-m DIR, -t THREADS, --weights, --matformer, --json, --help, --version), model loading
 * and error reporting.  Exit codes: 0 success, 1 error, 2 usage error. */
#ifndef GEMFA_CLI_H
#define GEMFA_CLI_H

#include <stdio.h>

#include "gemfa.h"

enum { CLI_OK = 0, CLI_ERROR = 1, CLI_USAGE = 2 };

/* --lora DIR[:SCALE] (repeatable): adapters merged at load. */
#define CLI_MAX_LORA 64
typedef struct cli_lora {
    const char *arg;            /* as given: the directory is its first dir_len bytes */
    size_t dir_len;
    float scale;
} cli_lora;

typedef struct cli_common {
    const char *model_dir;      /* -m; NULL = the bundled tiny model */
    int threads;                /* -t; 0 = all cores */
    gemfa_weight_type weights;  /* --weights */
    gemfa_kv_type kv_type;      /* --kv-type (sessions' KV cache entries) */
    const char *matformer;      /* --matformer SPEC; NULL = the whole model */
    int json;                   /* --json */
    int help, version;          /* --help, --version were given */
    cli_lora lora[CLI_MAX_LORA]; /* --lora, in order */
    int n_lora;
} cli_common;

/* Splits "DIR[:SCALE]": the text after the last ':' is the scale only if it
 * is a whole finite number, else part of the directory.  Returns 0, or -1
 * (message printed) for an empty directory. */
int cli_parse_lora(const char *arg, cli_lora *out);

/* A subcommand: argv[0] is the subcommand's name. */
typedef int (*cli_command_fn)(int argc, char **argv);

/* If argv[*i] is a common option, consumes it (and its value), advances *i
 * past it and returns 1; returns 0 for any other argument, or -1 after
 * printing a usage error. */
int cli_common_option(cli_common *c, int argc, char **argv, int *i);

/* Fetches the value of option argv[*i] ("-n 5"), advancing *i; prints a
 * usage error and returns NULL when it is missing. */
const char *cli_value(int argc, char **argv, int *i);

/* Strict number parsing; print a usage error naming `opt` and the valid
 * range and return -1 on a malformed or out-of-range value (the caller
 * exits with CLI_USAGE). */
int cli_parse_int(const char *opt, const char *s, long long min, long long max, long long *out);
int cli_parse_float(const char *opt, const char *s, double min, double max, double *out);
/* A number in (0, max]. */
int cli_parse_positive(const char *opt, const char *s, double max, double *out);

/* 1 when the argument is the option's short form (may be NULL) or long form. */
int cli_opt(const char *arg, const char *short_form, const char *long_form);

/* The model directory to use: -m, else the bundled tiny model. */
const char *cli_model_dir(const cli_common *c);

/* Loads the model (vocab_only: tokenizer files only).  On failure prints
 * "gemfa: <message>" to stderr and returns CLI_ERROR. */
int cli_load_model(const cli_common *c, int vocab_only, gemfa_model **out);

/* Creates a context (-t threads, optional cancel callback) and a session of
 * `context` tokens (0: min(4096, the model's context length)).  Reports the
 * error on stderr and returns its status on failure. */
gemfa_status cli_open_session(const cli_common *c, const gemfa_model *m, long long context,
                              gemfa_cancel_fn cancel, void *cancel_user, gemfa_context **ctx,
                              gemfa_session **s);

/* -c/--ctx (0: not given) against the model's context length: CLI_OK, or
 * a usage error naming the valid range (CLI_USAGE). */
int cli_check_context(const char *cmd, const gemfa_model *m, long long context);

/* When running the bundled tiny model, says on stderr that its answers are
 * random words and how to use a real checkpoint. */
void cli_note_if_tiny(const cli_common *c);

/* Prints "gemfa: <what>: <status name>: <last error>" to stderr. */
void cli_report(const char *what, gemfa_status st);

/* Prints "gemfa <cmd>: <message>" and a hint to run --help; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...);

/* Handles --help/--version after parsing: prints `usage` or the version and
 * returns 1 when the caller should exit 0. */
int cli_handle_help(const cli_common *c, const char *usage);

/* Help text for the common options, for inclusion in usage strings.  Every
 * option line starts with two spaces and '-' (tests/cli/test_help_docs.py
 * reads them and compares them with docs/cli.md). */
#define CLI_COMMON_HELP \
    "  -m, --model DIR        model directory (default: the bundled tiny model)\n" \
    "  -t, --threads N        compute threads, 0-1024 (default 0: all cores)\n" \
    "  --weights TYPE         auto|f32|f16|bf16|int8|q4 (default: auto = as stored)\n" \
    "  --matformer SPEC       run a MatFormer sub-model: e2b, or ffn=W[,W...][:skip=I[,I...]]\n" \
    "  --lora DIR[:SCALE]     merge the PEFT LoRA adapter in DIR at load, SCALE times\n" \
    "                         its alpha/r (default 1); repeatable (docs/lora.md)\n" \
    "  --json                 machine-readable output\n" \
    "  -h, --help             this help\n" \
    "  --version              print the version\n"

/* --kv-type, for the subcommands that make sessions (generate, chat, logits,
 * bench, serve); parsed with the common options. */
#define CLI_KV_HELP \
    "  --kv-type TYPE         KV cache entries: f32 (exact, default) or f16 (half\n" \
    "                         the memory, attention reads half the bytes)\n"

/* The options that apply to the vocabulary-only subcommands (tokenize,
 * detokenize, template): no threads or weights, and output always JSON. */
#define CLI_VOCAB_HELP \
    "  -m, --model DIR        model directory, or one holding just tokenizer.json\n" \
    "                         (default: the bundled tiny model)\n" \
    "  -h, --help             this help\n" \
    "  --version              print the version\n"

/* The weight types the library supports, for messages. */
#define CLI_WEIGHT_NAMES "auto|f32|f16|bf16|int8|q4"

#endif
