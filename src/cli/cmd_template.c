/*
 * cmd_template.c - `pio template`: render a chat template with a JSON
 * context and print the result exactly (no newline added).
 */
#include "cli/cli.h"
#include "pio/chat_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void template_usage(FILE *f)
{
    fprintf(f, "usage: pio template --template PATH [--context FILE.json]\n\n"
               "Render a Jinja chat template as Hugging Face transformers does and print the\n"
               "result to stdout byte for byte (no newline is added). A template that raises\n"
               "(raise_exception, an undefined value in arithmetic, ...) prints the error with\n"
               "its line:column to stderr and exits with status 1.\n\n"
               "options:\n"
               "  -t, --template PATH  a .jinja file, or a model directory (its chat_template.jinja\n"
               "                       or tokenizer_config.json chat_template, with its bos/eos tokens)\n"
               "  -c, --context FILE   JSON object of template variables (messages, tools,\n"
               "                       add_generation_prompt, enable_thinking, ...); '-' reads\n"
               "                       stdin; default {}\n"
               "  -h, --help           this help\n");
}

/* Whole file (or stdin for "-") as a NUL-terminated malloc'd string; NULL on failure. */
static char *template_read(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    size_t cap = 1 << 16, n = 0;
    char *buf;
    if (!f) return NULL;
    buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *p = cap < ((size_t)1 << 30) ? realloc(buf, cap * 2) : NULL;
            if (!p) { free(buf); buf = NULL; break; }
            buf = p;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) { free(buf); buf = NULL; }
            break;
        }
    }
    if (f != stdin) fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

static int template_fail(const char *what)
{
    char msg[2300];
    snprintf(msg, sizeof msg, "template: %s%s%s", what ? what : "", what ? ": " : "", pio_last_error());
    return pio_cli_fail(msg);
}

int pio_cmd_template(int argc, char **argv)
{
    const char *tpath = NULL, *cpath = NULL;
    pio_chat_template *t = NULL;
    char *src = NULL, *ctx = NULL, *out = NULL;
    size_t len = 0;
    struct stat sb;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            template_usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--template")) && i + 1 < argc) {
            tpath = argv[++i];
        } else if ((!strcmp(a, "-c") || !strcmp(a, "--context")) && i + 1 < argc) {
            cpath = argv[++i];
        } else {
            fprintf(stderr, "pio template: unknown or incomplete option '%s'\n", a);
            template_usage(stderr);
            return 2;
        }
    }
    if (!tpath) {
        fprintf(stderr, "pio template: --template is required\n");
        template_usage(stderr);
        return 2;
    }
    if (stat(tpath, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if (pio_chat_template_load(tpath, &t)) return template_fail(NULL);
    } else {
        src = template_read(tpath, &len);
        if (!src) {
            fprintf(stderr, "pio: template: cannot read %s\n", tpath);
            return 1;
        }
        const char *base = strrchr(tpath, '/');
        if (pio_chat_template_parse(src, len, base ? base + 1 : tpath, &t)) {
            rc = template_fail(NULL);
            goto free_all;
        }
    }
    if (cpath) {
        ctx = template_read(cpath, &len);
        if (!ctx) {
            fprintf(stderr, "pio: template: cannot read %s\n", cpath);
            goto free_all;
        }
    }
    if (pio_chat_template_render(t, ctx ? ctx : "{}", &out)) {
        rc = template_fail(NULL);
        goto free_all;
    }
    fwrite(out, 1, strlen(out), stdout);
    rc = fflush(stdout) == 0 ? 0 : 1;
free_all:
    free(out);
    free(ctx);
    free(src);
    pio_chat_template_free(t);
    return rc;
}
