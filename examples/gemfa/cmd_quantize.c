/* cmd_quantize.c — `gemfa quantize`: writes a pre-quantized int8 copy of a
 * checkpoint that loads by mapping instead of quantizing (lib/loader/
 * quantize.h has the format). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_gen.h"
#include "commands.h"
#include "loader/quantize.h"

static const char usage[] =
    "usage: gemfa quantize -m SRC -o DST [-t N] [--json]\n"
    "Writes DST: a copy of the checkpoint SRC whose matrices are stored as int8\n"
    "(blocks of 32 along the input, one f16 scale each: the weights --weights int8\n"
    "makes at load, bit for bit; rows interleaved by 16, the library's layout),\n"
    "plus config, tokenizer and other small files.\n"
    "Loading DST maps the int8 weights instead of quantizing them.  The vision and\n"
    "audio towers are not copied.  DST is created if needed.\n\n"
    "options:\n"
    "  -m, --model SRC        source checkpoint directory (F32, F16 or BF16 weights)\n"
    "  -o, --output DST       destination directory\n"
    "  -t, --threads N        quantization threads, 0-1024 (default 0: all cores)\n"
    "  --weights TYPE         int8 or auto (the only type written)\n"
    "  --json                 print {\"tensors_quantized\", \"tensors_copied\", \"bytes\",\n"
    "                         \"seconds\"}\n"
    "  -h, --help             this help\n"
    "  --version              print the version\n";

typedef struct progress {
    int tty, last;
} progress;

static int on_progress(void *user, float fraction, const char *stage)
{
    progress *p = user;
    const int pct = (int)(fraction * 100.0f);
    if (p->tty && pct != p->last) {
        fprintf(stderr, "\r%s %3d%%", stage, pct);
        if (pct == 100)
            fputc('\n', stderr);
        p->last = pct;
    }
    return 0;
}

int cmd_quantize(int argc, char **argv)
{
    cli_common c = {0};
    const char *dst = NULL;
    for (int i = 1; i < argc;) {
        int r = cli_common_option(&c, argc, argv, &i);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        if (cli_opt(argv[i], "-o", "--output")) {
            if (!(dst = cli_value(argc, argv, &i)))
                return CLI_USAGE;
        } else {
            return cli_usage_error(argv[0], "unknown option '%s'", argv[i]);
        }
        i++;
    }
    if (cli_handle_help(&c, usage))
        return CLI_OK;
    if (!c.model_dir)
        return cli_usage_error(argv[0], "-m SRC is required");
    if (!dst)
        return cli_usage_error(argv[0], "-o DST is required");
    if (c.matformer) /* it copies the files' tensors; it does not write sub-models */
        return cli_usage_error(argv[0], "quantize writes the whole checkpoint; --matformer "
                                        "applies when loading one");
    if (c.n_lora)
        return cli_usage_error(argv[0], "quantize copies the checkpoint as stored; --lora is "
                                        "not supported here (load with --lora instead)");
    if (c.weights != GEMFA_WEIGHTS_AUTO && c.weights != GEMFA_WEIGHTS_INT8)
        return cli_usage_error(argv[0], "quantize writes int8 weights; --weights takes int8 or auto");
    progress p = {isatty(STDERR_FILENO), -1};
    gf_quantize_stats stats;
    const double t0 = cli_now();
    gemfa_status st = gf_quantize_checkpoint(c.model_dir, dst, c.threads, on_progress, &p, &stats);
    const double secs = cli_now() - t0;
    if (st != GEMFA_OK) {
        cli_report("quantize failed", st);
        return CLI_ERROR;
    }
    if (c.json)
        printf("{\"tensors_quantized\": %lld, \"tensors_copied\": %lld, \"bytes\": %lld, "
               "\"seconds\": %.3f}\n",
               (long long)stats.n_quantized, (long long)stats.n_copied,
               (long long)stats.bytes_written, secs);
    else
        printf("%s: %lld matrices quantized, %lld tensors copied, %.2f GB written in %.1f s\n", dst,
               (long long)stats.n_quantized, (long long)stats.n_copied,
               (double)stats.bytes_written / 1e9, secs);
    return CLI_OK;
}
