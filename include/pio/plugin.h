/*
 * plugin.h - the versioned model-plugin ABI and the plugin manager.
 *
 * A model plugin is a shared object exporting one symbol,
 *     const pio_model_plugin *pio_plugin_entry(void);
 * that returns a static table. The table starts with the ABI version it was
 * built against; the manager refuses any other version with a clear error.
 * Optional methods may be NULL. Plugin state travels in an opaque ctx.
 */
#ifndef PIO_PLUGIN_H
#define PIO_PLUGIN_H

#include "pio/pio.h"
#include "pio/formats.h"
#include "pio/kv.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bump on any change to the structs below or the table's layout. */
/* 2: KV rows in kv->dtype (void * rows, pio_kv_store) */
#define PIO_PLUGIN_ABI_VERSION 2u
#define PIO_PLUGIN_ENTRY_SYMBOL "pio_plugin_entry"

/* Mark the entry function exported, also under -fvisibility=hidden:
 *     PIO_PLUGIN_EXPORT const pio_model_plugin *pio_plugin_entry(void) { ... } */
#if defined(__GNUC__)
#define PIO_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define PIO_PLUGIN_EXPORT
#endif

/* Options a plugin is initialized or updated with. */
typedef struct pio_options {
    int n_threads;         /* 0 = all cores */
    int n_ctx;             /* max positions per sequence; 0 = model default capped at 4096 */
    int n_seqs;            /* max concurrent sequences; 0 = the plugin default */
    const char *dtype;     /* compute/weight format request, NULL = as stored */
} pio_options;

/* What load_model gets: the model directory, parsed. Owned by the caller;
 * valid until cleanup. */
typedef struct pio_model_files {
    const char *dir;
    const pio_hf_config *config;
    const pio_weights *weights;
    const pio_generation_config *generation;
} pio_model_files;

/*
 * One forward step over tokens of several sequences. Token i belongs to
 * sequence seq_id[i] at position pos[i]. Within a sequence, all positions
 * below pos[i] must already be in the KV cache or earlier in this batch.
 * Logits are written for the tokens with want_logits[i] != 0, in batch order,
 * as rows of n_vocab floats.
 */
typedef struct pio_batch {
    int n_tokens;
    const int32_t *tokens;       /* [n_tokens] */
    const int32_t *pos;          /* [n_tokens] */
    const int32_t *seq_id;       /* [n_tokens] */
    const uint8_t *want_logits;  /* [n_tokens] */
} pio_batch;

typedef struct pio_model_info {
    const char *name;            /* plugin name */
    const char *architecture;    /* HF architecture */
    int64_t n_params;            /* parameters counted once (tied weights once) */
    int64_t n_vocab;             /* logits per row (embedding rows, incl. padding) */
    int64_t n_layers;
    int64_t hidden_size;
    int64_t n_ctx_train;         /* max_position_embeddings */
    int64_t weight_bytes;        /* bytes of weights as used */
    char dtypes[64];             /* e.g. "BF16 x 398, F32 x 1" */
    /* KV cache geometry the engine allocates for this model. */
    int kv_layers;
    int kv_k_dim;
    int kv_v_dim;
} pio_model_info;

typedef struct pio_plugin_ctx pio_plugin_ctx;   /* defined by each plugin */

typedef struct pio_model_plugin {
    uint32_t abi_version;                      /* PIO_PLUGIN_ABI_VERSION */
    const char *name;                          /* "qwen3" */
    const char *description;
    const char *const *hf_architectures;       /* NULL-terminated */
    /* May this plugin run `cfg`? (architecture already matched or not). */
    bool (*supports_config)(const pio_hf_config *cfg);
    pio_status (*initialize)(pio_plugin_ctx **ctx, const pio_options *opts);
    pio_status (*load_model)(pio_plugin_ctx *ctx, const pio_model_files *files);
    /* logits: [count(want_logits)][n_vocab] */
    pio_status (*infer)(pio_plugin_ctx *ctx, const pio_batch *batch, pio_kv *kv, float *logits);
    /* Named commands with JSON in and out (*json_out malloc'ed, caller frees).
     * "format_chat": {"messages":[{"role","content"}], "add_generation_prompt":bool}
     *   -> {"prompt": "..."} */
    pio_status (*execute)(pio_plugin_ctx *ctx, const char *command, const char *json_in,
                          char **json_out);
    pio_status (*get_model_info)(pio_plugin_ctx *ctx, pio_model_info *info);
    pio_status (*update_config)(pio_plugin_ctx *ctx, const pio_options *opts);
    void (*cleanup)(pio_plugin_ctx *ctx);
} pio_model_plugin;

typedef const pio_model_plugin *(*pio_plugin_entry_fn)(void);

/* ---- plugin manager (process-wide singleton) ----------------------------- */

/* Check a table: ABI version, name, required methods. */
pio_status pio_plugin_validate(const pio_model_plugin *p, const char *origin);

/* Register a table (validated). A second plugin with the same name is refused. */
pio_status pio_plugins_register(const pio_model_plugin *p, const char *origin);

/* dlopen every *.so in `dir` (in name order) and register its table. Files
 * that fail (not a plugin, wrong ABI, a name already registered) add one
 * line each to pio_plugins_load_errors() and are skipped; the count newly
 * loaded goes to *n_loaded (may be NULL). A missing directory is not an
 * error; an unreadable one is PIO_STATUS_ERR_IO. */
pio_status pio_plugins_load_directory(const char *dir, int *n_loaded);

/* dlopen one shared object (RTLD_NOW | RTLD_LOCAL) and register its table.
 * ERR_IO: no such file; ERR_FORMAT: dlopen refused it; ERR_MISSING: no
 * pio_plugin_entry symbol (the message names file and symbol). Loading a
 * file already loaded succeeds and changes nothing. */
pio_status pio_plugins_load_file(const char *path);

/* Load the default directories once per process (again after reset):
 * $PIO_PLUGIN_PATH (':'-separated), then <exe dir>/plugins and
 * <exe dir>/../lib/pio/plugins. Problems go to pio_plugins_load_errors(). */
pio_status pio_plugins_load_default(void);

int pio_plugins_count(void);
const pio_model_plugin *pio_plugins_at(int i, const char **origin);
const pio_model_plugin *pio_plugins_find(const char *name);

/* The plugin for a config: the first (in load order) listing its
 * architecture whose supports_config (if any) accepts it; else the first
 * whose supports_config accepts it anyway. PIO_STATUS_ERR_UNSUPPORTED names
 * cfg->path, the architecture and the plugins tried when none fits.
 * supports_config runs under the manager's lock: it must not call back. */
pio_status pio_plugins_select(const pio_hf_config *cfg, const pio_model_plugin **out);

/* Forget all plugins and load errors (dlclose). Tables and origins handed
 * out before become invalid. */
void pio_plugins_reset(void);

/* Errors reported while loading directories (one per line), "" if none.
 * Valid until the next load or reset. */
const char *pio_plugins_load_errors(void);

#ifdef __cplusplus
}
#endif

#endif /* PIO_PLUGIN_H */
