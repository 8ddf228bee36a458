/*
 * formats_int.h - private helpers shared by the format parsers: reading a
 * whole file, parsing JSON with a located error, and typed reads of JSON
 * values that fail with a message naming the file and the field.
 */
#ifndef PIO_FORMATS_INT_H
#define PIO_FORMATS_INT_H

#include "pio/formats.h"

#include <cjson/cJSON.h>

/* Largest JSON side file (config, index) we read: 256 MiB. */
#define PIO_FMT_MAX_JSON_FILE ((size_t)256 << 20)
#define PIO_FMT_HUGE_PAGE ((size_t)2 << 20)   /* a transparent huge page (x86-64, ARM64 4K) */

/*
 * Read the whole of `path` (at most `max` bytes) into a NUL-terminated
 * malloc'd buffer. ERR_IO names the path and errno text; a file over `max`
 * is ERR_LIMIT. The caller frees *out.
 */
pio_status pio_fmt_read_file(const char *path, size_t max, char **out, size_t *len);

/* Join `dir` and `name` with one '/', malloc'd; NULL when out of memory. */
char *pio_fmt_path_join(const char *dir, const char *name);

/*
 * Parse `len` bytes of JSON text (need not be NUL-terminated) into *out.
 * Only whitespace may follow the value. On failure returns false and sets
 * *err_off to the byte offset where parsing stopped.
 */
bool pio_fmt_json_parse(const char *text, size_t len, cJSON **out, size_t *err_off);

/*
 * Parse a JSON file's text, failing with ERR_FORMAT naming `name`, the byte
 * offset and line:column of the error. The caller cJSON_Delete()s *out.
 */
pio_status pio_fmt_json_parse_named(const char *text, size_t len, const char *name, cJSON **out);

/* obj[key] when obj is an object holding key with a non-null value, else NULL. */
const cJSON *pio_fmt_json_child(const cJSON *obj, const char *key);

/*
 * Typed reads of a present, non-null value `v`. Each fails with ERR_FORMAT
 * "<file>: field "<field>" must be ..., got ..." on a wrong type or range.
 */
pio_status pio_fmt_json_int(const cJSON *v, const char *file, const char *field, int64_t min,
                            int64_t *out);
pio_status pio_fmt_json_double(const cJSON *v, const char *file, const char *field, double lo,
                               double hi, double *out);
pio_status pio_fmt_json_bool(const cJSON *v, const char *file, const char *field, bool *out);
/* Copies a string; one that does not fit in `cap` bytes is an error. */
pio_status pio_fmt_json_str(const cJSON *v, const char *file, const char *field, char *buf,
                            size_t cap);
/* A token id or a list of them (at most `max`, else ERR_LIMIT). */
pio_status pio_fmt_json_ids(const cJSON *v, const char *file, const char *field, int64_t *ids,
                            int *n, int max);

/* True when `v` is a number with an integral value in [-2^53, 2^53]. */
bool pio_fmt_json_is_int(const cJSON *v, int64_t *out);

/* ---- weights converted in memory (requantize.c) ---------------------------- */

/* Index of tensor `name` in pio_weights_at order, or -1. */
int pio_weights_index(const pio_weights *w, const char *name);

/*
 * Make tensor i of `w` the descriptor *t (name kept) with data `data`, a
 * malloc'd/aligned_alloc'd buffer that `w` owns from now on (freed by
 * pio_weights_free, or by a later replacement of the same tensor; also freed
 * here on failure; `data` may be the buffer w already owns for tensor i,
 * converted in place). Lookups return the new descriptor. The process's
 * pages of the file's copy are dropped (madvise), so converting a checkpoint
 * does not keep both copies resident. Pointers to the old descriptor of a
 * replaced converted tensor dangle.
 */
pio_status pio_weights_replace(pio_weights *w, int i, const pio_tensor *t, void *data);

/* The data of tensor i is still the file's, in a read-only private file
 * mapping (safetensors, or GGUF marked by pio_weights_set_file_backed):
 * its pages may be dropped with pio_weights_drop_pages. */
bool pio_weights_is_file_data(const pio_weights *w, int i);

/* The buffer w owns for converted tensor i (writable), or NULL. */
void *pio_weights_owned_data(const pio_weights *w, int i);

/* Mark wrapped tensors' data as a read-only file mapping (pio_gguf_open). */
void pio_weights_set_file_backed(pio_weights *w);

/* True when g's data is its own read-only file mapping (pio_gguf_open),
 * false for an image in the caller's memory (pio_gguf_from_memory). */
bool pio_gguf_is_mapped(const pio_gguf *g);

/* madvise(MADV_DONTNEED) the whole pages inside [data, data + len) of a
 * read-only file mapping: they leave the resident set and are re-read from
 * the page cache if touched. Never for anonymous memory (it would zero it). */
void pio_weights_drop_pages(const void *data, size_t len);

/*
 * Weights whose tensors another reader holds (GGUF): index `tensors[0..n)`
 * (names unique, else ERR_FORMAT) without copying them. `owner` (which keeps
 * the tensors and their data alive) is freed with owner_free by
 * pio_weights_free, or here on failure. `label` names them in messages.
 */
pio_status pio_weights_wrap(const char *label, const pio_tensor *tensors, int n, void *owner,
                            void (*owner_free)(void *), pio_weights **out);

#endif /* PIO_FORMATS_INT_H */
