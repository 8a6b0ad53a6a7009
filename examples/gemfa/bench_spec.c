/* bench_spec.c — the speculative oracle benchmark (bench_spec.h). */
#include "bench_spec.h"

#include <stdlib.h>
#include <string.h>

#include "cli_gen.h"
#include "runtime/context.h"

typedef struct oracle {
    const int32_t *ids; /* the plain continuation */
    size_t n, n_prompt;
} oracle;

static int oracle_draft(void *user, const int32_t *tokens, size_t n_tokens, int32_t *ids,
                        size_t max)
{
    (void)tokens;
    const oracle *o = user;
    size_t at = n_tokens - o->n_prompt, r = 0;
    for (; r < max && at + r < o->n; r++)
        ids[r] = o->ids[at + r];
    return (int)r;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

gemfa_status bench_spec_run(gemfa_context *ctx, const gemfa_model *draft, const char *draft_name,
                            const int32_t *prompt, size_t n_prompt, size_t n_decode, int k,
                            int repeat, struct gf_profile *prof, bench_spec_result *out)
{
    memset(out, 0, sizeof *out);
    out->k = k;
    out->draft = draft ? draft_name : "oracle";
    gemfa_session_options *so = NULL;
    gemfa_session *s = NULL;
    gemfa_sampler *smp = NULL;
    gemfa_speculator *sp = NULL;
    int32_t *plain = malloc((n_decode + 1) * sizeof *plain);
    int32_t *spec = malloc((n_decode + (size_t)k + 2) * sizeof *spec);
    double *steps = malloc((n_decode + 1) * sizeof *steps);
    double *rates_p = calloc((size_t)repeat, sizeof *rates_p);
    double *rates_s = calloc((size_t)repeat, sizeof *rates_s);
    double *med_p = calloc((size_t)repeat, sizeof *med_p);
    double *med_s = calloc((size_t)repeat, sizeof *med_s);
    gemfa_status st = GEMFA_ERR_OUT_OF_MEMORY;
    if (!plain || !spec || !steps || !rates_p || !rates_s || !med_p || !med_s)
        goto done;
    if ((st = gemfa_session_options_new(&so)) != GEMFA_OK ||
        (st = gemfa_session_options_set_max_context(so, (int64_t)(n_prompt + n_decode) + k + 1)) !=
            GEMFA_OK ||
        (st = gemfa_session_new(ctx, so, &s)) != GEMFA_OK ||
        (st = gemfa_sampler_new(NULL, &smp)) != GEMFA_OK ||
        (st = gemfa_sampler_set_temperature(smp, 0.0f)) != GEMFA_OK)
        goto done;
    oracle o = {plain, n_decode, n_prompt};
    out->same_tokens = 1;
    for (int r = 0; r < repeat; r++) {
        /* plain greedy: sample, decode, as cli_generate */
        gemfa_session_reset(s);
        if ((st = gemfa_decode(s, prompt, n_prompt, NULL)) != GEMFA_OK)
            goto done;
        const float *lg;
        size_t nv;
        double t0 = cli_now();
        for (size_t i = 0; i < n_decode; i++) {
            double t = cli_now();
            const int32_t *h;
            size_t nh;
            if ((st = gemfa_session_logits(s, &lg, &nv)) != GEMFA_OK ||
                (st = gemfa_session_tokens(s, &h, &nh)) != GEMFA_OK ||
                (st = gemfa_sample(smp, lg, nv, h, nh, &plain[i])) != GEMFA_OK ||
                (st = gemfa_decode(s, &plain[i], 1, NULL)) != GEMFA_OK)
                goto done;
            steps[i] = cli_now() - t;
        }
        rates_p[r] = (double)n_decode / (cli_now() - t0);
        med_p[r] = median(steps, n_decode);

        /* the oracle speculator over the same prompt */
        gemfa_session_reset(s);
        if ((st = gemfa_decode(s, prompt, n_prompt, NULL)) != GEMFA_OK)
            goto done;
        gemfa_speculator_free(sp);
        sp = NULL;
        st = draft ? gemfa_speculator_new(s, draft, k, &sp)
                   : gemfa_speculator_new_fn(s, oracle_draft, &o, k, &sp);
        if (st != GEMFA_OK)
            goto done;
        size_t n = 0, n_steps = 0;
        t0 = cli_now();
        while (n < n_decode) {
            size_t got = 0;
            double t = cli_now();
            gf_context_set_profile(ctx, prof);
            st = gemfa_speculator_step(sp, smp, spec + n, (size_t)k + 1, &got);
            gf_context_set_profile(ctx, NULL);
            if (st != GEMFA_OK)
                goto done;
            steps[n_steps++] = cli_now() - t;
            n += got;
        }
        /* the last step's token is pending: decode it, as the plain loop did */
        if ((st = gemfa_speculator_flush(sp)) != GEMFA_OK)
            goto done;
        /* only the n_decode tokens the plain run made count (the last step may
         * have returned a few more) */
        rates_s[r] = (double)n_decode / (cli_now() - t0);
        med_s[r] = median(steps, n_steps);
        if (memcmp(plain, spec, n_decode * sizeof *plain) != 0)
            out->same_tokens = 0;
    }
    gemfa_speculator_stats stats;
    gemfa_speculator_get_stats(sp, &stats);
    out->plain_tok_s = median(rates_p, (size_t)repeat);
    out->spec_tok_s = median(rates_s, (size_t)repeat);
    out->speedup = out->plain_tok_s > 0 ? out->spec_tok_s / out->plain_tok_s : 0;
    out->acceptance = stats.drafted ? (double)stats.accepted / (double)stats.drafted : 0;
    out->tokens_per_step = stats.steps ? (double)stats.emitted / (double)stats.steps : 0;
    out->plain_step_ms = 1e3 * median(med_p, (size_t)repeat);
    out->verify_ms = 1e3 * median(med_s, (size_t)repeat);
    out->draft_row_ms = stats.draft_rows ? 1e3 * stats.draft_seconds / (double)stats.draft_rows : 0;
    st = GEMFA_OK;
done:
    gemfa_speculator_free(sp);
    gemfa_sampler_free(smp);
    gemfa_session_free(s);
    gemfa_session_options_free(so);
    free(plain);
    free(spec);
    free(steps);
    free(rates_p);
    free(rates_s);
    free(med_p);
    free(med_s);
    return st;
}

void bench_spec_print(FILE *f, const bench_spec_result *r, int json)
{
    if (json) {
        fprintf(f,
                ",\n \"speculative\": {\"draft\": \"%s\", \"k\": %d, \"plain_tok_s\": %.3f, "
                "\"speculative_tok_s\": %.3f, \"speedup\": %.3f, \"acceptance\": %.4f, "
                "\"tokens_per_step\": %.3f, \"plain_step_ms\": %.3f, \"step_ms\": %.3f, "
                "\"draft_row_ms\": %.3f, \"same_tokens\": %s}",
                r->draft, r->k, r->plain_tok_s, r->spec_tok_s, r->speedup, r->acceptance,
                r->tokens_per_step, r->plain_step_ms, r->verify_ms, r->draft_row_ms,
                r->same_tokens ? "true" : "false");
        return;
    }
    fprintf(f,
            "speculative  %s draft, k %d: %.2f tok/s against plain greedy %.2f tok/s "
            "(%.2fx)\n"
            "             %.2f tokens per step, acceptance %.3f; step %.1f ms (median) vs "
            "%.1f ms plain; draft %.1f ms per position%s\n",
            r->draft, r->k, r->spec_tok_s, r->plain_tok_s, r->speedup, r->tokens_per_step,
            r->acceptance, r->verify_ms, r->plain_step_ms, r->draft_row_ms,
            r->same_tokens ? "" : "; output differs from plain greedy (near-tie)");
}
