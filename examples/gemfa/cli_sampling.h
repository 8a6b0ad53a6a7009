/* cli_sampling.h — the sampling flags shared by `generate` and `chat`:
 * --temp, --top-k, --top-p, --min-p, the penalties, --seed. */
#ifndef GEMFA_CLI_SAMPLING_H
#define GEMFA_CLI_SAMPLING_H

#include <stdint.h>

#include "gemfa.h"

typedef struct cli_sampling {
    int has_temp, has_top_k, has_top_p, has_min_p, has_penalties, has_seed;
    double temp, top_p, min_p, repeat, frequency, presence;
    long long top_k, last_n;
    uint64_t seed; /* chosen at random when has_seed is 0 */
} cli_sampling;

/* No flags given: the model's defaults (call before parsing). */
void cli_sampling_init(cli_sampling *s);

/* Like cli_common_option: 1 consumed, 0 not a sampling flag, -1 usage error. */
int cli_sampling_option(cli_sampling *s, int argc, char **argv, int *i);

/* A sampler with the model's generation_config defaults overridden by the
 * flags; picks a random seed when none was given.  Prints the error and
 * returns NULL on failure. */
gemfa_sampler *cli_make_sampler(const gemfa_model *model, cli_sampling *s);

#define CLI_SAMPLING_HELP \
    "sampling (defaults from the model's generation_config.json):\n" \
    "  --temp T               temperature, 0-100 (0 = greedy)\n" \
    "  --top-k K              keep the K most likely tokens, 0-1073741824 (0 = off)\n" \
    "  --top-p P              nucleus threshold, above 0 up to 1 (1 = off)\n" \
    "  --min-p M              drop tokens under M x the top probability, 0-1 (0: off)\n" \
    "  --repeat-penalty R     repetition penalty, above 0 up to 100 (1 = off)\n" \
    "  --frequency-penalty F  subtract F x count from a seen token's logit, -2 to 2\n" \
    "  --presence-penalty P   subtract P from a seen token's logit, -2 to 2\n" \
    "  --repeat-last-n N      tokens the penalties look back over, 0-1048576\n" \
    "                         (default 64; 0 = the whole history)\n" \
    "  --seed S               random seed, 0-9223372036854775807 (default: random,\n" \
    "                         printed on stderr)\n"

#endif
