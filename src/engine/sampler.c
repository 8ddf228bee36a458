/*
 * sampler.c - next-token selection: penalties, temperature, top-k, top-p,
 * min-p, and a seeded draw (see include/pio/sampler.h for the contract).
 *
 * The pipeline works on a candidate list of (logit, id) pairs rather than
 * sorting the vocabulary: top-k is a linear-time partial selection, top-p
 * sorts only as much of the head of the distribution as it needs, min-p is
 * a threshold against the maximum. Probabilities are never normalized
 * until the draw; weights are exp(logit - max).
 */
#include "pio/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* First chunk that top-p sorts; each further round sorts 4x as many. */
#define SAMPLER_TOP_P_FIRST 64

/* Temperatures below this behave as greedy: dividing by them could push
 * logits to +inf, and the draw would be the argmax anyway. */
#define SAMPLER_MIN_TEMPERATURE 1e-6f

typedef struct sampler_cand {
    float logit;
    int32_t id;
} sampler_cand;

struct pio_sampler {
    pio_sampler_params p;
    int n_vocab;               /* logits per row */
    int n_valid;               /* ids [0, n_valid) may be chosen */
    uint64_t rng[4];           /* xoshiro256** state */
    sampler_cand *cand;        /* [n_valid] scratch, rebuilt each call */
    int32_t *counts;           /* [n_vocab] window counts; all zero between calls */
};

void pio_sampler_params_default(pio_sampler_params *p)
{
    memset(p, 0, sizeof *p);
    p->temperature = 0.0f;
    p->top_k = 0;
    p->top_p = 1.0f;
    p->min_p = 0.0f;
    p->repetition_penalty = 1.0f;
    p->presence_penalty = 0.0f;
    p->frequency_penalty = 0.0f;
    p->penalty_last_n = -1;
    p->seed = 0;
}

/* ---- PRNG: xoshiro256** seeded through splitmix64 (Blackman & Vigna,
 * "Scrambled linear pseudorandom number generators", 2018). -------------- */

static uint64_t splitmix64_next(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(uint64_t s[4])
{
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Uniform double in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4])
{
    return (double)(xoshiro_next(s) >> 11) * 0x1.0p-53;
}

void pio_sampler_reseed(pio_sampler *s, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64_next(&x);
}

/* ---- construction -------------------------------------------------------- */

/* Check `p` field by field; the message names the field and the rule. */
static pio_status sampler_params_check(const pio_sampler_params *p)
{
    if (isnan(p->temperature))
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "sampler: temperature is NaN");
    if (isnan(p->top_p) || p->top_p <= 0.0f)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                         "sampler: top_p %g must be > 0 (>= 1 turns it off)", (double)p->top_p);
    if (isnan(p->min_p) || p->min_p > 1.0f)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                         "sampler: min_p %g must be <= 1 (<= 0 turns it off)", (double)p->min_p);
    if (isnan(p->repetition_penalty) || p->repetition_penalty <= 0.0f)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                         "sampler: repetition_penalty %g must be > 0 (1 turns it off)",
                         (double)p->repetition_penalty);
    if (isnan(p->presence_penalty))
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "sampler: presence_penalty is NaN");
    if (isnan(p->frequency_penalty))
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "sampler: frequency_penalty is NaN");
    if (p->penalty_last_n < -1)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                         "sampler: penalty_last_n %d must be >= -1 (-1 = whole history)",
                         p->penalty_last_n);
    return PIO_STATUS_OK;
}

/* See sampler.h. `p` NULL means pio_sampler_params_default. */
pio_status pio_sampler_new(const pio_sampler_params *p, int n_vocab, int n_valid,
                           pio_sampler **out)
{
    pio_sampler_params defaults;
    pio_status st;
    pio_sampler *s;

    *out = NULL;
    if (!p) {
        pio_sampler_params_default(&defaults);
        p = &defaults;
    }
    if (n_vocab <= 0 || n_valid <= 0 || n_valid > n_vocab)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                         "sampler: n_valid %d must be in [1, n_vocab = %d]", n_valid, n_vocab);
    if ((st = sampler_params_check(p)) != PIO_STATUS_OK)
        return st;

    s = calloc(1, sizeof *s);
    if (!s)
        goto nomem;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->n_valid = n_valid;
    s->cand = malloc((size_t)n_valid * sizeof *s->cand);
    s->counts = calloc((size_t)n_vocab, sizeof *s->counts);
    if (!s->cand || !s->counts)
        goto free_sampler;
    pio_sampler_reseed(s, p->seed);
    *out = s;
    return PIO_STATUS_OK;

free_sampler:
    pio_sampler_free(s);
nomem:
    return pio_error(PIO_STATUS_ERR_NOMEM, "sampler: out of memory for a vocabulary of %d",
                     n_vocab);
}

void pio_sampler_free(pio_sampler *s)
{
    if (!s)
        return;
    free(s->cand);
    free(s->counts);
    free(s);
}

/* ---- logit processing ---------------------------------------------------- */

/*
 * Penalize each distinct token of the window history[n - last_n, n):
 * repetition (HF RepetitionPenaltyLogitsProcessor: once per token, divide
 * positive logits, multiply negative ones), then frequency * count and
 * presence (OpenAI / vLLM). counts[] is zero on entry and on return: it is
 * filled from the window, and each entry is cleared as its token is
 * penalized, which also makes each token penalized once. O(window).
 */
static void apply_penalties(pio_sampler *s, float *logits, const int32_t *history, int n_history)
{
    const pio_sampler_params *p = &s->p;
    int start;

    if (p->repetition_penalty == 1.0f && p->presence_penalty == 0.0f &&
        p->frequency_penalty == 0.0f)
        return;
    if (!history || n_history <= 0 || p->penalty_last_n == 0)
        return;
    start = (p->penalty_last_n < 0 || p->penalty_last_n >= n_history)
                ? 0 : n_history - p->penalty_last_n;

    for (int i = start; i < n_history; i++) {
        int32_t t = history[i];
        if (t >= 0 && t < s->n_vocab)
            s->counts[t]++;
    }
    for (int i = start; i < n_history; i++) {
        int32_t t = history[i];
        if (t < 0 || t >= s->n_vocab || s->counts[t] == 0)
            continue;
        float l = logits[t];
        if (p->repetition_penalty != 1.0f)
            l = l > 0.0f ? l / p->repetition_penalty : l * p->repetition_penalty;
        l -= p->frequency_penalty * (float)s->counts[t] + p->presence_penalty;
        logits[t] = l;
        s->counts[t] = 0;
    }
}

/* Does candidate a rank before b? Higher logit first, then lower id: a
 * total order, so selection and sorting are deterministic. */
static inline bool cand_before(const sampler_cand *a, const sampler_cand *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cand_compare(const void *a, const void *b)
{
    const sampler_cand *x = a, *y = b;
    return cand_before(x, y) ? -1 : cand_before(y, x) ? 1 : 0;
}

static inline void cand_swap(sampler_cand *a, sampler_cand *b)
{
    sampler_cand t = *a;
    *a = *b;
    *b = t;
}

/*
 * Partial selection: rearrange c[0, n) so that c[0, k) holds the k best
 * candidates (in no particular order), 0 < k <= n. Quickselect with a
 * median-of-three pivot, O(n) expected; after 2*log2(n) rounds without
 * converging it sorts the remaining range (O(n log n) worst case).
 */
static void cand_select_top(sampler_cand *c, int n, int k)
{
    int lo = 0, hi = n - 1, budget = 2;
    for (int m = n; m > 1; m >>= 1)
        budget += 2;
    while (hi > lo) {
        if (budget-- == 0) {
            qsort(c + lo, (size_t)(hi - lo + 1), sizeof *c, cand_compare);
            return;
        }
        int mid = lo + (hi - lo) / 2;
        if (cand_before(&c[mid], &c[lo]))
            cand_swap(&c[mid], &c[lo]);
        if (cand_before(&c[hi], &c[lo]))
            cand_swap(&c[hi], &c[lo]);
        if (cand_before(&c[hi], &c[mid]))
            cand_swap(&c[hi], &c[mid]);
        sampler_cand pivot = c[mid];
        int i = lo, j = hi;
        while (i <= j) {
            while (cand_before(&c[i], &pivot))
                i++;
            while (cand_before(&pivot, &c[j]))
                j--;
            if (i <= j) {
                cand_swap(&c[i], &c[j]);
                i++;
                j--;
            }
        }
        /* [lo, j] rank before-or-equal the pivot, [i, hi] after-or-equal. */
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            return;
    }
}

/* exp(l - m) with the max itself exactly 1, also when m is +inf. */
static inline float cand_weight(float l, float m)
{
    return l == m ? 1.0f : expf(l - m);
}

/*
 * Top-p (HF TopPLogitsWarper): keep, in rank order, each candidate whose
 * preceding mass is below top_p of the total; so the smallest head whose
 * mass reaches top_p, and at least one. Sorts the head in growing chunks
 * (64, 256, 1024, ...) until the mass is reached. Returns the count kept;
 * c[0, count) is then in rank order.
 */
static int apply_top_p(sampler_cand *c, int n, float m, float top_p)
{
    double total = 0.0, target, cum = 0.0;
    int sorted = 0;

    for (int i = 0; i < n; i++)
        total += cand_weight(c[i].logit, m);
    target = (double)top_p * total;
    while (sorted < n) {
        int want = sorted ? sorted * 4 : SAMPLER_TOP_P_FIRST;
        if (want > n || want < sorted)
            want = n;
        if (want < n)
            cand_select_top(c + sorted, n - sorted, want - sorted);
        qsort(c + sorted, (size_t)(want - sorted), sizeof *c, cand_compare);
        for (int i = sorted; i < want; i++) {
            if (cum >= target)
                return i > 0 ? i : 1;
            cum += cand_weight(c[i].logit, m);
        }
        sorted = want;
    }
    return n;
}

/*
 * Run the pipeline up to the draw. Fills s->cand[0, *n_cand) with the kept
 * candidates and *max_logit with their maximum. Returns the greedy choice
 * (>= 0) when sampling is off, -2 when candidates are ready for a draw, -1
 * when no valid logit is above -inf (message set).
 */
static int32_t sampler_prepare(pio_sampler *s, float *logits, const int32_t *history,
                               int n_history, int *n_cand, float *max_logit)
{
    const pio_sampler_params *p = &s->p;
    int n = 0;
    float m = -INFINITY;

    for (int i = s->n_valid; i < s->n_vocab; i++)
        logits[i] = -INFINITY;
    for (int i = 0; i < s->n_valid; i++)
        if (isnan(logits[i]))
            logits[i] = -INFINITY;
    apply_penalties(s, logits, history, n_history);

    if (p->temperature < SAMPLER_MIN_TEMPERATURE) {
        int32_t best = -1;
        float best_logit = -INFINITY;
        for (int i = 0; i < s->n_valid; i++) {
            if (logits[i] > best_logit) {
                best_logit = logits[i];
                best = i;
            }
        }
        if (best < 0)
            pio_error(PIO_STATUS_ERR_INVALID_ARG,
                      "sampler: every logit of the %d valid ids is -inf or NaN", s->n_valid);
        *n_cand = best >= 0;
        return best;
    }

    for (int i = 0; i < s->n_valid; i++) {
        float l = logits[i] / p->temperature;
        logits[i] = l;
        if (l > -INFINITY) {
            s->cand[n++] = (sampler_cand){ l, i };
            if (l > m)
                m = l;
        }
    }
    if (n == 0) {
        *n_cand = 0;
        pio_error(PIO_STATUS_ERR_INVALID_ARG,
                  "sampler: every logit of the %d valid ids is -inf or NaN", s->n_valid);
        return -1;
    }
    if (p->top_k > 0 && p->top_k < n) {
        cand_select_top(s->cand, n, p->top_k);
        n = p->top_k;
    }
    if (p->top_p < 1.0f)
        n = apply_top_p(s->cand, n, m, p->top_p);
    if (p->min_p > 0.0f) {
        /* p_i >= min_p * p_max  <=>  exp(l_i - m) >= min_p; the max stays. */
        int kept = 0;
        for (int i = 0; i < n; i++)
            if (cand_weight(s->cand[i].logit, m) >= p->min_p)
                s->cand[kept++] = s->cand[i];
        n = kept;
    }
    *n_cand = n;
    *max_logit = m;
    return -2;
}

/* See sampler.h. */
int32_t pio_sampler_sample(pio_sampler *s, float *logits, const int32_t *history, int n_history)
{
    int n;
    float m = 0.0f;
    int32_t r = sampler_prepare(s, logits, history, n_history, &n, &m);
    if (r != -2)
        return r;

    double total = 0.0, acc = 0.0, u;
    for (int i = 0; i < n; i++)
        total += cand_weight(s->cand[i].logit, m);
    u = rng_uniform(s->rng) * total;
    for (int i = 0; i < n; i++) {
        float w = cand_weight(s->cand[i].logit, m);
        acc += w;
        if (u < acc)
            return s->cand[i].id;
    }
    /* Rounding left u at the very top: the last candidate with weight. */
    for (int i = n - 1; i > 0; i--)
        if (cand_weight(s->cand[i].logit, m) > 0.0f)
            return s->cand[i].id;
    return s->cand[0].id;
}

/* See sampler.h. */
int pio_sampler_probs(pio_sampler *s, float *logits, const int32_t *history, int n_history,
                      float *probs)
{
    int n;
    float m = 0.0f;
    int32_t r = sampler_prepare(s, logits, history, n_history, &n, &m);

    memset(probs, 0, (size_t)s->n_vocab * sizeof *probs);
    if (r >= 0) {
        probs[r] = 1.0f;
        return 1;
    }
    if (r == -1)
        return 0;

    double total = 0.0;
    int nonzero = 0;
    for (int i = 0; i < n; i++)
        total += cand_weight(s->cand[i].logit, m);
    for (int i = 0; i < n; i++) {
        float pr = (float)(cand_weight(s->cand[i].logit, m) / total);
        probs[s->cand[i].id] = pr;
        nonzero += pr > 0.0f;
    }
    return nonzero;
}
