/* commands.h — the subcommands; each lives in its own cmd_*.c file. */
#ifndef GEMFA_COMMANDS_H
#define GEMFA_COMMANDS_H

int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
#ifdef GEMFA_HAVE_SERVE
int cmd_serve(int argc, char **argv);
#endif

#endif
