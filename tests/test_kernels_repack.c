/*
 * test_kernels_repack.c - Q4_0, Q8_0, Q4_K and Q6_K matrices repacked at load
 * into the kernels' 8-row interleaved layouts (pio_weights_repack,
 * PIO_DTYPE_Q4_0_X8, PIO_DTYPE_Q8_0_X8, PIO_DTYPE_Q4_K_X8, PIO_DTYPE_Q6_K_X8):
 *
 *  1. a GGUF file (weights in its read-only mapping) with matrices of every
 *     kind: the Q4_0 / Q8_0 / Q4_K / Q6_K 2-D matrices with rows % 8 == 0 become X8 in a
 *     new buffer; rows not a multiple of 8, other dtypes, 1-D tensors, 3-D expert
 *     stacks and 2-D ".experts." matrices are untouched; with
 *     PIO_REPACK_EXPERTS (--preload) the expert matrices are repacked too
 *     (a 3-D stack with rows % 16 == 0 as one matrix), the rest as before;
 *     every repacked
 *     matrix unpacks to the file's bytes, its row lookups equal the plain
 *     rows' and pio_matmul on it equals pio_matmul on the plain bytes (within
 *     float rounding), for decode and prefill batch sizes;
 *  2. a model quantized on load to Q4_0 and to Q8_0 (buffers the weights
 *     own): repacked in place (same data pointer), same checks against a copy
 *     taken before;
 *  3. a second repack finds nothing to do.
 * Levels whose table does not ask for the layout (scalar, AVX-512) repack
 * nothing, which is checked instead.
 */
#include "check.h"
#include "common/threadpool.h"
#include "formats/formats_int.h"
#include "kernels/dispatch.h"
#include "kernels/quant.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng = 0x2545f4914f6cdd1dull;
static float frand(void) { return check_frand(&rng); }   /* uniform in [-1, 1) */

/* Does the active level run dtype dt in an X8 layout? */
static bool want_x8(pio_dtype dt)
{
    return pio_dtype_is_x8(pio_wmat_layout_for(dt, 8, pio_dtype_block_elems(dt)));
}

/* A GGUF tensor for the synthetic file. */
typedef struct gt {
    const char *name;
    pio_dtype dtype;
    int n_dims;
    int64_t shape[3];
    bool repacked;      /* expected to become X8 (when the level wants it for the dtype) */
    bool with_experts;  /* ... when PIO_REPACK_EXPERTS is given */
} gt;

static const gt file_tensors[] = {
    { "big.weight", PIO_DTYPE_Q4_0, 2, { 1024, 2048 }, true, true },
    { "small.weight", PIO_DTYPE_Q4_0, 2, { 8, 32 }, true, true },
    { "wide.weight", PIO_DTYPE_Q4_0, 2, { 40, 2592 }, true, true },
    { "odd.weight", PIO_DTYPE_Q4_0, 2, { 12, 64 }, false, false },
    { "q8.weight", PIO_DTYPE_Q8_0, 2, { 16, 64 }, true, true },
    { "q8odd.weight", PIO_DTYPE_Q8_0, 2, { 20, 96 }, false, false },
    { "k.weight", PIO_DTYPE_Q4_K, 2, { 16, 512 }, true, true },
    { "k6.weight", PIO_DTYPE_Q6_K, 2, { 24, 768 }, true, true },
    { "k6odd.weight", PIO_DTYPE_Q6_K, 2, { 12, 256 }, false, false },
    { "norm.weight", PIO_DTYPE_F32, 1, { 64 }, false, false },
    { "blk.0.ffn_gate_exps.weight", PIO_DTYPE_Q4_0, 3, { 3, 32, 64 }, false, true },
    { "blk.0.ffn_down_exps.weight", PIO_DTYPE_Q4_0, 3, { 3, 8, 96 }, false, false },  /* rows % 16 */
    { "blk.1.ffn_up_exps.weight", PIO_DTYPE_Q8_0, 3, { 2, 16, 64 }, false, true },
    { "model.layers.0.mlp.experts.1.up_proj.weight", PIO_DTYPE_Q4_0, 2, { 16, 64 }, false, true },
};
#define N_FILE (int)(sizeof file_tensors / sizeof file_tensors[0])

static int64_t n_elems(const gt *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++)
        n *= t->shape[d];
    return n;
}

/* Write the synthetic GGUF: random values quantized to each tensor's dtype. */
static void write_gguf(const char *path)
{
    pio_gguf_writer *w = NULL;
    int i;
    CHECK_OK(pio_gguf_writer_open(path, &w));
    if (!w)
        return;
    CHECK_OK(pio_gguf_writer_add_str(w, "general.architecture", "test"));
    for (i = 0; i < N_FILE; i++)
        CHECK_OK(pio_gguf_writer_add_tensor(w, file_tensors[i].name, file_tensors[i].dtype,
                                            file_tensors[i].n_dims, file_tensors[i].shape));
    CHECK_OK(pio_gguf_writer_begin_data(w));
    for (i = 0; i < N_FILE; i++) {
        const gt *t = &file_tensors[i];
        int64_t n = n_elems(t), cols = t->shape[t->n_dims - 1], j;
        float *f = check_malloc(sizeof(float) * (size_t)n);
        size_t bytes = pio_dtype_row_bytes(t->dtype, cols) * (size_t)(n / cols);
        void *q = check_malloc(bytes);
        for (j = 0; j < n; j++)
            f[j] = frand() * ((j / cols) % 7 == 3 ? 0.01f : 1.0f);
        CHECK_OK(pio_quantize_rows(t->dtype, f, q, n / cols, cols));
        CHECK_OK(pio_gguf_writer_write(w, q, bytes));
        free(f);
        free(q);
    }
    CHECK_OK(pio_gguf_writer_finish(w));
    pio_gguf_writer_free(w);
}

/*
 * Check a repacked matrix `x8` (rows x cols) against its plain bytes `q`
 * (dtype `base`): unpacked bytes, row lookups, pio_matmul for a few batch
 * sizes.
 */
static void check_matrix(const char *name, const pio_tensor *x8, pio_dtype base, const void *q,
                         pio_threadpool *tp)
{
    static const int ns[] = { 1, 2, 5, 16, 33 };
    int64_t rows = x8->n_dims == 3 ? x8->shape[0] * x8->shape[1] : x8->shape[0];
    int64_t cols = x8->shape[x8->n_dims - 1], r;
    size_t rb = pio_dtype_row_bytes(base, cols);
    pio_wmat wx = { x8->dtype, x8->data, rows, cols }, wq = { base, q, rows, cols };
    uint8_t *back = check_malloc(rb * (size_t)rows);
    float *a = check_malloc(sizeof(float) * (size_t)cols), *b = check_malloc(sizeof(float) * (size_t)cols);
    bool rows_ok = true;
    size_t ni;

    CHECK(pio_dtype_is_x8(x8->dtype) && pio_x8_base(x8->dtype) == base, "%s: dtype %s", name,
          pio_dtype_name(x8->dtype));
    CHECK(x8->nbytes == rb * (size_t)rows, "%s: %zu bytes, %s has %zu", name, x8->nbytes, pio_dtype_name(base),
          rb * (size_t)rows);
    if (!pio_dtype_is_x8(x8->dtype))
        goto done;
    for (r = 0; r < rows; r += 8)
        pio_x8_unpack(x8->dtype, back + (size_t)r * rb, rb, (const uint8_t *)x8->data + (size_t)r * rb, cols);
    CHECK(memcmp(back, q, rb * (size_t)rows) == 0, "%s: repacked bytes unpack to the plain rows", name);
    for (r = 0; r < rows && rows_ok; r++) {
        pio_wmat_row_f32(&wx, r, a);
        pio_wmat_row_f32(&wq, r, b);
        rows_ok = memcmp(a, b, sizeof(float) * (size_t)cols) == 0;
        CHECK(rows_ok, "%s: row %lld lookup differs", name, (long long)r);
    }
    for (ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
        int n = ns[ni], i;
        float *x = check_malloc(sizeof(float) * (size_t)(n * cols));
        float *yx = check_malloc(sizeof(float) * (size_t)(n * rows)), *yq = check_malloc(sizeof(float) * (size_t)(n * rows));
        double worst = 0;
        for (i = 0; i < n * cols; i++)
            x[i] = frand();
        CHECK_OK(pio_matmul(tp, yx, x, n, &wx));
        CHECK_OK(pio_matmul(tp, yq, x, n, &wq));
        for (i = 0; i < n * rows; i++) {
            /* error relative to Σ|w·x| of the row, as in test_kernels_simd */
            double mag = 1e-30, e;
            int64_t c;
            pio_wmat_row_f32(&wq, i % rows, a);
            for (c = 0; c < cols; c++)
                mag += fabs((double)a[c] * x[(size_t)(i / rows) * cols + c]);
            e = fabs((double)yx[i] - yq[i]) / mag;
            if (!(e <= worst))
                worst = isnan(e) ? INFINITY : e;
        }
        CHECK(worst <= 2e-6, "%s: pio_matmul n=%d on the repacked matrix vs %s: rel err %.3g", name, n,
              pio_dtype_name(base), worst);
        free(x);
        free(yx);
        free(yq);
    }
done:
    free(back);
    free(a);
    free(b);
}

/* 1 + 3: the synthetic GGUF, tensors in the file mapping, repacked with
 * `flags`. */
static void test_gguf(pio_threadpool *tp, unsigned flags)
{
    char path[] = "/tmp/pio_test_repack_XXXXXX";
    int fd = mkstemp(path);
    pio_weights *w = NULL;
    const pio_tensor *before[N_FILE];
    void *copy[N_FILE];
    int i, n_repacked = -1, expect = 0;

    CHECK(fd >= 0, "mkstemp");
    if (fd < 0)
        return;
    close(fd);
    write_gguf(path);
    CHECK_OK(pio_weights_open_gguf(path, &w));
    if (!w)
        goto done;
    for (i = 0; i < N_FILE; i++) {
        char hf[256];
        const char *name = pio_gguf_name_to_hf(file_tensors[i].name, hf, sizeof hf) ? hf : file_tensors[i].name;
        int idx = pio_weights_index(w, name);
        CHECK(idx >= 0, "tensor %s in the GGUF", name);
        before[i] = idx >= 0 ? pio_weights_at(w, idx) : NULL;
        copy[i] = NULL;
        if (before[i]) {
            CHECK(pio_weights_is_file_data(w, idx), "%s: data in the file mapping", name);
            copy[i] = check_malloc(before[i]->nbytes);
            memcpy(copy[i], before[i]->data, before[i]->nbytes);
        }
        expect += ((flags & PIO_REPACK_EXPERTS) ? file_tensors[i].with_experts : file_tensors[i].repacked) &&
                  want_x8(file_tensors[i].dtype);
    }
    CHECK_OK(pio_weights_repack(w, 2, flags, &n_repacked));
    CHECK(n_repacked == expect, "repacked %d tensors, expected %d", n_repacked, expect);
    for (i = 0; i < N_FILE; i++) {
        const pio_tensor *t;
        int idx;
        bool rp = ((flags & PIO_REPACK_EXPERTS) ? file_tensors[i].with_experts : file_tensors[i].repacked) &&
                  want_x8(file_tensors[i].dtype);
        if (!before[i])
            continue;
        idx = pio_weights_index(w, before[i]->name);
        t = pio_weights_at(w, idx);
        if (rp) {
            CHECK(t != before[i] && t->data != before[i]->data, "%s: copied out of the file", t->name);
            CHECK(!pio_weights_is_file_data(w, idx), "%s: no longer the file's data", t->name);
            CHECK(((uintptr_t)t->data & 63) == 0, "%s: 64-byte aligned copy", t->name);
            /* the file's own bytes are still readable (pages re-read after the drop) */
            CHECK(memcmp(before[i]->data, copy[i], before[i]->nbytes) == 0, "%s: file bytes intact", t->name);
            check_matrix(t->name, t, file_tensors[i].dtype, copy[i], tp);
        } else {
            CHECK(t == before[i] && t->dtype == file_tensors[i].dtype &&
                  memcmp(t->data, copy[i], t->nbytes) == 0, "%s: left as stored (%s)", t->name,
                  pio_dtype_name(t->dtype));
        }
    }
    CHECK_OK(pio_weights_repack(w, 1, flags, &n_repacked));
    CHECK(n_repacked == 0, "a second repack converts nothing (%d)", n_repacked);
done:
    for (i = 0; i < N_FILE; i++)
        free(before[i] ? copy[i] : NULL);
    pio_weights_free(w);
    unlink(path);
}

/* 2: the tiny Qwen3 fixture quantized on load to dt: repacked in place. */
static void test_in_place(pio_threadpool *tp, pio_dtype dt)
{
    const char *dir = "tests/fixtures/qwen3/tied_gqa2_f32";
    pio_weights *w = NULL;
    int n, i, n_repacked = -1, expect = 0;
    void **copy;
    const void **data;

    CHECK_OK(pio_weights_open_dir(dir, &w));
    if (!w)
        return;
    CHECK_OK(pio_weights_requantize(w, dt == PIO_DTYPE_Q8_0 ? "q8_0" : "q4_0", 2, NULL));
    n = pio_weights_count(w);
    copy = calloc((size_t)n, sizeof *copy);
    data = calloc((size_t)n, sizeof *data);
    for (i = 0; i < n; i++) {
        const pio_tensor *t = pio_weights_at(w, i);
        data[i] = t->data;
        if (t->dtype != dt)
            continue;
        CHECK(pio_weights_owned_data(w, i) == t->data, "%s: quantized on load into an owned buffer", t->name);
        copy[i] = check_malloc(t->nbytes);
        memcpy(copy[i], t->data, t->nbytes);
        expect += t->n_dims == 2 && t->shape[0] % 8 == 0;
    }
    CHECK(expect >= 10, "the fixture has %s matrices (%d)", pio_dtype_name(dt), expect);
    CHECK_OK(pio_weights_repack(w, 2, 0, &n_repacked));
    CHECK(n_repacked == (want_x8(dt) ? expect : 0), "repacked %d of %d", n_repacked, expect);
    for (i = 0; i < n; i++) {
        const pio_tensor *t = pio_weights_at(w, i);
        CHECK(t->data == data[i], "%s: same buffer", t->name);
        if (!copy[i])
            continue;
        if (want_x8(dt))
            check_matrix(t->name, t, dt, copy[i], tp);
        else
            CHECK(t->dtype == dt, "%s: stays %s", t->name, pio_dtype_name(dt));
        free(copy[i]);
    }
    free(copy);
    free(data);
    pio_weights_free(w);
}

int main(void)
{
    pio_threadpool *tp = NULL;
    printf("active level %s: Q4_0 repacked to %s, Q8_0 to %s, Q4_K to %s, Q6_K to %s\n",
           pio_cpu_level_name(pio_kernels_get()->level), pio_dtype_name(pio_wmat_layout_for(PIO_DTYPE_Q4_0, 8, 32)),
           pio_dtype_name(pio_wmat_layout_for(PIO_DTYPE_Q8_0, 8, 32)),
           pio_dtype_name(pio_wmat_layout_for(PIO_DTYPE_Q4_K, 8, 256)),
           pio_dtype_name(pio_wmat_layout_for(PIO_DTYPE_Q6_K, 8, 256)));
    CHECK_OK(pio_threadpool_new(2, &tp));
    test_gguf(tp, 0);
    test_gguf(tp, PIO_REPACK_EXPERTS);
    test_in_place(tp, PIO_DTYPE_Q4_0);
    test_in_place(tp, PIO_DTYPE_Q8_0);
    pio_threadpool_free(tp);
    return check_report("test_kernels_repack");
}
