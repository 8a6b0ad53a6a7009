/* cli_draft.c — the --draft flags (cli_draft.h). */
#include "cli_draft.h"

#include <stdio.h>
#include <string.h>

int cli_draft_option(cli_draft *d, int argc, char **argv, int *i)
{
    const char *opt = argv[*i];
    if (strcmp(opt, "--draft") == 0) {
        if (!(d->spec = cli_value(argc, argv, i)))
            return -1;
    } else if (strcmp(opt, "--draft-model") == 0) {
        if (!(d->model_dir = cli_value(argc, argv, i)))
            return -1;
    } else if (strcmp(opt, "--draft-k") == 0) {
        const char *v = cli_value(argc, argv, i);
        if (!v || cli_parse_int(opt, v, 1, GEMFA_SPECULATOR_MAX_K, &d->k) != 0)
            return -1;
    } else {
        return 0;
    }
    (*i)++;
    return 1;
}

int cli_draft_check(const char *cmd, const cli_draft *d)
{
    if (d->spec && d->model_dir)
        return cli_usage_error(cmd, "--draft and --draft-model exclude each other");
    if (d->k && !cli_draft_on(d))
        return cli_usage_error(cmd, "--draft-k needs --draft or --draft-model");
    return CLI_OK;
}

int cli_draft_model(const cli_common *c, const cli_draft *d, const gemfa_model *target_model,
                    gemfa_model **draft)
{
    *draft = NULL;
    if (d->spec) {
        gemfa_status st = gemfa_model_derive_submodel(target_model, d->spec, draft);
        if (st != GEMFA_OK) {
            cli_report("--draft", st);
            return CLI_ERROR;
        }
        return CLI_OK;
    }
    cli_common dc = *c;
    dc.model_dir = d->model_dir;
    return cli_load_model(&dc, 0, draft);
}

int cli_draft_speculator(const cli_draft *d, const gemfa_model *draft, gemfa_session *target,
                         gemfa_speculator **sp)
{
    int k = d->k ? (int)d->k : CLI_DRAFT_DEFAULT_K;
    gemfa_status st = gemfa_speculator_new(target, draft, k, sp);
    if (st != GEMFA_OK) {
        cli_report("cannot set up the draft", st);
        return CLI_ERROR;
    }
    return CLI_OK;
}

int cli_draft_open(const cli_common *c, const cli_draft *d, const gemfa_model *target_model,
                   gemfa_session *target, gemfa_model **draft, gemfa_speculator **sp)
{
    if (cli_draft_model(c, d, target_model, draft) != CLI_OK)
        return CLI_ERROR;
    if (cli_draft_speculator(d, *draft, target, sp) != CLI_OK) {
        gemfa_model_free(*draft);
        *draft = NULL;
        return CLI_ERROR;
    }
    return CLI_OK;
}

void cli_draft_print_json(FILE *f, const gemfa_speculator *sp, int k)
{
    gemfa_speculator_stats st = {0};
    gemfa_speculator_get_stats(sp, &st);
    fprintf(f,
            ", \"speculative\": {\"k\": %d, \"steps\": %llu, \"drafted\": %llu, "
            "\"accepted\": %llu, \"acceptance\": %.4f, \"tokens_per_step\": %.4f, "
            "\"draft_s\": %.4f, \"verify_s\": %.4f}",
            k, (unsigned long long)st.steps, (unsigned long long)st.drafted,
            (unsigned long long)st.accepted,
            st.drafted ? (double)st.accepted / (double)st.drafted : 0.0,
            st.steps ? (double)st.emitted / (double)st.steps : 0.0, st.draft_seconds,
            st.verify_seconds);
}

void cli_draft_print_stats(FILE *f, const gemfa_speculator *sp)
{
    gemfa_speculator_stats st = {0};
    gemfa_speculator_get_stats(sp, &st);
    fprintf(f,
            "speculative: %llu steps, %llu of %llu drafts accepted (%.1f %%), %.2f tokens per "
            "step; drafting %.2f s, verifying %.2f s\n",
            (unsigned long long)st.steps, (unsigned long long)st.accepted,
            (unsigned long long)st.drafted,
            st.drafted ? 100.0 * (double)st.accepted / (double)st.drafted : 0.0,
            st.steps ? (double)st.emitted / (double)st.steps : 0.0, st.draft_seconds,
            st.verify_seconds);
}
