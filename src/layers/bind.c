/*
 * bind.c - helpers the model plugins' weight loaders share (see layers.h).
 */
#include "layers/layers.h"
#include "kernels/quant.h"

#include <stdio.h>
#include <stdlib.h>

pio_status pio_tensor_f32_copy(const pio_tensor *t, float **out)
{
    *out = malloc((size_t)t->n_elements * sizeof(float));
    if (!*out)
        return pio_error(PIO_STATUS_ERR_NOMEM, "out of memory for %s", t->name);
    pio_convert_to_f32(*out, t->data, t->dtype, t->n_elements);
    return PIO_STATUS_OK;
}

void pio_dtype_counts_format(char *buf, size_t size, const int *counts)
{
    size_t len = 0;
    int i;
    if (size)
        buf[0] = '\0';
    for (i = 0; i < PIO_DTYPE_COUNT && len < size; i++) {
        /* an X8 layout is its plain format in the kernels' layout: counted as that */
        int c = 0, d;
        if (!pio_dtype_is_x8((pio_dtype)i))
            for (d = 0, c = counts[i]; d < PIO_DTYPE_COUNT; d++)
                if (pio_x8_base((pio_dtype)d) == (pio_dtype)i)
                    c += counts[d];
        if (c)
            len += (size_t)snprintf(buf + len, size - len, "%s%s x %d", len ? ", " : "",
                                    pio_dtype_name((pio_dtype)i), c);
    }
}
