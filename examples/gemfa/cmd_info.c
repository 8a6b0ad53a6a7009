/* cmd_info.c — STUB: not implemented yet. */
#include <stdio.h>
#include "cli.h"
#include "commands.h"
int cmd_info(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "gemfa info: not implemented yet\n"); return CLI_ERROR; }
