/* cmd_text.c — STUB: not implemented yet. */
#include <stdio.h>
#include "cli.h"
#include "commands.h"
int cmd_tokenize(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "gemfa tokenize: not implemented yet\n"); return CLI_ERROR; }
int cmd_detokenize(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "gemfa detokenize: not implemented yet\n"); return CLI_ERROR; }
int cmd_template(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "gemfa template: not implemented yet\n"); return CLI_ERROR; }
