/* cmd_bench.c — `gemfa bench`: load time, prompt and decode speed, batched
 * decode, memory, and the decode speed against the machine's bandwidth
 * roofline (bytes one token reads, from the model; bandwidth measured in
 * the same run).  Token ids are fixed pseudo-random text ids, so it runs
 * on checkpoints without a tokenizer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench_bw.h"
#include "cli.h"
#include "cli_gen.h"
#include "commands.h"
#include "kernels/linear.h"
#include "runtime/context.h"
#include "runtime/cost.h"

static const char usage[] =
    "usage: gemfa bench [-m DIR] [-t N] [-p 128] [-n 32] [--weights TYPE] [--batch B] [--json]\n"
    "Measures load time, prompt and decode speed, batched decode, peak memory, and\n"
    "decode speed against the memory-bandwidth ceiling (bytes read per token ÷\n"
    "bandwidth measured in the same run).  Uses fixed token ids (no tokenizer needed).\n\n"
    "  -p N              prompt tokens (default 128)\n"
    "  -n N              decoded tokens after the prompt (default 32)\n"
    "  --batch B         sessions decoded together with gemfa_decode_batch (default 4;\n"
    "                    0 skips it); each is a fork of the prompt's session\n"
    "  --repeat R        runs of prompt + decode + batch; medians are reported (default 1)\n"
    "  --bw-mb MB        size of the bandwidth probe's buffer (default 1024)\n"
    "  --profile         where the decode steps spend their time (on stderr)\n"
    CLI_COMMON_HELP
    "JSON keys: load_s, prompt_tok_s, decode_tok_s, batch_tok_s, peak_rss_mb,\n"
    "bytes_per_token, bandwidth_gbps, roofline_fraction, and details.\n";

typedef struct bench_opts {
    long long prompt, decode, batch, repeat, bw_mb;
    int profile;
} bench_opts;

typedef struct bench_run {
    double prompt_s, decode_s, batch_s, step_median_s;
} bench_run;

static int parse(int argc, char **argv, cli_common *c, bench_opts *o)
{
    for (int i = 1; i < argc;) {
        int r = cli_common_option(c, argc, argv, &i);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        const char *opt = argv[i], *v;
        long long *dst = NULL, lo = 0, hi = 0;
        if (strcmp(opt, "--profile") == 0) {
            o->profile = 1;
            i++;
            continue;
        }
        if (strcmp(opt, "-p") == 0) {
            dst = &o->prompt, lo = 1, hi = 1 << 20;
        } else if (strcmp(opt, "-n") == 0) {
            dst = &o->decode, lo = 1, hi = 1 << 20;
        } else if (strcmp(opt, "--batch") == 0) {
            dst = &o->batch, lo = 0, hi = 256;
        } else if (strcmp(opt, "--repeat") == 0) {
            dst = &o->repeat, lo = 1, hi = 100;
        } else if (strcmp(opt, "--bw-mb") == 0) {
            dst = &o->bw_mb, lo = 16, hi = 1 << 16;
        } else {
            return cli_usage_error(argv[0], "unknown option '%s'", opt);
        }
        if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(opt, v, lo, hi, dst) != 0)
            return CLI_USAGE;
        i++;
    }
    return CLI_OK;
}

static double rss_now_mb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lld %lld", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / 1e6;
}

static double rss_peak_mb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_maxrss * 1024.0 / 1e6; /* Linux: kilobytes */
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Text ids spread over the vocabulary, the same on every run. */
static void fixed_ids(int32_t *ids, size_t n, int64_t n_text)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    const int64_t lo = n_text > 256 ? 256 : 0, span = n_text - lo;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)(lo + (int64_t)((x >> 33) % (uint64_t)span));
    }
}

/* One run: prompt, then (forks for the batch), then single decode steps,
 * then the batch steps.  The session ends with prompt + decode tokens. */
static gemfa_status run_once(gemfa_context *ctx, gemfa_session *s, const bench_opts *o,
                             const int32_t *ids, double *steps, gf_profile *prof,
                             gf_profile *prof_batch, bench_run *out)
{
    gemfa_session *forks[256] = {0};
    gemfa_status st;
    gemfa_session_reset(s);
    double t = cli_now();
    st = gemfa_decode(s, ids, (size_t)o->prompt, NULL);
    out->prompt_s = cli_now() - t;
    for (long long b = 0; st == GEMFA_OK && b < o->batch; b++)
        st = gemfa_session_fork(s, &forks[b]);
    const int32_t *next = ids + o->prompt;
    double total = 0;
    gf_context_set_profile(ctx, prof);
    for (long long i = 0; st == GEMFA_OK && i < o->decode; i++) {
        t = cli_now();
        st = gemfa_decode(s, next + i, 1, NULL);
        steps[i] = cli_now() - t;
        total += steps[i];
    }
    gf_context_set_profile(ctx, NULL);
    out->decode_s = total;
    out->step_median_s = st == GEMFA_OK ? median(steps, (size_t)o->decode) : 0;
    out->batch_s = 0;
    if (st == GEMFA_OK && o->batch > 0) {
        gf_context_set_profile(ctx, prof_batch);
        t = cli_now();
        for (long long i = 0; st == GEMFA_OK && i < o->decode; i++) /* a distinct id per session */
            st = gemfa_decode_batch(ctx, forks, next + i, (size_t)o->batch);
        out->batch_s = cli_now() - t;
        gf_context_set_profile(ctx, NULL);
    }
    for (long long b = 0; b < o->batch; b++)
        gemfa_session_free(forks[b]);
    return st;
}

static void print_profile(const char *what, const gf_profile *p)
{
    static const char *const parts[GF_PROF_COUNT] = {"gathers", "matmul", "attention",
                                                     "row passes", "LM head"};
    if (p->passes == 0)
        return;
    const double n = (double)p->passes;
    double known = 0;
    fprintf(stderr, "profile of %lld %s (%lld rows): ms and calls per step\n",
            (long long)p->passes, what, (long long)p->rows);
    for (int i = 0; i < GF_PROF_COUNT; i++) {
        known += p->seconds[i];
        fprintf(stderr, "  %-11s %9.3f ms %6.1f calls\n", parts[i], 1e3 * p->seconds[i] / n,
                (double)p->calls[i] / n);
    }
    fprintf(stderr, "  %-11s %9.3f ms\n  %-11s %9.3f ms, %.0f thread-pool runs per step\n", "other",
            1e3 * (p->total - known) / n, "total", 1e3 * p->total / n, (double)p->dispatches / n);
}

static const char *weight_name(int64_t w)
{
    switch (w) {
    case GEMFA_WEIGHTS_F32: return "f32";
    case GEMFA_WEIGHTS_F16: return "f16";
    case GEMFA_WEIGHTS_BF16: return "bf16";
    case GEMFA_WEIGHTS_INT8: return "int8";
    default: return "auto";
    }
}

int cmd_bench(int argc, char **argv)
{
    cli_common c = {0};
    bench_opts o = {.prompt = 128, .decode = 32, .batch = 4, .repeat = 1, .bw_mb = 1024};
    int rc = parse(argc, argv, &c, &o);
    if (rc != CLI_OK)
        return rc;
    if (cli_handle_help(&c, usage))
        return CLI_OK;

    gemfa_model *m = NULL;
    gemfa_context *ctx = NULL;
    gemfa_session *s = NULL;
    int32_t *ids = NULL;
    double *steps = NULL;
    bench_run *runs = NULL;
    rc = CLI_ERROR;

    double t0 = cli_now();
    if (cli_load_model(&c, 0, &m) != CLI_OK)
        goto done;
    const double load_s = cli_now() - t0;
    const double load_peak_mb = rss_peak_mb();

    int64_t model_ctx = 0, n_text = 0, wtype = 0;
    gemfa_model_get(m, GEMFA_PROP_CONTEXT_LENGTH, &model_ctx);
    gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE_PER_LAYER_INPUT, &n_text);
    gemfa_model_get(m, GEMFA_PROP_WEIGHT_TYPE, &wtype);
    const long long n_tokens = o.prompt + o.decode;
    if (n_tokens > model_ctx) {
        fprintf(stderr, "gemfa bench: -p + -n = %lld exceeds the model's context length %lld\n",
                n_tokens, (long long)model_ctx);
        goto done;
    }
    if (cli_open_session(&c, m, n_tokens, NULL, NULL, &ctx, &s) != GEMFA_OK)
        goto done;
    const size_t n_ids = (size_t)(n_tokens + o.batch); /* the batch reads `batch` ids per step */
    ids = malloc(n_ids * sizeof *ids);
    steps = malloc((size_t)o.decode * sizeof *steps);
    runs = calloc((size_t)o.repeat, sizeof *runs);
    if (!ids || !steps || !runs) {
        fprintf(stderr, "gemfa bench: out of memory\n");
        goto done;
    }
    fixed_ids(ids, n_ids, n_text);

    gf_profile prof, prof_batch;
    memset(&prof, 0, sizeof prof);
    memset(&prof_batch, 0, sizeof prof_batch);
    /* First token: maps in the weights a zero-copy load has not touched yet. */
    t0 = cli_now();
    gemfa_status st = gemfa_decode(s, ids, 1, NULL);
    const double first_token_s = cli_now() - t0;
    for (long long r = 0; st == GEMFA_OK && r < o.repeat; r++)
        st = run_once(ctx, s, &o, ids, steps, o.profile ? &prof : NULL,
                      o.profile ? &prof_batch : NULL, &runs[r]);
    if (st != GEMFA_OK) {
        cli_report("decode failed", st);
        goto done;
    }
    const double steady_mb = rss_now_mb(), peak_mb = rss_peak_mb();

    double pr[100], de[100], ba[100], sm[100];
    for (long long r = 0; r < o.repeat; r++) {
        pr[r] = (double)o.prompt / runs[r].prompt_s;
        de[r] = (double)o.decode / runs[r].decode_s;
        ba[r] = o.batch > 0 ? (double)(o.batch * o.decode) / runs[r].batch_s : 0;
        sm[r] = runs[r].step_median_s;
    }
    const double prompt_tok_s = median(pr, (size_t)o.repeat);
    const double decode_tok_s = median(de, (size_t)o.repeat);
    const double batch_tok_s = median(ba, (size_t)o.repeat);
    const double step_ms = 1e3 * median(sm, (size_t)o.repeat);

    /* Bandwidth last: its buffer must not count in the peak above. */
    bench_bw bw;
    const int bw_threads = c.threads > 0 ? c.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (bench_bandwidth((size_t)o.bw_mb << 20, bw_threads, 7, &bw) != 0) {
        fprintf(stderr, "gemfa bench: cannot run the bandwidth probe (%lld MB)\n", o.bw_mb);
        goto done;
    }
    gf_decode_bytes cost; /* at the mean position of the decode steps */
    gf_decode_bytes_at(m, o.prompt + o.decode / 2, &cost);
    const double ceiling = bw.best_gbps * 1e9 / (double)cost.total;
    const double roofline = decode_tok_s / ceiling;

    if (c.json) {
        printf("{\"load_s\": %.4f, \"prompt_tok_s\": %.3f, \"decode_tok_s\": %.3f, "
               "\"batch_tok_s\": %.3f, \"peak_rss_mb\": %.1f, \"bytes_per_token\": %lld, "
               "\"bandwidth_gbps\": %.2f, \"roofline_fraction\": %.4f,\n"
               " \"weights\": \"%s\", \"threads\": %d, \"kernels\": \"%s\", "
               "\"prompt_tokens\": %lld, \"decode_tokens\": %lld, \"batch\": %lld, "
               "\"repeat\": %lld,\n"
               " \"first_token_s\": %.4f, \"decode_step_ms_median\": %.3f, "
               "\"batch_speedup\": %.3f, \"rss_mb\": %.1f, \"load_peak_rss_mb\": %.1f,\n"
               " \"bytes_weights\": %lld, \"bytes_gathers\": %lld, \"bytes_kv\": %lld, "
               "\"bandwidth_median_gbps\": %.2f, \"ceiling_tok_s\": %.3f}\n",
               load_s, prompt_tok_s, decode_tok_s, batch_tok_s, peak_mb, (long long)cost.total,
               bw.best_gbps, roofline, weight_name(wtype), bw_threads, gf_kernel_level_in_use(),
               o.prompt, o.decode, o.batch, o.repeat, first_token_s, step_ms,
               decode_tok_s > 0 ? batch_tok_s / decode_tok_s : 0, steady_mb, load_peak_mb,
               (long long)cost.weights, (long long)cost.gathers, (long long)cost.kv,
               bw.median_gbps, ceiling);
    } else {
        printf("model        %s (%s weights, %d threads, %s kernels)\n", cli_model_dir(&c),
               weight_name(wtype), bw_threads, gf_kernel_level_in_use());
        printf("load         %.3f s (peak RSS %.0f MB); first token %.3f s\n", load_s,
               load_peak_mb, first_token_s);
        printf("prompt       %.2f tok/s (%lld tokens)\n", prompt_tok_s, o.prompt);
        printf("decode       %.2f tok/s (%lld tokens; median step %.1f ms)\n", decode_tok_s,
               o.decode, step_ms);
        if (o.batch > 0)
            printf("batch        %.2f tok/s aggregate over %lld sessions (%.2fx one session)\n",
                   batch_tok_s, o.batch, decode_tok_s > 0 ? batch_tok_s / decode_tok_s : 0);
        printf("memory       peak RSS %.0f MB, now %.0f MB\n", peak_mb, steady_mb);
        printf("roofline     %.3f GB per token (weights %.3f, KV %.4f), bandwidth %.1f GB/s "
               "(median %.1f)\n",
               (double)cost.total / 1e9, (double)cost.weights / 1e9, (double)cost.kv / 1e9,
               bw.best_gbps, bw.median_gbps);
        printf("             ceiling %.2f tok/s; decode reaches %.1f %%\n", ceiling,
               100.0 * roofline);
    }
    if (o.profile) {
        print_profile("decode steps", &prof);
        print_profile("batch steps", &prof_batch);
    }
    rc = CLI_OK;
done:
    free(ids);
    free(steps);
    free(runs);
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
    return rc;
}
