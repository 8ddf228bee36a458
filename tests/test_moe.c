/*
 * test_moe.c - the shared mixture-of-experts blocks (src/layers/moe.c):
 *   - pio_moe_route_softmax against a plain reference (softmax over all
 *     experts, k largest, ties to the lower index, renormalization);
 *   - pio_moe_forward (tokens grouped by expert, one matmul per expert,
 *     weighted scatter-add; and the fused single-token decode path) against
 *     running every token through its experts one at a time with
 *     pio_swiglu_mlp, for F32, BF16, Q8_0, Q4_0 and Q4_K experts, awkward
 *     sizes, and a batch in which some experts get no token;
 *   - an expert index out of range is an error, not a crash;
 *   - lazy repack (pio_moe_repack): Q4_0, Q8_0, Q4_K and Q6_K experts in owned
 *     memory and in a read-only private file mapping (views at unaligned offsets,
 *     so pages are shared between matrices) become their X8 layouts in place
 *     the first time they are routed to, when the active level wants that
 *     layout, and only then; their bytes are exactly the packed plain rows;
 *     the outputs equal those of plain copies in the grouped, decode and mixed
 *     (repacked + plain) paths; the mapping is read-only again afterwards
 *     and the file is unchanged.
 */
#include "check.h"
#include "layers/layers.h"
#include "kernels/quant.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / (float)(1u << 24)) * 2.0f - 1.0f;
}

/* Reference routing for one token. */
static void route_ref(const float *l, int ne, int k, bool renorm, int32_t *idx, float *w)
{
    double mx = l[0], sum = 0;
    float p[256];
    bool used[256] = { false };
    int e, j;
    for (e = 1; e < ne; e++)
        mx = l[e] > mx ? l[e] : mx;
    for (e = 0; e < ne; e++)
        sum += exp(l[e] - mx);
    for (e = 0; e < ne; e++)
        p[e] = (float)(exp(l[e] - mx) / sum);
    for (j = 0; j < k; j++) {
        int best = -1;
        for (e = 0; e < ne; e++)
            if (!used[e] && (best < 0 || p[e] > p[best]))
                best = e;
        used[best] = true;
        idx[j] = best;
        w[j] = p[best];
    }
    if (renorm) {
        float s = 0;
        for (j = 0; j < k; j++)
            s += w[j];
        for (j = 0; j < k; j++)
            w[j] /= s;
    }
}

static void test_route(void)
{
    unsigned seed = 7;
    int n = 13, ne = 37, k = 5, t, j, bad_idx = 0;
    float logits[13 * 37], w[13 * 5], wr[5];
    int32_t idx[13 * 5], ir[5];
    double max_dw = 0;

    for (t = 0; t < n * ne; t++)
        logits[t] = 3.0f * frand(&seed);
    /* ties: token 0 has experts 3, 9 and 20 equal and largest */
    logits[3] = logits[9] = logits[20] = 10.0f;
    for (int renorm = 0; renorm < 2; renorm++) {
        pio_moe_route_softmax(logits, n, ne, k, renorm, idx, w);
        for (t = 0; t < n; t++) {
            route_ref(logits + t * ne, ne, k, renorm, ir, wr);
            for (j = 0; j < k; j++) {
                bad_idx += idx[t * k + j] != ir[j];
                if (fabs(w[t * k + j] - wr[j]) > max_dw)
                    max_dw = fabs(w[t * k + j] - wr[j]);
            }
        }
        CHECK(bad_idx == 0, "renorm %d: %d selections differ from the reference", renorm, bad_idx);
        CHECK(max_dw < 1e-6, "renorm %d: weights differ by %g", renorm, max_dw);
        CHECK(idx[0] == 3 && idx[1] == 9 && idx[2] == 20, "ties: %d %d %d", idx[0], idx[1], idx[2]);
        if (renorm) {
            float s = 0;
            for (j = 0; j < k; j++)
                s += w[k + j];
            CHECK(fabs(s - 1.0f) < 1e-6, "renormalized weights sum to %g", s);
        }
    }
    /* k = n_experts: every expert, in descending order */
    pio_moe_route_softmax(logits + ne, 1, ne, ne, true, idx, w);
    for (j = 1; j < ne; j++)
        CHECK(w[j] <= w[j - 1], "k = n_experts: not descending at %d", j);
}

/* n tokens of width H through ne experts of ff, top-k, with weights in dt. */
static void test_forward(pio_dtype dt, int n, int H, int ff, int ne, int k)
{
    unsigned seed = 11u + (unsigned)dt;
    pio_threadpool *tp = NULL;
    pio_moe_expert *ex = calloc((size_t)ne, sizeof *ex);
    void **bufs = calloc((size_t)ne * 3, sizeof *bufs);
    float *x = malloc((size_t)n * H * sizeof(float)), *out = malloc((size_t)n * H * sizeof(float));
    float *ref = calloc((size_t)n * H, sizeof(float)), *y = malloc((size_t)H * sizeof(float));
    float *logits = malloc((size_t)n * ne * sizeof(float)), *w = malloc((size_t)n * k * sizeof(float));
    float *tmp = malloc((size_t)(H > ff ? H : ff) * (H > ff ? H : ff) * sizeof(float));
    int32_t *idx = malloc((size_t)n * k * sizeof(int32_t));
    pio_moe_scratch s = { 0 };
    pio_mlp_scratch ms = { 0 };
    double max_d = 0, max_r = 0;
    int e, m, t, j, c, touched = 0;

    CHECK_OK(pio_threadpool_new(2, &tp));
    for (e = 0; e < ne; e++) {
        pio_wmat *mats[3] = { &ex[e].gate, &ex[e].up, &ex[e].down };
        for (m = 0; m < 3; m++) {
            int64_t rows = m == 2 ? H : ff, cols = m == 2 ? ff : H;
            size_t rb = pio_dtype_row_bytes(dt, cols);
            for (c = 0; c < rows * cols; c++)
                tmp[c] = 0.3f * frand(&seed);
            bufs[e * 3 + m] = malloc((size_t)rows * rb);
            if (dt == PIO_DTYPE_F32)
                memcpy(bufs[e * 3 + m], tmp, (size_t)rows * cols * sizeof(float));
            else
                for (c = 0; c < rows; c++)
                    pio_quantize_row(dt, tmp + (size_t)c * cols, (char *)bufs[e * 3 + m] + (size_t)c * rb, cols);
            mats[m]->dtype = dt;
            mats[m]->data = bufs[e * 3 + m];
            mats[m]->rows = rows;
            mats[m]->cols = cols;
        }
    }
    for (c = 0; c < n * H; c++)
        x[c] = frand(&seed);
    /* route only to the first half of the experts: the rest get no token */
    for (c = 0; c < n * ne; c++)
        logits[c] = (c % ne) < (ne + 1) / 2 ? 2.0f * frand(&seed) : -30.0f;
    pio_moe_route_softmax(logits, n, ne, k, true, idx, w);

    CHECK_OK(pio_moe_forward(tp, ex, ne, k, idx, w, x, n, H, out, &s));
    for (t = 0; t < n; t++) {
        for (j = 0; j < k; j++) {
            e = idx[t * k + j];
            touched |= e >= (ne + 1) / 2;
            CHECK_OK(pio_swiglu_mlp(tp, &ex[e].gate, &ex[e].up, &ex[e].down, x + (size_t)t * H, 1, y, &ms));
            for (c = 0; c < H; c++)
                ref[(size_t)t * H + c] += w[t * k + j] * y[c];
        }
    }
    if (k <= (ne + 1) / 2)
        CHECK(!touched, "a token was routed to an expert with a -30 logit");
    for (c = 0; c < n * H; c++) {
        double d = fabs((double)out[c] - ref[c]);
        max_d = d > max_d ? d : max_d;
        max_r = fabs(ref[c]) > max_r ? fabs(ref[c]) : max_r;
    }
    printf("moe_forward %s n=%d H=%d ff=%d experts=%d top-%d: max|d| %.3g (max %.3g)\n", pio_dtype_name(dt), n,
           H, ff, ne, k, max_d, max_r);
    CHECK(max_d <= 1e-5 * (max_r > 1 ? max_r : 1), "%s: grouped != per-token: %g", pio_dtype_name(dt), max_d);

    /* decode-sized batch: one token (the same path with m = 1 per expert) */
    CHECK_OK(pio_moe_forward(tp, ex, ne, k, idx, w, x, 1, H, out, &s));
    for (c = 0; c < H; c++)
        CHECK(fabs(out[c] - ref[c]) <= 1e-5 * (max_r > 1 ? max_r : 1), "n=1: column %d differs", c);

    idx[0] = ne;   /* out of range, in a batch and in a single token */
    CHECK(pio_moe_forward(tp, ex, ne, k, idx, w, x, 1, H, out, &s) == PIO_STATUS_ERR_INVALID_ARG,
          "n=1: expert index %d accepted", ne);
    CHECK(pio_moe_forward(tp, ex, ne, k, idx, w, x, n, H, out, &s) == PIO_STATUS_ERR_INVALID_ARG,
          "expert index %d accepted", ne);
    idx[0] = -1;
    CHECK(pio_moe_forward(tp, ex, ne, k, idx, w, x, n, H, out, &s) == PIO_STATUS_ERR_INVALID_ARG,
          "expert index -1 accepted");
    pio_clear_error();

    for (e = 0; e < ne * 3; e++)
        free(bufs[e]);
    free(bufs); free(ex); free(x); free(out); free(ref); free(y); free(logits); free(w); free(tmp); free(idx);
    pio_moe_scratch_free(&s);
    pio_mlp_scratch_free(&ms);
    pio_threadpool_free(tp);
}

/* Every mapping of /proc/self/maps that overlaps [a, a + len) has perms "r--p". */
static bool maps_read_only(const void *a, size_t len)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512], perms[8];
    unsigned long lo, hi;
    bool ok = f != NULL, seen = false;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
            continue;
        if (hi <= (uintptr_t)a || lo >= (uintptr_t)a + len)
            continue;
        seen = true;
        if (strcmp(perms, "r--p") != 0)
            ok = false;
    }
    if (f)
        fclose(f);
    return ok && seen;
}

static bool want_x8(pio_dtype dt, int64_t rows, int64_t cols)
{
    return pio_dtype_is_x8(pio_wmat_layout_for(dt, rows, cols));
}

/* The X8 layout of the plain format dt. */
static pio_dtype x8_of(pio_dtype dt)
{
    int d;
    for (d = 0; d < PIO_DTYPE_COUNT && pio_x8_base((pio_dtype)d) != dt; d++)
        ;
    return (pio_dtype)d;
}

/*
 * Lazy repack of ne experts of dtype dt (Q4_0, Q8_0, Q4_K, Q6_K) (H wide, ff hidden) held in memory
 * (file_map false: malloc'd, PIO_MOE_REPACK_IN_PLACE) or in a read-only
 * private mapping of a temporary file (views `skew` bytes past the page
 * start, PIO_MOE_REPACK_FILE_MAP), against plain copies never repacked.
 */
static void test_lazy_repack(pio_dtype dt, bool file_map, int H, int ff, int ne, int k)
{
    const pio_dtype x8dt = x8_of(dt);
    unsigned seed = 29u + (unsigned)file_map;
    const size_t skew = 96;
    size_t rb_h = pio_dtype_row_bytes(dt, H), rb_f = pio_dtype_row_bytes(dt, ff);
    size_t mat_gu = (size_t)ff * rb_h, mat_d = (size_t)H * rb_f, per = 2 * mat_gu + mat_d;
    size_t total = skew + (size_t)ne * per;
    uint8_t *orig = malloc(total), *mem = NULL, *map = NULL;
    float *tmp = malloc((size_t)H * ff * sizeof(float));
    pio_moe_expert *lazy = calloc((size_t)ne, sizeof *lazy), *plain = calloc((size_t)ne, sizeof *plain);
    int n = 6, j, e, m, c, fd = -1;
    float *x = malloc((size_t)n * H * sizeof(float)), *out = malloc((size_t)n * H * sizeof(float));
    float *ref = malloc((size_t)n * H * sizeof(float)), *logits = malloc((size_t)n * ne * sizeof(float));
    float *w = malloc((size_t)n * k * sizeof(float));
    int32_t *idx = malloc((size_t)n * k * sizeof(int32_t));
    pio_threadpool *tp = NULL;
    pio_moe_scratch s = { 0 }, sr = { 0 };
    char path[] = "/tmp/pio_test_moe_XXXXXX";
    const bool x8 = want_x8(dt, ff, H) && want_x8(dt, H, ff);
    const char *what = file_map ? "file map" : "in place";
    double max_d = 0, max_r = 0;
    uint8_t *base;

    CHECK_OK(pio_threadpool_new(2, &tp));
    memset(orig, 0, skew);
    for (e = 0; e < ne; e++)
        for (m = 0; m < 3; m++) {
            int64_t rows = m == 2 ? H : ff, cols = m == 2 ? ff : H, r;
            uint8_t *d = orig + skew + (size_t)e * per + (size_t)m * mat_gu;
            for (c = 0; c < rows * cols; c++)
                tmp[c] = 0.3f * frand(&seed);
            for (r = 0; r < rows; r++)
                pio_quantize_row(dt, tmp + (size_t)r * cols, d + (size_t)r * pio_dtype_row_bytes(dt, cols), cols);
        }
    if (file_map) {
        fd = mkstemp(path);
        CHECK(fd >= 0 && write(fd, orig, total) == (ssize_t)total, "cannot write %s", path);
        map = mmap(NULL, total, PROT_READ, MAP_PRIVATE, fd, 0);
        CHECK(map != MAP_FAILED, "mmap of %s failed", path);
        if (map == MAP_FAILED)
            map = NULL;
        base = map;
    } else {
        mem = malloc(total);
        memcpy(mem, orig, total);
        base = mem;
    }
    if (!base)
        goto out;
    for (e = 0; e < ne; e++) {
        const uint8_t *le = base + skew + (size_t)e * per, *pe = orig + skew + (size_t)e * per;
        pio_wmat g = { dt, NULL, ff, H }, d = { dt, NULL, H, ff };
        lazy[e].gate = plain[e].gate = lazy[e].up = plain[e].up = g;
        lazy[e].down = plain[e].down = d;
        lazy[e].gate.data = le, lazy[e].up.data = le + mat_gu, lazy[e].down.data = le + 2 * mat_gu;
        plain[e].gate.data = pe, plain[e].up.data = pe + mat_gu, plain[e].down.data = pe + 2 * mat_gu;
        for (m = 0; m < 3; m++)
            lazy[e].repack[m] = file_map ? PIO_MOE_REPACK_FILE_MAP : PIO_MOE_REPACK_IN_PLACE;
    }
    lazy[ne - 1].repack[0] = lazy[ne - 1].repack[1] = lazy[ne - 1].repack[2] = PIO_MOE_REPACK_NONE;

    for (c = 0; c < n * H; c++)
        x[c] = frand(&seed);

    /* 1: a batch routed to the first half of the experts only */
    for (c = 0; c < n * ne; c++)
        logits[c] = (c % ne) < ne / 2 ? 2.0f * frand(&seed) : -30.0f;
    pio_moe_route_softmax(logits, n, ne, k, true, idx, w);
    CHECK_OK(pio_moe_forward(tp, lazy, ne, k, idx, w, x, n, H, out, &s));
    CHECK_OK(pio_moe_forward(tp, plain, ne, k, idx, w, x, n, H, ref, &sr));
    for (e = 0; e < ne; e++) {
        bool routed = false;
        for (j = 0; j < n * k; j++)
            routed |= idx[j] == e;
        for (m = 0; m < 3; m++) {
            const pio_wmat *mw = m == 0 ? &lazy[e].gate : m == 1 ? &lazy[e].up : &lazy[e].down;
            bool done = routed && x8 && e != ne - 1;
            CHECK(mw->dtype == (done ? x8dt : dt), "%s: expert %d matrix %d (routed %d): %s",
                  what, e, m, routed, pio_dtype_name(mw->dtype));
            CHECK((lazy[e].repack[m] == PIO_MOE_REPACK_NONE) == (routed || e == ne - 1),
                  "%s: expert %d matrix %d: mark %d", what, e, m, lazy[e].repack[m]);
        }
    }
    for (c = 0; c < n * H; c++) {
        max_d = fmax(max_d, fabs((double)out[c] - ref[c]));
        max_r = fmax(max_r, fabs(ref[c]));
    }

    /* 2: a single token (decode path) on a repacked and a new expert; 3: on
     * a repacked one and the plain last one (mixed dtypes) */
    for (int step = 0; step < 2; step++) {
        int32_t id2[2] = { 0, step == 0 ? ne / 2 : ne - 1 };
        float w2[2] = { 0.625f, 0.375f };
        CHECK_OK(pio_moe_forward(tp, lazy, ne, 2, id2, w2, x, 1, H, out, &s));
        CHECK_OK(pio_moe_forward(tp, plain, ne, 2, id2, w2, x, 1, H, ref, &sr));
        for (c = 0; c < H; c++) {
            max_d = fmax(max_d, fabs((double)out[c] - ref[c]));
            max_r = fmax(max_r, fabs(ref[c]));
        }
    }
    CHECK(lazy[ne / 2].gate.dtype == (x8 ? x8dt : dt), "%s: decode did not repack expert %d",
          what, ne / 2);
    printf("moe lazy repack %s (%s, X8 %s) H=%d ff=%d experts=%d: max|d| %.3g (max %.3g)\n", pio_dtype_name(dt),
           what, x8 ? "wanted" : "not wanted", H, ff, ne, max_d, max_r);
    CHECK(max_d <= 1e-5 * (max_r > 1 ? max_r : 1), "%s: repacked experts differ from plain ones by %g", what, max_d);

    /* the repacked bytes are the packed plain rows; the others are untouched */
    for (e = 0; e < ne; e++)
        for (m = 0; m < 3; m++) {
            const pio_wmat *mw = m == 0 ? &lazy[e].gate : m == 1 ? &lazy[e].up : &lazy[e].down;
            const uint8_t *want = (const uint8_t *)(m == 0 ? plain[e].gate.data : m == 1 ? plain[e].up.data : plain[e].down.data);
            size_t rb = pio_dtype_row_bytes(dt, mw->cols), bytes = (size_t)mw->rows * rb;
            uint8_t *back = malloc(bytes);
            int64_t r;
            if (mw->dtype == x8dt)
                for (r = 0; r < mw->rows; r += PIO_X8_ROWS)
                    pio_x8_unpack(x8dt, back + (size_t)r * rb, rb, (const uint8_t *)mw->data + (size_t)r * rb, mw->cols);
            else
                memcpy(back, mw->data, bytes);
            CHECK(memcmp(back, want, bytes) == 0, "%s: expert %d matrix %d (%s): bytes differ", what, e, m,
                  pio_dtype_name(mw->dtype));
            free(back);
        }
    if (file_map) {
        uint8_t *disk = malloc(total);
        CHECK(maps_read_only(map, total), "the mapping is not read-only after the repack");
        CHECK(pread(fd, disk, total, 0) == (ssize_t)total && memcmp(disk, orig, total) == 0,
              "the file changed under the private mapping");
        free(disk);
    }

out:
    if (map)
        munmap(map, total);
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    free(mem); free(orig); free(tmp); free(lazy); free(plain); free(x); free(out); free(ref); free(logits);
    free(w); free(idx);
    pio_moe_scratch_free(&s);
    pio_moe_scratch_free(&sr);
    pio_threadpool_free(tp);
}

int main(void)
{
    test_route();
    test_forward(PIO_DTYPE_F32, 19, 40, 24, 9, 3);
    test_forward(PIO_DTYPE_F32, 3, 8, 5, 4, 4);
    test_forward(PIO_DTYPE_Q8_0, 17, 64, 32, 12, 2);
    test_forward(PIO_DTYPE_BF16, 5, 48, 40, 6, 2);
    test_forward(PIO_DTYPE_Q4_0, 4, 96, 64, 5, 3);
    test_forward(PIO_DTYPE_Q4_K, 3, 256, 256, 4, 2);
    test_lazy_repack(PIO_DTYPE_Q4_0, false, 128, 64, 8, 2);
    test_lazy_repack(PIO_DTYPE_Q4_0, true, 128, 64, 8, 2);
    test_lazy_repack(PIO_DTYPE_Q8_0, false, 128, 64, 8, 2);
    test_lazy_repack(PIO_DTYPE_Q8_0, true, 128, 64, 8, 2);
    test_lazy_repack(PIO_DTYPE_Q4_0, true, 256, 96, 6, 3);
    test_lazy_repack(PIO_DTYPE_Q8_0, true, 256, 96, 6, 3);
    test_lazy_repack(PIO_DTYPE_Q4_K, false, 256, 512, 5, 2);
    test_lazy_repack(PIO_DTYPE_Q4_K, true, 512, 256, 6, 3);
    test_lazy_repack(PIO_DTYPE_Q6_K, false, 256, 512, 5, 2);
    test_lazy_repack(PIO_DTYPE_Q6_K, true, 512, 256, 6, 3);
    return check_report("test_moe");
}
