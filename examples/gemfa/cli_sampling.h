/* cli_sampling.h — the sampling flags shared by `generate` and `chat`:
 * --temp, --top-k, --top-p, --min-p, --repeat-penalty, --seed. */
#ifndef GEMFA_CLI_SAMPLING_H
#define GEMFA_CLI_SAMPLING_H

#include <stdint.h>

#include "gemfa.h"

typedef struct cli_sampling {
    int has_temp, has_top_k, has_top_p, has_min_p, has_repeat, has_seed;
    double temp, top_p, min_p, repeat;
    long long top_k;
    uint64_t seed; /* chosen at random when has_seed is 0 */
} cli_sampling;

/* Like cli_common_option: 1 consumed, 0 not a sampling flag, -1 usage error. */
int cli_sampling_option(cli_sampling *s, int argc, char **argv, int *i);

/* A sampler with the model's generation_config defaults overridden by the
 * flags; picks a random seed when none was given.  Prints the error and
 * returns NULL on failure. */
gemfa_sampler *cli_make_sampler(const gemfa_model *model, cli_sampling *s);

#define CLI_SAMPLING_HELP \
    "  --temp T          temperature (0 = greedy; default from generation_config.json)\n" \
    "  --top-k K         keep the K most likely tokens (0 = off)\n" \
    "  --top-p P         nucleus sampling threshold (1 = off)\n" \
    "  --min-p M         drop tokens below M x the top probability (0 = off)\n" \
    "  --repeat-penalty R  repetition penalty over the last 64 tokens (1 = off)\n" \
    "  --seed S          random seed (default: random, printed on stderr)\n"

#endif
