/*
 * fuzz_safetensors.c - libFuzzer target for the safetensors header parser.
 * Any input must either be rejected with a status and a message, or yield
 * tensors whose data lies inside the input; never crash, leak or overread.
 */
#include "pio/formats.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pio_safetensors *st = NULL;
    /* Own copy: libFuzzer's buffer is exact-size, so ASan sees any overread. */
    uint8_t *buf = malloc(size ? size : 1);

    if (!buf)
        return 0;
    memcpy(buf, data, size);
    if (pio_safetensors_from_memory(buf, size, "fuzz.safetensors", &st) == PIO_STATUS_OK) {
        int n = pio_safetensors_count(st);
        for (int i = 0; i < n; i++) {
            const pio_tensor *t = pio_safetensors_at(st, i);
            const uint8_t *p = t->data;
            /* Data in range, sized as the shape says, and findable by name. */
            if (p < buf || p + t->nbytes > buf + size ||
                t->nbytes != (size_t)t->n_elements * pio_dtype_size(t->dtype) ||
                pio_safetensors_find(st, t->name) != t)
                abort();
            if (t->nbytes)
                (void)*(volatile const uint8_t *)(p + t->nbytes - 1);
        }
        pio_safetensors_free(st);
    }
    free(buf);
    return 0;
}
