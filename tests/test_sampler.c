/*
 * test_sampler.c - the token sampler (greedy, temperature, top-k, top-p,
 * min-p, penalties, seeding) and the stop-string matcher.
 *
 * Filters are checked two ways: the kept set and probabilities from
 * pio_sampler_probs against a plain full-sort reference written here from
 * the transformers definitions, and empirical frequencies of many seeded
 * draws against those probabilities.
 */
#include "pio/sampler.h"
#include "check.h"

#include <stdint.h>
#include <time.h>

/* A small deterministic generator for test data (not the sampler's). */
static uint64_t test_rng = 0x1234567890abcdefull;
static double test_uniform(void)
{
    test_rng ^= test_rng << 13;
    test_rng ^= test_rng >> 7;
    test_rng ^= test_rng << 17;
    return (double)(test_rng >> 11) * 0x1.0p-53;
}

static void random_logits(float *l, int n, float scale)
{
    for (int i = 0; i < n; i++)
        l[i] = (float)((test_uniform() * 2.0 - 1.0) * scale);
}

static pio_sampler *make(const pio_sampler_params *p, int n_vocab, int n_valid)
{
    pio_sampler *s = NULL;
    CHECK_OK(pio_sampler_new(p, n_vocab, n_valid, &s));
    return s;
}

/* Lowest id with the largest logit among the first n_valid. */
static int ref_argmax(const float *l, int n_valid)
{
    int best = 0;
    for (int i = 1; i < n_valid; i++)
        if (l[i] > l[best])
            best = i;
    return best;
}

/* ---- reference: full sort, transformers' warpers, in double ------------ */

typedef struct { double l; int id; } ref_item;

static int ref_cmp(const void *a, const void *b)
{
    const ref_item *x = a, *y = b;
    if (x->l != y->l)
        return x->l > y->l ? -1 : 1;
    return x->id - y->id;
}

/* probs[n_vocab] after temperature, top-k, top-p, min-p (no penalties). */
static void ref_probs(const float *logits, int n_vocab, int n_valid, float temp, int top_k,
                      float top_p, float min_p, double *probs)
{
    ref_item *it = malloc((size_t)n_valid * sizeof *it);
    int n = n_valid;
    for (int i = 0; i < n_valid; i++)
        it[i] = (ref_item){ (double)(logits[i] / temp), i };
    qsort(it, (size_t)n, sizeof *it, ref_cmp);
    if (top_k > 0 && top_k < n)
        n = top_k;
    double m = it[0].l, total = 0.0, cum = 0.0;
    for (int i = 0; i < n; i++)
        total += exp(it[i].l - m);
    if (top_p < 1.0f) {
        int keep = n;
        for (int i = 0; i < n; i++) {
            if (cum >= top_p * total) {
                keep = i > 0 ? i : 1;
                break;
            }
            cum += exp(it[i].l - m);
        }
        n = keep;
    }
    int kept = 0;
    for (int i = 0; i < n; i++)
        if (min_p <= 0.0f || exp(it[i].l - m) >= min_p)
            it[kept++] = it[i];
    n = kept;
    total = 0.0;
    for (int i = 0; i < n; i++)
        total += exp(it[i].l - m);
    for (int i = 0; i < n_vocab; i++)
        probs[i] = 0.0;
    for (int i = 0; i < n; i++)
        probs[it[i].id] = exp(it[i].l - m) / total;
    free(it);
}

/* Compare pio_sampler_probs with the reference on one logits row. */
static void check_against_reference(const float *logits, int n_vocab, int n_valid, float temp,
                                    int top_k, float top_p, float min_p, const char *what)
{
    pio_sampler_params p;
    pio_sampler_params_default(&p);
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    pio_sampler *s = make(&p, n_vocab, n_valid);
    float *work = malloc((size_t)n_vocab * sizeof *work);
    float *probs = malloc((size_t)n_vocab * sizeof *probs);
    double *want = malloc((size_t)n_vocab * sizeof *want);
    memcpy(work, logits, (size_t)n_vocab * sizeof *work);
    int nz = s ? pio_sampler_probs(s, work, NULL, 0, probs) : 0;
    ref_probs(logits, n_vocab, n_valid, temp, top_k, top_p, min_p, want);

    int set_mismatch = 0, want_nz = 0;
    double max_err = 0.0;
    for (int i = 0; i < n_vocab; i++) {
        want_nz += want[i] > 0.0;
        if ((want[i] > 0.0) != (probs[i] > 0.0f))
            set_mismatch++;
        double e = fabs(want[i] - (double)probs[i]);
        if (e > max_err)
            max_err = e;
    }
    CHECK(set_mismatch == 0 && nz == want_nz, "%s: kept %d vs reference %d, %d ids differ",
          what, nz, want_nz, set_mismatch);
    CHECK(max_err < 1e-5, "%s: max probability error %g", what, max_err);
    free(work);
    free(probs);
    free(want);
    pio_sampler_free(s);
}

/* Draw n_draws times from the same row; compare frequencies with `probs`
 * (binomial 5-sigma bound plus a little slack); no draw may fall outside
 * the ids with nonzero probability. */
static void check_frequencies(pio_sampler *s, const float *logits, int n_vocab, const float *probs,
                              int n_draws, const char *what)
{
    int *count = calloc((size_t)n_vocab, sizeof *count);
    float *work = malloc((size_t)n_vocab * sizeof *work);
    int outside = 0, bad = 0;
    for (int d = 0; d < n_draws; d++) {
        memcpy(work, logits, (size_t)n_vocab * sizeof *work);
        int32_t t = pio_sampler_sample(s, work, NULL, 0);
        if (t < 0 || t >= n_vocab || probs[t] == 0.0f)
            outside++;
        else
            count[t]++;
    }
    for (int i = 0; i < n_vocab; i++) {
        double f = (double)count[i] / n_draws, pr = probs[i];
        double tol = 5.0 * sqrt(pr * (1.0 - pr) / n_draws) + 1e-3;
        if (fabs(f - pr) > tol) {
            if (bad++ < 5)
                fprintf(stderr, "%s: id %d frequency %.4f, probability %.4f\n", what, i, f, pr);
        }
    }
    CHECK(outside == 0, "%s: %d draws outside the kept set", what, outside);
    CHECK(bad == 0, "%s: %d ids off their probability", what, bad);
    free(count);
    free(work);
}

/* ---- sampler tests --------------------------------------------------------- */

static void test_params(void)
{
    pio_sampler_params p;
    pio_sampler *s = NULL;
    pio_status st;

    pio_sampler_params_default(&p);
    CHECK(p.temperature <= 0.0f && p.top_k <= 0 && p.top_p >= 1.0f && p.min_p <= 0.0f &&
          p.repetition_penalty == 1.0f && p.presence_penalty == 0.0f &&
          p.frequency_penalty == 0.0f && p.penalty_last_n == -1,
          "defaults are not greedy/off");

    st = pio_sampler_new(&p, 10, 0, &s);
    CHECK(st == PIO_STATUS_ERR_INVALID_ARG && !s, "n_valid 0: %s", pio_status_name(st));
    st = pio_sampler_new(&p, 10, 11, &s);
    CHECK(st == PIO_STATUS_ERR_INVALID_ARG && strstr(pio_last_error(), "n_valid"),
          "n_valid > n_vocab: %s", pio_last_error());

    static const char *const field[] = {
        "top_p", "min_p", "repetition_penalty", "penalty_last_n", "temperature",
    };
    for (int i = 0; i < 5; i++) {
        pio_sampler_params_default(&p);
        switch (i) {
        case 0: p.top_p = 0.0f; break;
        case 1: p.min_p = 1.5f; break;
        case 2: p.repetition_penalty = 0.0f; break;
        case 3: p.penalty_last_n = -2; break;
        case 4: p.temperature = NAN; break;
        }
        st = pio_sampler_new(&p, 10, 10, &s);
        CHECK(st == PIO_STATUS_ERR_INVALID_ARG && !s && strstr(pio_last_error(), field[i]),
              "bad %s: %s: %s", field[i], pio_status_name(st), pio_last_error());
    }
    /* NULL params: greedy defaults. */
    CHECK_OK(pio_sampler_new(NULL, 4, 4, &s));
    float l[4] = { 0.1f, 0.7f, 0.3f, -1.0f };
    CHECK(s && pio_sampler_sample(s, l, NULL, 0) == 1, "NULL params not greedy");
    pio_sampler_free(s);
    pio_sampler_free(NULL);
}

static void test_greedy(void)
{
    enum { V = 1000, VALID = 990 };
    float l[V], copy[V];
    pio_sampler *s = make(NULL, V, VALID);
    if (!s)
        return;

    for (int r = 0; r < 50; r++) {
        random_logits(l, V, 10.0f);
        memcpy(copy, l, sizeof l);
        int want = ref_argmax(l, VALID);
        CHECK(pio_sampler_sample(s, copy, NULL, 0) == want, "row %d: argmax", r);
    }

    /* Padded rows never win, and come back as -inf. */
    random_logits(l, V, 1.0f);
    l[995] = 100.0f;
    l[420] = 5.0f;
    CHECK(pio_sampler_sample(s, l, NULL, 0) == 420, "padded row chosen");
    CHECK(isinf(l[995]) && l[995] < 0 && isinf(l[999]) && l[999] < 0, "padded rows not masked");

    /* Ties: lowest id. */
    for (int i = 0; i < V; i++)
        l[i] = 0.0f;
    l[700] = l[300] = l[301] = 2.0f;
    CHECK(pio_sampler_sample(s, l, NULL, 0) == 300, "tie not lowest id");

    /* NaN is -inf; all -inf is an error (-1). */
    random_logits(l, V, 1.0f);
    l[5] = NAN;
    l[6] = 50.0f;
    CHECK(pio_sampler_sample(s, l, NULL, 0) == 6, "NaN chosen");
    for (int i = 0; i < V; i++)
        l[i] = -INFINITY;
    l[993] = 1.0f;   /* padded: does not count */
    CHECK(pio_sampler_sample(s, l, NULL, 0) == -1 && strstr(pio_last_error(), "-inf"),
          "all -inf: %s", pio_last_error());
    pio_sampler_free(s);
}

/* Sampling at temperature -> 0 becomes greedy; top_k = 1 is greedy. */
static void test_greedy_limits(void)
{
    enum { V = 5000 };
    static float l[V], copy[V];
    pio_sampler_params p;
    pio_sampler *cold, *colder, *k1;

    pio_sampler_params_default(&p);
    p.seed = 7;
    p.temperature = 1e-3f;
    cold = make(&p, V, V);
    p.temperature = 1e-9f;
    colder = make(&p, V, V);
    p.temperature = 1.5f;
    p.top_k = 1;
    k1 = make(&p, V, V);
    if (!cold || !colder || !k1)
        goto free_samplers;

    int agree_cold = 0, agree_colder = 0, agree_k1 = 0;
    const int rows = 200;
    for (int r = 0; r < rows; r++) {
        random_logits(l, V, 8.0f);
        int want = ref_argmax(l, V);
        /* Keep the runner-up at least 0.05 below: exp(-50) at T = 1e-3. */
        for (int i = 0; i < V; i++)
            if (i != want && l[i] > l[want] - 0.05f)
                l[i] = l[want] - 0.05f;
        memcpy(copy, l, sizeof l);
        agree_cold += pio_sampler_sample(cold, copy, NULL, 0) == want;
        memcpy(copy, l, sizeof l);
        agree_colder += pio_sampler_sample(colder, copy, NULL, 0) == want;
        memcpy(copy, l, sizeof l);
        agree_k1 += pio_sampler_sample(k1, copy, NULL, 0) == want;
    }
    CHECK(agree_cold == rows, "T=1e-3: %d/%d greedy", agree_cold, rows);
    CHECK(agree_colder == rows, "T=1e-9: %d/%d greedy", agree_colder, rows);
    CHECK(agree_k1 == rows, "top_k=1: %d/%d greedy", agree_k1, rows);
free_samplers:
    pio_sampler_free(cold);
    pio_sampler_free(colder);
    pio_sampler_free(k1);
}

/* Known small distributions: exact kept sets, then frequencies. */
static void test_filters_small(void)
{
    /* probabilities 0.5, 0.3, 0.15, 0.05 at ids 2, 0, 3, 1; id 4 padded. */
    float base[5];
    base[2] = logf(0.5f);
    base[0] = logf(0.3f);
    base[3] = logf(0.15f);
    base[1] = logf(0.05f);
    base[4] = 10.0f;
    static const struct {
        int top_k;
        float top_p, min_p;
        float want[4];    /* expected probabilities of ids 0..3 */
    } cases[] = {
        { 0, 1.0f, 0.0f, { 0.3f, 0.05f, 0.5f, 0.15f } },
        { 2, 1.0f, 0.0f, { 0.375f, 0.0f, 0.625f, 0.0f } },
        { 0, 0.7f, 0.0f, { 0.375f, 0.0f, 0.625f, 0.0f } },       /* 0.5 < 0.7 <= 0.8 */
        { 0, 0.85f, 0.0f, { 0.3f / 0.95f, 0.0f, 0.5f / 0.95f, 0.15f / 0.95f } },
        { 0, 0.3f, 0.0f, { 0.0f, 0.0f, 1.0f, 0.0f } },
        { 0, 1.0f, 0.2f, { 0.3f / 0.95f, 0.0f, 0.5f / 0.95f, 0.15f / 0.95f } }, /* p >= 0.1 */
        { 0, 1.0f, 0.5f, { 0.375f, 0.0f, 0.625f, 0.0f } },       /* p >= 0.25 */
        { 3, 0.85f, 0.5f, { 0.375f, 0.0f, 0.625f, 0.0f } },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        pio_sampler_params p;
        float l[5], probs[5];
        char what[96];
        pio_sampler_params_default(&p);
        p.temperature = 1.0f;
        p.top_k = cases[c].top_k;
        p.top_p = cases[c].top_p;
        p.min_p = cases[c].min_p;
        p.seed = 1000 + c;
        snprintf(what, sizeof what, "top_k %d top_p %.2f min_p %.2f", p.top_k, (double)p.top_p,
                 (double)p.min_p);
        pio_sampler *s = make(&p, 5, 4);
        if (!s)
            continue;
        memcpy(l, base, sizeof l);
        pio_sampler_probs(s, l, NULL, 0, probs);
        bool ok = probs[4] == 0.0f;
        for (int i = 0; i < 4; i++)
            ok &= fabsf(probs[i] - cases[c].want[i]) < 1e-5f;
        CHECK(ok, "%s: probs %.4f %.4f %.4f %.4f %.4f", what, (double)probs[0],
              (double)probs[1], (double)probs[2], (double)probs[3], (double)probs[4]);
        check_frequencies(s, base, 5, probs, 20000, what);
        pio_sampler_free(s);
    }
}

/* Random rows over a large vocabulary against the full-sort reference;
 * top-p with a flat distribution forces several sorting rounds. */
static void test_filters_reference(void)
{
    enum { V = 20000, VALID = 19950 };
    static float l[V];
    static const struct { float temp; int top_k; float top_p, min_p; float scale; } cases[] = {
        { 1.0f, 0, 1.0f, 0.0f, 4.0f },
        { 0.7f, 40, 1.0f, 0.0f, 4.0f },
        { 0.7f, 0, 0.9f, 0.0f, 4.0f },
        { 1.0f, 0, 0.95f, 0.0f, 0.5f },    /* flat: the kept head is thousands of ids */
        { 1.0f, 0, 0.5f, 0.0f, 12.0f },    /* peaked: the head fits in the first chunk */
        { 0.8f, 0, 1.0f, 0.05f, 4.0f },
        { 0.6f, 50, 0.8f, 0.02f, 4.0f },
        { 1.3f, 5000, 0.99f, 0.0f, 1.0f },
        { 1.0f, V, 1.0f, 0.0f, 1.0f },     /* top_k >= vocab: off */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int r = 0; r < 3; r++) {
            char what[128];
            random_logits(l, V, cases[c].scale);
            snprintf(what, sizeof what, "T %.2f top_k %d top_p %.2f min_p %.2f row %d",
                     (double)cases[c].temp, cases[c].top_k, (double)cases[c].top_p,
                     (double)cases[c].min_p, r);
            check_against_reference(l, V, VALID, cases[c].temp, cases[c].top_k, cases[c].top_p,
                                    cases[c].min_p, what);
        }
    }
}

/* Penalties against values worked out by hand. */
static void test_penalties(void)
{
    const float base[6] = { 2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 1.0f };
    const int32_t hist[] = { 0, 1, 1, -5, 3, 99, 3, 3 };   /* -5, 99: ignored */
    const int n_hist = (int)(sizeof hist / sizeof hist[0]);
    float l[6], probs[6];
    pio_sampler_params p;
    pio_sampler *s;

    pio_sampler_params_default(&p);
    p.repetition_penalty = 1.5f;
    p.presence_penalty = 0.2f;
    p.frequency_penalty = 0.1f;
    s = make(&p, 6, 6);
    if (!s)
        return;
    /* id 0 (count 1): 2 / 1.5 - 0.1 - 0.2; id 1 (count 2): -1 * 1.5 - 0.2 - 0.2;
     * id 3 (count 3): 3 / 1.5 - 0.3 - 0.2; ids 2, 4, 5 untouched. */
    const float want[6] = { 2.0f / 1.5f - 0.3f, -1.9f, 0.5f, 1.5f, -2.0f, 1.0f };
    for (int rep = 0; rep < 2; rep++) {   /* twice: counts must not carry over */
        memcpy(l, base, sizeof l);
        int32_t t = pio_sampler_sample(s, l, hist, n_hist);
        bool ok = true;
        for (int i = 0; i < 6; i++)
            ok &= fabsf(l[i] - want[i]) < 1e-6f;
        CHECK(ok, "pass %d: penalized %.5f %.5f %.5f %.5f %.5f %.5f", rep, (double)l[0],
              (double)l[1], (double)l[2], (double)l[3], (double)l[4], (double)l[5]);
        CHECK(t == 3, "pass %d: greedy after penalties chose %d", rep, (int)t);
    }
    pio_sampler_free(s);

    /* Window of the last 2 tokens: only id 3 (count 2). */
    p.penalty_last_n = 2;
    s = make(&p, 6, 6);
    memcpy(l, base, sizeof l);
    if (s)
        pio_sampler_probs(s, l, hist, n_hist, probs);
    CHECK(fabsf(l[3] - (2.0f - 0.2f - 0.2f)) < 1e-6f && l[0] == 2.0f && l[1] == -1.0f,
          "last_n 2: %.5f %.5f %.5f", (double)l[0], (double)l[1], (double)l[3]);
    pio_sampler_free(s);

    /* Window 0: no penalties at all. */
    p.penalty_last_n = 0;
    s = make(&p, 6, 6);
    memcpy(l, base, sizeof l);
    if (s)
        pio_sampler_probs(s, l, hist, n_hist, probs);
    CHECK(memcmp(l, base, sizeof l) == 0, "last_n 0 changed logits");
    pio_sampler_free(s);

    /* Repetition penalty alone flips a greedy choice: 5 / 2 < 4.9. */
    pio_sampler_params_default(&p);
    p.repetition_penalty = 2.0f;
    s = make(&p, 2, 2);
    float two[2] = { 5.0f, 4.9f };
    int32_t h0 = 0;
    CHECK(s && pio_sampler_sample(s, two, &h0, 1) == 1, "repetition penalty did not flip");
    pio_sampler_free(s);

    /* Penalties act before temperature: T = 2 halves the penalized logit. */
    pio_sampler_params_default(&p);
    p.temperature = 2.0f;
    p.presence_penalty = 1.0f;
    s = make(&p, 3, 3);
    float three[3] = { 1.0f, 2.0f, 3.0f };
    int32_t h2 = 2;
    if (s)
        pio_sampler_probs(s, three, &h2, 1, probs);
    CHECK(fabsf(three[2] - 1.0f) < 1e-6f && fabsf(three[0] - 0.5f) < 1e-6f,
          "penalty/temperature order: %.4f %.4f", (double)three[0], (double)three[2]);
    pio_sampler_free(s);
}

/* The same seed gives the same tokens; another seed other tokens. */
static void test_seeding(void)
{
    enum { V = 3000, STEPS = 300 };
    static float rows[8][V], work[V];
    int32_t a[STEPS], b[STEPS], c[STEPS], d[STEPS];
    pio_sampler_params p;

    for (int r = 0; r < 8; r++)
        random_logits(rows[r], V, 3.0f);
    pio_sampler_params_default(&p);
    p.temperature = 1.0f;
    p.top_p = 0.95f;
    p.repetition_penalty = 1.1f;
    p.seed = 42;
    pio_sampler *s1 = make(&p, V, V), *s2 = make(&p, V, V);
    p.seed = 43;
    pio_sampler *s3 = make(&p, V, V);
    if (!s1 || !s2 || !s3)
        goto free_samplers;
    for (int i = 0; i < STEPS; i++) {
        memcpy(work, rows[i % 8], sizeof work);
        a[i] = pio_sampler_sample(s1, work, a, i);
        memcpy(work, rows[i % 8], sizeof work);
        b[i] = pio_sampler_sample(s2, work, b, i);
        memcpy(work, rows[i % 8], sizeof work);
        c[i] = pio_sampler_sample(s3, work, c, i);
    }
    CHECK(memcmp(a, b, sizeof a) == 0, "same seed, different tokens");
    CHECK(memcmp(a, c, sizeof a) != 0, "seeds 42 and 43 gave identical sequences");
    pio_sampler_reseed(s1, 42);
    for (int i = 0; i < STEPS; i++) {
        memcpy(work, rows[i % 8], sizeof work);
        d[i] = pio_sampler_sample(s1, work, d, i);
    }
    CHECK(memcmp(a, d, sizeof a) == 0, "reseed did not replay");
free_samplers:
    pio_sampler_free(s1);
    pio_sampler_free(s2);
    pio_sampler_free(s3);
}

/* Timing on a Qwen-sized row; informative only (sanitizer builds are slow). */
static void test_speed(void)
{
    enum { V = 151936, VALID = 151669, N = 50 };
    float *l = malloc(V * sizeof *l), *work = malloc(V * sizeof *work);
    int32_t hist[256];
    pio_sampler_params p;
    pio_sampler_params_default(&p);
    p.temperature = 0.7f;
    p.top_k = 20;
    p.top_p = 0.8f;
    p.repetition_penalty = 1.05f;
    p.penalty_last_n = 64;
    for (int i = 0; i < 256; i++)
        hist[i] = (int32_t)(test_uniform() * VALID);
    random_logits(l, V, 6.0f);
    const char *names[] = { "top_k 20 + top_p 0.8", "top_p 0.95 alone", "no filters" };
    for (int c = 0; c < 3; c++) {
        if (c == 1) {
            p.top_k = 0;
            p.top_p = 0.95f;
        } else if (c == 2) {
            p.top_p = 1.0f;
        }
        pio_sampler *s = make(&p, V, VALID);
        if (!s)
            break;
        struct timespec t0, t1;
        int ok = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < N; i++) {
            memcpy(work, l, V * sizeof *work);
            int32_t t = pio_sampler_sample(s, work, hist, 256);
            ok += t >= 0 && t < VALID;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = ((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6) / N;
        printf("sample over %d ids, %s: %.3f ms/token\n", V, names[c], ms);
        CHECK(ok == N, "%s: %d/%d valid tokens", names[c], ok, N);
        pio_sampler_free(s);
    }
    free(l);
    free(work);
}

/* ---- stop strings ------------------------------------------------------------ */

/* Push `chunks` (NULL-terminated) then flush; collect emitted text into
 * out (size cap) and return the stop index seen (-1 none). */
static int run_stops(const char *const *stops, const char *const *chunks, char *out, size_t cap)
{
    pio_stop_matcher *m = NULL;
    pio_stop_result r = { 0 };
    size_t n = 0;
    int hit = -1;
    out[0] = '\0';
    if (pio_stop_matcher_new_list(stops, &m) != PIO_STATUS_OK)
        return -2;
    for (int i = 0; chunks[i]; i++) {
        CHECK_OK(pio_stop_matcher_push(m, chunks[i], strlen(chunks[i]), &r));
        if (n + r.len < cap) {
            memcpy(out + n, r.text, r.len);
            n += r.len;
        }
        hit = r.stop_index;
    }
    CHECK_OK(pio_stop_matcher_flush(m, &r));
    if (n + r.len < cap) {
        memcpy(out + n, r.text, r.len);
        n += r.len;
    }
    out[n] = '\0';
    CHECK(r.stop_index == hit, "flush changed stop_index %d -> %d", hit, r.stop_index);
    pio_stop_matcher_free(m);
    return hit;
}

static void test_stop_basic(void)
{
    pio_stop_matcher *m = NULL;
    pio_stop_result r;
    const char *const eos[] = { "</s>", NULL };

    CHECK_OK(pio_stop_matcher_new_list(eos, &m));
    if (!m)
        return;
    /* Partial prefixes are held back, then dropped with the stop string. */
    CHECK_OK(pio_stop_matcher_push(m, "Hello <", 7, &r));
    CHECK(r.len == 6 && memcmp(r.text, "Hello ", 6) == 0 && r.stop_index == -1,
          "chunk 1 emitted '%.*s'", (int)r.len, r.text);
    CHECK_OK(pio_stop_matcher_push(m, "/", 1, &r));
    CHECK(r.len == 0 && r.stop_index == -1, "chunk 2 emitted '%.*s'", (int)r.len, r.text);
    CHECK_OK(pio_stop_matcher_push(m, "s>world", 7, &r));
    CHECK(r.len == 0 && r.stop_index == 0, "chunk 3 emitted '%.*s' stop %d", (int)r.len,
          r.text, r.stop_index);
    /* Stopped: nothing more comes out. */
    CHECK_OK(pio_stop_matcher_push(m, "more", 4, &r));
    CHECK(r.len == 0 && r.stop_index == 0, "after stop emitted '%.*s'", (int)r.len, r.text);
    CHECK_OK(pio_stop_matcher_flush(m, &r));
    CHECK(r.len == 0 && r.stop_index == 0, "flush after stop emitted %zu bytes", r.len);

    /* Reset: a held prefix that turns out not to be a stop is released. */
    pio_stop_matcher_reset(m);
    CHECK_OK(pio_stop_matcher_push(m, "a </", 4, &r));
    CHECK(r.len == 2 && memcmp(r.text, "a ", 2) == 0, "held: emitted '%.*s'", (int)r.len,
          r.text);
    CHECK_OK(pio_stop_matcher_push(m, "b> ok", 5, &r));
    CHECK(r.len == 7 && memcmp(r.text, "</b> ok", 7) == 0 && r.stop_index == -1,
          "released: emitted '%.*s'", (int)r.len, r.text);
    /* Held at the end of generation: flush releases it. */
    CHECK_OK(pio_stop_matcher_push(m, " </s", 4, &r));
    CHECK(r.len == 1 && r.text[0] == ' ', "tail: emitted '%.*s'", (int)r.len, r.text);
    CHECK_OK(pio_stop_matcher_flush(m, &r));
    CHECK(r.len == 3 && memcmp(r.text, "</s", 3) == 0 && r.stop_index == -1,
          "flush emitted '%.*s'", (int)r.len, r.text);
    pio_stop_matcher_free(m);

    /* Empty stop strings are refused; no stops pass text through. */
    const char *const empty[] = { "ok", "", NULL };
    CHECK(pio_stop_matcher_new_list(empty, &m) == PIO_STATUS_ERR_INVALID_ARG && !m,
          "empty stop accepted");
    char out[128];
    const char *const none_chunks[] = { "any <", "text", NULL };
    CHECK(run_stops(NULL, none_chunks, out, sizeof out) == -1 && strcmp(out, "any <text") == 0,
          "no stops: '%s'", out);

    /* Several stops in one chunk: the first to complete, text before it. */
    const char *const two[] = { "STOP", "END", NULL };
    const char *const one_chunk[] = { "fooENDbarSTOP", NULL };
    CHECK(run_stops(two, one_chunk, out, sizeof out) == 1 && strcmp(out, "foo") == 0,
          "two stops: '%s'", out);
    /* "bc" completes before "abcd" does, whatever the chunking. */
    const char *const nested[] = { "abcd", "bc", NULL };
    const char *const whole[] = { "xabcd", NULL };
    const char *const bytes[] = { "x", "a", "b", "c", "d", NULL };
    CHECK(run_stops(nested, whole, out, sizeof out) == 1 && strcmp(out, "xa") == 0,
          "nested whole: '%s'", out);
    CHECK(run_stops(nested, bytes, out, sizeof out) == 1 && strcmp(out, "xa") == 0,
          "nested bytes: '%s'", out);
    /* Same end: the longer one. */
    const char *const suffix[] = { "c", "abc", NULL };
    const char *const abc[] = { "ab", "c", NULL };
    CHECK(run_stops(suffix, abc, out, sizeof out) == 1 && strcmp(out, "") == 0,
          "same end: '%s'", out);
    /* Multi-byte UTF-8 stop split inside a character. */
    const char *const utf[] = { "\xe2\x80\x94" "end", NULL };  /* "—end" */
    const char *const utf_chunks[] = { "caf\xc3\xa9 \xe2", "\x80", "\x94", "en", "d!", NULL };
    CHECK(run_stops(utf, utf_chunks, out, sizeof out) == 0 && strcmp(out, "caf\xc3\xa9 ") == 0,
          "utf-8: '%s'", out);
    /* Self-overlapping stop: "aab" in "aaab". */
    const char *const overlap[] = { "aab", NULL };
    const char *const a3b[] = { "a", "a", "a", "b", "z", NULL };
    CHECK(run_stops(overlap, a3b, out, sizeof out) == 0 && strcmp(out, "a") == 0,
          "overlap: '%s'", out);
}

/* Reference: the first stop to complete in `text` (ties: longer, then lower
 * index); returns its index and sets *start, or -1. */
static int ref_first_stop(const char *text, const char *const *stops, int n_stops, size_t *start)
{
    size_t n = strlen(text);
    for (size_t end = 1; end <= n; end++) {
        int best = -1;
        size_t best_len = 0;
        for (int k = 0; k < n_stops; k++) {
            size_t sl = strlen(stops[k]);
            if (sl <= end && sl > best_len && memcmp(text + end - sl, stops[k], sl) == 0) {
                best = k;
                best_len = sl;
            }
        }
        if (best >= 0) {
            *start = end - best_len;
            return best;
        }
    }
    return -1;
}

/* Random texts over a tiny alphabet, random chunking, vs the reference. */
static void test_stop_random(void)
{
    const char *const stops[] = { "abca", "bb", "cab", "aaaa", NULL };
    const int n_stops = 4;
    int bad = 0;
    for (int trial = 0; trial < 2000; trial++) {
        char text[64], out[80];
        const char *chunks[65];
        char pieces[64][64];
        int len = 1 + (int)(test_uniform() * 40), n_chunks = 0;
        for (int i = 0; i < len; i++)
            text[i] = "abc"[(int)(test_uniform() * 3)];
        text[len] = '\0';
        for (int pos = 0; pos < len;) {
            int cl = 1 + (int)(test_uniform() * 6);
            if (cl > len - pos)
                cl = len - pos;
            memcpy(pieces[n_chunks], text + pos, (size_t)cl);
            pieces[n_chunks][cl] = '\0';
            chunks[n_chunks] = pieces[n_chunks];
            n_chunks++;
            pos += cl;
        }
        chunks[n_chunks] = NULL;
        size_t start = 0;
        int want = ref_first_stop(text, stops, n_stops, &start);
        int got = run_stops(stops, chunks, out, sizeof out);
        bool ok = got == want && (want < 0 ? strcmp(out, text) == 0
                                           : strlen(out) == start &&
                                                 memcmp(out, text, start) == 0);
        if (!ok && bad++ < 5)
            fprintf(stderr, "text '%s': got stop %d '%s', want stop %d at %zu\n", text, got, out,
                    want, start);
    }
    CHECK(bad == 0, "%d random texts mismatched", bad);
}

int main(void)
{
    test_params();
    test_greedy();
    test_greedy_limits();
    test_filters_small();
    test_filters_reference();
    test_penalties();
    test_seeding();
    test_speed();
    test_stop_basic();
    test_stop_random();
    return check_report("test_sampler");
}
