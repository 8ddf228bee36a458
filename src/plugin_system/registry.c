/*
 * registry.c - the process-wide table of model plugins: validation,
 * registration, lookup, selection for a config, and the load-errors text.
 *
 * One mutex guards everything here. Tables and origin strings handed out by
 * pio_plugins_at/find/select stay valid until pio_plugins_reset().
 */
#include "plugin_system/plugin_internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct plugin_entry {
    const pio_model_plugin *plugin;
    char *origin;        /* owned; path of the .so or a caller's label */
    void *handle;        /* dlopen handle, NULL for linked-in tables */
} plugin_entry;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static plugin_entry *registry_entries;  /* [registry_count], grows by doubling */
static int registry_count, registry_cap;
static char *registry_errors;           /* load-errors text, NUL-terminated */
static size_t registry_errors_len, registry_errors_cap;

/* The label used in messages for a table without a file. */
static const char *origin_label(const char *origin)
{
    return origin && origin[0] ? origin : "(built-in plugin)";
}

/*
 * Check a table before anything else reads it. Only abi_version is read
 * until it matches: a table built against another ABI may have another
 * layout. Fails with PIO_STATUS_ERR_ABI (version) or PIO_STATUS_ERR_MISSING
 * (name or a required method), naming `origin` and the field.
 */
pio_status pio_plugin_validate(const pio_model_plugin *p, const char *origin)
{
    const char *o = origin_label(origin);
    if (!p)
        return pio_error(PIO_STATUS_ERR_MISSING, "%s: plugin entry returned no table (NULL)", o);
    if (p->abi_version != PIO_PLUGIN_ABI_VERSION)
        return pio_error(PIO_STATUS_ERR_ABI, "%s: plugin ABI version %u, this pio expects %u",
                         o, (unsigned)p->abi_version, (unsigned)PIO_PLUGIN_ABI_VERSION);
    if (!p->name || !p->name[0])
        return pio_error(PIO_STATUS_ERR_MISSING, "%s: plugin table has no name", o);

    /* Required methods, in table order; the optional ones (supports_config,
     * execute, update_config) may be NULL. */
    const struct { bool present; const char *field; } required[] = {
        { p->initialize != NULL, "initialize" },
        { p->load_model != NULL, "load_model" },
        { p->infer != NULL, "infer" },
        { p->get_model_info != NULL, "get_model_info" },
        { p->cleanup != NULL, "cleanup" },
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!required[i].present)
            return pio_error(PIO_STATUS_ERR_MISSING,
                             "%s: plugin \"%s\" has no %s method (required)", o, p->name,
                             required[i].field);
    return PIO_STATUS_OK;
}

/* Index of the entry named `name`, or -1. Caller holds registry_lock. */
static int registry_index_of_name(const char *name)
{
    for (int i = 0; i < registry_count; i++)
        if (strcmp(registry_entries[i].plugin->name, name) == 0)
            return i;
    return -1;
}

/* See plugin_internal.h. Validates `p` again so every path in checks it. */
pio_status pio_plugins_add(const pio_model_plugin *p, const char *origin, void *handle,
                           bool *added)
{
    pio_status st = pio_plugin_validate(p, origin);
    if (added)
        *added = false;
    if (st != PIO_STATUS_OK)
        return st;

    char *origin_copy = strdup(origin_label(origin));
    if (!origin_copy)
        return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory registering plugin",
                         origin_label(origin));

    pthread_mutex_lock(&registry_lock);
    if (handle) {
        for (int i = 0; i < registry_count; i++) {
            if (registry_entries[i].handle == handle) {
                /* Same object again: dlopen only bumped its refcount. */
                dlclose(handle);
                goto unlock;
            }
        }
    }
    int dup = registry_index_of_name(p->name);
    if (dup >= 0) {
        st = pio_error(PIO_STATUS_ERR_INVALID_ARG,
                       "%s: a plugin named \"%s\" is already registered (from %s); skipped",
                       origin_copy, p->name, registry_entries[dup].origin);
        goto unlock;
    }
    if (registry_count == registry_cap) {
        int cap = registry_cap ? registry_cap * 2 : 8;
        plugin_entry *grown = realloc(registry_entries, (size_t)cap * sizeof *grown);
        if (!grown) {
            st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory registering plugin",
                           origin_copy);
            goto unlock;
        }
        registry_entries = grown;
        registry_cap = cap;
    }
    registry_entries[registry_count++] = (plugin_entry){ p, origin_copy, handle };
    origin_copy = NULL;
    if (added)
        *added = true;
unlock:
    pthread_mutex_unlock(&registry_lock);
    free(origin_copy);
    return st;
}

/* Register a table linked into the process (no dlopen handle). */
pio_status pio_plugins_register(const pio_model_plugin *p, const char *origin)
{
    return pio_plugins_add(p, origin, NULL, NULL);
}

int pio_plugins_count(void)
{
    pthread_mutex_lock(&registry_lock);
    int n = registry_count;
    pthread_mutex_unlock(&registry_lock);
    return n;
}

/* The i-th registered table in registration order and, if `origin` is not
 * NULL, where it came from; NULL when i is out of range. */
const pio_model_plugin *pio_plugins_at(int i, const char **origin)
{
    const pio_model_plugin *p = NULL;
    pthread_mutex_lock(&registry_lock);
    if (i >= 0 && i < registry_count) {
        p = registry_entries[i].plugin;
        if (origin)
            *origin = registry_entries[i].origin;
    }
    pthread_mutex_unlock(&registry_lock);
    return p;
}

/* The table registered under `name`, NULL if none. */
const pio_model_plugin *pio_plugins_find(const char *name)
{
    const pio_model_plugin *p = NULL;
    if (!name)
        return NULL;
    pthread_mutex_lock(&registry_lock);
    int i = registry_index_of_name(name);
    if (i >= 0)
        p = registry_entries[i].plugin;
    pthread_mutex_unlock(&registry_lock);
    return p;
}

/* Does the NULL-terminated list `archs` (may be NULL) hold `arch`? */
static bool arch_listed(const char *const *archs, const char *arch)
{
    if (!archs || !arch[0])
        return false;
    for (; *archs; archs++)
        if (strcmp(*archs, arch) == 0)
            return true;
    return false;
}

/*
 * Pick the plugin for `cfg`: the first (in registration order) that lists
 * cfg->architecture and whose supports_config, if any, accepts cfg; failing
 * that, the first whose supports_config accepts cfg without listing it.
 * Costs one supports_config call per candidate, made under the registry
 * lock (so supports_config must not call back into the manager).
 */
pio_status pio_plugins_select(const pio_hf_config *cfg, const pio_model_plugin **out)
{
    pio_status st = PIO_STATUS_OK;
    const pio_model_plugin *found = NULL;
    const char *refused_by = NULL;   /* a plugin listing the architecture that said no */

    if (!cfg || !out)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "pio_plugins_select: NULL argument");
    *out = NULL;

    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < registry_count && !found; i++) {
        const pio_model_plugin *p = registry_entries[i].plugin;
        if (!arch_listed(p->hf_architectures, cfg->architecture))
            continue;
        if (!p->supports_config || p->supports_config(cfg))
            found = p;
        else if (!refused_by)
            refused_by = p->name;
    }
    for (int i = 0; i < registry_count && !found; i++) {
        const pio_model_plugin *p = registry_entries[i].plugin;
        if (p->supports_config && !arch_listed(p->hf_architectures, cfg->architecture) &&
            p->supports_config(cfg))
            found = p;
    }
    if (found) {
        *out = found;
        goto unlock;
    }

    /* Build "(loaded: a, b)" for the message. */
    char loaded[512];
    size_t n = 0;
    loaded[0] = '\0';
    for (int i = 0; i < registry_count && n < sizeof loaded; i++)
        n += (size_t)snprintf(loaded + n, sizeof loaded - n, "%s%s", i ? ", " : "",
                              registry_entries[i].plugin->name);
    if (registry_count == 0)
        snprintf(loaded, sizeof loaded, "none");

    const char *where = cfg->path[0] ? cfg->path : "config";
    if (!cfg->architecture[0])
        st = pio_error(PIO_STATUS_ERR_UNSUPPORTED,
                       "%s: no \"architectures\" entry, and no plugin accepts the config "
                       "(loaded: %s)", where, loaded);
    else if (refused_by)
        st = pio_error(PIO_STATUS_ERR_UNSUPPORTED,
                       "%s: architecture \"%s\" is not supported by any plugin (loaded: %s); "
                       "plugin %s lists it but refused this config",
                       where, cfg->architecture, loaded, refused_by);
    else
        st = pio_error(PIO_STATUS_ERR_UNSUPPORTED,
                       "%s: architecture \"%s\" is not supported by any plugin (loaded: %s)",
                       where, cfg->architecture, loaded);
unlock:
    pthread_mutex_unlock(&registry_lock);
    return st;
}

/* See plugin_internal.h. */
void pio_plugins_note_error(const char *msg)
{
    size_t len = strlen(msg);
    pthread_mutex_lock(&registry_lock);
    size_t need = registry_errors_len + len + 2;
    if (need > registry_errors_cap) {
        size_t cap = registry_errors_cap ? registry_errors_cap : 256;
        while (cap < need)
            cap *= 2;
        char *grown = realloc(registry_errors, cap);
        if (!grown)
            goto unlock;
        registry_errors = grown;
        registry_errors_cap = cap;
    }
    memcpy(registry_errors + registry_errors_len, msg, len);
    registry_errors_len += len;
    registry_errors[registry_errors_len++] = '\n';
    registry_errors[registry_errors_len] = '\0';
unlock:
    pthread_mutex_unlock(&registry_lock);
}

/* The accumulated load errors; the pointer is valid until the next load or
 * reset (the buffer grows as errors are added). */
const char *pio_plugins_load_errors(void)
{
    pthread_mutex_lock(&registry_lock);
    const char *s = registry_errors ? registry_errors : "";
    pthread_mutex_unlock(&registry_lock);
    return s;
}

/*
 * Forget every plugin and the load errors, dlclose the shared objects (in
 * reverse load order) and allow pio_plugins_load_default() to run again.
 * No model created from a plugin may still be alive.
 */
void pio_plugins_reset(void)
{
    pthread_mutex_lock(&registry_lock);
    for (int i = registry_count - 1; i >= 0; i--) {
        if (registry_entries[i].handle)
            dlclose(registry_entries[i].handle);
        free(registry_entries[i].origin);
    }
    free(registry_entries);
    registry_entries = NULL;
    registry_count = registry_cap = 0;
    free(registry_errors);
    registry_errors = NULL;
    registry_errors_len = registry_errors_cap = 0;
    pthread_mutex_unlock(&registry_lock);
    pio_plugins_loader_reset();
}
