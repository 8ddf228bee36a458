/*
 * cmd_plugins.c - `pio plugins`: list the model plugins this pio finds, and
 * say why any other shared object in the plugin directories was skipped.
 */
#include "cli/cli.h"
#include "pio/plugin.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void plugins_usage(FILE *f)
{
    fputs("usage: pio plugins [--plugin-dir DIR]... [--no-default] [--json]\n"
          "\n"
          "List the model plugins found, then (on stderr) the files that could not\n"
          "be loaded and why.\n"
          "\n"
          "  --plugin-dir DIR  also load every *.so in DIR (repeatable; searched first)\n"
          "  --no-default      skip the default directories: $PIO_PLUGIN_PATH\n"
          "                    (':'-separated), <pio dir>/plugins, <pio dir>/../lib/pio/plugins\n"
          "  --json            print {\"plugins\": [...], \"errors\": [...]} on stdout\n"
          "  -h, --help        this text\n"
          "\n"
          "Exit status: 0 listed (even with load errors), 1 a --plugin-dir could not be\n"
          "read, 2 usage error.\n", f);
}

/* Architectures of `p` joined with ", " into buf. */
static const char *join_architectures(const pio_model_plugin *p, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (const char *const *a = p->hf_architectures; a && *a && n < size; a++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "", *a);
    if (!buf[0])
        snprintf(buf, size, "(none listed; chosen by supports_config)");
    return buf;
}

static void print_text(void)
{
    int n = pio_plugins_count();
    if (n == 0) {
        printf("no plugins found\n");
        return;
    }
    printf("%d plugin%s:\n", n, n == 1 ? "" : "s");
    for (int i = 0; i < n; i++) {
        const char *origin = NULL;
        const pio_model_plugin *p = pio_plugins_at(i, &origin);
        char archs[1024];
        printf("  %s (ABI %u)\n", p->name, (unsigned)p->abi_version);
        printf("    architectures: %s\n", join_architectures(p, archs, sizeof archs));
        printf("    description:   %s\n", p->description ? p->description : "");
        printf("    origin:        %s\n", origin);
    }
}

/* Print the list and the load errors as one JSON document; 0 or 1. */
static int print_json(void)
{
    int rc = 1;
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "plugins");
    cJSON *errors = cJSON_AddArrayToObject(root, "errors");
    if (!root || !list || !errors)
        goto free_root;
    for (int i = 0; i < pio_plugins_count(); i++) {
        const char *origin = NULL;
        const pio_model_plugin *p = pio_plugins_at(i, &origin);
        cJSON *o = cJSON_CreateObject();
        if (!o)
            goto free_root;
        cJSON_AddItemToArray(list, o);
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddNumberToObject(o, "abi_version", p->abi_version);
        cJSON *archs = cJSON_AddArrayToObject(o, "architectures");
        for (const char *const *a = p->hf_architectures; archs && a && *a; a++)
            cJSON_AddItemToArray(archs, cJSON_CreateString(*a));
        cJSON_AddStringToObject(o, "description", p->description ? p->description : "");
        cJSON_AddStringToObject(o, "origin", origin);
    }
    /* One array element per load-error line. */
    const char *s = pio_plugins_load_errors();
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        char *line = strndup(s, len);
        if (!line)
            goto free_root;
        cJSON_AddItemToArray(errors, cJSON_CreateString(line));
        free(line);
        s += len + (nl ? 1 : 0);
    }
    text = cJSON_Print(root);
    if (!text)
        goto free_root;
    printf("%s\n", text);
    rc = 0;
    cJSON_free(text);
free_root:
    cJSON_Delete(root);
    if (rc)
        fprintf(stderr, "pio: out of memory building JSON\n");
    return rc;
}

/* Print the load errors, indented, on stderr. */
static void print_load_errors(void)
{
    const char *errors = pio_plugins_load_errors();
    if (!errors[0])
        return;
    fprintf(stderr, "pio: some files in the plugin directories were not loaded:\n");
    for (const char *s = errors; *s;) {
        const char *nl = strchr(s, '\n');
        int len = nl ? (int)(nl - s) : (int)strlen(s);
        fprintf(stderr, "  %.*s\n", len, s);
        s += len + (nl ? 1 : 0);
    }
}

/* `pio plugins`: see plugins_usage(). */
int pio_cmd_plugins(int argc, char **argv)
{
    int rc = 0;
    bool json = false, defaults = true;
    const char **dirs = calloc((size_t)(argc > 0 ? argc : 1), sizeof *dirs);
    int n_dirs = 0;

    if (!dirs)
        return pio_cli_fail("out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            plugins_usage(stdout);
            goto free_dirs;
        } else if (strcmp(a, "--plugin-dir") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "pio plugins: --plugin-dir needs a directory\n");
                rc = 2;
                goto free_dirs;
            }
            dirs[n_dirs++] = argv[++i];
        } else if (strncmp(a, "--plugin-dir=", 13) == 0) {
            dirs[n_dirs++] = a + 13;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--no-default") == 0) {
            defaults = false;
        } else {
            fprintf(stderr, "pio plugins: unknown argument '%s'\n", a);
            plugins_usage(stderr);
            rc = 2;
            goto free_dirs;
        }
    }

    /* Explicit directories first, so their plugins win a name clash. A
     * directory the user named must exist, unlike the default ones. */
    for (int i = 0; i < n_dirs; i++) {
        struct stat sb;
        const char *why = NULL;
        if (stat(dirs[i], &sb) != 0)
            why = strerror(errno);
        else if (!S_ISDIR(sb.st_mode))
            why = "not a directory";
        if (why) {
            fprintf(stderr, "pio: --plugin-dir %s: %s\n", dirs[i], why);
            rc = 1;
            continue;
        }
        if (pio_plugins_load_directory(dirs[i], NULL) != PIO_STATUS_OK) {
            fprintf(stderr, "pio: %s\n", pio_last_error());
            rc = 1;
        }
    }
    if (defaults)
        pio_plugins_load_default();

    if (json) {
        if (print_json() != 0)
            rc = 1;
    } else {
        print_text();
    }
    fflush(stdout);
    print_load_errors();
free_dirs:
    free(dirs);
    return rc;
}
