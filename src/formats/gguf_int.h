/*
 * gguf_int.h - private tables shared by the GGUF reader side (gguf_names.c)
 * and the writer (gguf_write.c): how llama.cpp's metadata keys correspond
 * to config.json fields, for the architectures we map.
 */
#ifndef PIO_GGUF_INT_H
#define PIO_GGUF_INT_H

#include "formats_int.h"

/* One hyperparameter: "<arch>.<gguf>" in the GGUF file, `hf` in config.json. */
typedef struct pio_gguf_hparam {
    const char *gguf;        /* key after "<arch>." */
    const char *hf;          /* config.json field */
    char kind;               /* 'u': uint32 (may be a per-layer array of equal values), 'f': float32 */
    bool required;           /* for both architectures */
} pio_gguf_hparam;

extern const pio_gguf_hparam pio_gguf_hparams[];
extern const int pio_gguf_n_hparams;

/* llama.cpp's architecture name of an HF architecture ("Qwen3ForCausalLM" ->
 * "qwen3"), or NULL. */
const char *pio_gguf_arch_from_hf(const char *hf_arch);

/* Token types of tokenizer.ggml.token_type (llama.cpp's llama_token_type). */
enum {
    PIO_GGUF_TOKEN_NORMAL = 1,
    PIO_GGUF_TOKEN_UNKNOWN = 2,
    PIO_GGUF_TOKEN_CONTROL = 3,
    PIO_GGUF_TOKEN_USER_DEFINED = 4,
    PIO_GGUF_TOKEN_UNUSED = 5,
    PIO_GGUF_TOKEN_BYTE = 6,
};

/* True for the filler names converters give ids without a token: "[PAD<id>]". */
bool pio_gguf_is_pad_token(const char *s, size_t len, uint64_t id);

#endif /* PIO_GGUF_INT_H */
