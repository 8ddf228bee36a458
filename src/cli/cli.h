/*
 * cli.h - the pio subcommands. Each takes the arguments after its name
 * (argv[0] is the subcommand name), prints its own --help, and returns the
 * process exit code (0 ok, 1 runtime error, 2 usage error).
 */
#ifndef PIO_CLI_H
#define PIO_CLI_H

int pio_cmd_run(int argc, char **argv);
int pio_cmd_chat(int argc, char **argv);
int pio_cmd_info(int argc, char **argv);
int pio_cmd_plugins(int argc, char **argv);
int pio_cmd_logits(int argc, char **argv);
int pio_cmd_tokenize(int argc, char **argv);
int pio_cmd_perplexity(int argc, char **argv);
int pio_cmd_bench(int argc, char **argv);
int pio_cmd_quantize(int argc, char **argv);
int pio_cmd_template(int argc, char **argv);
int pio_cmd_serve(int argc, char **argv);

/* Print "pio: <msg>" on stderr; returns 1. */
int pio_cli_fail(const char *what);

#endif
