/* cmd_logits.c — STUB: not implemented yet. */
#include <stdio.h>
#include "cli.h"
#include "commands.h"
int cmd_logits(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "gemfa logits: not implemented yet\n"); return CLI_ERROR; }
