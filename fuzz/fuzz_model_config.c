/*
 * fuzz_model_config.c - libFuzzer target for the parsers of a model
 * directory's config.json (pio_hf_config_parse) and generation_config.json
 * (pio_generation_config_parse). The first byte picks the parser ('g':
 * generation_config.json, anything else: config.json); the rest is the
 * file. Any input must be rejected with a status and a message, or give a
 * config whose strings are terminated inside their fields and whose counts
 * are within their arrays; never crash, leak or overread.
 * Seeds: fuzz/seeds/model_config/ (the demo's and the test fixtures' files,
 * each behind its selector byte).
 */
#include "pio/formats.h"
#include "pio/pio.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A char array field ends with a NUL inside it. */
#define TERMINATED(f) (memchr((f), '\0', sizeof(f)) != NULL)

static void check_hf(const char *json, size_t len)
{
    pio_hf_config cfg;
    if (pio_hf_config_parse(json, len, "fuzz/config.json", &cfg) != PIO_STATUS_OK) {
        if (!pio_last_error()[0])
            abort();                 /* a rejection says why */
        return;
    }
    if (!TERMINATED(cfg.path) || !TERMINATED(cfg.architecture) || !TERMINATED(cfg.model_type) ||
        !TERMINATED(cfg.rope_type) || !TERMINATED(cfg.hidden_act) || !TERMINATED(cfg.torch_dtype) ||
        cfg.n_eos < 0 || cfg.n_eos > PIO_MAX_EOS)
        abort();
    /* the plugin-specific lookups walk the kept JSON */
    (void)pio_hf_config_int(&cfg, "num_experts", 0);
    (void)pio_hf_config_double(&cfg, "router_aux_loss_coef", 0.0);
    pio_hf_config_free(&cfg);
}

static void check_generation(const char *json, size_t len)
{
    pio_generation_config gc;
    pio_generation_config_defaults(&gc);
    if (pio_generation_config_parse(json, len, "fuzz/generation_config.json", &gc) != PIO_STATUS_OK) {
        if (!pio_last_error()[0])
            abort();
        return;
    }
    if (gc.n_eos < 0 || gc.n_eos > PIO_MAX_EOS)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json;
    if (size < 1)
        return 0;
    /* Own exact-size copy (no NUL after it): ASan sees any overread. */
    json = malloc(size - 1 ? size - 1 : 1);
    if (!json)
        return 0;
    memcpy(json, data + 1, size - 1);
    if (data[0] == 'g')
        check_generation(json, size - 1);
    else
        check_hf(json, size - 1);
    free(json);
    return 0;
}
