/*
 * fuzz_gguf.c - libFuzzer target for the GGUF parser and what is built on
 * it. The input is a GGUF file image: it must be refused with a status and
 * a message, or give metadata and tensors that lie inside the input (every
 * string, array element and tensor byte is touched), and then a config,
 * generation settings, a tokenizer (which encodes a text to ids in range)
 * and weights, or clean errors; never crash, leak or overread.
 * Seed: fuzz/seeds/gguf/small.gguf (qwen3 metadata, a byte-level vocabulary,
 * F32/Q8_0/Q4_0 tensors).
 */
#include "pio/formats.h"
#include "pio/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Touch bytes p[0..n): ASan reports them if they are outside the input. */
static void touch(const void *p, size_t n, const uint8_t *buf, size_t size)
{
    const uint8_t *b = p;
    if (n == 0)
        return;
    if (b < buf || b + n > buf + size || b + n < b)
        abort();
    (void)*(volatile const uint8_t *)b;
    (void)*(volatile const uint8_t *)(b + n - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pio_gguf *g = NULL;
    /* Own copy: libFuzzer's buffer is exact-size, so ASan sees any overread. */
    uint8_t *buf = malloc(size ? size : 1);

    if (!buf)
        return 0;
    memcpy(buf, data, size);
    if (pio_gguf_from_memory(buf, size, "fuzz.gguf", &g) != PIO_STATUS_OK) {
        if (!pio_last_error()[0])
            abort();
        free(buf);
        return 0;
    }
    for (int i = 0; i < pio_gguf_kv_count(g); i++) {
        const char *key = pio_gguf_kv_key(g, i), *s;
        size_t n;
        int64_t v;
        double d;
        if (!key || pio_gguf_find_key(g, key) != i)
            abort();
        if (pio_gguf_kv_type(g, i) == PIO_GGUF_STRING && pio_gguf_get_str(g, key, &s, &n) == PIO_STATUS_OK)
            touch(s, n, buf, size);
        for (uint64_t j = 0; j < pio_gguf_kv_len(g, i) && pio_gguf_kv_type(g, i) == PIO_GGUF_ARRAY; j++) {
            if (pio_gguf_arr_str(g, i, j, &s, &n))
                touch(s, n, buf, size);
            else if (!pio_gguf_arr_int(g, i, j, &v) && !pio_gguf_arr_float(g, i, j, &d))
                abort();
        }
    }
    for (int i = 0; i < pio_gguf_tensor_count(g); i++) {
        const pio_tensor *t = pio_gguf_tensor_at(g, i);
        if (pio_gguf_find_tensor(g, t->name) != t || t->n_dims < 1 || t->n_dims > 4 ||
            ((uintptr_t)t->data - (uintptr_t)buf) % pio_gguf_alignment(g) != 0)
            abort();
        touch(t->data, t->nbytes, buf, size);
    }

    pio_hf_config cfg;
    pio_generation_config gc;
    pio_tokenizer *tok = NULL;
    pio_weights *w = NULL;
    if (pio_hf_config_from_gguf(g, &cfg) == PIO_STATUS_OK && cfg.vocab_size <= 0)
        abort();
    pio_hf_config_free(&cfg);
    (void)pio_generation_config_from_gguf(g, &gc);
    if (pio_tokenizer_from_gguf(g, &tok) == PIO_STATUS_OK) {
        static const char text[] = "Hello world, it's 12345 <|im_end|> caf\xC3\xA9\n";
        int32_t *ids = NULL;
        size_t n = 0;
        if (pio_tokenizer_encode(tok, text, sizeof text - 1, &ids, &n) == PIO_STATUS_OK)
            for (size_t i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] >= pio_tokenizer_n_vocab(tok))
                    abort();
        free(ids);
        pio_tokenizer_free(tok);
    }
    if (pio_weights_from_gguf(g, &w) == PIO_STATUS_OK) {   /* takes g */
        for (int i = 0; i < pio_weights_count(w); i++)
            if (pio_weights_find(w, pio_weights_at(w, i)->name) != pio_weights_at(w, i))
                abort();
        pio_weights_free(w);
    }
    free(buf);
    return 0;
}
