/* cli_draft.h — speculative decoding flags shared by `generate` and `chat`:
 * --draft SPEC (a MatFormer sub-model of the loaded model), --draft-model
 * DIR (a separate checkpoint with the same vocabulary), --draft-k K. */
#ifndef GEMFA_CLI_DRAFT_H
#define GEMFA_CLI_DRAFT_H

#include <stdio.h>

#include "cli.h"
#include "gemfa.h"

typedef struct cli_draft {
    const char *spec;      /* --draft SPEC, or NULL */
    const char *model_dir; /* --draft-model DIR, or NULL */
    long long k;           /* --draft-k; 0 = not given (default 4) */
} cli_draft;

#define CLI_DRAFT_DEFAULT_K 4

/* Like cli_common_option: 1 consumed, 0 not a draft flag, -1 usage error. */
int cli_draft_option(cli_draft *d, int argc, char **argv, int *i);

/* After parsing: usage errors (both --draft and --draft-model, --draft-k
 * alone); returns CLI_OK or CLI_USAGE. */
int cli_draft_check(const char *cmd, const cli_draft *d);

/* 1 when a draft was asked for. */
static inline int cli_draft_on(const cli_draft *d) { return d->spec || d->model_dir; }

/* The two halves of cli_draft_open: the draft model (sub-model or
 * checkpoint), then a speculator on `target`.  Print the error and return
 * CLI_ERROR on failure. */
int cli_draft_model(const cli_common *c, const cli_draft *d, const gemfa_model *target_model,
                    gemfa_model **draft);
int cli_draft_speculator(const cli_draft *d, const gemfa_model *draft, gemfa_session *target,
                         gemfa_speculator **sp);

/* Makes the draft model (*draft, to free with gemfa_model_free after the
 * speculator) and a speculator for `target`.  Prints the error and returns
 * CLI_ERROR on failure (nothing to free then). */
int cli_draft_open(const cli_common *c, const cli_draft *d, const gemfa_model *target_model,
                   gemfa_session *target, gemfa_model **draft, gemfa_speculator **sp);

/* , "speculative": {...} (a member to append inside a JSON object). */
void cli_draft_print_json(FILE *f, const gemfa_speculator *sp, int k);
/* One line of statistics for stderr. */
void cli_draft_print_stats(FILE *f, const gemfa_speculator *sp);

#define CLI_DRAFT_HELP \
    "speculative decoding (docs/speculative.md; same output distribution):\n" \
    "  --draft SPEC           draft with a MatFormer sub-model of the model (SPEC as\n" \
    "                         for --matformer, e.g. e2b)\n" \
    "  --draft-model DIR      draft with another checkpoint of the same vocabulary\n" \
    "  --draft-k K            tokens drafted per step, 1-32 (default 4)\n"

#endif
