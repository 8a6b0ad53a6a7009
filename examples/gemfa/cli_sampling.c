/* cli_sampling.c — sampling flags and the sampler they configure. */
#include "cli_sampling.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define REPEAT_WINDOW 64

int cli_sampling_option(cli_sampling *s, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *v;
    long long n;
    if (strcmp(a, "--temp") == 0) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_float(a, v, 0, 100, &s->temp) != 0)
            return -1;
        s->has_temp = 1;
    } else if (strcmp(a, "--top-k") == 0) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 0, 1 << 30, &s->top_k) != 0)
            return -1;
        s->has_top_k = 1;
    } else if (strcmp(a, "--top-p") == 0) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_positive(a, v, 1, &s->top_p) != 0)
            return -1;
        s->has_top_p = 1;
    } else if (strcmp(a, "--min-p") == 0) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_float(a, v, 0, 1, &s->min_p) != 0)
            return -1;
        s->has_min_p = 1;
    } else if (strcmp(a, "--repeat-penalty") == 0) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_positive(a, v, 100, &s->repeat) != 0)
            return -1;
        s->has_penalties = 1;
    } else if (strcmp(a, "--frequency-penalty") == 0) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_float(a, v, -2, 2, &s->frequency) != 0)
            return -1;
        s->has_penalties = 1;
    } else if (strcmp(a, "--presence-penalty") == 0) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_float(a, v, -2, 2, &s->presence) != 0)
            return -1;
        s->has_penalties = 1;
    } else if (strcmp(a, "--repeat-last-n") == 0) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 0, 1 << 20, &s->last_n) != 0)
            return -1;
        s->has_penalties = 1;
    } else if (strcmp(a, "--seed") == 0) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 0, INT64_MAX, &n) != 0)
            return -1;
        s->seed = (uint64_t)n;
        s->has_seed = 1;
    } else {
        return 0;
    }
    *i += 1;
    return 1;
}

void cli_sampling_init(cli_sampling *s)
{
    memset(s, 0, sizeof *s);
    s->repeat = 1;
    s->last_n = REPEAT_WINDOW;
}

static uint64_t random_seed(void)
{
    uint64_t seed = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&seed, sizeof seed, 1, f) != 1)
        seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (f)
        fclose(f);
    return seed & INT64_MAX; /* printable and reusable with --seed */
}

gemfa_sampler *cli_make_sampler(const gemfa_model *model, cli_sampling *s)
{
    gemfa_sampler *smp = NULL;
    gemfa_status st = gemfa_sampler_new(model, &smp);
    if (!s->has_seed) {
        s->seed = random_seed();
        s->has_seed = 1;
        fprintf(stderr, "seed: %llu\n", (unsigned long long)s->seed);
    }
    if (st == GEMFA_OK && s->has_temp)
        st = gemfa_sampler_set_temperature(smp, (float)s->temp);
    if (st == GEMFA_OK && s->has_top_k)
        st = gemfa_sampler_set_top_k(smp, (int32_t)s->top_k);
    if (st == GEMFA_OK && s->has_top_p)
        st = gemfa_sampler_set_top_p(smp, (float)s->top_p);
    if (st == GEMFA_OK && s->has_min_p)
        st = gemfa_sampler_set_min_p(smp, (float)s->min_p);
    if (st == GEMFA_OK && s->has_penalties)
        st = gemfa_sampler_set_penalties(smp, (float)s->repeat, (float)s->frequency,
                                         (float)s->presence, (int32_t)s->last_n);
    if (st == GEMFA_OK)
        st = gemfa_sampler_set_seed(smp, s->seed);
    if (st != GEMFA_OK) {
        cli_report("sampler", st);
        gemfa_sampler_free(smp);
        return NULL;
    }
    return smp;
}
