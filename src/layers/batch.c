/*
 * batch.c - the checks every forward pass makes on its batch (see layers.h).
 */
#include "layers/layers.h"

#include "pio/kv.h"

pio_status pio_batch_prepare(const char *who, const pio_batch *b, int n_vocab, int n_layers,
                             int kv_dim, pio_kv *kv)
{
    int i;
    pio_status st;
    if (b->n_tokens <= 0)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "%s: empty batch", who);
    if (kv->n_layers != n_layers || kv->k_dim != kv_dim || kv->v_dim != kv_dim)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                         "%s: KV cache geometry (%d layers, rows %d/%d) does not match the model "
                         "(%d layers, rows %d)", who, kv->n_layers, kv->k_dim, kv->v_dim, n_layers, kv_dim);
    for (i = 0; i < b->n_tokens; i++) {
        if (b->tokens[i] < 0 || b->tokens[i] >= n_vocab)
            return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                             "%s: token id %d at batch index %d is outside the vocabulary [0, %d)",
                             who, b->tokens[i], i, n_vocab);
        if (b->pos[i] < 0)
            return pio_error(PIO_STATUS_ERR_INVALID_ARG, "%s: negative position at batch index %d", who, i);
        st = kv->ops->reserve(kv, b->seq_id[i], b->pos[i] + 1);
        if (st)
            return st;
    }
    return PIO_STATUS_OK;
}
