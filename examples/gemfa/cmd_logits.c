/* cmd_logits.c — `gemfa logits`: run the model on token ids and write the
 * raw logits (little-endian float32, [positions][vocab]) for comparisons
 * with reference implementations. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static const char usage[] =
    "usage: gemfa logits [-m DIR] --tokens ID,ID,... [--all] [--weights TYPE] -o FILE\n"
    "Decodes the ids as one prompt and writes raw little-endian float32 logits,\n"
    "row-major [positions][vocab] (after the final softcapping).\n\n"
    "options:\n"
    "  --tokens IDS           comma-separated token ids, e.g. 2,105,2364\n"
    "  --all                  every position's logits (default: only the last position)\n"
    "  -o, --output FILE      output file; '-' writes to stdout\n"
    "common options:\n" CLI_COMMON_HELP CLI_KV_HELP
    "With --json, prints {\"positions\": P, \"vocab\": V, \"bytes\": B, \"session_bytes\": S}\n"
    "on stderr (S: KV cache and state of the session, sized for the ids given).\n";

/* Strict "1,2,3": integers in int32 range separated by single commas. */
static int parse_ids(const char *s, int32_t **out, size_t *n)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids)
        return -1;
    size_t k = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < INT32_MIN || v > INT32_MAX || (*end && *end != ',')) {
            free(ids);
            return -1;
        }
        ids[k++] = (int32_t)v;
        if (!*end)
            break;
        p = end + 1;
    }
    *out = ids;
    *n = k;
    return 0;
}

/* Writes n floats little-endian whatever the host byte order. */
static int write_f32le(FILE *f, const float *x, size_t n)
{
    unsigned char buf[4096];
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        buf[used++] = (unsigned char)u;
        buf[used++] = (unsigned char)(u >> 8);
        buf[used++] = (unsigned char)(u >> 16);
        buf[used++] = (unsigned char)(u >> 24);
        if (used == sizeof buf || i + 1 == n) {
            if (fwrite(buf, 1, used, f) != used)
                return -1;
            used = 0;
        }
    }
    return 0;
}

int cmd_logits(int argc, char **argv)
{
    cli_common c = {0};
    const char *tokens = NULL, *out_path = NULL;
    int all = 0;
    for (int i = 1; i < argc;) {
        int r = cli_common_option(&c, argc, argv, &i);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        const char *opt = argv[i];
        if (strcmp(opt, "--tokens") == 0) {
            if (!(tokens = cli_value(argc, argv, &i)))
                return CLI_USAGE;
        } else if (cli_opt(opt, "-o", "--output")) {
            if (!(out_path = cli_value(argc, argv, &i)))
                return CLI_USAGE;
        } else if (strcmp(opt, "--all") == 0) {
            all = 1;
        } else {
            return cli_usage_error(argv[0], "unknown option '%s'", opt);
        }
        i++;
    }
    if (cli_handle_help(&c, usage))
        return CLI_OK;
    if (!tokens)
        return cli_usage_error(argv[0], "--tokens is required");
    if (!out_path)
        return cli_usage_error(argv[0], "-o FILE is required ('-' for stdout)");
    int32_t *ids = NULL;
    size_t n = 0;
    if (parse_ids(tokens, &ids, &n) != 0)
        return cli_usage_error(argv[0], "--tokens takes comma-separated integer ids, not '%s'",
                               tokens);

    gemfa_model *m = NULL;
    gemfa_context *ctx = NULL;
    gemfa_session *s = NULL;
    float *logits = NULL;
    FILE *f = NULL;
    int rc = CLI_ERROR;
    int64_t V = 0, model_ctx = 0;
    if (cli_load_model(&c, 0, &m) != CLI_OK)
        goto done;
    gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &V);
    gemfa_model_get(m, GEMFA_PROP_CONTEXT_LENGTH, &model_ctx);
    if ((int64_t)n > model_ctx) {
        fprintf(stderr, "gemfa: %zu tokens exceed the model's context length %lld\n", n,
                (long long)model_ctx);
        goto done;
    }
    if (cli_open_session(&c, m, (long long)n, NULL, NULL, &ctx, &s) != GEMFA_OK)
        goto done;
    const size_t rows = all ? n : 1;
    gemfa_status st;
    const float *last = NULL;
    if (all) {
        logits = malloc(rows * (size_t)V * sizeof(float));
        if (!logits) {
            fprintf(stderr, "gemfa: out of memory for %zu × %lld logits\n", rows, (long long)V);
            goto done;
        }
        st = gemfa_decode_all(s, ids, n, logits, rows * (size_t)V);
        last = logits;
    } else {
        st = gemfa_decode(s, ids, n, &last);
    }
    if (st != GEMFA_OK) {
        cli_report("decode failed", st);
        goto done;
    }
    f = strcmp(out_path, "-") == 0 ? stdout : fopen(out_path, "wb");
    if (!f) {
        fprintf(stderr, "gemfa: cannot open %s: %s\n", out_path, strerror(errno));
        goto done;
    }
    if (write_f32le(f, last, rows * (size_t)V) != 0 || fflush(f) != 0) {
        fprintf(stderr, "gemfa: cannot write %s: %s\n", out_path, strerror(errno));
        goto done;
    }
    if (c.json)
        fprintf(stderr,
                "{\"positions\": %zu, \"vocab\": %lld, \"bytes\": %zu, \"session_bytes\": %zu}\n",
                rows, (long long)V, rows * (size_t)V * 4, gemfa_session_memory_bytes(s));
    rc = CLI_OK;
done:
    if (f && f != stdout && fclose(f) != 0 && rc == CLI_OK) {
        fprintf(stderr, "gemfa: cannot write %s: %s\n", out_path, strerror(errno));
        rc = CLI_ERROR;
    }
    free(logits);
    free(ids);
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
    return rc;
}
