/* main.c — the gemfa program: dispatches to one function per subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static const struct {
    const char *name;
    cli_command_fn fn;
    const char *summary;
} commands[] = {
    {"info", cmd_info, "describe a model directory"},
    {"tokenize", cmd_tokenize, "text to ids (JSON Lines)"},
    {"detokenize", cmd_detokenize, "ids to text (JSON Lines)"},
    {"template", cmd_template, "render chats with the chat template (JSON Lines)"},
    {"logits", cmd_logits, "run the model on token ids and write raw logits"},
    {"generate", cmd_generate, "generate an answer to one prompt"},
    {"chat", cmd_chat, "an interactive multi-turn chat"},
    {"quantize", cmd_quantize, "write a pre-quantized int8 checkpoint that loads by mapping"},
    {"bench", cmd_bench, "measure load, prompt, decode and batch speed against the bandwidth ceiling"},
#ifdef GEMFA_HAVE_SERVE
    {"serve", cmd_serve, "an OpenAI-compatible HTTP server with a chat page"},
#endif
};

static void usage(FILE *f)
{
    fprintf(f, "usage: gemfa COMMAND [options]   (gemfa COMMAND --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\ncommon options: -m/--model DIR, -t/--threads N, --weights " CLI_WEIGHT_NAMES ",\n"
               "                --json, -h/--help, --version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("gemfa %s\n", gemfa_version_string());
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "gemfa: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
