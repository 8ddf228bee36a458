/*
 * fuzz_tokenizer.c - libFuzzer target for the tokenizer.json loader.
 * The input is a tokenizer.json: it must either be refused with a status
 * and a message, or give a tokenizer that encodes a few fixed texts to ids
 * in range, decodes them to valid UTF-8, and streams the same text;
 * never crash, hang, leak or overread.
 * Seeds: PIO_TOK_DUMP_DIR=dir build/tests/test_tokenizer_unit writes some.
 */
#include "pio/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const fuzz_texts[] = {
    "Hello world, it's 12345 <|endoftext|> <mask> [L]x [R] y\n\n  \t",
    "caf\xC3\xA9 e\xCC\x81 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80\xE2\x80\x8D\xF0\x9F\x91\x8D \xE1\x84\x80\xE1\x85\xA1",
    "<|im_start|>user\r\nhi<|im_end|><s<sw> ony aaaa",
    "",
};

/* Encode, decode and stream one text; abort() on a broken invariant. */
static void fuzz_one(const pio_tokenizer *tok, const char *text)
{
    int32_t *ids = NULL;
    size_t n = 0, len = 0;
    char *dec = NULL;
    if (pio_tokenizer_encode(tok, text, strlen(text), &ids, &n) != PIO_STATUS_OK) return;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= pio_tokenizer_n_vocab(tok) || !pio_tokenizer_id_to_token(tok, ids[i])) abort();
    if (pio_tokenizer_decode(tok, ids, n, false, &dec, &len) == PIO_STATUS_OK) {
        if (strlen(dec) > len || pio_utf8_check(dec, len) >= 0) abort();
        pio_detok *d;
        if (pio_detok_new(tok, false, &d) == PIO_STATUS_OK) {
            size_t at = 0;
            const char *p;
            size_t k;
            for (size_t i = 0; i <= n; i++) {
                if ((i < n ? pio_detok_push(d, ids[i], &p, &k) : pio_detok_flush(d, &p, &k)) != PIO_STATUS_OK) abort();
                if (at + k > len || memcmp(dec + at, p, k)) abort(); /* streaming == one-shot */
                at += k;
            }
            if (at != len) abort();
            pio_detok_free(d);
        }
        free(dec);
    }
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pio_tokenizer *tok = NULL;
    /* Own exact-size copy (no NUL after it): ASan sees any overread. */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    if (pio_tokenizer_load_from_memory(buf, size, "fuzz.json", &tok) == PIO_STATUS_OK) {
        for (size_t i = 0; i < sizeof fuzz_texts / sizeof fuzz_texts[0]; i++) fuzz_one(tok, fuzz_texts[i]);
        pio_tokenizer_free(tok);
    } else if (tok != NULL || pio_last_error()[0] == '\0') {
        abort(); /* a failure leaves no tokenizer and says why */
    }
    free(buf);
    return 0;
}
