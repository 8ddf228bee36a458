/*
 * generation_config.c - generation_config.json into pio_generation_config.
 * Absent or null keys keep transformers' GenerationConfig defaults.
 */
#include "formats_int.h"

#include <errno.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pio_generation_config_defaults(pio_generation_config *gc)
{
    memset(gc, 0, sizeof *gc);
    gc->bos_token_id = -1;
    gc->pad_token_id = -1;
    gc->do_sample = false;
    gc->temperature = 1.0;
    gc->top_k = 50;
    gc->top_p = 1.0;
    gc->min_p = 0.0;
    gc->repetition_penalty = 1.0;
    gc->max_new_tokens = -1;
}

/* Read every known key of `root` into gc; the first bad one fails. */
static pio_status gc_fill(const cJSON *root, const char *name, pio_generation_config *gc)
{
    pio_status st = PIO_STATUS_OK;
    const cJSON *v;

#define GC_KEY(key, expr) \
    do { if (st == PIO_STATUS_OK && (v = pio_fmt_json_child(root, key))) st = (expr); } while (0)
    GC_KEY("eos_token_id", pio_fmt_json_ids(v, name, "eos_token_id", gc->eos_token_ids, &gc->n_eos,
                                            PIO_MAX_EOS));
    GC_KEY("bos_token_id", pio_fmt_json_int(v, name, "bos_token_id", 0, &gc->bos_token_id));
    GC_KEY("pad_token_id", pio_fmt_json_int(v, name, "pad_token_id", 0, &gc->pad_token_id));
    GC_KEY("do_sample", pio_fmt_json_bool(v, name, "do_sample", &gc->do_sample));
    GC_KEY("temperature", pio_fmt_json_double(v, name, "temperature", 0.0, DBL_MAX, &gc->temperature));
    GC_KEY("top_k", pio_fmt_json_int(v, name, "top_k", 0, &gc->top_k));
    GC_KEY("top_p", pio_fmt_json_double(v, name, "top_p", 0.0, 1.0, &gc->top_p));
    GC_KEY("min_p", pio_fmt_json_double(v, name, "min_p", 0.0, 1.0, &gc->min_p));
    GC_KEY("repetition_penalty",
           pio_fmt_json_double(v, name, "repetition_penalty", DBL_MIN, DBL_MAX, &gc->repetition_penalty));
    GC_KEY("max_new_tokens", pio_fmt_json_int(v, name, "max_new_tokens", 0, &gc->max_new_tokens));
#undef GC_KEY
    return st;
}

pio_status pio_generation_config_parse(const char *json, size_t len, const char *name,
                                       pio_generation_config *gc)
{
    pio_status st;
    cJSON *root = NULL;

    pio_generation_config_defaults(gc);
    if (!name)
        name = "generation_config.json";
    st = pio_fmt_json_parse_named(json, len, name, &root);
    if (st != PIO_STATUS_OK)
        return st;
    if (!cJSON_IsObject(root))
        st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: not a JSON object", name);
    else
        st = gc_fill(root, name, gc);
    if (st != PIO_STATUS_OK)
        pio_generation_config_defaults(gc);
    cJSON_Delete(root);
    return st;
}

pio_status pio_generation_config_load(const char *path, pio_generation_config *gc)
{
    pio_status st;
    char *text = NULL;
    size_t len = 0;
    FILE *probe;

    pio_generation_config_defaults(gc);
    /* Many checkpoints ship no generation_config.json: then the defaults stand. */
    probe = fopen(path, "rb");
    if (!probe && errno == ENOENT)
        return PIO_STATUS_OK;
    if (probe)
        fclose(probe);
    st = pio_fmt_read_file(path, PIO_FMT_MAX_JSON_FILE, &text, &len);
    if (st != PIO_STATUS_OK)
        return st;
    st = pio_generation_config_parse(text, len, path, gc);
    free(text);
    return st;
}
