/*
 * kv.c - helpers on the KV cache interface that hold for every
 * implementation (kv.h).
 */
#include "pio/kv.h"

#include "kernels/attn.h"

void pio_kv_store(pio_kv *kv, int layer, int seq, int pos, const float *k, const float *v)
{
    const pio_attn_kernels *kt = pio_attn_kernels_get();
    kt->store(kv->ops->k_row(kv, layer, seq, pos), kv->dtype, k, kv->k_dim);
    kt->store(kv->ops->v_row(kv, layer, seq, pos), kv->dtype, v, kv->v_dim);
}
