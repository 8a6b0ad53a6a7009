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
#include "bench_spec.h"
#include "cli.h"
#include "cli_gen.h"
#include "cli_json.h"
#include "commands.h"
#include "kernels/linear.h"
#include "kernels/linear_batch.h"
#include "runtime/context.h"
#include "runtime/cost.h"
#include "runtime/session.h"

static const char usage[] =
    "usage: gemfa bench [-m DIR] [-t N] [-p N] [-n N] [--depth N] [--weights TYPE]\n"
    "                   [--kv-type TYPE] [--batch B] [--json]\n"
    "                   [--speculative-oracle K | --draft SPEC --draft-k K]\n"
    "Measures load time, prompt and decode speed, batched decode, peak memory, and\n"
    "decode speed against the memory-bandwidth ceiling: bandwidth ÷ bytes read per\n"
    "token, the bandwidth measured between the decode steps of the same run (a probe\n"
    "process reads a buffer with as many threads).  Uses fixed token ids (no tokenizer\n"
    "needed).  The first decoded token is timed apart (it maps in zero-copy weights).\n\n"
    "options:\n"
    "  -p, --prompt-tokens N  prompt tokens, 1-1048576 (default 128)\n"
    "  -n, --decode-tokens N  decoded tokens after the prompt, 1-1048576 (default 32);\n"
    "                         prompt + decoded tokens must fit the model's context\n"
    "  --depth N              context tokens before the decode steps, 0-1048576\n"
    "                         (default: the prompt's).  Deeper than the prompt: a\n"
    "                         second session decodes N tokens as one long prompt\n"
    "                         (timed once, kept across --repeat runs), and its decode\n"
    "                         steps alternate with steps of the prompt's session, so\n"
    "                         both depths are measured under the same load\n"
    "  --zero-fill            with --depth: the context's keys and values are zeros\n"
    "                         instead of computed (a decode step does the same work;\n"
    "                         no long prompt is run or timed)\n"
    "  --batch B              sessions decoded together with gemfa_decode_batch, 0-256\n"
    "                         (default 4; 0 skips it); each is a fork of the prompt's\n"
    "  --repeat R             runs of prompt + decode + batch, 1-100; medians are\n"
    "                         reported (default 1)\n"
    "  --bw-mb MB             buffer of the bandwidth probe, read between decode steps,\n"
    "                         16-65536 (default 512)\n"
    "  --profile              where prompts, decode and batch steps spend their time\n"
    "                         (stderr)\n"
    "  --speculative-oracle K also greedy decoding of -n tokens against a speculator\n"
    "                         whose draft replays that output (always right, free),\n"
    "                         verifying K tokens per pass, 1-32: the verification\n"
    "                         side's ceiling (docs/speculative.md)\n"
    "  --draft SPEC           the same with a MatFormer sub-model as the draft (SPEC\n"
    "                         as for --matformer): its cost and acceptance\n"
    "  --draft-k K            tokens drafted per step with --draft, 1-32 (default 4)\n"
    "common options:\n" CLI_COMMON_HELP CLI_KV_HELP
    "JSON keys: load_s, prompt_tok_s, decode_tok_s, batch_tok_s, peak_rss_mb,\n"
    "bytes_per_token, bandwidth_gbps, roofline_fraction, and details (among them\n"
    "depth, kv_type, kv_bytes, kv_bytes_full_context, decode_shallow_tok_s,\n"
    "depth_decode_ratio, long_prompt_tok_s, long_prompt_ratio; with\n"
    "--speculative-oracle or --draft, \"speculative\": {draft, k, plain_tok_s,\n"
    "speculative_tok_s, speedup, acceptance, tokens_per_step, plain_step_ms, step_ms,\n"
    "draft_row_ms, same_tokens}).\n";

typedef struct bench_opts {
    long long prompt, decode, batch, repeat, bw_mb, spec_k, draft_k;
    long long depth; /* depth < 0: the prompt's */
    const char *draft; /* --draft SPEC */
    int profile;
    int zero_fill; /* --zero-fill */
} bench_opts;

typedef struct bench_run {
    double prompt_s, decode_s, batch_s, step_median_s;
    double shallow_s; /* --depth: the interleaved steps at the prompt's depth */
    double fill_s;    /* --depth: the long prompt (first run only; 0 after) */
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
        if (strcmp(opt, "--profile") == 0 || strcmp(opt, "--zero-fill") == 0) {
            *(opt[2] == 'p' ? &o->profile : &o->zero_fill) = 1;
            i++;
            continue;
        }
        if (strcmp(opt, "--draft") == 0) {
            if (!(o->draft = cli_value(argc, argv, &i)))
                return CLI_USAGE;
            i++;
            continue;
        }
        if (cli_opt(opt, "-p", "--prompt-tokens")) {
            dst = &o->prompt, lo = 1, hi = 1 << 20;
        } else if (cli_opt(opt, "-n", "--decode-tokens")) {
            dst = &o->decode, lo = 1, hi = 1 << 20;
        } else if (strcmp(opt, "--batch") == 0) {
            dst = &o->batch, lo = 0, hi = 256;
        } else if (strcmp(opt, "--depth") == 0) {
            dst = &o->depth, lo = 0, hi = 1 << 20;
        } else if (strcmp(opt, "--repeat") == 0) {
            dst = &o->repeat, lo = 1, hi = 100;
        } else if (strcmp(opt, "--speculative-oracle") == 0) {
            dst = &o->spec_k, lo = 1, hi = GEMFA_SPECULATOR_MAX_K;
        } else if (strcmp(opt, "--draft-k") == 0) {
            dst = &o->draft_k, lo = 1, hi = GEMFA_SPECULATOR_MAX_K;
        } else if (strcmp(opt, "--bw-mb") == 0) {
            dst = &o->bw_mb, lo = 16, hi = 1 << 16;
        } else {
            return cli_usage_error(argv[0], "unknown option '%s'", opt);
        }
        if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(opt, v, lo, hi, dst) != 0)
            return CLI_USAGE;
        i++;
    }
    if (o->draft && o->spec_k)
        return cli_usage_error(argv[0], "--draft and --speculative-oracle exclude each other");
    if (o->draft_k && !o->draft)
        return cli_usage_error(argv[0], "--draft-k needs --draft");
    if (o->draft && !o->draft_k)
        o->draft_k = 4;
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
    const int64_t lo = n_text > 256 ? 256 : 0, span = n_text - lo > 0 ? n_text - lo : 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)(lo + (int64_t)((x >> 33) % (uint64_t)span));
    }
}

/* The state of one benchmark. */
typedef struct bench {
    bench_opts o;
    gemfa_context *ctx;
    gemfa_session *s;     /* the prompt's and, without a deeper --depth, the decode's */
    gemfa_session *deep;  /* --depth beyond the prompt: filled once, truncated back per run */
    long long depth;      /* context tokens before the decode steps */
    const int32_t *ids;
    bench_bw bw;
    double *steps;                /* [decode] seconds of each decode step of a run */
    double *shallow;              /* [decode] --depth: the interleaved shallow steps */
    double *bw_decode, *bw_batch; /* probes between the steps, GB/s */
    size_t n_bw_decode, n_bw_batch;
    gf_profile prof[4];           /* prompt, decode steps, batch steps, speculative steps */
    int profile;
} bench;

enum { PROF_PROMPT, PROF_DECODE, PROF_BATCH, PROF_SPEC };

/* A failed probe stops the run like a failed decode; it says why itself. */
#define PROBE_FAILED ((gemfa_status)-1000)

static gemfa_status probe(bench *B, double *into, size_t *n)
{
    if (bench_bw_measure(&B->bw, &into[*n]) != 0) {
        fprintf(stderr, "gemfa bench: the bandwidth probe failed (out of memory for %lld MB?)\n",
                B->o.bw_mb);
        return PROBE_FAILED;
    }
    *n += 1;
    return GEMFA_OK;
}

static void profile_on(bench *B, int which)
{
    gf_context_set_profile(B->ctx, B->profile ? &B->prof[which] : NULL);
}

/* One run: prompt, then (forks for the batch), then single decode steps,
 * then the batch steps, with a bandwidth probe before and after every step
 * (not timed).  The session ends with prompt + decode tokens. */
static gemfa_status run_once(bench *B, bench_run *out)
{
    const bench_opts *o = &B->o;
    gemfa_session *forks[256] = {0};
    gemfa_status st;
    gemfa_session_reset(B->s);
    profile_on(B, PROF_PROMPT);
    double t = cli_now();
    st = gemfa_decode(B->s, B->ids, (size_t)o->prompt, NULL);
    out->prompt_s = cli_now() - t;
    gf_context_set_profile(B->ctx, NULL);
    gemfa_session *ds = B->s; /* the session the decode steps extend */
    out->fill_s = 0;
    if (st == GEMFA_OK && B->deep) {
        ds = B->deep;
        const size_t have = gemfa_session_n_tokens(ds);
        if (have > (size_t)B->depth) { /* earlier runs' steps: O(1) while within the ring */
            st = gemfa_session_truncate(ds, (size_t)B->depth);
        } else if (have == 0 && o->zero_fill) {
            /* --zero-fill: the session holds `depth` positions whose keys and
             * values are zeros (written, so resident like computed ones); the
             * decode steps attend over them with the same work */
            gemfa_session *z = ds;
            memset(z->kv.data, 0, z->kv.data_bytes);
            memcpy(z->tokens, B->ids, (size_t)B->depth * sizeof *z->tokens);
            z->n_tokens = B->depth;
            z->has_logits = 0;
            z->ring_lo = z->kv.ring_slots < z->max_context && B->depth > z->kv.ring_slots
                             ? B->depth - z->kv.ring_slots
                             : 0;
        } else if (have == 0) { /* a long prompt of `depth` tokens */
            t = cli_now();
            st = gemfa_decode(ds, B->ids, (size_t)B->depth, NULL);
            out->fill_s = cli_now() - t;
        }
    }
    for (long long b = 0; st == GEMFA_OK && b < o->batch; b++)
        st = gemfa_session_fork(ds, &forks[b]);
    const int32_t *next = B->ids + B->depth;
    double total = 0, shallow = 0;
    if (st == GEMFA_OK)
        st = probe(B, B->bw_decode, &B->n_bw_decode);
    for (long long i = 0; st == GEMFA_OK && i < o->decode; i++) {
        if (B->deep) { /* the same step at the prompt's depth, just before */
            t = cli_now();
            st = gemfa_decode(B->s, B->ids + o->prompt + i, 1, NULL);
            B->shallow[i] = cli_now() - t;
            shallow += B->shallow[i];
            if (st != GEMFA_OK)
                break;
        }
        profile_on(B, PROF_DECODE);
        t = cli_now();
        st = gemfa_decode(ds, next + i, 1, NULL);
        B->steps[i] = cli_now() - t;
        gf_context_set_profile(B->ctx, NULL);
        total += B->steps[i];
        if (st == GEMFA_OK)
            st = probe(B, B->bw_decode, &B->n_bw_decode);
    }
    out->decode_s = total;
    out->shallow_s = shallow;
    out->step_median_s = st == GEMFA_OK ? median(B->steps, (size_t)o->decode) : 0;
    out->batch_s = 0;
    if (st == GEMFA_OK && o->batch > 0) {
        st = probe(B, B->bw_batch, &B->n_bw_batch);
        for (long long i = 0; st == GEMFA_OK && i < o->decode; i++) {
            profile_on(B, PROF_BATCH);
            t = cli_now();
            st = gemfa_decode_batch(B->ctx, forks, next + i, (size_t)o->batch); /* an id each */
            out->batch_s += cli_now() - t;
            gf_context_set_profile(B->ctx, NULL);
            if (st == GEMFA_OK)
                st = probe(B, B->bw_batch, &B->n_bw_batch);
        }
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
    fprintf(stderr, "profile of %lld %s (%lld rows): ms and calls per pass\n",
            (long long)p->passes, what, (long long)p->rows);
    for (int i = 0; i < GF_PROF_COUNT; i++) {
        known += p->seconds[i];
        fprintf(stderr, "  %-11s %9.3f ms %6.1f calls\n", parts[i], 1e3 * p->seconds[i] / n,
                (double)p->calls[i] / n);
    }
    fprintf(stderr, "  %-11s %9.3f ms\n  %-11s %9.3f ms, %.0f thread-pool runs per pass\n", "other",
            1e3 * (p->total - known) / n, "total", 1e3 * p->total / n, (double)p->dispatches / n);
}

static const char *weight_name(int64_t w)
{
    switch (w) {
    case GEMFA_WEIGHTS_F32: return "f32";
    case GEMFA_WEIGHTS_F16: return "f16";
    case GEMFA_WEIGHTS_BF16: return "bf16";
    case GEMFA_WEIGHTS_INT8: return "int8";
    case GEMFA_WEIGHTS_Q4: return "q4";
    default: return "auto";
    }
}

/* Prints the results (JSON or text). */
typedef struct bench_result {
    double load_s, load_peak_mb, first_token_s, prompt_tok_s, decode_tok_s, batch_tok_s, step_ms;
    double peak_mb, steady_mb, bw_median, bw_best, bw_batch, ceiling, roofline;
    gf_decode_bytes cost;
    int64_t weights;
    int threads;
    long long depth;
    gemfa_kv_type kv_type;
    size_t kv_bytes, kv_bytes_full; /* the decode session's K/V; a full-context session's */
    long long full_context;
    double shallow_tok_s, long_prompt_tok_s; /* --depth deeper than the prompt, else 0 */
    bench_spec_result spec; /* spec.k 0: not run */
} bench_result;

static void report(const cli_common *c, const bench_opts *o, const bench_result *r)
{
    const double speedup = r->decode_tok_s > 0 ? r->batch_tok_s / r->decode_tok_s : 0;
    if (c->json) {
        fputc('{', stdout);
        if (c->matformer) { /* the MatFormer sub-model measured */
            fputs("\"matformer\": ", stdout);
            cli_json_string(stdout, c->matformer, strlen(c->matformer));
            fputs(", ", stdout);
        }
        printf("\"load_s\": %.4f, \"prompt_tok_s\": %.3f, \"decode_tok_s\": %.3f, "
               "\"batch_tok_s\": %.3f, \"peak_rss_mb\": %.1f, \"bytes_per_token\": %lld, "
               "\"bandwidth_gbps\": %.2f, \"roofline_fraction\": %.4f,\n"
               " \"weights\": \"%s\", \"threads\": %d, \"kernels\": \"%s\", \"amx\": \"%s\", "
               "\"prompt_tokens\": %lld, \"decode_tokens\": %lld, \"batch\": %lld, "
               "\"repeat\": %lld,\n"
               " \"first_token_s\": %.4f, \"decode_step_ms_median\": %.3f, "
               "\"batch_speedup\": %.3f, \"rss_mb\": %.1f, \"load_peak_rss_mb\": %.1f,\n"
               " \"bytes_weights\": %lld, \"bytes_gathers\": %lld, \"bytes_kv\": %lld, "
               "\"bandwidth_best_gbps\": %.2f, \"bandwidth_batch_gbps\": %.2f, "
               "\"ceiling_tok_s\": %.3f,\n"
               " \"depth\": %lld, \"kv_type\": \"%s\", \"kv_bytes\": %zu, "
               "\"kv_bytes_full_context\": %zu, \"full_context\": %lld,\n"
               " \"decode_shallow_tok_s\": %.3f, \"depth_decode_ratio\": %.4f, "
               "\"long_prompt_tok_s\": %.3f, \"long_prompt_ratio\": %.4f",
               r->load_s, r->prompt_tok_s, r->decode_tok_s, r->batch_tok_s, r->peak_mb,
               (long long)r->cost.total, r->bw_median, r->roofline, weight_name(r->weights),
               r->threads, gf_kernel_level_in_use(), gf_linear_amx_status(), o->prompt, o->decode,
               o->batch, o->repeat,
               r->first_token_s, r->step_ms, speedup, r->steady_mb, r->load_peak_mb,
               (long long)r->cost.weights, (long long)r->cost.gathers, (long long)r->cost.kv,
               r->bw_best, r->bw_batch, r->ceiling, r->depth, gemfa_kv_type_name(r->kv_type),
               r->kv_bytes, r->kv_bytes_full, r->full_context, r->shallow_tok_s,
               r->shallow_tok_s > 0 ? r->decode_tok_s / r->shallow_tok_s : 0,
               r->long_prompt_tok_s,
               r->long_prompt_tok_s > 0 ? r->long_prompt_tok_s / r->prompt_tok_s : 0);
        if (r->spec.k)
            bench_spec_print(stdout, &r->spec, 1);
        printf("}\n");
        return;
    }
    printf("model        %s (%s weights, %d threads, %s kernels, AMX %s)\n", cli_model_dir(c),
           weight_name(r->weights), r->threads, gf_kernel_level_in_use(), gf_linear_amx_status());
    if (c->matformer)
        printf("matformer    %s (a sub-model)\n", c->matformer);
    printf("load         %.3f s (peak RSS %.0f MB); first token %.3f s\n", r->load_s,
           r->load_peak_mb, r->first_token_s);
    printf("prompt       %.2f tok/s (%lld tokens)\n", r->prompt_tok_s, o->prompt);
    printf("decode       %.2f tok/s (%lld tokens after %lld of context; median step %.1f ms)\n",
           r->decode_tok_s, o->decode, r->depth, r->step_ms);
    printf("KV cache     %s: %.1f MB for this session's %lld tokens, %.1f MB at the full\n"
           "             context of %lld tokens\n",
           gemfa_kv_type_name(r->kv_type), (double)r->kv_bytes / 1e6,
           r->depth + o->decode, (double)r->kv_bytes_full / 1e6, r->full_context);
    if (r->shallow_tok_s > 0)
        printf("depth        decode %.2f tok/s at %lld tokens vs %.2f at %lld, interleaved (%.1f %%)\n",
               r->decode_tok_s, r->depth, r->shallow_tok_s, o->prompt,
               100.0 * r->decode_tok_s / r->shallow_tok_s);
    if (r->long_prompt_tok_s > 0)
        printf("             a %lld-token prompt %.2f tok/s (%.1f %% of the %lld-token one)\n",
               r->depth, r->long_prompt_tok_s, 100.0 * r->long_prompt_tok_s / r->prompt_tok_s,
               o->prompt);
    if (o->batch > 0)
        printf("batch        %.2f tok/s aggregate over %lld sessions (%.2fx one session)\n",
               r->batch_tok_s, o->batch, speedup);
    printf("memory       peak RSS %.0f MB, now %.0f MB\n", r->peak_mb, r->steady_mb);
    printf("roofline     %.3f GB per token (weights %.3f, KV %.4f); bandwidth between the\n"
           "             decode steps %.1f GB/s (median; best %.1f)\n",
           (double)r->cost.total / 1e9, (double)r->cost.weights / 1e9, (double)r->cost.kv / 1e9,
           r->bw_median, r->bw_best);
    printf("             ceiling %.2f tok/s; decode reaches %.1f %%\n", r->ceiling,
           100.0 * r->roofline);
    if (r->spec.k)
        bench_spec_print(stdout, &r->spec, 0);
}

static double max_of(const double *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

int cmd_bench(int argc, char **argv)
{
    cli_common c = {0};
    bench B;
    memset(&B, 0, sizeof B);
    B.bw.pid = -1;
    B.o = (bench_opts){.prompt = 128, .decode = 32, .batch = 4, .repeat = 1, .bw_mb = 512,
                       .depth = -1};
    int rc = parse(argc, argv, &c, &B.o);
    if (rc != CLI_OK)
        return rc;
    if (cli_handle_help(&c, usage))
        return CLI_OK;
    const bench_opts *o = &B.o;
    B.profile = o->profile;

    gemfa_model *m = NULL;
    int32_t *ids = NULL;
    bench_run *runs = NULL;
    bench_result R;
    memset(&R, 0, sizeof R);
    rc = CLI_ERROR;

    /* The probe process first: forked while this one is small; its first
     * answer waits until its buffer is in memory. */
    R.threads = c.threads > 0 ? c.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    double warm;
    if (bench_bw_start(&B.bw, (size_t)o->bw_mb << 20, R.threads) != 0 ||
        bench_bw_measure(&B.bw, &warm) != 0) {
        fprintf(stderr, "gemfa bench: cannot start the bandwidth probe (%lld MB)\n", o->bw_mb);
        goto done;
    }

    double t0 = cli_now();
    if (cli_load_model(&c, 0, &m) != CLI_OK)
        goto done;
    R.load_s = cli_now() - t0;
    R.load_peak_mb = rss_peak_mb();

    int64_t model_ctx = 0, n_text = 0;
    gemfa_model_get(m, GEMFA_PROP_CONTEXT_LENGTH, &model_ctx);
    gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE_PER_LAYER_INPUT, &n_text);
    gemfa_model_get(m, GEMFA_PROP_WEIGHT_TYPE, &R.weights);
    B.depth = o->depth < 0 ? o->prompt : o->depth;
    const long long n_tokens = (B.depth > o->prompt ? B.depth : o->prompt) + o->decode;
    if (n_tokens > model_ctx) {
        rc = cli_usage_error(argv[0], "-p (or --depth) + -n = %lld exceeds the model's context "
                                      "length: expected at most %lld in all",
                             n_tokens, (long long)model_ctx);
        goto done;
    }
    if (B.depth < o->prompt) {
        rc = cli_usage_error(argv[0], "--depth %lld is below the prompt's %lld tokens", B.depth,
                             o->prompt);
        goto done;
    }
    if (cli_open_session(&c, m, o->prompt + o->decode, NULL, NULL, &B.ctx, &B.s) != GEMFA_OK)
        goto done;
    if (B.depth > o->prompt) {
        gemfa_session_options *so = NULL;
        gemfa_status st = gemfa_session_options_new(&so);
        if (st == GEMFA_OK)
            st = gemfa_session_options_set_max_context(so, n_tokens);
        if (st == GEMFA_OK)
            st = gemfa_session_options_set_kv_type(so, c.kv_type);
        if (st == GEMFA_OK)
            st = gemfa_session_new(B.ctx, so, &B.deep);
        gemfa_session_options_free(so);
        if (st != GEMFA_OK) {
            cli_report("cannot create the session for --depth", st);
            goto done;
        }
    }
    /* A session of the model's whole context, only to report its K/V bytes
     * (allocated, never touched: it costs no resident memory). */
    {
        gemfa_session_options *so = NULL;
        gemfa_session *full = NULL;
        if (gemfa_session_options_new(&so) == GEMFA_OK &&
            gemfa_session_options_set_kv_type(so, c.kv_type) == GEMFA_OK &&
            gemfa_session_new(B.ctx, so, &full) == GEMFA_OK)
            R.kv_bytes_full = gemfa_session_kv_bytes(full);
        gemfa_session_free(full);
        gemfa_session_options_free(so);
        R.full_context = model_ctx;
    }
    const size_t n_ids = (size_t)(n_tokens + o->batch); /* the batch reads `batch` ids per step */
    const size_t n_probes = (size_t)(o->repeat * (o->decode + 1));
    ids = malloc(n_ids * sizeof *ids);
    B.steps = malloc((size_t)o->decode * sizeof *B.steps);
    B.shallow = malloc((size_t)o->decode * sizeof *B.shallow);
    B.bw_decode = malloc(n_probes * sizeof(double));
    B.bw_batch = malloc(n_probes * sizeof(double));
    runs = calloc((size_t)o->repeat, sizeof *runs);
    if (!ids || !B.steps || !B.shallow || !B.bw_decode || !B.bw_batch || !runs) {
        fprintf(stderr, "gemfa bench: out of memory\n");
        goto done;
    }
    fixed_ids(ids, n_ids, n_text);
    B.ids = ids;

    /* First token: maps in the weights a zero-copy load has not touched yet. */
    t0 = cli_now();
    gemfa_status st = gemfa_decode(B.s, ids, 1, NULL);
    R.first_token_s = cli_now() - t0;
    for (long long r = 0; st == GEMFA_OK && r < o->repeat; r++)
        st = run_once(&B, &runs[r]);
    if (st == PROBE_FAILED)
        goto done;
    if (st != GEMFA_OK) {
        cli_report("decode failed", st);
        goto done;
    }
    if (o->spec_k || o->draft) {
        const long long k = o->draft ? o->draft_k : o->spec_k;
        if (n_tokens + k + 1 > model_ctx) {
            rc = cli_usage_error(argv[0], "-p + -n + --speculative-oracle + 1 exceeds the "
                                          "model's context length (%lld)", (long long)model_ctx);
            goto done;
        }
        gemfa_model *sub = NULL;
        if (o->draft && (st = gemfa_model_derive_submodel(m, o->draft, &sub)) != GEMFA_OK) {
            cli_report("--draft", st);
            goto done;
        }
        st = bench_spec_run(B.ctx, sub, o->draft, ids, (size_t)o->prompt, (size_t)o->decode,
                            (int)k, (int)o->repeat, B.profile ? &B.prof[PROF_SPEC] : NULL,
                            &R.spec);
        gemfa_model_free(sub);
        if (st != GEMFA_OK) {
            cli_report("speculative oracle failed", st);
            goto done;
        }
    }
    R.steady_mb = rss_now_mb();
    R.peak_mb = rss_peak_mb();

    double pr[100], de[100], ba[100], sm[100];
    for (long long r = 0; r < o->repeat; r++) {
        pr[r] = (double)o->prompt / runs[r].prompt_s;
        de[r] = (double)o->decode / runs[r].decode_s;
        ba[r] = o->batch > 0 ? (double)(o->batch * o->decode) / runs[r].batch_s : 0;
        sm[r] = runs[r].step_median_s;
    }
    R.prompt_tok_s = median(pr, (size_t)o->repeat);
    R.decode_tok_s = median(de, (size_t)o->repeat);
    R.batch_tok_s = median(ba, (size_t)o->repeat);
    R.step_ms = 1e3 * median(sm, (size_t)o->repeat);
    if (B.deep) {
        double sh[100];
        for (long long r = 0; r < o->repeat; r++)
            sh[r] = (double)o->decode / runs[r].shallow_s;
        R.shallow_tok_s = median(sh, (size_t)o->repeat);
        R.long_prompt_tok_s = runs[0].fill_s > 0 ? (double)B.depth / runs[0].fill_s : 0;
    }
    R.bw_best = max_of(B.bw_decode, B.n_bw_decode);
    R.bw_median = median(B.bw_decode, B.n_bw_decode);
    R.bw_batch = B.n_bw_batch ? median(B.bw_batch, B.n_bw_batch) : 0;
    gf_decode_bytes_at(m, B.depth + o->decode / 2, &R.cost); /* mean position of the steps */
    /* cost.c counts f32 entries; the session's type may be narrower */
    const gemfa_session *dsess = B.deep ? B.deep : B.s;
    R.kv_type = gemfa_session_kv_type(dsess);
    R.kv_bytes = gemfa_session_kv_bytes(dsess);
    R.depth = B.depth;
    if (R.kv_type == GEMFA_KV_F16) {
        R.cost.total -= R.cost.kv / 2;
        R.cost.kv /= 2;
    }
    R.ceiling = R.bw_median * 1e9 / (double)R.cost.total;
    R.roofline = R.decode_tok_s / R.ceiling;
    report(&c, o, &R);
    if (o->profile) {
        print_profile("prompts", &B.prof[PROF_PROMPT]);
        print_profile("decode steps", &B.prof[PROF_DECODE]);
        print_profile("batch steps", &B.prof[PROF_BATCH]);
        print_profile("speculative verification passes", &B.prof[PROF_SPEC]);
    }
    rc = CLI_OK;
done:
    bench_bw_stop(&B.bw);
    free(ids);
    free(B.steps);
    free(B.shallow);
    free(B.bw_decode);
    free(B.bw_batch);
    free(runs);
    gemfa_session_free(B.deep);
    gemfa_session_free(B.s);
    gemfa_context_free(B.ctx);
    gemfa_model_free(m);
    return rc;
}
