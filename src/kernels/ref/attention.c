/*
 * attention.c - one query head against the cached keys/values of a sequence,
 * with online softmax (running max and sum), so no score buffer is needed
 * and any context length works.
 */
#include "kernels/kernels.h"
#include "pio/kv.h"

#include <math.h>
#include <string.h>

/*
 * out[head_dim] = Σ_p softmax_p(scale · q·k_p) v_p over positions p < n_kv of
 * `seq` in `layer`; k_p/v_p are the head's slice at kv_offset in the rows.
 */
void pio_attention_head(float *out, const float *q, pio_kv *kv, int layer, int seq, int n_kv,
                        int kv_offset, int head_dim, float scale)
{
    float m = -INFINITY, l = 0.0f;
    int p = 0, d;

    memset(out, 0, (size_t)head_dim * sizeof(float));
    while (p < n_kv) {
        int run = kv->ops->contiguous(kv, seq, p), j;
        const float *k = kv->ops->k_row(kv, layer, seq, p);
        const float *v = kv->ops->v_row(kv, layer, seq, p);
        if (run > n_kv - p)
            run = n_kv - p;
        for (j = 0; j < run; j++) {
            const float *kj = k + (size_t)j * (size_t)kv->k_dim + kv_offset;
            const float *vj = v + (size_t)j * (size_t)kv->v_dim + kv_offset;
            float s = pio_dot_f32(q, kj, head_dim) * scale;
            if (s > m) {
                float corr = expf(m - s);    /* 0 on the first position */
                l *= corr;
                for (d = 0; d < head_dim; d++)
                    out[d] *= corr;
                m = s;
            }
            {
                float e = expf(s - m);
                l += e;
                for (d = 0; d < head_dim; d++)
                    out[d] += e * vj[d];
            }
        }
        p += run;
    }
    if (l > 0.0f) {
        float inv = 1.0f / l;
        for (d = 0; d < head_dim; d++)
            out[d] *= inv;
    }
}
