/*
 * plugin_internal.h - what the plugin registry (registry.c) offers the
 * loader (loader.c). Not installed; the public API is include/pio/plugin.h.
 */
#ifndef PIO_PLUGIN_INTERNAL_H
#define PIO_PLUGIN_INTERNAL_H

#include "pio/plugin.h"

/*
 * Add a validated table loaded from `origin` through dlopen `handle`
 * (NULL for a table linked into the process). On success the registry owns
 * `handle` (dlclose at reset) and *added says whether a new entry was made:
 * false when `handle` was already registered (the same shared object opened
 * twice; the extra dlopen reference is dropped). On failure (a plugin of the
 * same name is registered) nothing is kept and the caller still owns
 * `handle`.
 */
pio_status pio_plugins_add(const pio_model_plugin *p, const char *origin, void *handle,
                           bool *added);

/* Append one line ("<msg>\n") to the load-errors text. Ignores allocation
 * failure: the text is diagnostics, not state. */
void pio_plugins_note_error(const char *msg);

/* Forget that the default directories were loaded (called by reset). */
void pio_plugins_loader_reset(void);

#endif
