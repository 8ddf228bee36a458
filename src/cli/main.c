/*
 * main.c - the `pio` command: dispatch to subcommands.
 */
#include "cli/cli.h"
#include "pio/pio.h"

#include <stdio.h>
#include <string.h>

typedef struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand subcommands[] = {
    { "run", pio_cmd_run, "generate text from a prompt, streaming tokens to stdout" },
    { "chat", pio_cmd_chat, "interactive multi-turn chat (the model's chat format)" },
    { "info", pio_cmd_info, "architecture, parameters, dtypes and memory of a model" },
    { "plugins", pio_cmd_plugins, "list the model plugins found" },
    { "logits", pio_cmd_logits, "print the logits at every position of a token list (JSON)" },
    { "tokenize", pio_cmd_tokenize, "encode stdin with a tokenizer.json, print the ids (JSON)" },
    { "perplexity", pio_cmd_perplexity, "perplexity of a model on a text file" },
    { "bench", pio_cmd_bench, "prompt and generation speed (tokens/s) and peak memory, like llama-bench" },
    { "serve", pio_cmd_serve, "OpenAI-compatible HTTP server with continuous batching" },
    { "template", pio_cmd_template, "render a Jinja chat template with a JSON context" },
    { "quantize", pio_cmd_quantize, "write a model directory as a GGUF file (q8_0, q4_0, q4_k, bf16, ...)" },
};

static void usage(FILE *f)
{
    size_t i;
    fprintf(f, "Inference-PIO %s - LLM inference in C\n\n"
               "usage: pio <command> [options]   (pio <command> --help for its options)\n\n"
               "commands:\n", PIO_VERSION_STRING);
    for (i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(f, "  %-11s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(f, "\nWith no -m, run and chat use the bundled demo model (models/demo).\n"
               "\nenvironment:\n"
               "  PIO_CPU=LEVEL      kernel level below the detected one: scalar, avx2, avx512,\n"
               "                     avx512vnni, avx512bf16 (BF16 prefill with vdpbf16ps on\n"
               "                     activations rounded to bf16; avx512vnni keeps them f32);\n"
               "                     neon on ARM64\n"
               "  PIO_PLUGIN_PATH    directories (':'-separated) searched for model plugins first\n");
}

int pio_cli_fail(const char *what)
{
    fprintf(stderr, "pio: %s\n", what);
    return 1;
}

int main(int argc, char **argv)
{
    size_t i;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("pio %s\n", PIO_VERSION_STRING);
        return 0;
    }
    for (i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (!strcmp(argv[1], subcommands[i].name))
            return subcommands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "pio: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 2;
}
