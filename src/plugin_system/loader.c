/*
 * loader.c - finding model plugins on disk: dlopen one file, every *.so of
 * a directory, or the default directories once per process.
 *
 * Plugins are opened RTLD_NOW (a missing symbol fails at load, not at the
 * first call) and RTLD_LOCAL (two plugins may define the same internal
 * names). Their undefined pio_* symbols resolve against the libpio already
 * loaded by the host process.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "plugin_system/plugin_internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static bool default_done;

/*
 * dlopen `path`, find pio_plugin_entry, validate and register its table.
 * *added (may be NULL) says whether a new plugin was registered: false when
 * the same file was already loaded, which is not an error. Errors:
 * ERR_IO (no such file), ERR_FORMAT (dlopen refused it; dlerror text
 * included), ERR_MISSING (no entry symbol, NULL table, missing method),
 * ERR_ABI, ERR_INVALID_ARG (a plugin of that name is already registered).
 */
static pio_status load_file(const char *path, bool *added)
{
    pio_status st;
    struct stat sb;
    char dlpath[PATH_MAX + 3];
    char real[PATH_MAX];
    const char *origin;
    void *handle, *sym;
    pio_plugin_entry_fn entry;

    if (added)
        *added = false;
    if (!path || !path[0])
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "pio_plugins_load_file: empty path");
    if (stat(path, &sb) != 0)
        return pio_error(PIO_STATUS_ERR_IO, "%s: cannot open plugin: %s", path, strerror(errno));
    /* Messages and the registry name the file by its canonical path. */
    origin = realpath(path, real) ? real : path;
    if (!S_ISREG(sb.st_mode))
        return pio_error(PIO_STATUS_ERR_IO, "%s: cannot open plugin: not a regular file", origin);

    /* Without a '/', dlopen would search the library path instead. */
    snprintf(dlpath, sizeof dlpath, "%s%s", strchr(path, '/') ? "" : "./", path);

    dlerror();
    handle = dlopen(dlpath, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: cannot load plugin: %s", origin,
                         why ? why : "dlopen failed");
    }
    dlerror();
    sym = dlsym(handle, PIO_PLUGIN_ENTRY_SYMBOL);
    if (!sym) {
        const char *why = dlerror();
        st = pio_error(PIO_STATUS_ERR_MISSING,
                       "%s: no \"%s\" symbol, so not a pio plugin (%s)", origin,
                       PIO_PLUGIN_ENTRY_SYMBOL, why ? why : "symbol is NULL");
        goto close_handle;
    }
    /* POSIX guarantees data and function pointers convert through dlsym. */
    memcpy(&entry, &sym, sizeof entry);
    st = pio_plugins_add(entry(), origin, handle, added);
    if (st != PIO_STATUS_OK)
        goto close_handle;
    return PIO_STATUS_OK;

close_handle:
    dlclose(handle);
    return st;
}

/* dlopen one shared object and register its table (see load_file). Loading
 * a file that is already loaded succeeds and changes nothing. */
pio_status pio_plugins_load_file(const char *path)
{
    return load_file(path, NULL);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Is `name` a candidate plugin file: "*.so", not hidden? */
static bool is_plugin_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 3 && strcmp(name + n - 3, ".so") == 0;
}

/*
 * Load every *.so of `dir` in strcmp order of the names. A file that fails
 * (not a plugin, wrong ABI, duplicate name, ...) adds its message as one
 * line to pio_plugins_load_errors() and is skipped. *n_loaded (may be NULL)
 * gets the number of plugins newly registered. A missing directory loads
 * nothing and is not an error; an unreadable one (or a file) is ERR_IO.
 */
pio_status pio_plugins_load_directory(const char *dir, int *n_loaded)
{
    pio_status st = PIO_STATUS_OK;
    char **names = NULL;
    size_t n_names = 0, cap = 0;
    DIR *d;
    struct dirent *de;
    int loaded = 0;

    if (n_loaded)
        *n_loaded = 0;
    if (!dir || !dir[0])
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "pio_plugins_load_directory: empty path");
    d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return PIO_STATUS_OK;
        return pio_error(PIO_STATUS_ERR_IO, "%s: cannot read plugin directory: %s", dir,
                         strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        if (!is_plugin_name(de->d_name))
            continue;
        if (n_names == cap) {
            size_t new_cap = cap ? cap * 2 : 16;
            char **grown = realloc(names, new_cap * sizeof *grown);
            if (!grown)
                goto nomem;
            names = grown;
            cap = new_cap;
        }
        if (!(names[n_names] = strdup(de->d_name)))
            goto nomem;
        n_names++;
    }
    closedir(d);
    d = NULL;
    if (n_names)
        qsort(names, n_names, sizeof *names, compare_names);

    for (size_t i = 0; i < n_names; i++) {
        char path[PATH_MAX];
        bool added;
        size_t dl = strlen(dir);
        if (snprintf(path, sizeof path, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/",
                     names[i]) >= (int)sizeof path) {
            char msg[256];
            snprintf(msg, sizeof msg, "%.100s/%.100s...: path too long; skipped", dir, names[i]);
            pio_plugins_note_error(msg);
            continue;
        }
        if (load_file(path, &added) != PIO_STATUS_OK)
            pio_plugins_note_error(pio_last_error());
        else if (added)
            loaded++;
    }
    if (n_loaded)
        *n_loaded = loaded;
    goto free_names;

nomem:
    st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory listing plugins", dir);
free_names:
    if (d)
        closedir(d);
    for (size_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    return st;
}

/* A growable list of directories already loaded by load_default, by
 * realpath, so that one reached twice (PIO_PLUGIN_PATH naming the exe's
 * plugins dir) is not loaded twice. */
typedef struct dir_set {
    char **paths;
    int n, cap;
} dir_set;

/* Add `dir` (canonicalized) to `set`; false if it was already there. On
 * allocation failure answers true: loading twice is harmless. */
static bool dir_set_add(dir_set *set, const char *dir)
{
    char real[PATH_MAX];
    const char *key = realpath(dir, real) ? real : dir;
    for (int i = 0; i < set->n; i++)
        if (strcmp(set->paths[i], key) == 0)
            return false;
    if (set->n == set->cap) {
        int cap = set->cap ? set->cap * 2 : 8;
        char **grown = realloc(set->paths, (size_t)cap * sizeof *grown);
        if (!grown)
            return true;
        set->paths = grown;
        set->cap = cap;
    }
    if ((set->paths[set->n] = strdup(key)) != NULL)
        set->n++;
    return true;
}

static void dir_set_free(dir_set *set)
{
    for (int i = 0; i < set->n; i++)
        free(set->paths[i]);
    free(set->paths);
}

/* Load one default directory unless seen; errors become load-error lines. */
static void load_default_dir(dir_set *seen, const char *dir)
{
    if (!dir[0] || !dir_set_add(seen, dir))
        return;
    if (pio_plugins_load_directory(dir, NULL) != PIO_STATUS_OK)
        pio_plugins_note_error(pio_last_error());
}

/*
 * Load the default directories, in this order: each entry of
 * $PIO_PLUGIN_PATH (':'-separated), <dir of /proc/self/exe>/plugins,
 * <exe dir>/../lib/pio/plugins. Runs once per process (again after
 * pio_plugins_reset); concurrent callers wait for the first. Problems go to
 * pio_plugins_load_errors(); always returns PIO_STATUS_OK.
 */
pio_status pio_plugins_load_default(void)
{
    dir_set seen = { 0 };

    pthread_mutex_lock(&default_lock);
    if (default_done)
        goto unlock;

    const char *env = getenv("PIO_PLUGIN_PATH");
    if (env) {
        char *list = strdup(env);
        char *save = NULL;
        for (char *tok = list ? strtok_r(list, ":", &save) : NULL; tok;
             tok = strtok_r(NULL, ":", &save))
            load_default_dir(&seen, tok);
        free(list);
    }

    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            char dir[PATH_MAX + 32];
            *slash = '\0';
            snprintf(dir, sizeof dir, "%s/plugins", exe);
            load_default_dir(&seen, dir);
            snprintf(dir, sizeof dir, "%s/../lib/pio/plugins", exe);
            load_default_dir(&seen, dir);
        }
    }
    default_done = true;
unlock:
    pthread_mutex_unlock(&default_lock);
    dir_set_free(&seen);
    return PIO_STATUS_OK;
}

/* See plugin_internal.h. */
void pio_plugins_loader_reset(void)
{
    pthread_mutex_lock(&default_lock);
    default_done = false;
    pthread_mutex_unlock(&default_lock);
}
